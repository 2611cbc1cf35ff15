//! `raftwal inspect` and `raftwal verify` (under construction).
use super::CmdResult;

/// Arguments of `raftwal inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {}

/// Arguments of `raftwal verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {}

/// Runs `raftwal inspect`.
pub fn run_inspect(_args: InspectArgs) -> CmdResult {
    Err("not built yet".into())
}

/// Runs `raftwal verify`.
pub fn run_verify(_args: VerifyArgs) -> CmdResult {
    Err("not built yet".into())
}
