//! Dispatch: parse the arguments, run one subcommand, turn its result into the exit code.

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::ctx::Ctx;
use crate::output;

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
        Command::RpcServer(a) => crate::rpc_server::run(ctx, a),
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
