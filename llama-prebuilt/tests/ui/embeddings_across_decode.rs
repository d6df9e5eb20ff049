use llama_prebuilt::{Batch, Context};

fn step(ctx: &mut Context<'_>, batch: &Batch) {
    let pooled = ctx.embeddings_seq(0).unwrap();
    ctx.clear_memory();
    println!("{}", pooled[0]);
    let _ = batch;
}

fn main() {
    let _ = step;
}
