// Which `llama_abi` a llama.cpp tag compiles with: included by `build.rs` (which emits the cfg)
// and by the unit tests in `src/abi.rs` (which check the mapping); plain items, no imports.

/// Tags the crate is tested against, oldest first, with the ABI each one selects.
const SUPPORTED: &[(u64, &str)] = &[(10199, "b10199"), (10605, "b10605")];

/// The ABI of the newest supported tag not newer than `tag` (`b<number>` or
/// `b<number>-<suffix>`); the oldest for anything else.
fn abi_for(tag: &str) -> &'static str {
    let number = tag
        .strip_prefix('b')
        .map(|rest| rest.split_once('-').map_or(rest, |(n, _)| n))
        .and_then(|n| n.parse::<u64>().ok());
    let oldest = SUPPORTED[0].1;
    number.map_or(oldest, |n| {
        SUPPORTED
            .iter()
            .rev()
            .find(|(since, _)| n >= *since)
            .map_or(oldest, |(_, abi)| abi)
    })
}
