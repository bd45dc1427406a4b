//! `meta/meta.properties`: who this data directory belongs to (Kafka keeps the same file).
//! Written at the first start with the node id (and, on a single node, a random cluster
//! id); a cluster member records the quorum's cluster id once it has learned it. A later
//! start with another `server.node_id` is refused: the metadata quorum's vote and log name
//! this node, so reusing the directory under another id could make one node vote twice. A
//! directory of another cluster is refused too: its logs are another cluster's data.

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
    /// The directory belongs to another cluster.
    #[error(
        "data directory {} belongs to cluster {stored} (cluster.id in {META_PROPERTIES}) \
         but the metadata quorum (cluster.voters) is cluster {quorum}; use another --data-dir \
         or the voters of cluster {stored}",
        dir.display()
    )]
    ClusterIdMismatch {
        /// The data directory.
        dir: PathBuf,
        /// From the file.
        stored: String,
        /// From the quorum's metadata.
        quorum: String,
    },
}

/// The identity a data directory carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    /// Node id the directory was first started with.
    pub node_id: i32,
    /// Id of the cluster it belongs to; `None` until a new cluster member has learned it.
    pub cluster_id: Option<String>,
}

impl MetaProperties {
    /// `version=1`, `node.id=…`, `cluster.id=…`, one per line.
    pub fn render(&self) -> String {
        let mut out = format!(
            "# Written by weir-broker at the first start; do not edit.\nversion=1\nnode.id={}\n",
            self.node_id
        );
        if let Some(id) = &self.cluster_id {
            out.push_str(&format!("cluster.id={id}\n"));
        }
        out
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
            (_, Some(id)) if id.is_empty() => Err("cluster.id is empty".into()),
            (Some(node_id), cluster_id) => Ok(MetaProperties {
                node_id,
                cluster_id,
            }),
            _ => Err("node.id missing".into()),
        }
    }
}

/// A new random cluster id: 16 random bytes, URL-safe base64 without padding like Kafka's.
pub fn new_cluster_id() -> String {
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

/// Checks (or, at the first start, writes) the directory's identity; a new directory gets
/// a random cluster id when `new_cluster` (a single node is its own cluster), none
/// otherwise (a cluster member learns it from the quorum). Blocking.
pub fn ensure(
    data_dir: &Path,
    node_id: i32,
    new_cluster: bool,
) -> Result<MetaProperties, MetaPropertiesError> {
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
                cluster_id: new_cluster.then(new_cluster_id),
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

/// Checks the directory against the quorum's cluster id, recording it in a directory that
/// has none yet. Blocking.
pub fn adopt_cluster_id(
    data_dir: &Path,
    props: MetaProperties,
    quorum: &str,
) -> Result<MetaProperties, MetaPropertiesError> {
    match &props.cluster_id {
        Some(stored) if stored == quorum => Ok(props),
        Some(stored) => Err(MetaPropertiesError::ClusterIdMismatch {
            dir: data_dir.to_path_buf(),
            stored: stored.clone(),
            quorum: quorum.to_string(),
        }),
        None => {
            let path = data_dir.join(META_PROPERTIES);
            let props = MetaProperties {
                cluster_id: Some(quorum.to_string()),
                ..props
            };
            crate::raft::log_store::write_atomic(&path, props.render().as_bytes(), true)
                .map_err(|source| MetaPropertiesError::Io { path, source })?;
            Ok(props)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn first_start_writes_later_starts_check() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure(dir.path(), 3, true).unwrap();
        assert_eq!(first.cluster_id.as_ref().unwrap().len(), 22);
        assert_eq!(
            ensure(dir.path(), 3, true).unwrap(),
            first,
            "stable across starts"
        );
        let err = ensure(dir.path(), 4, true).unwrap_err();
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
            "version=1\ncluster.id=x\n",
            "version=1\nnode.id=1\ncluster.id=\n",
            "junk",
        ] {
            assert!(MetaProperties::parse(bad).is_err(), "{bad:?}");
        }
        let ok = MetaProperties {
            node_id: 7,
            cluster_id: Some("abc".into()),
        };
        assert_eq!(MetaProperties::parse(&ok.render()).unwrap(), ok);
    }

    #[test]
    fn a_cluster_member_learns_its_cluster_id_once() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = ensure(dir.path(), 2, false).unwrap();
        assert_eq!(fresh.cluster_id, None);
        let adopted = adopt_cluster_id(dir.path(), fresh, "quorum-id").unwrap();
        assert_eq!(adopted.cluster_id.as_deref(), Some("quorum-id"));
        let again = ensure(dir.path(), 2, false).unwrap();
        assert_eq!(again, adopted, "recorded");
        let err = adopt_cluster_id(dir.path(), again, "other").unwrap_err();
        assert!(matches!(err, MetaPropertiesError::ClusterIdMismatch { .. }));
        assert!(err.to_string().contains("cluster.id"), "{err}");
    }
}
