//! Lifetime and thread-safety rules enforced by the compiler (trybuild compile-fail tests in
//! `tests/ui/`): a context cannot outlive its model, logits and embeddings cannot be held
//! across a decode, a context is not `Sync`, a generator holds the context exclusively.

#[test]
fn misuse_does_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
