//! What one client may take of a server, and how many connections the process's open-file
//! limit leaves room for.

use std::time::Duration;

use crate::Error;

/// Shed connections a listener answers at once, each briefly, before closing them.
pub const MAX_SHEDDING: usize = 64;

/// File descriptors kept free of client connections for everything else the process opens
/// (ClickHouse connections, listeners, logs).
const OTHER_FILE_DESCRIPTORS: usize = 64;

/// Stops [`HttpLimits::validate`] with the reason.
macro_rules! reject {
    ($($reason:tt)*) => {
        return Err(Error::InvalidLimits(format!($($reason)*)))
    };
}

/// What one HTTP client may take of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// From a request's first byte to its last header line.
    pub header_read_timeout: Duration,
    /// With no request in progress (a new or kept-alive connection), or with the client
    /// reading nothing of its response.
    pub idle_timeout: Duration,
    /// Connections served at once on the API listener.
    pub max_connections: usize,
    /// Method, target (path and query) and version: longer is a 414.
    pub max_request_line_bytes: usize,
    /// Header names, values and separators: more is a 431.
    pub max_header_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_request_line_bytes: 16 * 1024,
            max_header_bytes: 32 * 1024,
        }
    }
}

impl HttpLimits {
    /// Rejects limits that would refuse every request.
    pub fn validate(&self) -> Result<(), Error> {
        if self.header_read_timeout.is_zero() {
            reject!("the api header read timeout must be at least 1 second");
        }
        if self.idle_timeout.is_zero() {
            reject!("the api idle timeout must be at least 1 second");
        }
        if self.max_connections == 0 {
            reject!("the api max connections must be at least 1");
        }
        if self.max_request_line_bytes < 1024 || self.max_header_bytes < 1024 {
            reject!(
                "the api request line and header limits must be at least 1024 bytes each, found {} and {}",
                self.max_request_line_bytes,
                self.max_header_bytes
            );
        }
        Ok(())
    }

    /// hyper's read buffer: room for a head at both limits, so our own checks (and their
    /// precise messages) see every head that is merely too large; beyond it hyper
    /// answers 431 itself.
    pub(crate) fn head_buffer_bytes(&self) -> usize {
        (self.max_request_line_bytes + self.max_header_bytes + 1024).max(8192)
    }
}

/// The most connections the open-file limit leaves room for, below `wanted`.
///
/// `other` is what the process needs besides API connections (reserve, other listeners).
pub fn fit_connections_to_file_limit(wanted: usize, other: usize) -> usize {
    let Some(limit) = open_files_soft_limit() else {
        return wanted;
    };
    let room = limit
        .saturating_sub(other + MAX_SHEDDING + OTHER_FILE_DESCRIPTORS)
        .max(8);
    if room < wanted {
        tracing::warn!(
            wanted,
            serving = room,
            open_files_limit = limit,
            "the open-file limit leaves room for fewer api connections than configured; raise `ulimit -n` to serve more"
        );
        return room;
    }
    wanted
}

/// The soft `RLIMIT_NOFILE`, from `/proc` (Linux); `None` when unknown or unlimited.
fn open_files_soft_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
