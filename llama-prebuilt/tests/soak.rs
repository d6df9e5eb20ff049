//! Soak: many model/context/sampler create-and-drop cycles with text generated in each; the
//! resident set must not grow (issue 7, item 6).
//!
//! The default counts are the short form that `cargo xtask test` (and so CI) runs. The long
//! form is `cargo xtask bench soak`, which runs this same test with
//! `LLAMA_SOAK_CYCLES=1000 LLAMA_SOAK_TOKENS=10000`, and again under valgrind's memcheck
//! (`LLAMA_SOAK_NO_RSS_CHECK=1` there: valgrind's own allocator makes RSS meaningless).
//!
//! RSS is read from `/proc/self/status` (Linux only; elsewhere the test only runs the cycles).
//! It is sampled after a warm-up (the first cycles allocate what lives for the whole process:
//! backend registry, ggml's thread pool, the log routing) and then after every cycle.

use llama_prebuilt::{ContextParams, GenerateOptions, Model, ModelParams, Penalties, Sampler};
use llama_prebuilt_test_support::gguf;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// VmRSS in KiB (None off Linux).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One cycle: load the model, make a context and a sampler chain, generate up to
/// `max_tokens` tokens, drop everything. Returns the number of tokens generated.
fn cycle(path: &std::path::Path, seed: u32, max_tokens: usize) -> usize {
    let model = Model::load(path, &ModelParams::default().n_gpu_layers(0)).expect("model loads");
    let params = ContextParams::default()
        .n_ctx(256)
        .n_batch(64)
        .n_ubatch(64)
        .n_threads(2);
    let mut ctx = model.new_context(&params).expect("context");
    let mut sampler = Sampler::chain()
        .penalties(Penalties::default())
        .expect("penalties")
        .top_k(40)
        .top_p(0.95, 1)
        .temperature(0.8)
        .dist(seed);
    let prompt = model
        .tokenize("The soak test keeps going", true)
        .expect("tokenize");
    let mut generator = ctx.generate(
        &prompt,
        &mut sampler,
        GenerateOptions::default().max_tokens(max_tokens),
    );
    let text = generator.collect_text().expect("generation");
    let n = generator.tokens().len();
    assert!(text.len() <= 4 * n + 4, "text of {n} tokens: {text:?}");
    n
}

#[test]
fn create_drop_cycles_and_generated_tokens_do_not_grow_rss() {
    let cycles = env_num("LLAMA_SOAK_CYCLES", 200).max(1);
    let tokens = env_num("LLAMA_SOAK_TOKENS", 2000);
    let warmup = env_num("LLAMA_SOAK_WARMUP", 5);
    let check_rss = std::env::var_os("LLAMA_SOAK_NO_RSS_CHECK").is_none();
    let per_cycle = tokens.div_ceil(cycles).max(1);
    let path = gguf::tiny_model();

    for i in 0..warmup {
        cycle(&path, 1000 + i as u32, per_cycle);
    }
    let first = rss_kib();
    let mut samples = Vec::with_capacity(cycles);
    let mut generated = 0usize;
    let mut done = 0usize;
    // Every cycle runs; extra cycles make up for generations that stopped early at an
    // end-of-generation token, so at least `tokens` tokens are generated in all.
    while done < cycles || generated < tokens {
        generated += cycle(&path, done as u32, per_cycle);
        done += 1;
        if let Some(r) = rss_kib() {
            samples.push(r);
        }
        assert!(
            done <= 2 * cycles + tokens,
            "generation keeps stopping early"
        );
    }
    let last = rss_kib();
    let deciles: Vec<String> = (1..=10)
        .filter_map(|d| samples.get((samples.len() * d / 10).saturating_sub(1)))
        .map(u64::to_string)
        .collect();
    eprintln!(
        "soak: {done} create/drop cycles (after {warmup} warm-up), {generated} tokens generated; \
         RSS first {first:?} KiB, last {last:?} KiB, max {:?} KiB; RSS (KiB) after each tenth \
         of the cycles: {}",
        samples.iter().max(),
        deciles.join(" ")
    );
    let (Some(first), Some(last)) = (first, last) else {
        return; // no /proc: nothing more to check
    };
    if !check_rss || samples.len() < 4 {
        return;
    }
    // No growth: the second half's median is not above the first half's by more than 2 MiB
    // (allocator noise), and the end is within 4 MiB of the start. A leak of one model or
    // context per cycle (hundreds of KiB each) fails both by far.
    let median = |s: &[u64]| {
        let mut v = s.to_vec();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let (a, b) = samples.split_at(samples.len() / 2);
    let (ma, mb) = (median(a), median(b));
    assert!(
        mb <= ma + 2048,
        "RSS grows: median {ma} KiB in the first half of the cycles, {mb} KiB in the second"
    );
    assert!(
        last <= first + 4096,
        "RSS grew from {first} KiB to {last} KiB over {done} cycles"
    );
}
