//! Arbitrary bytes into both frame decoders; the property lives in
//! `weir_protocol::native::fuzzing` so the stable corpus-replay test runs the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    weir_protocol::native::fuzzing::frame_decode(data);
});
