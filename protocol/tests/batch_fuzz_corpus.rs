//! Replays every committed fuzz corpus input (including crash regressions) through the
//! same checks as the `batch_decode` fuzz target, on stable, in the normal test run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../fuzz/exercise.rs"]
mod exercise;

#[test]
fn replay_batch_decode_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/batch_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            exercise::exercise(&data);
            n += 1;
        }
    }
    assert!(n > 0, "no corpus files in {}", dir.display());
}
