//! The one reading of ClickHouse's errors: its `Code: N. DB::Exception: ...` answers, sorted
//! into what a caller does about them (retry, report, fall back).

/// ClickHouse error codes that mean "try again later".
///
/// 3 UNEXPECTED_END_OF_FILE, 159 TIMEOUT_EXCEEDED, 164 READONLY, 202
/// TOO_MANY_SIMULTANEOUS_QUERIES, 203 NO_FREE_CONNECTION, 209 SOCKET_TIMEOUT, 210
/// NETWORK_ERROR, 236 ABORTED, 241 MEMORY_LIMIT_EXCEEDED, 242 TABLE_IS_READ_ONLY, 252
/// TOO_MANY_PARTS, 279 ALL_CONNECTION_TRIES_FAILED, 285 TOO_FEW_LIVE_REPLICAS, 319
/// UNKNOWN_STATUS_OF_INSERT, 394 QUERY_WAS_CANCELLED, 425 SYSTEM_ERROR, 439
/// CANNOT_SCHEDULE_TASK, 999 KEEPER_EXCEPTION, 1000 POCO_EXCEPTION.
const TRANSIENT_CODES: &[u32] = &[
    3, 159, 164, 202, 203, 209, 210, 236, 241, 242, 252, 279, 285, 319, 394, 425, 439, 999, 1000,
];

const UNKNOWN_TABLE: u32 = 60;
const UNKNOWN_DATABASE: u32 = 81;
const UNKNOWN_SETTING: u32 = 115;
const TIMEOUT_EXCEEDED: u32 = 159;
const UNKNOWN_USER: u32 = 192;
const WRONG_PASSWORD: u32 = 193;
const ACCESS_DENIED: u32 = 497;
const AUTHENTICATION_FAILED: u32 = 516;

/// What a failed ClickHouse request means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFailure {
    /// No ClickHouse answered: the network, a proxy's 502/503/504, a client-side timeout.
    Unreachable,
    /// The server gave up at `max_execution_time` (TIMEOUT_EXCEEDED).
    Timeout,
    /// The server is older than a setting we sent (UNKNOWN_SETTING).
    UnknownSetting,
    /// The database does not exist.
    UnknownDatabase,
    /// The table does not exist.
    UnknownTable,
    /// The user or password was refused.
    Credentials,
    /// The user may not do this.
    AccessDenied,
    /// Another code that clears up by itself (overload, too many parts, memory).
    Transient(u32),
    /// Any other code: retrying cannot help.
    Permanent(u32),
}

impl ServerFailure {
    /// The failure a client error stands for.
    pub fn of(error: &clickhouse::error::Error) -> Self {
        match error {
            clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut => {
                Self::Unreachable
            }
            clickhouse::error::Error::BadResponse(message) => Self::from_message(message),
            other => Self::from_message(&other.to_string()),
        }
    }

    /// The failure a server's message stands for; without a code, nobody that speaks
    /// ClickHouse answered.
    pub fn from_message(message: &str) -> Self {
        match error_code(message) {
            None => Self::Unreachable,
            Some(code) => Self::from_code(code),
        }
    }

    fn from_code(code: u32) -> Self {
        match code {
            TIMEOUT_EXCEEDED => Self::Timeout,
            UNKNOWN_SETTING => Self::UnknownSetting,
            UNKNOWN_DATABASE => Self::UnknownDatabase,
            UNKNOWN_TABLE => Self::UnknownTable,
            AUTHENTICATION_FAILED | UNKNOWN_USER | WRONG_PASSWORD => Self::Credentials,
            ACCESS_DENIED => Self::AccessDenied,
            code if TRANSIENT_CODES.contains(&code) => Self::Transient(code),
            code => Self::Permanent(code),
        }
    }

    /// Whether waiting and trying again can succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Unreachable | Self::Timeout | Self::Transient(_))
    }
}

/// `N` of a `Code: N. DB::Exception: ...` answer.
pub fn error_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_sorted_by_what_a_caller_does_about_them() {
        let cases = [
            (
                "Code: 60. DB::Exception: Table audit.nope does not exist. (UNKNOWN_TABLE) (version 26.9.2.1)",
                ServerFailure::UnknownTable,
            ),
            (
                "Code: 81. DB::Exception: Database x does not exist. (UNKNOWN_DATABASE)",
                ServerFailure::UnknownDatabase,
            ),
            (
                "Code: 115. DB::Exception: Unknown setting x. (UNKNOWN_SETTING)",
                ServerFailure::UnknownSetting,
            ),
            (
                "Code: 159. DB::Exception: Timeout exceeded: elapsed 1.0 seconds. (TIMEOUT_EXCEEDED)",
                ServerFailure::Timeout,
            ),
            (
                "Code: 516. DB::Exception: default: Authentication failed. (AUTHENTICATION_FAILED)",
                ServerFailure::Credentials,
            ),
            (
                "Code: 497. DB::Exception: ann: Not enough privileges. (ACCESS_DENIED)",
                ServerFailure::AccessDenied,
            ),
            (
                "Code: 252. DB::Exception: Too many parts. (TOO_MANY_PARTS)",
                ServerFailure::Transient(252),
            ),
            (
                "Code: 62. DB::Exception: Syntax error. (SYNTAX_ERROR)",
                ServerFailure::Permanent(62),
            ),
            ("502 Bad Gateway", ServerFailure::Unreachable),
        ];
        for (message, expected) in cases {
            assert_eq!(ServerFailure::from_message(message), expected, "{message}");
        }
        assert!(ServerFailure::Transient(252).is_transient());
        assert!(ServerFailure::Unreachable.is_transient());
        assert!(!ServerFailure::Permanent(62).is_transient());
        assert!(!ServerFailure::UnknownTable.is_transient());
        assert_eq!(
            error_code("bad response: Code: 241. DB::Exception"),
            Some(241)
        );
        assert_eq!(error_code("Code: x"), None);
    }
}
