//! Names, ports and directories that tests share.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A name no other test (in this or another process) uses: `prefix_<pid>_<nanos>_<n>`.
///
/// Only `[a-z0-9_]` (given such a prefix), so it is valid as a topic, a group, a database and
/// a table name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let sequence = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{nanos}_{sequence}", std::process::id())
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/auditlog-testkit is two levels below the root")
        .to_path_buf()
}

/// Where `make install` puts the stack's tools (the Kafka classpath, the chDB venv): the same
/// rule as `deploy/local/stack.sh`.
pub fn tools_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("AUDITLOG_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
        });
    cache.join("auditlog").join("tools")
}

/// Where test processes and private servers write their logs: `target/e2e-logs`.
pub fn log_dir() -> PathBuf {
    let dir = repo_root().join("target").join("e2e-logs");
    std::fs::create_dir_all(&dir).expect("create log dir");
    dir
}

/// A TCP port nobody listens on right now, for a server about to start.
///
/// Picked below the kernel's ephemeral range (`deploy/local/free_port.py` does the same for
/// the scripts): a port from `bind(0)` comes from that range, where an outgoing connection
/// can take it before the server binds it, as one once did from SeaweedFS's S3 gateway,
/// which binds seconds after it starts. A port is not handed out twice by one process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(low) = ephemeral_low().filter(|low| *low >= 11_000) {
        // std's randomly keyed hasher: a different sequence in each of the many test
        // processes that pick ports at once.
        let random = RandomState::new();
        for attempt in 0_u32..200 {
            let pick = random.hash_one(attempt) % u64::from(low - 10_000);
            let port = 10_000 + pick as u16;
            if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
                given.insert(port);
                return port;
            }
        }
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port");
    given.insert(port);
    port
}

/// The first port of the kernel's ephemeral range, where `bind(0)` and outgoing connections
/// take their ports.
fn ephemeral_low() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|ranges| ranges.split_whitespace().next()?.parse().ok())
}

/// The `auditlog` binary of the build this test or bench belongs to: cargo puts it next to
/// their `deps` directory (`cargo test --workspace` builds it; the binary crate's own
/// targets have `env!("CARGO_BIN_EXE_auditlog")` instead).
pub fn auditlog_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join("auditlog");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p auditlog` (cargo test --workspace builds it)",
        binary.display()
    );
    binary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let low = ephemeral_low();
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for port in ports {
            if let Some(low) = low.filter(|low| *low >= 11_000) {
                assert!((10_000..low).contains(&port), "{port} not below {low}");
            }
            TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
        }
    }
}
