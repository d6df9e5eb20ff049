use llama_prebuilt::{ContextParams, Model, ModelParams};

fn main() {
    let model = Model::load("model.gguf", &ModelParams::default()).unwrap();
    let mut ctx = model.new_context(&ContextParams::default()).unwrap();
    let adapter = model.load_lora("lora.gguf").unwrap();
    ctx.set_lora(&adapter, 1.0).unwrap();
    drop(adapter);
    drop(ctx);
}
