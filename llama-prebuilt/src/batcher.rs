//! Many independent generations in one context, one decode per step (continuous batching).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::batch::Batch;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::generate::{GenerateOptions, StopReason};
use crate::sampler::Sampler;
use crate::text_stream::TextStream;
use crate::token::Token;

/// Runs several generations at once in one [`Context`], each in its own sequence with its
/// own sampler, stop strings, token limit and cancellation. Every step builds one batch with
/// the next token of every running sequence plus as much of the waiting prompts as
/// `n_batch` allows, and makes one decode: what a server does to serve several users on one
/// model.
///
/// The context needs `n_seq_max` at least the number of sequences run at once; each sequence
/// gets `n_ctx / n_seq_max` positions (unless `kv_unified`). The text of each sequence is
/// exactly what a [`Generator`](crate::Generator) would stream for it (whole UTF-8 characters,
/// stop strings held back), and with greedy sampling the tokens are those it would generate
/// alone (tested).
///
/// ```
/// use llama_prebuilt::{BatchEvent, Batcher, ContextParams, GenerateOptions, Model, ModelParams, Sampler};
///
/// # let path = llama_prebuilt_test_support::gguf::tiny_model();
/// let model = Model::load(&path, &ModelParams::default())?;
/// let mut ctx = model.new_context(&ContextParams::default().n_ctx(512).n_seq_max(4))?;
/// let mut batcher = Batcher::new(&mut ctx);
/// for prompt in ["Hello", "The sky is", "1, 2, 3,"] {
///     let tokens = model.tokenize(prompt, true)?;
///     batcher.add(&tokens, Sampler::chain().greedy(), GenerateOptions::default().max_tokens(8))?;
/// }
/// for event in &mut batcher {
///     match event? {
///         BatchEvent::Text { seq, text } => print!("[{seq}] {text}"),
///         BatchEvent::Finished { seq, reason, .. } => println!("\n[{seq}] done: {reason:?}"),
///     }
/// }
/// # Ok::<(), llama_prebuilt::Error>(())
/// ```
pub struct Batcher<'ctx, 'model> {
    ctx: &'ctx mut Context<'model>,
    /// Indexed by sequence id.
    slots: Vec<Option<Slot>>,
    batch: Batch,
    events: VecDeque<BatchEvent>,
}

/// What a [`Batcher`] reports. (Exhaustive on purpose: a new kind of event would be a
/// breaking change, so that matches on it stay complete.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchEvent {
    /// More text of sequence `seq` (never empty).
    Text {
        /// The sequence id [`Batcher::add`] returned.
        seq: i32,
        /// The text.
        text: String,
    },
    /// Sequence `seq` ended; its id is free for [`Batcher::add`] again. Its memory is kept
    /// until then (save it with [`Context::seq_state`] through [`Batcher::context`]).
    Finished {
        /// The sequence id.
        seq: i32,
        /// Why it ended.
        reason: StopReason,
        /// Every token it generated (without a final end-of-generation token).
        tokens: Vec<Token>,
    },
}

/// Cancels one sequence of a [`Batcher`] from any thread; it ends with
/// [`StopReason::Cancelled`] at the next step.
#[derive(Debug, Clone)]
pub struct SequenceCancel(Arc<AtomicBool>);

impl SequenceCancel {
    /// Asks the sequence to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

struct Slot {
    sampler: Sampler,
    max_tokens: usize,
    prompt: Vec<Token>,
    /// How many prompt tokens have been put into batches.
    prompt_sent: usize,
    next_pos: i32,
    /// A sampled token that still has to be decoded.
    pending: Option<Token>,
    tokens: Vec<Token>,
    text: TextStream,
    cancel: Arc<AtomicBool>,
    /// Batch index of this sequence's output in the current batch.
    output: Option<usize>,
}

impl<'ctx, 'model> Batcher<'ctx, 'model> {
    /// A batcher on `ctx`, with no sequence yet.
    pub fn new(ctx: &'ctx mut Context<'model>) -> Self {
        let n_batch = ctx.n_batch().max(1) as usize;
        let n_seq = ctx.n_seq_max().max(1) as usize;
        Batcher {
            ctx,
            slots: (0..n_seq).map(|_| None).collect(),
            batch: Batch::new(n_batch),
            events: VecDeque::new(),
        }
    }

    /// Starts a generation after `prompt` in the lowest free sequence id, whose memory is
    /// cleared first, and returns that id. `options.seq_id` is ignored: the batcher assigns
    /// ids.
    ///
    /// # Failure
    /// [`Error::InvalidBatch`] for an empty prompt; [`Error::InvalidParam`] (`n_seq_max`) when
    /// all of the context's sequences are running.
    pub fn add(
        &mut self,
        prompt: &[Token],
        sampler: Sampler,
        options: GenerateOptions,
    ) -> Result<i32> {
        if prompt.is_empty() {
            return Err(Error::InvalidBatch {
                reason: "the prompt is empty",
            });
        }
        let n_vocab = self.ctx.model().n_vocab();
        if let Some(&token) = prompt.iter().find(|t| t.0 < 0 || t.0 as u32 >= n_vocab) {
            return Err(Error::TokenOutOfVocab { token, n_vocab });
        }
        let Some(free) = self.slots.iter().position(Option::is_none) else {
            return Err(Error::InvalidParam {
                name: "n_seq_max",
                reason: format!(
                    "all {} sequences of the context are running; create the context with a larger n_seq_max or wait for a Finished event",
                    self.slots.len()
                ),
            });
        };
        let seq = free as i32;
        self.ctx.seq_rm(Some(seq), ..)?;
        self.slots[free] = Some(Slot {
            sampler,
            max_tokens: options.max_tokens,
            prompt: prompt.to_vec(),
            prompt_sent: 0,
            next_pos: 0,
            pending: None,
            tokens: Vec::new(),
            text: TextStream::new(&options.stop),
            cancel: Arc::new(AtomicBool::new(false)),
            output: None,
        });
        Ok(seq)
    }

    /// A handle that cancels sequence `seq`, if it is running.
    pub fn cancel_handle(&self, seq: i32) -> Option<SequenceCancel> {
        let slot = self.slots.get(usize::try_from(seq).ok()?)?.as_ref()?;
        Some(SequenceCancel(slot.cancel.clone()))
    }

    /// Number of running sequences.
    pub fn running(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// The context, e.g. to save a finished sequence's state before its id is reused.
    pub fn context(&mut self) -> &mut Context<'model> {
        self.ctx
    }

    /// One step: one decode with the next token of every running sequence and as much of the
    /// waiting prompts as fits, then one sampled token per sequence that got an output.
    /// Returns the events of the step (possibly none, e.g. while a long prompt is decoded).
    ///
    /// # Failure
    /// The errors of [`Context::decode`] and [`Sampler::sample`]. A full memory is not an
    /// error: the sequences of that batch end with [`StopReason::ContextFull`].
    pub fn step(&mut self) -> Result<Vec<BatchEvent>> {
        self.finish_cancelled();
        self.fill_batch()?;
        if self.batch.is_empty() {
            return Ok(self.events.drain(..).collect());
        }
        match self.ctx.decode(&self.batch) {
            Ok(()) => {}
            Err(Error::NoKvSlot) => {
                for seq in self.sequences_in_batch() {
                    self.finish(seq, StopReason::ContextFull);
                }
                return Ok(self.events.drain(..).collect());
            }
            Err(e) => return Err(e),
        }
        for seq in 0..self.slots.len() {
            self.sample(seq)?;
        }
        Ok(self.events.drain(..).collect())
    }

    /// Ends cancelled sequences before they take space in a batch.
    fn finish_cancelled(&mut self) {
        for seq in 0..self.slots.len() {
            if self.slots[seq]
                .as_ref()
                .is_some_and(|s| s.cancel.load(Ordering::Relaxed))
            {
                self.finish(seq, StopReason::Cancelled);
            }
        }
    }

    /// The next token of every generating sequence, then prompt tokens while there is room.
    fn fill_batch(&mut self) -> Result<()> {
        self.batch.clear();
        let capacity = self.batch.capacity();
        for (seq, slot) in self.slots.iter_mut().enumerate() {
            let Some(slot) = slot else { continue };
            slot.output = None;
            if let Some(token) = slot.pending.take() {
                slot.output = Some(self.batch.len());
                self.batch.add(token, slot.next_pos, &[seq as i32], true)?;
                slot.next_pos += 1;
            }
        }
        for (seq, slot) in self.slots.iter_mut().enumerate() {
            let Some(slot) = slot else { continue };
            while slot.prompt_sent < slot.prompt.len() && self.batch.len() < capacity {
                let last = slot.prompt_sent + 1 == slot.prompt.len();
                if last {
                    slot.output = Some(self.batch.len());
                }
                let token = slot.prompt[slot.prompt_sent];
                self.batch.add(token, slot.next_pos, &[seq as i32], last)?;
                slot.next_pos += 1;
                slot.prompt_sent += 1;
            }
        }
        Ok(())
    }

    fn sequences_in_batch(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&seq| {
                self.slots[seq]
                    .as_ref()
                    .is_some_and(|s| s.output.is_some() || s.prompt_sent > 0)
            })
            .collect()
    }

    /// Samples sequence `seq`'s next token if it got an output in this step.
    fn sample(&mut self, seq: usize) -> Result<()> {
        let Some(slot) = self.slots[seq].as_mut() else {
            return Ok(());
        };
        let Some(index) = slot.output.take() else {
            return Ok(());
        };
        if slot.tokens.len() >= slot.max_tokens {
            self.finish(seq, StopReason::MaxTokens);
            return Ok(());
        }
        let token = slot.sampler.sample(self.ctx, index)?;
        let model = self.ctx.model();
        if model.is_eog(token) {
            self.finish(seq, StopReason::EndOfGeneration(token));
            return Ok(());
        }
        let piece = model.token_piece(token, false)?;
        slot.tokens.push(token);
        slot.text.push(&piece);
        if let Some((text, stop)) = slot.text.take_until_stop() {
            self.text_event(seq, text);
            self.finish(seq, StopReason::StopString(stop));
            return Ok(());
        }
        let text = slot.text.releasable();
        slot.pending = Some(token);
        self.text_event(seq, text);
        Ok(())
    }

    fn text_event(&mut self, seq: usize, text: String) {
        if !text.is_empty() {
            self.events.push_back(BatchEvent::Text {
                seq: seq as i32,
                text,
            });
        }
    }

    fn finish(&mut self, seq: usize, reason: StopReason) {
        if let Some(mut slot) = self.slots[seq].take() {
            let rest = slot.text.finish();
            self.text_event(seq, rest);
            self.events.push_back(BatchEvent::Finished {
                seq: seq as i32,
                reason,
                tokens: slot.tokens,
            });
        }
    }
}

impl Iterator for Batcher<'_, '_> {
    type Item = Result<BatchEvent>;

    /// The next event, stepping as needed; `None` once no sequence runs and every event was
    /// returned.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(Ok(event));
            }
            if self.running() == 0 {
                return None;
            }
            match self.step() {
                Ok(events) => self.events.extend(events),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
