//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

/// Download, verify and cache the official prebuilt llama.cpp release binaries.
///
/// Reads the same environment variables as the llama-prebuilt-sys build script
/// (LLAMA_PREBUILT_VERSION, _VARIANT, _MIRROR, _CACHE_DIR, _CHECKSUMS, _SHA256, _ARCHIVE,
/// _OFFLINE, CARGO_NET_OFFLINE, GITHUB_TOKEN, ...); `llama-prebuilt doctor` shows which are set.
#[derive(Debug, Parser)]
#[command(name = "llama-prebuilt", version, max_term_width = 100)]
pub struct Cli {
    /// Print the report as JSON on stdout (progress and errors still go to stderr).
    #[arg(long, global = true)]
    pub json: bool,

    /// No progress output on stderr (reports and errors are still printed).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download, verify and extract release assets into the shared cache.
    Download(DownloadArgs),
    /// Compute a file's sha256 and compare it, or re-check every cached asset.
    Verify(VerifyArgs),
    /// List a release's assets and which platform uses each.
    List(ListArgs),
    /// Show, list or clean the download cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Show what a build on this machine would do, and why.
    Doctor(DoctorArgs),
    /// Run llama.cpp's RPC server (ggml-rpc-server) from the verified release, so another
    /// machine can use this one's devices. RPC has no authentication or encryption.
    ///
    /// The release is downloaded and verified first if it is not cached. With --json, one JSON
    /// line with the endpoint is printed once the server listens. The server stops with this
    /// command.
    RpcServer(RpcServerArgs),
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Release tag (`b10199`) or `newest` [default: $LLAMA_PREBUILT_VERSION, else the pinned tag]
    #[arg(long, value_name = "TAG")]
    pub version: Option<String>,

    /// Backend variant: cpu, vulkan, cuda-12.4, rocm-7.2, ... [default: $LLAMA_PREBUILT_VARIANT, else cpu]
    #[arg(long, value_name = "V")]
    pub variant: Option<String>,

    /// Rust target triple to download for [default: this machine]
    #[arg(long, value_name = "TRIPLE", conflicts_with_all = ["all", "platforms"])]
    pub target: Option<String>,

    /// Download for every default platform (linux-x64, linux-arm64, macos-arm64, macos-x64,
    /// windows-x64, windows-arm64).
    #[arg(long, conflicts_with = "platforms")]
    pub all: bool,

    /// Comma-separated platforms to download for (e.g. linux-x64,macos-arm64).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub platforms: Vec<String>,

    /// Downloads running at the same time with --all/--platforms.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,

    /// Retries after a transient failure (5xx, reset, truncation, stall) per download.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["file", "cache"])))]
pub struct VerifyArgs {
    /// The file to hash.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Expected sha256 (64 hex digits, `sha256:` prefix allowed); a mismatch fails.
    #[arg(long, value_name = "HEX", requires = "file")]
    pub sha256: Option<String>,

    /// Re-check every cached asset against its manifest instead of a file.
    #[arg(long, conflicts_with_all = ["file", "sha256"])]
    pub cache: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Release tag or `newest` [default: $LLAMA_PREBUILT_VERSION, else the pinned tag]
    #[arg(long, value_name = "TAG")]
    pub version: Option<String>,

    /// Variant whose asset each platform would use [default: $LLAMA_PREBUILT_VARIANT, else cpu]
    #[arg(long, value_name = "V")]
    pub variant: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Print the cache root.
    Path,
    /// List the cached assets (tag, asset, size, whether they still verify).
    List,
    /// Remove cached assets this tool created; anything else in the cache root is left alone.
    #[command(group(ArgGroup::new("which").required(true).args(["version", "all"])))]
    Clean {
        /// Only the assets of this release tag.
        #[arg(long, value_name = "TAG")]
        version: Option<String>,
        /// Every cached asset, and unfinished downloads.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Rust target triple to diagnose [default: this machine]
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,
}

#[derive(Debug, Args)]
pub struct RpcServerArgs {
    /// Release tag (`b10199`) or `newest` [default: $LLAMA_PREBUILT_VERSION, else the pinned tag]
    #[arg(long, value_name = "TAG")]
    pub version: Option<String>,

    /// Backend variant whose devices to serve: cpu, vulkan, cuda-12.4, ... [default:
    /// $LLAMA_PREBUILT_VARIANT, else cpu]
    #[arg(long, value_name = "V")]
    pub variant: Option<String>,

    /// IPv4 address to listen on. RPC has NO authentication and NO encryption: anyone who can
    /// reach this address can use this machine's devices and memory. Keep the default (this
    /// machine only) unless the network is one you trust; 0.0.0.0 is every interface.
    #[arg(long, short = 'H', value_name = "ADDR", default_value = "127.0.0.1")]
    pub host: std::net::Ipv4Addr,

    /// TCP port to listen on; 0 picks a free one (printed once listening).
    #[arg(long, short = 'p', value_name = "PORT", default_value_t = 50052)]
    pub port: u16,

    /// Threads for the CPU device [default: ggml-rpc-server's, half the cores]
    #[arg(long, short = 't', value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: Option<u32>,

    /// Comma-separated devices to serve (e.g. Vulkan0,Vulkan1) [default: every GPU, else the CPU]
    #[arg(long, short = 'd', value_name = "LIST")]
    pub device: Option<String>,

    /// Keep received tensors in ggml-rpc-server's local file cache ($LLAMA_CACHE/rpc, else
    /// the user cache dir's llama.cpp/rpc), so a client reloading a model sends less.
    #[arg(long, short = 'c')]
    pub cache: bool,

    /// Seconds to wait for the server to listen before giving up (device start-up can be slow).
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub start_timeout: u64,

    /// Retries after a transient failure when the release has to be downloaded.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn platforms_are_comma_separated_and_globals_go_anywhere() {
        let cli = Cli::try_parse_from([
            "llama-prebuilt",
            "download",
            "--platforms",
            "linux-x64,macos-arm64",
            "--json",
        ])
        .unwrap();
        assert!(cli.json);
        let Command::Download(d) = cli.command else {
            panic!()
        };
        assert_eq!(d.platforms, ["linux-x64", "macos-arm64"]);
        assert_eq!(d.jobs, 4);
    }

    #[test]
    fn rpc_server_listens_on_loopback_unless_told() {
        let cli = Cli::try_parse_from(["llama-prebuilt", "rpc-server"]).unwrap();
        let Command::RpcServer(r) = cli.command else {
            panic!()
        };
        assert_eq!(r.host, std::net::Ipv4Addr::LOCALHOST);
        assert_eq!(r.port, 50052);
        assert_eq!((r.threads, r.device, r.cache), (None, None, false));
        assert!(
            Cli::try_parse_from(["llama-prebuilt", "rpc-server", "-H", "0.0.0.0", "-t", "0"])
                .is_err(),
            "at least one thread"
        );
    }

    #[test]
    fn conflicting_flags_are_rejected() {
        assert!(
            Cli::try_parse_from(["llama-prebuilt", "download", "--all", "--target", "x"]).is_err()
        );
        assert!(Cli::try_parse_from(["llama-prebuilt", "verify"]).is_err());
        assert!(Cli::try_parse_from(["llama-prebuilt", "verify", "--cache", "f"]).is_err());
        assert!(Cli::try_parse_from(["llama-prebuilt", "cache", "clean"]).is_err());
        assert!(
            Cli::try_parse_from(["llama-prebuilt", "download", "--all", "--jobs", "0"]).is_err()
        );
    }
}
