//! `weir topic ...`.

use std::io::Write;

use serde_json::json;

use super::args::{OutputFormat, TopicCommand};
use super::output::{describe_json, describe_text};
use super::print_line;
use crate::admin::{Admin, NewTopic};
use crate::config::ClientConfig;
use crate::error::Result;

pub(super) async fn run(
    config: ClientConfig,
    format: OutputFormat,
    command: TopicCommand,
) -> Result<()> {
    let admin = Admin::new(config)?;
    let out = &mut std::io::stdout().lock();
    let json = format == OutputFormat::Json;
    match command {
        TopicCommand::Create(a) => {
            // No --partitions: -1 lets the broker apply its default_partitions, as Kafka's
            // kafka-topics.sh does.
            let created = admin
                .create_topic(NewTopic {
                    name: a.name.clone(),
                    partitions: a.partitions.unwrap_or(-1),
                    replication_factor: a.replication_factor.unwrap_or(-1),
                    configs: a.configs,
                })
                .await?;
            let line = if json {
                json!({"name": created.name, "partitions": created.partitions, "created": true})
                    .to_string()
            } else {
                created_line(&created.name, created.partitions)
            };
            print_line(out, &line);
        }
        TopicCommand::List => {
            let names = admin.list_topics().await?;
            if json {
                print_line(out, &json!(names).to_string());
            } else {
                for n in names {
                    print_line(out, &n);
                }
            }
        }
        TopicCommand::Describe { name } => {
            let d = admin.describe_topic(&name).await?;
            if json {
                print_line(out, &describe_json(&d).to_string());
            } else {
                let _ = out.write_all(describe_text(&d).as_bytes());
            }
        }
        TopicCommand::Delete { name } => {
            admin.delete_topic(&name).await?;
            if json {
                print_line(out, &json!({"name": name, "deleted": true}).to_string());
            } else {
                eprintln!("deleted topic {name}");
            }
        }
        TopicCommand::AddPartitions { name, total } => {
            admin.add_partitions(&name, total).await?;
            if json {
                print_line(out, &json!({"name": name, "partitions": total}).to_string());
            } else {
                eprintln!("topic {name} now has {total} partitions");
            }
        }
        TopicCommand::AlterConfig(a) => {
            admin.alter_configs(&a.name, &a.set, &a.delete).await?;
            if json {
                let configs = admin.describe_configs(&a.name).await?;
                print_line(
                    out,
                    &json!({"name": a.name, "configs": configs}).to_string(),
                );
            } else {
                eprintln!(
                    "updated topic {}: {} set, {} reset",
                    a.name,
                    a.set.len(),
                    a.delete.len()
                );
            }
        }
    }
    let _ = out.flush();
    Ok(())
}

/// "created topic t with 1 partition" / "... 3 partitions".
fn created_line(name: &str, partitions: i32) -> String {
    let noun = if partitions == 1 {
        "partition"
    } else {
        "partitions"
    };
    format!("created topic {name} with {partitions} {noun}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn confirmation_counts_partitions_in_english() {
        assert_eq!(
            super::created_line("t", 1),
            "created topic t with 1 partition"
        );
        assert_eq!(
            super::created_line("t", 3),
            "created topic t with 3 partitions"
        );
    }
}
