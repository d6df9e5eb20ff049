//! `llama-prebuilt`: download, verify and cache the official llama.cpp release binaries.
//!
//! Everything real lives in the fetch library; this binary parses arguments, calls it, and
//! prints reports (tables for people, `--json` for programs).

mod app;
mod args;
mod cache;
mod ctx;
mod doctor;
mod download;
mod error;
mod list;
mod output;
mod progress;
mod rpc_server;
mod settings;
mod verify;

fn main() -> std::process::ExitCode {
    app::run()
}
