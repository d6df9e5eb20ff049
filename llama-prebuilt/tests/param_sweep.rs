//! Property test: no combination of context and model parameters the safe API accepts aborts
//! the process. Seeded random cases (test-support's SplitMix64) over `ContextParams` ×
//! `ModelParams` on three tiny models; each case loads the model, creates the context, decodes
//! a short prompt, reads logits or embeddings, and decodes more tokens on other sequences and
//! one at a time. Every case must end in `Ok` or an `Err`: a signal (llama.cpp's
//! `GGML_ASSERT` aborts) is a failure reported with the case's parameters.
//!
//! Cases run in child processes (this test binary re-executed with
//! `LLAMA_PREBUILT_SWEEP_CHILD=<seed>:<i>,<j>,…`), a batch of cases per child. Each case
//! announces itself before it starts, so when a child dies the case that killed it is known;
//! it is re-run alone in a fresh child to confirm, and the rest of the batch continues in
//! another child.
//!
//! `LLAMA_PREBUILT_SWEEP_CASES` (default 500) and `LLAMA_PREBUILT_SWEEP_SEED` pick the run;
//! `cargo xtask bench sweep --cases N` runs a long one.

mod patched_gguf;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use llama_prebuilt::{
    AttentionType, Batch, ContextParams, FlashAttention, GpuLayers, KvCacheType, LoadMode, Model,
    ModelParams, Pooling, RopeScaling, SplitMode, Token,
};
use llama_prebuilt_test_support::gguf::{self, TinyModelSpec};
use llama_prebuilt_test_support::rng::SplitMix64;

const CHILD_ENV: &str = "LLAMA_PREBUILT_SWEEP_CHILD";
/// Makes a child abort when it reaches this case index (the harness's self-test).
const ABORT_ENV: &str = "LLAMA_PREBUILT_SWEEP_TEST_ABORT_AT";
const CASES_PER_CHILD: usize = 15;
const CHILD_TIMEOUT: Duration = Duration::from_secs(300);

/// The models of the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TestModel {
    /// test-support's tiny llama model: head size 16 (no quantized cache fits), causal.
    Tiny,
    /// Head size 64 (quantized caches fit), mean pooling in its metadata.
    WideHead,
    /// [`TestModel::WideHead`] with `llama.attention.causal = false`: an embedding model.
    NonCausal,
}

fn wide_head_spec() -> TinyModelSpec {
    TinyModelSpec {
        n_embd: 128,
        n_head: 2,
        n_head_kv: 1,
        n_ff: 128,
        seed: 0x5eed_5eee_0000_0002,
        pooling: Some(1),
        ..TinyModelSpec::tiny()
    }
}

fn model_path(model: TestModel) -> PathBuf {
    match model {
        TestModel::Tiny => gguf::tiny_model(),
        TestModel::WideHead => gguf::cached_model(&wide_head_spec()).unwrap(),
        TestModel::NonCausal => {
            let wide = gguf::cached_model(&wide_head_spec()).unwrap();
            patched_gguf::rewrite(&wide, "sweep-non-causal", |kvs| {
                kvs.retain(|(k, _)| k != "llama.attention.causal");
                kvs.push((
                    "llama.attention.causal".to_string(),
                    // GGUF type 7 (bool), false.
                    patched_gguf::Value::Raw {
                        ty: 7,
                        bytes: vec![0],
                    },
                ));
            })
        }
    }
}

/// One case: everything that varies.
#[derive(Debug, Clone)]
struct Case {
    model: TestModel,
    gpu_layers: GpuLayers,
    load_mode: LoadMode,
    split_mode: SplitMode,
    check_tensors: bool,
    n_ctx: u32,
    allow_exceeding: bool,
    n_batch: u32,
    n_ubatch: u32,
    n_seq_max: u32,
    n_threads: u32,
    embeddings: bool,
    pooling: Pooling,
    flash_attention: FlashAttention,
    type_k: KvCacheType,
    type_v: KvCacheType,
    offload_kqv: bool,
    op_offload: bool,
    swa_full: bool,
    kv_unified: bool,
    attention: AttentionType,
    rope_scaling: RopeScaling,
    rope_freq_base: Option<f32>,
    rope_freq_scale: Option<f32>,
    yarn_ext_factor: Option<f32>,
    yarn_attn_factor: Option<f32>,
    yarn_beta_fast: Option<f32>,
    yarn_beta_slow: Option<f32>,
    yarn_orig_ctx: Option<u32>,
    /// Prompt tokens to decode (capped by what the context accepts in one batch).
    prompt_len: usize,
    /// Single-token decodes after the prompt.
    steps: usize,
    /// How many prompt-sized chunks are decoded one after the other on sequence 0 (more
    /// than the context holds ends in `NoKvSlot`).
    chunks: usize,
}

fn pick<T: Copy>(r: &mut SplitMix64, items: &[T]) -> T {
    items[r.below(items.len())]
}

/// One of `items` about once in `one_in` calls (never for `usize::MAX`), else `None`.
fn maybe<T: Copy>(r: &mut SplitMix64, one_in: usize, items: &[T]) -> Option<T> {
    let hit = r.chance(one_in) && one_in != usize::MAX;
    hit.then(|| pick(r, items))
}

impl Case {
    fn generate(seed: u64, index: usize) -> Case {
        let mut r = SplitMix64::new(seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let r = &mut r;
        // Mostly the defaults with some variation, so most cases get as far as decoding; the
        // rest pushes every knob to edges and invalid values.
        let cache_types = &KvCacheType::ALL;
        let float_cache = [KvCacheType::F16, KvCacheType::F32, KvCacheType::Bf16];
        // One case in four sets RoPE/YaRN values (each with a chance of being invalid);
        // the rest leaves them to the model, so most cases get as far as decoding.
        let tune = if r.chance(4) { 3 } else { usize::MAX };
        Case {
            model: pick(
                r,
                &[TestModel::Tiny, TestModel::WideHead, TestModel::NonCausal],
            ),
            gpu_layers: pick(
                r,
                &[
                    GpuLayers::All,
                    GpuLayers::Count(0),
                    GpuLayers::Count(1),
                    GpuLayers::Count(1000),
                ],
            ),
            load_mode: pick(
                r,
                &[
                    LoadMode::Mmap,
                    LoadMode::Mmap,
                    LoadMode::Read,
                    LoadMode::Mlock,
                    LoadMode::MmapMlock,
                    LoadMode::DirectIo,
                ],
            ),
            split_mode: pick(
                r,
                &[
                    SplitMode::Layer,
                    SplitMode::Layer,
                    SplitMode::None,
                    SplitMode::Row,
                ],
            ),
            check_tensors: r.chance(8),
            n_ctx: pick(
                r,
                &[
                    0, 1, 7, 100, 256, 256, 257, 512, 512, 1024, 2048, 2049, 4096, 32768,
                ],
            ),
            allow_exceeding: r.chance(3),
            n_batch: pick(
                r,
                &[1, 2, 5, 16, 32, 64, 64, 256, 512, 512, 2048, 2048, 3000],
            ),
            n_ubatch: pick(r, &[1, 3, 8, 16, 32, 64, 512, 4096]),
            n_seq_max: pick(r, &[1, 1, 1, 1, 1, 2, 2, 3, 4, 4, 7, 16, 64, 255, 256, 257]),
            n_threads: pick(r, &[1, 1, 2]),
            embeddings: r.chance(2),
            pooling: pick(
                r,
                &[
                    Pooling::FromModel,
                    Pooling::None,
                    Pooling::Mean,
                    Pooling::Cls,
                    Pooling::Last,
                    Pooling::Rank,
                ],
            ),
            flash_attention: pick(
                r,
                &[
                    FlashAttention::Auto,
                    FlashAttention::On,
                    FlashAttention::Off,
                ],
            ),
            type_k: if r.chance(3) {
                pick(r, cache_types)
            } else {
                pick(r, &float_cache)
            },
            type_v: if r.chance(3) {
                pick(r, cache_types)
            } else {
                pick(r, &float_cache)
            },
            offload_kqv: !r.chance(4),
            op_offload: !r.chance(4),
            swa_full: !r.chance(4),
            kv_unified: r.chance(3),
            attention: pick(
                r,
                &[
                    AttentionType::FromModel,
                    AttentionType::FromModel,
                    AttentionType::Causal,
                    AttentionType::NonCausal,
                ],
            ),
            rope_scaling: pick(
                r,
                &[
                    RopeScaling::FromModel,
                    RopeScaling::FromModel,
                    RopeScaling::None,
                    RopeScaling::Linear,
                    RopeScaling::Yarn,
                    RopeScaling::LongRope,
                ],
            ),
            rope_freq_base: maybe(
                r,
                tune,
                &[10_000.0, 500_000.0, 1.0, 0.5, 0.0, -1.0, f32::NAN],
            ),
            rope_freq_scale: maybe(
                r,
                tune,
                &[0.25, 0.5, 1.0, 2.0, 1e-6, 0.0, -0.5, f32::INFINITY],
            ),
            yarn_ext_factor: maybe(r, tune, &[0.0, 0.5, 1.0, 4.0, -1.0, f32::NAN]),
            yarn_attn_factor: maybe(r, tune, &[0.5, 1.0, 2.0, 0.0, -1.0]),
            yarn_beta_fast: maybe(r, tune, &[32.0, 64.0, 1.0, 0.0, f32::NAN]),
            yarn_beta_slow: maybe(r, tune, &[1.0, 2.0, 0.5, 32.0, -1.0]),
            yarn_orig_ctx: maybe(r, tune, &[0, 1, 512, 2048, 8192]),
            prompt_len: pick(r, &[1, 2, 5, 17, 40, 64, 200, 300, 700]),
            steps: pick(r, &[0, 1, 3]),
            chunks: pick(r, &[1, 1, 2, 3]),
        }
    }

    fn model_params(&self) -> ModelParams {
        ModelParams::default()
            .gpu_layers(self.gpu_layers)
            .load_mode(self.load_mode)
            .split_mode(self.split_mode)
            .check_tensors(self.check_tensors)
    }

    fn context_params(&self) -> ContextParams {
        let mut p = ContextParams::default()
            .n_ctx(self.n_ctx)
            .allow_exceeding_train_context(self.allow_exceeding)
            .n_batch(self.n_batch)
            .n_ubatch(self.n_ubatch)
            .n_seq_max(self.n_seq_max)
            .n_threads(self.n_threads)
            .embeddings(self.embeddings)
            .pooling(self.pooling)
            .flash_attention(self.flash_attention)
            .type_k(self.type_k)
            .type_v(self.type_v)
            .offload_kqv(self.offload_kqv)
            .op_offload(self.op_offload)
            .swa_full(self.swa_full)
            .kv_unified(self.kv_unified)
            .attention(self.attention)
            .rope_scaling(self.rope_scaling);
        if let Some(v) = self.rope_freq_base {
            p = p.rope_freq_base(v);
        }
        if let Some(v) = self.rope_freq_scale {
            p = p.rope_freq_scale(v);
        }
        if let Some(v) = self.yarn_ext_factor {
            p = p.yarn_ext_factor(v);
        }
        if let Some(v) = self.yarn_attn_factor {
            p = p.yarn_attn_factor(v);
        }
        if let Some(v) = self.yarn_beta_fast {
            p = p.yarn_beta_fast(v);
        }
        if let Some(v) = self.yarn_beta_slow {
            p = p.yarn_beta_slow(v);
        }
        if let Some(v) = self.yarn_orig_ctx {
            p = p.yarn_orig_ctx(v);
        }
        p
    }
}

fn greedy(logits: &[f32]) -> Token {
    let (i, _) = logits
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &l)| {
            if l > best.1 { (i, l) } else { best }
        });
    Token(i as i32)
}

/// Runs one case in this process: `Ok(what it did)` or `Err(the error)`; never panics on
/// an `Err` of the API (only an abort inside llama.cpp ends it otherwise).
fn run_case(case: &Case) -> Result<String, String> {
    let e = |e: llama_prebuilt::Error| e.to_string();
    let model = Model::load(model_path(case.model), &case.model_params()).map_err(e)?;
    let mut ctx = model.new_context(&case.context_params()).map_err(e)?;
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    let tokens = model.tokenize(&text, true).map_err(e)?;
    let pooled = ctx.embeddings_enabled() && ctx.pooling() != Pooling::None;
    let non_causal = case.attention == AttentionType::NonCausal
        || (case.attention == AttentionType::FromModel && case.model == TestModel::NonCausal);
    let mut limit = ctx.n_batch() as usize;
    if pooled || non_causal {
        limit = limit.min(ctx.n_ubatch() as usize);
    }
    let len = case.prompt_len.min(limit).min(tokens.len()).max(1);
    ctx.decode(&Batch::for_sequence(&tokens[..len], 0, 0).map_err(e)?)
        .map_err(e)?;
    // More chunks continue sequence 0 (the context may run out: an Err).
    for chunk in 1..case.chunks {
        let start = (chunk * len) as i32;
        ctx.decode(&Batch::for_sequence(&tokens[..len], start, 0).map_err(e)?)
            .map_err(e)?;
    }
    let len_done = case.chunks * len;
    let mut did = format!("decoded {len_done}");
    let mut next = Token(tokens[0].0);
    if ctx.embeddings_enabled() {
        if pooled {
            let v = ctx.embeddings_seq(0).map_err(e)?;
            did += &format!(", pooled embedding of {}", v.len());
        } else {
            let v = ctx.embeddings_ith(len - 1).map_err(e)?;
            did += &format!(", token embedding of {}", v.len());
        }
    } else {
        let logits = ctx.logits(len - 1).map_err(e)?;
        next = greedy(logits);
        did += ", logits";
    }
    // One token on each of a few more sequences, in one batch.
    let extra = ctx.n_seq_max().min(4) as i32 - 1;
    if extra > 0 && (extra as usize) <= limit {
        let mut batch = Batch::new(extra as usize);
        for s in 1..=extra {
            batch.add(tokens[1], 0, &[s], true).map_err(e)?;
        }
        ctx.decode(&batch).map_err(e)?;
        did += &format!(", {extra} more sequences");
    }
    // Single-token steps on sequence 0.
    for step in 0..case.steps {
        let pos = (len_done + step) as i32;
        let batch = Batch::for_sequence(&[next], pos, 0).map_err(e)?;
        ctx.decode(&batch).map_err(e)?;
        if !ctx.embeddings_enabled() {
            next = greedy(ctx.logits(0).map_err(e)?);
        }
    }
    if case.steps > 0 {
        did += &format!(", {} steps", case.steps);
    }
    Ok(did)
}

/// The child half: runs the cases named by the environment, one line before and after each.
#[test]
fn sweep_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // only meaningful when started by the parent test
    };
    let (seed, indices) = spec.split_once(':').expect("seed:indices");
    let seed: u64 = seed.parse().unwrap();
    let out = std::io::stdout();
    for i in indices.split(',').map(|i| i.parse::<usize>().unwrap()) {
        let case = Case::generate(seed, i);
        let abort_here = std::env::var(ABORT_ENV).is_ok_and(|a| a == i.to_string());
        {
            let mut o = out.lock();
            writeln!(o, "SWEEP-START {i}").unwrap();
            o.flush().unwrap();
        }
        if abort_here {
            // The harness's self-test: what a GGML_ASSERT does.
            std::process::abort();
        }
        let result = run_case(&case);
        let mut o = out.lock();
        match result {
            Ok(did) => writeln!(o, "SWEEP-OK {i} {did}").unwrap(),
            Err(err) => writeln!(o, "SWEEP-ERR {i} {}", err.replace('\n', " ")).unwrap(),
        }
        o.flush().unwrap();
    }
}

/// How one case ended.
#[derive(Debug, Clone)]
enum Outcome {
    Ok,
    Err(String),
    /// The process died (signal or exit status) while running it.
    Crash {
        status: String,
        stderr_tail: String,
    },
}

struct ChildRun {
    /// Results of the cases that finished, in order.
    done: Vec<(usize, Outcome)>,
    /// The case that was running when the child died, with how it died.
    crashed: Option<(usize, Outcome)>,
}

fn run_child(seed: u64, indices: &[usize], abort_at: Option<usize>) -> ChildRun {
    let list: Vec<String> = indices.iter().map(usize::to_string).collect();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    if let Some(i) = abort_at {
        cmd.env(ABORT_ENV, i.to_string());
    }
    let mut child = cmd
        .args(["--exact", "sweep_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{seed}:{}", list.join(",")))
        // ggml's abort handler would otherwise attach gdb for a backtrace (slow and noisy).
        .env("GGML_NO_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("re-executing the test binary");
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout_reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let mut done = Vec::new();
    let mut running: Option<usize> = None;
    let mut timed_out = false;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                let mut parts = line.splitn(3, ' ');
                let tag = parts.next().unwrap_or("");
                let idx = parts.next().and_then(|i| i.parse::<usize>().ok());
                let rest = parts.next().unwrap_or("").to_string();
                match (tag, idx) {
                    ("SWEEP-START", Some(i)) => running = Some(i),
                    ("SWEEP-OK", Some(i)) => {
                        done.push((i, Outcome::Ok));
                        running = None;
                    }
                    ("SWEEP-ERR", Some(i)) => {
                        done.push((i, Outcome::Err(rest)));
                        running = None;
                    }
                    _ => {}
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child.wait().unwrap();
    let _ = stdout_reader.join();
    let stderr = stderr_reader.join().unwrap_or_default();
    let crashed = if timed_out || !status.success() {
        // The assertion's own line when there is one, else the last lines.
        let lines: Vec<&str> = stderr.lines().collect();
        let stderr_tail = match lines.iter().rposition(|l| {
            l.contains("GGML_ASSERT") || l.contains("GGML_ABORT") || l.contains("error")
        }) {
            Some(at) => lines[at.saturating_sub(2)..(at + 3).min(lines.len())].join("\n"),
            None => lines[lines.len().saturating_sub(8)..].join("\n"),
        };
        let status = if timed_out {
            format!("timed out after {CHILD_TIMEOUT:?}")
        } else {
            describe(status)
        };
        // A death between cases (none running) is pinned on the next case not yet done.
        let culprit = running.or_else(|| {
            indices
                .iter()
                .copied()
                .find(|i| !done.iter().any(|(d, _)| d == i))
        });
        culprit.map(|i| {
            (
                i,
                Outcome::Crash {
                    status,
                    stderr_tail,
                },
            )
        })
    } else {
        None
    };
    ChildRun { done, crashed }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(6)) => "killed by SIGABRT".to_string(),
        (_, Some(11)) => "killed by SIGSEGV".to_string(),
        (_, Some(sig)) => format!("killed by signal {sig}"),
        (Some(code), _) => format!("exit status {code}"),
        _ => format!("{status:?}"),
    }
}

/// Runs `indices` in children: a batch per child; when a child dies, the case it died in is
/// re-run alone (to confirm it) and the rest continue in a new child.
fn run_batch(seed: u64, indices: &[usize], abort_at: Option<usize>) -> Vec<(usize, Outcome, bool)> {
    let mut results = Vec::new();
    let mut rest: Vec<usize> = indices.to_vec();
    while !rest.is_empty() {
        let run = run_child(seed, &rest, abort_at);
        for (i, o) in run.done {
            results.push((i, o, false));
        }
        let Some((culprit, outcome)) = run.crashed else {
            break;
        };
        // Confirm alone (a fresh process: nothing the earlier cases did can be to blame).
        let alone = run_child(seed, &[culprit], abort_at);
        let reproduced = alone.crashed.is_some();
        results.push((culprit, outcome, reproduced));
        let finished: Vec<usize> = results.iter().map(|(i, ..)| *i).collect();
        rest.retain(|i| !finished.contains(i));
    }
    results
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} must be a number"))
        })
        .unwrap_or(default)
}

#[test]
fn no_parameter_combination_aborts_the_process() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let n_cases = env_num("LLAMA_PREBUILT_SWEEP_CASES", 500) as usize;
    let seed = env_num("LLAMA_PREBUILT_SWEEP_SEED", 0x5eed_0014);
    let jobs = env_num("LLAMA_PREBUILT_SWEEP_JOBS", 2).max(1) as usize;
    // Write the model files once, before the children race for them.
    for m in [TestModel::Tiny, TestModel::WideHead, TestModel::NonCausal] {
        model_path(m);
    }
    let started = Instant::now();
    let batches: Vec<Vec<usize>> = (0..n_cases)
        .collect::<Vec<_>>()
        .chunks(CASES_PER_CHILD)
        .map(<[usize]>::to_vec)
        .collect();
    let queue = Mutex::new(batches.into_iter());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap().next();
                    let Some(batch) = next else { break };
                    let r = run_batch(seed, &batch, None);
                    results.lock().unwrap().extend(r);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, ..)| *i);
    assert_eq!(
        results.len(),
        n_cases,
        "every case has an outcome: {results:?}"
    );

    let mut ok = 0;
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut crashes = Vec::new();
    for (i, outcome, reproduced) in &results {
        match outcome {
            Outcome::Ok => ok += 1,
            Outcome::Err(msg) => *errors.entry(error_kind(msg)).or_default() += 1,
            Outcome::Crash {
                status,
                stderr_tail,
            } => crashes.push(format!(
                "case {i} ({status}; reproduced alone: {reproduced}): {:?}\n{stderr_tail}",
                Case::generate(seed, *i)
            )),
        }
    }
    let mut summary = format!(
        "param sweep: {n_cases} cases (seed {seed:#x}) in {:.1?}: {ok} ran, {} rejected with an Err, {} aborts\n",
        started.elapsed(),
        n_cases - ok - crashes.len(),
        crashes.len()
    );
    for (kind, n) in &errors {
        summary += &format!("  {n:4} × {kind}\n");
    }
    // Straight to the process's stderr, not the test harness's captured eprintln!, so the
    // count shows in every `cargo test` run.
    let _ = std::io::stderr().write_all(summary.as_bytes());
    assert!(
        crashes.is_empty(),
        "{} of {n_cases} cases killed the process:\n{}",
        crashes.len(),
        crashes.join("\n\n")
    );
    assert!(ok * 4 >= n_cases, "too few cases ran ({ok} of {n_cases})");
}

/// An error message with its numbers and quoted values dropped, to group similar errors.
fn error_kind(msg: &str) -> String {
    let mut s = String::new();
    for c in msg.chars() {
        if c.is_ascii_digit() {
            if !s.ends_with('#') {
                s.push('#');
            }
        } else {
            s.push(c);
        }
    }
    s.chars().take(150).collect()
}

#[test]
fn the_harness_reports_an_abort_and_runs_the_rest() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    // Case 1 of 0..4 aborts its child: it is reported as a crash (confirmed alone), and
    // cases 2 and 3 still run in a fresh child.
    let results = run_batch(0x5eed_0014, &[0, 1, 2, 3], Some(1));
    let mut seen: Vec<usize> = results.iter().map(|(i, ..)| *i).collect();
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3], "{results:?}");
    for (i, outcome, reproduced) in &results {
        match outcome {
            Outcome::Crash { status, .. } => {
                assert_eq!(*i, 1);
                assert_eq!(status, "killed by SIGABRT");
                assert!(reproduced);
            }
            _ => assert_ne!(*i, 1, "{outcome:?}"),
        }
    }
}
