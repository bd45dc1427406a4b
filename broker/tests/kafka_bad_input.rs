//! Bad input on the Kafka port, as raw bytes on a socket: junk, huge lengths, truncated
//! frames, unknown API keys, versions that were not advertised, a corrupt batch, an
//! oversized batch, an array count far beyond the frame. Each gets a clear error code or a
//! closed connection; nothing is stored, and the broker keeps serving. Plus the ordering
//! rules: acks=0 gets no response, pipelined responses come back in request order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use common::{batch, temp_dir, Broker};

fn connect(b: &Broker) -> TcpStream {
    let s = TcpStream::connect(&b.kafka_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A request frame with a v1 header (non-flexible request versions).
fn request(key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i16(key);
    b.put_i16(version);
    b.put_i32(correlation_id);
    b.put_i16(4);
    b.put_slice(b"test");
    b.put_slice(body);
    let mut f = (b.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&b);
    f
}

/// The next response frame, or `None` if the broker closed the connection.
fn response(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
            ) =>
        {
            return None
        }
        Err(e) => panic!("no response and no close: {e}"),
    }
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    Some(body)
}

/// Whether the broker closed the connection within the read timeout.
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) => n == 0,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// A fresh connection still gets ApiVersions answered.
fn assert_alive(b: &Broker) {
    let mut s = connect(b);
    s.write_all(&request(18, 0, 77, &[])).unwrap();
    let r = response(&mut s).expect("broker stopped answering");
    assert_eq!(&r[..4], &77i32.to_be_bytes());
    assert_eq!(&r[4..6], &[0, 0], "ApiVersions v0 error code");
}

fn str16(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

/// A Produce v3 body: one topic, one partition, these record bytes.
fn produce_v3(topic: &str, partition: i32, acks: i16, records: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i16(-1); // transactional_id null
    b.put_i16(acks);
    b.put_i32(10_000);
    b.put_i32(1);
    str16(&mut b, topic);
    b.put_i32(1);
    b.put_i32(partition);
    b.put_i32(records.len() as i32);
    b.put_slice(records);
    b.to_vec()
}

/// The partition error code and base offset of a Produce v3 response.
fn produce_result(resp: &[u8]) -> (i16, i64) {
    let mut r = &resp[4..]; // correlation id
    assert_eq!(r.get_i32(), 1);
    let n = r.get_i16() as usize;
    r.advance(n);
    assert_eq!(r.get_i32(), 1);
    let _index = r.get_i32();
    (r.get_i16(), r.get_i64())
}

fn latest(b: &Broker, topic: &str) -> i64 {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { b.client().await.list_offset(topic, 0, -1).await.offset })
}

fn create(b: &Broker, topic: &str, configs: &[(&str, &str)]) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let r = b.client().await.create_topic(topic, 1, configs).await;
            assert_eq!(r.error_code, 0, "{}", r.error_message);
        });
}

#[test]
fn bad_input_on_the_kafka_port() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);

    // Junk: an HTTP request reads as a 1.2 GB length; a frame too short for a header.
    for junk in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0, 0, 0, 5, 1, 2, 3, 4, 5][..],
    ] {
        let mut s = connect(&b);
        s.write_all(junk).unwrap();
        assert!(closed(&mut s), "junk {junk:?} did not close the connection");
    }
    assert_alive(&b);

    // A length prefix far over max_frame_bytes closes before anything is allocated.
    let mut s = connect(&b);
    s.write_all(&0x7fff_ffffu32.to_be_bytes()).unwrap();
    assert!(closed(&mut s));

    // A truncated frame, then the client goes away.
    let mut s = connect(&b);
    s.write_all(&[0, 0, 0, 100, 0, 3, 0, 1]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed(&mut s));
    assert_alive(&b);

    // An API key Kafka does not define; a version that is not advertised (Produce v1,
    // Metadata v13): closed, as Kafka does.
    for (key, version) in [(999, 0), (0, 1), (3, 13)] {
        let mut s = connect(&b);
        s.write_all(&request(key, version, 5, &[])).unwrap();
        assert_eq!(response(&mut s), None, "key {key} v{version} was answered");
    }
    assert_alive(&b);

    // An ApiVersions version from the future: a v0 body with UNSUPPORTED_VERSION and the
    // ApiVersions range, and the connection stays open (kafka-wire-compat.md §2.2).
    let mut s = connect(&b);
    s.write_all(&request(18, 99, 9, b"whatever")).unwrap();
    let r = response(&mut s).unwrap();
    let mut want = Vec::new();
    want.extend_from_slice(&9i32.to_be_bytes());
    want.extend_from_slice(&35i16.to_be_bytes());
    want.extend_from_slice(&1i32.to_be_bytes());
    for v in [18i16, 0, 4] {
        want.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(r, want);
    s.write_all(&request(18, 0, 10, &[])).unwrap();
    assert_eq!(&response(&mut s).unwrap()[..6], &[0, 0, 0, 10, 0, 0]);

    // A body that does not decode (Metadata v1 declaring 2^31-1 topics in 4 bytes): closed,
    // and the broker does not try to allocate them.
    let mut s = connect(&b);
    s.write_all(&request(3, 1, 11, &0x7fff_ffffi32.to_be_bytes()))
        .unwrap();
    assert_eq!(response(&mut s), None);
    assert_alive(&b);

    // A batch whose CRC does not match: CORRUPT_MESSAGE, nothing stored.
    create(&b, "bad-crc", &[]);
    let mut bad = batch(&[b"one", b"two"], 1000).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let mut s = connect(&b);
    s.write_all(&request(0, 3, 12, &produce_v3("bad-crc", 0, -1, &bad)))
        .unwrap();
    assert_eq!(produce_result(&response(&mut s).unwrap()).0, 2);
    assert_eq!(latest(&b, "bad-crc"), 0);

    // A batch over the topic's max.message.bytes: MESSAGE_TOO_LARGE, nothing stored.
    create(&b, "small", &[("max.message.bytes", "1000")]);
    let big = batch(&[&[7u8; 5000][..]], 1000);
    s.write_all(&request(0, 3, 13, &produce_v3("small", 0, -1, &big)))
        .unwrap();
    assert_eq!(produce_result(&response(&mut s).unwrap()).0, 10);
    assert_eq!(latest(&b, "small"), 0);

    // acks=0 gets no response: the next response on the connection is the next request's.
    create(&b, "acks0", &[]);
    let good = batch(&[b"a"], 1000);
    let mut pipelined = request(0, 3, 20, &produce_v3("acks0", 0, 0, &good));
    pipelined.extend(request(0, 3, 21, &produce_v3("acks0", 0, -1, &good)));
    pipelined.extend(request(18, 0, 22, &[]));
    s.write_all(&pipelined).unwrap();
    let r = response(&mut s).unwrap();
    assert_eq!(&r[..4], &21i32.to_be_bytes(), "acks=0 was answered");
    // Pipelined produces of one connection append in arrival order, as in Kafka.
    assert_eq!(produce_result(&r), (0, 1));
    assert_eq!(&response(&mut s).unwrap()[..4], &22i32.to_be_bytes());
    assert_eq!(latest(&b, "acks0"), 2);
}

#[test]
fn pipelined_produces_on_the_kafka_port_append_in_arrival_order() {
    const REQUESTS: i32 = 200;
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    create(&b, "order", &[]);
    // Sizes vary so requests take different times to validate and append; one write for
    // all of them, so many are in flight at once.
    let records = |i: i32| (i % 7 + 1) as usize;
    let mut pipelined = Vec::new();
    for i in 0..REQUESTS {
        let value = vec![7u8; 100 * (i % 5 + 1) as usize];
        let values = vec![&value[..]; records(i)];
        let body = produce_v3("order", 0, -1, &batch(&values, 1000));
        pipelined.extend(request(0, 3, i, &body));
    }
    let mut s = connect(&b);
    s.write_all(&pipelined).unwrap();
    let mut next_offset = 0;
    for i in 0..REQUESTS {
        let r = response(&mut s).unwrap();
        assert_eq!(&r[..4], &i.to_be_bytes());
        assert_eq!(
            produce_result(&r),
            (0, next_offset),
            "request {i} was not appended in arrival order"
        );
        next_offset += records(i) as i64;
    }
}

/// InitProducerId v0 (non-flexible): (error, producer id, epoch).
fn init_producer_id_v0(s: &mut TcpStream, correlation_id: i32) -> (i16, i64, i16) {
    let mut body = BytesMut::new();
    body.put_i16(-1); // transactional_id null
    body.put_i32(60_000);
    s.write_all(&request(22, 0, correlation_id, &body)).unwrap();
    let r = response(s).unwrap();
    let mut r = &r[4..];
    let _throttle = r.get_i32();
    (r.get_i16(), r.get_i64(), r.get_i16())
}

/// InitProducerId v3 (flexible) asking to bump the epoch of `(pid, epoch)` (KIP-360).
fn init_producer_id_bump(
    s: &mut TcpStream,
    correlation_id: i32,
    pid: i64,
    epoch: i16,
) -> (i16, i64, i16) {
    let mut b = BytesMut::new();
    b.put_i16(22);
    b.put_i16(3);
    b.put_i32(correlation_id);
    b.put_i16(4);
    b.put_slice(b"test");
    b.put_u8(0); // header tagged fields
    b.put_u8(0); // transactional_id: compact null
    b.put_i32(60_000);
    b.put_i64(pid);
    b.put_i16(epoch);
    b.put_u8(0); // body tagged fields
    let mut f = (b.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&b);
    s.write_all(&f).unwrap();
    let r = response(s).unwrap();
    let mut r = &r[4..];
    assert_eq!(r.get_u8(), 0, "response header tagged fields");
    let _throttle = r.get_i32();
    (r.get_i16(), r.get_i64(), r.get_i16())
}

/// Idempotent produce through the Kafka port: duplicates answered with the original
/// offset, gaps refused, fenced epochs refused, a bumped epoch starts again at 0.
#[test]
fn idempotent_producer_sequences_on_the_kafka_port() {
    use weir_protocol::batch::Compression;
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    create(&b, "idem", &[]);
    let mut s = connect(&b);
    let (err, pid, epoch) = init_producer_id_v0(&mut s, 1);
    assert_eq!((err, epoch), (0, 0));
    assert!(pid >= 0);
    let two: [common::KeyValue<'_>; 2] = [(None, Some(b"a")), (None, Some(b"b"))];
    let send = |s: &mut TcpStream, id: i32, epoch: i16, seq: i32| {
        let batch = common::built_batch(&two, Some((pid, epoch, seq)), Compression::None);
        s.write_all(&request(0, 3, id, &produce_v3("idem", 0, -1, &batch)))
            .unwrap();
        produce_result(&response(s).unwrap())
    };
    assert_eq!(send(&mut s, 2, 0, 0), (0, 0));
    assert_eq!(send(&mut s, 3, 0, 2), (0, 2));
    // A retry of the first batch: success with its original offset, nothing appended.
    assert_eq!(send(&mut s, 4, 0, 0), (0, 0));
    // A gap: OUT_OF_ORDER_SEQUENCE_NUMBER.
    assert_eq!(send(&mut s, 5, 0, 9).0, 45);
    assert_eq!(latest(&b, "idem"), 4);

    // Bump the epoch (KIP-360): same id, epoch 1; the old epoch is fenced.
    let (err, same, bumped) = init_producer_id_bump(&mut s, 6, pid, 0);
    assert_eq!((err, same, bumped), (0, pid, 1));
    assert_eq!(send(&mut s, 7, 1, 0), (0, 4));
    assert_eq!(send(&mut s, 8, 0, 4).0, 47, "old epoch not fenced");
    assert_eq!(latest(&b, "idem"), 6);
}

/// JoinGroup v0-3 predates the two-step join (KIP-394): such a client gets its member id
/// and generation in one round trip, never MEMBER_ID_REQUIRED.
#[test]
fn join_group_v0_needs_one_round_trip() {
    let dir = temp_dir();
    let b = Broker::start(dir.path(), &[]);
    create(&b, "old-join", &[]);
    let mut s = connect(&b);
    let mut body = BytesMut::new();
    str16(&mut body, "old-group");
    body.put_i32(10_000); // session timeout
    str16(&mut body, ""); // member id
    str16(&mut body, "consumer");
    body.put_i32(1);
    str16(&mut body, "range");
    // Subscription v0: topics ["old-join"], null user data.
    let mut sub = BytesMut::new();
    sub.put_i16(0);
    sub.put_i32(1);
    str16(&mut sub, "old-join");
    sub.put_i32(-1);
    body.put_i32(sub.len() as i32);
    body.put_slice(&sub);
    s.write_all(&request(11, 0, 3, &body)).unwrap();
    let r = response(&mut s).unwrap();
    let mut r = &r[4..];
    assert_eq!(r.get_i16(), 0, "JoinGroup v0 error");
    assert_eq!(r.get_i32(), 1, "generation");
    let n = r.get_i16() as usize;
    assert_eq!(&r[..n], b"range");
    r.advance(n);
    let n = r.get_i16() as usize; // leader
    let leader = r[..n].to_vec();
    r.advance(n);
    let n = r.get_i16() as usize; // member id
    assert_eq!(&r[..n], &leader[..], "the only member leads");
    assert!(n > 0);
}
