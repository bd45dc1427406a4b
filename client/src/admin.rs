//! `Admin`: topics, partitions, configs, offsets and record deletion.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use weir_protocol::native::v1::{
    AlterConfigOp, AlterConfigsRequest, AlterConfigsResource, AlterableConfig, ConfigEntry,
    CreatableTopic, CreatePartitionsRequest, CreatePartitionsTopic, CreateTopicsRequest,
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic, DeleteTopicsRequest,
    DescribeConfigsRequest, DescribeConfigsResource, ListOffsetsPartition, ListOffsetsRequest,
    ListOffsetsTopic, PartitionMetadata, ResourceType,
};

use crate::client::Client;
use crate::config::ClientConfig;
use crate::error::{Error, Result};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partitions; -1 = broker default.
    pub partitions: i32,
    /// Replication factor; -1 = broker default.
    pub replication_factor: i32,
    /// Topic config overrides (`retention.ms`, ...).
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// `name` with `partitions` partitions, the broker's default replication factor and
    /// no config overrides.
    ///
    /// ```
    /// use weir_client::admin::NewTopic;
    /// let t = NewTopic::new("orders", 6).config("retention.ms", "86400000");
    /// assert_eq!(t.partitions, 6);
    /// ```
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }

    /// `name` with the broker's default partition count (`default_partitions`).
    pub fn with_default_partitions(name: impl Into<String>) -> Self {
        Self::new(name, -1)
    }

    /// Sets the replication factor.
    pub fn replication_factor(mut self, factor: i32) -> Self {
        self.replication_factor = factor;
        self
    }

    /// Adds a topic config override (`retention.ms`, `cleanup.policy`, ...).
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// A topic the broker created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// Name.
    pub name: String,
    /// Partition count (the broker's default when none was asked for).
    pub partitions: i32,
}

/// One partition of a described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// Partition index.
    pub partition: i32,
    /// Leader node, -1 if none.
    pub leader: i32,
    /// Replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// First offset still in the log; -1 if the broker could not tell.
    pub log_start_offset: i64,
    /// Next offset to be written (can be ahead of the high watermark); -1 if unknown.
    pub log_end_offset: i64,
    /// High watermark; -1 if unknown.
    pub high_watermark: i64,
    /// Bytes of record batches on disk; `None` if the broker could not tell.
    pub size_bytes: Option<u64>,
}

/// A described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Name.
    pub name: String,
    /// Partitions in index order.
    pub partitions: Vec<PartitionDescription>,
    /// Effective configs (key → value; null values omitted).
    pub configs: BTreeMap<String, String>,
}

/// Which offset ListOffsets should find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// Log start.
    Earliest,
    /// Log end (high watermark).
    Latest,
    /// First offset with timestamp >= ms.
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// Administrative operations.
pub struct Admin {
    client: Arc<Client>,
}

impl Admin {
    /// An admin for `config`.
    pub fn new(config: ClientConfig) -> Result<Admin> {
        Ok(Admin {
            client: Client::new(config)?,
        })
    }

    /// An admin over an existing client.
    pub fn with_client(client: Arc<Client>) -> Admin {
        Admin { client }
    }

    /// The client.
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.client.config().request_timeout.as_millis()).unwrap_or(i32::MAX)
    }

    /// Creates a topic; returns what the broker created (the partition count it chose
    /// when [`NewTopic::partitions`] was -1).
    ///
    /// Cancellation safety: dropping the call may or may not leave the topic created.
    ///
    /// ```no_run
    /// # async fn demo() -> weir_client::Result<()> {
    /// use weir_client::admin::NewTopic;
    /// use weir_client::{Admin, ClientConfig};
    /// let admin = Admin::new(ClientConfig::new("127.0.0.1:9292"))?;
    /// let created = admin
    ///     .create_topic(NewTopic::new("orders", 6).config("retention.ms", "604800000"))
    ///     .await?;
    /// assert_eq!(created.partitions, 6);
    /// println!("{:?}", admin.describe_topic("orders").await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_topic(&self, topic: NewTopic) -> Result<CreatedTopic> {
        let name = topic.name.clone();
        let r = self
            .client
            .request_controller(CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: topic.name,
                    num_partitions: topic.partitions,
                    replication_factor: topic.replication_factor,
                    configs: topic
                        .configs
                        .into_iter()
                        .map(|(name, value)| ConfigEntry { name, value })
                        .collect(),
                }],
                timeout_ms: self.timeout_ms(),
                validate_only: false,
            })
            .await?;
        let t = r
            .topics
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| missing(&name))?;
        Error::check(
            t.error_code,
            || format!("create topic '{name}'"),
            &t.error_message,
        )?;
        self.client.invalidate(&name);
        Ok(CreatedTopic {
            name,
            partitions: t.num_partitions,
        })
    }

    /// Deletes a topic and its data.
    ///
    /// Cancellation safety: safe to drop, but the broker may or may not have applied the change.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let r = self
            .client
            .request_controller(DeleteTopicsRequest {
                topic_names: vec![name.to_owned()],
                timeout_ms: self.timeout_ms(),
            })
            .await?;
        let t = r
            .responses
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| missing(name))?;
        Error::check(
            t.error_code,
            || format!("delete topic '{name}'"),
            &t.error_message,
        )?;
        self.client.invalidate(name);
        Ok(())
    }

    /// Names of every topic, sorted.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        let view = self.client.refresh_all().await?;
        let mut names: Vec<String> = view.topics.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    /// Grows `name` to `total` partitions.
    ///
    /// Cancellation safety: safe to drop, but the broker may or may not have applied the change.
    pub async fn add_partitions(&self, name: &str, total: i32) -> Result<()> {
        let r = self
            .client
            .request_controller(CreatePartitionsRequest {
                topics: vec![CreatePartitionsTopic {
                    name: name.to_owned(),
                    count: total,
                }],
                timeout_ms: self.timeout_ms(),
                validate_only: false,
            })
            .await?;
        let t = r
            .results
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| missing(name))?;
        Error::check(
            t.error_code,
            || format!("add partitions to '{name}'"),
            &t.error_message,
        )?;
        self.client.invalidate(name);
        Ok(())
    }

    /// Effective configs of a topic (key → value; keys without a value are left out).
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn describe_configs(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let r = self
            .client
            .request_any(DescribeConfigsRequest {
                resources: vec![DescribeConfigsResource {
                    resource_type: ResourceType::Topic as i32,
                    resource_name: name.to_owned(),
                    configuration_keys: Vec::new(),
                }],
            })
            .await?;
        let res = r
            .results
            .into_iter()
            .find(|x| x.resource_name == name)
            .ok_or_else(|| missing(name))?;
        Error::check(
            res.error_code,
            || format!("describe configs of '{name}'"),
            &res.error_message,
        )?;
        Ok(res
            .configs
            .into_iter()
            .filter_map(|c| c.value.map(|v| (c.name, v)))
            .collect())
    }

    /// Sets and deletes (back to default) topic config keys.
    ///
    /// Cancellation safety: safe to drop, but the broker may or may not have applied the change.
    pub async fn alter_configs(
        &self,
        name: &str,
        set: &[(String, String)],
        delete: &[String],
    ) -> Result<()> {
        let mut configs: Vec<AlterableConfig> = set
            .iter()
            .map(|(k, v)| AlterableConfig {
                name: k.clone(),
                op: AlterConfigOp::Set as i32,
                value: v.clone(),
            })
            .collect();
        configs.extend(delete.iter().map(|k| AlterableConfig {
            name: k.clone(),
            op: AlterConfigOp::Delete as i32,
            value: String::new(),
        }));
        let r = self
            .client
            .request_controller(AlterConfigsRequest {
                resources: vec![AlterConfigsResource {
                    resource_type: ResourceType::Topic as i32,
                    resource_name: name.to_owned(),
                    configs,
                }],
                validate_only: false,
            })
            .await?;
        let res = r
            .responses
            .into_iter()
            .find(|x| x.resource_name == name)
            .ok_or_else(|| missing(name))?;
        Error::check(
            res.error_code,
            || format!("alter configs of '{name}'"),
            &res.error_message,
        )
    }

    /// Offsets of `partitions` of `topic` (all partitions when empty) per `spec`.
    /// An offset of -1 means "no such record" (a timestamp past the last record).
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<i32, i64>> {
        let meta = self.client.topic(topic).await?;
        let parts: Vec<i32> = if partitions.is_empty() {
            (0..meta.partition_count()).collect()
        } else {
            partitions.to_vec()
        };
        let mut by_leader: HashMap<i32, Vec<i32>> = HashMap::new();
        for p in parts {
            let leader = meta.leader(p).ok_or_else(|| Error::NoLeader {
                topic: topic.to_owned(),
                partition: p,
            })?;
            by_leader.entry(leader).or_default().push(p);
        }
        let mut out = BTreeMap::new();
        for (leader, parts) in by_leader {
            let conn = self.client.node_connection(leader).await?;
            let request = ListOffsetsRequest {
                isolation_level: 0,
                topics: vec![ListOffsetsTopic {
                    name: topic.to_owned(),
                    partitions: parts
                        .iter()
                        .map(|p| ListOffsetsPartition {
                            partition_index: *p,
                            current_leader_epoch: None,
                            timestamp: spec.wire(),
                        })
                        .collect(),
                }],
            };
            let r = conn
                .request(request, self.client.config().request_timeout)
                .await?;
            for t in r.topics {
                for p in t.partitions {
                    Error::check(
                        p.error_code,
                        || format!("list offsets {topic}-{}", p.partition_index),
                        "",
                    )?;
                    out.insert(p.partition_index, p.offset);
                }
            }
        }
        Ok(out)
    }

    /// Deletes records before the given offsets (-1 = high watermark); returns the new
    /// log start offset per partition.
    ///
    /// Cancellation safety: safe to drop, but the broker may or may not have applied the change.
    pub async fn delete_records(
        &self,
        topic: &str,
        before: &[(i32, i64)],
    ) -> Result<BTreeMap<i32, i64>> {
        let meta = self.client.topic(topic).await?;
        let mut by_leader: HashMap<i32, Vec<(i32, i64)>> = HashMap::new();
        for &(p, o) in before {
            let leader = meta.leader(p).ok_or_else(|| Error::NoLeader {
                topic: topic.to_owned(),
                partition: p,
            })?;
            by_leader.entry(leader).or_default().push((p, o));
        }
        let mut out = BTreeMap::new();
        for (leader, parts) in by_leader {
            let conn = self.client.node_connection(leader).await?;
            let request = DeleteRecordsRequest {
                topics: vec![DeleteRecordsTopic {
                    name: topic.to_owned(),
                    partitions: parts
                        .iter()
                        .map(|&(partition_index, offset)| DeleteRecordsPartition {
                            partition_index,
                            offset,
                        })
                        .collect(),
                }],
                timeout_ms: self.timeout_ms(),
            };
            let r = conn
                .request(request, self.client.config().request_timeout)
                .await?;
            for t in r.topics {
                for p in t.partitions {
                    Error::check(
                        p.error_code,
                        || format!("delete records {topic}-{}", p.partition_index),
                        "",
                    )?;
                    out.insert(p.partition_index, p.low_watermark);
                }
            }
        }
        Ok(out)
    }

    /// Partitions with leaders, replicas, ISR, log offsets and sizes (one metadata
    /// snapshot), plus the topic's configs.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let (view, response) = self
            .client
            .refresh_metadata_with_response(&[name.to_owned()])
            .await?;
        let meta = view
            .topics
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic(name.to_owned()))?;
        let logs: HashMap<i32, &PartitionMetadata> = response
            .topics
            .iter()
            .filter(|t| t.name == name)
            .flat_map(|t| &t.partitions)
            .map(|p| (p.partition_index, p))
            .collect();
        let configs = self.describe_configs(name).await?;
        let partitions = meta
            .partitions
            .iter()
            .map(|p| {
                let log = logs.get(&p.partition);
                let offset =
                    |f: fn(&PartitionMetadata) -> Option<i64>| log.and_then(|l| f(l)).unwrap_or(-1);
                PartitionDescription {
                    partition: p.partition,
                    leader: p.leader,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    log_start_offset: offset(|l| l.log_start_offset),
                    log_end_offset: offset(|l| l.log_end_offset),
                    high_watermark: offset(|l| l.high_watermark),
                    size_bytes: log.and_then(|l| l.size_bytes),
                }
            })
            .collect();
        Ok(TopicDescription {
            name: name.to_owned(),
            partitions,
            configs,
        })
    }
}

fn missing(name: &str) -> Error {
    Error::Protocol {
        addr: "broker".into(),
        reason: format!("response does not mention '{name}'"),
    }
}
