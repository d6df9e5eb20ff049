//! The error every subcommand returns. The dispatcher prints it and turns it into the exit
//! code; commands, output helpers and settings create it. A leaf module, so none of them
//! imports the dispatcher.

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

/// What a subcommand returns.
pub type CmdResult = Result<(), CliError>;
