//! `raftwal bench` (under construction).
use super::CmdResult;

/// Arguments of `raftwal bench`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `raftwal bench`.
pub fn run(_args: Args) -> CmdResult {
    Err("not built yet".into())
}
