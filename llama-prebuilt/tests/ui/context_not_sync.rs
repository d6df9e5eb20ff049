use llama_prebuilt::Context;

fn assert_sync<T: Sync>() {}

fn main() {
    assert_sync::<Context<'static>>();
}
