//! Grammar steps built on the GBNF step: JSON Schema output, lazy (triggered) grammars and
//! tool calls.

use std::ffi::c_char;

use llama_prebuilt_sys as sys;

use crate::chat::{Tool, ToolCallFormat};
use crate::error::{Error, Result};
use crate::ffi;
use crate::json_schema::{gbnf_literal, json_schema_to_gbnf};
use crate::model::Model;
use crate::sampler::Sampler;

/// What wakes a lazy grammar ([`Sampler::lazy_grammar`]): a literal text, anywhere in the
/// output or only at its start (after optional whitespace).
///
/// The trigger is a literal, not a regular expression: llama.cpp compiles trigger patterns
/// with `std::regex`, which aborts the process on a bad pattern, and feeds the grammar the
/// text from the trigger on, which aborts it when the grammar rejects that text. So this
/// crate writes the pattern itself (the escaped literal followed by up to 8 spaces, tabs or
/// newlines, at the end of the output so far) and starts the grammar with the same literal
/// and whitespace: whatever the model writes, the text handed to the grammar is accepted.
/// A token that continues past the trigger with anything but whitespace leaves the grammar
/// asleep (the output is then unconstrained) rather than aborting.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LazyTrigger {
    literal: String,
    anywhere: bool,
}

/// Longest whitespace run after a trigger that still wakes the grammar.
const TRIGGER_WHITESPACE: usize = 8;
/// Longest whitespace run before an at-start trigger that still wakes the grammar.
const LEADING_WHITESPACE: usize = 32;

impl LazyTrigger {
    /// Wakes when the output so far ends with `literal` (plus optional whitespace).
    pub fn anywhere(literal: impl Into<String>) -> Self {
        LazyTrigger {
            literal: literal.into(),
            anywhere: true,
        }
    }

    /// Wakes only when the whole output so far is `literal`, after optional whitespace (up
    /// to 32 spaces, tabs or newlines).
    pub fn at_start(literal: impl Into<String>) -> Self {
        LazyTrigger {
            literal: literal.into(),
            anywhere: false,
        }
    }

    /// The trigger text.
    pub fn literal(&self) -> &str {
        &self.literal
    }

    /// The `std::regex` (ECMAScript) pattern handed to llama.cpp; its first group is where
    /// the grammar's input starts.
    fn pattern(&self) -> String {
        let mut escaped = String::new();
        for c in self.literal.chars() {
            // The characters llama.cpp itself escapes for trigger words.
            if ".^$|()*+?[]{}\\".contains(c) {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        let tail = format!("[ \\t\\n]{{0,{TRIGGER_WHITESPACE}}}$");
        if self.anywhere {
            format!("({escaped}){tail}")
        } else {
            // Bounded, so libstdc++'s recursive matcher stays shallow on any output.
            format!("^[ \\t\\n]{{0,{LEADING_WHITESPACE}}}({escaped}){tail}")
        }
    }
}

impl Sampler {
    /// Constrains the output to JSON that validates against a JSON Schema (converted to a
    /// GBNF grammar by [`json_schema_to_gbnf`](crate::json_schema_to_gbnf), which lists what
    /// is supported).
    ///
    /// ```
    /// # use llama_prebuilt::{Model, ModelParams, Sampler};
    /// # let path = llama_prebuilt_test_support::gguf::tiny_model();
    /// # let model = Model::load(&path, &ModelParams::default())?;
    /// let schema = serde_json::json!({"type": "object",
    ///     "properties": {"city": {"type": "string", "maxLength": 20}}, "required": ["city"]});
    /// let sampler = Sampler::chain().json_schema(&model, &schema)?.greedy();
    /// # Ok::<(), llama_prebuilt::Error>(())
    /// ```
    ///
    /// # Failure
    /// [`Error::UnsupportedSchema`] naming the unsupported feature and where it is;
    /// otherwise as [`Sampler::grammar`].
    pub fn json_schema(self, model: &Model, schema: &serde_json::Value) -> Result<Self> {
        let gbnf = json_schema_to_gbnf(schema)?;
        self.grammar(model, &gbnf, "root")
    }

    /// A grammar that sleeps until `trigger` appears in the output, then constrains what
    /// follows: the grammar's rule `root` must match the text after the trigger literal and
    /// optional whitespace. Before the trigger every token is allowed.
    ///
    /// The grammar keeps its state across generations: [`Sampler::reset`] it before reusing
    /// the chain for a new reply.
    ///
    /// # Failure
    /// [`Error::InvalidParam`] for an empty trigger; [`Error::InvalidGrammar`],
    /// [`Error::NulByte`], [`Error::ModelMismatch`] as for [`Sampler::grammar`].
    pub fn lazy_grammar(
        self,
        model: &Model,
        gbnf: &str,
        root: &str,
        trigger: &LazyTrigger,
    ) -> Result<Self> {
        if trigger.literal.is_empty() {
            return Err(Error::param("trigger", "must not be empty"));
        }
        ffi::c_string("trigger", &trigger.literal)?;
        if root.is_empty() || !root.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Error::InvalidGrammar {
                root: root.into(),
                message: Some("the root must be a rule name ([a-zA-Z0-9-]+)".into()),
            });
        }
        let mut start = String::from("lazy-trigger-root");
        while gbnf.contains(&start) {
            start.push('x');
        }
        let wrapped = format!(
            "{gbnf}\n{start} ::= {} [ \\t\\n]{{0,{TRIGGER_WHITESPACE}}} {root}\n",
            gbnf_literal(&trigger.literal)
        );
        let c_gbnf = ffi::c_string("grammar", &wrapped)?;
        let c_start = ffi::c_string("grammar root", &start)?;
        let c_pattern = ffi::c_string("trigger", &trigger.pattern())?;
        let patterns: [*const c_char; 1] = [c_pattern.as_ptr()];
        let (step, message) = ffi::gate(|| {
            // SAFETY: NUL-terminated strings and a one-entry pattern array, all copied by
            // llama.cpp; the pattern is built by `LazyTrigger::pattern` from escaped literal
            // characters, so `std::regex` compiles it. The chain keeps the model (and so the
            // vocabulary) alive.
            unsafe {
                sys::llama_sampler_init_grammar_lazy_patterns(
                    model.raw().vocab(),
                    c_gbnf.as_ptr(),
                    c_start.as_ptr(),
                    patterns.as_ptr().cast_mut(),
                    patterns.len(),
                    std::ptr::null(),
                    0,
                )
            }
        });
        if step.is_null() {
            return Err(Error::InvalidGrammar {
                root: root.into(),
                message,
            });
        }
        self.push_grammar_step(model, "lazy-grammar", step)
    }

    /// Constrains tool calls in `format`'s style to well-formed calls of `tools`, with
    /// arguments that validate against each tool's schema; the rest of the reply is free.
    /// The grammar wakes on [`ToolCallFormat::trigger`] (anywhere for Hermes, at the start
    /// for Llama 3 JSON). Parse the reply with [`ToolCallFormat::parse`].
    ///
    /// # Failure
    /// As [`ToolCallFormat::grammar`] and [`Sampler::lazy_grammar`].
    pub fn tool_calls(self, model: &Model, format: ToolCallFormat, tools: &[Tool]) -> Result<Self> {
        let gbnf = format.grammar(tools)?;
        let trigger = if format.trigger_anywhere() {
            LazyTrigger::anywhere(format.trigger())
        } else {
            LazyTrigger::at_start(format.trigger())
        };
        self.lazy_grammar(model, &gbnf, "root", &trigger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_patterns_escape_the_literal() {
        assert_eq!(
            LazyTrigger::anywhere("<tool_call>").pattern(),
            "(<tool_call>)[ \\t\\n]{0,8}$"
        );
        assert_eq!(
            LazyTrigger::at_start("{").pattern(),
            "^[ \\t\\n]{0,32}(\\{)[ \\t\\n]{0,8}$"
        );
        assert_eq!(
            LazyTrigger::anywhere("a.b(c)[d]$^|*+?\\").pattern(),
            "(a\\.b\\(c\\)\\[d\\]\\$\\^\\|\\*\\+\\?\\\\)[ \\t\\n]{0,8}$"
        );
    }
}
