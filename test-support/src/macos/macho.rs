//! The load commands of a 64-bit Mach-O file that decide how it is found at run time: its own
//! install name (`LC_ID_DYLIB`), the libraries it loads (`LC_LOAD_DYLIB`) and its run-path
//! search list (`LC_RPATH`). Read with the `object` crate; rewritten by our own code, in place.
//!
//! The rewrite turns the `llama-cpp-py-sync` wheels' `@loader_path/…` names into the official
//! macOS archive's `@rpath/…` names and drops run paths other than `@loader_path` (the wheels
//! keep their CI build directory). Every new name is shorter than the old one, so each command
//! keeps its size; dropping a command moves the following ones down and zero-fills the end of
//! the command area, as `install_name_tool -delete_rpath` does. Code signatures are not redone:
//! the result is for linking only (see docs/limitations.md).

use object::macho::{self, LoadCommandType, MachHeader64};
use object::read::macho::{LoadCommandVariant, MachHeader};
use object::{Endian, Endianness};

/// What a Mach-O file says about its dynamic linking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DylibLinks {
    /// `LC_ID_DYLIB` (dylibs only).
    pub install_name: Option<String>,
    /// `LC_LOAD_DYLIB` and its weak/re-export/lazy forms, in order.
    pub loads: Vec<String>,
    /// `LC_RPATH`, in order.
    pub rpaths: Vec<String>,
    /// The CPU type (`macho::CPU_TYPE_ARM64.0`, `macho::CPU_TYPE_X86_64.0`).
    pub cpu_type: u32,
}

fn header(data: &[u8]) -> Result<(&MachHeader64<Endianness>, Endianness), String> {
    let header = MachHeader64::<Endianness>::parse(data, 0)
        .map_err(|e| format!("not a 64-bit Mach-O file: {e}"))?;
    let endian = header
        .endian()
        .map_err(|e| format!("Mach-O byte order: {e}"))?;
    Ok((header, endian))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads the install name, loaded libraries and run paths of a 64-bit Mach-O file.
pub fn read_links(data: &[u8]) -> Result<DylibLinks, String> {
    let (header, endian) = header(data)?;
    let mut out = DylibLinks {
        cpu_type: header.cputype(endian).0,
        ..DylibLinks::default()
    };
    let mut commands = header
        .load_commands(endian, data, 0)
        .map_err(|e| format!("Mach-O load commands: {e}"))?;
    while let Some(command) = commands.next().map_err(|e| format!("load command: {e}"))? {
        let variant = command
            .variant()
            .map_err(|e| format!("load command {:#x}: {e}", command.cmd().0))?;
        match variant {
            LoadCommandVariant::IdDylib(d) => {
                out.install_name = Some(text(
                    command
                        .string(endian, d.dylib.name)
                        .map_err(|e| format!("LC_ID_DYLIB name: {e}"))?,
                ));
            }
            LoadCommandVariant::Dylib(d) => {
                out.loads.push(text(
                    command
                        .string(endian, d.dylib.name)
                        .map_err(|e| format!("LC_LOAD_DYLIB name: {e}"))?,
                ));
            }
            LoadCommandVariant::Rpath(r) => {
                out.rpaths.push(text(
                    command
                        .string(endian, r.path)
                        .map_err(|e| format!("LC_RPATH path: {e}"))?,
                ));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// One load command's place in the file.
struct Command {
    offset: usize,
    size: usize,
    cmd: LoadCommandType,
    /// Offset of the name/path string within the command.
    name_offset: usize,
}

fn commands(data: &[u8]) -> Result<(Vec<Command>, Endianness), String> {
    let (header, endian) = header(data)?;
    let mut offset = std::mem::size_of::<MachHeader64<Endianness>>();
    let mut out = Vec::new();
    let end = offset + header.sizeofcmds(endian) as usize;
    for _ in 0..header.ncmds(endian) {
        let word = |at: usize| -> Result<u32, String> {
            data.get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(|b| endian.read_u32(b))
                .ok_or_else(|| format!("load command at {at} runs past the file"))
        };
        let cmd = LoadCommandType(word(offset)?);
        let size = word(offset + 4)? as usize;
        if size < 8 || offset + size > end {
            return Err(format!("load command at {offset} has a bad size {size}"));
        }
        let name_offset = match cmd {
            macho::LC_ID_DYLIB
            | macho::LC_LOAD_DYLIB
            | macho::LC_LOAD_WEAK_DYLIB
            | macho::LC_REEXPORT_DYLIB
            | macho::LC_LAZY_LOAD_DYLIB
            | macho::LC_LOAD_UPWARD_DYLIB
            | macho::LC_RPATH => word(offset + 8)? as usize,
            _ => 0,
        };
        out.push(Command {
            offset,
            size,
            cmd,
            name_offset,
        });
        offset += size;
    }
    Ok((out, endian))
}

fn write_u32(data: &mut [u8], at: usize, value: u32, endian: Endianness) {
    data[at..at + 4].copy_from_slice(&endian.write_u32(value));
}

/// Rewrites a dylib the official way: its install name becomes `install_name`, every
/// `@loader_path/<file>` it loads becomes `@rpath/<file>`, and run paths other than
/// `@loader_path` are removed. Names that would not fit their command are an error.
pub fn rewrite_to_rpath(data: &mut [u8], install_name: &str) -> Result<(), String> {
    let (commands, endian) = commands(data)?;
    let mut dropped = Vec::new();
    for c in &commands {
        if c.name_offset == 0 {
            continue;
        }
        let start = c.offset + c.name_offset;
        let area = &data[start..c.offset + c.size];
        let len = area.iter().position(|&b| b == 0).unwrap_or(area.len());
        let old = text(&area[..len]);
        let new = match c.cmd {
            macho::LC_ID_DYLIB => install_name.to_string(),
            macho::LC_RPATH if old == "@loader_path" => continue,
            macho::LC_RPATH => {
                dropped.push((c.offset, c.size));
                continue;
            }
            _ => match old.strip_prefix("@loader_path/") {
                Some(file) => format!("@rpath/{file}"),
                None => continue,
            },
        };
        if new.len() + 1 > c.size - c.name_offset {
            return Err(format!(
                "`{new}` does not fit the load command that held `{old}`"
            ));
        }
        let area = &mut data[start..c.offset + c.size];
        area.fill(0);
        area[..new.len()].copy_from_slice(new.as_bytes());
    }
    // Remove dropped commands from the last to the first, so earlier offsets stay valid.
    let (header, _) = header(data)?;
    let mut ncmds = header.ncmds(endian);
    let mut sizeofcmds = header.sizeofcmds(endian) as usize;
    let area_start = std::mem::size_of::<MachHeader64<Endianness>>();
    for (offset, size) in dropped.into_iter().rev() {
        let area_end = area_start + sizeofcmds;
        data.copy_within(offset + size..area_end, offset);
        data[area_end - size..area_end].fill(0);
        ncmds -= 1;
        sizeofcmds -= size;
    }
    // ncmds at 16, sizeofcmds at 20 in mach_header_64.
    write_u32(data, 16, ncmds, endian);
    write_u32(data, 20, sizeofcmds as u32, endian);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian arm64 dylib header with the given commands.
    fn dylib(commands: &[(LoadCommandType, &str, usize)]) -> Vec<u8> {
        let mut cmds = Vec::new();
        for &(cmd, name, size) in commands {
            let name_offset: u32 = if cmd == macho::LC_RPATH { 12 } else { 24 };
            let mut c = vec![0u8; size];
            c[0..4].copy_from_slice(&cmd.0.to_le_bytes());
            c[4..8].copy_from_slice(&(size as u32).to_le_bytes());
            c[8..12].copy_from_slice(&name_offset.to_le_bytes());
            let n = name_offset as usize;
            c[n..n + name.len()].copy_from_slice(name.as_bytes());
            cmds.extend(c);
        }
        let mut out = Vec::new();
        for word in [
            macho::MH_MAGIC_64,
            macho::CPU_TYPE_ARM64.0,
            0,
            macho::MH_DYLIB.0,
            commands.len() as u32,
            cmds.len() as u32,
            0,
            0,
        ] {
            out.extend(word.to_le_bytes());
        }
        out.extend(cmds);
        out.extend([0xAAu8; 16]); // what follows the commands stays untouched
        out
    }

    #[test]
    fn wheel_names_become_the_official_rpath_names() {
        let mut data = dylib(&[
            (macho::LC_ID_DYLIB, "@loader_path/libllama.0.0.1.dylib", 64),
            (macho::LC_LOAD_DYLIB, "@loader_path/libggml.0.dylib", 56),
            (macho::LC_RPATH, "/Users/runner/work/build/bin", 48),
            (macho::LC_LOAD_DYLIB, "/usr/lib/libSystem.B.dylib", 56),
            (macho::LC_RPATH, "@loader_path", 32),
        ]);
        let len = data.len();
        rewrite_to_rpath(&mut data, "@rpath/libllama.0.dylib").unwrap();
        assert_eq!(data.len(), len);
        assert_eq!(
            read_links(&data).unwrap(),
            DylibLinks {
                install_name: Some("@rpath/libllama.0.dylib".into()),
                loads: vec![
                    "@rpath/libggml.0.dylib".into(),
                    "/usr/lib/libSystem.B.dylib".into()
                ],
                rpaths: vec!["@loader_path".into()],
                cpu_type: macho::CPU_TYPE_ARM64.0,
            }
        );
        assert_eq!(&data[len - 16..], &[0xAA; 16]);
        // The freed command space is zero.
        assert!(data[len - 16 - 48..len - 16].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_name_too_long_for_its_command_is_an_error() {
        let mut data = dylib(&[(macho::LC_ID_DYLIB, "@loader_path/a.dylib", 48)]);
        let err =
            rewrite_to_rpath(&mut data, &format!("@rpath/{}.dylib", "x".repeat(40))).unwrap_err();
        assert!(err.contains("does not fit"), "{err}");
    }

    #[test]
    fn not_mach_o_is_an_error() {
        assert!(
            read_links(b"\x7fELF not mach-o at all, long enough to parse")
                .unwrap_err()
                .contains("not a 64-bit Mach-O file")
        );
    }
}
