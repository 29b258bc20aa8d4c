//! What the producer can be told, and what it fixes in code.
//!
//! Tunable: brokers, topic, compression, linger, batch size, queue capacity, delivery
//! timeout, framing, and any librdkafka property (security, client id, ...), passed through
//! verbatim. Fixed, because the SDK's guarantees rest on them: the idempotent producer and
//! `acks=all` (no duplicates or reordering on retry, no loss on leader failover), and the
//! queue bound and message timeout, which come from the typed settings so that memory and
//! waiting stay bounded. Setting any of them as a raw property is an error, not a silent
//! override.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use auditlog_event::Framing;
use rdkafka::ClientConfig;

use crate::ProducerError;

/// Default compression of Kafka batches: cheap on CPU, good on repetitive JSON.
pub const DEFAULT_COMPRESSION: Compression = Compression::Lz4;
/// Default time the producer waits to fill a batch.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(5);
/// Default largest batch, in bytes.
pub const DEFAULT_BATCH_BYTES: usize = 1024 * 1024;
/// Default capacity of the local queue, in events.
pub const DEFAULT_QUEUE_CAPACITY: usize = 100_000;
/// Default time an event may take from enqueue to acknowledgement.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// librdkafka's upper bound for `linger.ms`.
const MAX_LINGER: Duration = Duration::from_millis(900_000);

/// How far librdkafka's own message limit sits above the SDK's permits. librdkafka frees
/// a slot only after the delivery report, in which the SDK has already returned the permit,
/// so equal limits would make it refuse messages the permits allowed.
const LIBRDKAFKA_QUEUE_HEADROOM: usize = 1024;

/// librdkafka properties the SDK owns, with the typed setting to use instead (if any).
const FIXED_PROPERTIES: &[(&str, &str)] = &[
    ("bootstrap.servers", "set the brokers of the builder"),
    ("metadata.broker.list", "set the brokers of the builder"),
    (
        "enable.idempotence",
        "the sdk always uses the idempotent producer",
    ),
    ("acks", "the sdk always uses acks=all"),
    ("request.required.acks", "the sdk always uses acks=all"),
    ("message.timeout.ms", "use the delivery timeout setting"),
    ("delivery.timeout.ms", "use the delivery timeout setting"),
    (
        "queue.buffering.max.messages",
        "use the queue capacity setting",
    ),
    ("compression.type", "use the compression setting"),
    ("compression.codec", "use the compression setting"),
    ("linger.ms", "use the linger setting"),
    ("queue.buffering.max.ms", "use the linger setting"),
    ("batch.size", "use the batch bytes setting"),
    ("transactional.id", "the sdk does not use transactions"),
    (
        "enable.gapless.guarantee",
        "the sdk relies on librdkafka's default",
    ),
];

/// Compression codec of Kafka batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip: small, slow.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4: the default.
    #[default]
    Lz4,
    /// Zstandard: smallest at moderate cost.
    Zstd,
}

impl Compression {
    /// The librdkafka name of the codec.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = ProducerError;

    /// Parses `none`, `gzip`, `snappy`, `lz4` or `zstd`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "snappy" => Ok(Compression::Snappy),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(ProducerError::Config {
                key: "compression".into(),
                reason: format!("{text:?} is not one of none, gzip, snappy, lz4, zstd"),
            }),
        }
    }
}

/// Every setting of a [`Producer`](crate::Producer). Build one with
/// [`Producer::builder`](crate::Producer::builder) or fill the fields and call
/// [`ProducerBuilder::from_config`](crate::ProducerBuilder::from_config).
#[derive(Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Kafka bootstrap servers, comma-separated `host:port`.
    pub brokers: String,
    /// The topic events go to.
    pub topic: String,
    /// librdkafka properties passed through verbatim: `security.protocol`, `sasl.*`,
    /// `ssl.*`, `client.id`, ... The ones the SDK fixes are refused (see the module doc).
    pub properties: BTreeMap<String, String>,
    /// Compression of Kafka batches.
    pub compression: Compression,
    /// How long the producer waits to fill a batch (`linger.ms`).
    pub linger: Duration,
    /// Largest batch in bytes (`batch.size`).
    pub batch_bytes: usize,
    /// Events enqueued and not yet acknowledged, at most; beyond it `send` and `record`
    /// wait and `try_record` fails with [`ProducerError::QueueFull`].
    pub queue_capacity: usize,
    /// How long an event may take from enqueue to acknowledgement before it fails
    /// (`message.timeout.ms`); also the longest `send` and `record` wait for queue room.
    pub delivery_timeout: Duration,
    /// How each message announces its schema.
    pub framing: Framing,
}

impl fmt::Debug for ProducerConfig {
    // Property values may be passwords (sasl.password, ssl.key.password): keys only.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ProducerConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .field("compression", &self.compression)
            .field("linger", &self.linger)
            .field("batch_bytes", &self.batch_bytes)
            .field("queue_capacity", &self.queue_capacity)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("framing", &self.framing)
            .finish()
    }
}

impl ProducerConfig {
    /// The defaults, for `brokers` and `topic`.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        ProducerConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            properties: BTreeMap::new(),
            compression: DEFAULT_COMPRESSION,
            linger: DEFAULT_LINGER,
            batch_bytes: DEFAULT_BATCH_BYTES,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT,
            framing: Framing::SingleObject,
        }
    }

    /// Checks the settings and turns them into librdkafka's configuration.
    ///
    /// ```
    /// use auditlog_producer::ProducerConfig;
    ///
    /// let mut config = ProducerConfig::new("127.0.0.1:9092", "audit-events");
    /// let client_config = config.client_config()?;
    /// assert_eq!(client_config.get("acks"), Some("all"));
    /// assert_eq!(client_config.get("enable.idempotence"), Some("true"));
    ///
    /// config.properties.insert("acks".into(), "1".into());
    /// assert!(config.client_config().is_err());
    /// # Ok::<(), auditlog_producer::ProducerError>(())
    /// ```
    pub fn client_config(&self) -> Result<ClientConfig, ProducerError> {
        self.check()?;
        let mut config = ClientConfig::new();
        // Defaults a user may change: murmur2 puts a key on the same partition as the Java
        // and Go clients do, so every producer of a topic keeps one resource together.
        config.set("partitioner", "murmur2_random");
        config.set("client.id", "auditlog-producer");
        // librdkafka checks message timeouts in the broker thread, which sleeps through its
        // reconnect backoff (up to 10 s by default): with a broker down, an event would
        // outlive its delivery timeout by that much. One second keeps the overshoot small.
        config.set("reconnect.backoff.max.ms", "1000");
        // A topic the cluster does not know is reported missing this long after first use,
        // instead of librdkafka's 30 s: clusters that refuse to create topics on first use
        // (most) then fail every event of a misnamed topic within seconds, naming it.
        // Creation propagates in far less time, so a just-created topic is not misjudged.
        config.set("topic.metadata.propagation.max.ms", "3000");
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
            .set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                self.delivery_timeout.as_millis().to_string(),
            )
            .set(
                "queue.buffering.max.messages",
                self.queue_capacity
                    .saturating_add(LIBRDKAFKA_QUEUE_HEADROOM)
                    .min(i32::MAX as usize)
                    .to_string(),
            )
            .set("compression.type", self.compression.as_str())
            .set("linger.ms", self.linger.as_millis().to_string())
            .set("batch.size", self.batch_bytes.to_string());
        Ok(config)
    }

    fn check(&self) -> Result<(), ProducerError> {
        let invalid = |key: &str, reason: String| ProducerError::Config {
            key: key.to_owned(),
            reason,
        };
        if self.brokers.trim().is_empty() {
            return Err(invalid("brokers", "must not be empty".into()));
        }
        if self.topic.is_empty() {
            return Err(invalid("topic", "must not be empty".into()));
        }
        if let Some((key, reason)) = FIXED_PROPERTIES
            .iter()
            .find(|(key, _)| self.properties.contains_key(*key))
        {
            return Err(invalid(key, format!("is fixed by the sdk: {reason}")));
        }
        let max_i32 = i32::MAX as usize;
        if !(1..=max_i32).contains(&self.queue_capacity) {
            return Err(invalid(
                "queue_capacity",
                format!("{} is not in 1..={max_i32}", self.queue_capacity),
            ));
        }
        if !(1..=max_i32).contains(&self.batch_bytes) {
            return Err(invalid(
                "batch_bytes",
                format!("{} is not in 1..={max_i32}", self.batch_bytes),
            ));
        }
        if self.linger > MAX_LINGER {
            return Err(invalid(
                "linger",
                format!("{:?} is longer than {MAX_LINGER:?}", self.linger),
            ));
        }
        // librdkafka reads a zero message timeout as "wait forever", which would let `send`
        // block without bound.
        let timeout_ms = self.delivery_timeout.as_millis();
        if timeout_ms == 0 || timeout_ms > max_i32 as u128 {
            return Err(invalid(
                "delivery_timeout",
                format!(
                    "{:?} is not between 1 ms and {max_i32} ms",
                    self.delivery_timeout
                ),
            ));
        }
        // librdkafka refuses this combination at client creation with a vaguer message.
        if self.linger >= self.delivery_timeout {
            return Err(invalid(
                "linger",
                format!(
                    "{:?} must be shorter than the delivery timeout {:?}",
                    self.linger, self.delivery_timeout
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correctness_settings_are_fixed_and_typed_settings_applied() {
        let mut config = ProducerConfig::new("b:9092", "t");
        config.compression = Compression::Zstd;
        config.linger = Duration::from_millis(20);
        config.queue_capacity = 7;
        config.delivery_timeout = Duration::from_secs(2);
        config
            .properties
            .insert("security.protocol".into(), "sasl_ssl".into());
        let client = config.client_config().unwrap();
        assert_eq!(client.get("enable.idempotence"), Some("true"));
        assert_eq!(client.get("acks"), Some("all"));
        assert_eq!(client.get("compression.type"), Some("zstd"));
        assert_eq!(client.get("linger.ms"), Some("20"));
        assert_eq!(client.get("queue.buffering.max.messages"), Some("1031"));
        assert_eq!(client.get("message.timeout.ms"), Some("2000"));
        assert_eq!(client.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(client.get("bootstrap.servers"), Some("b:9092"));
    }

    #[test]
    fn fixed_properties_are_refused_with_the_reason() {
        for key in [
            "enable.idempotence",
            "acks",
            "message.timeout.ms",
            "linger.ms",
        ] {
            let mut config = ProducerConfig::new("b:9092", "t");
            config.properties.insert(key.into(), "x".into());
            let error = config.client_config().unwrap_err();
            assert!(
                error.to_string().starts_with(&format!(
                    "invalid producer setting {key}: is fixed by the sdk"
                )),
                "{error}"
            );
        }
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        let with = |change: fn(&mut ProducerConfig)| {
            let mut config = ProducerConfig::new("b:9092", "t");
            change(&mut config);
            config.client_config().unwrap_err().to_string()
        };
        assert_eq!(
            with(|config| config.queue_capacity = 0),
            "invalid producer setting queue_capacity: 0 is not in 1..=2147483647"
        );
        assert!(
            with(|config| config.delivery_timeout = Duration::ZERO).contains("delivery_timeout")
        );
        assert!(with(|config| config.linger = Duration::from_secs(3600)).contains("linger"));
        assert_eq!(
            with(|config| config.linger = Duration::from_secs(30)),
            "invalid producer setting linger: 30s must be shorter than the delivery timeout 30s"
        );
        assert!(with(|config| config.topic.clear()).contains("topic"));
        assert!(with(|config| config.brokers.clear()).contains("brokers"));
    }

    #[test]
    fn compression_parses_its_names() {
        assert_eq!("LZ4".parse::<Compression>().unwrap(), Compression::Lz4);
        assert_eq!("none".parse::<Compression>().unwrap(), Compression::None);
        assert_eq!(
            "brotli".parse::<Compression>().unwrap_err().to_string(),
            r#"invalid producer setting compression: "brotli" is not one of none, gzip, snappy, lz4, zstd"#
        );
    }

    #[test]
    fn debug_never_prints_property_values() {
        let mut config = ProducerConfig::new("b:9092", "t");
        config
            .properties
            .insert("sasl.password".into(), "hunter2".into());
        let text = format!("{config:?}");
        assert!(
            text.contains("sasl.password") && !text.contains("hunter2"),
            "{text}"
        );
    }
}
