//! A Rust-owned batch of tokens for [`Context::decode`](crate::Context::decode).

use crate::error::{Error, Result};
use crate::token::Token;

/// Tokens to decode, each with its position, the sequences it belongs to, and whether its
/// logits (or embeddings) are wanted. Owned by Rust; [`Context::decode`](crate::Context::decode)
/// checks it against the context (token ids in the vocabulary, sequence ids below
/// `n_seq_max`, at most `n_batch` tokens) before llama.cpp sees it.
///
/// ```
/// use llama_prebuilt::{Batch, Token};
///
/// let prompt = [Token(1), Token(2), Token(3)];
/// let mut batch = Batch::new(16);
/// for (pos, &token) in prompt.iter().enumerate() {
///     let last = pos + 1 == prompt.len();
///     batch.add(token, pos as i32, &[0], last)?;
/// }
/// assert_eq!(batch.len(), 3);
/// # Ok::<(), llama_prebuilt::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Batch {
    capacity: usize,
    tokens: Vec<i32>,
    positions: Vec<i32>,
    n_seq_ids: Vec<i32>,
    /// Where each token's sequence ids start in `seq_ids`.
    seq_starts: Vec<usize>,
    seq_ids: Vec<i32>,
    outputs: Vec<i8>,
}

impl Batch {
    /// An empty batch that holds up to `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        Batch {
            capacity,
            tokens: Vec::with_capacity(capacity),
            positions: Vec::with_capacity(capacity),
            n_seq_ids: Vec::with_capacity(capacity),
            seq_starts: Vec::with_capacity(capacity),
            seq_ids: Vec::with_capacity(capacity),
            outputs: Vec::with_capacity(capacity),
        }
    }

    /// A batch of `tokens` for one sequence at positions `start_pos..`, with output only for
    /// the last token (what a prompt needs before sampling).
    pub fn for_sequence(tokens: &[Token], start_pos: i32, seq_id: i32) -> Result<Self> {
        let mut batch = Batch::new(tokens.len());
        for (i, &token) in tokens.iter().enumerate() {
            let pos = i32::try_from(i)
                .ok()
                .and_then(|i| start_pos.checked_add(i))
                .ok_or(Error::InvalidPosition { pos: i32::MAX })?;
            batch.add(token, pos, &[seq_id], i + 1 == tokens.len())?;
        }
        Ok(batch)
    }

    /// Appends a token at position `pos` belonging to the sequences `seq_ids`; `output`
    /// requests its logits (or embeddings).
    ///
    /// # Failure
    /// [`Error::BatchFull`] when the batch already holds `capacity` tokens,
    /// [`Error::InvalidBatch`] without any sequence id, [`Error::InvalidPosition`] for a
    /// negative position, [`Error::SeqIdOutOfRange`] for a negative sequence id. (Token ids
    /// and sequence ids are checked against the context at decode time.)
    pub fn add(&mut self, token: Token, pos: i32, seq_ids: &[i32], output: bool) -> Result<()> {
        if self.tokens.len() >= self.capacity {
            return Err(Error::BatchFull {
                capacity: self.capacity,
            });
        }
        if seq_ids.is_empty() {
            return Err(Error::InvalidBatch {
                reason: "a token needs at least one sequence id",
            });
        }
        if pos < 0 {
            return Err(Error::InvalidPosition { pos });
        }
        if let Some(&seq_id) = seq_ids.iter().find(|&&s| s < 0) {
            return Err(Error::SeqIdOutOfRange {
                seq_id,
                n_seq_max: 0,
            });
        }
        self.tokens.push(token.0);
        self.positions.push(pos);
        self.n_seq_ids.push(seq_ids.len() as i32);
        self.seq_starts.push(self.seq_ids.len());
        self.seq_ids.extend_from_slice(seq_ids);
        self.outputs.push(i8::from(output));
        Ok(())
    }

    /// Removes all tokens (keeps the capacity).
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.positions.clear();
        self.n_seq_ids.clear();
        self.seq_starts.clear();
        self.seq_ids.clear();
        self.outputs.clear();
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the batch has no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Maximum number of tokens.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Requests (or not) the output of the token at `index`, e.g. to switch on the last one.
    pub fn set_output(&mut self, index: usize, output: bool) -> Result<()> {
        let slot = self
            .outputs
            .get_mut(index)
            .ok_or(Error::NoOutput { index })?;
        *slot = i8::from(output);
        Ok(())
    }

    pub(crate) fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.tokens.iter().map(|&t| Token(t))
    }

    pub(crate) fn all_seq_ids(&self) -> &[i32] {
        &self.seq_ids
    }

    /// Indices of the tokens whose outputs are requested.
    pub(crate) fn output_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.outputs
            .iter()
            .enumerate()
            .filter(|&(_, &o)| o != 0)
            .map(|(i, _)| i)
    }

    /// Pointers to each token's sequence ids, as `llama_batch::seq_id` wants them.
    /// llama.cpp only reads them (the C API lacks `const`).
    pub(crate) fn seq_id_ptrs(&self) -> Vec<*mut i32> {
        let base = self.seq_ids.as_ptr().cast_mut();
        self.seq_starts
            .iter()
            .map(|&start| base.wrapping_add(start))
            .collect()
    }

    /// The raw view llama_decode reads (and never writes: the pointers are `*mut` only
    /// because the C struct lacks `const`). `seq_ptrs` comes from [`Batch::seq_id_ptrs`] of
    /// the same batch; the view is valid while both are.
    pub(crate) fn raw(&self, seq_ptrs: &mut [*mut i32]) -> llama_prebuilt_sys::llama_batch {
        llama_prebuilt_sys::llama_batch {
            n_tokens: self.tokens.len() as i32,
            token: self.tokens.as_ptr().cast_mut(),
            embd: std::ptr::null_mut(),
            pos: self.positions.as_ptr().cast_mut(),
            n_seq_id: self.n_seq_ids.as_ptr().cast_mut(),
            seq_id: seq_ptrs.as_mut_ptr(),
            logits: self.outputs.as_ptr().cast_mut(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_and_validation() {
        let mut b = Batch::new(2);
        b.add(Token(1), 0, &[0], false).unwrap();
        b.add(Token(2), 1, &[0, 1], true).unwrap();
        assert!(matches!(
            b.add(Token(3), 2, &[0], true),
            Err(Error::BatchFull { capacity: 2 })
        ));
        assert_eq!(b.output_indices().collect::<Vec<_>>(), vec![1]);
        assert_eq!(b.all_seq_ids(), &[0, 0, 1]);
        b.clear();
        assert!(b.is_empty());
        assert!(matches!(
            b.add(Token(1), -1, &[0], true),
            Err(Error::InvalidPosition { pos: -1 })
        ));
        assert!(matches!(
            b.add(Token(1), 0, &[], true),
            Err(Error::InvalidBatch { .. })
        ));
        assert!(matches!(
            b.add(Token(1), 0, &[-2], true),
            Err(Error::SeqIdOutOfRange { seq_id: -2, .. })
        ));
    }

    #[test]
    fn for_sequence_outputs_the_last_token() {
        let b = Batch::for_sequence(&[Token(5), Token(6), Token(7)], 10, 0).unwrap();
        assert_eq!(b.positions, vec![10, 11, 12]);
        assert_eq!(b.output_indices().collect::<Vec<_>>(), vec![2]);
    }
}
