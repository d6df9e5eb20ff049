//! Chat templates from the model's metadata.

use std::ffi::{CStr, CString, c_char};
use std::fmt;

use llama_prebuilt_sys as sys;

use crate::error::{Error, Result};
use crate::ffi;
use crate::model::Model;

/// Who speaks in a [`ChatMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Instructions for the assistant.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool's output.
    Tool,
    /// Any other role name the template knows.
    Other(String),
}

impl Role {
    /// The role's name as templates use it.
    pub fn as_str(&self) -> &str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Other(name) => name,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChatMessage {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl ChatMessage {
    /// A message.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// A chat template: the Jinja source from a model's metadata, or the name of one of
/// llama.cpp's built-in templates (`chatml`, `llama3`, …). llama.cpp does not run Jinja; it
/// recognises the templates it supports by their content
/// (see llama.cpp's "Templates supported by llama_chat_apply_template").
///
/// ```
/// # use llama_prebuilt::{ChatMessage, Model, ModelParams};
/// # let path = llama_prebuilt_test_support::gguf::tiny_model();
/// # let model = Model::load(&path, &ModelParams::default())?;
/// let template = model.chat_template().expect("the model has a chat template");
/// let prompt = template.apply(&[ChatMessage::user("Hi!")], true)?;
/// let tokens = model.tokenize_special(&prompt, true)?;
/// # Ok::<(), llama_prebuilt::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    source: CString,
}

impl ChatTemplate {
    /// A template from its source or built-in name.
    ///
    /// # Failure
    /// [`Error::NulByte`] if `source` contains a NUL byte.
    pub fn new(source: &str) -> Result<Self> {
        Ok(ChatTemplate {
            source: ffi::c_string("chat template", source)?,
        })
    }

    /// The names of llama.cpp's built-in templates.
    pub fn builtin_names() -> Vec<String> {
        // SAFETY: with a null output pointer and length 0 it only counts.
        let n = unsafe { sys::llama_chat_builtin_templates(std::ptr::null_mut(), 0) };
        let mut names: Vec<*const c_char> = vec![std::ptr::null(); usize::try_from(n).unwrap_or(0)];
        // SAFETY: `names` has room for `n` pointers to static strings.
        let n = unsafe { sys::llama_chat_builtin_templates(names.as_mut_ptr(), names.len()) };
        names.truncate(usize::try_from(n).unwrap_or(0));
        names
            .into_iter()
            .filter(|p| !p.is_null())
            // SAFETY: static NUL-terminated strings.
            .map(|p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            .collect()
    }

    /// The template text.
    pub fn source(&self) -> &str {
        self.source.to_str().unwrap_or_default()
    }

    /// Formats `messages` into a prompt; `add_assistant` ends it with the tokens that start
    /// the assistant's reply. Tokenize the result with
    /// [`Model::tokenize_special`] so the template's markers become their tokens.
    ///
    /// # Failure
    /// [`Error::UnsupportedChatTemplate`] if llama.cpp does not recognise the template,
    /// [`Error::NulByte`] if a role or content contains a NUL byte.
    pub fn apply(&self, messages: &[ChatMessage], add_assistant: bool) -> Result<String> {
        let owned: Vec<(CString, CString)> = messages
            .iter()
            .map(|m| {
                Ok((
                    ffi::c_string("chat role", m.role.as_str())?,
                    ffi::c_string("chat message", &m.content)?,
                ))
            })
            .collect::<Result<_>>()?;
        let raw: Vec<sys::llama_chat_message> = owned
            .iter()
            .map(|(role, content)| sys::llama_chat_message {
                role: role.as_ptr(),
                content: content.as_ptr(),
            })
            .collect();
        let total: usize = messages
            .iter()
            .map(|m| m.content.len() + m.role.as_str().len())
            .sum();
        let mut buf = vec![0u8; 2 * total + 256];
        loop {
            let len = i32::try_from(buf.len()).map_err(|_| Error::param("messages", "too long"))?;
            // SAFETY: `raw` points into `owned`, alive for the call; writes at most `len` bytes.
            let n = unsafe {
                sys::llama_chat_apply_template(
                    self.source.as_ptr(),
                    raw.as_ptr(),
                    raw.len(),
                    add_assistant,
                    buf.as_mut_ptr().cast(),
                    len,
                )
            };
            let n = usize::try_from(n).map_err(|_| Error::UnsupportedChatTemplate)?;
            if n <= buf.len() {
                buf.truncate(n);
                return Ok(String::from_utf8(buf)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()));
            }
            buf.resize(n, 0);
        }
    }
}

impl Model {
    /// The model's default chat template (`tokenizer.chat_template`), if it has one.
    pub fn chat_template(&self) -> Option<ChatTemplate> {
        self.named_chat_template(None)
    }

    /// A named chat template from the metadata (`tokenizer.chat_template.<name>`), or the
    /// default one for `None`.
    pub fn named_chat_template(&self, name: Option<&str>) -> Option<ChatTemplate> {
        let name = match name {
            Some(n) => Some(CString::new(n).ok()?),
            None => None,
        };
        // SAFETY: a read-only query; the returned string belongs to the model and is copied.
        let ptr = unsafe {
            sys::llama_model_chat_template(
                self.as_ptr(),
                name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
            )
        };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: NUL-terminated, valid while the model lives.
        let source = unsafe { CStr::from_ptr(ptr) }.to_owned();
        Some(ChatTemplate { source })
    }
}
