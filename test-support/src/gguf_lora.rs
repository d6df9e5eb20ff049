//! LoRA adapter GGUF files for the tiny model of [`crate::gguf`], in the layout llama.cpp's
//! `llama_adapter_lora_init` reads (`src/llama-adapter.cpp`): `general.type = "adapter"`,
//! `general.architecture` equal to the base model's, `adapter.type = "lora"`,
//! `adapter.lora.alpha` (f32), and for each adapted weight `W` (`ne = [n_in, n_out]`) a pair
//! `W.lora_a` (`ne = [n_in, rank]`) and `W.lora_b` (`ne = [rank, n_out]`); for
//! `token_embd.weight` (`ne = [n_embd, n_vocab]`) A and B are flipped: `lora_a` is
//! `[rank, n_vocab]` and `lora_b` `[rank, n_embd]`.
//!
//! Besides good adapters ([`LoraSpec`], [`write_lora`], [`lora_in`]) it writes the broken
//! ones the safe crate must reject: a generic [`write_gguf`] takes any metadata and tensors.

use std::io;
use std::path::{Path, PathBuf};

use crate::gguf::{N_VOCAB, TinyModelSpec};
use crate::gguf_writer::{self, TensorInfo};
use crate::rng::SplitMix64;

/// A metadata value (the shared writer's).
pub use crate::gguf_writer::Kv;

/// An f32 tensor: `dims` are ggml's `ne` (innermost first), `data` has their product entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The tensor name.
    pub name: String,
    /// `ne[0]`, `ne[1]`, ….
    pub dims: Vec<u64>,
    /// Row-major (innermost dimension fastest) values.
    pub data: Vec<f32>,
}

/// Writes a GGUF v3 file with these key/value pairs and f32 tensors (a wrong number of values
/// for a tensor's dims is an error).
pub fn write_gguf(path: &Path, kvs: &[(&str, Kv)], tensors: &[Tensor]) -> io::Result<()> {
    let infos: Vec<TensorInfo> = tensors
        .iter()
        .map(|t| TensorInfo::f32(t.name.clone(), t.dims.clone()))
        .collect();
    gguf_writer::write_gguf(path, kvs, &infos, |index, sink| {
        tensors[index].data.iter().for_each(|&v| sink(v))
    })
}

/// A LoRA adapter for a [`TinyModelSpec`] model.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSpec {
    /// The model it adapts (its widths decide the tensor shapes).
    pub base: TinyModelSpec,
    /// `general.architecture` written into the adapter (the tiny model's is `llama`).
    pub arch: String,
    /// The rank of every A/B pair.
    pub rank: u32,
    /// `adapter.lora.alpha`; `None` leaves the key out (llama.cpp then scales by 1, not
    /// `alpha / rank`).
    pub alpha: Option<f32>,
    /// Base tensor names to adapt, e.g. `blk.0.attn_q.weight`, `token_embd.weight`.
    pub targets: Vec<String>,
    /// Seed of the A/B values.
    pub seed: u64,
    /// Half-width of the uniform distribution of the A/B values.
    pub magnitude: f32,
}

impl LoraSpec {
    /// A rank-4 adapter (alpha 8) for [`TinyModelSpec::tiny`] on the token embeddings,
    /// `attn_q`, `attn_v` and `ffn_up` of every layer and `output.weight`.
    pub fn tiny() -> Self {
        let base = TinyModelSpec::tiny();
        let mut targets = vec!["token_embd.weight".to_string()];
        for il in 0..base.n_layer {
            for t in ["attn_q", "attn_v", "ffn_up"] {
                targets.push(format!("blk.{il}.{t}.weight"));
            }
        }
        targets.push("output.weight".to_string());
        LoraSpec {
            base,
            arch: "llama".into(),
            rank: 4,
            alpha: Some(8.0),
            targets,
            seed: 0x10aa_0001,
            magnitude: 0.5,
        }
    }

    /// The `ne` of a base tensor of [`LoraSpec::base`], `None` for unknown names.
    pub fn base_dims(&self, name: &str) -> Option<[u64; 2]> {
        let s = &self.base;
        let d = u64::from(s.n_embd);
        let kv = u64::from(s.n_embd / s.n_head) * u64::from(s.n_head_kv);
        let ff = u64::from(s.n_ff);
        let vocab = u64::from(N_VOCAB);
        if name == "token_embd.weight" || name == "output.weight" {
            return Some([d, vocab]);
        }
        let rest = name.strip_prefix("blk.")?;
        let (layer, t) = rest.split_once('.')?;
        if layer.parse::<u32>().ok()? >= s.n_layer {
            return None;
        }
        Some(match t {
            "attn_q.weight" | "attn_output.weight" => [d, d],
            "attn_k.weight" | "attn_v.weight" => [d, kv],
            "ffn_gate.weight" | "ffn_up.weight" => [d, ff],
            "ffn_down.weight" => [ff, d],
            _ => return None,
        })
    }

    /// The adapter's metadata.
    pub fn metadata(&self) -> Vec<(&'static str, Kv)> {
        let mut kvs = vec![
            ("general.type", Kv::Str("adapter".into())),
            ("general.architecture", Kv::Str(self.arch.clone())),
            ("general.name", Kv::Str("tiny-lora".into())),
            ("adapter.type", Kv::Str("lora".into())),
        ];
        if let Some(alpha) = self.alpha {
            kvs.push(("adapter.lora.alpha", Kv::F32(alpha)));
        }
        kvs
    }

    /// The A/B tensors (seeded uniform values); fails for a target the base model lacks.
    pub fn tensors(&self) -> io::Result<Vec<Tensor>> {
        let r = u64::from(self.rank);
        let mut rng = SplitMix64::new(self.seed);
        let mut random = |dims: Vec<u64>| {
            let n = dims.iter().product::<u64>() as usize;
            (0..n)
                .map(|_| self.magnitude * rng.next_symmetric())
                .collect::<Vec<f32>>()
        };
        let mut out = Vec::new();
        for name in &self.targets {
            let [n_in, n_out] = self
                .base_dims(name)
                .ok_or_else(|| io::Error::other(format!("the base model has no {name}")))?;
            let (a, b) = if name == "token_embd.weight" {
                (vec![r, n_out], vec![r, n_in])
            } else {
                (vec![n_in, r], vec![r, n_out])
            };
            out.push(Tensor {
                name: format!("{name}.lora_a"),
                data: random(a.clone()),
                dims: a,
            });
            out.push(Tensor {
                name: format!("{name}.lora_b"),
                data: random(b.clone()),
                dims: b,
            });
        }
        Ok(out)
    }
}

/// Writes the adapter `spec` describes.
pub fn write_lora(spec: &LoraSpec, path: &Path) -> io::Result<()> {
    write_gguf(path, &spec.metadata(), &spec.tensors()?)
}

/// Writes `spec` to `<dir>/<name>.gguf` and returns the path.
pub fn lora_in(dir: &Path, name: &str, spec: &LoraSpec) -> io::Result<PathBuf> {
    let path = dir.join(format!("{name}.gguf"));
    write_lora(spec, &path)?;
    Ok(path)
}

/// [`LoraSpec::tiny`] written for a *different* base: a 32-wide, 1-layer llama model, so its
/// tensor shapes do not match the tiny model's (llama.cpp: "tensor ... has incorrect shape
/// (hint: maybe wrong base model?)").
pub fn wrong_base_spec() -> LoraSpec {
    let mut spec = LoraSpec::tiny();
    spec.base.n_embd = 32;
    spec.base.n_layer = 1;
    spec.base.n_ff = 64;
    spec.targets = vec!["blk.0.attn_q.weight".into(), "blk.0.ffn_up.weight".into()];
    spec
}
