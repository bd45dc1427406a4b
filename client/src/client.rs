//! The shared core of producer, consumer and admin: configuration, the connection pool and
//! the metadata cache, plus helpers to send a request to "any broker" or to a leader.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use weir_protocol::native::v1::{MetadataRequest, MetadataResponse};
use weir_protocol::native::Request;
use weir_protocol::ErrorCode;

use crate::config::ClientConfig;
use crate::connection::Connection;
pub use crate::controller_answer::ControllerAnswer;
use crate::error::{Error, Result};
use crate::metadata::{ClusterView, TopicMeta};
use crate::pool::Pool;

/// Connection pool + metadata cache, shared (`Arc`) by producers, consumers and admins.
pub struct Client {
    config: Arc<ClientConfig>,
    pool: Pool,
    // std RwLock: readers clone the Arc and drop the guard at once; never held across await.
    view: RwLock<Arc<ClusterView>>,
    refresh: tokio::sync::Mutex<()>,
    /// A background refresh (`refresh_if_stale`) is under way.
    refreshing: std::sync::atomic::AtomicBool,
}

impl Client {
    /// A client for `config`; connects lazily.
    pub fn new(config: ClientConfig) -> Result<Arc<Client>> {
        if config.bootstrap_servers.is_empty() {
            return Err(Error::NoBootstrap);
        }
        let config = Arc::new(config);
        Ok(Arc::new(Client {
            pool: Pool::new(config.clone()),
            config,
            view: RwLock::new(Arc::new(ClusterView::empty())),
            refresh: tokio::sync::Mutex::new(()),
            refreshing: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The current metadata snapshot.
    pub fn view(&self) -> Arc<ClusterView> {
        match self.view.read() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn store(&self, v: ClusterView) -> Arc<ClusterView> {
        let v = Arc::new(v);
        match self.view.write() {
            Ok(mut g) => *g = v.clone(),
            Err(p) => *p.into_inner() = v.clone(),
        }
        v
    }

    /// Sends `request` to any reachable broker: known brokers first, then bootstrap servers.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn request_any<R: Request + Clone>(&self, request: R) -> Result<R::Response> {
        let view = self.view();
        let mut addrs: Vec<String> = view.brokers.values().cloned().collect();
        addrs.sort();
        for b in &self.config.bootstrap_servers {
            if !addrs.contains(b) {
                addrs.push(b.clone());
            }
        }
        // A broker that just timed out or refused a connect goes last: a paused or cut-off
        // broker would otherwise cost every metadata refresh a whole request timeout while
        // the others could answer at once (weir-chaos: a paused broker whose address sorted
        // first stalled every producer's refresh until it resumed).
        let (mut addrs, suspects): (Vec<String>, Vec<String>) =
            addrs.into_iter().partition(|a| !self.pool.is_suspect(a));
        addrs.extend(suspects);
        let mut last = Error::NoBootstrap;
        for addr in addrs {
            match self.request_addr(&addr, request.clone()).await {
                Ok(r) => return Ok(r),
                Err(e) if e.is_retriable() && e.code().is_none() => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Sends `request` to the active controller, which makes every metadata change (in a
    /// cluster, other brokers answer NOT_CONTROLLER). Learns the controller from a
    /// Metadata request first; falls back to any broker while none is known.
    ///
    /// Cancellation safety: safe; dropping it changes nothing, but a request already sent
    /// may be applied.
    pub async fn request_controller<R>(&self, request: R) -> Result<R::Response>
    where
        R: Request + Clone,
        R::Response: ControllerAnswer,
    {
        // The controller can move between the Metadata answer and the request (a
        // failover): NOT_CONTROLLER is retried against the new one, with a short backoff,
        // within the request timeout.
        let deadline = Instant::now() + self.config.request_timeout;
        let mut backoff = std::time::Duration::from_millis(50);
        loop {
            let attempt = async {
                let m = self
                    .request_any(MetadataRequest {
                        topics: Vec::new(),
                        all_topics: false,
                        allow_auto_topic_creation: false,
                    })
                    .await?;
                let controller = m
                    .brokers
                    .iter()
                    .find(|b| b.node_id == m.controller_id)
                    .map(|b| format!("{}:{}", b.host, b.port));
                match controller {
                    Some(addr) => self.request_addr(&addr, request.clone()).await,
                    None => self.request_any(request.clone()).await,
                }
            };
            let last_chance = Instant::now() + backoff >= deadline;
            match attempt.await {
                Ok(resp) if !resp.not_controller() || last_chance => return Ok(resp),
                // A dead controller refuses connections until the quorum elects another.
                Err(e) if !e.is_retriable() || last_chance => return Err(e),
                _ => {}
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
        }
    }

    /// Sends `request` to the coordinator of `group`, found with FindCoordinator (in a
    /// cluster the other brokers answer NOT_COORDINATOR). When `code_of` the answer says
    /// the coordinator moved or is still loading the group (a failover), the coordinator
    /// is found again and the request repeated, with a short backoff, within the request
    /// timeout. Only answers are repeated, never a request whose fate is unknown.
    ///
    /// Cancellation safety: safe; dropping it changes nothing, but a request already sent
    /// may be applied.
    pub async fn request_coordinator<R: Request + Clone>(
        &self,
        group: &str,
        request: R,
        code_of: impl Fn(&R::Response) -> i32,
    ) -> Result<R::Response> {
        let deadline = Instant::now() + self.config.request_timeout;
        let mut backoff = std::time::Duration::from_millis(50);
        loop {
            let found = self
                .request_any(weir_protocol::native::v1::FindCoordinatorRequest {
                    key: group.to_owned(),
                    key_type: 0,
                })
                .await?;
            let last_chance = Instant::now() + backoff >= deadline;
            let code = ErrorCode::from_i32(found.error_code);
            if code == ErrorCode::None {
                let addr = format!("{}:{}", found.host, found.port);
                let resp = self.request_addr(&addr, request.clone()).await?;
                if !coordinator_moved(ErrorCode::from_i32(code_of(&resp))) || last_chance {
                    return Ok(resp);
                }
            } else if !coordinator_moved(code) || last_chance {
                Error::check(
                    found.error_code,
                    || format!("find coordinator for {group}"),
                    &found.error_message,
                )?;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
        }
    }

    /// Sends `request` to the broker at `addr`.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn request_addr<R: Request>(&self, addr: &str, request: R) -> Result<R::Response> {
        let conn = self.pool.get(addr).await?;
        conn.request(request, self.config.request_timeout).await
    }

    /// The connection to broker `node`.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn node_connection(&self, node: i32) -> Result<Arc<Connection>> {
        let addr = match self.view().brokers.get(&node) {
            Some(a) => a.clone(),
            None => {
                self.refresh_metadata(&[]).await?;
                self.view()
                    .brokers
                    .get(&node)
                    .cloned()
                    .ok_or_else(|| Error::Protocol {
                        addr: "metadata".into(),
                        reason: format!("broker {node} is not in the broker list"),
                    })?
            }
        };
        self.pool.get(&addr).await
    }

    /// Fetches metadata for `topics` (empty = brokers only) and merges it into the cache.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn refresh_metadata(&self, topics: &[String]) -> Result<Arc<ClusterView>> {
        Ok(self.refresh_metadata_with_response(topics).await?.0)
    }

    /// [`Client::refresh_metadata`], also returning the broker's answer for the fields the
    /// cache does not keep (per-partition log offsets and size).
    pub(crate) async fn refresh_metadata_with_response(
        &self,
        topics: &[String],
    ) -> Result<(Arc<ClusterView>, MetadataResponse)> {
        let _serial = self.refresh.lock().await;
        let response = self
            .request_any(MetadataRequest {
                topics: topics.to_vec(),
                all_topics: false,
                allow_auto_topic_creation: false,
            })
            .await?;
        let next = self.view().merged(response.clone(), Instant::now());
        Ok((self.store(next), response))
    }

    /// Fetches metadata of every topic.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn refresh_all(&self) -> Result<Arc<ClusterView>> {
        let _serial = self.refresh.lock().await;
        let response = self
            .request_any(MetadataRequest {
                topics: Vec::new(),
                all_topics: true,
                allow_auto_topic_creation: false,
            })
            .await?;
        let mut next = ClusterView::empty().merged(response, Instant::now());
        next.missing.clear();
        Ok(self.store(next))
    }

    /// Topic metadata, from the cache when fresh, else from a broker.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn topic(&self, name: &str) -> Result<Arc<TopicMeta>> {
        let view = self.view();
        if let (Some(t), Some(at)) = (view.topics.get(name), view.fetched_at.get(name)) {
            if at.elapsed() < self.config.metadata_max_age {
                return Ok(t.clone());
            }
        }
        let view = self.refresh_metadata(&[name.to_owned()]).await?;
        view.topics
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic(name.to_owned()))
    }

    /// Starts a refresh of `topic` in the background when its cached metadata is older
    /// than `metadata_max_age` (one such refresh at a time). Callers go on with the cache
    /// meanwhile: a refresh that waits on a stuck broker must not hold up their sends.
    pub fn refresh_if_stale(self: &Arc<Self>, topic: &str) {
        use std::sync::atomic::Ordering;
        let fresh = self
            .view()
            .fetched_at
            .get(topic)
            .is_some_and(|at| at.elapsed() < self.config.metadata_max_age);
        if fresh || self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        let topics = vec![topic.to_owned()];
        tokio::spawn(async move {
            if let Err(e) = me.refresh_metadata(&topics).await {
                tracing::debug!(error = %e, "background metadata refresh failed");
            }
            me.refreshing.store(false, Ordering::Release);
        });
    }

    /// Cached topic metadata, without any I/O.
    pub fn cached_topic(&self, name: &str) -> Option<Arc<TopicMeta>> {
        self.view().topics.get(name).cloned()
    }

    /// Forgets `topic` so the next lookup asks a broker.
    pub fn invalidate(&self, topic: &str) {
        let mut next = (*self.view()).clone();
        next.fetched_at.remove(topic);
        self.store(next);
    }

    /// The connection to the leader of `topic`-`partition`.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn leader_connection(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(i32, Arc<Connection>)> {
        let meta = self.topic(topic).await?;
        if partition < 0 || partition >= meta.partition_count() {
            return Err(Error::UnknownPartition {
                topic: topic.to_owned(),
                partition,
                count: meta.partition_count(),
            });
        }
        let leader = meta.leader(partition).ok_or_else(|| Error::NoLeader {
            topic: topic.to_owned(),
            partition,
        })?;
        Ok((leader, self.node_connection(leader).await?))
    }
}

/// The answers that mean "ask the coordinator again": it moved, has none yet, or is still
/// loading the group after a failover.
fn coordinator_moved(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::CoordinatorLoadInProgress
    )
}
