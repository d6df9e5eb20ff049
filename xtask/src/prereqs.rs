//! Tools the fixture build and the tests need, installed on a fresh Debian/Ubuntu machine
//! (as root, with apt-get) and otherwise named with the command that installs them.

use std::process::Command;

mod libclang;
pub(crate) mod macos;
mod vulkan;
mod windows;
pub(crate) mod wine;

pub(crate) use vulkan::VULKAN;
pub(crate) use windows::WINDOWS_GNU;

/// A program and the Debian package that provides it.
pub(crate) struct Tool {
    pub program: &'static str,
    pub package: &'static str,
    /// Arguments that make the program exit 0 when it works.
    pub probe: &'static [&'static str],
}

/// cmake builds the fixture; libclang lets bindgen run (the build falls back to committed
/// bindings without it, but the tests check the fresh ones).
pub(crate) const BUILD: &[Tool] = &[
    Tool {
        program: "cmake",
        package: "cmake",
        probe: &["--version"],
    },
    Tool {
        program: "libclang",
        package: "libclang-dev",
        probe: &[],
    },
];

/// The aarch64 cross test: cross compilers, the arm64 C library and its headers, qemu.
pub(crate) const CROSS: &[Tool] = &[
    Tool {
        program: "aarch64-linux-gnu-gcc",
        package: "gcc-aarch64-linux-gnu",
        probe: &["--version"],
    },
    Tool {
        program: "aarch64-linux-gnu-g++",
        package: "g++-aarch64-linux-gnu",
        probe: &["--version"],
    },
    Tool {
        program: "qemu-aarch64",
        package: "qemu-user",
        probe: &["--version"],
    },
    Tool {
        program: "/usr/aarch64-linux-gnu/lib/libc.so.6",
        package: "libc6-arm64-cross",
        probe: &[],
    },
    Tool {
        program: "/usr/aarch64-linux-gnu/include/stdio.h",
        package: "libc6-dev-arm64-cross",
        probe: &[],
    },
];

fn present(tool: &Tool) -> bool {
    if tool.program == "libclang" {
        return libclang::find(&libclang::SearchEnv::from_process()).is_some();
    }
    if tool.program.starts_with('/') {
        return std::path::Path::new(tool.program).exists();
    }
    Command::new(tool.program)
        .args(tool.probe)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs whatever of `tools` is missing, or explains how.
pub(crate) fn ensure(tools: &[&Tool]) -> Result<(), String> {
    let missing: Vec<&&Tool> = tools.iter().filter(|t| !present(t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    let apt = Command::new("apt-get")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !(apt && root) {
        return Err(cannot_install(&missing, apt));
    }
    eprintln!("xtask: installing {} (apt-get)", packages.join(" "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    // Recommends stay on: that is how the cross compilers bring their C library.
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    match tools.iter().find(|t| !present(t)) {
        Some(t) => Err(format!(
            "{} is still missing after installing {}",
            t.program, t.package
        )),
        None => Ok(()),
    }
}

/// The error when tools are missing and this process cannot install them (not root, or no
/// apt-get): it names every missing program and the exact Debian packages that provide them.
fn cannot_install(missing: &[&&Tool], apt: bool) -> String {
    let programs: Vec<&str> = missing.iter().map(|t| t.program).collect();
    let packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    let how = if apt {
        format!(
            "run `sudo apt-get install -y {}` (or run this command as root)",
            packages.join(" ")
        )
    } else {
        format!(
            "install the Debian/Ubuntu packages {} or your system's equivalents",
            packages.join(", ")
        )
    };
    format!("missing tools: {}\nhelp: {how}", programs.join(", "))
}

/// `rustup target add` for a cross target, when rustup is there and the target is not.
pub(crate) fn ensure_rust_target(triple: &str) -> Result<(), String> {
    let libdir = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", triple])
        .output();
    let installed = libdir.is_ok_and(|o| {
        let dir = String::from_utf8_lossy(&o.stdout).trim().to_string();
        std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
    });
    if installed {
        return Ok(());
    }
    eprintln!("xtask: rustup target add {triple}");
    run(Command::new("rustup").args(["target", "add", triple]))
}

pub(crate) fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_root_or_apt_the_error_names_the_exact_packages() {
        let missing: Vec<&Tool> = vec![&BUILD[1], &CROSS[2]];
        let refs: Vec<&&Tool> = missing.iter().collect();
        let with_apt = cannot_install(&refs, true);
        assert_eq!(
            with_apt,
            "missing tools: libclang, qemu-aarch64\nhelp: run `sudo apt-get install -y libclang-dev qemu-user` (or run this command as root)"
        );
        let without_apt = cannot_install(&refs, false);
        assert!(
            without_apt.contains("libclang-dev, qemu-user") && !without_apt.contains("sudo"),
            "{without_apt}"
        );
    }
}
