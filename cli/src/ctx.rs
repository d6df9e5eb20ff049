//! What every subcommand sees of the global flags. Its own module so commands depend on it
//! without depending on the dispatcher.

/// The global flags, parsed once.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// `--json`: reports go to stdout as one JSON document.
    pub json: bool,
    /// `--quiet`: no progress on stderr.
    pub quiet: bool,
}
