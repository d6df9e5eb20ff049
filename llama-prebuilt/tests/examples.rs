//! The examples run: `cargo test` builds them next to the test binaries
//! (`target/<profile>/examples/`), and each one is started here with its defaults (the
//! generated tiny model) and a few options.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> Command {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let path: PathBuf = deps
        .parent()
        .unwrap()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} was not built (cargo test builds examples)",
        path.display()
    );
    Command::new(path)
}

fn run(mut cmd: Command) -> (String, String) {
    let out = cmd.output().expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

#[test]
fn generate_streams_text() {
    let mut cmd = example("generate");
    cmd.args(["--prompt", "Hello", "--max-tokens", "12"]);
    let (stdout, stderr) = run(cmd);
    assert!(stdout.starts_with("Hello"), "{stdout}");
    assert!(stderr.contains("[12 tokens"), "{stderr}");
    let mut cmd = example("generate");
    cmd.args(["--temperature", "0.8", "--seed", "3", "--max-tokens", "5"]);
    run(cmd);
}

#[test]
fn chat_runs_two_turns_and_reuses_the_first() {
    let (stdout, stderr) = run(example("chat"));
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("> ")).count(),
        2,
        "{stdout}"
    );
    let reused: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("reused from the previous turn"))
        .collect();
    assert_eq!(reused.len(), 2, "{stderr}");
    assert!(
        reused[0].contains(", 0 reused") && !reused[1].contains(", 0 reused"),
        "{reused:?}"
    );
}

#[test]
fn chat_says_which_template_path_it_took() {
    let (_, stderr) = run(example("chat"));
    assert!(stderr.contains("[chat template: jinja]"), "{stderr}");
}

/// The tools example offers SmolLM2 one tool and prints what it parsed, whatever the model
/// chose; with `--force-call` the reply starts with the marker, so the lazy grammar makes it
/// a well-formed call of that tool.
#[test]
fn tools_offers_smollm2_a_tool_and_prints_the_parsed_result() {
    let (stdout, stderr) = run(example("tools"));
    assert!(stderr.contains("described in a system message"), "{stderr}");
    assert!(stdout.starts_with("> What is the weather"), "{stdout}");
    assert!(
        stdout.contains("no tool call; answer:")
            || stdout.contains("tool call: get_weather(")
            || stdout.contains("could not be parsed"),
        "{stdout}"
    );
    let mut cmd = example("tools");
    cmd.args(["--force-call", "--max-tokens", "64"]);
    let (stdout, _) = run(cmd);
    assert!(
        stdout.contains("tool call: get_weather({\"city\":"),
        "{stdout}"
    );
    assert!(
        stdout.contains("model, with the tool's result: "),
        "{stdout}"
    );
}

#[test]
fn embed_prints_a_similarity_matrix() {
    let mut cmd = example("embed");
    cmd.args(["first sentence", "second sentence"]);
    let (stdout, _) = run(cmd);
    assert!(
        stdout.contains("[0] first sentence") && stdout.contains("[1] second sentence"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+1.000"),
        "a sentence is identical to itself: {stdout}"
    );
}

#[test]
fn embed_reranks_documents() {
    let mut cmd = example("embed");
    cmd.args([
        "--rerank",
        "where do cats sit?",
        "on a mat",
        "stock markets",
    ]);
    let (stdout, _) = run(cmd);
    assert!(
        stdout.starts_with("query: where do cats sit?\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("] on a mat") && stdout.contains("] stock markets"),
        "{stdout}"
    );
}

#[test]
fn bad_arguments_fail_cleanly() {
    let out = example("generate").arg("--bogus").output().unwrap();
    assert!(!out.status.success());
    let out = example("generate")
        .args(["--model", "/no/such/model.gguf"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
