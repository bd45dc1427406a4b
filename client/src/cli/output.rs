//! Shaping data for stdout: JSON documents other tools rely on, and text tables.

use serde_json::{json, Map, Value};

use crate::admin::TopicDescription;
use crate::consumer::ConsumerRecord;

/// Standard base64 (RFC 4648, with padding).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'=')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Puts `name` (UTF-8 string or null) or `name_base64` into `obj`.
fn put_bytes(obj: &mut Map<String, Value>, name: &str, data: Option<&[u8]>) {
    match data {
        None => {
            obj.insert(name.to_owned(), Value::Null);
        }
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => {
                obj.insert(name.to_owned(), Value::String(s.to_owned()));
            }
            Err(_) => {
                obj.insert(format!("{name}_base64"), Value::String(base64(b)));
            }
        },
    }
}

/// `{"topic","partition","offset","timestamp","key","value","headers"}`; key/value become
/// `key_base64`/`value_base64` when not UTF-8; headers are `[{"key", "value"}]`.
pub fn record_json(r: &ConsumerRecord) -> Value {
    let mut obj = Map::new();
    obj.insert("topic".into(), Value::String(r.topic.to_string()));
    obj.insert("partition".into(), json!(r.partition));
    obj.insert("offset".into(), json!(r.offset));
    obj.insert("timestamp".into(), json!(r.timestamp));
    put_bytes(&mut obj, "key", r.key.as_deref());
    put_bytes(&mut obj, "value", r.value.as_deref());
    let headers: Vec<Value> = r
        .headers
        .iter()
        .map(|h| {
            let mut o = Map::new();
            o.insert("key".into(), Value::String(h.key.clone()));
            put_bytes(&mut o, "value", h.value.as_deref());
            Value::Object(o)
        })
        .collect();
    obj.insert("headers".into(), Value::Array(headers));
    Value::Object(obj)
}

/// A record as a text line: the value (lossy UTF-8), prefixed by `key<TAB>` when keyed.
pub fn record_text(r: &ConsumerRecord) -> String {
    let value = r
        .value
        .as_deref()
        .map_or_else(|| "null".into(), String::from_utf8_lossy);
    match r.key.as_deref() {
        Some(k) => format!("{}\t{}", String::from_utf8_lossy(k), value),
        None => value.into_owned(),
    }
}

/// `{"name", "partitions": [...], "configs": {...}}`.
pub fn describe_json(d: &TopicDescription) -> Value {
    let partitions: Vec<Value> = d
        .partitions
        .iter()
        .map(|p| {
            json!({
                "partition": p.partition,
                "leader": p.leader,
                "replicas": p.replicas,
                "isr": p.isr,
                "log_start_offset": p.log_start_offset,
                "log_end_offset": p.log_end_offset,
                "high_watermark": p.high_watermark,
                "size_bytes": p.size_bytes,
            })
        })
        .collect();
    json!({ "name": d.name, "partitions": partitions, "configs": d.configs })
}

/// A text table of a description.
pub fn describe_text(d: &TopicDescription) -> String {
    let mut s = format!("Topic: {}  Partitions: {}\n", d.name, d.partitions.len());
    s.push_str(
        "PARTITION  LEADER  REPLICAS  ISR  LOG_START  LOG_END  HIGH_WATERMARK  SIZE_BYTES\n",
    );
    let list = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    for p in &d.partitions {
        s.push_str(&format!(
            "{:<9}  {:<6}  {:<8}  {:<3}  {:<9}  {:<7}  {:<14}  {}\n",
            p.partition,
            p.leader,
            list(&p.replicas),
            list(&p.isr),
            p.log_start_offset,
            p.log_end_offset,
            p.high_watermark,
            p.size_bytes
                .map_or_else(|| "-".to_string(), |b| b.to_string())
        ));
    }
    if !d.configs.is_empty() {
        s.push_str("Configs:\n");
        for (k, v) in &d.configs {
            s.push_str(&format!("  {k}={v}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::PartitionDescription;
    use bytes::Bytes;
    use std::sync::Arc;
    use weir_protocol::batch::RecordHeader;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }

    #[test]
    fn record_json_uses_base64_for_non_utf8() {
        let r = ConsumerRecord {
            topic: Arc::from("t"),
            partition: 1,
            offset: 5,
            timestamp: 9,
            key: Some(Bytes::from_static(&[0xff])),
            value: None,
            headers: vec![RecordHeader {
                key: "h".into(),
                value: Some(Bytes::from_static(b"v")),
            }],
        };
        let v = record_json(&r);
        assert_eq!(
            v,
            json!({"topic": "t", "partition": 1, "offset": 5, "timestamp": 9,
                   "key_base64": "/w==", "value": null, "headers": [{"key": "h", "value": "v"}]})
        );
        let r2 = ConsumerRecord {
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            ..r
        };
        assert_eq!(record_json(&r2)["key"], json!("k"));
        assert_eq!(record_text(&r2), "k\tv");
    }

    #[test]
    fn describe_json_shape() {
        let mut d = TopicDescription {
            name: "t".into(),
            partitions: vec![PartitionDescription {
                partition: 0,
                leader: 1,
                replicas: vec![1],
                isr: vec![1],
                log_start_offset: 0,
                log_end_offset: 10,
                high_watermark: 10,
                size_bytes: None,
            }],
            configs: [("retention.ms".to_string(), "1".to_string())].into(),
        };
        let v = describe_json(&d);
        assert_eq!(v["partitions"][0]["high_watermark"], json!(10));
        assert_eq!(v["partitions"][0]["size_bytes"], Value::Null);
        assert_eq!(v["configs"]["retention.ms"], json!("1"));
        assert!(describe_text(&d).contains("retention.ms=1"));
        d.partitions[0].size_bytes = Some(4096);
        assert_eq!(
            describe_json(&d)["partitions"][0]["size_bytes"],
            json!(4096)
        );
        assert!(describe_text(&d).contains("SIZE_BYTES"));
        assert!(describe_text(&d).contains("  4096\n"));
    }
}
