//! `LLAMA_PREBUILT_VARIANT=auto` through the fetcher: the release listing it consults (the
//! release API of the loopback mirror, the checksums files, the cache) with a faked host probe,
//! and `auto` requests in `ensure`/`plan`. No test depends on this machine's GPUs.

mod common;

use common::*;
use llama_prebuilt_fetch::host_probe::{DriverVersion, HostProbe, NvidiaDriver};
use llama_prebuilt_fetch::{Config, Request, Target};
use llama_prebuilt_test_support::archives::linux_tar_gz;

const LINUX: &str = "x86_64-unknown-linux-gnu";
const CUDA: &str = "llama-b20001-bin-ubuntu-cuda-13.4-x64.tar.gz";
const CUDA12: &str = "llama-b20001-bin-ubuntu-cuda-12.8-x64.tar.gz";
const VULKAN: &str = "llama-b20001-bin-ubuntu-vulkan-x64.tar.gz";

fn nvidia(version: &str) -> HostProbe {
    HostProbe {
        os: "linux".into(),
        nvidia: Some(NvidiaDriver {
            evidence: "/proc/driver/nvidia/version".into(),
            version: DriverVersion::parse(version),
        }),
        ..HostProbe::default()
    }
}

/// A triple that is surely not the machine running the tests.
fn not_the_host() -> Target {
    let host = Target::host();
    Target::from_triple(if host.triple == LINUX {
        "aarch64-unknown-linux-gnu"
    } else {
        LINUX
    })
}

#[test]
fn the_release_api_tells_which_cuda_assets_exist() {
    let env = Env::new();
    for name in [LINUX_X64, CUDA12, CUDA, VULKAN] {
        env.mirror.add_asset_bytes(TAG, name, b"x".to_vec());
    }
    let f = env.fetcher();
    let t = Target::from_triple(LINUX);
    let c = f
        .auto_variant(TAG, &t, LINUX, || nvidia("580.65.06"))
        .unwrap();
    assert_eq!(c.variant, "cuda-13.4", "{c:?}");
    let c = f
        .auto_variant(TAG, &t, LINUX, || nvidia("560.35.03"))
        .unwrap();
    assert_eq!(c.variant, "cuda-12.8", "{c:?}");
    assert!(
        c.summary().contains("cuda-12.8, cuda-13.4"),
        "{}",
        c.summary()
    );
    assert_eq!(env.mirror.api_hits(), 2);
}

#[test]
fn offline_the_checksums_files_are_the_listing() {
    let mut env = Env::new();
    env.trust(TAG, VULKAN, &"ab".repeat(32), 1);
    let config = Config {
        offline: Some("LLAMA_PREBUILT_OFFLINE=1".into()),
        ..env.config()
    };
    let f = llama_prebuilt_fetch::Fetcher::new(config).unwrap();
    let mut probe = nvidia("580.65.06");
    probe.vulkan_loader = Some("/usr/lib/libvulkan.so.1".into());
    probe.vulkan_icds = vec!["/etc/vulkan/icd.d/nvidia_icd.json".into()];
    let c = f
        .auto_variant(TAG, &Target::from_triple(LINUX), LINUX, || probe)
        .unwrap();
    assert_eq!(c.variant, "vulkan", "{c:?}");
    assert!(
        c.summary()
            .contains("no CUDA asset for linux-x64 (per the checksums files and the cache)"),
        "{}",
        c.summary()
    );
    assert_eq!(env.mirror.api_hits(), 0, "offline: no API call");
}

#[test]
fn an_unreachable_api_is_said_in_the_reasons() {
    let mut env = Env::new();
    env.trust(TAG, CUDA12, &"ab".repeat(32), 1);
    let config = Config {
        api_base: Some("http://127.0.0.1:9".into()),
        ..env.config()
    };
    let f = llama_prebuilt_fetch::Fetcher::new(config).unwrap();
    let c = f
        .auto_variant(TAG, &Target::from_triple(LINUX), LINUX, || {
            nvidia("580.65.06")
        })
        .unwrap();
    assert_eq!(c.variant, "cuda-12.8", "{c:?}");
    assert!(
        c.summary().contains("the release API failed"),
        "{}",
        c.summary()
    );
}

#[test]
fn auto_requests_resolve_in_ensure_and_plan() {
    let mut env = Env::new();
    let t = not_the_host();
    let platform = llama_prebuilt_fetch::Platform::for_target(&t).unwrap();
    let asset = format!("llama-{TAG}-bin-ubuntu-{}.tar.gz", platform.asset_arch);
    env.serve(TAG, &asset, linux_tar_gz(TAG));
    let req = Request {
        tag: TAG.into(),
        target: t,
        variant: "auto".into(),
    };
    // A cross target: auto means cpu, whatever this machine has.
    let plan = env.fetcher().plan(&req).unwrap();
    assert_eq!(plan.asset, asset);
    let got = env.fetcher().ensure(&req).unwrap();
    assert_eq!(got.asset, asset);
    assert!(got.runtime.is_none());
}

#[test]
fn newest_with_auto_looks_for_the_cpu_asset() {
    let env = Env::new();
    env.mirror
        .add_asset_bytes("b20001", LINUX_X64, linux_tar_gz("b20001"));
    env.mirror
        .add_asset_bytes("b20003", "llama-b20003-bin-win-cpu-x64.zip", b"x".to_vec());
    let t = Target::from_triple(LINUX);
    assert_eq!(
        env.fetcher().resolve_tag("newest", &t, "auto").unwrap(),
        "b20001"
    );
}
