//! `Connection` against scripted servers: correlation-id matching, failure of pending
//! requests when the connection breaks, timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;
use weir_client::connection::Connection;
use weir_client::Error;
use weir_protocol::native::v1::{
    response_envelope, ApiVersionsRequest, ApiVersionsResponse, ResponseEnvelope,
};
use weir_protocol::native::ServerCodec;

async fn server() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

fn reply(correlation_id: i32) -> ResponseEnvelope {
    ResponseEnvelope {
        correlation_id,
        error_code: 0,
        error_message: String::new(),
        body: Some(response_envelope::Body::ApiVersions(ApiVersionsResponse {
            error_code: 0,
            api_keys: Vec::new(),
            // Echo, so the client can check it got its own response.
            throttle_time_ms: correlation_id,
        })),
    }
}

async fn connect(addr: &str) -> Connection {
    Connection::connect(addr, "test", Duration::from_secs(5), 1 << 20)
        .await
        .unwrap()
}

#[tokio::test]
async fn responses_out_of_order_reach_their_requests() {
    let (l, addr) = server().await;
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut f = Framed::new(s, ServerCodec::default());
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(f.next().await.unwrap().unwrap().correlation_id);
        }
        for id in ids.into_iter().rev() {
            f.send(reply(id)).await.unwrap();
        }
        // Keep the socket open until the client is done.
        let _ = f.next().await;
    });
    let c = connect(&addr).await;
    let t = Duration::from_secs(5);
    let (a, b, d) = tokio::join!(
        c.request(ApiVersionsRequest::default(), t),
        c.request(ApiVersionsRequest::default(), t),
        c.request(ApiVersionsRequest::default(), t),
    );
    let ids = [
        a.unwrap().throttle_time_ms,
        b.unwrap().throttle_time_ms,
        d.unwrap().throttle_time_ms,
    ];
    let mut sorted = ids;
    sorted.sort_unstable();
    assert_eq!(
        ids, sorted,
        "each future got the response to its own request"
    );
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn broken_connection_fails_pending_requests() {
    let (l, addr) = server().await;
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut f = Framed::new(s, ServerCodec::default());
        let _ = f.next().await;
        // Drop without answering.
    });
    let c = connect(&addr).await;
    let e = c
        .request(ApiVersionsRequest::default(), Duration::from_secs(5))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e}");
    assert!(e.is_retriable());
    // Later requests fail at once instead of hanging.
    for _ in 0..100 {
        if c.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(c.is_closed());
    let e = c
        .request(ApiVersionsRequest::default(), Duration::from_secs(5))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e}");
}

#[tokio::test]
async fn silent_broker_times_out() {
    let (l, addr) = server().await;
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut f = Framed::new(s, ServerCodec::default());
        while f.next().await.is_some() {}
    });
    let c = connect(&addr).await;
    let e = c
        .request(ApiVersionsRequest::default(), Duration::from_millis(100))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.is_retriable());
}

#[tokio::test]
async fn envelope_error_becomes_broker_error() {
    let (l, addr) = server().await;
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut f = Framed::new(s, ServerCodec::default());
        let req = f.next().await.unwrap().unwrap();
        f.send(ResponseEnvelope {
            correlation_id: req.correlation_id,
            error_code: 35,
            error_message: "nope".into(),
            body: None,
        })
        .await
        .unwrap();
        let _ = f.next().await;
    });
    let c = connect(&addr).await;
    let e = c
        .request(ApiVersionsRequest::default(), Duration::from_secs(5))
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Some(weir_protocol::ErrorCode::UnsupportedVersion));
    assert!(e.to_string().contains("nope"), "{e}");
}

#[tokio::test]
async fn refused_connect_is_a_clear_error() {
    let (l, addr) = server().await;
    drop(l);
    let e = Connection::connect(&addr, "t", Duration::from_secs(2), 1024)
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("cannot connect"), "{e}");
}
