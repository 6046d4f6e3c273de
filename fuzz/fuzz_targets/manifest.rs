//! serverless.yml: YAML, variables and the model. Anything may fail with a message; nothing may
//! panic, overflow the stack or run away with memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let ctx = sylph_manifest::Context {
        options: [("stage".to_owned(), "dev".to_owned())].into(),
        env: [("HOME".to_owned(), "/nonexistent".to_owned())].into(),
        // `${file(...)}` reads relative to this; nothing is there.
        service_dir: std::path::PathBuf::from("/nonexistent"),
    };
    let _ = sylph_manifest::load_str(text, std::path::Path::new("serverless.yml"), &ctx);
});
