use llama_prebuilt::{Model, ModelParams};

fn main() {
    let adapter = {
        let model = Model::load("model.gguf", &ModelParams::default()).unwrap();
        model.load_lora("lora.gguf").unwrap()
    };
    drop(adapter);
}
