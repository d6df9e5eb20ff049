//! Sampler chains: turn logits into the next token.

use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use llama_prebuilt_sys as sys;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::ffi;
use crate::model::{Model, RawModel};
use crate::token::Token;

/// Repetition penalties (llama.cpp's `penalties` sampler).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Penalties {
    /// How many of the last tokens are penalised (0 disables, -1 means the context size).
    pub last_n: i32,
    /// Divides positive (multiplies negative) logits of repeated tokens; 1.0 disables.
    pub repeat: f32,
    /// Subtracted once per earlier occurrence; 0.0 disables.
    pub frequency: f32,
    /// Subtracted once if the token occurred at all; 0.0 disables.
    pub presence: f32,
}

impl Default for Penalties {
    fn default() -> Self {
        Penalties {
            last_n: 64,
            repeat: 1.1,
            frequency: 0.0,
            presence: 0.0,
        }
    }
}

/// DRY ("don't repeat yourself") parameters: a penalty on tokens that would extend a
/// sequence already present in the recent history, growing exponentially with the length of
/// the repeat. Unlike [`Penalties`] it leaves single repeated words alone and goes after
/// repeated *phrases* (loops), at the cost of a scan of the history per token and a pass over
/// the vocabulary when the step is built (for the sequence breakers).
#[derive(Debug, Clone, PartialEq)]
pub struct Dry {
    /// Scale of the penalty: finite, 0.0 or more (0.0 disables the step).
    pub multiplier: f32,
    /// Growth of the penalty per repeated token beyond `allowed_length`: the penalty is
    /// `multiplier * base^(repeat_length - allowed_length)`. Finite, 1.0 or more.
    pub base: f32,
    /// Repeats up to this many tokens long are never penalised.
    pub allowed_length: u32,
    /// How many of the last tokens are scanned: 0 disables the step, -1 means the model's
    /// training context; at most the training context (DRY never looks further back).
    pub penalty_last_n: i32,
    /// Text that ends a repeat: a repeat never extends across one of these (e.g. a newline,
    /// so that lists and code lines may start alike). Each 1 to 40 bytes, no NUL byte; each
    /// costs one pass over the vocabulary when the step is built.
    pub sequence_breakers: Vec<String>,
}

impl Default for Dry {
    /// The settings the DRY author recommends (multiplier 0.8, base 1.75, allowed length 2,
    /// the whole training context, breakers newline, `:`, `"` and `*`). llama.cpp's own tools
    /// default to a multiplier of 0.0, i.e. DRY off; adding the step is what turns it on here.
    fn default() -> Self {
        Dry {
            multiplier: 0.8,
            base: 1.75,
            allowed_length: 2,
            penalty_last_n: -1,
            sequence_breakers: ["\n", ":", "\"", "*"].map(String::from).to_vec(),
        }
    }
}

/// Longest DRY sequence breaker llama.cpp uses whole (it truncates longer ones, possibly
/// inside a UTF-8 character).
const DRY_MAX_BREAKER_BYTES: usize = 40;

/// Largest DRY window: llama.cpp allocates two buffers of this many entries when the step is
/// built, and a failed allocation would abort the process.
const DRY_MAX_WINDOW: u32 = 1 << 24;

/// Pieces longer than this make llama.cpp's infill sampler abort (it resizes its 512-byte
/// buffers by the negative length).
const INFILL_MAX_PIECE_BYTES: i32 = 512;

/// `Ok` if `ok`, else [`Error::InvalidParam`] naming the value and what works.
fn check(name: &'static str, value: impl fmt::Display, ok: bool, works: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::param(name, format!("is {value}, must be {works}")))
    }
}

/// A chain of samplers. Build it step by step, ending with a step that selects the token
/// ([`Sampler::greedy`], [`Sampler::dist`], [`Sampler::mirostat`] or
/// [`Sampler::mirostat_v2`]); [`Sampler::sample`] runs the chain over a context's logits and
/// *accepts* the chosen token (updating penalties, DRY history, grammar state).
///
/// Parameters are checked when a step is added: a value llama.cpp would abort on, or silently
/// misread, is an [`Error::InvalidParam`] that says which values work.
///
/// ```
/// # use llama_prebuilt::{Dry, Model, ModelParams, Sampler};
/// # let path = llama_prebuilt_test_support::gguf::tiny_model();
/// # let model = Model::load(&path, &ModelParams::default())?;
/// let creative = Sampler::chain().top_k(40).top_p(0.95, 1).temperature(0.8).dist(42);
/// let deterministic = Sampler::chain().greedy();
/// let loop_free = Sampler::chain()
///     .dry(&model, &Dry::default())?
///     .top_k(40)
///     .xtc(0.5, 0.1, 1, 42)?
///     .dist(42);
/// let steady_surprise = Sampler::chain().temperature(0.8).mirostat_v2(5.0, 0.1, 42)?;
/// let yes_no = Sampler::chain()
///     .grammar(&model, r#"root ::= "yes" | "no""#, "root")?
///     .greedy();
/// # Ok::<(), llama_prebuilt::Error>(())
/// ```
pub struct Sampler {
    chain: NonNull<sys::llama_sampler>,
    /// The model vocabulary-bound steps (grammar, logit bias) were built for.
    model: Option<Arc<RawModel>>,
    /// Chain indices of grammar steps.
    grammars: Vec<i32>,
    steps: Vec<&'static str>,
    candidates: Vec<sys::llama_token_data>,
}

// SAFETY: a sampler chain is plain heap state used by one thread at a time (`&mut` for every
// use); the model it may point into is `Sync`.
unsafe impl Send for Sampler {}

impl fmt::Debug for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sampler")
            .field("steps", &self.steps)
            .finish()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: we own the chain, which owns the steps added to it.
        unsafe { sys::llama_sampler_free(self.chain.as_ptr()) };
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::chain()
    }
}

impl Sampler {
    /// Pass to [`Sampler::dist`] for a random seed.
    pub const RANDOM_SEED: u32 = sys::LLAMA_DEFAULT_SEED;

    /// An empty chain.
    pub fn chain() -> Sampler {
        // SAFETY: returns a plain struct; chain_init allocates a new chain.
        let chain = unsafe {
            let params = sys::llama_sampler_chain_default_params();
            sys::llama_sampler_chain_init(params)
        };
        Sampler {
            chain: NonNull::new(chain).expect("llama_sampler_chain_init returned NULL"),
            model: None,
            grammars: Vec::new(),
            steps: Vec::new(),
            candidates: Vec::new(),
        }
    }

    fn push(mut self, name: &'static str, step: *mut sys::llama_sampler) -> Self {
        assert!(!step.is_null(), "llama_sampler_init_{name} returned NULL");
        // SAFETY: the chain takes ownership of the new step.
        unsafe { sys::llama_sampler_chain_add(self.chain.as_ptr(), step) };
        self.steps.push(name);
        self
    }

    /// Adds a grammar step built by another module of the crate (`sampler_grammar.rs`: lazy
    /// grammars): binds the chain to `model` (freeing `step` on a mismatch) and checks every
    /// accepted token against the step, as [`Sampler::grammar`] does.
    pub(crate) fn push_grammar_step(
        mut self,
        model: &Model,
        name: &'static str,
        step: *mut sys::llama_sampler,
    ) -> Result<Self> {
        if let Err(e) = self.bind(model) {
            // SAFETY: the step is ours and was not added to the chain.
            unsafe { sys::llama_sampler_free(step) };
            return Err(e);
        }
        // SAFETY: a read-only query of our chain.
        let index = unsafe { sys::llama_sampler_chain_n(self.chain.as_ptr()) };
        self.grammars.push(index);
        Ok(self.push(name, step))
    }

    fn bind(&mut self, model: &Model) -> Result<()> {
        match &self.model {
            Some(bound) if !Arc::ptr_eq(bound, model.raw()) => Err(Error::ModelMismatch),
            _ => {
                self.model = Some(Arc::clone(model.raw()));
                Ok(())
            }
        }
    }

    /// Selects the most likely token.
    pub fn greedy(self) -> Self {
        // SAFETY: allocates a new step.
        let step = unsafe { sys::llama_sampler_init_greedy() };
        self.push("greedy", step)
    }

    /// Selects a token at random by probability, seeded ([`Sampler::RANDOM_SEED`] for a
    /// random seed).
    pub fn dist(self, seed: u32) -> Self {
        // SAFETY: allocates a new step.
        let step = unsafe { sys::llama_sampler_init_dist(seed) };
        self.push("dist", step)
    }

    /// Keeps the `k` most likely tokens (0 keeps all).
    pub fn top_k(self, k: u32) -> Self {
        // SAFETY: allocates a new step.
        let step = unsafe { sys::llama_sampler_init_top_k(i32::try_from(k).unwrap_or(i32::MAX)) };
        self.push("top-k", step)
    }

    /// Keeps the most likely tokens whose probabilities add up to `p` (at least `min_keep`).
    pub fn top_p(self, p: f32, min_keep: usize) -> Self {
        // SAFETY: allocates a new step.
        let step = unsafe { sys::llama_sampler_init_top_p(p, min_keep) };
        self.push("top-p", step)
    }

    /// Keeps tokens at least `p` times as likely as the most likely one (at least `min_keep`).
    pub fn min_p(self, p: f32, min_keep: usize) -> Self {
        // SAFETY: allocates a new step.
        let step = unsafe { sys::llama_sampler_init_min_p(p, min_keep) };
        self.push("min-p", step)
    }

    /// Divides the logits by `t` (`t <= 0` keeps only the most likely token).
    pub fn temperature(self, t: f32) -> Self {
        // SAFETY: allocates a new step.
        let step = unsafe { sys::llama_sampler_init_temp(t) };
        self.push("temperature", step)
    }

    /// Penalises repeated tokens. Slow over the whole vocabulary: put it after top-k.
    ///
    /// # Failure
    /// [`Error::InvalidParam`] if `last_n < -1`.
    pub fn penalties(self, penalties: Penalties) -> Result<Self> {
        if penalties.last_n < -1 {
            return Err(Error::param(
                "penalties.last_n",
                "must be -1 (context size) or more",
            ));
        }
        // SAFETY: allocates a new step.
        let step = unsafe { init_penalties(&penalties) };
        Ok(self.push("penalties", step))
    }

    /// Adds `bias` to the logits of the given tokens (`f32::NEG_INFINITY` bans a token).
    ///
    /// # Failure
    /// [`Error::TokenOutOfVocab`] for a token not in `model`'s vocabulary,
    /// [`Error::ModelMismatch`] if earlier steps were built for another model.
    pub fn logit_bias(mut self, model: &Model, biases: &[(Token, f32)]) -> Result<Self> {
        self.bind(model)?;
        let raw: Vec<sys::llama_logit_bias> = biases
            .iter()
            .map(|&(token, bias)| {
                model.check_token(token)?;
                Ok(sys::llama_logit_bias {
                    token: token.0,
                    bias,
                })
            })
            .collect::<Result<_>>()?;
        let n = i32::try_from(raw.len()).map_err(|_| Error::param("biases", "too many"))?;
        // SAFETY: `raw` has `n` entries, copied by llama.cpp.
        let step =
            unsafe { sys::llama_sampler_init_logit_bias(model.n_vocab() as i32, n, raw.as_ptr()) };
        Ok(self.push("logit-bias", step))
    }

    /// Constrains the output to a GBNF grammar (see llama.cpp's `grammars/README.md`) starting
    /// at rule `root`. An empty grammar constrains nothing.
    ///
    /// # Failure
    /// [`Error::InvalidGrammar`] if the grammar does not parse, lacks the root rule or is
    /// left-recursive; [`Error::NulByte`]; [`Error::ModelMismatch`] as for
    /// [`Sampler::logit_bias`].
    pub fn grammar(mut self, model: &Model, gbnf: &str, root: &str) -> Result<Self> {
        self.bind(model)?;
        let c_gbnf = ffi::c_string("grammar", gbnf)?;
        let c_root = ffi::c_string("grammar root", root)?;
        let (step, message) = ffi::gate(|| {
            // SAFETY: NUL-terminated strings (copied by llama.cpp); the vocabulary outlives
            // the step because the chain keeps the model alive (`self.model`).
            unsafe {
                sys::llama_sampler_init_grammar(
                    model.raw().vocab(),
                    c_gbnf.as_ptr(),
                    c_root.as_ptr(),
                )
            }
        });
        if step.is_null() {
            return Err(Error::InvalidGrammar {
                root: root.into(),
                message,
            });
        }
        // SAFETY: a read-only query of our chain.
        let index = unsafe { sys::llama_sampler_chain_n(self.chain.as_ptr()) };
        self.grammars.push(index);
        Ok(self.push("grammar", step))
    }

    /// Locally typical sampling: keeps the tokens whose surprise (`-log p`) is closest to the
    /// distribution's entropy, adding them until their probabilities sum past `p` (at least
    /// `min_keep` tokens). Cuts the dull most-likely tokens as well as the unlikely tail, so
    /// text repeats less than with top-p, at the price of sometimes skipping the obvious
    /// continuation; sorts the candidates, so put it after top-k on large vocabularies.
    ///
    /// # Failure
    /// [`Error::InvalidParam`] unless `p` is in 0.0..=1.0 (1.0 keeps every token).
    pub fn typical(self, p: f32, min_keep: usize) -> Result<Self> {
        check(
            "typical.p",
            p,
            (0.0..=1.0).contains(&p),
            "in 0.0..=1.0 (1.0 keeps every token)",
        )?;
        // SAFETY: allocates a new step.
        let step = unsafe { sys::llama_sampler_init_typical(p, min_keep) };
        Ok(self.push("typical", step))
    }

    /// Dynamic temperature ("entropy sampling", llama.cpp's `temp_ext`): the temperature
    /// moves within `temp ± delta` with the normalised entropy of the candidates raised to
    /// `exponent` — hotter where the model is unsure, cooler where it is confident. Gives
    /// variety without derailing confident steps, for a softmax over the candidates per
    /// token. `delta = 0` is plain [`Sampler::temperature`].
    ///
    /// # Failure
    /// [`Error::InvalidParam`] unless `temp` is finite, `delta` finite and 0.0 or more,
    /// `exponent` finite and 0.0 or more (1.0 maps entropy linearly).
    pub fn dynamic_temperature(self, temp: f32, delta: f32, exponent: f32) -> Result<Self> {
        check(
            "dynamic_temperature.temp",
            temp,
            temp.is_finite(),
            "finite (0.0 or less keeps only the most likely token)",
        )?;
        check(
            "dynamic_temperature.delta",
            delta,
            delta.is_finite() && delta >= 0.0,
            "finite and 0.0 or more (0.0 is a fixed temperature)",
        )?;
        check(
            "dynamic_temperature.exponent",
            exponent,
            exponent.is_finite() && exponent >= 0.0,
            "finite and 0.0 or more (1.0 maps entropy to temperature linearly)",
        )?;
        // SAFETY: allocates a new step.
        let step = unsafe { sys::llama_sampler_init_temp_ext(temp, delta, exponent) };
        Ok(self.push("temp-ext", step))
    }

    /// XTC ("exclude top choices"): with chance `probability` per token, removes every
    /// candidate at least `threshold` likely except the least likely of them, as long as
    /// `min_keep` candidates remain. Breaks clichés and raises creativity, at the cost of
    /// coherence on tokens with one right answer; its own random generator is seeded with
    /// `seed` ([`Sampler::RANDOM_SEED`] for a random seed). Needs a selecting step after it.
    ///
    /// # Failure
    /// [`Error::InvalidParam`] unless `probability` is in 0.0..=1.0 and `threshold` in
    /// 0.0..=0.5 (above 0.5 no two tokens can both pass it, so nothing would ever be removed).
    pub fn xtc(self, probability: f32, threshold: f32, min_keep: usize, seed: u32) -> Result<Self> {
        check(
            "xtc.probability",
            probability,
            (0.0..=1.0).contains(&probability),
            "in 0.0..=1.0",
        )?;
        check(
            "xtc.threshold",
            threshold,
            (0.0..=0.5).contains(&threshold),
            "in 0.0..=0.5 (above 0.5 XTC never removes anything)",
        )?;
        // SAFETY: allocates a new step.
        let step = unsafe { sys::llama_sampler_init_xtc(probability, threshold, min_keep, seed) };
        Ok(self.push("xtc", step))
    }

    /// Top-nσ: keeps the tokens whose logit is within `n` standard deviations of the largest
    /// one. Works on raw logits, so the kept set does not depend on the temperature (put it
    /// before [`Sampler::temperature`] to sample hot without the incoherent tail); cheap,
    /// two passes, no sort.
    ///
    /// # Failure
    /// [`Error::InvalidParam`] unless `n` is finite and greater than 0.0 (1.0 is the
    /// paper's choice).
    pub fn top_n_sigma(self, n: f32) -> Result<Self> {
        check(
            "top_n_sigma.n",
            n,
            n.is_finite() && n > 0.0,
            "finite and greater than 0.0",
        )?;
        // SAFETY: allocates a new step.
        let step = unsafe { sys::llama_sampler_init_top_n_sigma(n) };
        Ok(self.push("top-n-sigma", step))
    }

    /// Mirostat 1.0: selects the token (ends the chain) with a top-k whose `k` is re-estimated
    /// each token from the top `m` probabilities (Zipf exponent), steering the text's surprise
    /// towards `tau` bits per token with learning rate `eta`. Keeps perplexity steady over long
    /// generations without hand-tuning top-k/top-p, for a sort of the whole vocabulary per
    /// token; its random generator is seeded with `seed`. Bound to `model`'s vocabulary size.
    ///
    /// # Failure
    /// [`Error::InvalidParam`] unless `tau` and `eta` are finite and 0.0 or more and `m` is at
    /// least 2 (llama.cpp uses 100); [`Error::EmptyVocabulary`]; [`Error::ModelMismatch`] as
    /// for [`Sampler::logit_bias`].
    pub fn mirostat(
        mut self,
        model: &Model,
        tau: f32,
        eta: f32,
        m: u32,
        seed: u32,
    ) -> Result<Self> {
        Self::check_mirostat(["mirostat.tau", "mirostat.eta"], tau, eta)?;
        check(
            "mirostat.m",
            m,
            (2..=i32::MAX as u32).contains(&m),
            "at least 2 (llama.cpp's tools use 100)",
        )?;
        let n_vocab = i32::try_from(model.n_vocab()).unwrap_or(i32::MAX);
        if n_vocab == 0 {
            return Err(Error::EmptyVocabulary);
        }
        self.bind(model)?;
        // SAFETY: allocates a new step.
        let step = unsafe { sys::llama_sampler_init_mirostat(n_vocab, seed, tau, eta, m as i32) };
        Ok(self.push("mirostat", step))
    }

    /// Mirostat 2.0: selects the token (ends the chain) among those whose surprise is below a
    /// running bound `mu`, which starts at `2 * tau` and follows the observed surprise with
    /// learning rate `eta`, so the text stays near `tau` bits per token. Simpler and steadier
    /// than [`Sampler::mirostat`] and needs no model; like it, it replaces top-k/top-p tuning.
    /// Its random generator is seeded with `seed`.
    ///
    /// # Failure
    /// [`Error::InvalidParam`] unless `tau` and `eta` are finite and 0.0 or more (llama.cpp's
    /// tools default to 5.0 and 0.1).
    pub fn mirostat_v2(self, tau: f32, eta: f32, seed: u32) -> Result<Self> {
        Self::check_mirostat(["mirostat_v2.tau", "mirostat_v2.eta"], tau, eta)?;
        // SAFETY: allocates a new step.
        let step = unsafe { sys::llama_sampler_init_mirostat_v2(seed, tau, eta) };
        Ok(self.push("mirostat-v2", step))
    }

    fn check_mirostat(names: [&'static str; 2], tau: f32, eta: f32) -> Result<()> {
        let [tau_name, eta_name] = names;
        check(
            tau_name,
            tau,
            tau.is_finite() && tau >= 0.0,
            "finite and 0.0 or more (target surprise in bits per token, e.g. 5.0)",
        )?;
        check(
            eta_name,
            eta,
            eta.is_finite() && eta >= 0.0,
            "finite and 0.0 or more (learning rate, e.g. 0.1)",
        )
    }

    /// DRY repetition penalty (see [`Dry`]) over the tokens accepted so far. Bound to `model`:
    /// the sequence breakers are tokenized with its vocabulary, and `penalty_last_n = -1`
    /// means its training context.
    ///
    /// # Failure
    /// [`Error::InvalidParam`] if `multiplier` is negative or not finite, `base` is below
    /// 1.0 or not finite, `allowed_length` exceeds `i32::MAX`, `penalty_last_n` is below -1
    /// or above the model's training context (or above 16,777,216 tokens), or a sequence
    /// breaker is empty or longer than 40 bytes; [`Error::NulByte`] for a breaker with a NUL
    /// byte; [`Error::ModelMismatch`] as for [`Sampler::logit_bias`].
    pub fn dry(mut self, model: &Model, dry: &Dry) -> Result<Self> {
        check(
            "dry.multiplier",
            dry.multiplier,
            dry.multiplier.is_finite() && dry.multiplier >= 0.0,
            "finite and 0.0 or more (0.0 disables DRY, 0.8 is typical)",
        )?;
        check(
            "dry.base",
            dry.base,
            dry.base.is_finite() && dry.base >= 1.0,
            "finite and 1.0 or more (1.75 is typical)",
        )?;
        let allowed_length = i32::try_from(dry.allowed_length)
            .map_err(|_| Error::param("dry.allowed_length", "must be at most i32::MAX"))?;
        let n_ctx_train = model.n_ctx_train().min(i32::MAX as u32);
        let window = match dry.penalty_last_n {
            -1 => Some(n_ctx_train),
            n => u32::try_from(n).ok(),
        };
        let limit = n_ctx_train.min(DRY_MAX_WINDOW);
        let works = if limit == 0 {
            // llama.cpp would build an enabled step with a zero-capacity history and abort
            // on the first accepted token.
            "0 (disabled): the model reports a training context of 0 tokens (loaded \
             vocabulary-only?), so DRY has no window"
                .to_string()
        } else {
            format!(
                "-1 (the training context), 0 (disabled) or a token count up to {limit} (the \
                 model's training context is {}, the largest window is {DRY_MAX_WINDOW})",
                model.n_ctx_train()
            )
        };
        check(
            "dry.penalty_last_n",
            dry.penalty_last_n,
            window.is_some_and(|w| w <= limit) && !(dry.penalty_last_n == -1 && limit == 0),
            &works,
        )?;
        let breakers = dry
            .sequence_breakers
            .iter()
            .enumerate()
            .map(|(i, breaker)| {
                if breaker.is_empty() || breaker.len() > DRY_MAX_BREAKER_BYTES {
                    return Err(Error::param(
                        "dry.sequence_breakers",
                        format!(
                            "breaker {i} ({breaker:?}) is {} bytes long, each must be 1 to \
                             {DRY_MAX_BREAKER_BYTES} bytes",
                            breaker.len()
                        ),
                    ));
                }
                ffi::c_string("DRY sequence breaker", breaker)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut pointers: Vec<*const std::ffi::c_char> =
            breakers.iter().map(|b| b.as_ptr()).collect();
        self.bind(model)?;
        let (step, _) = ffi::gate(|| {
            // SAFETY: the breakers are NUL-terminated strings alive for the call (llama.cpp
            // tokenizes them and keeps only token ids); the vocabulary outlives the step
            // because the chain keeps the model alive. The window was checked to be
            // positive whenever DRY is enabled, so its ring buffer never has capacity 0.
            #[cfg(llama_abi = "b10199")]
            // SAFETY: see above.
            let step = unsafe {
                sys::llama_sampler_init_dry(
                    model.raw().vocab(),
                    n_ctx_train as i32,
                    dry.multiplier,
                    dry.base,
                    allowed_length,
                    dry.penalty_last_n,
                    pointers.as_mut_ptr(),
                    pointers.len(),
                )
            };
            // b10605 has no `n_ctx_train` and reads -1 as 0 (disabled): the window is
            // resolved here (-1 is the training context, as b10199 did) so -1 keeps its
            // meaning. It was checked to be at most DRY_MAX_WINDOW.
            #[cfg(llama_abi = "b10605")]
            // SAFETY: see above.
            let step = unsafe {
                sys::llama_sampler_init_dry(
                    model.raw().vocab(),
                    dry.multiplier,
                    dry.base,
                    allowed_length,
                    window.map_or(0, |w| w as i32),
                    pointers.as_mut_ptr(),
                    pointers.len(),
                )
            };
            step
        });
        Ok(self.push("dry", step))
    }

    /// The infill (fill-in-the-middle) filter of llama.cpp's code completion: merges
    /// candidates that are prefixes of one another, prefers ending the fill (an
    /// end-of-generation token) when text tokens are weak, and keeps only clear winners.
    /// Makes completions between a prefix and a suffix stop cleanly, for a quadratic pass
    /// over the candidates: put it after top-k. Needs a selecting step after it. Bound to
    /// `model`, which must be a fill-in-the-middle model.
    ///
    /// # Failure
    /// [`Error::InfillUnsupported`] if the vocabulary lacks a FIM prefix, suffix or middle
    /// token, has neither an end-of-turn nor an end-of-sequence token, or has a token whose
    /// text is longer than 512 bytes (llama.cpp would abort on each of these);
    /// [`Error::ModelMismatch`] as for [`Sampler::logit_bias`].
    pub fn infill(mut self, model: &Model) -> Result<Self> {
        self.bind(model)?;
        let vocab = model.raw().vocab();
        // SAFETY: read-only queries of a valid vocabulary.
        let (pre, suf, mid, eot, eos) = unsafe {
            (
                sys::llama_vocab_fim_pre(vocab),
                sys::llama_vocab_fim_suf(vocab),
                sys::llama_vocab_fim_mid(vocab),
                sys::llama_vocab_eot(vocab),
                sys::llama_vocab_eos(vocab),
            )
        };
        let missing: Vec<&str> = [("prefix", pre), ("suffix", suf), ("middle", mid)]
            .into_iter()
            .filter(|&(_, id)| id == sys::LLAMA_TOKEN_NULL)
            .map(|(name, _)| name)
            .collect();
        if !missing.is_empty() {
            return Err(Error::InfillUnsupported {
                reason: format!(
                    "its vocabulary has no fill-in-the-middle tokens (missing: {}; llama.cpp \
                     finds them by the tokenizer.ggml.fim_pre/suf/mid_token_id metadata or by \
                     names such as <|fim_prefix|> or <fim_prefix>); use a code model trained \
                     for infill, e.g. Qwen2.5-Coder, CodeLlama or StarCoder2",
                    missing.join(", ")
                ),
            });
        }
        if eot == sys::LLAMA_TOKEN_NULL && eos == sys::LLAMA_TOKEN_NULL {
            return Err(Error::InfillUnsupported {
                reason: "its vocabulary has neither an end-of-turn nor an end-of-sequence \
                         token, which infill selects when no text token is left"
                    .into(),
            });
        }
        let mut buf = [0 as std::ffi::c_char; INFILL_MAX_PIECE_BYTES as usize];
        for id in 0..i32::try_from(model.n_vocab()).unwrap_or(i32::MAX) {
            // SAFETY: `buf` holds INFILL_MAX_PIECE_BYTES bytes; `id` is in the vocabulary.
            let n = unsafe {
                sys::llama_token_to_piece(
                    vocab,
                    id,
                    buf.as_mut_ptr(),
                    INFILL_MAX_PIECE_BYTES,
                    0,
                    false,
                )
            };
            if n < 0 {
                return Err(Error::InfillUnsupported {
                    reason: format!(
                        "token {id} is {} bytes long, llama.cpp's infill sampler handles \
                         tokens of at most {INFILL_MAX_PIECE_BYTES} bytes",
                        n.unsigned_abs()
                    ),
                });
            }
        }
        // SAFETY: the vocabulary outlives the step because the chain keeps the model alive;
        // it has the tokens the step falls back to and no piece overflows its buffers.
        let step = unsafe { sys::llama_sampler_init_infill(vocab) };
        Ok(self.push("infill", step))
    }

    /// The names of the steps, in order.
    pub fn steps(&self) -> &[&'static str] {
        &self.steps
    }

    /// The seed of the chain's random step, if it has one.
    pub fn seed(&self) -> Option<u32> {
        // SAFETY: a read-only query of our chain.
        let seed = unsafe { sys::llama_sampler_get_seed(self.chain.as_ptr()) };
        (seed != sys::LLAMA_DEFAULT_SEED).then_some(seed)
    }

    /// Samples a token from the logits of batch index `index` of the context's last decode,
    /// and accepts it.
    ///
    /// # Failure
    /// [`Error::NoOutput`] if that index has no logits, [`Error::NoTokenSelected`] if the chain
    /// has no selecting step, [`Error::EmptyVocabulary`] if there is no candidate at all, [`Error::GrammarRejected`] if a grammar allows no token at all
    /// here, [`Error::ModelMismatch`] if the chain was built for another model.
    pub fn sample(&mut self, ctx: &Context<'_>, index: usize) -> Result<Token> {
        if let Some(model) = &self.model
            && model.as_ptr() != ctx.model().as_ptr()
        {
            return Err(Error::ModelMismatch);
        }
        let logits = ctx.logits(index)?;
        self.sample_logits(logits)
    }

    /// Runs the chain over one row of logits (one per vocabulary entry) and accepts the
    /// selected token.
    fn sample_logits(&mut self, logits: &[f32]) -> Result<Token> {
        if logits.is_empty() {
            // Most steps (softmax in top-p, typical, mirostat, infill…) assert a non-empty
            // candidate array.
            return Err(Error::EmptyVocabulary);
        }
        self.candidates.clear();
        self.candidates
            .extend(
                logits
                    .iter()
                    .enumerate()
                    .map(|(id, &logit)| sys::llama_token_data {
                        id: id as i32,
                        logit,
                        p: 0.0,
                    }),
            );
        let mut array = sys::llama_token_data_array {
            data: self.candidates.as_mut_ptr(),
            size: self.candidates.len(),
            selected: -1,
            sorted: false,
        };
        ffi::gate(|| {
            // SAFETY: `array` points at our candidates for the duration of the call.
            unsafe { sys::llama_sampler_apply(self.chain.as_ptr(), &mut array) }
        });
        let selected = usize::try_from(array.selected)
            .ok()
            .filter(|&i| i < array.size)
            .ok_or(Error::NoTokenSelected)?;
        // SAFETY: a step may have pointed `data` at its own buffer of `size` entries; it is
        // valid until the next call into the chain.
        let token = Token(unsafe { (*array.data.add(selected)).id });
        self.accept(token)?;
        Ok(token)
    }

    /// [`Sampler::sample`] on the last output of the last decode.
    pub fn sample_last(&mut self, ctx: &Context<'_>) -> Result<Token> {
        let index = *ctx
            .output_indices()
            .last()
            .ok_or(Error::NoOutput { index: 0 })?;
        self.sample(ctx, index)
    }

    /// Tells the chain that `token` was chosen (e.g. prompt tokens for the penalties).
    ///
    /// # Failure
    /// [`Error::GrammarRejected`] if a grammar step does not allow `token` here (llama.cpp
    /// would abort the process); [`Error::TokenOutOfVocab`] for steps bound to a model.
    pub fn accept(&mut self, token: Token) -> Result<()> {
        if let Some(model) = &self.model
            && u32::try_from(token.0).map_or(true, |id| id >= model.n_vocab())
        {
            return Err(Error::TokenOutOfVocab {
                token,
                n_vocab: model.n_vocab(),
            });
        }
        if !self.grammars_allow(token) {
            return Err(Error::GrammarRejected { token });
        }
        ffi::gate(|| {
            // SAFETY: our chain; the grammar steps were just checked to accept the token.
            unsafe { sys::llama_sampler_accept(self.chain.as_ptr(), token.0) }
        });
        Ok(())
    }

    /// Whether every grammar step allows `token` in its current state: runs the step alone
    /// over a one-candidate array and looks at whether it masked the candidate out.
    fn grammars_allow(&mut self, token: Token) -> bool {
        self.grammars.iter().all(|&index| {
            let mut one = sys::llama_token_data {
                id: token.0,
                logit: 0.0,
                p: 0.0,
            };
            let mut array = sys::llama_token_data_array {
                data: &mut one,
                size: 1,
                selected: -1,
                sorted: false,
            };
            // SAFETY: `index` is a grammar step of our chain; applying a grammar only reads
            // its state and writes the candidate's logit.
            unsafe {
                let step = sys::llama_sampler_chain_get(self.chain.as_ptr(), index);
                if step.is_null() {
                    return false;
                }
                sys::llama_sampler_apply(step, &mut array);
            }
            one.logit != f32::NEG_INFINITY
        })
    }

    /// Resets the state of every step (penalty history, grammar, random generator).
    pub fn reset(&mut self) {
        // SAFETY: our chain.
        unsafe { sys::llama_sampler_reset(self.chain.as_ptr()) };
    }
}

/// `llama_sampler_init_penalties` of the ABI compiled for (`llama_abi`, see build.rs).
///
/// # Safety
/// Allocates a new step; the caller owns it.
#[cfg(llama_abi = "b10199")]
unsafe fn init_penalties(p: &Penalties) -> *mut sys::llama_sampler {
    // SAFETY: plain values; llama.cpp allocates.
    unsafe { sys::llama_sampler_init_penalties(p.last_n, p.repeat, p.frequency, p.presence) }
}

/// b10605's `llama_sampler_init_penalties` takes `n_vocab` first. Only its backend-sampling
/// path reads it (a context's `samplers`, which this crate never sets, asserts it is positive);
/// the CPU path ignores it.
///
/// # Safety
/// As above.
#[cfg(llama_abi = "b10605")]
unsafe fn init_penalties(p: &Penalties) -> *mut sys::llama_sampler {
    // SAFETY: plain values; llama.cpp allocates.
    unsafe { sys::llama_sampler_init_penalties(0, p.last_n, p.repeat, p.frequency, p.presence) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model with an empty vocabulary gives empty logit rows: every chain refuses them
    /// instead of reaching llama.cpp's `GGML_ASSERT(cur_p->size > 0)` in its softmax.
    #[test]
    fn empty_candidate_arrays_are_an_error_not_an_abort() {
        let chains = [
            Sampler::chain().greedy(),
            Sampler::chain().top_p(0.9, 1).dist(1),
            Sampler::chain().typical(0.9, 1).unwrap().dist(1),
            Sampler::chain().mirostat_v2(5.0, 0.1, 1).unwrap(),
            Sampler::chain()
                .dynamic_temperature(0.8, 0.5, 1.0)
                .unwrap()
                .dist(1),
            Sampler::chain().xtc(1.0, 0.1, 1, 1).unwrap().dist(1),
        ];
        for mut sampler in chains {
            let err = sampler.sample_logits(&[]).unwrap_err();
            assert!(matches!(err, Error::EmptyVocabulary), "{err:?}");
            assert_eq!(
                err.to_string(),
                "the model's vocabulary is empty: there is no token to sample"
            );
        }
    }

    #[test]
    fn one_candidate_is_always_selected() {
        for mut sampler in [
            Sampler::chain().typical(0.5, 1).unwrap().dist(3),
            Sampler::chain().mirostat_v2(5.0, 0.1, 3).unwrap(),
            Sampler::chain().top_n_sigma(1.0).unwrap().greedy(),
        ] {
            assert_eq!(sampler.sample_logits(&[0.5]).unwrap(), Token(0));
        }
    }
}
