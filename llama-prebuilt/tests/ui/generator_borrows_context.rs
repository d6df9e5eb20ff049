use llama_prebuilt::{Context, GenerateOptions, Sampler, Token};

fn run(ctx: &mut Context<'_>, sampler: &mut Sampler) {
    let mut generation = ctx.generate(&[Token(1)], sampler, GenerateOptions::default());
    ctx.clear_memory();
    let _ = generation.next();
}

fn main() {
    let _ = run;
}
