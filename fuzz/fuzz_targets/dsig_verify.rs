//! Fuzz target: XMLDSig verification of outside bytes (roxmltree first, then libxml2's C14N):
//! any bytes get a verdict or a named reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = dsig::verify_enveloped(text, &dsig::Verifiers::standard());
    }
});
