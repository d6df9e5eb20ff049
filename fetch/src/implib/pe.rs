//! The part of a PE/COFF image an import library needs: the machine type and the named
//! exports (with their kind), read from the export directory.
//!
//! Path through the file (Microsoft "PE Format" specification): DOS header → `e_lfanew` →
//! `PE\0\0` → COFF file header (machine, section count, optional header size) → optional
//! header (PE32 or PE32+) → data directory 0 (export table) → export directory → name pointer
//! table and ordinal table → export address table. RVAs are mapped to file offsets through the
//! section table. Every read is bounds-checked: a malformed image is an [`ImplibError`], never
//! a panic.

use super::ImplibError;

/// `IMAGE_FILE_MACHINE_AMD64`.
pub const MACHINE_AMD64: u16 = 0x8664;
/// `IMAGE_FILE_MACHINE_ARM64`.
pub const MACHINE_ARM64: u16 = 0xAA64;

const SCN_MEM_EXECUTE: u32 = 0x2000_0000;
const SCN_CNT_CODE: u32 = 0x0000_0020;

/// What an import library needs to know about a DLL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DllExports {
    /// The COFF machine type of the image (`0x8664` x86-64, `0xAA64` ARM64, ...).
    pub machine: u16,
    /// The name the export directory gives the DLL (`llama.dll`), when it has a readable one.
    pub name: Option<String>,
    /// The named exports in the order of the export name pointer table (sorted by name in
    /// well-formed images). Exports reachable only by ordinal are not listed.
    pub exports: Vec<Export>,
}

/// One named export of a DLL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The exported name (a C name or a mangled C++ name).
    pub name: String,
    /// The index of the name in the export name pointer table: the loader's lookup hint.
    pub hint: u16,
    /// Code or data.
    pub kind: ExportKind,
}

/// How an export is imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportKind {
    /// A function (or a forwarder to one in another DLL): callable through a thunk, so the
    /// import library defines both `name` and `__imp_name`.
    Code,
    /// A variable (the export points into a non-executable section): only `__imp_name`.
    Data,
}

/// A little-endian view of the file that never panics.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn slice(
        &self,
        offset: usize,
        len: usize,
        what: &'static str,
    ) -> Result<&'a [u8], ImplibError> {
        offset
            .checked_add(len)
            .and_then(|end| self.0.get(offset..end))
            .ok_or(ImplibError::Malformed(what))
    }

    fn u16(&self, offset: usize, what: &'static str) -> Result<u16, ImplibError> {
        let b = self.slice(offset, 2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&self, offset: usize, what: &'static str) -> Result<u32, ImplibError> {
        let b = self.slice(offset, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[derive(Debug, Clone, Copy)]
struct Section {
    virtual_address: u32,
    virtual_size: u32,
    raw_size: u32,
    raw_offset: u32,
    characteristics: u32,
}

impl Section {
    /// The extent of the section in memory (the virtual size, or the raw size when the
    /// virtual size is 0, as some linkers write).
    fn contains(&self, rva: u32) -> bool {
        let size = if self.virtual_size == 0 {
            self.raw_size
        } else {
            self.virtual_size
        };
        rva >= self.virtual_address
            && u64::from(rva) < u64::from(self.virtual_address) + u64::from(size)
    }

    fn is_executable(&self) -> bool {
        self.characteristics & (SCN_MEM_EXECUTE | SCN_CNT_CODE) != 0
    }
}

struct Image<'a> {
    bytes: Bytes<'a>,
    sections: Vec<Section>,
}

impl<'a> Image<'a> {
    fn section_of(&self, rva: u32) -> Option<&Section> {
        self.sections.iter().find(|s| s.contains(rva))
    }

    /// The file bytes from `rva` to the end of its section's raw data.
    fn at(&self, rva: u32, what: &'static str) -> Result<&'a [u8], ImplibError> {
        let s = self.section_of(rva).ok_or(ImplibError::Malformed(what))?;
        let delta = rva - s.virtual_address;
        if delta >= s.raw_size {
            // In the zero-filled tail of the section: no file bytes to read.
            return Err(ImplibError::Malformed(what));
        }
        let start = s.raw_offset as usize;
        let raw = self.bytes.slice(start, s.raw_size as usize, what)?;
        Ok(&raw[delta as usize..])
    }

    fn u16_at(&self, rva: u32, what: &'static str) -> Result<u16, ImplibError> {
        Bytes(self.at(rva, what)?).u16(0, what)
    }

    fn u32_at(&self, rva: u32, what: &'static str) -> Result<u32, ImplibError> {
        Bytes(self.at(rva, what)?).u32(0, what)
    }

    fn c_string(&self, rva: u32, what: &'static str) -> Result<&'a [u8], ImplibError> {
        let data = self.at(rva, what)?;
        let end = data
            .iter()
            .position(|&b| b == 0)
            .ok_or(ImplibError::Malformed(what))?;
        Ok(&data[..end])
    }
}

/// Reads the machine type and the named exports of a DLL image.
///
/// Forwarded exports (whose address points back into the export directory) are listed as
/// [`ExportKind::Code`]: the loader resolves the forwarder when the import is bound. An export
/// is [`ExportKind::Data`] only when its address lies in a section that is neither executable
/// nor code.
///
/// # Errors
///
/// [`ImplibError::Malformed`] for anything out of bounds or inconsistent,
/// [`ImplibError::NoExports`] for an image without an export directory.
pub fn read_exports(image: &[u8]) -> Result<DllExports, ImplibError> {
    let bytes = Bytes(image);
    if bytes.slice(0, 2, "no DOS header")? != b"MZ" {
        return Err(ImplibError::Malformed("no `MZ` signature"));
    }
    let pe = bytes.u32(0x3c, "no e_lfanew")? as usize;
    if bytes.slice(pe, 4, "PE signature out of bounds")? != b"PE\0\0" {
        return Err(ImplibError::Malformed("no `PE\\0\\0` signature"));
    }
    let coff = pe + 4;
    let machine = bytes.u16(coff, "COFF header out of bounds")?;
    let section_count = bytes.u16(coff + 2, "COFF header out of bounds")?;
    let optional_size = bytes.u16(coff + 16, "COFF header out of bounds")? as usize;
    let optional = coff + 20;
    let optional_header = bytes.slice(optional, optional_size, "optional header out of bounds")?;
    let opt = Bytes(optional_header);
    let (count_at, dirs_at) = match opt.u16(0, "optional header too short")? {
        0x10b => (92, 96),   // PE32
        0x20b => (108, 112), // PE32+
        _ => return Err(ImplibError::Malformed("unknown optional header magic")),
    };
    let dir_count = opt.u32(count_at, "optional header too short")?;
    if dir_count == 0 {
        return Err(ImplibError::NoExports);
    }
    let export_rva = opt.u32(dirs_at, "no export data directory")?;
    let export_size = opt.u32(dirs_at + 4, "no export data directory")?;

    let table = optional + optional_size;
    let mut sections = Vec::with_capacity(usize::from(section_count));
    for i in 0..usize::from(section_count) {
        let s = Bytes(bytes.slice(table + 40 * i, 40, "section table out of bounds")?);
        sections.push(Section {
            virtual_size: s.u32(8, "section header")?,
            virtual_address: s.u32(12, "section header")?,
            raw_size: s.u32(16, "section header")?,
            raw_offset: s.u32(20, "section header")?,
            characteristics: s.u32(36, "section header")?,
        });
    }
    if export_rva == 0 {
        return Err(ImplibError::NoExports);
    }
    let img = Image { bytes, sections };
    let dir = Bytes(img.at(export_rva, "export directory outside every section")?);
    let name_rva = dir.u32(12, "export directory truncated")?;
    let address_count = dir.u32(20, "export directory truncated")?;
    let name_count = dir.u32(24, "export directory truncated")?;
    let addresses = dir.u32(28, "export directory truncated")?;
    let names = dir.u32(32, "export directory truncated")?;
    let ordinals = dir.u32(36, "export directory truncated")?;

    let name = img
        .c_string(name_rva, "DLL name")
        .ok()
        .and_then(|n| String::from_utf8(n.to_vec()).ok());
    if name_count > 0xFFFF {
        // The hint is 16 bits; no real DLL comes close.
        return Err(ImplibError::Malformed("more than 65535 exported names"));
    }
    let in_export_dir = |rva: u32| {
        rva >= export_rva && u64::from(rva) < u64::from(export_rva) + u64::from(export_size)
    };
    let mut exports = Vec::with_capacity(name_count as usize);
    for i in 0..name_count {
        let name_ptr = rva_add(names, 4 * i)?;
        let ordinal_ptr = rva_add(ordinals, 2 * i)?;
        let name_rva = img.u32_at(name_ptr, "export name pointer table out of bounds")?;
        let index = u32::from(img.u16_at(ordinal_ptr, "export ordinal table out of bounds")?);
        if index >= address_count {
            return Err(ImplibError::Malformed(
                "export ordinal beyond the address table",
            ));
        }
        let target = img.u32_at(
            rva_add(addresses, 4 * index)?,
            "export address table out of bounds",
        )?;
        let raw_name = img.c_string(name_rva, "export name out of bounds or unterminated")?;
        if raw_name.is_empty() {
            return Err(ImplibError::Malformed("empty export name"));
        }
        let name = String::from_utf8(raw_name.to_vec())
            .map_err(|_| ImplibError::Malformed("export name is not UTF-8"))?;
        let kind = if in_export_dir(target) {
            // A forwarder string (`other.dll!name`): imported like a function.
            ExportKind::Code
        } else {
            match img.section_of(target) {
                Some(s) if !s.is_executable() => ExportKind::Data,
                Some(_) => ExportKind::Code,
                None => {
                    return Err(ImplibError::Malformed(
                        "export address outside every section",
                    ));
                }
            }
        };
        exports.push(Export {
            name,
            hint: i as u16,
            kind,
        });
    }
    Ok(DllExports {
        machine,
        name,
        exports,
    })
}

fn rva_add(base: u32, delta: u32) -> Result<u32, ImplibError> {
    base.checked_add(delta)
        .ok_or(ImplibError::Malformed("export table RVA overflows"))
}
