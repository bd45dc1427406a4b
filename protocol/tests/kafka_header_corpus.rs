//! Replays the committed `kafka_header_decode` fuzz corpus (and any crash regressions)
//! through the property the fuzz target checks, so CI covers it on stable.

use std::path::Path;

#[test]
fn kafka_header_corpus_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for sub in [
        "corpus/kafka_header_decode",
        "regressions/kafka_header_decode",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(data) = std::fs::read(entry.path()) {
                weir_protocol::kafka::fuzzing::header_decode(&data);
                count += 1;
            }
        }
    }
    assert!(count > 0, "the kafka_header_decode corpus is missing");
}
