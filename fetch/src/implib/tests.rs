//! Synthetic PE images (built here, byte by byte), read back, turned into import libraries and
//! cross-checked with the `object` crate as an independent reader.

use super::pe::{MACHINE_AMD64, MACHINE_ARM64};
use super::*;

use object::read::archive::{ArchiveFile, ArchiveKind};
use object::read::coff::{CoffFile, ImportFile, ImportName, ImportType};
use object::{Architecture, Object, ObjectSection, ObjectSymbol};

/// What a synthetic DLL exports.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// Points into `.text`.
    Code,
    /// Points into `.data`.
    Data,
    /// A forwarder string `other.dll.<name>` inside the export directory.
    Forward,
}

const TEXT_RVA: u32 = 0x1000;
const RDATA_RVA: u32 = 0x2000;
const DATA_RVA: u32 = 0x3000;

/// A minimal PE image (PE32+ unless `pe32`) for `machine` named `dll_name`, exporting
/// `exports` (sorted by name here, as linkers do), plus one ordinal-only export.
pub(crate) fn synthetic_dll_with(
    machine: u16,
    pe32: bool,
    dll_name: &str,
    exports: &[(&str, Kind)],
) -> Vec<u8> {
    let mut exports = exports.to_vec();
    exports.sort_by(|a, b| a.0.cmp(b.0));
    let n = exports.len() as u32;
    let addresses = n + 1; // one extra, exported by ordinal only
    // .rdata layout: directory, address table, name pointers, ordinals, strings.
    let eat = 40;
    let npt = eat + 4 * addresses;
    let ot = npt + 4 * n;
    let mut strings = Vec::new();
    let strings_at = ot + 2 * n;
    let mut push_str = |s: &str| {
        let at = strings_at + strings.len() as u32;
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        at
    };
    let dll_name_at = push_str(dll_name);
    let name_at: Vec<u32> = exports.iter().map(|(name, _)| push_str(name)).collect();
    let forward_at: Vec<Option<u32>> = exports
        .iter()
        .map(|(name, kind)| {
            matches!(kind, Kind::Forward).then(|| push_str(&format!("other.{name}")))
        })
        .collect();
    let dir_size = strings_at + strings.len() as u32;
    let mut rdata = Vec::new();
    let le32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    // Export directory.
    le32(&mut rdata, 0); // Characteristics
    le32(&mut rdata, 0); // TimeDateStamp
    le32(&mut rdata, 0); // versions
    le32(&mut rdata, RDATA_RVA + dll_name_at);
    le32(&mut rdata, 1); // OrdinalBase
    le32(&mut rdata, addresses);
    le32(&mut rdata, n);
    le32(&mut rdata, RDATA_RVA + eat);
    le32(&mut rdata, RDATA_RVA + npt);
    le32(&mut rdata, RDATA_RVA + ot);
    // Address table: export i at index i (in reverse, so ordinals and hints differ).
    let mut table = vec![0u32; addresses as usize];
    for (i, (_, kind)) in exports.iter().enumerate() {
        let slot = n as usize - 1 - i;
        table[slot] = match kind {
            Kind::Code => TEXT_RVA + 16 * i as u32,
            Kind::Data => DATA_RVA + 8 * i as u32,
            Kind::Forward => RDATA_RVA + forward_at[i].unwrap(),
        };
    }
    table[n as usize] = TEXT_RVA + 0x100; // ordinal-only
    for t in table {
        le32(&mut rdata, t);
    }
    for at in &name_at {
        le32(&mut rdata, RDATA_RVA + at);
    }
    for i in 0..n {
        rdata.extend_from_slice(&((n - 1 - i) as u16).to_le_bytes());
    }
    rdata.extend_from_slice(&strings);
    assert_eq!(rdata.len() as u32, dir_size);

    let optional_size: u16 = if pe32 { 96 + 16 * 8 } else { 112 + 16 * 8 };
    let sections: [(&[u8; 8], u32, u32, Vec<u8>); 3] = [
        (b".text\0\0\0", TEXT_RVA, 0x6000_0020, vec![0xC3; 0x200]),
        (b".rdata\0\0", RDATA_RVA, 0x4000_0040, rdata),
        (b".data\0\0\0", DATA_RVA, 0xC000_0040, vec![0; 0x100]),
    ];
    let mut img = vec![0u8; 0x40];
    img[0..2].copy_from_slice(b"MZ");
    img[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    img.extend_from_slice(b"PE\0\0");
    img.extend_from_slice(&machine.to_le_bytes());
    img.extend_from_slice(&(sections.len() as u16).to_le_bytes());
    img.extend_from_slice(&[0; 12]); // timestamp, symbol table, symbol count
    img.extend_from_slice(&optional_size.to_le_bytes());
    img.extend_from_slice(&0x2022u16.to_le_bytes()); // DLL | executable | large address aware
    let mut opt = vec![0u8; optional_size as usize];
    opt[0..2].copy_from_slice(&(if pe32 { 0x10bu16 } else { 0x20b }).to_le_bytes());
    let (count_at, dirs_at) = if pe32 { (92, 96) } else { (108, 112) };
    opt[count_at..count_at + 4].copy_from_slice(&16u32.to_le_bytes());
    opt[dirs_at..dirs_at + 4].copy_from_slice(&RDATA_RVA.to_le_bytes());
    opt[dirs_at + 4..dirs_at + 8].copy_from_slice(&dir_size.to_le_bytes());
    img.extend_from_slice(&opt);
    let headers_end = img.len() + 40 * sections.len();
    let mut raw_at = (headers_end + 0x1ff) & !0x1ff;
    let mut raw = Vec::new();
    for (name, rva, characteristics, data) in &sections {
        let size = (data.len() + 0x1ff) & !0x1ff;
        img.extend_from_slice(*name);
        img.extend_from_slice(&(data.len() as u32).to_le_bytes());
        img.extend_from_slice(&rva.to_le_bytes());
        img.extend_from_slice(&(size as u32).to_le_bytes());
        img.extend_from_slice(&(raw_at as u32).to_le_bytes());
        img.extend_from_slice(&[0; 12]);
        img.extend_from_slice(&characteristics.to_le_bytes());
        raw.push((raw_at, data.clone()));
        raw_at += size;
    }
    img.resize(raw_at, 0);
    for (at, data) in raw {
        img[at..at + data.len()].copy_from_slice(&data);
    }
    img
}

/// An x86-64 `dll_name` exporting `names` as functions.
pub(crate) fn synthetic_dll(dll_name: &str, names: &[&str]) -> Vec<u8> {
    let exports: Vec<_> = names.iter().map(|n| (*n, Kind::Code)).collect();
    synthetic_dll_with(MACHINE_AMD64, false, dll_name, &exports)
}

const SAMPLE: &[(&str, Kind)] = &[
    ("llama_backend_init", Kind::Code),
    ("llama_model_load_from_file", Kind::Code),
    (
        "llama_a_rather_long_exported_function_name_for_the_string_table",
        Kind::Code,
    ),
    ("llama_some_table", Kind::Data),
    ("llama_forwarded", Kind::Forward),
    ("?mangled@@YAXXZ", Kind::Code),
];

#[test]
fn reads_machine_names_hints_and_kinds() {
    let image = synthetic_dll_with(MACHINE_AMD64, false, "llama.dll", SAMPLE);
    let dll = read_exports(&image).unwrap();
    assert_eq!(dll.machine, MACHINE_AMD64);
    assert_eq!(dll.name.as_deref(), Some("llama.dll"));
    // Name pointer table order (sorted); the ordinal-only export is not listed.
    let mut expected: Vec<_> = SAMPLE.to_vec();
    expected.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(dll.exports.len(), expected.len());
    for (i, (export, (name, kind))) in dll.exports.iter().zip(&expected).enumerate() {
        assert_eq!(export.name, *name);
        assert_eq!(export.hint as usize, i);
        let want = match kind {
            Kind::Data => ExportKind::Data,
            Kind::Code | Kind::Forward => ExportKind::Code,
        };
        assert_eq!(export.kind, want, "{name}");
    }
    // PE32 headers are read too.
    let pe32 = read_exports(&synthetic_dll_with(0x14c, true, "x.dll", SAMPLE)).unwrap();
    assert_eq!(pe32.machine, 0x14c);
    assert_eq!(pe32.exports, dll.exports);
}

/// The archive's symbols per the first linker member (big-endian offsets, member order),
/// read independently of `object` (which reads the second).
fn first_linker_member(lib: &[u8]) -> Vec<(Vec<u8>, u32)> {
    assert_eq!(&lib[..8], b"!<arch>\n");
    assert_eq!(&lib[8..24], b"/               ");
    let size: usize = std::str::from_utf8(&lib[56..66])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let body = &lib[68..68 + size];
    let count = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
    let offsets: Vec<u32> = (0..count)
        .map(|i| u32::from_be_bytes(body[4 + 4 * i..8 + 4 * i].try_into().unwrap()))
        .collect();
    let names: Vec<Vec<u8>> = body[4 + 4 * count..]
        .split(|&b| b == 0)
        .take(count)
        .map(<[u8]>::to_vec)
        .collect();
    names.into_iter().zip(offsets).collect()
}

/// Checks `lib` as an import library of `dll_name` for `dll` with `object` and by hand.
fn check_import_library(lib: &[u8], dll_name: &str, dll: &DllExports) {
    let stem = dll_name.rsplit_once('.').map_or(dll_name, |(s, _)| s);
    let arch = match dll.machine {
        MACHINE_AMD64 => Architecture::X86_64,
        MACHINE_ARM64 => Architecture::Aarch64,
        other => panic!("machine {other:#x}"),
    };
    let archive = ArchiveFile::parse(lib).unwrap();
    assert_eq!(archive.kind(), ArchiveKind::Coff);
    // Symbols per the second linker member: sorted, each naming a member that defines it.
    let symbols: Vec<(Vec<u8>, u64)> = archive
        .symbols()
        .unwrap()
        .unwrap()
        .map(|s| {
            let s = s.unwrap();
            (s.name().to_vec(), s.offset().0)
        })
        .collect();
    assert!(
        symbols.windows(2).all(|w| w[0].0 < w[1].0),
        "second linker member sorted, unique"
    );
    let mut first = first_linker_member(lib);
    assert!(
        first.windows(2).all(|w| w[0].1 <= w[1].1),
        "first linker member in member order"
    );
    first.sort();
    let second: Vec<(Vec<u8>, u32)> = symbols
        .iter()
        .map(|(n, o)| (n.clone(), *o as u32))
        .collect();
    assert_eq!(
        first, second,
        "both linker members list the same symbols at the same members"
    );

    let mut defined: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut imports = std::collections::BTreeMap::new();
    let mut objects = 0;
    for member in archive.members() {
        let member = member.unwrap();
        assert_eq!(member.name(), dll_name.as_bytes());
        let data = member.data(lib).unwrap();
        let offset = member.file_range().0 - 60;
        if data.starts_with(&[0, 0, 0xFF, 0xFF]) {
            let import = ImportFile::parse(data).unwrap();
            assert_eq!(import.architecture(), arch);
            assert_eq!(import.dll(), dll_name.as_bytes());
            let symbol = String::from_utf8(import.symbol().to_vec()).unwrap();
            assert_eq!(import.import(), ImportName::Name(symbol.as_bytes()));
            defined.push((format!("__imp_{symbol}").into_bytes(), offset));
            if import.import_type() == ImportType::Code {
                defined.push((symbol.clone().into_bytes(), offset));
            }
            imports.insert(symbol, import.import_type());
        } else {
            objects += 1;
            let coff = CoffFile::<&[u8]>::parse(data).unwrap();
            assert_eq!(coff.architecture(), arch);
            for sym in coff.symbols() {
                if sym.is_global() && !sym.is_undefined() {
                    defined.push((sym.name_bytes().unwrap().to_vec(), offset));
                }
            }
        }
    }
    assert_eq!(objects, 3);
    defined.sort();
    assert_eq!(
        defined, symbols,
        "the symbol tables list exactly what the members define"
    );
    for name in [
        format!("__IMPORT_DESCRIPTOR_{stem}"),
        "__NULL_IMPORT_DESCRIPTOR".to_owned(),
        format!("\x7f{stem}_NULL_THUNK_DATA"),
    ] {
        assert!(
            symbols.iter().any(|(s, _)| s == name.as_bytes()),
            "{name:?}"
        );
    }
    assert_eq!(imports.len(), dll.exports.len());
    for export in &dll.exports {
        let want = match export.kind {
            ExportKind::Code => ImportType::Code,
            ExportKind::Data => ImportType::Data,
        };
        assert_eq!(imports.get(&export.name), Some(&want), "{}", export.name);
    }
}

#[test]
fn import_library_round_trips_through_object() {
    for machine in [MACHINE_AMD64, MACHINE_ARM64] {
        let image = synthetic_dll_with(machine, false, "llama.dll", SAMPLE);
        let dll = read_exports(&image).unwrap();
        let lib = import_library("llama.dll", &dll).unwrap();
        check_import_library(&lib, "llama.dll", &dll);
        assert_eq!(
            lib,
            import_library("llama.dll", &dll).unwrap(),
            "reproducible"
        );
    }
}

#[test]
fn the_descriptor_relocations_use_the_machines_rva_type() {
    for (machine, reloc) in [(MACHINE_AMD64, 3u16), (MACHINE_ARM64, 2)] {
        let dll = read_exports(&synthetic_dll_with(machine, false, "ggml.dll", SAMPLE)).unwrap();
        let lib = import_library("ggml.dll", &dll).unwrap();
        let archive = ArchiveFile::parse(&*lib).unwrap();
        let first = archive.members().next().unwrap().unwrap();
        let coff = CoffFile::<&[u8]>::parse(first.data(&*lib).unwrap()).unwrap();
        let idata2 = coff.section_by_index(object::SectionIndex(1)).unwrap();
        let got: Vec<(u64, u16)> = idata2
            .relocations()
            .map(|(at, r)| match r.flags() {
                object::RelocationFlags::Coff { typ } => (at, typ.0),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got, [(12, reloc), (0, reloc), (16, reloc)]);
        // The DLL name is in `.idata$6`, NUL-terminated.
        let idata6 = coff.section_by_index(object::SectionIndex(2)).unwrap();
        assert_eq!(idata6.data().unwrap(), b"ggml.dll\0");
    }
}

#[test]
fn a_long_dll_name_goes_to_the_longnames_member() {
    let name = "ggml-cpu-sapphirerapids.dll";
    let dll = read_exports(&synthetic_dll_with(MACHINE_AMD64, false, name, SAMPLE)).unwrap();
    let lib = import_library(name, &dll).unwrap();
    assert!(lib.windows(4).any(|w| w == b"\n// "), "a `//` member");
    check_import_library(&lib, name, &dll);
}

#[test]
fn unsupported_machines_and_bad_names_are_errors() {
    let dll = read_exports(&synthetic_dll_with(0x14c, true, "x.dll", SAMPLE)).unwrap();
    assert_eq!(
        import_library("x.dll", &dll),
        Err(ImplibError::UnsupportedMachine(0x14c))
    );
    let dll = read_exports(&synthetic_dll("x.dll", &["f"])).unwrap();
    assert!(matches!(
        import_library("", &dll),
        Err(ImplibError::BadName(_))
    ));
    assert!(matches!(
        import_library("a\0.dll", &dll),
        Err(ImplibError::BadName(_))
    ));
}

#[test]
fn malformed_images_are_errors_not_panics() {
    let image = synthetic_dll_with(MACHINE_AMD64, false, "llama.dll", SAMPLE);
    // Every truncation: up to the end of `.rdata` (raw data at 0x400..0x600, holding the
    // export data) each one is an error; cutting `.data` loses nothing the reader needs.
    assert_eq!(&image[0x400..0x404], &[0, 0, 0, 0]);
    assert!(read_exports(&image[..0x600]).is_ok());
    for len in 0..image.len() {
        if len < 0x600 {
            assert!(read_exports(&image[..len]).is_err(), "truncated at {len}");
        } else {
            let _ = read_exports(&image[..len]);
        }
    }
    // Garbage, and single corrupted bytes/words anywhere in the headers and export data.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for len in [0, 1, 2, 64, 65, 300, 4096] {
        let garbage: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        assert!(read_exports(&garbage).is_err());
        let mut with_magic = garbage.clone();
        if len >= 0x40 {
            with_magic[..2].copy_from_slice(b"MZ");
            with_magic[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        }
        let _ = read_exports(&with_magic);
    }
    for at in (0..image.len()).filter(|&i| i < 0x200 || (0x400..0x600).contains(&i)) {
        for value in [0x00u8, 0xFF, 0x7F, 0x80] {
            let mut bad = image.clone();
            bad[at] = value;
            if let Ok(dll) = read_exports(&bad) {
                let _ = import_library("llama.dll", &dll);
            }
        }
        let mut bad = image.clone();
        let word = (next() as u32).to_le_bytes();
        let end = (at + 4).min(bad.len());
        bad[at..end].copy_from_slice(&word[..end - at]);
        let _ = read_exports(&bad);
    }
    // Specific breakages give the expected errors.
    let mut no_exports = image.clone();
    no_exports[0x58 + 112..0x58 + 120].fill(0);
    assert_eq!(read_exports(&no_exports), Err(ImplibError::NoExports));
    let mut bad_magic = image;
    bad_magic[0x58] = 0x99;
    assert!(matches!(
        read_exports(&bad_magic),
        Err(ImplibError::Malformed(_))
    ));
}

#[test]
fn write_for_dir_makes_the_missing_libraries_and_rewrites_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(
        dir.join("llama.dll"),
        synthetic_dll("llama.dll", &["llama_init"]),
    )
    .unwrap();
    fs::write(
        dir.join("GGML.DLL"),
        synthetic_dll("ggml.dll", &["ggml_init"]),
    )
    .unwrap();
    fs::write(
        dir.join("ggml-base.dll"),
        synthetic_dll("ggml-base.dll", &["ggml_x"]),
    )
    .unwrap();
    fs::write(dir.join("ggml-base.lib"), b"brought by the archive").unwrap();
    fs::write(
        dir.join("ggml-cpu-x64.dll"),
        synthetic_dll("ggml-cpu-x64.dll", &["f"]),
    )
    .unwrap();
    let written = write_for_dir(dir, &["ggml-base.lib".to_owned()]).unwrap();
    assert_eq!(written, [dir.join("llama.lib"), dir.join("ggml.lib")]);
    assert_eq!(
        fs::read(dir.join("ggml-base.lib")).unwrap(),
        b"brought by the archive"
    );
    assert!(!dir.join("ggml-cpu-x64.lib").exists());
    let lib = fs::read(dir.join("ggml.lib")).unwrap();
    let dll = read_exports(&fs::read(dir.join("GGML.DLL")).unwrap()).unwrap();
    // The loader is told the file's own name.
    check_import_library(&lib, "GGML.DLL", &dll);
    // Up to date: nothing is written again.
    assert!(!write_import_library(&dir.join("llama.dll"), &dir.join("llama.lib")).unwrap());
    // A 32-bit x86 DLL gets no import library (and is no error).
    fs::write(
        dir.join("ggml-rpc.dll"),
        synthetic_dll_with(0x14c, true, "ggml-rpc.dll", &[("f", Kind::Code)]),
    )
    .unwrap();
    let again = write_for_dir(dir, &["ggml-base.lib".to_owned()]).unwrap();
    assert_eq!(again, written);
    assert!(!dir.join("ggml-rpc.lib").exists());
    // A broken DLL is an error naming it.
    fs::write(dir.join("mtmd.dll"), b"MZ but nothing else").unwrap();
    let err = write_for_dir(dir, &[]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("mtmd.dll"), "{err}");
}

/// Where LLVM's own import library writer is installed (CI images often have it), the output
/// must match it member for member: the same three objects byte for byte, the same import
/// members except the hint (llvm-dlltool writes 0 when a `.def` gives no ordinal).
#[test]
fn matches_llvm_dlltool_where_installed() {
    let tool = "llvm-dlltool";
    if std::process::Command::new(tool)
        .arg("--help")
        .output()
        .is_err()
    {
        eprintln!("{tool} not found: comparison skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (machine, flag) in [(MACHINE_AMD64, "i386:x86-64"), (MACHINE_ARM64, "arm64")] {
        for name in ["llama.dll", "ggml-cpu-sapphirerapids.dll"] {
            let dll = read_exports(&synthetic_dll_with(machine, false, name, SAMPLE)).unwrap();
            let mut def = format!("LIBRARY {name}\nEXPORTS\n");
            for e in &dll.exports {
                let data = if e.kind == ExportKind::Data {
                    " DATA"
                } else {
                    ""
                };
                def.push_str(&format!("{}{data}\n", e.name));
            }
            let def_path = tmp.path().join("x.def");
            let reference = tmp.path().join("x.lib");
            fs::write(&def_path, def).unwrap();
            let out = std::process::Command::new(tool)
                .args(["-m", flag, "-d"])
                .arg(&def_path)
                .arg("-l")
                .arg(&reference)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let reference = fs::read(&reference).unwrap();
            let ours = import_library(name, &dll).unwrap();
            let members = |lib: &[u8]| -> Vec<Vec<u8>> {
                ArchiveFile::parse(lib)
                    .unwrap()
                    .members()
                    .map(|m| m.unwrap().data(lib).unwrap().to_vec())
                    .collect()
            };
            let (theirs, mine) = (members(&reference), members(&ours));
            assert_eq!(theirs.len(), mine.len(), "{flag} {name}");
            assert_eq!(theirs[..3], mine[..3], "{flag} {name}: descriptor objects");
            let without_hint = |m: &[u8]| [&m[..16], &m[18..]].concat();
            let mut a: Vec<_> = theirs[3..].iter().map(|m| without_hint(m)).collect();
            let mut b: Vec<_> = mine[3..].iter().map(|m| without_hint(m)).collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{flag} {name}: import members");
        }
    }
}

/// Where GNU ld with the PE32+ emulation is installed (`ld -m i386pep`, as in
/// x86_64-w64-mingw32-ld; Debian's binutils has it), a program calling into two DLLs links
/// against the generated libraries and its import table names the right DLLs and symbols.
///
/// GNU ld 2.40 aborts ("internal error ... in compare_section", sourceware bug 30079, fixed
/// after 2.40) as soon as two imports of one DLL come from an MS-style import library; it does
/// the same with llvm-dlltool's libraries. There the check falls back to one import per DLL.
#[test]
fn gnu_ld_links_against_them_where_installed() {
    use super::archive::{Reloc, SectionSpec, Symbol, coff_object};
    let supported = std::process::Command::new("ld")
        .arg("-V")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("i386pep"));
    if !supported {
        eprintln!("no GNU ld with the i386pep emulation: link check skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(
        dir.join("llama.dll"),
        synthetic_dll("llama.dll", &["llama_backend_init", "llama_decode"]),
    )
    .unwrap();
    let ggml = synthetic_dll_with(
        MACHINE_AMD64,
        false,
        "ggml.dll",
        &[
            ("ggml_backend_load_all", Kind::Code),
            ("ggml_table", Kind::Data),
        ],
    );
    fs::write(dir.join("ggml.dll"), ggml).unwrap();
    write_for_dir(dir, &[]).unwrap();

    // `start` calls or loads each of `uses` (a direct call goes through the import thunk,
    // `__imp_` symbols are loaded with a RIP-relative mov), then returns.
    let link = |uses: &[&str]| {
        let mut code = Vec::new();
        let mut relocs = Vec::new();
        let mut symbols = vec![Symbol {
            name: b"start".to_vec(),
            section: 1,
            class: 2,
        }];
        for (i, name) in uses.iter().enumerate() {
            let opcode: &[u8] = if name.starts_with("__imp_") {
                &[0x48, 0x8B, 0x05] // mov rax, [rip+disp32]
            } else {
                &[0xE8] // call rel32
            };
            code.extend_from_slice(opcode);
            let offset = code.len() as u32;
            code.extend_from_slice(&[0; 4]);
            // IMAGE_REL_AMD64_REL32
            relocs.push(Reloc {
                offset,
                symbol: i as u32 + 1,
                kind: 4,
            });
            symbols.push(Symbol {
                name: name.as_bytes().to_vec(),
                section: 0,
                class: 2,
            });
        }
        code.push(0xC3);
        let text = SectionSpec {
            name: b".text\0\0\0",
            characteristics: 0x6050_0020,
            data: code,
            relocs,
        };
        fs::write(
            dir.join("main.obj"),
            coff_object(MACHINE_AMD64, &[text], &symbols),
        )
        .unwrap();
        std::process::Command::new("ld")
            .current_dir(dir)
            .args([
                "-m",
                "i386pep",
                "--entry=start",
                "-o",
                "main.exe",
                "main.obj",
                "-L.",
            ])
            .args(["-lllama", "-lggml"])
            .output()
            .unwrap()
    };
    let mut uses = vec![
        "llama_backend_init",
        "llama_decode",
        "__imp_ggml_table",
        "__imp_ggml_backend_load_all",
    ];
    let mut out = link(&uses);
    if String::from_utf8_lossy(&out.stderr).contains("compare_section") {
        eprintln!("GNU ld with bug 30079: one import per DLL only");
        uses = vec!["llama_decode", "__imp_ggml_table"];
        out = link(&uses);
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exe = fs::read(dir.join("main.exe")).unwrap();
    let pe = object::read::pe::PeFile64::parse(&*exe).unwrap();
    let mut imports: Vec<(String, String)> = pe
        .imports()
        .unwrap()
        .map(|i| {
            let i = i.unwrap();
            let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            match i.name() {
                object::read::NameOrOrdinal::Name(name) => (s(i.library()), s(name)),
                other => panic!("imported by ordinal: {other:?}"),
            }
        })
        .collect();
    imports.sort();
    let mut want: Vec<(String, String)> = uses
        .iter()
        .map(|u| {
            let name = u.trim_start_matches("__imp_");
            let dll = if name.starts_with("llama") {
                "llama.dll"
            } else {
                "ggml.dll"
            };
            (dll.to_owned(), name.to_owned())
        })
        .collect();
    want.sort();
    assert_eq!(imports, want);
}
