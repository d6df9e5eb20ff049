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

/// A chain of samplers. Build it step by step, ending with a step that selects the token
/// ([`Sampler::greedy`] or [`Sampler::dist`]); [`Sampler::sample`] runs the chain over a
/// context's logits and *accepts* the chosen token (updating penalties, grammar state).
///
/// ```
/// # use llama_prebuilt::{Model, ModelParams, Sampler};
/// # let path = llama_prebuilt_test_support::gguf::tiny_model();
/// # let model = Model::load(&path, &ModelParams::default())?;
/// let creative = Sampler::chain().top_k(40).top_p(0.95, 1).temperature(0.8).dist(42);
/// let deterministic = Sampler::chain().greedy();
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
        let step = unsafe {
            sys::llama_sampler_init_penalties(
                penalties.last_n,
                penalties.repeat,
                penalties.frequency,
                penalties.presence,
            )
        };
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
    /// has no selecting step, [`Error::GrammarRejected`] if a grammar allows no token at all
    /// here, [`Error::ModelMismatch`] if the chain was built for another model.
    pub fn sample(&mut self, ctx: &Context<'_>, index: usize) -> Result<Token> {
        if let Some(model) = &self.model
            && model.as_ptr() != ctx.model().as_ptr()
        {
            return Err(Error::ModelMismatch);
        }
        let logits = ctx.logits(index)?;
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
