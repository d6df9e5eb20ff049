//! Embeddings: pooled per sequence and per token; [`Embedder`] for many texts per decode
//! and reranking.

mod embedder;

pub use embedder::Embedder;

use llama_prebuilt_sys as sys;

use crate::batch::Batch;
use crate::context::Context;
use crate::context_params::Pooling;
use crate::error::{Error, Result};
use crate::token::Token;

impl Context<'_> {
    fn embedding_len(&self) -> usize {
        self.model().n_embd_out() as usize
    }

    /// The pooled embedding of sequence `seq_id` from the last decode (for
    /// [`Pooling::Rank`]: the ranking score(s)). Borrows the context like
    /// [`Context::logits`].
    ///
    /// # Failure
    /// [`Error::EmbeddingsUnavailable`] if the context computes no embeddings or does not
    /// pool, or the last decode had no tokens of that sequence; [`Error::SeqIdOutOfRange`].
    pub fn embeddings_seq(&self, seq_id: i32) -> Result<&[f32]> {
        let seq = self.check_seq_id(seq_id)?;
        if !self.embeddings_enabled() {
            return Err(Error::EmbeddingsUnavailable {
                reason: "the context was created without embeddings",
            });
        }
        if matches!(self.pooling(), Pooling::None | Pooling::FromModel) {
            return Err(Error::EmbeddingsUnavailable {
                reason: "the context does not pool (use embeddings_ith for per-token embeddings)",
            });
        }
        let len = if self.pooling() == Pooling::Rank {
            // SAFETY: a read-only query of the model.
            unsafe { sys::llama_model_n_cls_out(self.model().as_ptr()) as usize }
        } else {
            self.embedding_len()
        };
        // SAFETY: a valid context; the pooled vector lives until the next decode (which needs
        // `&mut self`).
        unsafe {
            let ptr = sys::llama_get_embeddings_seq(self.as_ptr(), seq);
            if ptr.is_null() {
                return Err(Error::EmbeddingsUnavailable {
                    reason: "the last decode had no tokens of this sequence",
                });
            }
            Ok(std::slice::from_raw_parts(ptr, len))
        }
    }

    /// The embedding of the token at batch index `index` of the last decode, in a context
    /// created with embeddings and [`Pooling::None`] (contexts that compute embeddings output
    /// every token).
    ///
    /// # Failure
    /// [`Error::EmbeddingsUnavailable`] if the context computes no embeddings or pools them
    /// (llama.cpp then keeps only the pooled vectors), [`Error::NoOutput`] for an index that
    /// was not in the last batch.
    pub fn embeddings_ith(&self, index: usize) -> Result<&[f32]> {
        if !self.embeddings_enabled() {
            return Err(Error::EmbeddingsUnavailable {
                reason: "the context was created without embeddings",
            });
        }
        if self.pooling() != Pooling::None {
            return Err(Error::EmbeddingsUnavailable {
                reason: "the context pools embeddings (create it with Pooling::None for per-token embeddings)",
            });
        }
        let i = self.check_output(index)?;
        // SAFETY: the index had an output in the last decode; the vector lives until the next
        // decode.
        unsafe {
            let ptr = sys::llama_get_embeddings_ith(self.as_ptr(), i);
            if ptr.is_null() {
                return Err(Error::NoOutput { index });
            }
            Ok(std::slice::from_raw_parts(ptr, self.embedding_len()))
        }
    }

    /// Embeds one text given as tokens: clears the memory, decodes `tokens` as sequence 0 and
    /// returns a copy of its pooled embedding. The context needs embeddings and pooling (e.g.
    /// `ContextParams::default().embeddings(true).pooling(Pooling::Mean)`) whose `n_batch`
    /// and `n_ubatch` are at least `tokens.len()` (llama.cpp pools within one ubatch).
    pub fn embed(&mut self, tokens: &[Token]) -> Result<Vec<f32>> {
        self.clear_memory();
        self.decode(&Batch::for_sequence(tokens, 0, 0)?)?;
        self.embeddings_seq(0).map(<[f32]>::to_vec)
    }
}

/// Cosine similarity of two vectors (0.0 if either is all zeros or their lengths differ).
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += f64::from(x) * f64::from(y);
        na += f64::from(x) * f64::from(x);
        nb += f64::from(y) * f64::from(y);
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na.sqrt() * nb.sqrt())) as f32
    }
}

/// Scales `v` to unit length (leaves an all-zero vector alone).
pub fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        for x in v {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity() {
        assert!((cosine_similarity(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine_similarity(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-6);
        assert_eq!(cosine_similarity(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
        assert_eq!(cosine_similarity(&[1.0], &[1.0, 1.0]), 0.0);
        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    }
}
