//! Where this broker dials its peers: `[cluster] dial_overrides` maps an address another
//! broker is known by (a voter's controller address, a broker's advertised address) to the
//! address this broker connects to instead. Empty by default: every address is dialled as
//! given. It exists so a test harness can put a proxy on each directed broker-to-broker
//! link (b1→b2 apart from b2→b1 and from clients→b2) and cut one link without root; the
//! addresses peers and clients *see* stay the same, only this broker's route changes.
//!
//! A process-wide table set once at start: the two dial points (Raft peers and broker
//! connections) sit deep in tasks that have no config of their own, and the table never
//! changes while the broker runs.

use std::collections::BTreeMap;
use std::sync::OnceLock;

static OVERRIDES: OnceLock<BTreeMap<String, String>> = OnceLock::new();

/// Parses `FROM=TO,FROM=TO` (each `HOST:PORT`); an error names the bad item.
pub fn parse(list: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((from, to)) = item.split_once('=') else {
            return Err(format!("{item:?} is not FROM=TO"));
        };
        let (from, to) = (from.trim(), to.trim());
        for a in [from, to] {
            let ok = a
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(format!("{a:?} in {item:?} is not HOST:PORT"));
            }
        }
        if out.insert(from.to_string(), to.to_string()).is_some() {
            return Err(format!("{from:?} is listed twice"));
        }
    }
    Ok(out)
}

/// Installs the table for this process (the first call wins; later ones are ignored, as
/// a broker starts once per process).
pub fn install(overrides: BTreeMap<String, String>) {
    let _ = OVERRIDES.set(overrides);
}

/// The address to connect to for `addr`.
pub fn target(addr: &str) -> String {
    OVERRIDES
        .get()
        .and_then(|m| m.get(addr))
        .cloned()
        .unwrap_or_else(|| addr.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_names_bad_items() {
        let m = parse("127.0.0.1:1=127.0.0.1:2, 127.0.0.1:3=127.0.0.1:4").unwrap();
        assert_eq!(m["127.0.0.1:3"], "127.0.0.1:4");
        assert!(parse("").unwrap().is_empty());
        assert!(parse("127.0.0.1:1").unwrap_err().contains("FROM=TO"));
        assert!(parse("127.0.0.1:1=x").unwrap_err().contains("HOST:PORT"));
        assert!(parse("a:1=b:2,a:1=c:3").unwrap_err().contains("twice"));
    }

    #[test]
    fn unknown_addresses_are_dialled_as_given() {
        // No table installed in this test process: the identity.
        assert_eq!(target("127.0.0.1:9"), "127.0.0.1:9");
    }
}
