//! Startup helpers: open a replayed topic's partitions, remove data of deleted ones.

use std::path::Path;
use std::sync::Arc;

use super::ControllerOpenError;
use crate::metadata::{MetadataImage, TopicImage};
use crate::names::{parse_partition_dir_name, partition_dir_name};
use crate::partition::Partition;
use crate::topic_config::{with_overrides, TopicConfig};
use crate::topics::TopicState;

pub(super) fn open_topic(
    data_dir: &Path,
    name: &str,
    t: &TopicImage,
    defaults: &TopicConfig,
) -> Result<TopicState, ControllerOpenError> {
    let config = with_overrides(defaults, &t.configs).unwrap_or_else(|e| {
        tracing::warn!(topic = name, error = %e, "stored topic config invalid; using defaults");
        defaults.clone()
    });
    let mut partitions = Vec::with_capacity(t.partitions.len());
    for (i, p) in t.partitions.iter().enumerate() {
        let index = i as i32;
        let dir = data_dir.join(partition_dir_name(name, index));
        let part = Partition::open(name, index, &dir, config.log.clone(), p.leader_epoch).map_err(
            |source| ControllerOpenError::Partition {
                partition: format!("{name}-{index}"),
                source,
            },
        )?;
        report_recovery(&part);
        partitions.push(Arc::new(part));
    }
    Ok(TopicState {
        name: name.to_string(),
        id: t.id.clone(),
        config,
        overrides: t.configs.clone(),
        partitions,
        counters: Default::default(),
    })
}

/// Removes `<topic>-<n>` directories that the image does not know (a deletion that
/// crashed before removing its data).
pub(super) fn remove_orphans(data_dir: &Path, image: &MetadataImage) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((topic, p)) = parse_partition_dir_name(name) else {
            continue;
        };
        let known = image
            .topics
            .get(topic)
            .is_some_and(|t| usize::try_from(p).is_ok_and(|p| p < t.partitions.len()));
        if !known && entry.path().is_dir() {
            tracing::warn!(dir = name, "removing data of a deleted partition");
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(dir = name, error = %e, "could not remove orphan");
            }
        }
    }
}

/// Logs and counts what opening an existing partition took: after a graceful shutdown the
/// checkpoint lets storage skip the scan; after a crash it validates the tail.
fn report_recovery(part: &Partition) {
    let info = part.with_log(|log| Ok(log.recovery_info().clone()));
    let Ok(info) = info else { return };
    // An empty log that was never written has nothing to scan; count it as clean.
    let scanned = info.bytes_scanned > 0 || info.bytes_truncated > 0 || info.checkpoint_corrupt;
    if info.clean_shutdown || !scanned {
        metrics::counter!("weir_partitions_opened_clean_total").increment(1);
    } else {
        metrics::counter!("weir_partitions_recovered_total").increment(1);
        tracing::info!(
            partition = %part.name(),
            segments_scanned = info.segments_scanned,
            bytes_scanned = info.bytes_scanned,
            bytes_truncated = info.bytes_truncated,
            "recovered partition after an unclean shutdown"
        );
    }
}
