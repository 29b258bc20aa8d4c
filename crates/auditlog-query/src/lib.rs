//! Parses Coder's audit filter language and runs it against ClickHouse.
