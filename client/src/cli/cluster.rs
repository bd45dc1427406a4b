//! `weir cluster describe`: the metadata quorum and the registered brokers.

use serde_json::json;

use super::args::{ClusterCommand, OutputFormat};
use crate::admin::Admin;
use crate::cluster_admin::ClusterDescription;
use crate::config::ClientConfig;
use crate::error::Result;

pub(super) async fn run(
    config: ClientConfig,
    format: OutputFormat,
    command: ClusterCommand,
) -> Result<()> {
    let admin = Admin::new(config)?;
    match command {
        ClusterCommand::Describe => {
            let d = admin.describe_cluster().await?;
            match format {
                OutputFormat::Json => println!("{}", describe_json(&d)),
                OutputFormat::Text => print_describe(&d),
            }
        }
    }
    Ok(())
}

/// The shape the issue (and scripts) rely on.
fn describe_json(d: &ClusterDescription) -> serde_json::Value {
    json!({
        "cluster_id": d.cluster_id,
        "controller": {
            "leader": d.leader,
            "term": d.term,
            "commit_index": d.commit_index,
            "voters": d.voters.iter().map(|v| json!({
                "id": v.id,
                "address": v.address,
                "match_index": v.match_index,
                "lag": v.lag,
            })).collect::<Vec<_>>(),
        },
        "brokers": d.brokers.iter().map(|b| json!({
            "id": b.id,
            "address": b.address,
            "fenced": b.fenced,
            "partitions_led": b.partitions_led,
        })).collect::<Vec<_>>(),
        "image_digest": d.image_digest,
    })
}

fn print_describe(d: &ClusterDescription) {
    let dash = |v: Option<u64>| v.map_or("-".to_string(), |x| x.to_string());
    println!(
        "cluster {}  controller {}  term {}  commit index {}",
        d.cluster_id, d.leader, d.term, d.commit_index
    );
    println!("  VOTER\tADDRESS\tMATCH\tLAG");
    for v in &d.voters {
        println!(
            "  {}\t{}\t{}\t{}",
            v.id,
            v.address,
            dash(v.match_index),
            dash(v.lag)
        );
    }
    println!("  BROKER\tADDRESS\tFENCED\tPARTITIONS_LED");
    for b in &d.brokers {
        println!(
            "  {}\t{}\t{}\t{}",
            b.id, b.address, b.fenced, b.partitions_led
        );
    }
}
