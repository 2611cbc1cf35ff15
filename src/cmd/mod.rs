//! One module per subcommand. Each exposes clap `Args` and a `run` returning an exit code.

pub mod bench;
pub mod demo;
pub mod dump;
pub mod inspect;
pub mod torture;

/// The error type subcommands return: anything printable, with its cause chain.
pub type CmdError = Box<dyn std::error::Error + Send + Sync + 'static>;
/// What every subcommand's `run` returns.
pub type CmdResult = Result<std::process::ExitCode, CmdError>;
