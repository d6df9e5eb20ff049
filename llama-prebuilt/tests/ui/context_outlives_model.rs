use llama_prebuilt::{ContextParams, Model, ModelParams};

fn main() {
    let ctx = {
        let model = Model::load("model.gguf", &ModelParams::default()).unwrap();
        model.new_context(&ContextParams::default()).unwrap()
    };
    drop(ctx);
}
