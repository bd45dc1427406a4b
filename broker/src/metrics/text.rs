//! Prometheus text exposition (format 0.0.4) for the families Weir renders itself.

use std::fmt::Write;

use super::names;

/// Text being built, one family at a time (a family's samples must be contiguous).
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a family: `# HELP` and `# TYPE` from [`names::ALL`].
    pub fn family(&mut self, name: &str) {
        if let Some((kind, help)) = names::lookup(name) {
            let _ = writeln!(self.out, "# HELP {name} {help}");
            let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        }
    }

    /// One sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_into(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Label values come from clients (group ids), so `\`, `"` and newlines are escaped.
fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let mut e = Exposition::default();
        e.family(names::GROUP_MEMBERS);
        e.sample(names::GROUP_MEMBERS, &[("group", "a\"b\\c\nd")], 3);
        let t = e.finish();
        assert!(
            t.contains("# TYPE weir_consumer_group_members gauge\n"),
            "{t}"
        );
        assert!(
            t.contains("weir_consumer_group_members{group=\"a\\\"b\\\\c\\nd\"} 3\n"),
            "{t}"
        );
    }
}
