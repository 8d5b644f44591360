//! Fuzz target: the envelope parser takes outside bytes. It must never panic, and whatever it
//! accepts must write out and read back as the same envelope.
#![no_main]

use envelope::{Origin, ParseOptions, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions::new(Origin::Any);
    if let Ok(env) = parse(data, &opts) {
        let xml = env.to_xml();
        let back = parse(xml.as_bytes(), &opts).expect("an envelope the parser accepted, written out, must parse");
        assert_eq!(back, env, "round trip changed the envelope");
        assert_eq!(back.to_xml(), xml, "writing is not stable");
    }
});
