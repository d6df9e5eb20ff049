//! Tool calls: parsing both families' styles on fixed strings, rendering tools through
//! templates, and lazily constrained generation on the tiny model.

mod common;

use common::{small_ctx, tiny_model};
use llama_prebuilt::ModelParams;
use llama_prebuilt::{
    ChatMessage, ChatOptions, ChatTemplate, Error, GenerateOptions, LazyTrigger, Model,
    ParsedReply, Sampler, Token, Tool, ToolCall, ToolCallFormat,
};
use llama_prebuilt_test_support::gguf::{self, TinyModelSpec};
use serde_json::json;

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "get_weather",
            "Current weather in a city",
            json!({"type": "object",
                   "properties": {"city": {"type": "string", "maxLength": 12},
                                  "unit": {"enum": ["C", "F"]}},
                   "required": ["city"], "additionalProperties": false}),
        ),
        Tool::new(
            "add",
            "Adds two numbers",
            json!({"type": "object",
                   "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 100},
                                  "b": {"type": "integer", "minimum": 0, "maximum": 100}},
                   "required": ["a", "b"], "additionalProperties": false}),
        ),
    ]
}

// ---- parsing ----------------------------------------------------------------------------------

#[test]
fn hermes_calls_parse() {
    let reply = ToolCallFormat::Hermes
        .parse(
            "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        )
        .unwrap();
    assert_eq!(
        reply,
        ParsedReply {
            content: "Let me check.".into(),
            tool_calls: vec![ToolCall::new("get_weather", json!({"city": "Paris"}))],
        }
    );
    // Two calls, arguments given as a JSON string, an id, no closing tag at the very end.
    let reply = ToolCallFormat::Hermes
        .parse(
            "<tool_call>{\"name\":\"add\",\"arguments\":\"{\\\"a\\\": 1, \\\"b\\\": 2}\",\"id\":\"c1\"}</tool_call>\
             <tool_call> {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"C\"}}",
        )
        .unwrap();
    assert_eq!(reply.content, "");
    assert_eq!(reply.tool_calls.len(), 2);
    assert_eq!(reply.tool_calls[0].name, "add");
    assert_eq!(reply.tool_calls[0].arguments, json!({"a": 1, "b": 2}));
    assert_eq!(reply.tool_calls[0].id.as_deref(), Some("c1"));
    assert_eq!(
        reply.tool_calls[1],
        ToolCall::new("get_weather", json!({"city": "Oslo", "unit": "C"}))
    );
    // No call: all content. A call without arguments gets an empty object.
    assert_eq!(
        ToolCallFormat::Hermes.parse("  just text  ").unwrap(),
        ParsedReply {
            content: "just text".into(),
            tool_calls: vec![]
        }
    );
    assert_eq!(
        ToolCallFormat::Hermes
            .parse("<tool_call>{\"name\": \"now\"}</tool_call> done")
            .unwrap(),
        ParsedReply {
            content: "done".into(),
            tool_calls: vec![ToolCall::new("now", json!({}))]
        }
    );
}

#[test]
fn malformed_hermes_calls_are_errors() {
    for (text, needle) in [
        (
            "<tool_call>get_weather(Paris)</tool_call>",
            "<tool_call> not followed by JSON",
        ),
        (
            "<tool_call>{\"name\": \"x\", ",
            "<tool_call> not followed by JSON",
        ),
        ("<tool_call>[1, 2]</tool_call>", "must be a JSON object"),
        (
            "<tool_call>{\"arguments\": {}}</tool_call>",
            "has no \"name\"",
        ),
        (
            "<tool_call>{\"name\": 7}</tool_call>",
            "the tool name must be a string",
        ),
        (
            "<tool_call>{\"name\": \"x\", \"arguments\": \"{oops\"}</tool_call>",
            "the arguments of x are a string but not JSON",
        ),
    ] {
        let err = ToolCallFormat::Hermes.parse(text).unwrap_err();
        match &err {
            Error::ToolCallParse { reason } => assert!(reason.contains(needle), "{text}: {reason}"),
            other => panic!("{text}: {other:?}"),
        }
        assert!(err.to_string().starts_with("cannot parse the tool call: "));
    }
}

#[test]
fn llama3_json_calls_parse() {
    let f = ToolCallFormat::Llama3Json;
    assert_eq!(
        f.parse("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Rome\"}}")
            .unwrap(),
        ParsedReply {
            content: String::new(),
            tool_calls: vec![ToolCall::new("get_weather", json!({"city": "Rome"}))]
        }
    );
    let reply = f
        .parse(" <|python_tag|>{\"name\": \"add\", \"parameters\": {\"a\": 1, \"b\": 2}}; {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}")
        .unwrap();
    assert_eq!(reply.tool_calls.len(), 2);
    assert_eq!(reply.tool_calls[0].arguments, json!({"a": 1, "b": 2}));
    assert_eq!(reply.tool_calls[1].name, "get_weather");
    // Plain text, and text that starts with a brace but is no call.
    for text in ["The weather is fine.", "{curly} text", "{\"answer\": 42}"] {
        assert_eq!(
            f.parse(text).unwrap(),
            ParsedReply {
                content: text.into(),
                tool_calls: vec![]
            },
            "{text}"
        );
    }
    let err = f
        .parse("{\"name\": \"add\", \"parameters\": {\"a\": 1,")
        .unwrap_err();
    assert!(
        matches!(&err, Error::ToolCallParse { reason } if reason.contains("malformed JSON tool call")),
        "{err:?}"
    );
}

// ---- rendering --------------------------------------------------------------------------------

/// The shape of Llama 3.1's template for custom tools: the tool list and the JSON-call
/// instruction in the first user message.
const LLAMA31_STYLE: &str = r#"{{- bos_token }}
{%- if not date_string is defined %}{%- set date_string = strftime_now("%d %b %Y") %}{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\nToday Date: " + date_string + "<|eot_id|>" }}
{%- for message in messages %}
{%- if loop.first and tools is not none and message.role == 'user' %}
{{- '<|start_header_id|>user<|end_header_id|>\n\n' }}
{{- 'Respond with a JSON {"name": function name, "parameters": dictionary of argument name and its value}.\n\n' }}
{%- for t in tools %}{{- t | tojson(indent=4) }}{{- "\n\n" }}{%- endfor %}
{{- message.content + '<|eot_id|>' }}
{%- elif message.role == 'assistant' and message.tool_calls %}
{%- set call = message.tool_calls[0].function %}
{{- '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "' + call.name + '", "parameters": ' + call.arguments | tojson + '}<|eot_id|>' }}
{%- elif message.role == 'tool' %}
{{- '<|start_header_id|>ipython<|end_header_id|>\n\n' + message.content + '<|eot_id|>' }}
{%- else %}
{{- '<|start_header_id|>' + message.role + '<|end_header_id|>\n\n' + message.content + '<|eot_id|>' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"#;

#[test]
fn tools_render_in_the_llama3_style() {
    let template = ChatTemplate::new(LLAMA31_STYLE)
        .unwrap()
        .with_special_tokens("<|begin_of_text|>", "<|eot_id|>");
    assert_eq!(template.tool_call_format(), ToolCallFormat::Llama3Json);
    assert!(template.handles_tools());
    let tool = tools().remove(1);
    let messages = [
        ChatMessage::user("What is 2 + 3?"),
        ChatMessage::assistant_tool_calls("", vec![ToolCall::new("add", json!({"a": 2, "b": 3}))]),
        ChatMessage::tool_result("add", "5"),
    ];
    let options = ChatOptions::default()
        .tools([tool])
        .add_generation_prompt(true);
    let prompt = template.render(&messages, &options).unwrap().prompt;
    let date = &prompt
        ["<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nToday Date: ".len()..]
        [..11];
    assert_eq!(
        prompt,
        format!(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nToday Date: {date}<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\n\
             Respond with a JSON {{\"name\": function name, \"parameters\": dictionary of argument name and its value}}.\n\n\
             {{\n    \"function\": {{\n        \"description\": \"Adds two numbers\",\n        \"name\": \"add\",\n        \"parameters\": {{\n            \
             \"additionalProperties\": false,\n            \"properties\": {{\n                \"a\": {{\n                    \"maximum\": 100,\n                    \
             \"minimum\": 0,\n                    \"type\": \"integer\"\n                }},\n                \"b\": {{\n                    \"maximum\": 100,\n                    \
             \"minimum\": 0,\n                    \"type\": \"integer\"\n                }}\n            }},\n            \"required\": [\n                \"a\",\n                \
             \"b\"\n            ],\n            \"type\": \"object\"\n        }}\n    }},\n    \"type\": \"function\"\n}}\n\n\
             What is 2 + 3?<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n{{\"name\": \"add\", \"parameters\": {{\"a\": 2, \"b\": 3}}}}<|eot_id|>\
             <|start_header_id|>ipython<|end_header_id|>\n\n5<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        )
    );
}

#[test]
fn formats_are_detected_from_templates() {
    let hermes = ChatTemplate::new("{% for m in messages %}<tool_call>{% endfor %}").unwrap();
    assert_eq!(hermes.tool_call_format(), ToolCallFormat::Hermes);
    assert_eq!(
        tiny_model().chat_template().unwrap().tool_call_format(),
        ToolCallFormat::Hermes
    );
    assert_eq!(
        ChatTemplate::new("llama3").unwrap().tool_call_format(),
        ToolCallFormat::Llama3Json
    );
    assert_eq!(ToolCallFormat::Hermes.trigger(), "<tool_call>");
    assert_eq!(ToolCallFormat::Llama3Json.trigger(), "{");
}

#[test]
fn tool_grammar_errors() {
    let err = ToolCallFormat::Hermes.grammar(&[]).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidParam { name: "tools", reason } if reason == "no tool to call"),
        "{err:?}"
    );
    let bad = Tool::new(
        "f",
        "",
        json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "a+"}}}),
    );
    let err = ToolCallFormat::Hermes
        .grammar(std::slice::from_ref(&bad))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported JSON schema at tools[0].parameters/properties/s: `pattern` is not supported"
    );
    assert!(matches!(
        Sampler::chain().tool_calls(tiny_model(), ToolCallFormat::Hermes, &[bad]),
        Err(Error::UnsupportedSchema { .. })
    ));
    let err = Sampler::chain()
        .lazy_grammar(
            tiny_model(),
            "root ::= \"x\"",
            "root",
            &LazyTrigger::anywhere(""),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid parameter trigger: must not be empty"
    );
    let err = Sampler::chain()
        .lazy_grammar(
            tiny_model(),
            "root ::= \"x\"",
            "bad root",
            &LazyTrigger::anywhere("go"),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("the root must be a rule name"),
        "{err}"
    );
    let err = Sampler::chain()
        .lazy_grammar(
            tiny_model(),
            "root ::= \"x\"",
            "root",
            &LazyTrigger::anywhere("a\0b"),
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "trigger contains a NUL byte at offset 1");
    // A chain already bound to another model.
    let other = Model::load(
        gguf::cached_model(&TinyModelSpec {
            chat_template: None,
            ..TinyModelSpec::tiny()
        })
        .unwrap(),
        &ModelParams::default(),
    )
    .unwrap();
    let err = Sampler::chain()
        .json_schema(&other, &json!({"type": "null"}))
        .unwrap()
        .tool_calls(tiny_model(), ToolCallFormat::Hermes, &tools())
        .unwrap_err();
    assert!(matches!(err, Error::ModelMismatch), "{err:?}");
    // A grammar that does not parse is an error, not an abort.
    let err = Sampler::chain()
        .lazy_grammar(
            tiny_model(),
            "root ::= [",
            "root",
            &LazyTrigger::anywhere("go"),
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidGrammar { .. }), "{err:?}");
    let err = Sampler::chain()
        .lazy_grammar(
            tiny_model(),
            "other ::= \"x\"",
            "root",
            &LazyTrigger::anywhere("go"),
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidGrammar { .. }), "{err:?}");
}

// ---- constrained generation on the tiny model -------------------------------------------------

/// Byte tokens above 0x7F are not UTF-8 on their own (see tests/json_schema.rs).
fn ban_non_utf8_tokens(model: &Model) -> Vec<(Token, f32)> {
    (0..model.n_vocab() as i32)
        .map(Token)
        .filter(|&t| {
            model
                .token_piece(t, false)
                .map_or(true, |piece| std::str::from_utf8(&piece).is_err())
        })
        .map(|t| (t, f32::NEG_INFINITY))
        .collect()
}

fn sampler(model: &Model, format: ToolCallFormat, seed: u32) -> Sampler {
    Sampler::chain()
        .logit_bias(model, &ban_non_utf8_tokens(model))
        .unwrap()
        .tool_calls(model, format, &tools())
        .unwrap()
        .temperature(1.2)
        .dist(seed)
}

/// Feeds `text` to the sampler as if the model had written it.
fn accept_text(model: &Model, sampler: &mut Sampler, text: &str) -> Vec<Token> {
    let tokens = model.tokenize(text, false).unwrap();
    for &t in &tokens {
        sampler.accept(t).unwrap();
    }
    tokens
}

fn generate(model: &Model, sampler: &mut Sampler, prompt: &[Token], max: usize) -> String {
    let mut ctx = model.new_context(&small_ctx().n_ctx(512)).unwrap();
    let mut generator = ctx.generate(prompt, sampler, GenerateOptions::default().max_tokens(max));
    generator.collect_text().unwrap()
}

fn check_call(call: &ToolCall) {
    let tool = tools()
        .into_iter()
        .find(|t| t.name == call.name)
        .unwrap_or_else(|| panic!("unknown tool {}", call.name));
    let validator = jsonschema::validator_for(&tool.parameters).unwrap();
    if let Err(e) = validator.validate(&call.arguments) {
        panic!("{} arguments {} invalid: {e}", call.name, call.arguments);
    }
}

#[test]
fn hermes_calls_generated_after_the_trigger_are_well_formed() {
    let model = tiny_model();
    for seed in 0..8 {
        let mut sampler = sampler(model, ToolCallFormat::Hermes, seed);
        let mut prompt = model.tokenize("Weather? ", true).unwrap();
        // The model "writes" some text and the trigger; from there the grammar constrains it.
        prompt.extend(accept_text(model, &mut sampler, "Sure. <tool_call>\n"));
        let text = generate(model, &mut sampler, &prompt, 300);
        let reply = ToolCallFormat::Hermes
            .parse(&format!("Sure. <tool_call>\n{text}"))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}: {text:?}"));
        assert_eq!(reply.content, "Sure.", "{text:?}");
        assert_eq!(reply.tool_calls.len(), 1, "{text:?}");
        check_call(&reply.tool_calls[0]);
        assert!(text.trim_end().ends_with("</tool_call>"), "{text:?}");
        // After the call only the end is allowed: junk is refused, not an abort.
        let x = model.tokenize("x", false).unwrap()[0];
        assert!(matches!(
            sampler.accept(x),
            Err(Error::GrammarRejected { .. })
        ));
    }
}

#[test]
fn llama3_calls_generated_after_the_trigger_are_well_formed() {
    let model = tiny_model();
    for seed in 0..8 {
        let mut sampler = sampler(model, ToolCallFormat::Llama3Json, seed);
        let mut prompt = model.tokenize("Add 2 and 3. ", true).unwrap();
        prompt.extend(accept_text(model, &mut sampler, " {"));
        let text = generate(model, &mut sampler, &prompt, 300);
        let reply = ToolCallFormat::Llama3Json
            .parse(&format!(" {{{text}"))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}: {text:?}"));
        assert_eq!(reply.tool_calls.len(), 1, "{text:?}");
        assert_eq!(reply.content, "", "{text:?}");
        check_call(&reply.tool_calls[0]);
    }
}

/// Before its trigger the lazy grammar changes nothing: the same seed gives the same text as
/// an unconstrained chain. A Llama 3 trigger after other text never fires.
#[test]
fn the_grammar_sleeps_until_its_trigger() {
    let model = tiny_model();
    let prompt = model.tokenize("Hello", true).unwrap();
    for format in [ToolCallFormat::Hermes, ToolCallFormat::Llama3Json] {
        let mut lazy = sampler(model, format, 7);
        let mut free = Sampler::chain()
            .logit_bias(model, &ban_non_utf8_tokens(model))
            .unwrap()
            .temperature(1.2)
            .dist(7);
        let a = generate(model, &mut lazy, &prompt, 40);
        let b = generate(model, &mut free, &prompt, 40);
        if !a.contains('{') && !a.contains("<tool_call>") {
            assert_eq!(a, b, "{format:?}");
        }
    }
    // "{" after other text: no trigger, anything goes afterwards.
    let mut lazy = sampler(model, ToolCallFormat::Llama3Json, 1);
    accept_text(model, &mut lazy, "ok {");
    accept_text(model, &mut lazy, "not json at all");
    // While the reset grammar is asleep, its trigger at the start wakes it.
    lazy.reset();
    accept_text(model, &mut lazy, "{");
    let x = model.tokenize("x", false).unwrap()[0];
    assert!(matches!(lazy.accept(x), Err(Error::GrammarRejected { .. })));
}

#[test]
fn trigger_followed_by_whitespace_still_fires() {
    let model = tiny_model();
    let mut lazy = sampler(model, ToolCallFormat::Hermes, 3);
    accept_text(model, &mut lazy, "<tool_call> \n\t");
    // Awake: the call must start with "{".
    let x = model.tokenize("x", false).unwrap()[0];
    assert!(matches!(lazy.accept(x), Err(Error::GrammarRejected { .. })));
    accept_text(
        model,
        &mut lazy,
        "{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 99}}</tool_call>",
    );
    let eos = model.token_eos().unwrap();
    lazy.accept(eos).unwrap();
}
