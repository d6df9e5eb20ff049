//! Dispatch, the error type every subcommand returns, and the exit code.

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::output;

/// What every subcommand sees of the global flags.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// `--json`: reports go to stdout as one JSON document.
    pub json: bool,
    /// `--quiet`: no progress on stderr.
    pub quiet: bool,
}

/// A failed command. Printed as `error: <message>` on stderr; the exit code is 1.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    /// The report (with the failure in it) is already on stdout, so `--json` must not print a
    /// second document.
    pub reported: bool,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            reported: false,
        }
    }

    /// A failure the printed report already shows (partial download failure, mismatch, ...).
    pub fn after_report(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            reported: true,
        }
    }
}

impl From<llama_prebuilt_fetch::Error> for CliError {
    fn from(e: llama_prebuilt_fetch::Error) -> CliError {
        CliError::new(e.to_string())
    }
}

pub type CmdResult = Result<(), CliError>;

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx {
        json: cli.json,
        quiet: cli.quiet,
    };
    let result = match &cli.command {
        Command::Download(a) => crate::download::run(ctx, a),
        Command::Verify(a) => crate::verify::run(ctx, a),
        Command::List(a) => crate::list::run(ctx, a),
        Command::Cache(c) => crate::cache::run(ctx, c),
        Command::Doctor(a) => crate::doctor::run(ctx, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if ctx.json && !e.reported {
                // Programs reading stdout get a document even when nothing else was printed.
                let _ = output::json(&serde_json::json!({ "ok": false, "error": e.message }));
            }
            output::error_line(&e.message);
            ExitCode::FAILURE
        }
    }
}
