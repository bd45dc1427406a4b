//! Test harness: the real `weir-broker` binary on 127.0.0.1 with a free port and a temp
//! data dir, killed by PID on drop; plus helpers to run the `weir` CLI.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running broker; killed when dropped.
pub struct Broker {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

/// `target/<profile>/weir-broker`, next to the directory of the test executable.
pub fn broker_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(format!("weir-broker{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins` (test.sh does)",
        bin.display()
    );
    bin
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_with_config("")
    }

    /// A broker with `toml` merged over its defaults (e.g. short group timeouts).
    pub fn start_with_config(toml: &str) -> Broker {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("test-config.toml");
        std::fs::write(&cfg, toml).expect("write config");
        let child = spawn_broker(dir.path(), "127.0.0.1:0");
        let mut broker = Broker {
            child,
            addr: String::new(),
            _dir: dir,
        };
        broker.wait_for_addr();
        broker
    }

    /// Sends `signal` ("STOP", "CONT", ...) to this broker process only.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{signal}");
    }

    /// Stops the broker with SIGTERM (a clean shutdown) and starts it again on the same
    /// address and data dir, as an operator's restart would.
    pub fn restart(&mut self) {
        self.signal("TERM");
        let status = self.child.wait().expect("wait weir-broker");
        assert!(
            status.success(),
            "weir-broker exited with {status} on SIGTERM"
        );
        let _ = std::fs::remove_file(self._dir.path().join("broker.addr"));
        self.child = spawn_broker(self._dir.path(), &self.addr);
        let old = std::mem::take(&mut self.addr);
        self.wait_for_addr();
        assert_eq!(self.addr, old, "restarted on the same address");
    }

    fn wait_for_addr(&mut self) {
        let addr_file = self._dir.path().join("broker.addr");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(a) = std::fs::read_to_string(&addr_file) {
                if !a.trim().is_empty() {
                    self.addr = a.trim().to_owned();
                    return;
                }
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("weir-broker exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "weir-broker did not write broker.addr in 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn spawn_broker(dir: &std::path::Path, listen: &str) -> Child {
    Command::new(broker_binary())
        .arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(dir.join("test-config.toml"))
        .args(["--listen", listen, "--metrics-listen", "127.0.0.1:0"])
        .args(["--kafka-listen", "127.0.0.1:0"])
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn weir-broker")
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `weir` CLI with `args` against `addr`, feeding `stdin`.
pub fn weir(addr: &str, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .env("WEIR_BOOTSTRAP", addr)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait weir");
    let _ = writer.join();
    out
}

/// Like [`weir`] but asserts success and returns stdout.
pub fn weir_ok(addr: &str, args: &[&str], stdin: &[u8]) -> String {
    let out = weir(addr, args, stdin);
    assert!(
        out.status.success(),
        "weir {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

pub fn client_config(addr: &str) -> weir_client::ClientConfig {
    let mut c = weir_client::ClientConfig::new(addr);
    c.request_timeout = Duration::from_secs(10);
    c.retry_backoff = Duration::from_millis(20);
    c
}

/// `target/<profile>/examples/<name>`: `cargo test` builds the examples before it runs
/// the tests.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: `cargo test` builds it (or `cargo build --examples`)",
        bin.display()
    );
    bin
}

/// Runs example `name` with `args` against `addr` (WEIR_BOOTSTRAP); asserts success and
/// returns stdout.
pub fn run_example(addr: &str, name: &str, args: &[&str]) -> String {
    let out = Command::new(example_binary(name))
        .args(args)
        .env("WEIR_BOOTSTRAP", addr)
        .stdin(Stdio::null())
        .output()
        .expect("run example");
    assert!(
        out.status.success(),
        "example {name} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}
