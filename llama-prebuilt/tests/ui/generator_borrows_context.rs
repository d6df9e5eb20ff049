use llama_prebuilt::{Context, GenerateOptions, Sampler, Token};

fn run(ctx: &mut Context<'_>, sampler: &mut Sampler) {
    let mut gen = ctx.generate(&[Token(1)], sampler, GenerateOptions::default());
    ctx.clear_memory();
    let _ = gen.next();
}

fn main() {
    let _ = run;
}
