//! How to reach the server: the one place the ClickHouse client is configured.

/// Where ClickHouse is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// HTTP(S) URL of the server.
    pub url: String,
    /// The database of the audit table.
    pub database: String,
    /// The audit table.
    pub table: String,
    /// The user.
    pub user: String,
    /// The password (never printed).
    pub password: String,
    /// The schema is the cluster variant: inserts go through a Distributed table and must
    /// wait for the shards (`distributed_foreground_insert`).
    pub cluster: bool,
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("table", &self.table)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("cluster", &self.cluster)
            .finish()
    }
}

impl ClickHouseConfig {
    /// A client for this server, LZ4 on, with the database selected.
    pub fn client(&self) -> clickhouse::Client {
        let mut client = clickhouse::Client::default()
            .with_url(&self.url)
            .with_database(&self.database)
            .with_user(&self.user)
            .with_compression(clickhouse::Compression::Lz4);
        if !self.password.is_empty() {
            client = client.with_password(&self.password);
        }
        if self.cluster {
            client = client.with_setting("distributed_foreground_insert", "1");
        }
        client
    }
}
