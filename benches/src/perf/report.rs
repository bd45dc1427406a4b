//! What a run measured, and its two shapes: a text block and one JSON object.

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

/// A latency histogram in microseconds, 3 significant digits, growing as needed.
pub fn new_histogram() -> Histogram<u64> {
    // Auto-resizing from a 1 s ceiling: bounds are only a starting size.
    let mut h = Histogram::new_with_bounds(1, 1_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable_histogram()));
    h.auto(true);
    h
}

fn unreachable_histogram() -> Histogram<u64> {
    // `Histogram::new(3)` only fails for sigfig > 5; kept total so no panic path exists.
    Histogram::new_with_max(u64::MAX >> 2, 2).unwrap_or_else(|_| std::process::abort())
}

/// Records `micros`, clamped to at least 1 (the histogram's lowest value).
pub fn record(h: &mut Histogram<u64>, micros: u64) {
    let _ = h.record(micros.max(1));
}

/// The outcome of one workload.
#[derive(Debug, Clone)]
pub struct Report {
    /// Label, e.g. `produce` or `w1`.
    pub workload: String,
    /// `weir`, `redis` or `nats`.
    pub system: String,
    /// Records completed (acknowledged, consumed).
    pub records: u64,
    /// Value bytes of those records.
    pub bytes: u64,
    /// Wall time of the measured phase.
    pub seconds: f64,
    /// Latency samples in microseconds; what they measure depends on the workload.
    pub latency: Histogram<u64>,
    /// Records that failed.
    pub errors: u64,
    /// CPU seconds the server used during the run (with `--server-pid`).
    pub server_cpu_s: Option<f64>,
    /// CPU seconds this tool used during the run.
    pub client_cpu_s: Option<f64>,
    /// Further fields for the JSON object.
    pub extra: Map<String, Value>,
}

impl Report {
    /// An empty report for `workload` on `system`.
    pub fn new(workload: &str, system: &str) -> Self {
        Report {
            workload: workload.into(),
            system: system.into(),
            records: 0,
            bytes: 0,
            seconds: 0.0,
            latency: new_histogram(),
            errors: 0,
            server_cpu_s: None,
            client_cpu_s: None,
            extra: Map::new(),
        }
    }

    /// Records per second.
    pub fn records_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.records as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// Value megabytes (10^6) per second.
    pub fn mb_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes as f64 / 1e6 / self.seconds
        } else {
            0.0
        }
    }

    /// Latency at quantile `q` in milliseconds (0 without samples).
    pub fn latency_ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// Server CPU seconds per million records.
    pub fn server_cpu_per_million(&self) -> Option<f64> {
        self.server_cpu_s
            .filter(|_| self.records > 0)
            .map(|s| s * 1e6 / self.records as f64)
    }

    /// The JSON object.
    pub fn to_json(&self) -> Value {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let mut v = json!({
            "workload": self.workload,
            "system": self.system,
            "records": self.records,
            "seconds": round(self.seconds),
            "records_per_sec": self.records_per_sec().round(),
            "mb_per_sec": round(self.mb_per_sec()),
            "latency_ms": {
                "p50": self.latency_ms(0.5),
                "p90": self.latency_ms(0.9),
                "p99": self.latency_ms(0.99),
                "p999": self.latency_ms(0.999),
                "max": self.latency.max() as f64 / 1000.0,
            },
            "errors": self.errors,
        });
        if let Some(obj) = v.as_object_mut() {
            if let Some(s) = self.server_cpu_s {
                obj.insert("server_cpu_s".into(), json!(round(s)));
            }
            if let Some(s) = self.server_cpu_per_million() {
                obj.insert("server_cpu_s_per_million".into(), json!(round(s)));
            }
            if let Some(s) = self.client_cpu_s {
                obj.insert("client_cpu_s".into(), json!(round(s)));
            }
            for (k, x) in &self.extra {
                obj.insert(k.clone(), x.clone());
            }
        }
        v
    }

    /// Human-readable lines.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} [{}]: {} records in {:.2} s = {:.0} records/s, {:.1} MB/s",
            self.workload,
            self.system,
            self.records,
            self.seconds,
            self.records_per_sec(),
            self.mb_per_sec()
        );
        if self.errors > 0 {
            s.push_str(&format!(", {} errors", self.errors));
        }
        s.push_str(&format!(
            "\n  latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p999 {:.3}  max {:.3}",
            self.latency_ms(0.5),
            self.latency_ms(0.9),
            self.latency_ms(0.99),
            self.latency_ms(0.999),
            self.latency.max() as f64 / 1000.0
        ));
        if let Some(c) = self.server_cpu_s {
            s.push_str(&format!("\n  server cpu {c:.2} s"));
            if let Some(m) = self.server_cpu_per_million() {
                s.push_str(&format!(" = {m:.3} s per million records"));
            }
        }
        if let Some(c) = self.client_cpu_s {
            s.push_str(&format!("\n  client cpu {c:.2} s"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_agreed_shape() {
        let mut r = Report::new("w1", "weir");
        r.records = 2_000_000;
        r.bytes = 200_000_000;
        r.seconds = 2.0;
        r.server_cpu_s = Some(0.1);
        for us in 1..=1000 {
            record(&mut r.latency, us);
        }
        let v = r.to_json();
        assert_eq!(v["workload"], "w1");
        assert_eq!(v["records"], 2_000_000);
        assert_eq!(v["records_per_sec"], 1_000_000.0);
        assert_eq!(v["mb_per_sec"], 100.0);
        let p50 = v["latency_ms"]["p50"].as_f64().unwrap_or_default();
        assert!((0.49..=0.51).contains(&p50), "{p50}");
        assert!(v["latency_ms"]["p999"].as_f64().unwrap_or_default() >= 0.99);
        assert_eq!(v["latency_ms"]["max"], 1.0);
        assert_eq!(v["server_cpu_s_per_million"], 0.05);
        assert!(r.to_text().contains("1000000 records/s"));
    }

    #[test]
    fn empty_report_has_zeros_not_nans() {
        let r = Report::new("consume", "redis");
        let v = r.to_json();
        assert_eq!(v["records_per_sec"], 0.0);
        assert_eq!(v["latency_ms"]["p99"], 0.0);
        assert!(v.get("server_cpu_s_per_million").is_none());
    }

    #[test]
    fn histogram_grows_past_its_initial_bound() {
        let mut h = new_histogram();
        record(&mut h, 5_000_000);
        record(&mut h, 0);
        assert_eq!(h.len(), 2);
        assert!(h.max() >= 4_990_000);
        assert_eq!(h.min(), 1);
    }
}
