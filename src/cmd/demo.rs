//! `raftwal demo` (under construction).
use super::CmdResult;

/// Arguments of `raftwal demo`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `raftwal demo`.
pub fn run(_args: Args) -> CmdResult {
    Err("not built yet".into())
}
