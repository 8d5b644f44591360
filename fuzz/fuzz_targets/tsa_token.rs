//! Fuzz target: RFC 3161 structures from outside (a token to verify, an authority's response,
//! a batch proof): any bytes get a value or a named reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let digest = tsa::sha256(b"fuzz");
    // No trusted roots: everything up to the chain check still runs on the bytes.
    let _ = tsa::verify(data, &digest, Some(&[1, 2, 3]), &[]);
    let _ = tsa::token_from_response(data);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(p) = tsa::batch::Proof::from_text(text)
    {
        let _ = tsa::batch::root_from(&digest, &p);
    }
});
