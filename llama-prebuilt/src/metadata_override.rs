//! Overrides of a model's GGUF metadata at load time (`llama_model_params::kv_overrides`), e.g.
//! a different `<arch>.context_length` or RoPE base, checked before llama.cpp sees them: its
//! fixed 128-byte key and string fields would silently truncate.

use std::ffi::c_char;

use llama_prebuilt_sys as sys;

use crate::error::{Error, Result};

/// The value of a metadata override. Its type must be the key's type in the model (an integer
/// key takes [`MetadataValue::Int`]); a mismatch fails the load with llama.cpp's message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MetadataValue {
    /// Any integer key (llama.cpp converts it to the key's width).
    Int(i64),
    /// A float key; must be finite.
    Float(f64),
    /// A boolean key.
    Bool(bool),
    /// A string key; at most 127 bytes, no NUL.
    Str(String),
}

/// Keys and string values are C arrays of this many bytes, NUL included.
const FIELD_BYTES: usize = 128;

/// llama.cpp's array: one entry per override, then an entry with an empty key. Empty input
/// gives an empty vector (no array is passed then).
pub(crate) fn build(
    overrides: &[(String, MetadataValue)],
) -> Result<Vec<sys::llama_model_kv_override>> {
    let mut out = Vec::with_capacity(overrides.len() + 1);
    for (key, value) in overrides {
        let invalid = |reason: String| Error::InvalidParam {
            name: "metadata_override",
            reason,
        };
        check_field(key).map_err(|why| invalid(format!("key {key:?} {why}")))?;
        // SAFETY: an all-zero llama_model_kv_override is valid plain data.
        let mut entry: sys::llama_model_kv_override = unsafe { std::mem::zeroed() };
        copy_field(&mut entry.key, key);
        match value {
            MetadataValue::Int(v) => {
                entry.tag = sys::LLAMA_KV_OVERRIDE_TYPE_INT;
                entry.__bindgen_anon_1.val_i64 = *v;
            }
            MetadataValue::Float(v) => {
                if !v.is_finite() {
                    return Err(invalid(format!("{key}: {v} is not a finite float")));
                }
                entry.tag = sys::LLAMA_KV_OVERRIDE_TYPE_FLOAT;
                entry.__bindgen_anon_1.val_f64 = *v;
            }
            MetadataValue::Bool(v) => {
                entry.tag = sys::LLAMA_KV_OVERRIDE_TYPE_BOOL;
                entry.__bindgen_anon_1.val_bool = *v;
            }
            MetadataValue::Str(s) => {
                check_field(s).map_err(|why| invalid(format!("{key}: the value {why}")))?;
                entry.tag = sys::LLAMA_KV_OVERRIDE_TYPE_STR;
                // SAFETY: writing the string member of our own zeroed union.
                copy_field(unsafe { &mut entry.__bindgen_anon_1.val_str }, s);
            }
        }
        out.push(entry);
    }
    if !out.is_empty() {
        // SAFETY: the terminator: all zero, empty key.
        out.push(unsafe { std::mem::zeroed() });
    }
    Ok(out)
}

/// Checks each override's type against the key's type in the file: llama.cpp ignores an
/// override of the wrong type with a warning and keeps the file's value, which would make the
/// override silently do nothing. Keys the file lacks are allowed (llama.cpp then uses the
/// override). `c_path` is a GGUF file whose header [`crate::gguf`] already checked.
pub(crate) fn check_types(
    c_path: &std::ffi::CStr,
    overrides: &[(String, MetadataValue)],
) -> Result<()> {
    if overrides.is_empty() {
        return Ok(());
    }
    let params = sys::gguf_init_params {
        no_alloc: true,
        ctx: std::ptr::null_mut(),
    };
    // SAFETY: a NUL-terminated path; with no_alloc and no ctx only the metadata is read, and a
    // malformed file gives NULL.
    let ctx = unsafe { sys::gguf_init_from_file(c_path.as_ptr(), params) };
    if ctx.is_null() {
        return Ok(()); // llama.cpp will report the file itself
    }
    let mut result = Ok(());
    for (key, value) in overrides {
        let Ok(c_key) = std::ffi::CString::new(key.as_str()) else {
            continue; // build() reports the NUL byte
        };
        // SAFETY: a live gguf context and a NUL-terminated key.
        let id = unsafe { sys::gguf_find_key(ctx, c_key.as_ptr()) };
        if id < 0 {
            continue;
        }
        // SAFETY: `id` was just found in this context.
        let ty = unsafe { sys::gguf_get_kv_type(ctx, id) };
        let (fits, needed) = match ty {
            sys::GGUF_TYPE_UINT8
            | sys::GGUF_TYPE_INT8
            | sys::GGUF_TYPE_UINT16
            | sys::GGUF_TYPE_INT16
            | sys::GGUF_TYPE_UINT32
            | sys::GGUF_TYPE_INT32
            | sys::GGUF_TYPE_UINT64
            | sys::GGUF_TYPE_INT64 => {
                (matches!(value, MetadataValue::Int(_)), "MetadataValue::Int")
            }
            sys::GGUF_TYPE_FLOAT32 | sys::GGUF_TYPE_FLOAT64 => (
                matches!(value, MetadataValue::Float(_)),
                "MetadataValue::Float",
            ),
            sys::GGUF_TYPE_BOOL => (
                matches!(value, MetadataValue::Bool(_)),
                "MetadataValue::Bool",
            ),
            sys::GGUF_TYPE_STRING => (matches!(value, MetadataValue::Str(_)), "MetadataValue::Str"),
            _ => (false, "nothing: llama.cpp cannot override arrays"),
        };
        if !fits {
            result = Err(Error::InvalidParam {
                name: "metadata_override",
                reason: format!(
                    "{key} is {} in the model, {value:?} cannot override it; use {needed}",
                    // SAFETY: a static name for any type value.
                    unsafe { crate::ffi::borrowed_string(sys::gguf_type_name(ty)) }
                        .unwrap_or_else(|| format!("type {ty}"))
                ),
            });
            break;
        }
    }
    // SAFETY: our context, freed once.
    unsafe { sys::gguf_free(ctx) };
    result
}

fn check_field(text: &str) -> std::result::Result<(), String> {
    if text.is_empty() {
        return Err("is empty".into());
    }
    if text.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    if text.len() >= FIELD_BYTES {
        return Err(format!(
            "is {} bytes; llama.cpp holds at most {} (plus the NUL)",
            text.len(),
            FIELD_BYTES - 1
        ));
    }
    Ok(())
}

fn copy_field(dst: &mut [c_char; FIELD_BYTES], text: &str) {
    for (d, b) in dst.iter_mut().zip(text.bytes()) {
        *d = b as c_char;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_err(overrides: &[(String, MetadataValue)]) -> Error {
        match build(overrides) {
            Ok(_) => panic!("accepted {overrides:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn entries_are_terminated_and_checked() {
        assert!(build(&[]).unwrap().is_empty());
        let built = build(&[("a.b".into(), MetadataValue::Int(7))]).unwrap();
        assert_eq!(built.len(), 2);
        assert_eq!(built[1].key[0], 0);
        let long = "k".repeat(128);
        let err = build_err(&[(long, MetadataValue::Bool(true))]);
        assert!(err.to_string().contains("at most 127"), "{err}");
        let err = build_err(&[("x".into(), MetadataValue::Float(f64::NAN))]);
        assert!(err.to_string().contains("not a finite float"), "{err}");
        let err = build_err(&[("x".into(), MetadataValue::Str("a\0b".into()))]);
        assert!(err.to_string().contains("NUL"), "{err}");
        let err = build_err(&[("".into(), MetadataValue::Int(1))]);
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
