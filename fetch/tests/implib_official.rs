//! Import libraries made from the real DLLs of an official llama.cpp Windows release
//! (b10605, x86-64 CPU; from PyPI, verified by digest), read back with the `object` crate: every
//! named export must be importable, with its kind, from the right DLL.

use std::collections::BTreeMap;
use std::fs;

use llama_prebuilt_fetch::implib::{self, ExportKind};
use llama_prebuilt_fetch::libdir::LibOs;
use llama_prebuilt_fetch::linking;
use llama_prebuilt_test_support::official;
use object::Architecture;
use object::read::archive::{ArchiveFile, ArchiveKind};
use object::read::coff::{ImportFile, ImportName, ImportType};

const DLLS: &[&str] = &[
    "llama.dll",
    "ggml.dll",
    "ggml-base.dll",
    "ggml-rpc.dll",
    "mtmd.dll",
];

#[test]
fn every_export_of_the_official_dlls_is_importable_from_its_dll() {
    let zip = official::win_cpu_x64_b10605().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let from = tmp.path().join("release");
    let to = tmp.path().join("staged");
    official::extract_entries(&zip, DLLS, &from).unwrap();

    // The hook: staging the Windows lib dir writes one `.lib` per DLL.
    let staged = linking::stage(&from, &to, LibOs::Windows).unwrap();
    let mut counts = BTreeMap::new();
    for dll_name in DLLS {
        let stem = dll_name.strip_suffix(".dll").unwrap();
        let lib_path = to.join(format!("{stem}.lib"));
        assert!(staged.contains(&lib_path), "{} staged", lib_path.display());
        let lib = fs::read(&lib_path).unwrap();
        let dll = implib::read_exports(&fs::read(to.join(dll_name)).unwrap()).unwrap();
        assert_eq!(dll.machine, 0x8664, "{dll_name}");
        assert_eq!(dll.name.as_deref(), Some(*dll_name));
        assert!(!dll.exports.is_empty(), "{dll_name} exports nothing?");

        let archive = ArchiveFile::parse(&*lib).unwrap();
        assert_eq!(archive.kind(), ArchiveKind::Coff);
        let symbols: Vec<Vec<u8>> = archive
            .symbols()
            .unwrap()
            .unwrap()
            .map(|s| s.unwrap().name().to_vec())
            .collect();
        assert!(
            symbols.windows(2).all(|w| w[0] < w[1]),
            "{dll_name}: symbols sorted"
        );
        let mut imports = BTreeMap::new();
        for member in archive.members() {
            let data = member.unwrap().data(&*lib).unwrap();
            if let Ok(import) = ImportFile::parse(data) {
                assert_eq!(import.architecture(), Architecture::X86_64);
                assert_eq!(import.dll(), dll_name.as_bytes());
                assert_eq!(import.import(), ImportName::Name(import.symbol()));
                imports.insert(import.symbol().to_vec(), import.import_type());
            }
        }
        let (mut code, mut data) = (0, 0);
        for export in &dll.exports {
            let name = export.name.as_bytes();
            let imp = [b"__imp_", name].concat();
            assert!(
                symbols.binary_search(&imp).is_ok(),
                "{dll_name}: {}",
                export.name
            );
            match export.kind {
                ExportKind::Code => {
                    code += 1;
                    assert_eq!(
                        imports.get(name),
                        Some(&ImportType::Code),
                        "{}",
                        export.name
                    );
                    assert!(
                        symbols.binary_search(&name.to_vec()).is_ok(),
                        "{}",
                        export.name
                    );
                }
                ExportKind::Data => {
                    data += 1;
                    assert_eq!(
                        imports.get(name),
                        Some(&ImportType::Data),
                        "{}",
                        export.name
                    );
                    assert!(
                        symbols.binary_search(&name.to_vec()).is_err(),
                        "{}",
                        export.name
                    );
                }
            }
        }
        assert_eq!(
            imports.len(),
            dll.exports.len(),
            "{dll_name}: one member per export"
        );
        for name in [
            format!("__IMPORT_DESCRIPTOR_{stem}"),
            "__NULL_IMPORT_DESCRIPTOR".to_owned(),
            format!("\x7f{stem}_NULL_THUNK_DATA"),
        ] {
            assert!(
                symbols.binary_search(&name.into_bytes()).is_ok(),
                "{dll_name}"
            );
        }
        counts.insert(*dll_name, (code, data));
    }
    eprintln!("exports (code, data) per DLL: {counts:?}");
    // The C API the bindings link against is there.
    let llama = fs::read(to.join("llama.lib")).unwrap();
    for symbol in [
        "__imp_llama_backend_init",
        "llama_model_load_from_file",
        "llama_decode",
    ] {
        assert!(
            llama.windows(symbol.len()).any(|w| w == symbol.as_bytes()),
            "llama.lib lacks {symbol}"
        );
    }
    let base = fs::read(to.join("ggml-base.lib")).unwrap();
    assert!(base.windows(10).any(|w| w == b"ggml_init\0"));
    if let Some(dir) = std::env::var_os("LLAMA_PREBUILT_KEEP_IMPLIBS") {
        // For inspection with other tools (llvm-nm, llvm-readobj, a linker).
        fs::create_dir_all(&dir).unwrap();
        for entry in fs::read_dir(&to).unwrap() {
            let entry = entry.unwrap();
            fs::copy(
                entry.path(),
                std::path::Path::new(&dir).join(entry.file_name()),
            )
            .unwrap();
        }
    }
}
