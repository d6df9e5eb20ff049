//! What machine a figure was measured on.

use std::process::Command;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub(crate) fn cpu_model() -> String {
    read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|r| r.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into())
}

pub(crate) fn ncpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub(crate) fn mem_gib() -> f64 {
    read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| kib / (1024.0 * 1024.0))
        .unwrap_or(f64::NAN)
}

/// The 1-minute load average.
pub(crate) fn load1() -> f64 {
    read("/proc/loadavg")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn version(program: &str) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

pub(crate) fn describe() -> String {
    format!(
        "nproc {}, {}, {:.1} GiB RAM, {}, load average {}",
        ncpus(),
        cpu_model(),
        mem_gib(),
        version("rustc"),
        read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

pub(crate) fn describe_short() -> String {
    format!(
        "machine: nproc {}, {}, {:.1} GiB RAM; load (1 min) at start of report {:.2}; {}",
        ncpus(),
        cpu_model(),
        mem_gib(),
        load1(),
        chrono_like_now()
    )
}

/// UTC time from `date`, to tell runs apart in the results file.
fn chrono_like_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
