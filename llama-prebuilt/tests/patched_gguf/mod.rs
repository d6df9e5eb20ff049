//! Variants of the generated tiny model with edited metadata, for the sampler tests: a GGUF
//! file is rewritten with its key/value section changed and its tensor infos and data copied
//! byte for byte (tensor offsets are relative to the data section, so they stay valid).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use llama_prebuilt_test_support::gguf;

/// Token ids the FIM variants declare as fill-in-the-middle prefix, suffix and middle (byte
/// tokens for the control characters 0x01..=0x03, which no test prompt contains).
pub const FIM_PRE: i32 = 1;
/// See [`FIM_PRE`].
pub const FIM_SUF: i32 = 2;
/// See [`FIM_PRE`].
pub const FIM_MID: i32 = 3;

/// The token whose text [`long_token_model`] makes 600 bytes long.
pub const LONG_TOKEN: i32 = 4;

/// One metadata value: string arrays and u32 are decoded, everything else kept raw.
#[derive(Clone)]
pub enum Value {
    U32(u32),
    Strings(Vec<Vec<u8>>),
    Raw { ty: u32, bytes: Vec<u8> },
}

const ALIGNMENT: usize = 32;
const TYPE_U32: u32 = 4;
const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap())
    }
    fn string(&mut self) -> Vec<u8> {
        let n = self.u64() as usize;
        self.take(n).to_vec()
    }
    /// Skips one value of type `ty` (not an array).
    fn skip_scalar(&mut self, ty: u32) {
        match ty {
            0 | 1 | 7 => self.pos += 1,
            2 | 3 => self.pos += 2,
            4..=6 => self.pos += 4,
            10..=12 => self.pos += 8,
            TYPE_STRING => {
                self.string();
            }
            _ => panic!("unexpected GGUF value type {ty}"),
        }
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s);
}

/// Writes a copy of `src` whose metadata `edit` changed, as `CARGO_TARGET_TMPDIR/NAME.gguf`
/// (written under a temporary name and renamed, so concurrent tests never see half a file).
pub fn rewrite(src: &Path, name: &str, edit: impl FnOnce(&mut Vec<(String, Value)>)) -> PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let mut r = Reader {
        bytes: &bytes,
        pos: 0,
    };
    assert_eq!(r.take(4), b"GGUF");
    let version = r.u32();
    let n_tensors = r.u64();
    let n_kv = r.u64();
    let mut kvs = Vec::new();
    for _ in 0..n_kv {
        let key = String::from_utf8(r.string()).unwrap();
        let ty = r.u32();
        let start = r.pos;
        let value = match ty {
            TYPE_U32 => Value::U32(r.u32()),
            TYPE_ARRAY => {
                let elem = r.u32();
                let n = r.u64();
                if elem == TYPE_STRING {
                    Value::Strings((0..n).map(|_| r.string()).collect())
                } else {
                    (0..n).for_each(|_| r.skip_scalar(elem));
                    Value::Raw {
                        ty,
                        bytes: bytes[start..r.pos].to_vec(),
                    }
                }
            }
            _ => {
                r.skip_scalar(ty);
                Value::Raw {
                    ty,
                    bytes: bytes[start..r.pos].to_vec(),
                }
            }
        };
        kvs.push((key, value));
    }
    let infos_start = r.pos;
    for _ in 0..n_tensors {
        r.string();
        let n_dims = r.u32();
        r.pos += 8 * n_dims as usize + 4 + 8;
    }
    let infos = &bytes[infos_start..r.pos];
    let data = &bytes[r.pos.next_multiple_of(ALIGNMENT)..];

    edit(&mut kvs);

    let mut out = Vec::with_capacity(bytes.len() + 4096);
    out.extend(b"GGUF");
    out.extend(version.to_le_bytes());
    out.extend(n_tensors.to_le_bytes());
    out.extend((kvs.len() as u64).to_le_bytes());
    for (key, value) in &kvs {
        put_string(&mut out, key.as_bytes());
        match value {
            Value::U32(v) => {
                out.extend(TYPE_U32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Value::Strings(items) => {
                out.extend(TYPE_ARRAY.to_le_bytes());
                out.extend(TYPE_STRING.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|s| put_string(&mut out, s));
            }
            Value::Raw { ty, bytes } => {
                out.extend(ty.to_le_bytes());
                out.extend(bytes);
            }
        }
    }
    out.extend(infos);
    out.resize(out.len().next_multiple_of(ALIGNMENT), 0);
    out.extend(data);

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("{name}.gguf"));
    if std::fs::read(&path).is_ok_and(|existing| existing == out) {
        return path;
    }
    let tmp = dir.join(format!(
        ".{name}.{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, &out).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn set(kvs: &mut Vec<(String, Value)>, key: &str, value: Value) {
    kvs.retain(|(k, _)| k != key);
    kvs.push((key.to_string(), value));
}

fn add_fim(kvs: &mut Vec<(String, Value)>) {
    set_fim(kvs, [FIM_PRE, FIM_SUF, FIM_MID]);
}

fn set_fim(kvs: &mut Vec<(String, Value)>, [pre, suf, mid]: [i32; 3]) {
    set(
        kvs,
        "tokenizer.ggml.fim_pre_token_id",
        Value::U32(pre as u32),
    );
    set(
        kvs,
        "tokenizer.ggml.fim_suf_token_id",
        Value::U32(suf as u32),
    );
    set(
        kvs,
        "tokenizer.ggml.fim_mid_token_id",
        Value::U32(mid as u32),
    );
}

/// SmolLM2-135M-Instruct (real weights; it has no fill-in-the-middle tokens of its own) with
/// `<repo_name>`, `<reponame>` and `<filename>` (ids 3, 4, 6) declared as FIM prefix, suffix
/// and middle, so the infill sampler accepts it. The infill step itself never looks at the
/// FIM tokens; what matters for it is real, peaked next-token distributions.
pub fn smollm2_fim(smollm2: &Path) -> PathBuf {
    rewrite(smollm2, "smollm2-fim", |kvs| set_fim(kvs, [3, 4, 6]))
}

/// The tiny model with fill-in-the-middle token ids in its metadata.
pub fn fim_model() -> PathBuf {
    rewrite(&gguf::tiny_model(), "tiny-fim", add_fim)
}

/// [`fim_model`] whose token [`LONG_TOKEN`] is 600 bytes long.
pub fn long_token_model() -> PathBuf {
    rewrite(&gguf::tiny_model(), "tiny-fim-long-token", |kvs| {
        add_fim(kvs);
        let tokens = kvs
            .iter_mut()
            .find(|(k, _)| k == "tokenizer.ggml.tokens")
            .expect("the tiny model has tokens");
        let Value::Strings(items) = &mut tokens.1 else {
            panic!("tokenizer.ggml.tokens is not a string array")
        };
        items[LONG_TOKEN as usize] = vec![b'a'; 600];
    })
}

/// The tiny model with no vocabulary: `tokenizer.ggml.model = "none"` and no
/// `llama.vocab_size`, so its vocabulary has no tokens (`llama_vocab_n_tokens` is 0). Only a
/// vocabulary-only load succeeds (the weights still have rows for 270 tokens).
pub fn empty_vocab_model() -> PathBuf {
    rewrite(&gguf::tiny_model(), "tiny-empty-vocab", |kvs| {
        kvs.retain(|(k, _)| k != "llama.vocab_size");
        let mut none = (4u64).to_le_bytes().to_vec();
        none.extend(b"none");
        set(
            kvs,
            "tokenizer.ggml.model",
            Value::Raw {
                ty: TYPE_STRING,
                bytes: none,
            },
        );
    })
}

/// The tiny model claiming a training context of 2^25 tokens (its weights do not care).
pub fn huge_context_model() -> PathBuf {
    rewrite(&gguf::tiny_model(), "tiny-huge-context", |kvs| {
        set(kvs, "llama.context_length", Value::U32(1 << 25));
    })
}
