//! Medians and the small formatting helpers the reports share.

use std::time::Instant;

/// Median of the samples (mean of the middle two for an even count); NaN when empty.
pub(crate) fn median(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The samples as a comma-separated list with `digits` decimals.
pub(crate) fn list(samples: &[f64], digits: usize) -> String {
    samples
        .iter()
        .map(|s| format!("{s:.digits$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Wall time of `f`, in seconds.
pub(crate) fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t0 = Instant::now();
    let r = f();
    (t0.elapsed().as_secs_f64(), r)
}

/// Seconds as `1.234 s` or `12.3 ms`.
pub(crate) fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}
