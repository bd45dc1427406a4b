//! Raft traffic between brokers: on the controller listener, each message is a u32
//! big-endian length then one protobuf `RaftRequest`/`RaftResponse`, like the native
//! protocol. A connection carries one request at a time (openraft runs one replication
//! stream per peer); votes open their own connection.
//!
//! Every call has a deadline (openraft's `hard_ttl`): a peer that never answers must not
//! stall Raft (openraft#1810). Failures are reported as `Unreachable`, so openraft backs
//! off instead of retrying at once.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, ReplicationClosed,
    StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode, Snapshot, Vote};
use prost::Message;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use weir_protocol::native::raft as pb;

use super::codec::{
    entry_from_pb, entry_to_pb, opt_log_id_from_pb, opt_log_id_to_pb, req_vote,
    stored_membership_from_pb, stored_membership_to_pb, vote_from_pb, vote_to_pb, CodecError,
};
use super::heartbeats::{Beat, Heartbeats};
use super::{NodeId, Raft, TypeConfig};

/// Largest Raft frame (a whole snapshot travels in one).
const MAX_FRAME_BYTES: usize = 256 << 20;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec()
}

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Could not connect, send or receive in time.
    #[error("raft peer {addr}: {reason}")]
    Io {
        /// The peer's controller address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The peer answered with an error.
    #[error("raft peer {addr} refused: {reason}")]
    Refused {
        /// The peer's controller address.
        addr: String,
        /// Its message.
        reason: String,
    },
    /// The answer did not decode or did not match the request.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Makes peer clients; connects nothing until the first call.
#[derive(Debug, Clone, Default)]
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            conn: None,
        }
    }
}

/// One peer, with its connection once made.
#[derive(Debug)]
pub struct Peer {
    target: NodeId,
    addr: String,
    conn: Option<Framed<TcpStream, LengthDelimitedCodec>>,
}

impl Peer {
    async fn call(
        &mut self,
        body: pb::raft_request::Body,
        ttl: Duration,
    ) -> Result<pb::raft_response::Body, PeerError> {
        let req = pb::RaftRequest {
            target: self.target,
            body: Some(body),
        };
        let r = tokio::time::timeout(ttl, self.round_trip(req)).await;
        let resp = match r {
            Ok(Ok(resp)) => resp,
            Ok(Err(reason)) => {
                self.conn = None;
                return Err(PeerError::Io {
                    addr: self.addr.clone(),
                    reason,
                });
            }
            Err(_) => {
                // The answer may still come on this connection: never reuse it.
                self.conn = None;
                return Err(PeerError::Io {
                    addr: self.addr.clone(),
                    reason: format!("no answer within {ttl:?}"),
                });
            }
        };
        if !resp.error.is_empty() {
            return Err(PeerError::Refused {
                addr: self.addr.clone(),
                reason: resp.error,
            });
        }
        resp.body
            .ok_or(PeerError::Codec(CodecError("response without body")))
    }

    async fn round_trip(&mut self, req: pb::RaftRequest) -> Result<pb::RaftResponse, String> {
        if self.conn.is_none() {
            let stream = tokio::time::timeout(
                CONNECT_TIMEOUT,
                TcpStream::connect(crate::dial::target(&self.addr)),
            )
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            self.conn = Some(Framed::new(stream, codec()));
        }
        let conn = self.conn.as_mut().ok_or("no connection")?;
        conn.send(bytes::Bytes::from(req.encode_to_vec()))
            .await
            .map_err(|e| format!("send: {e}"))?;
        let frame = conn
            .next()
            .await
            .ok_or("closed by the peer")?
            .map_err(|e| format!("receive: {e}"))?;
        pb::RaftResponse::decode(frame.freeze()).map_err(|e| format!("bad response: {e}"))
    }
}

fn unreachable<E: std::error::Error>(e: PeerError) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&AnyError::error(e.to_string())))
}

fn mismatch() -> PeerError {
    PeerError::Codec(CodecError("response type does not match the request"))
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let body = pb::raft_request::Body::AppendEntries(pb::AppendEntriesRequest {
            vote: Some(vote_to_pb(&rpc.vote)),
            prev_log_id: opt_log_id_to_pb(&rpc.prev_log_id),
            entries: rpc.entries.iter().map(entry_to_pb).collect(),
            leader_commit: opt_log_id_to_pb(&rpc.leader_commit),
        });
        let resp = self
            .call(body, option.hard_ttl())
            .await
            .map_err(unreachable)?;
        let pb::raft_response::Body::AppendEntries(r) = resp else {
            return Err(unreachable(mismatch()));
        };
        use pb::append_entries_response::Result as R;
        match r.result {
            Some(R::Success(_)) => Ok(AppendEntriesResponse::Success),
            Some(R::PartialSuccess(p)) => Ok(AppendEntriesResponse::PartialSuccess(
                opt_log_id_from_pb(&p.matching),
            )),
            Some(R::Conflict(_)) => Ok(AppendEntriesResponse::Conflict),
            Some(R::HigherVote(v)) => Ok(AppendEntriesResponse::HigherVote(vote_from_pb(&v))),
            None => Err(unreachable(PeerError::Codec(CodecError(
                "append result missing",
            )))),
        }
    }

    /// Not used: [`full_snapshot`](Self::full_snapshot) sends the whole snapshot in one frame.
    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(RPCError::Network(NetworkError::new(&AnyError::error(
            "chunked snapshots are not used: full_snapshot sends one frame",
        ))))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let body = pb::raft_request::Body::Vote(pb::VoteRequest {
            vote: Some(vote_to_pb(&rpc.vote)),
            last_log_id: opt_log_id_to_pb(&rpc.last_log_id),
        });
        let resp = self
            .call(body, option.hard_ttl())
            .await
            .map_err(unreachable)?;
        let pb::raft_response::Body::Vote(r) = resp else {
            return Err(unreachable(mismatch()));
        };
        Ok(VoteResponse {
            vote: req_vote(&r.vote).map_err(|e| unreachable(e.into()))?,
            vote_granted: r.vote_granted,
            last_log_id: opt_log_id_from_pb(&r.last_log_id),
        })
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl std::future::Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let (membership_log_id, membership) =
            stored_membership_to_pb(&snapshot.meta.last_membership);
        // The data is a whole encoded pb::Snapshot; resend it with the meta it belongs to.
        let mut msg =
            pb::Snapshot::decode(snapshot.snapshot.into_inner().as_slice()).map_err(|e| {
                StreamingError::Unreachable(Unreachable::new(&AnyError::error(e.to_string())))
            })?;
        msg.last_log_id = opt_log_id_to_pb(&snapshot.meta.last_log_id);
        msg.membership_log_id = membership_log_id;
        msg.membership = Some(membership);
        msg.snapshot_id = snapshot.meta.snapshot_id.clone();
        let body = pb::raft_request::Body::Snapshot(pb::SnapshotRequest {
            vote: Some(vote_to_pb(&vote)),
            snapshot: Some(msg),
        });
        let ttl = option.hard_ttl().max(Duration::from_secs(10));
        let resp = tokio::select! {
            r = self.call(body, ttl) => r,
            closed = cancel => return Err(StreamingError::Closed(closed)),
        };
        let to_err = |e: PeerError| {
            StreamingError::Unreachable(Unreachable::new(&AnyError::error(e.to_string())))
        };
        let resp = resp.map_err(to_err)?;
        let pb::raft_response::Body::Snapshot(r) = resp else {
            return Err(to_err(mismatch()));
        };
        Ok(SnapshotResponse {
            vote: req_vote(&r.vote).map_err(|e| to_err(e.into()))?,
        })
    }
}

/// Serves Raft RPCs for `raft` (node `me`) until `shutdown` fires; broker heartbeats are
/// recorded in `beats`.
pub async fn serve(
    listener: TcpListener,
    raft: Raft,
    me: NodeId,
    beats: Heartbeats,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(
                    stream,
                    raft.clone(),
                    me,
                    beats.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "controller listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    raft: Raft,
    me: NodeId,
    beats: Heartbeats,
    shutdown: CancellationToken,
) {
    let mut framed = Framed::new(stream, codec());
    loop {
        let frame = tokio::select! {
            f = framed.next() => f,
            _ = shutdown.cancelled() => return,
        };
        let Some(Ok(frame)) = frame else { return };
        // A frame that is not a Raft request closes the connection: the peer is not a broker.
        let Ok(req) = pb::RaftRequest::decode(frame.freeze()) else {
            tracing::warn!("undecodable frame on the controller listener; closing");
            return;
        };
        let resp = match handle(&raft, me, &beats, req).await {
            Ok(body) => pb::RaftResponse {
                error: String::new(),
                body: Some(body),
            },
            Err(error) => pb::RaftResponse { error, body: None },
        };
        if framed
            .send(bytes::Bytes::from(resp.encode_to_vec()))
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn handle(
    raft: &Raft,
    me: NodeId,
    beats: &Heartbeats,
    req: pb::RaftRequest,
) -> Result<pb::raft_response::Body, String> {
    if req.target != me {
        return Err(format!(
            "this is node {me}, not node {}: check the voter list",
            req.target
        ));
    }
    use pb::raft_request::Body as Req;
    use pb::raft_response::Body as Resp;
    match req.body {
        Some(Req::AppendEntries(r)) => {
            let entries = r
                .entries
                .iter()
                .map(entry_from_pb)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let rpc = AppendEntriesRequest {
                vote: req_vote(&r.vote).map_err(|e| e.to_string())?,
                prev_log_id: opt_log_id_from_pb(&r.prev_log_id),
                entries,
                leader_commit: opt_log_id_from_pb(&r.leader_commit),
            };
            let resp = raft.append_entries(rpc).await.map_err(|e| e.to_string())?;
            use pb::append_entries_response::Result as R;
            let result = match resp {
                AppendEntriesResponse::Success => R::Success(true),
                AppendEntriesResponse::PartialSuccess(m) => R::PartialSuccess(pb::PartialSuccess {
                    matching: opt_log_id_to_pb(&m),
                }),
                AppendEntriesResponse::Conflict => R::Conflict(true),
                AppendEntriesResponse::HigherVote(v) => R::HigherVote(vote_to_pb(&v)),
            };
            Ok(Resp::AppendEntries(pb::AppendEntriesResponse {
                result: Some(result),
            }))
        }
        Some(Req::Vote(r)) => {
            let rpc = VoteRequest {
                vote: req_vote(&r.vote).map_err(|e| e.to_string())?,
                last_log_id: opt_log_id_from_pb(&r.last_log_id),
            };
            let resp = raft.vote(rpc).await.map_err(|e| e.to_string())?;
            Ok(Resp::Vote(pb::VoteResponse {
                vote: Some(vote_to_pb(&resp.vote)),
                vote_granted: resp.vote_granted,
                last_log_id: opt_log_id_to_pb(&resp.last_log_id),
            }))
        }
        Some(Req::Snapshot(r)) => {
            let vote = req_vote(&r.vote).map_err(|e| e.to_string())?;
            let s = r.snapshot.ok_or("snapshot missing")?;
            let meta = openraft::SnapshotMeta {
                last_log_id: opt_log_id_from_pb(&s.last_log_id),
                last_membership: stored_membership_from_pb(&s.membership_log_id, &s.membership),
                snapshot_id: s.snapshot_id.clone(),
            };
            let snapshot = Snapshot {
                meta,
                snapshot: Box::new(std::io::Cursor::new(s.encode_to_vec())),
            };
            let resp = raft
                .install_full_snapshot(vote, snapshot)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Resp::Snapshot(pb::SnapshotResponse {
                vote: Some(vote_to_pb(&resp.vote)),
            }))
        }
        Some(Req::Forward(f)) => {
            let batch = f.batch.ok_or("forward without a batch")?;
            match raft.client_write(batch).await {
                Ok(r) => Ok(Resp::Forward(pb::ForwardResponse {
                    log_index: r.log_id.index,
                })),
                Err(e) => Err(format!("not committed here: {e}")),
            }
        }
        Some(Req::BrokerHeartbeat(h)) => {
            // Only the leader's record counts (it makes the fencing decisions).
            // Clone and drop the borrow at once: holding it blocks openraft's core.
            let m = raft.metrics().borrow().clone();
            if m.current_leader != Some(me) {
                return Err("not the quorum leader".into());
            }
            let applied_index = m.last_applied.map_or(0, |l| l.index);
            if h.probe {
                return Ok(Resp::BrokerHeartbeat(pb::BrokerHeartbeatResponse {
                    applied_index,
                }));
            }
            beats.record(
                h.broker_id,
                Beat {
                    incarnation: h.incarnation,
                    at_ms: crate::clock::now_ms(),
                    shutting_down: h.shutting_down,
                },
            );
            Ok(Resp::BrokerHeartbeat(pb::BrokerHeartbeatResponse {
                applied_index,
            }))
        }
        None => Err("request without body".into()),
    }
}

/// Sends a heartbeat of `broker` to the quorum leader `leader` at `addr`; returns the
/// leader's applied metadata index.
pub async fn heartbeat(
    leader: NodeId,
    addr: &str,
    beat: pb::BrokerHeartbeatRequest,
    ttl: Duration,
) -> Result<u64, PeerError> {
    let mut peer = Peer {
        target: leader,
        addr: addr.to_string(),
        conn: None,
    };
    match peer
        .call(pb::raft_request::Body::BrokerHeartbeat(beat), ttl)
        .await?
    {
        pb::raft_response::Body::BrokerHeartbeat(r) => Ok(r.applied_index),
        _ => Err(mismatch()),
    }
}

/// Asks node `leader` at `addr` to propose `batch`; returns once it is committed there.
pub async fn forward(
    leader: NodeId,
    addr: &str,
    batch: super::MetadataBatch,
    ttl: Duration,
) -> Result<u64, PeerError> {
    let mut peer = Peer {
        target: leader,
        addr: addr.to_string(),
        conn: None,
    };
    let body = pb::raft_request::Body::Forward(pb::ForwardRequest { batch: Some(batch) });
    match peer.call(body, ttl).await? {
        pb::raft_response::Body::Forward(r) => Ok(r.log_index),
        _ => Err(mismatch()),
    }
}
