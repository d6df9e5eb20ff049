//! Synthetic release-shaped and hostile archives for tests that need no C++ build, plus the
//! digest and `checksums.toml` helpers shared with the real fixture.

mod checksums;
mod hostile;
mod large;
mod release;
pub(crate) mod tarball;
mod zeros;
pub(crate) mod zipfile;

pub use checksums::{checksums_toml, sha256_and_size, sha256_file, sha256_hex, sha256_reader};
pub use hostile::{
    RawEntry, tar_gz_large_entry, tar_gz_many_entries, tar_gz_raw, tar_gz_with_entry_path,
    tar_gz_with_symlink, zip_with_entry_path, zip_with_symlink,
};
pub use large::{FileDigest, write_large_tar_gz};
pub use release::{
    cuda_runtime_tar_gz, cuda_runtime_zip, dummy_contents, linux_tar_gz, linux_zip_era,
    macos_tar_gz, tag_number, windows_zip,
};
