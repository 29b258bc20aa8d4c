//! The command line: global connection flags shared by every subcommand, then one
//! subcommand. Every flag that has an environment variable is also a TOML key; see
//! `config.rs` for the precedence and `docs/configuration.md` for the reference.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The audit-log pipeline: Kafka → ClickHouse, queried with Coder's filter language.
#[derive(Debug, Parser)]
#[command(name = "auditlog", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the services are. The same settings point every subcommand at the same place.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (flags and environment variables take precedence over it).
    #[arg(long, env = "AUDITLOG_CONFIG", global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers, comma-separated [default: 127.0.0.1:9092].
    #[arg(
        long,
        env = "AUDITLOG_KAFKA_BROKERS",
        global = true,
        value_name = "HOST:PORT,..."
    )]
    pub kafka_brokers: Option<String>,
    /// The audit event topic [default: audit-events].
    #[arg(
        long,
        env = "AUDITLOG_KAFKA_TOPIC",
        global = true,
        value_name = "TOPIC"
    )]
    pub kafka_topic: Option<String>,
    /// The dead-letter topic [default: audit-events-dlq].
    #[arg(
        long,
        env = "AUDITLOG_KAFKA_DLQ_TOPIC",
        global = true,
        value_name = "TOPIC"
    )]
    pub kafka_dlq_topic: Option<String>,
    /// The ingesters' consumer group [default: auditlog-ingester].
    #[arg(
        long,
        env = "AUDITLOG_KAFKA_GROUP",
        global = true,
        value_name = "GROUP"
    )]
    pub kafka_group: Option<String>,
    /// A librdkafka property passed through (security, timeouts), e.g.
    /// `security.protocol=SASL_SSL`; repeatable, and merged over `[kafka.properties]`.
    #[arg(
        long = "kafka-property",
        env = "AUDITLOG_KAFKA_PROPERTIES",
        global = true,
        value_name = "KEY=VALUE",
        value_delimiter = ',',
        value_parser = parse_key_value
    )]
    pub kafka_properties: Vec<(String, String)>,
    /// The topic signed checkpoints also go to, a copy outside ClickHouse
    /// [default: audit-events-checkpoints].
    #[arg(
        long,
        env = "AUDITLOG_KAFKA_CHECKPOINT_TOPIC",
        global = true,
        value_name = "TOPIC"
    )]
    pub kafka_checkpoint_topic: Option<String>,
    /// ClickHouse HTTP(S) URL [default: http://127.0.0.1:8123].
    #[arg(
        long,
        env = "AUDITLOG_CLICKHOUSE_URL",
        global = true,
        value_name = "URL"
    )]
    pub clickhouse_url: Option<String>,
    /// ClickHouse database [default: audit].
    #[arg(
        long,
        env = "AUDITLOG_CLICKHOUSE_DATABASE",
        global = true,
        value_name = "NAME"
    )]
    pub clickhouse_database: Option<String>,
    /// ClickHouse table [default: audit_logs].
    #[arg(
        long,
        env = "AUDITLOG_CLICKHOUSE_TABLE",
        global = true,
        value_name = "NAME"
    )]
    pub clickhouse_table: Option<String>,
    /// ClickHouse user [default: default].
    #[arg(
        long,
        env = "AUDITLOG_CLICKHOUSE_USER",
        global = true,
        value_name = "USER"
    )]
    pub clickhouse_user: Option<String>,
    /// ClickHouse password [default: empty].
    #[arg(
        long,
        env = "AUDITLOG_CLICKHOUSE_PASSWORD",
        global = true,
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub clickhouse_password: Option<String>,
    /// Address of the HTTP API [default: 127.0.0.1:8080].
    #[arg(long, env = "AUDITLOG_API_LISTEN", global = true, value_name = "ADDR")]
    pub api_listen: Option<SocketAddr>,
    /// Log filter, in tracing's EnvFilter syntax [default: info].
    #[arg(long, env = "AUDITLOG_LOG", global = true, value_name = "FILTER")]
    pub log: Option<String>,
    /// Log format [default: text].
    #[arg(long, env = "AUDITLOG_LOG_FORMAT", global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// How log lines are written (always to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the Kafka topics and apply the ClickHouse schema and retention TTL (idempotent).
    Migrate(MigrateCommandArgs),
    /// Consume audit events from Kafka and write them into ClickHouse (run several to scale).
    Ingest(IngestArgs),
    /// Produce realistic Coder-like audit events through the SDK.
    Generate(GenerateArgs),
    /// Query audit events with Coder's filter language.
    Query(QueryArgs),
    /// Serve the Coder-compatible audit API.
    Serve(ServeArgs),
    /// Inspect or replay the dead-letter topic.
    Dlq(DlqArgs),
    /// Print the ClickHouse DDL of read-only analyst access (role, grants, row policies,
    /// optionally a user); connects to nothing.
    AccessDdl(AccessDdlArgs),
    /// Write an Ed25519 key pair for signing checkpoints (PATH and PATH.pub).
    Keygen(KeygenArgs),
    /// Prove that no stored event was deleted, changed or forged: recompute every batch
    /// digest from the stored rows and check the chain against the signed checkpoints.
    Verify(VerifyArgs),
    /// Stream audit events to the sinks configured as `[[stream.sinks]]` (SIEMs, webhooks),
    /// each in its own consumer group; offsets are committed only after delivery.
    Stream(StreamArgs),
}

#[derive(Debug, Clone, Default, Args)]
pub struct StreamArgs {
    /// Run only this sink; repeatable [default: every configured sink].
    #[arg(
        long = "sink",
        env = "AUDITLOG_STREAM_SINKS",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub sinks: Vec<String>,
    /// Exit once every sink has delivered up to the end offsets seen at start (backfills,
    /// cron jobs, tests).
    #[arg(long, env = "AUDITLOG_STREAM_UNTIL_CAUGHT_UP")]
    pub until_caught_up: bool,
    /// Address of the /metrics, /healthz and /readyz endpoints [default: 127.0.0.1:9465].
    #[arg(long, env = "AUDITLOG_STREAM_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    #[command(subcommand)]
    pub command: Option<StreamCommand>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum StreamCommand {
    /// Re-send a time range (read from ClickHouse) or an offset range (read from Kafka,
    /// without any consumer group) to one configured sink, then print what was sent.
    Backfill(BackfillArgs),
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("range").required(true).args(["from", "partition"])))]
pub struct BackfillArgs {
    /// The sink to re-send to, as named in `[[stream.sinks]]`.
    #[arg(long, value_name = "NAME")]
    pub sink: String,
    /// The first instant re-sent (RFC 3339, or a day: its midnight UTC); with --to.
    #[arg(
        long,
        value_name = "TIME",
        requires = "to",
        conflicts_with = "partition"
    )]
    pub from: Option<String>,
    /// The first instant not re-sent (RFC 3339, or a day: its midnight UTC).
    #[arg(long, value_name = "TIME", requires = "from")]
    pub to: Option<String>,
    /// The partition whose offsets are re-sent; with --from-offset and --to-offset.
    #[arg(long, value_name = "P", requires_all = ["from_offset", "to_offset"])]
    pub partition: Option<i32>,
    /// The first offset re-sent.
    #[arg(long, value_name = "OFFSET", requires = "partition")]
    pub from_offset: Option<i64>,
    /// The first offset not re-sent.
    #[arg(long, value_name = "OFFSET", requires = "partition")]
    pub to_offset: Option<i64>,
}

#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Where the private key goes (PKCS#8 PEM, mode 0600); the public key goes to PATH.pub.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

/// Where `auditlog verify` reads checkpoints from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointSource {
    /// The `ingest_checkpoints` table.
    ClickHouse,
    /// The checkpoint topic.
    Kafka,
    /// A file of envelopes, one JSON object per line.
    File(PathBuf),
}

impl std::fmt::Display for CheckpointSource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClickHouse => formatter.write_str("clickhouse"),
            Self::Kafka => formatter.write_str("kafka"),
            Self::File(path) => write!(formatter, "file:{}", path.display()),
        }
    }
}

fn parse_checkpoint_source(text: &str) -> Result<CheckpointSource, String> {
    match text {
        "clickhouse" => Ok(CheckpointSource::ClickHouse),
        "kafka" => Ok(CheckpointSource::Kafka),
        _ => match text.strip_prefix("file:") {
            Some(path) if !path.is_empty() => Ok(CheckpointSource::File(PathBuf::from(path))),
            _ => Err(format!(
                "expected clickhouse, kafka or file:PATH, got {text:?}"
            )),
        },
    }
}

/// Output formats of `auditlog verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormat {
    /// A summary line, then one line per problem.
    Text,
    /// The whole report (or proof) as one JSON document.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Only batches with events at or after this time (RFC 3339, or a date: 2026-01-31).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only batches with events before this time (RFC 3339, or a date, exclusive).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Only this partition of the topic.
    #[arg(long, value_name = "N")]
    pub partition: Option<i32>,
    /// A trusted public key (PEM); repeatable, for rotation [default: `[integrity]
    /// public_keys`].
    #[arg(
        long = "public-key",
        env = "AUDITLOG_PUBLIC_KEYS",
        value_delimiter = ',',
        value_name = "PATH"
    )]
    pub public_keys: Vec<PathBuf>,
    /// Where checkpoints come from: clickhouse, kafka or file:PATH; repeatable, and every
    /// source must hold every checkpoint [default: clickhouse and kafka].
    #[arg(long = "checkpoints", value_name = "SOURCE", value_parser = parse_checkpoint_source)]
    pub checkpoints: Vec<CheckpointSource>,
    /// Rows older than this many days are expired, not deleted [default: `migrate`'s
    /// retention].
    #[arg(long, env = "AUDITLOG_RETENTION_DAYS", value_name = "DAYS")]
    pub retention_days: Option<u32>,
    /// Print the proof of this one event (and check it) instead of verifying everything.
    #[arg(long, value_name = "ID")]
    pub event: Option<uuid::Uuid>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
    pub format: VerifyFormat,
    /// Do not print progress on stderr.
    #[arg(long)]
    pub no_progress: bool,
    /// Check the S3 archive the `s3` sink wrote at s3://BUCKET/PREFIX instead: every
    /// manifest chain, object hash and offset. Credentials from AUDITLOG_S3_ACCESS_KEY and
    /// AUDITLOG_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), the region from
    /// AUDITLOG_S3_REGION (or AWS_REGION).
    #[arg(long, value_name = "S3_URL")]
    pub archive: Option<String>,
    /// The archive's S3-compatible endpoint [default: AWS's, for the region].
    #[arg(long, env = "AUDITLOG_S3_ENDPOINT", value_name = "URL")]
    pub archive_endpoint: Option<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct MigrateCommandArgs {
    #[command(flatten)]
    pub schema: MigrateArgs,
    #[command(flatten)]
    pub topics: TopicArgs,
    /// Only create the Kafka topics; leave ClickHouse alone.
    #[arg(long, conflicts_with = "skip_topics")]
    pub topics_only: bool,
    /// Only apply the ClickHouse schema; leave the Kafka topics alone.
    #[arg(long)]
    pub skip_topics: bool,
}

/// How `migrate` creates the topics that are missing (existing topics are never changed).
#[derive(Debug, Clone, Default, Args)]
pub struct TopicArgs {
    /// Partitions of the audit event topic [default: 6].
    #[arg(long, env = "AUDITLOG_KAFKA_PARTITIONS", value_name = "N")]
    pub kafka_partitions: Option<i32>,
    /// Partitions of the dead-letter topic [default: 1].
    #[arg(long, env = "AUDITLOG_KAFKA_DLQ_PARTITIONS", value_name = "N")]
    pub kafka_dlq_partitions: Option<i32>,
    /// Replicas per partition; the cluster needs at least this many brokers [default: 3].
    #[arg(long, env = "AUDITLOG_KAFKA_REPLICATION_FACTOR", value_name = "N")]
    pub kafka_replication_factor: Option<i32>,
    /// The topics' min.insync.replicas: replicas that must have an event before an acks=all
    /// producer is told it is stored [default: 2].
    #[arg(long, env = "AUDITLOG_KAFKA_MIN_INSYNC_REPLICAS", value_name = "N")]
    pub kafka_min_insync_replicas: Option<i32>,
    /// A topic config for both topics, e.g. `retention.ms=604800000`; repeatable, and merged
    /// over `[kafka.topic_config]`.
    #[arg(
        long = "kafka-topic-config",
        env = "AUDITLOG_KAFKA_TOPIC_CONFIG",
        value_name = "KEY=VALUE",
        value_delimiter = ',',
        value_parser = parse_key_value
    )]
    pub kafka_topic_config: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct MigrateArgs {
    /// Keep rows this many days (a TTL); 0 removes the TTL [default: keep forever].
    #[arg(long, env = "AUDITLOG_RETENTION_DAYS", value_name = "DAYS")]
    pub retention_days: Option<u32>,
    /// Apply the cluster variant ON CLUSTER this cluster (Replicated + Distributed tables).
    #[arg(long, env = "AUDITLOG_CLICKHOUSE_CLUSTER", value_name = "CLUSTER")]
    pub cluster: Option<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct IngestArgs {
    /// Apply the ClickHouse schema migrations before consuming (topics are `migrate`'s).
    #[arg(long, env = "AUDITLOG_INGEST_MIGRATE")]
    pub migrate: bool,
    /// This member's static group membership id (`group.instance.id`), stable across
    /// restarts, e.g. a StatefulSet pod name: a restart then gets its partitions back at once
    /// [default: none, dynamic membership].
    #[arg(long, env = "AUDITLOG_KAFKA_INSTANCE_ID", value_name = "ID")]
    pub kafka_instance_id: Option<String>,
    #[command(flatten)]
    pub schema: MigrateArgs,
    /// Seal a batch at this many messages [default: 100000].
    #[arg(long, env = "AUDITLOG_INGEST_BATCH_ROWS", value_name = "N")]
    pub batch_rows: Option<usize>,
    /// Seal a batch at this many encoded bytes [default: 16777216].
    #[arg(long, env = "AUDITLOG_INGEST_BATCH_BYTES", value_name = "BYTES")]
    pub batch_bytes: Option<usize>,
    /// Seal a non-empty batch this many milliseconds after its first message [default: 1000].
    #[arg(long, env = "AUDITLOG_INGEST_BATCH_MAX_AGE_MS", value_name = "MS")]
    pub batch_max_age_ms: Option<u64>,
    /// Batches written at once [default: 4].
    #[arg(long, env = "AUDITLOG_INGEST_MAX_IN_FLIGHT", value_name = "N")]
    pub max_in_flight_batches: Option<usize>,
    /// Compression of insert bodies: none or lz4 [default: lz4].
    #[arg(long, env = "AUDITLOG_INGEST_INSERT_COMPRESSION", value_name = "CODEC")]
    pub insert_compression: Option<String>,
    /// Address of the /metrics, /healthz and /readyz endpoints [default: 127.0.0.1:9464].
    #[arg(long, env = "AUDITLOG_INGEST_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Stop when more than this many of the last --poison-window messages are poison [default: 100].
    #[arg(long, env = "AUDITLOG_INGEST_POISON_MAX", value_name = "N")]
    pub poison_max: Option<usize>,
    /// The sliding window of messages the poison limit applies to [default: 1000].
    #[arg(long, env = "AUDITLOG_INGEST_POISON_WINDOW", value_name = "N")]
    pub poison_window: Option<usize>,
    /// The Ed25519 key that signs checkpoints (PKCS#8 PEM, from `auditlog keygen`)
    /// [default: `[integrity] signing_key_file`; without one, nothing is signed].
    #[arg(long, env = "AUDITLOG_SIGNING_KEY_FILE", value_name = "PATH")]
    pub signing_key_file: Option<PathBuf>,
    /// The signing key itself, PEM text (e.g. from a secret); takes precedence over the file.
    #[arg(
        long,
        env = "AUDITLOG_SIGNING_KEY",
        hide_env_values = true,
        value_name = "PEM"
    )]
    pub signing_key: Option<String>,
    /// Seconds between signed checkpoints [default: 60].
    #[arg(long, env = "AUDITLOG_CHECKPOINT_INTERVAL_SECS", value_name = "SECS")]
    pub checkpoint_interval_secs: Option<u64>,
    /// Seconds a SIGTERM may take to flush and commit before exiting [default: 30].
    #[arg(
        long,
        env = "AUDITLOG_INGEST_SHUTDOWN_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    pub shutdown_timeout_secs: Option<u64>,
    /// Seconds a revoked partition's batches may take to be written and committed before
    /// the partition is let go uncommitted [default: 30].
    #[arg(long, env = "AUDITLOG_INGEST_REVOKE_TIMEOUT_SECS", value_name = "SECS")]
    pub revoke_timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ProducerArgs {
    /// Compression of Kafka batches: none, gzip, snappy, lz4, zstd [default: lz4].
    #[arg(long, env = "AUDITLOG_PRODUCER_COMPRESSION", value_name = "CODEC")]
    pub compression: Option<String>,
    /// How long the producer waits to fill a batch, in milliseconds [default: 5].
    #[arg(long, env = "AUDITLOG_PRODUCER_LINGER_MS", value_name = "MS")]
    pub linger_ms: Option<u64>,
    /// Largest Kafka batch in bytes [default: 1048576].
    #[arg(long, env = "AUDITLOG_PRODUCER_BATCH_BYTES", value_name = "BYTES")]
    pub batch_bytes: Option<usize>,
    /// Events the local queue holds before `send` waits [default: 100000].
    #[arg(long, env = "AUDITLOG_PRODUCER_QUEUE_EVENTS", value_name = "N")]
    pub queue_events: Option<usize>,
    /// How long an event may wait for delivery, in milliseconds [default: 30000].
    #[arg(long, env = "AUDITLOG_PRODUCER_DELIVERY_TIMEOUT_MS", value_name = "MS")]
    pub delivery_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// How many events to produce.
    #[arg(long, value_name = "N")]
    pub count: u64,
    /// Events per second (default: as fast as the broker takes them).
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    pub rate: Option<f64>,
    /// Seed of the generator; the same seed gives the same events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Do not draw a progress bar even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub producer: ProducerArgs,
}

/// Output formats of `auditlog query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for a terminal (the default on a TTY).
    Table,
    /// One JSON document: Coder's response shape.
    Json,
    /// One JSON object per line (the default when piped).
    Ndjson,
    /// Comma-separated values with a header row.
    Csv,
}

#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// The filter, in Coder's language, e.g. 'resource_type:workspace action:create'.
    #[arg(default_value = "")]
    pub filter: String,
    /// Print the parsed filter as JSON and exit (exit 2 on an invalid filter).
    #[arg(long, conflicts_with_all = ["sql", "count"])]
    pub parse: bool,
    /// Print the SQL and its parameters instead of running it.
    #[arg(long, conflicts_with = "count")]
    pub sql: bool,
    /// Print the exact number of matching events (deduplicated, uncapped).
    #[arg(long)]
    pub count: bool,
    /// Who `username:me` means.
    #[arg(long = "as", value_name = "USERNAME")]
    pub as_user: Option<String>,
    /// Events per page.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Events to skip (offset pagination, as Coder).
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
    /// Continue after this cursor (keyset pagination, fast at any depth).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    /// Output format [default: table on a terminal, ndjson otherwise].
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Longest a query may run, in seconds, before the API answers 503 [default: 10].
    #[arg(long, env = "AUDITLOG_API_QUERY_TIMEOUT_SECS", value_name = "SECS")]
    pub query_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request's line and headers, counted from its first
    /// byte [default: 10].
    #[arg(
        long,
        env = "AUDITLOG_API_HEADER_READ_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a connection may sit with no request in progress (new or kept alive), or
    /// with its client reading nothing of a response, before it is closed [default: 60].
    #[arg(long, env = "AUDITLOG_API_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Connections served at once; more are answered 503 and closed [default: 1024].
    #[arg(long, env = "AUDITLOG_API_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Longest request line (method, path and query) in bytes; longer is a 414 [default: 16384].
    #[arg(
        long,
        env = "AUDITLOG_API_MAX_REQUEST_LINE_BYTES",
        value_name = "BYTES"
    )]
    pub max_request_line_bytes: Option<usize>,
    /// Most bytes of request headers; more is a 431 [default: 32768].
    #[arg(long, env = "AUDITLOG_API_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,
    /// A second address that serves only /healthz, /readyz and /metrics, with its own
    /// connections, so probes are answered however busy the API is [default: none].
    #[arg(long, env = "AUDITLOG_API_OPS_LISTEN", value_name = "ADDR")]
    pub ops_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct AccessDdlArgs {
    /// The role to create [default: auditlog_analyst, or auditlog_org_auditor with --organization].
    #[arg(long, value_name = "NAME")]
    pub role: Option<String>,
    /// Limit the role to this organization's events, as the API's org_auditor; repeatable
    /// [default: every organization and the site-wide events].
    #[arg(long = "organization", value_name = "UUID")]
    pub organizations: Vec<uuid::Uuid>,
    /// Also create this user, with the role as its default role.
    #[arg(long, value_name = "NAME", requires = "password_sha256")]
    pub user: Option<String>,
    /// The SHA-256 of the user's password, 64 hex digits.
    #[arg(long, value_name = "HEX", requires = "user")]
    pub password_sha256: Option<String>,
    /// A user that must keep reading every row once row policies exist (the API's, the
    /// ingester's); repeatable [default: the configured ClickHouse user].
    #[arg(long = "service-user", value_name = "NAME")]
    pub service_users: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead-lettered messages with their reasons.
    Inspect {
        #[command(flatten)]
        filter: DlqFilterArgs,
        /// Print one JSON object per letter instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send dead-lettered messages back to the main topic (after a fix).
    Replay {
        #[command(flatten)]
        filter: DlqFilterArgs,
        /// Only show what would be re-sent and skipped; send nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Default, Args)]
pub struct DlqFilterArgs {
    /// Only letters whose reason or kind contains this text.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Only letters of this kind: decode, unknown_schema or invalid_event.
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Only letters from this source partition.
    #[arg(long, value_name = "N")]
    pub partition: Option<i32>,
    /// Only letters whose source offset is at least this.
    #[arg(long, value_name = "OFFSET")]
    pub from_offset: Option<i64>,
    /// Only letters whose source offset is at most this.
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
}
