//! Per-sequence operations of a [`Context`]: saving and restoring one sequence's state, and
//! shifting its positions so that a long conversation can drop old tokens instead of ending
//! with a full context.

use llama_prebuilt_sys as sys;

use crate::context::{Context, position_range};
use crate::error::{Error, Result};
use crate::ffi;

/// What [`Context::seq_state`] saves (llama.h's `LLAMA_STATE_SEQ_FLAGS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SeqStateScope {
    /// The sequence's whole state.
    #[default]
    Full,
    /// Only partial states: a sliding-window attention cache or a recurrent state
    /// (`LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY`); smaller, for models that have one.
    PartialOnly,
}

impl SeqStateScope {
    fn flags(self) -> sys::llama_state_seq_flags {
        match self {
            SeqStateScope::Full => sys::LLAMA_STATE_SEQ_FLAGS_NONE,
            SeqStateScope::PartialOnly => sys::LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY,
        }
    }
}

impl Context<'_> {
    /// Saves the state of sequence `seq_id` (its memory), for [`Context::load_seq_state`] into
    /// this or another sequence of a context with the same model and parameters.
    ///
    /// # Failure
    /// [`Error::SeqIdOutOfRange`]; [`Error::State`] if llama.cpp writes nothing for a sequence
    /// that has tokens.
    pub fn seq_state(&mut self, seq_id: i32, scope: SeqStateScope) -> Result<Vec<u8>> {
        let seq = self.check_seq_id(seq_id)?;
        let flags = scope.flags();
        // SAFETY: a valid context, exclusively borrowed; a checked sequence id.
        let size = unsafe { sys::llama_state_seq_get_size_ext(self.as_ptr(), seq, flags) };
        let mut buf = vec![0u8; size];
        let (n, message) = ffi::gate(|| {
            // SAFETY: writes at most buf.len() bytes into our buffer.
            unsafe {
                sys::llama_state_seq_get_data_ext(
                    self.as_ptr(),
                    buf.as_mut_ptr(),
                    buf.len(),
                    seq,
                    flags,
                )
            }
        });
        if n == 0 && size > 0 {
            return Err(Error::State {
                operation: "saving the sequence state",
                message,
            });
        }
        buf.truncate(n);
        Ok(buf)
    }

    /// Restores a state saved by [`Context::seq_state`] into sequence `seq_id` (its earlier
    /// tokens are replaced).
    ///
    /// # Failure
    /// [`Error::SeqIdOutOfRange`]; [`Error::State`] if the bytes do not fit this context (other
    /// model or parameters, truncated data, no free memory for them).
    pub fn load_seq_state(
        &mut self,
        seq_id: i32,
        state: &[u8],
        scope: SeqStateScope,
    ) -> Result<()> {
        let seq = self.check_seq_id(seq_id)?;
        if state.is_empty() {
            return Err(Error::State {
                operation: "loading the sequence state",
                message: Some("the state is empty".into()),
            });
        }
        let (n, message) = ffi::gate(|| {
            // SAFETY: reads at most state.len() bytes; exclusively borrowed context.
            unsafe {
                sys::llama_state_seq_set_data_ext(
                    self.as_ptr(),
                    state.as_ptr(),
                    state.len(),
                    seq,
                    scope.flags(),
                )
            }
        });
        if n == 0 {
            return Err(Error::State {
                operation: "loading the sequence state",
                message,
            });
        }
        Ok(())
    }

    /// Whether the memory can shift positions ([`Context::seq_add`], [`Context::seq_div`]):
    /// false for models with several positions per embedding (M-RoPE) and some others.
    pub fn can_shift(&self) -> bool {
        // SAFETY: a read-only query; the memory pointer may be null (then false).
        !self.memory().is_null() && unsafe { sys::llama_memory_can_shift(self.memory()) }
    }

    /// Adds `delta` to the positions of sequence `seq_id`'s tokens in `positions`.
    ///
    /// # Failure
    /// [`Error::SeqIdOutOfRange`], [`Error::InvalidPosition`], and [`Error::InvalidParam`] if
    /// the memory cannot shift (llama.cpp would abort).
    pub fn seq_add(
        &mut self,
        seq_id: i32,
        positions: impl std::ops::RangeBounds<i32>,
        delta: i32,
    ) -> Result<()> {
        let seq = self.check_seq_id(seq_id)?;
        let (p0, p1) = position_range(&positions)?;
        self.check_can_shift("seq_add")?;
        // SAFETY: checked sequence id; the memory supports shifting.
        unsafe { sys::llama_memory_seq_add(self.memory(), seq, p0, p1, delta) };
        Ok(())
    }

    /// Divides the positions of sequence `seq_id`'s tokens in `positions` by `divisor` (e.g.
    /// for self-extend). A divisor of 1 changes nothing.
    ///
    /// # Failure
    /// As [`Context::seq_add`]; [`Error::InvalidParam`] for a divisor below 1.
    pub fn seq_div(
        &mut self,
        seq_id: i32,
        positions: impl std::ops::RangeBounds<i32>,
        divisor: i32,
    ) -> Result<()> {
        let seq = self.check_seq_id(seq_id)?;
        let (p0, p1) = position_range(&positions)?;
        if divisor < 1 {
            return Err(Error::InvalidParam {
                name: "divisor",
                reason: format!("{divisor}; positions can only be divided by 1 or more"),
            });
        }
        self.check_can_shift("seq_div")?;
        // SAFETY: checked sequence id and divisor; the memory supports shifting.
        unsafe { sys::llama_memory_seq_div(self.memory(), seq, p0, p1, divisor) };
        Ok(())
    }

    /// Drops `discard` tokens of sequence `seq_id` after its first `keep` (e.g. a system
    /// prompt) and moves the rest back, so that generation can go on in a full context
    /// (llama.cpp's "context shift"). Returns the new next position.
    ///
    /// # Failure
    /// [`Error::InvalidParam`] if the memory cannot shift or `discard` is 0; the errors of
    /// [`Context::seq_add`].
    pub fn shift_out(&mut self, seq_id: i32, keep: i32, discard: i32) -> Result<i32> {
        if discard < 1 || keep < 0 {
            return Err(Error::InvalidParam {
                name: "discard",
                reason: format!("keep {keep}, discard {discard}: keep >= 0 and discard >= 1"),
            });
        }
        self.check_can_shift("shift_out")?;
        let end = keep.saturating_add(discard);
        self.seq_rm(Some(seq_id), keep..end)?;
        self.seq_add(seq_id, end.., -discard)?;
        Ok(self.seq_pos_max(seq_id)?.map_or(0, |p| p + 1))
    }

    fn check_can_shift(&self, what: &'static str) -> Result<()> {
        if self.can_shift() {
            Ok(())
        } else {
            Err(Error::InvalidParam {
                name: what,
                reason: "this model's memory cannot shift positions (Context::can_shift is false)"
                    .into(),
            })
        }
    }
}
