//! Chat templates: the model's own Jinja template rendered with minijinja, with llama.cpp's
//! built-in template matcher as the fallback; tool definitions and tool calls.

use std::ffi::{CStr, CString, c_char};
use std::fmt;

use llama_prebuilt_sys as sys;

use crate::error::{Error, Result};
use crate::ffi;
use crate::model::Model;

#[cfg(feature = "jinja")]
mod jinja;
#[cfg(feature = "jinja")]
mod pyjson;
mod tools;

pub use tools::{ParsedReply, Tool, ToolCall, ToolCallFormat};

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
    /// The tools an assistant message calls (rendered as OpenAI-style `tool_calls`).
    pub tool_calls: Vec<ToolCall>,
    /// For a [`Role::Tool`] message: the id of the call it answers, if calls have ids.
    pub tool_call_id: Option<String>,
    /// For a [`Role::Tool`] message: the name of the tool that produced it.
    pub name: Option<String>,
}

impl ChatMessage {
    /// A message.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
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

    /// An assistant message that calls tools.
    pub fn assistant_tool_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        ChatMessage {
            tool_calls: calls,
            ..Self::assistant(content)
        }
    }

    /// A tool's result, answering the call of tool `name`.
    pub fn tool_result(name: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            name: Some(name.into()),
            ..Self::new(Role::Tool, content)
        }
    }

    /// The message as a template sees it: `role`, `content`, and `tool_calls`,
    /// `tool_call_id`, `name` when set.
    #[cfg(feature = "jinja")]
    fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("role".into(), self.role.as_str().into());
        map.insert("content".into(), self.content.as_str().into());
        if !self.tool_calls.is_empty() {
            map.insert(
                "tool_calls".into(),
                self.tool_calls.iter().map(ToolCall::to_json).collect(),
            );
        }
        if let Some(id) = &self.tool_call_id {
            map.insert("tool_call_id".into(), id.as_str().into());
        }
        if let Some(name) = &self.name {
            map.insert("name".into(), name.as_str().into());
        }
        serde_json::Value::Object(map)
    }
}

/// How a prompt was produced (see [`ChatTemplate::render`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplatePath {
    /// The template's Jinja source, rendered by minijinja.
    Jinja,
    /// llama.cpp's built-in matcher (`llama_chat_apply_template`).
    Builtin {
        /// Why the Jinja path was not taken: `None` when the template is a built-in name
        /// (`chatml`, `llama3`, …), else the Jinja engine's error.
        jinja_error: Option<String>,
    },
}

impl fmt::Display for TemplatePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplatePath::Jinja => f.write_str("jinja"),
            TemplatePath::Builtin { jinja_error: None } => f.write_str("built-in template"),
            TemplatePath::Builtin {
                jinja_error: Some(e),
            } => write!(f, "built-in template (Jinja failed: {e})"),
        }
    }
}

/// A rendered prompt and the path that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedChat {
    /// The prompt; tokenize it with [`Model::tokenize_special`].
    pub prompt: String,
    /// Jinja, or the built-in fallback.
    pub path: TemplatePath,
}

/// Options of [`ChatTemplate::render`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatOptions {
    add_generation_prompt: bool,
    tools: Vec<Tool>,
    builtin_only: bool,
}

impl ChatOptions {
    /// End the prompt with the tokens that start the assistant's reply.
    pub fn add_generation_prompt(mut self, yes: bool) -> Self {
        self.add_generation_prompt = yes;
        self
    }

    /// Offer these tools (the template's `tools` variable). A template that does not use
    /// `tools` gets them described in a system message instead (see
    /// [`ChatTemplate::handles_tools`]).
    pub fn tools(mut self, tools: impl IntoIterator<Item = Tool>) -> Self {
        self.tools = tools.into_iter().collect();
        self
    }

    /// Skip the Jinja engine: use llama.cpp's built-in matcher only (tools are not rendered).
    pub fn builtin_only(mut self, yes: bool) -> Self {
        self.builtin_only = yes;
        self
    }
}

/// A chat template: the Jinja source from a model's metadata, or the name of one of
/// llama.cpp's built-in templates (`chatml`, `llama3`, …).
///
/// [`ChatTemplate::apply`] and [`ChatTemplate::render`] run the template's Jinja source (with
/// minijinja, in the environment Hugging Face's `apply_chat_template` gives it: `messages`,
/// `add_generation_prompt`, `bos_token`, `eos_token`, `tools`, `raise_exception`,
/// `strftime_now`, `tojson` and the other common filters, Python string methods). They fall
/// back to llama.cpp's built-in matcher (`llama_chat_apply_template`, which recognises known
/// template shapes) only when the source is a built-in name or the Jinja engine cannot render
/// it; [`RenderedChat::path`] says which path was taken.
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
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// A template from its source or built-in name, with empty `bos_token` and `eos_token`
    /// (see [`ChatTemplate::with_special_tokens`]; [`Model::chat_template`] sets them).
    ///
    /// # Failure
    /// [`Error::NulByte`] if `source` contains a NUL byte.
    pub fn new(source: &str) -> Result<Self> {
        Ok(ChatTemplate {
            source: ffi::c_string("chat template", source)?,
            bos_token: String::new(),
            eos_token: String::new(),
        })
    }

    /// The same template with the text of the model's BOS and EOS tokens, which templates
    /// see as `bos_token` and `eos_token`.
    pub fn with_special_tokens(mut self, bos: impl Into<String>, eos: impl Into<String>) -> Self {
        self.bos_token = bos.into();
        self.eos_token = eos.into();
        self
    }

    /// The `bos_token` templates see.
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The `eos_token` templates see.
    pub fn eos_token(&self) -> &str {
        &self.eos_token
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

    /// Whether the source is the name of a built-in template rather than Jinja.
    pub fn is_builtin_name(&self) -> bool {
        let source = self.source();
        Self::builtin_names().iter().any(|n| n == source)
    }

    /// Whether the template renders the `tools` variable itself (its source mentions
    /// `tools`: a heuristic). When it does not,
    /// [`ChatTemplate::render`] describes offered tools in a system message (Hermes style:
    /// calls answered as `<tool_call>{"name": …, "arguments": …}</tool_call>`).
    pub fn handles_tools(&self) -> bool {
        !self.is_builtin_name() && self.source().contains("tools")
    }

    /// The tool-call style this template's model was trained on (see
    /// [`ToolCallFormat::detect`]).
    pub fn tool_call_format(&self) -> ToolCallFormat {
        ToolCallFormat::detect(self)
    }

    /// Formats `messages` into a prompt; `add_assistant` ends it with the tokens that start
    /// the assistant's reply. Tokenize the result with [`Model::tokenize_special`] so the
    /// template's markers become their tokens. Same as [`ChatTemplate::render`] without tools.
    ///
    /// # Failure
    /// As [`ChatTemplate::render`].
    pub fn apply(&self, messages: &[ChatMessage], add_assistant: bool) -> Result<String> {
        let options = ChatOptions::default().add_generation_prompt(add_assistant);
        Ok(self.render(messages, &options)?.prompt)
    }

    /// Renders `messages` (and the tools of `options`) with the template's Jinja source,
    /// falling back to llama.cpp's built-in matcher when the source is a built-in name or
    /// does not render; the result says which path was taken (also logged at debug level).
    ///
    /// # Failure
    /// [`Error::ChatTemplateRaised`] with the template's message if it calls
    /// `raise_exception` (no fallback: the template rejected the conversation);
    /// [`Error::ChatTemplateRender`] with the Jinja error if neither path can render it;
    /// [`Error::UnsupportedChatTemplate`] for a built-in path on a template llama.cpp does
    /// not recognise; [`Error::NulByte`] if a role or content contains a NUL byte on the
    /// built-in path.
    pub fn render(&self, messages: &[ChatMessage], options: &ChatOptions) -> Result<RenderedChat> {
        if options.builtin_only || self.is_builtin_name() {
            let prompt = self.apply_builtin(messages, options.add_generation_prompt)?;
            return Ok(RenderedChat {
                prompt,
                path: TemplatePath::Builtin { jinja_error: None },
            });
        }
        match self.render_jinja(messages, options) {
            Ok(prompt) => {
                log::debug!(target: crate::LOG_TARGET, "chat template rendered with Jinja");
                Ok(RenderedChat {
                    prompt,
                    path: TemplatePath::Jinja,
                })
            }
            Err(Error::ChatTemplateRender { message }) => {
                match self.apply_builtin(messages, options.add_generation_prompt) {
                    Ok(prompt) => {
                        log::warn!(
                            target: crate::LOG_TARGET,
                            "chat template failed to render with Jinja ({message}); used llama.cpp's built-in matcher"
                        );
                        Ok(RenderedChat {
                            prompt,
                            path: TemplatePath::Builtin {
                                jinja_error: Some(message),
                            },
                        })
                    }
                    Err(Error::UnsupportedChatTemplate) => {
                        Err(Error::ChatTemplateRender { message })
                    }
                    Err(other) => Err(other),
                }
            }
            Err(other) => Err(other),
        }
    }

    /// Renders with the Jinja engine only (no fallback).
    ///
    /// # Failure
    /// [`Error::ChatTemplateRaised`] if the template calls `raise_exception`,
    /// [`Error::ChatTemplateRender`] if it does not parse or rendering fails, or if the crate
    /// was built without its `jinja` feature (then [`ChatTemplate::render`] always takes the
    /// built-in path).
    pub fn render_jinja(&self, messages: &[ChatMessage], options: &ChatOptions) -> Result<String> {
        #[cfg(not(feature = "jinja"))]
        {
            let _ = (messages, options);
            Err(Error::ChatTemplateRender {
                message: "llama-prebuilt was built without its `jinja` feature".into(),
            })
        }
        #[cfg(feature = "jinja")]
        {
            let mut all: Vec<serde_json::Value> = Vec::with_capacity(messages.len() + 1);
            let tools_in_prompt = !options.tools.is_empty() && !self.handles_tools();
            let mut merged_system = false;
            if tools_in_prompt {
                let description = tools::hermes_system_prompt(&options.tools);
                match messages.first() {
                    Some(first) if first.role == Role::System => {
                        let mut system = first.clone();
                        system.content = format!("{}\n\n{description}", first.content);
                        all.push(system.to_json());
                        merged_system = true;
                    }
                    _ => all.push(ChatMessage::system(description).to_json()),
                }
            }
            all.extend(
                messages
                    .iter()
                    .skip(usize::from(merged_system))
                    .map(ChatMessage::to_json),
            );
            let inputs = jinja::Inputs {
                messages: jinja::from_json(&serde_json::Value::Array(all)),
                tools: (!options.tools.is_empty()).then(|| {
                    jinja::from_json(&serde_json::Value::Array(
                        options.tools.iter().map(Tool::to_json).collect(),
                    ))
                }),
                add_generation_prompt: options.add_generation_prompt,
                bos_token: self.bos_token.clone(),
                eos_token: self.eos_token.clone(),
            };
            jinja::render(self.source(), &inputs).map_err(|failure| match failure {
                jinja::Failure::Raised(message) => Error::ChatTemplateRaised { message },
                jinja::Failure::Engine(message) => Error::ChatTemplateRender { message },
            })
        }
    }

    /// Formats `messages` with llama.cpp's built-in matcher (`llama_chat_apply_template`),
    /// which recognises the templates it supports by their content and ignores tools.
    ///
    /// # Failure
    /// [`Error::UnsupportedChatTemplate`] if llama.cpp does not recognise the template,
    /// [`Error::NulByte`] if a role or content contains a NUL byte.
    pub fn apply_builtin(&self, messages: &[ChatMessage], add_assistant: bool) -> Result<String> {
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
    /// The model's default chat template (`tokenizer.chat_template`), if it has one, with
    /// the text of the model's BOS and EOS tokens as `bos_token` and `eos_token`.
    pub fn chat_template(&self) -> Option<ChatTemplate> {
        self.named_chat_template(None)
    }

    /// The model's chat template, or — for a model without one — llama.cpp's built-in
    /// template `builtin` (e.g. `"chatml"`, what llama.cpp itself falls back to), which
    /// [`ChatTemplate::render`] then formats with the built-in matcher
    /// ([`TemplatePath::Builtin`] with no Jinja error). BOS and EOS texts are the model's.
    ///
    /// # Failure
    /// [`Error::InvalidParam`] if `builtin` is not one of [`ChatTemplate::builtin_names`].
    pub fn chat_template_or_builtin(&self, builtin: &str) -> Result<ChatTemplate> {
        if let Some(template) = self.chat_template() {
            return Ok(template);
        }
        if !ChatTemplate::builtin_names().iter().any(|n| n == builtin) {
            return Err(Error::param(
                "builtin",
                format!("{builtin:?} is not one of llama.cpp's built-in chat templates"),
            ));
        }
        let text = |token: Option<crate::Token>| {
            token
                .and_then(|t| self.token_text(t).ok())
                .unwrap_or_default()
        };
        Ok(ChatTemplate::new(builtin)?
            .with_special_tokens(text(self.token_bos()), text(self.token_eos())))
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
        let text = |token: Option<crate::Token>| {
            token
                .and_then(|t| self.token_text(t).ok())
                .unwrap_or_default()
        };
        Some(ChatTemplate {
            source,
            bos_token: text(self.token_bos()),
            eos_token: text(self.token_eos()),
        })
    }
}
