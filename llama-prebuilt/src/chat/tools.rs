//! Tools offered to a model, the tool-call styles of model families, their grammars and
//! parsers.

use std::hash::{Hash, Hasher};

use serde_json::{Value, json};

use crate::chat::ChatTemplate;
use crate::error::{Error, Result};
use crate::json_schema::{Converter, gbnf_literal};

/// A function the model may call: a name, a description, and a JSON Schema of its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// The function's name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

impl Tool {
    /// A tool.
    pub fn new(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Self {
        Tool {
            name: name.into(),
            description: description.into(),
            parameters,
        }
    }

    /// The OpenAI-style definition templates expect in `tools`:
    /// `{"type": "function", "function": {"name", "description", "parameters"}}`.
    pub fn to_json(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            }
        })
    }
}

/// A call of a tool, as parsed from a reply or put in an assistant message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// The arguments (normally an object).
    pub arguments: Value,
    /// An id, when the conversation uses them.
    pub id: Option<String>,
}

impl Hash for ToolCall {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.arguments.to_string().hash(state);
        self.id.hash(state);
    }
}

impl ToolCall {
    /// A call without id.
    pub fn new(name: impl Into<String>, arguments: Value) -> Self {
        ToolCall {
            name: name.into(),
            arguments,
            id: None,
        }
    }

    /// The OpenAI-style form templates expect in a message's `tool_calls`.
    #[cfg(feature = "jinja")]
    pub(crate) fn to_json(&self) -> Value {
        let mut call = json!({
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        });
        if let Some(id) = &self.id {
            call["id"] = Value::String(id.clone());
        }
        call
    }
}

/// A model's reply split into text and tool calls.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedReply {
    /// The text outside the tool calls, trimmed.
    pub content: String,
    /// The calls, in order.
    pub tool_calls: Vec<ToolCall>,
}

/// How a model family writes tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ToolCallFormat {
    /// Hermes 2 Pro, Qwen 2.5/3 and the default for templates without tool support:
    /// `<tool_call>{"name": "…", "arguments": {…}}</tool_call>`, anywhere in the reply.
    Hermes,
    /// Llama 3.1/3.2/3.3 JSON tool calls: the whole reply is
    /// `{"name": "…", "parameters": {…}}` (optionally after `<|python_tag|>`).
    Llama3Json,
}

impl ToolCallFormat {
    /// The style a template's model was trained on: Hermes when the template mentions
    /// `<tool_call>`, Llama 3 JSON for Llama 3 headers (`<|start_header_id|>`), else Hermes
    /// (which [`ChatTemplate::render`] then describes in a system message).
    pub fn detect(template: &ChatTemplate) -> Self {
        let source = template.source();
        if source.contains("<tool_call>") {
            ToolCallFormat::Hermes
        } else if source.contains("<|start_header_id|>") || template.source() == "llama3" {
            ToolCallFormat::Llama3Json
        } else {
            ToolCallFormat::Hermes
        }
    }

    /// The text that starts a call: the lazy grammar's trigger.
    pub fn trigger(self) -> &'static str {
        match self {
            ToolCallFormat::Hermes => "<tool_call>",
            ToolCallFormat::Llama3Json => "{",
        }
    }

    /// Whether a call may start anywhere in the reply (Hermes) or only at its start
    /// (Llama 3 JSON).
    pub fn trigger_anywhere(self) -> bool {
        matches!(self, ToolCallFormat::Hermes)
    }

    /// The GBNF grammar (start rule `root`) of what follows the trigger (and optional
    /// whitespace) in one call of one of `tools`, with arguments that validate against the
    /// tool's schema.
    ///
    /// # Failure
    /// [`Error::InvalidParam`] for an empty tool list, [`Error::UnsupportedSchema`] if a
    /// tool's parameter schema uses what the converter cannot express.
    pub fn grammar(self, tools: &[Tool]) -> Result<String> {
        if tools.is_empty() {
            return Err(Error::param("tools", "no tool to call"));
        }
        let arguments_key = match self {
            ToolCallFormat::Hermes => "arguments",
            ToolCallFormat::Llama3Json => "parameters",
        };
        let mut alternatives = Vec::new();
        let schemas: Vec<&Value> = tools.iter().map(|t| &t.parameters).collect();
        // Each tool's schema is its own root for `$ref`s; one converter per tool, their rules
        // prefixed to stay apart.
        let mut text = String::new();
        for (i, (tool, schema)) in tools.iter().zip(schemas).enumerate() {
            let mut converter = Converter::new(schema, &format!("t{i}-"));
            let hint = "args".to_string();
            let args = converter.visit(schema, &hint, &format!("tools[{i}].parameters"))?;
            let rules = converter.finish_rules();
            text.push_str(&rules);
            alternatives.push(format!(
                "{} space \",\" space {} space \":\" space {args}",
                gbnf_literal(&Value::String(tool.name.clone()).to_string()),
                gbnf_literal(&format!("\"{arguments_key}\"")),
            ));
        }
        let call_fields = format!(
            "{} space \":\" space ({})",
            gbnf_literal("\"name\""),
            alternatives.join(" | ")
        );
        let root = match self {
            ToolCallFormat::Hermes => format!(
                "root ::= \"{{\" space {call_fields} \"}}\" space [ \\t\\n]{{0,2}} \"</tool_call>\"\n"
            ),
            ToolCallFormat::Llama3Json => format!("root ::= space {call_fields} \"}}\" space\n"),
        };
        Ok(format!("{root}{text}{}", crate::json_schema::primitives()))
    }

    /// Splits a reply into text and tool calls.
    ///
    /// # Failure
    /// [`Error::ToolCallParse`] if a call is started (`<tool_call>` for Hermes, a JSON object
    /// with a `name` for Llama 3) but is not well-formed JSON with a string `name`.
    pub fn parse(self, text: &str) -> Result<ParsedReply> {
        match self {
            ToolCallFormat::Hermes => parse_hermes(text),
            ToolCallFormat::Llama3Json => parse_llama3(text),
        }
    }
}

fn parse_error(reason: impl Into<String>) -> Error {
    Error::ToolCallParse {
        reason: reason.into(),
    }
}

/// The first JSON value of `text` and the number of bytes it took.
fn leading_json(text: &str) -> std::result::Result<(Value, usize), serde_json::Error> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    match stream.next() {
        Some(Ok(value)) => Ok((value, stream.byte_offset())),
        Some(Err(e)) => Err(e),
        None => Err(serde_json::from_str::<Value>("").unwrap_err()),
    }
}

/// `{"name": …, <args_key>: …}` as a call; `arguments` given as a JSON string is parsed.
fn call_from(value: Value, args_keys: &[&str]) -> Result<ToolCall> {
    let Value::Object(mut map) = value else {
        return Err(parse_error(format!(
            "a tool call must be a JSON object, got {value}"
        )));
    };
    let name = match map.remove("name") {
        Some(Value::String(name)) => name,
        Some(other) => {
            return Err(parse_error(format!(
                "the tool name must be a string, got {other}"
            )));
        }
        None => return Err(parse_error("the tool call has no \"name\"")),
    };
    let mut arguments = args_keys
        .iter()
        .find_map(|k| map.remove(*k))
        .unwrap_or_else(|| Value::Object(Default::default()));
    if let Value::String(s) = &arguments {
        arguments = serde_json::from_str(s).map_err(|e| {
            parse_error(format!(
                "the arguments of {name} are a string but not JSON: {e}"
            ))
        })?;
    }
    let id = match map.remove("id") {
        Some(Value::String(id)) => Some(id),
        _ => None,
    };
    Ok(ToolCall {
        name,
        arguments,
        id,
    })
}

fn parse_hermes(text: &str) -> Result<ParsedReply> {
    const OPEN: &str = "<tool_call>";
    const CLOSE: &str = "</tool_call>";
    let mut content = String::new();
    let mut calls = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        content.push_str(&rest[..at]);
        let after = &rest[at + OPEN.len()..];
        let trimmed = after.trim_start();
        let (value, used) = leading_json(trimmed)
            .map_err(|e| parse_error(format!("<tool_call> not followed by JSON: {e}")))?;
        calls.push(call_from(value, &["arguments", "parameters"])?);
        let tail = trimmed[used..].trim_start();
        rest = tail.strip_prefix(CLOSE).unwrap_or(tail);
    }
    content.push_str(rest);
    Ok(ParsedReply {
        content: content.trim().to_string(),
        tool_calls: calls,
    })
}

fn parse_llama3(text: &str) -> Result<ParsedReply> {
    let trimmed = text.trim_start();
    let body = trimmed
        .strip_prefix("<|python_tag|>")
        .unwrap_or(trimmed)
        .trim_start();
    if !body.starts_with('{') {
        return Ok(ParsedReply {
            content: text.trim().to_string(),
            tool_calls: Vec::new(),
        });
    }
    let mut calls = Vec::new();
    let mut rest = body;
    while rest.starts_with('{') {
        let (value, used) = match leading_json(rest) {
            Ok(found) => found,
            Err(e) if calls.is_empty() && !rest.contains("\"name\"") => {
                // Text that merely starts with a brace.
                let _ = e;
                return Ok(ParsedReply {
                    content: text.trim().to_string(),
                    tool_calls: Vec::new(),
                });
            }
            Err(e) => return Err(parse_error(format!("malformed JSON tool call: {e}"))),
        };
        if calls.is_empty() && value.get("name").is_none() {
            return Ok(ParsedReply {
                content: text.trim().to_string(),
                tool_calls: Vec::new(),
            });
        }
        calls.push(call_from(value, &["parameters", "arguments"])?);
        rest = rest[used..].trim_start();
        rest = rest.strip_prefix(';').unwrap_or(rest).trim_start();
    }
    Ok(ParsedReply {
        content: rest.trim().to_string(),
        tool_calls: calls,
    })
}

/// The system-prompt text describing `tools` for templates that do not render `tools`
/// (Qwen 2.5's wording: Hermes-style calls).
#[cfg(feature = "jinja")]
pub(crate) fn hermes_system_prompt(tools: &[Tool]) -> String {
    let mut text = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
    );
    for tool in tools {
        text.push('\n');
        text.push_str(&crate::chat::pyjson::python_json(&tool.to_json()));
    }
    text.push_str(
        "\n</tools>\n\nFor each function call, return a json object with function name and \
         arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n\
         {\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>",
    );
    text
}
