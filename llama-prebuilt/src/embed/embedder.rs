//! [`Embedder`]: many texts, one vector (or ranking score) each, many sequences per decode.

use llama_prebuilt_sys as sys;

use crate::batch::Batch;
use crate::context::Context;
use crate::context_params::{ContextParams, Pooling};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::token::Token;

/// Embeds any number of texts, packing as many whole sequences into each decode as the
/// context allows (at most `n_seq_max` sequences and `min(n_batch, n_ubatch, n_ctx)` tokens
/// per decode; llama.cpp pools within one ubatch), and reranks documents against a query with
/// a [`Pooling::Rank`] model.
///
/// The results equal embedding each text alone with [`Context::embed`] (within float
/// rounding: the tests require a cosine similarity within 1e-5 of 1). It owns its context,
/// created with llama.cpp's unified KV cache (`kv_unified`): without it llama.cpp splits a
/// batch of sequences of different lengths into several ubatches, and pooling would see only
/// part of a sequence.
///
/// ```
/// use llama_prebuilt::{Embedder, Model, ModelParams, Pooling, cosine_similarity};
///
/// # let path = llama_prebuilt_test_support::gguf::tiny_model();
/// let model = Model::load(&path, &ModelParams::default())?;
/// let mut embedder = Embedder::new(&model, &Embedder::params(&model).pooling(Pooling::Mean))?;
/// let texts = ["The cat sits on the mat.", "A cat is on a mat.", "Markets fell today."];
/// let vectors = embedder.embed_batch(&texts)?;
/// assert_eq!(vectors.len(), 3);
/// assert_eq!(vectors[0].len(), model.n_embd_out() as usize);
/// let _similar = cosine_similarity(&vectors[0], &vectors[1]);
/// # Ok::<(), llama_prebuilt::Error>(())
/// ```
#[derive(Debug)]
pub struct Embedder<'model> {
    ctx: Context<'model>,
    batch: Batch,
    /// Most tokens one decode takes.
    per_decode: usize,
}

impl<'model> Embedder<'model> {
    /// Parameters that suit batch embedding on `model`: embeddings on, 64 sequences and up to
    /// 2048 tokens per decode (`n_ctx`, `n_batch` and `n_ubatch` 2048, or the model's training
    /// context if that is smaller). Pooling is the model's (set [`ContextParams::pooling`] for
    /// a generative model, whose default is none).
    pub fn params(model: &Model) -> ContextParams {
        let n = match model.n_ctx_train() {
            0 => 2048,
            train => train.min(2048),
        };
        ContextParams::default()
            .embeddings(true)
            .n_ctx(n)
            .n_batch(n)
            .n_ubatch(n)
            .n_seq_max(64)
    }

    /// Creates the embedder's context from `params` (with embeddings turned on whatever
    /// `params` says). One decode holds at most `n_seq_max` texts and
    /// `min(n_batch, n_ubatch, n_ctx)` tokens; a text longer than that is an error.
    ///
    /// # Failure
    /// Whatever [`Context::new`] fails with, and [`Error::InvalidParam`] (`pooling`) if the
    /// pooling in effect is none: an embedder returns one vector per text.
    pub fn new(model: &'model Model, params: &ContextParams) -> Result<Self> {
        let params = params.clone().embeddings(true);
        if params.pooling == Pooling::None {
            return Err(no_pooling());
        }
        let ctx = Context::with_kv_unified(model, &params, true)?;
        if matches!(ctx.pooling(), Pooling::None | Pooling::FromModel) {
            return Err(no_pooling());
        }
        let per_decode = ctx.n_batch().min(ctx.n_ubatch()).min(ctx.n_ctx()) as usize;
        Ok(Embedder {
            ctx,
            batch: Batch::new(per_decode),
            per_decode,
        })
    }

    /// The context the embedder decodes with (its pooling, sizes, model).
    pub fn context(&self) -> &Context<'model> {
        &self.ctx
    }

    /// The most tokens one text (or query and document, for [`Embedder::rerank`]) may have.
    pub fn max_tokens_per_input(&self) -> usize {
        self.per_decode
    }

    /// Embeds `texts` (tokenized with the model's special tokens, e.g. BOS, added) and returns
    /// one pooled vector per text, in input order. With [`Pooling::Rank`] each "vector" is the
    /// classifier's output (`n_cls_out` values).
    ///
    /// # Failure
    /// [`Error::EmbedInput`] naming the first text that has no tokens or more than
    /// [`Embedder::max_tokens_per_input`]; tokenization and decode errors.
    pub fn embed_batch<S: AsRef<str>>(&mut self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        let model = self.ctx.model();
        let tokens = texts
            .iter()
            .map(|t| model.tokenize(t.as_ref(), true))
            .collect::<Result<Vec<_>>>()?;
        self.embed_tokens(&tokens)
    }

    /// [`Embedder::embed_batch`] for texts already tokenized.
    ///
    /// # Failure
    /// [`Error::EmbedInput`] for an empty or too long input, [`Error::TokenOutOfVocab`], and
    /// decode errors. Every input is checked before the first decode.
    pub fn embed_tokens<T: AsRef<[Token]>>(&mut self, inputs: &[T]) -> Result<Vec<Vec<f32>>> {
        let model = self.ctx.model();
        for (index, input) in inputs.iter().enumerate() {
            let input = input.as_ref();
            if input.is_empty() {
                return Err(Error::EmbedInput {
                    index,
                    reason: "it has no tokens (an empty text, and the model adds no BOS); \
                             leave it out or give it some text"
                        .into(),
                });
            }
            if input.len() > self.per_decode {
                return Err(Error::EmbedInput {
                    index,
                    reason: format!(
                        "it has {} tokens, more than the {} one decode holds (the smallest of \
                         n_batch {}, n_ubatch {} and n_ctx {}: llama.cpp pools within one \
                         ubatch); raise those parameters or shorten the text",
                        input.len(),
                        self.per_decode,
                        self.ctx.n_batch(),
                        self.ctx.n_ubatch(),
                        self.ctx.n_ctx(),
                    ),
                });
            }
            for &token in input {
                model.check_token(token)?;
            }
        }

        let n_seq_max = self.ctx.n_seq_max() as usize;
        let mut out = Vec::with_capacity(inputs.len());
        let mut start = 0;
        while start < inputs.len() {
            let (mut end, mut n_tokens) = (start, 0);
            while end < inputs.len()
                && end - start < n_seq_max
                && n_tokens + inputs[end].as_ref().len() <= self.per_decode
            {
                n_tokens += inputs[end].as_ref().len();
                end += 1;
            }
            self.batch.clear();
            for (seq, input) in inputs[start..end].iter().enumerate() {
                for (pos, &token) in input.as_ref().iter().enumerate() {
                    // Positions fit: pos < per_decode <= n_ctx (a u32 llama.cpp takes as i32).
                    self.batch.add(token, pos as i32, &[seq as i32], true)?;
                }
            }
            self.ctx.clear_memory();
            self.ctx.decode(&self.batch)?;
            for seq in 0..end - start {
                out.push(self.ctx.embeddings_seq(seq as i32)?.to_vec());
            }
            start = end;
        }
        Ok(out)
    }

    /// Scores each of `documents` against `query` with a reranking model (a classification
    /// head, context pooling [`Pooling::Rank`]) and returns the scores in input order (higher
    /// is more relevant). Each pair is tokenized the way llama.cpp's server does: through the
    /// model's `rerank` chat template (`{query}`/`{document}` substituted, special tokens
    /// parsed) when it has one, else `BOS query EOS SEP document EOS` with each special token
    /// only where the vocabulary asks for it. The score is the classifier's first output.
    ///
    /// # Failure
    /// [`Error::InvalidParam`] (`pooling`) if the context does not rank; [`Error::EmbedInput`]
    /// naming the first document whose pair is too long; tokenization and decode errors.
    pub fn rerank<S: AsRef<str>>(&mut self, query: &str, documents: &[S]) -> Result<Vec<f32>> {
        if self.ctx.pooling() != Pooling::Rank {
            return Err(Error::param(
                "pooling",
                format!(
                    "rerank needs Pooling::Rank (and a model with a classification head), \
                     this embedder pools with {:?}",
                    self.ctx.pooling()
                ),
            ));
        }
        let inputs = documents
            .iter()
            .map(|d| self.rerank_tokens(query, d.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(self
            .embed_tokens(&inputs)?
            .into_iter()
            .map(|scores| scores.first().copied().unwrap_or(f32::NAN))
            .collect())
    }

    /// The tokens [`Embedder::rerank`] scores for one (query, document) pair.
    pub fn rerank_tokens(&self, query: &str, document: &str) -> Result<Vec<Token>> {
        let model = self.ctx.model();
        if let Some(template) = model.named_chat_template(Some("rerank")) {
            let prompt = template
                .source()
                .replace("{query}", query)
                .replace("{document}", document);
            return model.tokenize_special(&prompt, false);
        }
        let vocab = model.raw().vocab();
        // SAFETY: read-only queries of the model's vocabulary, which lives as long as `model`.
        let (add_eos, add_sep, sep) = unsafe {
            (
                sys::llama_vocab_get_add_eos(vocab),
                sys::llama_vocab_get_add_sep(vocab),
                sys::llama_vocab_sep(vocab),
            )
        };
        let sep = (sep != sys::LLAMA_TOKEN_NULL).then_some(Token(sep));
        let eos = model.token_eos().or(sep);
        let mut tokens = Vec::new();
        if model.adds_bos()
            && let Some(bos) = model.token_bos()
        {
            tokens.push(bos);
        }
        tokens.extend(model.tokenize(query, false)?);
        if add_eos && let Some(eos) = eos {
            tokens.push(eos);
        }
        if add_sep && let Some(sep) = sep {
            tokens.push(sep);
        }
        tokens.extend(model.tokenize(document, false)?);
        if add_eos && let Some(eos) = eos {
            tokens.push(eos);
        }
        Ok(tokens)
    }
}

fn no_pooling() -> Error {
    Error::param(
        "pooling",
        "an Embedder needs pooled embeddings (one vector per text): set ContextParams::pooling \
         to Mean, Cls, Last or Rank (the model's own default is none)",
    )
}
