//! Argument definitions (clap derive). `--bootstrap` and `--output` are global, so they
//! are accepted before or after the subcommand.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{parse_compression, Acks};
use weir_protocol::batch::Compression;

/// Default broker address when neither `--bootstrap` nor `WEIR_BOOTSTRAP` is given.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9292";

/// `weir`: manage topics and produce/consume records on a Weir broker.
#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "Admin CLI for the Weir event-streaming broker",
    after_help = "Examples:\n  weir topic create orders --partitions 8\n  printf 'k1:v1\\nk2:v2\\n' | weir produce orders --key-separator :\n  weir --output json consume orders --from-beginning --timeout-ms 2000"
)]
pub struct Cli {
    /// Broker to contact first (HOST:PORT, several separated by commas).
    #[arg(long, global = true, env = "WEIR_BOOTSTRAP", default_value = DEFAULT_BOOTSTRAP)]
    pub bootstrap: String,
    /// Output format: human-readable text, or JSON (one document, or one object per line
    /// for record streams).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable.
    Text,
    /// JSON.
    Json,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, describe, delete and change topics.
    #[command(after_help = "Example:\n  weir topic create orders --partitions 8")]
    Topic {
        /// Topic command.
        #[command(subcommand)]
        command: TopicCommand,
    },
    /// Send stdin lines as records, one per line.
    #[command(
        after_help = "Examples:\n  echo hello | weir produce orders\n  printf 'user1:clicked\\n' | weir produce orders --key-separator : --acks all --compression zstd"
    )]
    Produce(ProduceArgs),
    /// Print records of a topic to stdout.
    #[command(
        after_help = "Examples:\n  weir consume orders --from-beginning --max-messages 10\n  weir --output json consume orders --partition 0 --offset 42 --timeout-ms 1000"
    )]
    Consume(ConsumeArgs),
    /// List, describe and delete consumer groups; reset their committed offsets.
    #[command(
        after_help = "Examples:\n  weir group list\n  weir --output json group describe billing\n  weir group reset-offsets billing --topic orders --to-earliest --execute"
    )]
    Group {
        /// Group command.
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Describe the cluster: the metadata quorum (controller, term, voters and their lag)
    /// and the registered brokers.
    #[command(
        after_help = "Examples:\n  weir cluster describe\n  weir --output json cluster describe"
    )]
    Cluster {
        /// Cluster command.
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Move partitions to new replica sets, follow and cancel the moves.
    #[command(
        after_help = "Examples:\n  weir partition reassign --topic orders --partition 0 --replicas 2,3,4\n  weir partition reassign --plan moves.json --throttle 10000000\n  weir partition reassign --status --plan moves.json\n  weir partition reassign --cancel --topic orders --partition 0"
    )]
    Partition {
        /// Partition command.
        #[command(subcommand)]
        command: PartitionCommand,
    },
    /// Show and redrive records parked in a dead-letter topic (`<topic>.dlq`).
    #[command(
        after_help = "Examples:\n  weir dlq list orders\n  weir dlq redrive orders --max 100"
    )]
    Dlq {
        /// Dead-letter command.
        #[command(subcommand)]
        command: DlqCommand,
    },
}

/// Partition commands.
#[derive(Debug, Subcommand)]
pub enum PartitionCommand {
    /// Start, follow or cancel replica moves. A plan file is JSON in
    /// `kafka-reassign-partitions`' shape:
    /// {"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[2,3,4]}]}
    #[command(
        after_help = "Examples:\n  weir partition reassign --topic orders --partition 0 --replicas 2,3,4\n  weir partition reassign --plan moves.json --throttle 10000000\n  weir partition reassign --status\n  weir partition reassign --cancel --topic orders --partition 0"
    )]
    Reassign(ReassignArgs),
}

/// `weir partition reassign`.
#[derive(Debug, Args)]
pub struct ReassignArgs {
    /// Topic of a single partition to move (with --partition and --replicas).
    #[arg(long)]
    pub topic: Option<String>,
    /// Partition index (with --topic).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Target broker ids, preferred leader first (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub replicas: Vec<i32>,
    /// A JSON plan of many moves instead of --topic/--partition/--replicas.
    #[arg(long, conflicts_with_all = ["partition", "replicas"])]
    pub plan: Option<std::path::PathBuf>,
    /// Most bytes/s each added replica fetches until its topic's moves complete.
    #[arg(long)]
    pub throttle: Option<u64>,
    /// Print the moves in progress (of the plan's or --topic's partitions when given; of
    /// every topic otherwise) instead of starting any.
    #[arg(long, conflicts_with_all = ["cancel", "throttle"])]
    pub status: bool,
    /// Cancel the running moves of the plan's partitions or of --topic/--partition: each
    /// reverts to the replicas it started from.
    #[arg(long, conflicts_with_all = ["replicas", "throttle"])]
    pub cancel: bool,
}

/// Cluster commands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The metadata quorum and the registered brokers, as the active controller sees them.
    #[command(
        after_help = "Examples:\n  weir cluster describe\n  weir --bootstrap 127.0.0.1:9192,127.0.0.1:9292 --output json cluster describe"
    )]
    Describe,
}

/// Dead-letter commands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Records parked for TOPIC and not redriven yet, with why and from where.
    #[command(after_help = "Example:\n  weir --output json dlq list orders")]
    List(DlqArgs),
    /// Re-produce parked records to their original topics; progress is committed only
    /// after they are acknowledged, so a second redrive does not repeat the first.
    #[command(after_help = "Example:\n  weir dlq redrive orders --max 100")]
    Redrive(DlqArgs),
}

/// `dlq list` / `dlq redrive`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    /// The original topic (its dead-letter topic is TOPIC.dlq).
    pub topic: String,
    /// Use this dead-letter topic instead of TOPIC.dlq.
    #[arg(long)]
    pub dlq_topic: Option<String>,
    /// At most this many records.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max: u64,
}

/// Group commands.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List groups with their state.
    #[command(after_help = "Example:\n  weir --output json group list")]
    List,
    /// Show state, members with their partitions, and committed offsets with lag.
    #[command(after_help = "Example:\n  weir --output json group describe billing")]
    Describe {
        /// Group id.
        group: String,
    },
    /// Delete a group that has no members, with its committed offsets.
    #[command(after_help = "Example:\n  weir group delete billing")]
    Delete {
        /// Group id.
        group: String,
    },
    /// Plan (default) or apply (--execute) new committed offsets for a group without members.
    #[command(
        after_help = "Examples:\n  weir group reset-offsets billing --topic orders --to-datetime 2026-01-02T03:04:05Z\n  weir group reset-offsets billing --topic orders --partition 0 --shift-by -10 --execute"
    )]
    ResetOffsets(ResetOffsetsArgs),
}

/// `group reset-offsets`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])))]
pub struct ResetOffsetsArgs {
    /// Group id.
    pub group: String,
    /// Topic whose offsets to reset.
    #[arg(long)]
    pub topic: String,
    /// Only this partition (default: all).
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// To the log start.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the log end.
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset (clamped to the partition's range).
    #[arg(long)]
    pub to_offset: Option<i64>,
    /// To the first record at or after this time (RFC 3339, e.g. 2026-01-02T03:04:05Z).
    #[arg(long)]
    pub to_datetime: Option<String>,
    /// Move the committed offset by N (negative: back), clamped.
    #[arg(long, allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Apply the plan (otherwise only print it).
    #[arg(long)]
    pub execute: bool,
}

/// Topic commands.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    #[command(
        after_help = "Example:\n  weir topic create orders --partitions 8 --config retention.ms=86400000"
    )]
    Create(CreateArgs),
    /// List topic names.
    #[command(after_help = "Example:\n  weir topic list --output json")]
    List,
    /// Show partitions (leader, replicas, ISR, offsets) and configs of a topic.
    #[command(after_help = "Example:\n  weir --output json topic describe orders")]
    Describe {
        /// Topic name.
        name: String,
    },
    /// Delete a topic and all its records.
    #[command(after_help = "Example:\n  weir topic delete orders")]
    Delete {
        /// Topic name.
        name: String,
    },
    /// Grow a topic to a new total partition count.
    #[command(after_help = "Example:\n  weir topic add-partitions orders --total 16")]
    AddPartitions {
        /// Topic name.
        name: String,
        /// New total number of partitions (must exceed the current count).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        total: i32,
    },
    /// Set or reset topic configs.
    #[command(
        after_help = "Example:\n  weir topic alter-config orders --set retention.ms=3600000 --delete cleanup.policy"
    )]
    AlterConfig(AlterConfigArgs),
}

/// `topic create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Topic name.
    pub name: String,
    /// Number of partitions (default: the broker's default_partitions).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: Option<i32>,
    /// Replication factor (default: the broker's).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: Option<i32>,
    /// Topic config override KEY=VALUE (repeatable).
    #[arg(long = "config", value_parser = parse_key_value)]
    pub configs: Vec<(String, String)>,
}

/// `topic alter-config`.
#[derive(Debug, Args)]
pub struct AlterConfigArgs {
    /// Topic name.
    pub name: String,
    /// KEY=VALUE to set (repeatable).
    #[arg(long = "set", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
    /// KEY to reset to the broker default (repeatable).
    #[arg(long = "delete")]
    pub delete: Vec<String>,
}

/// `produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic to write to.
    pub topic: String,
    /// Text before the first occurrence of SEP is the key, the rest the value.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// An empty value becomes a null value (a tombstone on compacted topics).
    #[arg(long)]
    pub empty_as_null: bool,
    /// Write every record to this partition instead of using the partitioner.
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Acknowledgements: 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    pub acks: Acks,
    /// Compression: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = parse_codec)]
    pub compression: Compression,
    /// Header KEY=VALUE added to every record (repeatable).
    #[arg(long = "header", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Give up on a record not acknowledged within this long, retries included
    /// (default: the producer's, 120000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub delivery_timeout_ms: Option<u64>,
    /// Wait this long for each broker response before retrying (default: the client's,
    /// 30000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: Option<u64>,
}

/// `consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic to read.
    pub topic: String,
    /// Read only this partition (default: all).
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Start at the oldest record (default: only new records).
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Start at this offset (in every selected partition).
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    pub offset: Option<i64>,
    /// Stop after this many records.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_messages: Option<u64>,
    /// Stop after this many milliseconds without new records (default: never). With
    /// --group the clock restarts whenever the group hands this consumer partitions.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: Option<u64>,
    /// Consume as a member of this group: partitions come from the coordinator, reading
    /// resumes at committed offsets, and what is printed is committed. With --group,
    /// --from-beginning applies only to partitions without a committed offset.
    #[arg(long, conflicts_with_all = ["partition", "offset"])]
    pub group: Option<String>,
    /// With --group: the coordinator drops this consumer after this long without a
    /// heartbeat (e.g. after kill -9), moving its partitions to the others.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub session_timeout_ms: u64,
}

/// Parses `KEY=VALUE`; the key must not be empty.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn parse_acks(s: &str) -> Result<Acks, String> {
    Acks::parse(s).ok_or_else(|| format!("expected 0, 1 or all, got {s:?}"))
}

fn parse_codec(s: &str) -> Result<Compression, String> {
    parse_compression(s)
        .ok_or_else(|| format!("expected none, gzip, snappy, lz4 or zstd, got {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("weir").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_before_or_after_the_subcommand() {
        let a = parse(&["--bootstrap", "h:1", "--output", "json", "topic", "list"]);
        let b = parse(&["topic", "list", "--bootstrap", "h:1", "--output", "json"]);
        for cli in [a, b] {
            let cli = cli.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(cli.bootstrap, "h:1");
            assert_eq!(cli.output, OutputFormat::Json);
        }
    }

    #[test]
    fn produce_flags() {
        let cli = parse(&[
            "produce",
            "t",
            "--key-separator",
            ":",
            "--empty-as-null",
            "--partition",
            "3",
            "--acks",
            "1",
            "--compression",
            "zstd",
            "--header",
            "a=b",
            "--header",
            "c=",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let Command::Produce(p) = cli.command else {
            panic!("not produce")
        };
        assert_eq!(p.key_separator.as_deref(), Some(":"));
        assert!(p.empty_as_null);
        assert_eq!(p.partition, Some(3));
        assert_eq!(p.acks, Acks::Leader);
        assert_eq!(p.compression, Compression::Zstd);
        assert_eq!(
            p.headers,
            vec![("a".into(), "b".into()), ("c".into(), String::new())]
        );
    }

    #[test]
    fn bad_arguments_are_rejected() {
        assert!(parse(&["produce", "t", "--acks", "2"]).is_err());
        assert!(parse(&["produce", "t", "--compression", "brotli"]).is_err());
        assert!(parse(&["produce", "t", "--header", "novalue"]).is_err());
        assert!(parse(&["consume", "t", "--from-beginning", "--offset", "3"]).is_err());
        assert!(
            parse(&["topic", "create", "t"]).is_ok(),
            "--partitions defaults to the broker's"
        );
        assert!(parse(&["topic", "create", "t", "--partitions", "0"]).is_err());
        assert!(parse(&["--output", "yaml", "topic", "list"]).is_err());
        assert!(parse(&["frobnicate"]).is_err());
    }

    #[test]
    fn every_command_has_an_example_in_its_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            if !(help.contains("Example") && help.contains("weir ")) {
                missing.push(path.clone());
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    }

    #[test]
    fn key_value_parsing() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_key_value("=x").is_err());
    }
}
