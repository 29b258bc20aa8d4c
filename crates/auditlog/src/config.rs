//! Configuration: flags, then `AUDITLOG_*` environment variables, then the TOML file, then
//! the documented defaults.
//!
//! clap resolves flag-over-environment; every flag is an `Option`, so "not given" falls
//! through to the file and then to the default here. The TOML structs deny unknown keys,
//! so a typo is an error, not a silently ignored setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use auditlog_api::{ConfiguredToken, HttpLimits};
use serde::Deserialize;

use crate::cli::{GlobalArgs, IngestArgs, LogFormat, MigrateArgs, ProducerArgs, ServeArgs};

mod topics;
pub use topics::topic_specs;

pub const DEFAULT_KAFKA_BROKERS: &str = "127.0.0.1:9092";
pub const DEFAULT_KAFKA_TOPIC: &str = "audit-events";
pub const DEFAULT_KAFKA_DLQ_TOPIC: &str = "audit-events-dlq";
pub const DEFAULT_KAFKA_GROUP: &str = "auditlog-ingester";
pub const DEFAULT_KAFKA_CHECKPOINT_TOPIC: &str = "audit-events-checkpoints";
pub const DEFAULT_CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";
pub const DEFAULT_CLICKHOUSE_DATABASE: &str = "audit";
pub const DEFAULT_CLICKHOUSE_TABLE: &str = auditlog_store::tables::AUDIT_LOGS;
pub const DEFAULT_CLICKHOUSE_USER: &str = "default";
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_INGEST_METRICS_LISTEN: &str = "127.0.0.1:9464";
/// Partitions of the audit event topic: up to six ingesters share it, and 1, 2, 3 or 6 share
/// it evenly.
pub const DEFAULT_KAFKA_PARTITIONS: i32 = 6;
/// Partitions of the dead-letter topic: poison is rare, and one partition keeps it in order.
pub const DEFAULT_KAFKA_DLQ_PARTITIONS: i32 = 1;

/// The TOML file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub kafka: KafkaFile,
    #[serde(default)]
    pub clickhouse: ClickHouseFile,
    #[serde(default)]
    pub api: ApiFile,
    #[serde(default)]
    pub ingest: IngestFile,
    #[serde(default)]
    pub producer: ProducerFile,
    #[serde(default)]
    pub retention: RetentionFile,
    #[serde(default)]
    pub integrity: IntegrityFile,
    #[serde(default)]
    pub log: LogFile,
    /// `[stream]` and its `[[stream.sinks]]`, checked by `auditlog stream`.
    #[serde(default)]
    pub stream: auditlog_stream::StreamFile,
}

/// `[integrity]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrityFile {
    /// The ingester's checkpoint signing key (PKCS#8 PEM).
    pub signing_key_file: Option<PathBuf>,
    /// Seconds between checkpoints.
    pub checkpoint_interval_secs: Option<u64>,
    /// Public keys `verify` trusts (PEM files).
    #[serde(default)]
    pub public_keys: Vec<PathBuf>,
}

/// `[kafka]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaFile {
    /// Bootstrap servers.
    pub brokers: Option<String>,
    /// The audit event topic.
    pub topic: Option<String>,
    /// The dead-letter topic.
    pub dlq_topic: Option<String>,
    /// The ingesters' consumer group.
    pub group: Option<String>,
    /// The checkpoint topic.
    pub checkpoint_topic: Option<String>,
    /// This ingester's static group membership id (`group.instance.id`).
    pub instance_id: Option<String>,
    /// Partitions `migrate` creates the audit event topic with.
    pub partitions: Option<i32>,
    /// Partitions `migrate` creates the dead-letter topic with.
    pub dlq_partitions: Option<i32>,
    /// Replicas per partition of the topics `migrate` creates (absent: 3).
    pub replication_factor: Option<i32>,
    /// `min.insync.replicas` of the topics `migrate` creates (absent: 2).
    pub min_insync_replicas: Option<i32>,
    /// Topic configs (`retention.ms`, `min.insync.replicas`, ...) of the topics `migrate`
    /// creates.
    #[serde(default)]
    pub topic_config: BTreeMap<String, String>,
    /// librdkafka properties passed through (security.protocol, sasl.*, ssl.*, ...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// `[clickhouse]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseFile {
    pub url: Option<String>,
    pub database: Option<String>,
    pub table: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The cluster name for the replicated schema variant.
    pub cluster: Option<String>,
}

/// `[api]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFile {
    pub listen: Option<SocketAddr>,
    pub query_timeout_secs: Option<u64>,
    pub header_read_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_request_line_bytes: Option<usize>,
    pub max_header_bytes: Option<usize>,
    /// A separate address for `/healthz`, `/readyz` and `/metrics` only.
    pub ops_listen: Option<SocketAddr>,
    /// Bearer tokens, stored as SHA-256 hashes.
    #[serde(default)]
    pub tokens: Vec<TokenFile>,
}

/// One `[[api.tokens]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    /// Who holds it (shown in logs; `username:me` resolves to it).
    pub name: String,
    /// Lowercase hex SHA-256 of the token (`auditlog` never stores the token itself).
    pub sha256: String,
    /// `auditor` (everything), `org_auditor` (only `organizations`), or anything else (403).
    pub role: String,
    /// Organization ids an `org_auditor` may see.
    #[serde(default)]
    pub organizations: Vec<uuid::Uuid>,
}

/// The API checks tokens in its own type; the file's entry is only how they are written.
impl From<&TokenFile> for ConfiguredToken {
    fn from(token: &TokenFile) -> Self {
        Self {
            name: token.name.clone(),
            sha256: token.sha256.clone(),
            role: token.role.clone(),
            organizations: token.organizations.clone(),
        }
    }
}

/// `[ingest]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestFile {
    pub migrate: Option<bool>,
    pub batch_rows: Option<usize>,
    pub batch_bytes: Option<usize>,
    pub batch_max_age_ms: Option<u64>,
    pub max_in_flight_batches: Option<usize>,
    pub insert_compression: Option<String>,
    pub metrics_listen: Option<SocketAddr>,
    pub poison_max: Option<usize>,
    pub poison_window: Option<usize>,
    pub shutdown_timeout_secs: Option<u64>,
    pub revoke_timeout_secs: Option<u64>,
}

/// `[producer]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerFile {
    pub compression: Option<String>,
    pub linger_ms: Option<u64>,
    pub batch_bytes: Option<usize>,
    pub queue_events: Option<usize>,
    pub delivery_timeout_ms: Option<u64>,
}

/// `[retention]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionFile {
    /// Keep rows this many days; absent or 0 keeps them forever.
    pub days: Option<u32>,
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    pub filter: Option<String>,
    pub format: Option<LogFormat>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }
}

/// Where the services are: resolved from every source.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    pub kafka_brokers: String,
    pub kafka_topic: String,
    pub kafka_dlq_topic: String,
    pub kafka_group: String,
    pub kafka_checkpoint_topic: String,
    pub kafka_properties: BTreeMap<String, String>,
    pub clickhouse_url: String,
    pub clickhouse_database: String,
    pub clickhouse_table: String,
    pub clickhouse_user: String,
    pub clickhouse_password: String,
    pub clickhouse_cluster: Option<String>,
    pub api_listen: SocketAddr,
    pub log_filter: String,
    pub log_format: LogFormat,
}

impl std::fmt::Debug for Settings {
    // The password never reaches a log line.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Settings")
            .field("kafka_brokers", &self.kafka_brokers)
            .field("kafka_topic", &self.kafka_topic)
            .field("kafka_dlq_topic", &self.kafka_dlq_topic)
            .field("kafka_group", &self.kafka_group)
            .field("kafka_checkpoint_topic", &self.kafka_checkpoint_topic)
            .field(
                "kafka_properties",
                &self.kafka_properties.keys().collect::<Vec<_>>(),
            )
            .field("clickhouse_url", &self.clickhouse_url)
            .field("clickhouse_database", &self.clickhouse_database)
            .field("clickhouse_table", &self.clickhouse_table)
            .field("clickhouse_user", &self.clickhouse_user)
            .field("clickhouse_cluster", &self.clickhouse_cluster)
            .field("api_listen", &self.api_listen)
            .finish_non_exhaustive()
    }
}

fn pick<T>(flag: Option<T>, file: Option<T>, default: impl FnOnce() -> T) -> T {
    flag.or(file).unwrap_or_else(default)
}

impl Settings {
    /// Resolves the global settings from flags/environment and the file.
    pub fn resolve(global: &GlobalArgs, file: &FileConfig) -> Result<Self> {
        let api_listen = match global.api_listen.or(file.api.listen) {
            Some(address) => address,
            None => DEFAULT_API_LISTEN.parse().context("default api address")?,
        };
        Ok(Self {
            kafka_brokers: pick(
                global.kafka_brokers.clone(),
                file.kafka.brokers.clone(),
                || DEFAULT_KAFKA_BROKERS.into(),
            ),
            kafka_topic: pick(global.kafka_topic.clone(), file.kafka.topic.clone(), || {
                DEFAULT_KAFKA_TOPIC.into()
            }),
            kafka_dlq_topic: pick(
                global.kafka_dlq_topic.clone(),
                file.kafka.dlq_topic.clone(),
                || DEFAULT_KAFKA_DLQ_TOPIC.into(),
            ),
            kafka_group: pick(global.kafka_group.clone(), file.kafka.group.clone(), || {
                DEFAULT_KAFKA_GROUP.into()
            }),
            kafka_checkpoint_topic: pick(
                global.kafka_checkpoint_topic.clone(),
                file.kafka.checkpoint_topic.clone(),
                || DEFAULT_KAFKA_CHECKPOINT_TOPIC.into(),
            ),
            kafka_properties: file
                .kafka
                .properties
                .clone()
                .into_iter()
                .chain(global.kafka_properties.iter().cloned())
                .collect(),
            clickhouse_url: pick(
                global.clickhouse_url.clone(),
                file.clickhouse.url.clone(),
                || DEFAULT_CLICKHOUSE_URL.into(),
            ),
            clickhouse_database: pick(
                global.clickhouse_database.clone(),
                file.clickhouse.database.clone(),
                || DEFAULT_CLICKHOUSE_DATABASE.into(),
            ),
            clickhouse_table: pick(
                global.clickhouse_table.clone(),
                file.clickhouse.table.clone(),
                || DEFAULT_CLICKHOUSE_TABLE.into(),
            ),
            clickhouse_user: pick(
                global.clickhouse_user.clone(),
                file.clickhouse.user.clone(),
                || DEFAULT_CLICKHOUSE_USER.into(),
            ),
            clickhouse_password: pick(
                global.clickhouse_password.clone(),
                file.clickhouse.password.clone(),
                String::new,
            ),
            clickhouse_cluster: file.clickhouse.cluster.clone(),
            api_listen,
            log_filter: pick(global.log.clone(), file.log.filter.clone(), || {
                "info".into()
            }),
            log_format: pick(global.log_format, file.log.format, || LogFormat::Text),
        })
    }

    /// The librdkafka client configuration shared by producers and consumers.
    pub fn kafka_client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &self.kafka_brokers);
        for (key, value) in &self.kafka_properties {
            config.set(key, value);
        }
        config
    }

    /// The ClickHouse target as the ingester sees it.
    pub fn clickhouse(&self) -> auditlog_store::ClickHouseConfig {
        auditlog_store::ClickHouseConfig {
            url: self.clickhouse_url.clone(),
            database: self.clickhouse_database.clone(),
            table: self.clickhouse_table.clone(),
            user: self.clickhouse_user.clone(),
            password: self.clickhouse_password.clone(),
            cluster: self.clickhouse_cluster.is_some(),
        }
    }

    /// The schema target of `migrate` (and `ingest --migrate`).
    pub fn schema_target(
        &self,
        args: &MigrateArgs,
        file: &FileConfig,
    ) -> auditlog_store::SchemaTarget {
        let retention_days = args
            .retention_days
            .or(file.retention.days)
            .filter(|days| *days > 0);
        auditlog_store::SchemaTarget {
            database: self.clickhouse_database.clone(),
            table: self.clickhouse_table.clone(),
            retention_days,
            cluster: args
                .cluster
                .clone()
                .or_else(|| self.clickhouse_cluster.clone()),
        }
    }
}

/// `auditlog ingest`'s resolved settings.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub migrate: bool,
    pub metrics_listen: SocketAddr,
    pub config: auditlog_ingester::IngesterConfig,
}

impl IngestSettings {
    pub fn resolve(settings: &Settings, args: &IngestArgs, file: &FileConfig) -> Result<Self> {
        let defaults = auditlog_ingester::BatchLimits::default();
        let poison_defaults = auditlog_ingester::PoisonPolicy::default();
        let ingest = &file.ingest;
        let metrics_listen = match args.metrics_listen.or(ingest.metrics_listen) {
            Some(address) => address,
            None => DEFAULT_INGEST_METRICS_LISTEN
                .parse()
                .context("default metrics address")?,
        };
        let mut clickhouse = settings.clickhouse();
        // `ingest --cluster` (or AUDITLOG_CLICKHOUSE_CLUSTER) means the cluster schema: inserts
        // must then wait for the shards, not only for the node that received them.
        clickhouse.cluster |= args.schema.cluster.is_some();
        let config = auditlog_ingester::IngesterConfig {
            brokers: settings.kafka_brokers.clone(),
            topic: settings.kafka_topic.clone(),
            dlq_topic: settings.kafka_dlq_topic.clone(),
            group: settings.kafka_group.clone(),
            instance_id: args
                .kafka_instance_id
                .clone()
                .or_else(|| file.kafka.instance_id.clone()),
            kafka_properties: settings.kafka_properties.clone(),
            clickhouse,
            batch: auditlog_ingester::BatchLimits {
                max_rows: pick(args.batch_rows, ingest.batch_rows, || defaults.max_rows),
                max_bytes: pick(args.batch_bytes, ingest.batch_bytes, || defaults.max_bytes),
                max_age: pick(
                    args.batch_max_age_ms.map(Duration::from_millis),
                    ingest.batch_max_age_ms.map(Duration::from_millis),
                    || defaults.max_age,
                ),
            },
            max_in_flight_batches: pick(
                args.max_in_flight_batches,
                ingest.max_in_flight_batches,
                || 4,
            ),
            insert_compression: match args
                .insert_compression
                .as_deref()
                .or(ingest.insert_compression.as_deref())
            {
                Some(text) => text.parse().context("the insert compression")?,
                None => auditlog_ingester::InsertCompression::default(),
            },
            retry: auditlog_ingester::RetryPolicy::default(),
            poison: auditlog_ingester::PoisonPolicy {
                window: pick(args.poison_window, ingest.poison_window, || {
                    poison_defaults.window
                }),
                max_poison: pick(args.poison_max, ingest.poison_max, || {
                    poison_defaults.max_poison
                }),
            },
            revoke_timeout: Duration::from_secs(pick(
                args.revoke_timeout_secs,
                ingest.revoke_timeout_secs,
                || 30,
            )),
            shutdown_timeout: Duration::from_secs(pick(
                args.shutdown_timeout_secs,
                ingest.shutdown_timeout_secs,
                || 30,
            )),
            checkpoints: checkpoint_config(settings, args, file)?,
        };
        Ok(Self {
            migrate: args.migrate || ingest.migrate.unwrap_or(false),
            metrics_listen,
            config,
        })
    }
}

/// The ingester's checkpoint signing: the key from `--signing-key`, `--signing-key-file` or
/// `[integrity] signing_key_file`; `None` when none is given.
fn checkpoint_config(
    settings: &Settings,
    args: &IngestArgs,
    file: &FileConfig,
) -> Result<Option<auditlog_ingester::CheckpointConfig>> {
    let pem = match (&args.signing_key, &args.signing_key_file) {
        (Some(pem), _) => pem.clone(),
        (None, Some(path)) => read_key_file(path)?,
        (None, None) => match &file.integrity.signing_key_file {
            Some(path) => read_key_file(path)?,
            None => return Ok(None),
        },
    };
    let signer = auditlog_integrity::CheckpointSigner::from_pem(&pem)
        .context("the checkpoint signing key")?;
    let interval = pick(
        args.checkpoint_interval_secs,
        file.integrity.checkpoint_interval_secs,
        || auditlog_ingester::DEFAULT_CHECKPOINT_INTERVAL.as_secs(),
    );
    Ok(Some(auditlog_ingester::CheckpointConfig {
        signer: std::sync::Arc::new(signer),
        interval: Duration::from_secs(interval),
        topic: settings.kafka_checkpoint_topic.clone(),
    }))
}

fn read_key_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading key file {}", path.display()))
}

/// The public keys `verify` trusts: the flags, else `[integrity] public_keys`.
pub fn trusted_keys(
    flags: &[PathBuf],
    file: &FileConfig,
) -> Result<auditlog_integrity::TrustedKeys> {
    let paths = if flags.is_empty() {
        &file.integrity.public_keys
    } else {
        flags
    };
    if paths.is_empty() {
        anyhow::bail!(
            "no public key to verify with: pass --public-key PATH (from `auditlog keygen`), \
             or set [integrity] public_keys"
        );
    }
    let mut trusted = auditlog_integrity::TrustedKeys::default();
    for path in paths {
        trusted
            .add_pem(&read_key_file(path)?)
            .with_context(|| format!("public key {}", path.display()))?;
    }
    Ok(trusted)
}

/// The producer knobs of `auditlog generate` (and any SDK user configured from a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSettings {
    pub compression: String,
    pub linger: Duration,
    pub batch_bytes: usize,
    pub queue_events: usize,
    pub delivery_timeout: Duration,
}

impl ProducerSettings {
    pub fn resolve(args: &ProducerArgs, file: &FileConfig) -> Self {
        let producer = &file.producer;
        Self {
            compression: pick(
                args.compression.clone(),
                producer.compression.clone(),
                || "lz4".into(),
            ),
            linger: Duration::from_millis(pick(args.linger_ms, producer.linger_ms, || 5)),
            batch_bytes: pick(args.batch_bytes, producer.batch_bytes, || 1024 * 1024),
            queue_events: pick(args.queue_events, producer.queue_events, || 100_000),
            delivery_timeout: Duration::from_millis(pick(
                args.delivery_timeout_ms,
                producer.delivery_timeout_ms,
                || 30_000,
            )),
        }
    }
}

/// `auditlog serve`'s resolved settings.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub query_timeout: Duration,
    pub limits: HttpLimits,
    pub ops_listen: Option<SocketAddr>,
    pub tokens: Vec<ConfiguredToken>,
}

impl ServeSettings {
    pub fn resolve(settings: &Settings, args: &ServeArgs, file: &FileConfig) -> Result<Self> {
        let api = &file.api;
        let defaults = HttpLimits::default();
        let secs = |flag: Option<u64>, key: Option<u64>, default: Duration| {
            flag.or(key).map_or(default, Duration::from_secs)
        };
        let limits = HttpLimits {
            header_read_timeout: secs(
                args.header_read_timeout_secs,
                api.header_read_timeout_secs,
                defaults.header_read_timeout,
            ),
            idle_timeout: secs(
                args.idle_timeout_secs,
                api.idle_timeout_secs,
                defaults.idle_timeout,
            ),
            max_connections: pick(args.max_connections, api.max_connections, || {
                defaults.max_connections
            }),
            max_request_line_bytes: pick(
                args.max_request_line_bytes,
                api.max_request_line_bytes,
                || defaults.max_request_line_bytes,
            ),
            max_header_bytes: pick(args.max_header_bytes, api.max_header_bytes, || {
                defaults.max_header_bytes
            }),
        };
        limits.validate()?;
        Ok(Self {
            listen: settings.api_listen,
            query_timeout: Duration::from_secs(pick(
                args.query_timeout_secs,
                api.query_timeout_secs,
                || 10,
            )),
            limits,
            ops_listen: args.ops_listen.or(api.ops_listen),
            tokens: api.tokens.iter().map(ConfiguredToken::from).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let file: FileConfig = toml::from_str(
            r#"
            [kafka]
            brokers = "file:9092"
            topic = "file-topic"
            [clickhouse]
            database = "filedb"
            "#,
        )
        .unwrap();
        let global = GlobalArgs {
            kafka_brokers: Some("flag:9092".into()),
            ..GlobalArgs::default()
        };
        let settings = Settings::resolve(&global, &file).unwrap();
        assert_eq!(settings.kafka_brokers, "flag:9092");
        assert_eq!(settings.kafka_topic, "file-topic");
        assert_eq!(settings.clickhouse_database, "filedb");
        assert_eq!(settings.clickhouse_table, DEFAULT_CLICKHOUSE_TABLE);
        assert_eq!(settings.api_listen.to_string(), DEFAULT_API_LISTEN);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let error = toml::from_str::<FileConfig>("[kafka]\nbrokerz = \"x\"\n").unwrap_err();
        assert!(error.to_string().contains("brokerz"), "{error}");
    }

    #[test]
    fn the_password_is_never_printed() {
        let file: FileConfig = toml::from_str("[clickhouse]\npassword = \"hunter2\"\n").unwrap();
        let settings = Settings::resolve(&GlobalArgs::default(), &file).unwrap();
        assert_eq!(settings.clickhouse_password, "hunter2");
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn zero_retention_days_means_keep_forever() {
        let file: FileConfig = toml::from_str("[retention]\ndays = 30\n").unwrap();
        let settings = Settings::resolve(&GlobalArgs::default(), &file).unwrap();
        let from_file = settings.schema_target(&MigrateArgs::default(), &file);
        assert_eq!(from_file.retention_days, Some(30));
        let zero = MigrateArgs {
            retention_days: Some(0),
            cluster: None,
        };
        assert_eq!(settings.schema_target(&zero, &file).retention_days, None);
    }
}
