//! `weir partition reassign`: start, follow and cancel replica moves, one partition from
//! flags or many from a JSON plan in `kafka-reassign-partitions`' shape.

use serde::Deserialize;
use serde_json::json;

use super::args::{OutputFormat, PartitionCommand, ReassignArgs};
use crate::admin::Admin;
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::reassign_admin::{Move, OngoingMove, Refusal};

/// A plan file.
#[derive(Debug, Deserialize)]
struct Plan {
    #[serde(default)]
    version: Option<i32>,
    partitions: Vec<PlanEntry>,
}

#[derive(Debug, Deserialize)]
struct PlanEntry {
    topic: String,
    partition: i32,
    #[serde(default)]
    replicas: Vec<i32>,
}

pub(super) async fn run(
    config: ClientConfig,
    format: OutputFormat,
    command: PartitionCommand,
) -> Result<()> {
    let PartitionCommand::Reassign(args) = command;
    let admin = Admin::new(config)?;
    let moves = moves_from(&args)?;
    if args.status {
        let mut topics: Vec<String> = moves.iter().map(|m| m.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        let mut ongoing = admin.list_reassignments(&topics).await?;
        if !moves.is_empty() {
            ongoing.retain(|o| {
                moves
                    .iter()
                    .any(|m| m.topic == o.topic && (m.partition < 0 || m.partition == o.partition))
            });
        }
        print_status(format, &ongoing);
        return Ok(());
    }
    if moves.is_empty() {
        return Err(Error::Config(
            "name the partitions: --topic T --partition P --replicas 1,2,3, or --plan FILE".into(),
        ));
    }
    let refused = if args.cancel {
        let parts: Vec<(String, i32)> = moves
            .iter()
            .map(|m| (m.topic.clone(), m.partition))
            .collect();
        if parts.iter().any(|(_, p)| *p < 0) {
            return Err(Error::Config(
                "--cancel needs --partition (or a plan)".into(),
            ));
        }
        admin.cancel_reassignments(&parts).await?
    } else {
        if let Some(m) = moves
            .iter()
            .find(|m| m.replicas.is_empty() || m.partition < 0)
        {
            return Err(Error::Config(format!(
                "{}-{}: a move needs a partition and a non-empty replica list",
                m.topic, m.partition
            )));
        }
        admin.reassign_partitions(&moves, args.throttle).await?
    };
    let verb = if args.cancel { "cancelled" } else { "started" };
    print_result(format, verb, moves.len(), &refused);
    if refused.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{} of {} partitions refused",
            refused.len(),
            moves.len()
        )))
    }
}

/// The moves the flags or the plan name; a partition of -1 stands for "every partition of
/// the topic" (only `--status --topic T` uses it).
fn moves_from(args: &ReassignArgs) -> Result<Vec<Move>> {
    if let Some(path) = &args.plan {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read plan {}: {e}", path.display())))?;
        let plan = parse_plan(&text)
            .map_err(|e| Error::Config(format!("plan {}: {e}", path.display())))?;
        return Ok(plan);
    }
    match &args.topic {
        None => Ok(Vec::new()),
        Some(topic) => Ok(vec![Move {
            topic: topic.clone(),
            partition: args.partition.unwrap_or(-1),
            replicas: args.replicas.clone(),
        }]),
    }
}

fn parse_plan(text: &str) -> std::result::Result<Vec<Move>, String> {
    let plan: Plan = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if let Some(v) = plan.version {
        if v != 1 {
            return Err(format!("version {v} is not supported (1 is)"));
        }
    }
    Ok(plan
        .partitions
        .into_iter()
        .map(|p| Move {
            topic: p.topic,
            partition: p.partition,
            replicas: p.replicas,
        })
        .collect())
}

fn print_result(format: OutputFormat, verb: &str, total: usize, refused: &[Refusal]) {
    match format {
        OutputFormat::Json => println!(
            "{}",
            json!({
                verb: total - refused.len(),
                "refused": refused.iter().map(|r| json!({
                    "topic": r.topic,
                    "partition": r.partition,
                    "error": r.code.to_string(),
                    "message": r.message,
                })).collect::<Vec<_>>(),
            })
        ),
        OutputFormat::Text => {
            println!(
                "{verb} {} of {total} partition moves",
                total - refused.len()
            );
            for r in refused {
                eprintln!("{}-{}: {} ({})", r.topic, r.partition, r.message, r.code);
            }
        }
    }
}

fn print_status(format: OutputFormat, ongoing: &[OngoingMove]) {
    match format {
        OutputFormat::Json => println!(
            "{}",
            json!({
                "in_progress": ongoing.iter().map(|o| json!({
                    "topic": o.topic,
                    "partition": o.partition,
                    "replicas": o.replicas,
                    "isr": o.isr,
                    "adding": o.adding,
                    "removing": o.removing,
                    "leader": o.leader,
                })).collect::<Vec<_>>(),
            })
        ),
        OutputFormat::Text => {
            if ongoing.is_empty() {
                println!("no reassignment in progress");
                return;
            }
            println!("TOPIC\tPARTITION\tREPLICAS\tISR\tADDING\tREMOVING\tLEADER");
            let ids = |v: &[i32]| {
                v.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            for o in ongoing {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    o.topic,
                    o.partition,
                    ids(&o.replicas),
                    ids(&o.isr),
                    ids(&o.adding),
                    ids(&o.removing),
                    o.leader
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_in_kafkas_shape_parses_and_bad_ones_say_why() {
        let moves = parse_plan(
            r#"{"version":1,"partitions":[{"topic":"a","partition":0,"replicas":[2,3]},
                {"topic":"b","partition":4,"replicas":[1],"log_dirs":["any"]}]}"#,
        )
        .unwrap();
        assert_eq!(moves.len(), 2);
        assert_eq!(
            moves[1],
            Move {
                topic: "b".into(),
                partition: 4,
                replicas: vec![1]
            }
        );
        assert!(parse_plan(r#"{"version":2,"partitions":[]}"#)
            .unwrap_err()
            .contains("version 2"));
        assert!(parse_plan(r#"{"partitions":[{"topic":"a"}]}"#).is_err());
        assert!(parse_plan("not json").is_err());
    }
}
