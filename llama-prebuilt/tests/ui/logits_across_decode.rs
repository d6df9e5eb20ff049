use llama_prebuilt::{Batch, Context};

fn step(ctx: &mut Context<'_>, batch: &Batch) {
    let logits = ctx.last_logits().unwrap();
    ctx.decode(batch).unwrap();
    println!("{}", logits[0]);
}

fn main() {
    let _ = step;
}
