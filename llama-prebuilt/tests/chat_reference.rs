//! Our Jinja rendering against the reference engine: Python's Jinja2 in the environment
//! Hugging Face's `apply_chat_template` builds (`trim_blocks`, `lstrip_blocks`, loop controls,
//! its `tojson`, `raise_exception`), which is what llama.cpp's own Jinja engine is written to
//! match. Templates: SmolLM2's real one and the shapes of Qwen 2.5 (tools), Mistral (raises on
//! roles that do not alternate), Gemma (`trim`, `set` in loops) and Llama 3.
//!
//! Jinja2 ships with the project's machine image (Python 3.11, Jinja2 3.1.6); where it is
//! missing the comparison is skipped with a note (the hand-checked prompts of chat_jinja.rs
//! still run).

use std::io::Write;
use std::process::{Command, Stdio};

use llama_prebuilt::{
    ChatMessage, ChatOptions, ChatTemplate, Error, Model, ModelParams, Role, Tool, ToolCall,
};
use llama_prebuilt_test_support::models;
use serde_json::{Value, json};

const HF_RENDER: &str = r#"
import json, sys, jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

class Raised(Exception):
    pass

def raise_exception(message):
    raise Raised(message)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
out = []
for case in json.load(sys.stdin):
    try:
        template = env.from_string(case["template"])
        out.append({"ok": template.render(messages=case["messages"], tools=case["tools"],
                                          add_generation_prompt=case["add_generation_prompt"],
                                          bos_token=case["bos_token"], eos_token=case["eos_token"])})
    except Raised as e:
        out.append({"raised": str(e)})
json.dump(out, sys.stdout)
"#;

const QWEN25_STYLE: &str = r#"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"#;

const MISTRAL_STYLE: &str = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

const GEMMA_STYLE: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";

const LLAMA3_STYLE: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/// A message as the templates see it (what `ChatTemplate::render` passes).
fn message_json(m: &ChatMessage) -> Value {
    let mut v = json!({"role": m.role.as_str(), "content": m.content});
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| json!({"type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
    }
    if let Some(name) = &m.name {
        v["name"] = json!(name);
    }
    v
}

struct Case {
    template: String,
    messages: Vec<ChatMessage>,
    tools: Vec<Tool>,
    add_generation_prompt: bool,
    bos: &'static str,
    eos: &'static str,
}

fn case(template: &str, messages: Vec<ChatMessage>, add: bool) -> Case {
    Case {
        template: template.into(),
        messages,
        tools: Vec::new(),
        add_generation_prompt: add,
        bos: "<s>",
        eos: "</s>",
    }
}

/// Jinja2's renderings, or `None` when python3 with jinja2 is not available.
fn reference(cases: &[Case]) -> Option<Vec<Value>> {
    let input: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "template": c.template,
                "messages": c.messages.iter().map(message_json).collect::<Vec<_>>(),
                "tools": if c.tools.is_empty() { Value::Null } else { c.tools.iter().map(Tool::to_json).collect() },
                "add_generation_prompt": c.add_generation_prompt,
                "bos_token": c.bos,
                "eos_token": c.eos,
            })
        })
        .collect();
    let mut child = match Command::new("python3")
        .args(["-c", HF_RENDER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("note: python3 not available ({e}); comparison with Jinja2 skipped");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("No module named 'jinja2'") {
        eprintln!("note: Python has no jinja2; comparison with Jinja2 skipped");
        return None;
    }
    assert!(out.status.success(), "reference renderer failed: {stderr}");
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn renders_like_jinja2_in_hugging_faces_environment() {
    let smollm2 = Model::load(
        models::smollm2().unwrap_or_else(|e| panic!("SmolLM2: {e}")),
        &ModelParams::default().vocab_only(true),
    )
    .unwrap();
    let smol_template = smollm2.chat_template().unwrap().source().to_string();
    let weather = Tool::new(
        "get_weather",
        "Weather in a city — «now»",
        json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
               "required": ["city"]}),
    );
    let turns = || {
        vec![
            ChatMessage::user("Hi there"),
            ChatMessage::assistant("Hello! How can I help?"),
            ChatMessage::user("  Tell me a joke.  "),
        ]
    };
    let with_system = || {
        let mut m = vec![ChatMessage::system("You are terse.")];
        m.extend(turns());
        m
    };
    let tool_conversation = vec![
        ChatMessage::system("Use the tools."),
        ChatMessage::user("Weather in Zürich and Oslo?"),
        ChatMessage::assistant_tool_calls(
            "",
            vec![
                ToolCall::new(
                    "get_weather",
                    json!({"city": "Zürich", "days": 2, "ratio": 1.0, "eps": 1e-7, "big": 1e20}),
                ),
                ToolCall::new("get_weather", json!({"city": "Oslo"})),
            ],
        ),
        ChatMessage::tool_result("get_weather", "{\"temp\": 12.5}"),
        ChatMessage::tool_result("get_weather", "{\"temp\": -3}"),
    ];

    let mut cases = Vec::new();
    for add in [true, false] {
        cases.push(case(&smol_template, turns(), add));
        cases.push(case(&smol_template, with_system(), add));
        cases.push(case(QWEN25_STYLE, turns(), add));
        cases.push(case(QWEN25_STYLE, with_system(), add));
        cases.push(case(MISTRAL_STYLE, turns(), add));
        cases.push(case(GEMMA_STYLE, turns(), add));
        cases.push(case(LLAMA3_STYLE, with_system(), add));
    }
    let mut tools_case = case(QWEN25_STYLE, tool_conversation, true);
    tools_case.tools = vec![weather.clone()];
    cases.push(tools_case);
    let mut tools_first = case(QWEN25_STYLE, vec![ChatMessage::user("Weather?")], true);
    tools_first.tools = vec![weather];
    cases.push(tools_first);
    // Templates that raise.
    cases.push(case(
        MISTRAL_STYLE,
        vec![ChatMessage::user("a"), ChatMessage::user("b")],
        true,
    ));
    cases.push(case(MISTRAL_STYLE, with_system(), true));
    cases.push(case(GEMMA_STYLE, with_system(), true));
    cases.push(case(
        GEMMA_STYLE,
        vec![ChatMessage::new(Role::Other("critic".into()), "meh")],
        true,
    ));

    let Some(expected) = reference(&cases) else {
        return;
    };
    assert_eq!(expected.len(), cases.len());
    let mut raised = 0;
    for (i, (c, want)) in cases.iter().zip(&expected).enumerate() {
        let template = ChatTemplate::new(&c.template)
            .unwrap()
            .with_special_tokens(c.bos, c.eos);
        let options = ChatOptions::default()
            .add_generation_prompt(c.add_generation_prompt)
            .tools(c.tools.clone());
        let ours = template.render_jinja(&c.messages, &options);
        match (want.get("ok"), want.get("raised"), &ours) {
            (Some(Value::String(text)), _, Ok(prompt)) => {
                assert_eq!(prompt, text, "case {i}: ours vs Jinja2")
            }
            (_, Some(Value::String(message)), Err(Error::ChatTemplateRaised { message: m })) => {
                assert_eq!(m, message, "case {i}");
                raised += 1;
            }
            _ => panic!("case {i}: Jinja2 gave {want}, we gave {ours:?}"),
        }
    }
    assert_eq!(raised, 3);
    eprintln!(
        "{} renderings identical to Jinja2's ({raised} raised)",
        cases.len()
    );
}
