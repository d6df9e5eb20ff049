//! Writing an import library: an `ar` archive in the Microsoft flavour ("PE Format"
//! specification, "Archive (Library) File Format" and "Import Library Format") holding
//!
//! 1. the first linker member (`/`: big-endian symbol count and member offsets, then the
//!    names, in member order);
//! 2. the second linker member (`/`: little-endian member offsets, 1-based member indices per
//!    symbol, the names sorted);
//! 3. the longnames member (`//`) when a member name does not fit the 16-byte header field;
//! 4. three small COFF objects that make the DLL's import directory entry, as link.exe and
//!    lld/llvm-dlltool write them: `__IMPORT_DESCRIPTOR_<dll>` (section `.idata$2`, with
//!    relocations to the DLL name in `.idata$6` and to the `.idata$4`/`.idata$5` tables),
//!    `__NULL_IMPORT_DESCRIPTOR` (`.idata$3`, the terminating entry) and
//!    `\x7f<dll>_NULL_THUNK_DATA` (the zero entries that end the lookup and address tables);
//! 5. one short import member per export: the 20-byte `IMPORT_OBJECT_HEADER` then
//!    `symbol\0dll\0`. The linker synthesises the thunk and `__imp_` pointer from it.
//!
//! Every timestamp is 0, so the output depends only on the DLL.

use super::ImplibError;
use super::pe::{DllExports, ExportKind, MACHINE_AMD64, MACHINE_ARM64};

const SCN_IDATA_2: u32 = 0xC030_0040; // initialized data, 4-byte aligned, read/write
const SCN_IDATA_6: u32 = 0xC020_0040; // initialized data, 2-byte aligned, read/write
const SCN_THUNK_64: u32 = 0xC040_0040; // initialized data, 8-byte aligned, read/write

const SYM_CLASS_EXTERNAL: u8 = 2;
const SYM_CLASS_STATIC: u8 = 3;
const SYM_CLASS_SECTION: u8 = 104;

const IMPORT_CODE: u16 = 0;
const IMPORT_DATA: u16 = 1;
/// `IMPORT_OBJECT_NAME`: the import name is the symbol name as is (no x86 undecoration).
const IMPORT_NAME: u16 = 1;

/// The `IMAGE_REL_*_ADDR32NB` relocation (an RVA) of a supported machine.
fn addr32nb(machine: u16) -> Result<u16, ImplibError> {
    match machine {
        MACHINE_AMD64 => Ok(3),
        MACHINE_ARM64 => Ok(2),
        other => Err(ImplibError::UnsupportedMachine(other)),
    }
}

/// The import library of `dll_name` (the file name the loader will look up, `llama.dll`)
/// exporting `dll.exports`, for `dll.machine`.
///
/// # Errors
///
/// [`ImplibError::UnsupportedMachine`] for machines other than x86-64 and ARM64 (32-bit x86
/// would need its name-decoration rules); [`ImplibError::BadName`] for a DLL or export name
/// that cannot be written (empty, or holding a NUL byte).
pub fn import_library(dll_name: &str, dll: &DllExports) -> Result<Vec<u8>, ImplibError> {
    let reloc = addr32nb(dll.machine)?;
    if dll_name.is_empty() || dll_name.contains('\0') {
        return Err(ImplibError::BadName(dll_name.to_owned()));
    }
    // `llama.dll` → `llama`, as in `__IMPORT_DESCRIPTOR_llama`.
    let stem = match dll_name.rfind('.') {
        Some(dot) if dot > 0 => &dll_name[..dot],
        _ => dll_name,
    };
    // Members are indexed by 16 bits in the second linker member (3 objects + 1 per export).
    if dll.exports.len() > usize::from(u16::MAX) - 3 {
        return Err(ImplibError::TooManyExports(dll.exports.len()));
    }
    let mut members: Vec<(Vec<u8>, Vec<Vec<u8>>)> = vec![
        (
            import_descriptor(dll.machine, reloc, dll_name, stem),
            vec![format!("__IMPORT_DESCRIPTOR_{stem}").into_bytes()],
        ),
        (
            null_import_descriptor(dll.machine),
            vec![b"__NULL_IMPORT_DESCRIPTOR".to_vec()],
        ),
        (
            null_thunk(dll.machine, stem),
            vec![format!("\x7f{stem}_NULL_THUNK_DATA").into_bytes()],
        ),
    ];
    for export in &dll.exports {
        if export.name.is_empty() || export.name.contains('\0') {
            return Err(ImplibError::BadName(export.name.clone()));
        }
        let imp = format!("__imp_{}", export.name).into_bytes();
        let (kind, symbols) = match export.kind {
            ExportKind::Code => (IMPORT_CODE, vec![imp, export.name.clone().into_bytes()]),
            ExportKind::Data => (IMPORT_DATA, vec![imp]),
        };
        members.push((
            short_import(dll.machine, export.hint, kind, &export.name, dll_name),
            symbols,
        ));
    }
    Ok(write_archive(dll_name, &members))
}

/// `IMPORT_OBJECT_HEADER` followed by `symbol\0dll\0`.
fn short_import(machine: u16, hint: u16, kind: u16, symbol: &str, dll: &str) -> Vec<u8> {
    let size_of_data = (symbol.len() + 1 + dll.len() + 1) as u32;
    let mut out = Vec::with_capacity(20 + size_of_data as usize);
    out.extend_from_slice(&0u16.to_le_bytes()); // Sig1: IMAGE_FILE_MACHINE_UNKNOWN
    out.extend_from_slice(&0xFFFFu16.to_le_bytes()); // Sig2
    out.extend_from_slice(&0u16.to_le_bytes()); // Version
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // TimeDateStamp
    out.extend_from_slice(&size_of_data.to_le_bytes());
    out.extend_from_slice(&hint.to_le_bytes()); // Ordinal/Hint
    out.extend_from_slice(&(kind | (IMPORT_NAME << 2)).to_le_bytes()); // Type, NameType
    out.extend_from_slice(symbol.as_bytes());
    out.push(0);
    out.extend_from_slice(dll.as_bytes());
    out.push(0);
    out
}

pub(super) struct Reloc {
    pub(super) offset: u32,
    pub(super) symbol: u32,
    pub(super) kind: u16,
}

pub(super) struct SectionSpec {
    pub(super) name: &'static [u8; 8],
    pub(super) characteristics: u32,
    pub(super) data: Vec<u8>,
    pub(super) relocs: Vec<Reloc>,
}

pub(super) struct Symbol {
    pub(super) name: Vec<u8>,
    /// 1-based section number, or 0 for undefined.
    pub(super) section: i16,
    pub(super) class: u8,
}

/// A COFF object file with the given sections and symbols (no optional header, timestamp 0).
pub(super) fn coff_object(machine: u16, sections: &[SectionSpec], symbols: &[Symbol]) -> Vec<u8> {
    let headers = 20 + 40 * sections.len();
    let mut data_at = Vec::new();
    let mut pos = headers;
    for s in sections {
        let raw = pos;
        pos += s.data.len();
        let rel = pos;
        pos += 10 * s.relocs.len();
        data_at.push((raw, rel));
    }
    let symtab = pos;
    let mut strings: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&(sections.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // TimeDateStamp
    out.extend_from_slice(&(symtab as u32).to_le_bytes());
    out.extend_from_slice(&(symbols.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // SizeOfOptionalHeader
    out.extend_from_slice(&0u16.to_le_bytes()); // Characteristics
    for (s, &(raw, rel)) in sections.iter().zip(&data_at) {
        out.extend_from_slice(s.name);
        out.extend_from_slice(&0u32.to_le_bytes()); // VirtualSize
        out.extend_from_slice(&0u32.to_le_bytes()); // VirtualAddress
        out.extend_from_slice(&(s.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(raw as u32).to_le_bytes());
        let rel = if s.relocs.is_empty() { 0 } else { rel as u32 };
        out.extend_from_slice(&rel.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // PointerToLinenumbers
        out.extend_from_slice(&(s.relocs.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // NumberOfLinenumbers
        out.extend_from_slice(&s.characteristics.to_le_bytes());
    }
    for s in sections {
        out.extend_from_slice(&s.data);
        for r in &s.relocs {
            out.extend_from_slice(&r.offset.to_le_bytes());
            out.extend_from_slice(&r.symbol.to_le_bytes());
            out.extend_from_slice(&r.kind.to_le_bytes());
        }
    }
    debug_assert_eq!(out.len(), symtab);
    for sym in symbols {
        if sym.name.len() <= 8 {
            let mut short = [0u8; 8];
            short[..sym.name.len()].copy_from_slice(&sym.name);
            out.extend_from_slice(&short);
        } else {
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&(4 + strings.len() as u32).to_le_bytes());
            strings.extend_from_slice(&sym.name);
            strings.push(0);
        }
        out.extend_from_slice(&0u32.to_le_bytes()); // Value
        out.extend_from_slice(&sym.section.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // Type
        out.push(sym.class);
        out.push(0); // NumberOfAuxSymbols
    }
    out.extend_from_slice(&(4 + strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&strings);
    out
}

/// The object defining `__IMPORT_DESCRIPTOR_<stem>`: the DLL's 20-byte import directory
/// entry in `.idata$2`, whose lookup-table, name and address-table RVAs are relocations.
fn import_descriptor(machine: u16, reloc: u16, dll_name: &str, stem: &str) -> Vec<u8> {
    let mut name = dll_name.as_bytes().to_vec();
    name.push(0);
    let sym = |name: &[u8], section, class| Symbol {
        name: name.to_vec(),
        section,
        class,
    };
    coff_object(
        machine,
        &[
            SectionSpec {
                name: b".idata$2",
                characteristics: SCN_IDATA_2,
                data: vec![0; 20],
                relocs: vec![
                    // Name RVA → the DLL name; ImportLookupTableRVA → .idata$4;
                    // ImportAddressTableRVA → .idata$5.
                    Reloc {
                        offset: 12,
                        symbol: 2,
                        kind: reloc,
                    },
                    Reloc {
                        offset: 0,
                        symbol: 3,
                        kind: reloc,
                    },
                    Reloc {
                        offset: 16,
                        symbol: 4,
                        kind: reloc,
                    },
                ],
            },
            SectionSpec {
                name: b".idata$6",
                characteristics: SCN_IDATA_6,
                data: name,
                relocs: Vec::new(),
            },
        ],
        &[
            sym(
                format!("__IMPORT_DESCRIPTOR_{stem}").as_bytes(),
                1,
                SYM_CLASS_EXTERNAL,
            ),
            sym(b".idata$2", 1, SYM_CLASS_SECTION),
            sym(b".idata$6", 2, SYM_CLASS_STATIC),
            sym(b".idata$4", 0, SYM_CLASS_SECTION),
            sym(b".idata$5", 0, SYM_CLASS_SECTION),
            sym(b"__NULL_IMPORT_DESCRIPTOR", 0, SYM_CLASS_EXTERNAL),
            sym(
                format!("\x7f{stem}_NULL_THUNK_DATA").as_bytes(),
                0,
                SYM_CLASS_EXTERNAL,
            ),
        ],
    )
}

/// The object defining `__NULL_IMPORT_DESCRIPTOR`: the all-zero entry ending the import
/// directory (`.idata$3`).
fn null_import_descriptor(machine: u16) -> Vec<u8> {
    coff_object(
        machine,
        &[SectionSpec {
            name: b".idata$3",
            characteristics: SCN_IDATA_2,
            data: vec![0; 20],
            relocs: Vec::new(),
        }],
        &[Symbol {
            name: b"__NULL_IMPORT_DESCRIPTOR".to_vec(),
            section: 1,
            class: SYM_CLASS_EXTERNAL,
        }],
    )
}

/// The object defining `\x7f<stem>_NULL_THUNK_DATA`: the zero pointers ending this DLL's
/// import address table (`.idata$5`) and import lookup table (`.idata$4`).
fn null_thunk(machine: u16, stem: &str) -> Vec<u8> {
    let thunk = |name| SectionSpec {
        name,
        characteristics: SCN_THUNK_64,
        data: vec![0; 8],
        relocs: Vec::new(),
    };
    coff_object(
        machine,
        &[thunk(b".idata$5"), thunk(b".idata$4")],
        &[Symbol {
            name: format!("\x7f{stem}_NULL_THUNK_DATA").into_bytes(),
            section: 1,
            class: SYM_CLASS_EXTERNAL,
        }],
    )
}

/// An `ar` member header: name, date, uid, gid, mode, size, end marker.
fn member_header(out: &mut Vec<u8>, name: &[u8], mode: &str, size: usize) {
    let field = |out: &mut Vec<u8>, value: &[u8], width: usize| {
        out.extend_from_slice(value);
        out.extend(std::iter::repeat_n(b' ', width - value.len()));
    };
    field(out, name, 16);
    field(out, b"0", 12);
    field(out, b"0", 6);
    field(out, b"0", 6);
    field(out, mode.as_bytes(), 8);
    field(out, size.to_string().as_bytes(), 10);
    out.extend_from_slice(b"`\n");
}

fn padded(len: usize) -> usize {
    len + (len & 1)
}

/// The archive of `members` (contents and the symbols each defines), every member named
/// after the DLL.
fn write_archive(dll_name: &str, members: &[(Vec<u8>, Vec<Vec<u8>>)]) -> Vec<u8> {
    let symbol_count: usize = members.iter().map(|(_, s)| s.len()).sum();
    let names_size: usize = members
        .iter()
        .flat_map(|(_, s)| s)
        .map(|s| s.len() + 1)
        .sum();
    let first_size = 4 + 4 * symbol_count + names_size;
    let second_size = 4 + 4 * members.len() + 4 + 2 * symbol_count + names_size;
    // `llama.dll/` fits the 16-byte name field; a longer name goes to `//` as `/0`.
    let (member_name, longnames) = if dll_name.len() < 16 {
        (format!("{dll_name}/").into_bytes(), None)
    } else {
        let mut table = dll_name.as_bytes().to_vec();
        table.push(0);
        (b"/0".to_vec(), Some(table))
    };
    let mut offset = 8 + 60 + padded(first_size) + 60 + padded(second_size);
    if let Some(table) = &longnames {
        offset += 60 + padded(table.len());
    }
    let mut offsets = Vec::with_capacity(members.len());
    for (data, _) in members {
        offsets.push(offset as u32);
        offset += 60 + padded(data.len());
    }

    let mut out = Vec::with_capacity(offset);
    out.extend_from_slice(b"!<arch>\n");
    // First linker member: symbols in member order.
    member_header(&mut out, b"/", "0", first_size);
    out.extend_from_slice(&(symbol_count as u32).to_be_bytes());
    for ((_, symbols), &at) in members.iter().zip(&offsets) {
        for _ in symbols {
            out.extend_from_slice(&at.to_be_bytes());
        }
    }
    for (_, symbols) in members {
        for s in symbols {
            out.extend_from_slice(s);
            out.push(0);
        }
    }
    pad(&mut out);
    // Second linker member: member offsets, then symbols sorted by name with their
    // 1-based member index.
    let mut sorted: Vec<(&[u8], u16)> = members
        .iter()
        .enumerate()
        .flat_map(|(i, (_, symbols))| symbols.iter().map(move |s| (s.as_slice(), (i + 1) as u16)))
        .collect();
    sorted.sort();
    member_header(&mut out, b"/", "0", second_size);
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for at in &offsets {
        out.extend_from_slice(&at.to_le_bytes());
    }
    out.extend_from_slice(&(symbol_count as u32).to_le_bytes());
    for (_, index) in &sorted {
        out.extend_from_slice(&index.to_le_bytes());
    }
    for (name, _) in &sorted {
        out.extend_from_slice(name);
        out.push(0);
    }
    pad(&mut out);
    if let Some(table) = &longnames {
        member_header(&mut out, b"//", "0", table.len());
        out.extend_from_slice(table);
        pad(&mut out);
    }
    for ((data, _), &at) in members.iter().zip(&offsets) {
        debug_assert_eq!(out.len(), at as usize);
        member_header(&mut out, &member_name, "644", data.len());
        out.extend_from_slice(data);
        pad(&mut out);
    }
    out
}

fn pad(out: &mut Vec<u8>) {
    if out.len() % 2 == 1 {
        out.push(b'\n');
    }
}
