//! The metadata log file.
//!
//! Layout: a sequence of entries, each
//! `u32 BE length of payload | u32 BE CRC-32C of payload | payload (MetadataRecord protobuf)`.
//! Appends are fsynced before the change they describe is applied or acknowledged. A crash
//! can leave a torn last entry; replay stops at the first entry whose length runs past the
//! end, whose CRC differs or that does not decode, and truncates the file there.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::{BufMut, BytesMut};
use prost::Message;

use super::MetadataRecord;

/// Largest entry accepted on replay; guards against a corrupt length field.
const MAX_ENTRY_BYTES: usize = 64 * 1024 * 1024;

/// Metadata log I/O failures.
#[derive(Debug, thiserror::Error)]
pub enum MetadataFileError {
    /// I/O on the metadata log failed.
    #[error("metadata log {op} on {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

/// An open metadata log, positioned for appends.
#[derive(Debug)]
pub struct MetadataFile {
    path: PathBuf,
    file: File,
}

impl MetadataFile {
    /// Opens (creating) the log at `path`, returns it with every intact record in order.
    pub fn open(path: &Path) -> Result<(MetadataFile, Vec<MetadataRecord>), MetadataFileError> {
        let err = |op| {
            move |source| MetadataFileError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err("create dir"))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(err("open"))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(err("read"))?;
        let (records, valid) = decode_entries(&buf);
        if valid < buf.len() {
            tracing::warn!(
                path = %path.display(),
                valid,
                len = buf.len(),
                "metadata log has a torn or corrupt tail; truncating"
            );
            file.set_len(valid as u64).map_err(err("truncate"))?;
            file.sync_all().map_err(err("fsync"))?;
        }
        Ok((
            MetadataFile {
                path: path.to_path_buf(),
                file,
            },
            records,
        ))
    }

    /// Appends `records` in one write and fsyncs.
    pub fn append(&mut self, records: &[MetadataRecord]) -> Result<(), MetadataFileError> {
        let buf = encode_entries(records);
        let err = |op| {
            let path = self.path.clone();
            move |source| MetadataFileError::Io { op, path, source }
        };
        self.file.write_all(&buf).map_err(err("append"))?;
        self.file.sync_data().map_err(err("fsync"))?;
        Ok(())
    }
}

/// Frames records as entries.
pub fn encode_entries(records: &[MetadataRecord]) -> BytesMut {
    encode_frames(records)
}

/// Decodes entries up to the first bad one; returns the records and the valid length.
pub fn decode_entries(buf: &[u8]) -> (Vec<MetadataRecord>, usize) {
    let (frames, valid) = decode_frames::<MetadataRecord>(buf);
    (frames.into_iter().map(|(r, _)| r).collect(), valid)
}

/// Frames protobuf messages as `length | CRC-32C | payload` entries (the metadata log's
/// format, also used by the Raft log).
pub fn encode_frames<M: Message>(items: &[M]) -> BytesMut {
    let mut buf = BytesMut::new();
    for r in items {
        let payload = r.encode_to_vec();
        buf.put_u32(payload.len() as u32);
        buf.put_u32(crc32c::crc32c(&payload));
        buf.put_slice(&payload);
    }
    buf
}

/// Decodes frames up to the first bad one (torn, CRC mismatch, undecodable); returns each
/// message with the offset its frame starts at, and the valid length.
pub fn decode_frames<M: Message + Default>(buf: &[u8]) -> (Vec<(M, usize)>, usize) {
    let mut items = Vec::new();
    let mut pos = 0usize;
    while let Some(head) = buf.get(pos..pos + 8) {
        let mut len = [0u8; 4];
        let mut crc = [0u8; 4];
        len.copy_from_slice(head.get(..4).unwrap_or(&[0; 4]));
        crc.copy_from_slice(head.get(4..).unwrap_or(&[0; 4]));
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_ENTRY_BYTES {
            break;
        }
        let Some(payload) = buf.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32c::crc32c(payload) != u32::from_be_bytes(crc) {
            break;
        }
        let Ok(item) = M::decode(payload) else {
            break;
        };
        items.push((item, pos));
        pos += 8 + len;
    }
    (items, pos)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::metadata::{Record, TopicRecord};

    fn topic(name: &str) -> MetadataRecord {
        MetadataRecord {
            record: Some(Record::Topic(TopicRecord {
                name: name.into(),
                topic_id: vec![1; 16].into(),
                partition_count: 2,
                configs: Default::default(),
            })),
        }
    }

    #[test]
    fn append_and_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta/metadata.log");
        let (mut f, recs) = MetadataFile::open(&path).unwrap();
        assert!(recs.is_empty());
        f.append(&[topic("a"), topic("b")]).unwrap();
        drop(f);
        let (_, recs) = MetadataFile::open(&path).unwrap();
        assert_eq!(recs, vec![topic("a"), topic("b")]);
    }

    #[test]
    fn torn_and_corrupt_tails_are_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.log");
        let good = encode_entries(&[topic("a")]);
        let second = encode_entries(&[topic("b")]);
        for cut in 1..second.len() {
            let mut bytes = good.to_vec();
            bytes.extend_from_slice(&second[..cut]);
            std::fs::write(&path, &bytes).unwrap();
            let (_, recs) = MetadataFile::open(&path).unwrap();
            assert_eq!(recs, vec![topic("a")], "cut {cut}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), good.len() as u64);
        }
        let mut bytes = good.to_vec();
        let mut bad = second.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        bytes.extend_from_slice(&bad);
        std::fs::write(&path, &bytes).unwrap();
        let (_, recs) = MetadataFile::open(&path).unwrap();
        assert_eq!(recs, vec![topic("a")]);
    }
}
