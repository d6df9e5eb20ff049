//! Release-shaped archives of a chosen size for the fetch and parallel benchmarks: the
//! libraries the fetch library's locator needs (small dummy files with the real names and
//! symlink chains) plus one tool file of pseudo-random, incompressible bytes that makes up the
//! size. Stored (gzip level 0 / zip "stored") so writing a GiB costs little CPU.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use llama_prebuilt_test_support::rng::SplitMix64;

/// Which layout to write.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Layout {
    /// `llama-<tag>/` with `lib*.so` chains.
    Linux,
    /// `llama-<tag>/` with `lib*.dylib` chains.
    MacOs,
    /// Flat zip of DLLs.
    Windows,
}

fn dummy(name: &str) -> Vec<u8> {
    format!("dummy {name} (llama-prebuilt bench archive)\n").into_bytes()
}

/// Writes the archive for `layout` with about `pad_bytes` of filler; `seed` varies the filler.
pub(crate) fn write(
    path: &Path,
    tag: &str,
    layout: Layout,
    pad_bytes: u64,
    seed: u64,
) -> io::Result<()> {
    let tmp = path.with_extension("partial");
    match layout {
        Layout::Linux | Layout::MacOs => write_tar_gz(&tmp, tag, layout, pad_bytes, seed)?,
        Layout::Windows => write_zip(&tmp, pad_bytes, seed)?,
    }
    std::fs::rename(&tmp, path)
}

fn write_tar_gz(path: &Path, tag: &str, layout: Layout, pad: u64, seed: u64) -> io::Result<()> {
    let gz = GzEncoder::new(
        BufWriter::with_capacity(1 << 20, File::create(path)?),
        Compression::none(),
    );
    let mut t = tar::Builder::new(gz);
    let top = format!("llama-{tag}");
    let n: u64 = tag.trim_start_matches('b').parse().unwrap_or(0);
    let header = |kind: tar::EntryType, size: u64, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(1_767_225_600);
        h
    };
    let file = |t: &mut tar::Builder<_>, name: &str, data: &[u8]| -> io::Result<()> {
        let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o755);
        t.append_data(&mut h, format!("{top}/{name}"), data)
    };
    let link = |t: &mut tar::Builder<GzEncoder<BufWriter<File>>>, name: &str, target: &str| {
        let mut h = header(tar::EntryType::Symlink, 0, 0o777);
        t.append_link(&mut h, format!("{top}/{name}"), target)
    };
    file(&mut t, "LICENSE", &dummy("LICENSE"))?;
    for (base, version) in [
        ("llama", format!("0.0.{n}")),
        ("ggml", "0.9.4".into()),
        ("ggml-base", "0.9.4".into()),
    ] {
        let (real, mid, short) = match layout {
            Layout::MacOs => (
                format!("lib{base}.{version}.dylib"),
                format!("lib{base}.0.dylib"),
                format!("lib{base}.dylib"),
            ),
            _ => (
                format!("lib{base}.so.{version}"),
                format!("lib{base}.so.0"),
                format!("lib{base}.so"),
            ),
        };
        file(&mut t, &real, &dummy(&real))?;
        link(&mut t, &mid, &real)?;
        link(&mut t, &short, &mid)?;
    }
    let cpu = match layout {
        Layout::MacOs => "libggml-cpu.dylib",
        _ => "libggml-cpu.so",
    };
    file(&mut t, cpu, &dummy(cpu))?;
    let mut h = header(tar::EntryType::Regular, pad, 0o755);
    t.append_data(
        &mut h,
        format!("{top}/llama-server"),
        Read::take(SplitMix64::new(seed), pad),
    )?;
    let gz = t.into_inner()?;
    let mut w = gz.finish()?;
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()
}

fn write_zip(path: &Path, pad: u64, seed: u64) -> io::Result<()> {
    let mut z = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, File::create(path)?));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(pad >= 0xffff_fff0);
    for name in [
        "llama.dll",
        "ggml.dll",
        "ggml-base.dll",
        "ggml-cpu-haswell.dll",
        "LICENSE",
    ] {
        z.start_file(name, opts).map_err(io::Error::other)?;
        z.write_all(&dummy(name))?;
    }
    z.start_file("llama-server.exe", opts)
        .map_err(io::Error::other)?;
    io::copy(&mut Read::take(SplitMix64::new(seed), pad), &mut z)?;
    let mut w = z.finish().map_err(io::Error::other)?;
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()
}
