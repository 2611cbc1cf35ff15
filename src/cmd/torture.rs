//! `raftwal torture` (under construction).
use super::CmdResult;

/// Arguments of `raftwal torture`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Arguments of the hidden `raftwal torture-child`.
#[derive(clap::Args, Debug)]
pub struct ChildArgs {}

/// Runs `raftwal torture`.
pub fn run(_args: Args) -> CmdResult {
    Err("not built yet".into())
}

/// Runs the child workload of `raftwal torture --real`.
pub fn run_child(_args: ChildArgs) -> CmdResult {
    Err("not built yet".into())
}
