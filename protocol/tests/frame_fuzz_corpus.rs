//! Replays the committed `frame_decode` fuzz corpus (and any crash regressions) through
//! the same property the fuzz target checks, so CI covers it on stable.

use std::path::Path;

#[test]
fn frame_decode_corpus_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for sub in ["corpus/frame_decode", "regressions/frame_decode"] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(data) = std::fs::read(entry.path()) {
                weir_protocol::native::fuzzing::frame_decode(&data);
                count += 1;
            }
        }
    }
    assert!(count > 0, "the frame_decode corpus is missing");
}
