//! `raftwal`: run a crash-tested Raft cluster on the WAL (`demo`), torture-test crash recovery
//! (`torture`), measure persistence throughput against the disk's limit (`bench`), and look
//! into a WAL directory (`inspect`, `verify`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// raftwal: a write-ahead log for Raft state, and the tools to prove and measure it.
#[derive(Parser)]
#[command(name = "raftwal", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Raft cluster in this process, each node persisting to a real WAL directory,
    /// crash and restart nodes, and verify every node applied the same sequence.
    Demo(cmd::demo::Args),
    /// Crash-recovery torture on the simulated power-loss file system (or the real disk with
    /// `--real DIR`), checking every invariant after every recovery.
    Torture(cmd::torture::Args),
    /// The workload process that `torture --real` kills with SIGKILL (internal).
    #[command(hide = true)]
    TortureChild(cmd::torture::ChildArgs),
    /// Persistence throughput: the raw write+fdatasync limit, raftwal and raft-engine, side by
    /// side in one run.
    Bench(cmd::bench::Args),
    /// Show a WAL directory: header, snapshot, segments, index ranges, sizes.
    Inspect(cmd::inspect::InspectArgs),
    /// Check every checksum in a WAL directory; exit non-zero naming file and offset on
    /// corruption.
    Verify(cmd::inspect::VerifyArgs),
    /// Print the header slots and the entries of a WAL directory (text or JSON lines),
    /// read-only.
    Dump(cmd::dump::Args),
}

/// Log messages (`RAFTWAL_LOG`, default `warn`) go to stderr, or to `file`.
fn init_tracing(file: Option<&std::path::Path>) -> std::io::Result<()> {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("RAFTWAL_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    match file {
        Some(path) => {
            let f = std::fs::File::create(path)?;
            tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_writer(std::sync::Mutex::new(f))
                .with_ansi(false)
                .init();
        }
        None => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A torture run's injected faults make the WAL warn by the hundred: a log file, unless
    // --verbose, so that the progress bar and the summary stay readable.
    let log_file = match &cli.command {
        Command::Torture(a) => a.log_file(),
        _ => None,
    };
    if let Err(e) = init_tracing(log_file.as_deref()) {
        eprintln!("error: cannot create the log file: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Demo(a) => cmd::demo::run(a),
        Command::Torture(a) => cmd::torture::run(a),
        Command::TortureChild(a) => cmd::torture::run_child(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Inspect(a) => cmd::inspect::run_inspect(a),
        Command::Verify(a) => cmd::inspect::run_verify(a),
        Command::Dump(a) => cmd::dump::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::from(2)
        }
    }
}
