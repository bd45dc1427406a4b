//! `meta/meta.properties`: who this data directory belongs to (Kafka keeps the same file).
//! Written once, at the first start: the node id and a random cluster id. A later start
//! with another `server.node_id` is refused: the metadata quorum's vote and log name this
//! node, so reusing the directory under another id could make one node vote twice.

use std::path::{Path, PathBuf};

/// Where the file lives inside the data dir.
pub const META_PROPERTIES: &str = "meta/meta.properties";

/// Why the data directory cannot be used by this broker.
#[derive(Debug, thiserror::Error)]
pub enum MetaPropertiesError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The file is not ours or is damaged.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory belongs to another node.
    #[error(
        "server.node_id is {configured} but data directory {} belongs to node {stored} \
         ({META_PROPERTIES}); start with --node-id {stored} or use another --data-dir",
        dir.display()
    )]
    NodeIdMismatch {
        /// The data directory.
        dir: PathBuf,
        /// From the configuration.
        configured: i32,
        /// From the file.
        stored: i32,
    },
}

/// The identity a data directory carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    /// Node id the directory was first started with.
    pub node_id: i32,
    /// Random id of the cluster it belongs to.
    pub cluster_id: String,
}

impl MetaProperties {
    /// `version=1`, `node.id=…`, `cluster.id=…`, one per line.
    pub fn render(&self) -> String {
        format!(
            "# Written by weir-broker at the first start; do not edit.\nversion=1\nnode.id={}\ncluster.id={}\n",
            self.node_id, self.cluster_id
        )
    }

    /// Parses [`render`](Self::render)'s format.
    pub fn parse(text: &str) -> Result<MetaProperties, String> {
        let (mut version, mut node_id, mut cluster_id) = (None, None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("line {line:?} is not key=value"))?;
            match k {
                "version" => version = Some(v.to_string()),
                "node.id" => {
                    node_id = Some(
                        v.parse::<i32>()
                            .map_err(|_| format!("node.id {v:?} is not a number"))?,
                    )
                }
                "cluster.id" => cluster_id = Some(v.to_string()),
                other => return Err(format!("unknown key {other}")),
            }
        }
        if version.as_deref() != Some("1") {
            return Err(format!("unsupported version {version:?}"));
        }
        match (node_id, cluster_id) {
            (Some(node_id), Some(cluster_id)) if !cluster_id.is_empty() => Ok(MetaProperties {
                node_id,
                cluster_id,
            }),
            _ => Err("node.id or cluster.id missing".into()),
        }
    }
}

/// A new random cluster id: 16 random bytes, URL-safe base64 without padding like Kafka's.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes: [u8; 16] = rand::random();
    let mut bits: u128 = u128::from_be_bytes(bytes);
    // 22 characters of 6 bits cover 128 bits (the last holds 2).
    let mut out = Vec::with_capacity(22);
    for _ in 0..22 {
        let i = (bits & 63) as usize;
        out.push(ALPHABET.get(i).copied().unwrap_or(b'A'));
        bits >>= 6;
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Checks (or, at the first start, writes) the directory's identity. Blocking.
pub fn ensure(data_dir: &Path, node_id: i32) -> Result<MetaProperties, MetaPropertiesError> {
    let path = data_dir.join(META_PROPERTIES);
    let io = |source| MetaPropertiesError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let props =
                MetaProperties::parse(&text).map_err(|reason| MetaPropertiesError::Invalid {
                    path: path.clone(),
                    reason,
                })?;
            if props.node_id != node_id {
                return Err(MetaPropertiesError::NodeIdMismatch {
                    dir: data_dir.to_path_buf(),
                    configured: node_id,
                    stored: props.node_id,
                });
            }
            Ok(props)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let props = MetaProperties {
                node_id,
                cluster_id: new_cluster_id(),
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            crate::raft::log_store::write_atomic(&path, props.render().as_bytes(), true)
                .map_err(io)?;
            Ok(props)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn first_start_writes_later_starts_check() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure(dir.path(), 3).unwrap();
        assert_eq!(first.cluster_id.len(), 22);
        assert_eq!(
            ensure(dir.path(), 3).unwrap(),
            first,
            "stable across starts"
        );
        let err = ensure(dir.path(), 4).unwrap_err();
        assert!(matches!(
            err,
            MetaPropertiesError::NodeIdMismatch {
                configured: 4,
                stored: 3,
                ..
            }
        ));
        assert!(err.to_string().contains("server.node_id is 4"), "{err}");
    }

    #[test]
    fn damaged_files_are_refused() {
        for bad in [
            "",
            "version=2\nnode.id=1\ncluster.id=x\n",
            "version=1\nnode.id=one\ncluster.id=x\n",
            "version=1\nnode.id=1\n",
            "junk",
        ] {
            assert!(MetaProperties::parse(bad).is_err(), "{bad:?}");
        }
        let ok = MetaProperties {
            node_id: 7,
            cluster_id: "abc".into(),
        };
        assert_eq!(MetaProperties::parse(&ok.render()).unwrap(), ok);
    }
}
