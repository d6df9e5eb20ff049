//! The Vulkan tests (llama-prebuilt/tests/vulkan.rs, tests/e2e/vulkan.rs): what the Vulkan
//! fixture build and a run on Mesa's software Vulkan device (lavapipe) need from bookworm.
//!
//! Bookworm's own Vulkan headers (1.3.239) are too old for llama.cpp b10199's Vulkan backend;
//! the fixture takes newer headers from a pinned Debian trixie package instead (see
//! test-support's `fixture/vulkan.rs`), so `libvulkan-dev` is here only for the loader's
//! link-time name `libvulkan.so`.

use super::Tool;

/// `glslc` compiles the backend's shaders; `libvulkan1` is the loader the backend links;
/// `mesa-vulkan-drivers` has lavapipe (`lvp_icd`), the software device the tests run on.
pub(crate) const VULKAN: &[Tool] = &[
    Tool {
        program: "glslc",
        package: "glslc",
        probe: &["--version"],
    },
    Tool {
        program: "/usr/lib/x86_64-linux-gnu/libvulkan.so.1",
        package: "libvulkan1",
        probe: &[],
    },
    Tool {
        program: "/usr/lib/x86_64-linux-gnu/libvulkan.so",
        package: "libvulkan-dev",
        probe: &[],
    },
    Tool {
        program: "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json",
        package: "mesa-vulkan-drivers",
        probe: &[],
    },
];
