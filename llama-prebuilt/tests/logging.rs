//! llama.cpp's log reaches the `log` crate (its own test binary: the logger is global).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use llama_prebuilt::{LOG_TARGET, Model, ModelParams};

struct Capture(Mutex<Vec<(log::Level, String, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() == log::Level::Error && PANIC_ON_ERROR.load(Ordering::SeqCst) {
            panic!("logger panicked");
        }
        self.0.lock().unwrap().push((
            record.level(),
            record.target().to_string(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));
static PANIC_ON_ERROR: AtomicBool = AtomicBool::new(false);

#[test]
fn llama_cpp_log_lines_become_log_records() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let model = Model::load(
        llama_prebuilt_test_support::gguf::tiny_model(),
        &ModelParams::default().n_gpu_layers(0),
    )
    .unwrap();
    drop(model);
    let hollow = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        hollow.path(),
        b"GGUF\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    )
    .unwrap();
    assert!(Model::load(hollow.path(), &ModelParams::default()).is_err());

    let records = CAPTURE.0.lock().unwrap();
    let ours: Vec<_> = records
        .iter()
        .filter(|(_, target, _)| target == LOG_TARGET)
        .collect();
    assert!(ours.len() > 10, "model loading logs plenty: {}", ours.len());
    assert!(
        ours.iter()
            .all(|(_, _, line)| !line.ends_with('\n') && !line.trim().is_empty())
    );
    assert!(
        ours.iter().any(|(_, _, line)| line.contains("llama")),
        "{ours:#?}"
    );
    assert!(
        ours.iter().any(|(level, _, _)| *level == log::Level::Error),
        "the failed load logged an error"
    );
    drop(records);

    // A logger that panics inside llama.cpp's callback: the panic is caught at the C
    // boundary and resumed in Rust when the C call returns.
    PANIC_ON_ERROR.store(true, Ordering::SeqCst);
    let payload = std::panic::catch_unwind(|| Model::load(hollow.path(), &ModelParams::default()))
        .unwrap_err();
    PANIC_ON_ERROR.store(false, Ordering::SeqCst);
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"logger panicked"));
    assert!(
        Model::load(hollow.path(), &ModelParams::default()).is_err(),
        "still usable afterwards"
    );
}
