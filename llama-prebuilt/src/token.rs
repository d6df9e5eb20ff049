//! Tokens and the vocabulary: tokenize, detokenize, token pieces and attributes.

use std::ffi::CStr;
use std::fmt;

use llama_prebuilt_sys as sys;

use crate::error::{Error, Result};
use crate::model::Model;

/// A token id of a model's vocabulary. Any `i32` can be wrapped; functions that hand tokens to
/// llama.cpp check them against the vocabulary first ([`Error::TokenOutOfVocab`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub i32);

impl Token {
    /// The raw id.
    pub const fn id(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<i32> for Token {
    fn from(id: i32) -> Self {
        Token(id)
    }
}

/// Attributes of a vocabulary entry (llama.h's `enum llama_token_attr` bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TokenAttrs(u32);

// The C enum is `c_uint` on most targets but `c_int` on Windows.
#[allow(clippy::unnecessary_cast)]
impl TokenAttrs {
    /// Unknown-token marker.
    pub const UNKNOWN: TokenAttrs = TokenAttrs(sys::LLAMA_TOKEN_ATTR_UNKNOWN as u32);
    /// Unused entry.
    pub const UNUSED: TokenAttrs = TokenAttrs(sys::LLAMA_TOKEN_ATTR_UNUSED as u32);
    /// Ordinary text token.
    pub const NORMAL: TokenAttrs = TokenAttrs(sys::LLAMA_TOKEN_ATTR_NORMAL as u32);
    /// Control token (BOS, EOS, chat markers); rendered as nothing unless asked for.
    pub const CONTROL: TokenAttrs = TokenAttrs(sys::LLAMA_TOKEN_ATTR_CONTROL as u32);
    /// User-defined token.
    pub const USER_DEFINED: TokenAttrs = TokenAttrs(sys::LLAMA_TOKEN_ATTR_USER_DEFINED as u32);
    /// Byte token.
    pub const BYTE: TokenAttrs = TokenAttrs(sys::LLAMA_TOKEN_ATTR_BYTE as u32);
    /// Normalized token.
    pub const NORMALIZED: TokenAttrs = TokenAttrs(sys::LLAMA_TOKEN_ATTR_NORMALIZED as u32);
    /// Strips whitespace on the left.
    pub const LSTRIP: TokenAttrs = TokenAttrs(sys::LLAMA_TOKEN_ATTR_LSTRIP as u32);
    /// Strips whitespace on the right.
    pub const RSTRIP: TokenAttrs = TokenAttrs(sys::LLAMA_TOKEN_ATTR_RSTRIP as u32);
    /// Matches only as a single word.
    pub const SINGLE_WORD: TokenAttrs = TokenAttrs(sys::LLAMA_TOKEN_ATTR_SINGLE_WORD as u32);

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether all bits of `other` are set.
    pub const fn contains(self, other: TokenAttrs) -> bool {
        self.0 & other.0 == other.0
    }
}

impl Model {
    /// Number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> u32 {
        self.raw().n_vocab()
    }

    /// `Ok(token)` if it is in the vocabulary.
    pub fn check_token(&self, token: Token) -> Result<Token> {
        if u32::try_from(token.0).is_ok_and(|id| id < self.n_vocab()) {
            Ok(token)
        } else {
            Err(Error::TokenOutOfVocab {
                token,
                n_vocab: self.n_vocab(),
            })
        }
    }

    fn vocab(&self) -> *const sys::llama_vocab {
        self.raw().vocab()
    }

    fn special(
        &self,
        f: unsafe extern "C" fn(*const sys::llama_vocab) -> sys::llama_token,
    ) -> Option<Token> {
        // SAFETY: a read-only query of a valid vocabulary.
        let id = unsafe { f(self.vocab()) };
        (id != sys::LLAMA_TOKEN_NULL).then_some(Token(id))
    }

    /// The beginning-of-sequence token, if the vocabulary has one.
    pub fn token_bos(&self) -> Option<Token> {
        self.special(sys::llama_vocab_bos)
    }

    /// The end-of-sequence token, if the vocabulary has one.
    pub fn token_eos(&self) -> Option<Token> {
        self.special(sys::llama_vocab_eos)
    }

    /// The end-of-turn token, if the vocabulary has one.
    pub fn token_eot(&self) -> Option<Token> {
        self.special(sys::llama_vocab_eot)
    }

    /// The newline token, if the vocabulary has one.
    pub fn token_nl(&self) -> Option<Token> {
        self.special(sys::llama_vocab_nl)
    }

    /// Whether tokenizing with `add_special` prepends BOS.
    pub fn adds_bos(&self) -> bool {
        // SAFETY: a read-only query.
        unsafe { sys::llama_vocab_get_add_bos(self.vocab()) }
    }

    /// Whether `token` ends generation (EOS, EOT, `<|im_end|>`, …). `false` for ids outside the
    /// vocabulary.
    pub fn is_eog(&self, token: Token) -> bool {
        // SAFETY: a set lookup; the id is in range.
        self.check_token(token).is_ok() && unsafe { sys::llama_vocab_is_eog(self.vocab(), token.0) }
    }

    /// Whether `token` is a control token. `false` for ids outside the vocabulary.
    pub fn is_control(&self, token: Token) -> bool {
        // SAFETY: as above.
        self.check_token(token).is_ok()
            && unsafe { sys::llama_vocab_is_control(self.vocab(), token.0) }
    }

    /// The vocabulary entry's stored text (for byte-level BPE vocabularies this is the
    /// GPT-2-mapped form, e.g. `Ġ` for a space; use [`Model::token_piece`] for the bytes).
    pub fn token_text(&self, token: Token) -> Result<String> {
        self.check_token(token)?;
        // SAFETY: the id is in range; the string belongs to the vocabulary.
        let ptr = unsafe { sys::llama_vocab_get_text(self.vocab(), token.0) };
        if ptr.is_null() {
            return Ok(String::new());
        }
        // SAFETY: NUL-terminated, valid while the model lives.
        Ok(unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned())
    }

    /// The vocabulary entry's attributes.
    pub fn token_attrs(&self, token: Token) -> Result<TokenAttrs> {
        self.check_token(token)?;
        // SAFETY: the id is in range.
        Ok(TokenAttrs(
            unsafe { sys::llama_vocab_get_attr(self.vocab(), token.0) } as u32,
        ))
    }

    /// The bytes a token stands for. With `special == false`, control tokens render as
    /// nothing. A piece can be an incomplete part of a UTF-8 character.
    pub fn token_piece(&self, token: Token, special: bool) -> Result<Vec<u8>> {
        self.check_token(token)?;
        let mut buf = vec![0u8; 32];
        loop {
            // SAFETY: the id is in range; writes at most buf.len() bytes.
            let n = unsafe {
                sys::llama_token_to_piece(
                    self.vocab(),
                    token.0,
                    buf.as_mut_ptr().cast(),
                    i32::try_from(buf.len()).unwrap_or(i32::MAX),
                    0,
                    special,
                )
            };
            if n >= 0 {
                buf.truncate(n as usize);
                return Ok(buf);
            }
            buf.resize(n.unsigned_abs() as usize, 0);
        }
    }

    /// Tokenizes `text`. Special-token text such as `<|im_start|>` stays plain text (use
    /// [`Model::tokenize_special`] to parse it); `add_special` adds BOS/EOS if the vocabulary
    /// asks for them.
    ///
    /// # Failure
    /// [`Error::Tokenize`] if the text is longer than llama.cpp's 32-bit lengths allow.
    pub fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<Token>> {
        self.tokenize_impl(text.as_bytes(), add_special, false)
    }

    /// Like [`Model::tokenize`], but text matching a special or control token becomes that
    /// token. Use for trusted text only (chat templates), never for user input.
    pub fn tokenize_special(&self, text: &str, add_special: bool) -> Result<Vec<Token>> {
        self.tokenize_impl(text.as_bytes(), add_special, true)
    }

    fn tokenize_impl(
        &self,
        text: &[u8],
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<Token>> {
        let len = i32::try_from(text.len()).map_err(|_| Error::Tokenize {
            reason: "text longer than 2^31 bytes",
        })?;
        let mut tokens: Vec<sys::llama_token> = vec![0; text.len() / 2 + 8];
        loop {
            // SAFETY: `text` has `len` bytes (NULs allowed, the length is explicit); writes at
            // most tokens.len() tokens. The tokenizer API is thread-safe.
            let n = unsafe {
                sys::llama_tokenize(
                    self.vocab(),
                    text.as_ptr().cast(),
                    len,
                    tokens.as_mut_ptr(),
                    i32::try_from(tokens.len()).unwrap_or(i32::MAX),
                    add_special,
                    parse_special,
                )
            };
            if n == i32::MIN {
                return Err(Error::Tokenize {
                    reason: "the token count overflows 32 bits",
                });
            }
            if n >= 0 {
                tokens.truncate(n as usize);
                return Ok(tokens.into_iter().map(Token).collect());
            }
            tokens.resize(n.unsigned_abs() as usize, 0);
        }
    }

    /// Turns tokens back into bytes (the inverse of [`Model::tokenize`]). `remove_special`
    /// drops a leading BOS / trailing EOS the vocabulary adds; `unparse_special` renders
    /// control tokens as their text.
    pub fn detokenize_bytes(
        &self,
        tokens: &[Token],
        remove_special: bool,
        unparse_special: bool,
    ) -> Result<Vec<u8>> {
        for &t in tokens {
            self.check_token(t)?;
        }
        let n_tokens = i32::try_from(tokens.len()).map_err(|_| Error::Tokenize {
            reason: "more than 2^31 tokens",
        })?;
        let ids: Vec<sys::llama_token> = tokens.iter().map(|t| t.0).collect();
        let mut buf = vec![0u8; tokens.len() * 4 + 16];
        loop {
            // SAFETY: all ids are in range; writes at most buf.len() bytes.
            let n = unsafe {
                sys::llama_detokenize(
                    self.vocab(),
                    ids.as_ptr(),
                    n_tokens,
                    buf.as_mut_ptr().cast(),
                    i32::try_from(buf.len()).unwrap_or(i32::MAX),
                    remove_special,
                    unparse_special,
                )
            };
            if n >= 0 {
                buf.truncate(n as usize);
                return Ok(buf);
            }
            if n == i32::MIN {
                return Err(Error::Tokenize {
                    reason: "the text length overflows 32 bits",
                });
            }
            buf.resize(n.unsigned_abs() as usize, 0);
        }
    }

    /// [`Model::detokenize_bytes`] as a string (invalid UTF-8 replaced by U+FFFD), without
    /// special tokens.
    pub fn detokenize(&self, tokens: &[Token]) -> Result<String> {
        let bytes = self.detokenize_bytes(tokens, false, false)?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}
