//! Streaming text generation.

use crate::batch::Batch;
use crate::cancel::CancelHandle;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::sampler::Sampler;
use crate::text_stream::TextStream;
use crate::token::Token;

/// Options of a [`Generator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Stop after this many generated tokens.
    pub max_tokens: usize,
    /// Stop when the text contains one of these; the stop string and anything after it are
    /// not returned.
    pub stop: Vec<String>,
    /// The sequence to generate in.
    pub seq_id: i32,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            stop: Vec::new(),
            seq_id: 0,
        }
    }
}

impl GenerateOptions {
    /// Sets [`GenerateOptions::max_tokens`].
    pub fn max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Adds a stop string.
    pub fn stop(mut self, stop: impl Into<String>) -> Self {
        self.stop.push(stop.into());
        self
    }
}

/// Why a [`Generator`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The model produced an end-of-generation token (not included in the output).
    EndOfGeneration(Token),
    /// [`GenerateOptions::max_tokens`] tokens were generated.
    MaxTokens,
    /// The text reached this stop string.
    StopString(String),
    /// Cancelled through a [`CancelHandle`].
    Cancelled,
    /// The context's memory is full: the last token (returned) could not be decoded.
    ContextFull,
    /// An error was returned.
    Error,
}

/// Generates text token by token and yields it as `String` chunks.
///
/// - A chunk never ends inside a UTF-8 character: bytes of an incomplete character are held
///   until the character is complete (a model that emits bytes that never form valid UTF-8
///   gets U+FFFD for them).
/// - Generation stops at an end-of-generation token, at a stop string (text that might be the
///   beginning of a stop string is held back until it is clear it is not), after
///   `max_tokens`, when the context is full, or when cancelled through
///   [`Generator::cancel_handle`].
/// - The prompt is decoded on the first call to `next`, continuing the sequence in the
///   context's memory (so a chat can go on from where the last turn ended).
/// - Each generated token is decoded right after it is sampled, so when the generator stops,
///   the sequence's memory holds the prompt followed by [`Generator::tokens`] (not the
///   end-of-generation token). Only a cancellation that interrupts a decode, a full context
///   ([`StopReason::ContextFull`]) or an error leaves the last token out.
///
/// ```
/// use llama_prebuilt::{ContextParams, GenerateOptions, Model, ModelParams, Sampler};
///
/// # let path = llama_prebuilt_test_support::gguf::tiny_model();
/// let model = Model::load(&path, &ModelParams::default())?;
/// let mut ctx = model.new_context(&ContextParams::default())?;
/// let mut sampler = Sampler::chain().greedy();
/// let prompt = model.tokenize("Once upon a time", true)?;
/// let options = GenerateOptions::default().max_tokens(64).stop("\n\n");
/// let mut generator = ctx.generate(&prompt, &mut sampler, options);
/// for chunk in &mut generator {
///     print!("{}", chunk?);
/// }
/// println!("\n[{:?}]", generator.stop_reason());
/// # Ok::<(), llama_prebuilt::Error>(())
/// ```
pub struct Generator<'a, 'model> {
    ctx: &'a mut Context<'model>,
    sampler: &'a mut Sampler,
    options: GenerateOptions,
    cancel: CancelHandle,
    /// Prompt not yet decoded (taken on the first step).
    prompt: Option<Vec<Token>>,
    next_pos: i32,
    tokens: Vec<Token>,
    text: TextStream,
    stop: Option<StopReason>,
    finished: bool,
    batch: Batch,
}

impl<'model> Context<'model> {
    /// Starts generating after `prompt`; see [`Generator`].
    pub fn generate<'a>(
        &'a mut self,
        prompt: &[Token],
        sampler: &'a mut Sampler,
        options: GenerateOptions,
    ) -> Generator<'a, 'model> {
        Generator::new(self, prompt, sampler, options)
    }
}

impl<'a, 'model> Generator<'a, 'model> {
    /// See [`Context::generate`].
    pub fn new(
        ctx: &'a mut Context<'model>,
        prompt: &[Token],
        sampler: &'a mut Sampler,
        options: GenerateOptions,
    ) -> Self {
        let cancel = ctx.cancel_handle();
        cancel.reset();
        let n_batch = ctx.n_batch() as usize;
        Generator {
            ctx,
            sampler,
            options: options.clone(),
            cancel,
            prompt: Some(prompt.to_vec()),
            next_pos: 0,
            tokens: Vec::new(),
            text: TextStream::new(&options.stop),
            stop: None,
            finished: false,
            batch: Batch::new(n_batch.max(1)),
        }
    }

    /// A handle that stops the generation from any thread (also interrupting a running
    /// decode on the CPU backend).
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// The tokens generated so far (without a final end-of-generation token).
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Why generation ended, once it has.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stop.as_ref()
    }

    /// Collects the remaining text into one string.
    pub fn collect_text(&mut self) -> Result<String> {
        let mut text = String::new();
        for chunk in self {
            text.push_str(&chunk?);
        }
        Ok(text)
    }

    fn decode_prompt(&mut self, prompt: Vec<Token>) -> Result<()> {
        let seq = self.ctx.check_seq_id(self.options.seq_id)?;
        if prompt.is_empty() {
            return Err(Error::InvalidBatch {
                reason: "the prompt is empty",
            });
        }
        self.next_pos = self.ctx.seq_pos_max(seq)?.map_or(0, |p| p + 1);
        let n_batch = self.ctx.n_batch() as usize;
        let chunks = prompt.chunks(n_batch.max(1));
        let n_chunks = chunks.len();
        for (i, chunk) in chunks.enumerate() {
            self.batch.clear();
            for (j, &token) in chunk.iter().enumerate() {
                let last = i + 1 == n_chunks && j + 1 == chunk.len();
                self.batch.add(token, self.next_pos, &[seq], last)?;
                self.next_pos += 1;
            }
            self.ctx.decode(&self.batch)?;
        }
        Ok(())
    }

    fn decode_one(&mut self, token: Token) -> Result<()> {
        self.batch.clear();
        self.batch
            .add(token, self.next_pos, &[self.options.seq_id], true)?;
        self.next_pos += 1;
        self.ctx.decode(&self.batch)
    }

    /// One token further. Returns text ready to be returned (possibly empty), or `None` once
    /// generation has ended.
    fn step(&mut self) -> Result<Option<String>> {
        if let Some(prompt) = self.prompt.take() {
            self.decode_prompt(prompt)?;
        }
        if self.cancel.is_cancelled() {
            return Ok(self.finish(StopReason::Cancelled));
        }
        if self.tokens.len() >= self.options.max_tokens {
            return Ok(self.finish(StopReason::MaxTokens));
        }
        let token = self.sampler.sample_last(self.ctx)?;
        let model = self.ctx.model();
        if model.is_eog(token) {
            return Ok(self.finish(StopReason::EndOfGeneration(token)));
        }
        self.tokens.push(token);
        let piece = model.token_piece(token, false)?;
        self.text.push(&piece);
        let context_full = match self.decode_one(token) {
            Ok(()) => false,
            Err(Error::NoKvSlot) => true,
            Err(e) => return Err(e),
        };
        if let Some((text, stop)) = self.text.take_until_stop() {
            self.set_finished(StopReason::StopString(stop));
            return Ok(Some(text));
        }
        if context_full {
            return Ok(self.finish(StopReason::ContextFull));
        }
        Ok(Some(self.text.releasable()))
    }

    fn finish(&mut self, reason: StopReason) -> Option<String> {
        self.set_finished(reason);
        Some(self.text.finish())
    }

    fn set_finished(&mut self, reason: StopReason) {
        self.stop = Some(reason);
        self.finished = true;
    }
}

impl Iterator for Generator<'_, '_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            match self.step() {
                Ok(Some(text)) if !text.is_empty() => return Some(Ok(text)),
                Ok(_) => {}
                Err(Error::Aborted) => {
                    if let Some(text) = self.finish(StopReason::Cancelled).filter(|t| !t.is_empty())
                    {
                        return Some(Ok(text));
                    }
                }
                Err(e) => {
                    self.set_finished(StopReason::Error);
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl std::iter::FusedIterator for Generator<'_, '_> {}

#[cfg(test)]
mod tests {
    use crate::text_stream::longest_prefix_suffix;

    #[test]
    fn prefix_suffix() {
        assert_eq!(longest_prefix_suffix("hello wor", "world"), 3);
        assert_eq!(longest_prefix_suffix("hello", "world"), 0);
        assert_eq!(longest_prefix_suffix("abc\n", "\n\n"), 1);
        assert_eq!(longest_prefix_suffix("x é", "éa"), 2);
        assert_eq!(longest_prefix_suffix("", "ab"), 0);
    }
}
