//! Arbitrary bytes into the Kafka request header decoder; the property lives in
//! `weir_protocol::kafka::fuzzing` so the stable corpus-replay test runs the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    weir_protocol::kafka::fuzzing::header_decode(data);
});
