//! The `stratbox` command: argument parsing and wiring only; each command
//! lives in its own file under `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use stratbox_host::live::LogBook;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// mimalloc: the host allocates from many threads at once (runners,
/// strategy threads, connections, the writer); glibc's allocator spent a
/// tenth of the time of a config-change benchmark in its own bookkeeping.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before any thread starts: every thread inherits it.
    let scheduled = stratbox_host::scheduling::throughput_first();
    let args = cli::Cli::parse();
    if args.prints() {
        end_quietly_when_the_reader_goes();
    }
    // Two outputs: the terminal (level from STRATBOX_LOG, default warn) and
    // the log book the API serves (info and above, whatever the terminal shows).
    let logbook = LogBook::default();
    let terminal = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATBOX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        );
    tracing_subscriber::registry()
        .with(terminal)
        .with(logbook.clone().with_filter(LevelFilter::INFO))
        .init();
    if let Err(error) = scheduled {
        tracing::warn!("{error}");
    }
    match cli::run(args, logbook) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, joined; a cause that the message
/// before it already says (an error that shows its source) is left out.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut previous = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !previous.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        previous = text;
    }
    line
}

/// Let a closed pipe end the process, as it ends other command-line tools
/// (`stratbox data export ... | head`). Rust starts with SIGPIPE ignored,
/// which turns the next print into a panic. The server keeps it ignored.
fn end_quietly_when_the_reader_goes() {
    // SAFETY: called first thing in main, before any thread starts; resetting
    // a signal to its default action has no other effect on the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
