//! The SDK's hot path: what a service pays per audit event.
//!
//! Prints a summary first, every figure next to a baseline measured in the same run:
//! - encode+enqueue (`try_record`: validate, encode, hand to librdkafka) per core, against
//!   validate+encode alone, and the p50/p99/p999 latency of single `try_record` calls;
//! - Avro encode and decode per event, the hand-rolled fast path against apache-avro;
//! - the traffic generator's speed.
//!
//! Then criterion measures the same operations in detail. Events are a realistic mix from
//! the traffic generator. librdkafka needs somewhere to send: the local broker when it
//! answers (`AUDITLOG_KAFKA_BROKERS`, default 127.0.0.1:9092; a fresh topic per run), else an
//! unreachable address whose queue is purged between rounds. The summary says which.

use std::hint::black_box;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use auditlog_producer::event::{AuditEvent, EventCodec, Framing, newest_schema};
use auditlog_producer::{Producer, ProducerError};
use auditlog_traffic::TrafficGenerator;
use criterion::{Criterion, Throughput};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use time::macros::datetime;

/// Distinct events cycled through by every measurement.
const POOL_EVENTS: usize = 50_000;
/// Events per round of the enqueue measurements; the queue holds a whole round.
const ROUND_EVENTS: usize = 100_000;
/// Rounds of the enqueue summary.
const ROUNDS: usize = 5;
/// A round, and then some: `try_record` never finds the queue full while measured.
const QUEUE_CAPACITY: usize = ROUND_EVENTS + 1_000;
/// Length of the single-object header in front of the datum.
const SINGLE_OBJECT_HEADER_LEN: usize = 10;
/// Where nothing listens: librdkafka queues and never sends.
const UNREACHABLE_BROKER: &str = "127.0.0.1:1";

fn pool() -> Vec<AuditEvent> {
    TrafficGenerator::new(1)
        .with_time_span(
            datetime!(2025-06-01 0:00 UTC),
            datetime!(2025-06-02 0:00 UTC),
            POOL_EVENTS as u64,
        )
        .collect()
}

/// Where the producers of this run send.
struct Target {
    runtime: tokio::runtime::Runtime,
    brokers: String,
    topic: String,
    real_broker: bool,
}

impl Target {
    fn discover() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let brokers =
            std::env::var("AUDITLOG_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
        let topic = format!("producer_bench_{}", std::process::id());
        let reachable = first_address(&brokers).is_some_and(|address| {
            TcpStream::connect_timeout(&address, Duration::from_millis(300)).is_ok()
        });
        let created = reachable && runtime.block_on(create_topic(&brokers, &topic));
        if created {
            Target {
                runtime,
                brokers,
                topic,
                real_broker: true,
            }
        } else {
            Target::unreachable()
        }
    }

    fn unreachable() -> Self {
        Target {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
            brokers: UNREACHABLE_BROKER.to_owned(),
            topic: format!("producer_bench_{}", std::process::id()),
            real_broker: false,
        }
    }

    fn describe(&self) -> String {
        if self.real_broker {
            format!(
                "the local broker {} (topic {}, acknowledged in the background)",
                self.brokers, self.topic
            )
        } else {
            format!(
                "an unreachable broker {} (queued, never sent; purged between rounds)",
                self.brokers
            )
        }
    }

    /// A producer that has enqueued one event already, so the measured calls do not pay
    /// for librdkafka's first-use setup (topic handle, metadata request).
    fn producer(&self, warm_up: &AuditEvent) -> Producer {
        let producer = Producer::builder(&self.brokers, &self.topic)
            .with_queue_capacity(QUEUE_CAPACITY)
            .with_delivery_timeout(Duration::from_secs(120))
            // Outcomes are not this benchmark's subject; a callback keeps them out of logs.
            .with_delivery_callback(|_| {})
            .build()
            .expect("producer");
        producer.try_record(warm_up).expect("room in the queue");
        producer
    }

    /// Makes room for a round outside the measured time: waits for the acknowledgements
    /// (real broker), or purges the queue by replacing the producer.
    fn make_room(&self, producer: Producer, warm_up: &AuditEvent) -> Producer {
        if self.real_broker {
            self.runtime
                .block_on(producer.flush(Duration::from_secs(120)))
                .expect("the round is acknowledged");
            producer
        } else {
            drop(producer);
            self.producer(warm_up)
        }
    }
}

fn first_address(brokers: &str) -> Option<SocketAddr> {
    let first = brokers.split(',').next()?.trim();
    first.to_socket_addrs().ok()?.next()
}

async fn create_topic(brokers: &str, topic: &str) -> bool {
    let Ok(admin) = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create::<AdminClient<DefaultClientContext>>()
    else {
        return false;
    };
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let new_topic = NewTopic::new(topic, 4, TopicReplication::Fixed(1));
    match admin.create_topics(&[new_topic], &options).await {
        Ok(results) => results.iter().all(Result::is_ok),
        Err(_) => false,
    }
}

/// Nanoseconds per event of `operation` over the pool, best of three passes.
fn per_event(events: &[AuditEvent], mut operation: impl FnMut(&AuditEvent)) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let started = Instant::now();
        for event in events {
            operation(event);
        }
        best = best.min(started.elapsed().as_nanos() as f64 / events.len() as f64);
    }
    best
}

fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// What the enqueue measurements found.
struct EnqueueFigures {
    /// Best wall-clock nanoseconds per event over the tight-loop rounds.
    wall_ns: f64,
    /// Best CPU nanoseconds of the calling thread per event, where Linux tells it: the
    /// per-core cost, whatever else competes for the cores.
    cpu_ns: Option<f64>,
    /// Every individually timed call, sorted.
    latencies: Vec<u64>,
}

impl EnqueueFigures {
    /// The per-core cost: CPU time where known, else wall-clock time.
    fn per_core_ns(&self) -> f64 {
        self.cpu_ns.unwrap_or(self.wall_ns)
    }
}

/// Nanoseconds the calling thread has run on a CPU (Linux's schedstat), if readable.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// `ROUNDS` tight loops of `try_record` (throughput), then `ROUNDS` rounds of
/// individually timed calls (latency).
fn measure_enqueue(target: &Target, events: &[AuditEvent]) -> EnqueueFigures {
    let mut wall_ns = f64::INFINITY;
    let mut cpu_ns: Option<f64> = None;
    let mut latencies: Vec<u64> = Vec::with_capacity(ROUNDS * ROUND_EVENTS);
    let mut producer = target.producer(&events[0]);
    for round in 0..ROUNDS {
        producer = target.make_room(producer, &events[0]);
        let round_events = events.iter().cycle().skip(round * 7_919).take(ROUND_EVENTS);
        let cpu_before = thread_cpu_ns();
        let started = Instant::now();
        for event in round_events {
            producer
                .try_record(black_box(event))
                .expect("room in the queue");
        }
        let elapsed = started.elapsed();
        wall_ns = wall_ns.min(elapsed.as_nanos() as f64 / ROUND_EVENTS as f64);
        if let (Some(before), Some(after)) = (cpu_before, thread_cpu_ns()) {
            let round_cpu_ns = after.saturating_sub(before) as f64 / ROUND_EVENTS as f64;
            cpu_ns = Some(cpu_ns.map_or(round_cpu_ns, |best| best.min(round_cpu_ns)));
        }

        producer = target.make_room(producer, &events[0]);
        for event in events.iter().cycle().skip(round * 7_919).take(ROUND_EVENTS) {
            let started = Instant::now();
            let result = producer.try_record(black_box(event));
            latencies.push(started.elapsed().as_nanos() as u64);
            if let Err(error @ ProducerError::QueueFull { .. }) = result {
                panic!("the queue holds a whole round: {error}");
            }
        }
    }
    drop(target.make_room(producer, &events[0]));
    latencies.sort_unstable();
    EnqueueFigures {
        wall_ns,
        cpu_ns,
        latencies,
    }
}

fn summary(target: &Target, events: &[AuditEvent]) {
    let codec = EventCodec::new(Framing::SingleObject);
    let schema = newest_schema().schema();
    let mut buffer = Vec::with_capacity(4096);
    let messages: Vec<Vec<u8>> = events
        .iter()
        .map(|event| codec.encode_to_vec(event).expect("encode"))
        .collect();
    let mean_bytes = messages.iter().map(Vec::len).sum::<usize>() as f64 / messages.len() as f64;

    // Avro cost per event.
    let encode_fast = per_event(events, |event| {
        buffer.clear();
        codec.encode(black_box(event), &mut buffer).expect("encode");
        black_box(buffer.len());
    });
    let encode_avro = per_event(events, |event| {
        let value = black_box(event).to_avro_value().expect("avro value");
        black_box(apache_avro::to_avro_datum(schema, value).expect("avro datum"));
    });
    let mut message_index = 0;
    let decode_fast = per_event(events, |_| {
        let message = &messages[message_index % messages.len()];
        message_index += 1;
        black_box(codec.decode(black_box(message)).expect("decode"));
    });
    let decode_avro = per_event(events, |_| {
        let message = &messages[message_index % messages.len()];
        message_index += 1;
        let mut datum = &message[SINGLE_OBJECT_HEADER_LEN..];
        let value = apache_avro::from_avro_datum(schema, &mut datum, None).expect("datum");
        black_box(AuditEvent::from_avro_value(value).expect("event"));
    });
    let validate_encode = per_event(events, |event| {
        black_box(event).validate().expect("valid");
        buffer.clear();
        codec.encode(event, &mut buffer).expect("encode");
        black_box(buffer.len());
    });

    let enqueue = measure_enqueue(target, events);
    let throughput_ns = enqueue.per_core_ns();
    let latencies = &enqueue.latencies;
    // The same on a broker that never answers: only the calling thread works, so this is
    // the per-core cost without librdkafka's sending threads competing for the cores.
    let isolated = (target.real_broker).then(|| measure_enqueue(&Target::unreachable(), events));
    let timer_overhead = {
        let started = Instant::now();
        for _ in 0..1_000_000 {
            black_box(Instant::now());
        }
        started.elapsed().as_nanos() as f64 / 1_000_000.0
    };

    let generate_ns = {
        let started = Instant::now();
        let generated = TrafficGenerator::new(2)
            .with_time_span(
                datetime!(2025-06-01 0:00 UTC),
                datetime!(2025-06-02 0:00 UTC),
                1_000_000,
            )
            .map(|event| black_box(event).status_code as u64)
            .sum::<u64>();
        black_box(generated);
        started.elapsed().as_nanos() as f64 / 1_000_000.0
    };

    let per_second = |nanos: f64| 1e9 / nanos;
    println!();
    println!(
        "auditlog-producer summary ({} generated events, {:.0} bytes each on average)",
        events.len(),
        mean_bytes
    );
    println!("enqueue target: {}", target.describe());
    println!();
    println!("encode+enqueue (try_record), one calling thread:");
    println!(
        "  per core            {:>12.0} events/s/core  ({throughput_ns:.0} ns of {} per event; target >= 500,000)",
        per_second(throughput_ns),
        if enqueue.cpu_ns.is_some() {
            "calling-thread cpu"
        } else {
            "wall clock"
        },
    );
    println!(
        "  wall clock          {:>12.0} events/s       ({:.0} ns/event; the cores are shared with the broker, librdkafka and whatever else runs)",
        per_second(enqueue.wall_ns),
        enqueue.wall_ns
    );
    println!(
        "  baseline            {:>12.0} events/s/core  validate+encode only ({validate_encode:.0} ns/event)",
        per_second(validate_encode)
    );
    println!(
        "  ratio               {:>12.2} x the cost of validate+encode (enqueue adds {:.0} ns)",
        throughput_ns / validate_encode,
        throughput_ns - validate_encode
    );
    println!(
        "  latency per call    p50 {:.2} us, p99 {:.2} us, p999 {:.2} us, max {:.1} us over {} calls (target p99 < 10 us; timer overhead {timer_overhead:.0} ns)",
        percentile(latencies, 0.50) as f64 / 1e3,
        percentile(latencies, 0.99) as f64 / 1e3,
        percentile(latencies, 0.999) as f64 / 1e3,
        latencies.last().copied().unwrap_or_default() as f64 / 1e3,
        latencies.len()
    );
    if let Some(isolated) = &isolated {
        println!(
            "  nothing sent        {:>12.0} events/s/core  ({:.0} ns/event, p99 {:.2} us) to {UNREACHABLE_BROKER}: no sending threads at work",
            per_second(isolated.per_core_ns()),
            isolated.per_core_ns(),
            percentile(&isolated.latencies, 0.99) as f64 / 1e3,
        );
    }
    println!();
    println!("avro per event (fast path vs apache-avro, same events):");
    println!(
        "  encode              fast {encode_fast:>7.0} ns   apache-avro {encode_avro:>7.0} ns   apache-avro/fast {:.1}x",
        encode_avro / encode_fast
    );
    println!(
        "  decode              fast {decode_fast:>7.0} ns   apache-avro {decode_avro:>7.0} ns   apache-avro/fast {:.1}x",
        decode_avro / decode_fast
    );
    println!();
    println!(
        "traffic generator     {:>12.0} events/s on one core ({generate_ns:.0} ns/event, {:.2}x the cost of encode+enqueue)",
        per_second(generate_ns),
        generate_ns / throughput_ns
    );
    println!();
}

fn criterion_benches(criterion: &mut Criterion, target: &Target, events: &[AuditEvent]) {
    let codec = EventCodec::new(Framing::SingleObject);
    let schema = newest_schema().schema();
    let mut group = criterion.benchmark_group("producer");
    group.throughput(Throughput::Elements(1));

    let mut buffer = Vec::with_capacity(4096);
    let mut index = 0;
    group.bench_function("encode_fast", |bencher| {
        bencher.iter(|| {
            index = (index + 1) % events.len();
            buffer.clear();
            codec
                .encode(black_box(&events[index]), &mut buffer)
                .expect("encode");
            black_box(buffer.len())
        })
    });
    group.bench_function("encode_apache_avro", |bencher| {
        bencher.iter(|| {
            index = (index + 1) % events.len();
            let value = black_box(&events[index])
                .to_avro_value()
                .expect("avro value");
            black_box(apache_avro::to_avro_datum(schema, value).expect("avro datum"))
        })
    });
    group.bench_function("validate_encode", |bencher| {
        bencher.iter(|| {
            index = (index + 1) % events.len();
            let event = black_box(&events[index]);
            event.validate().expect("valid");
            buffer.clear();
            codec.encode(event, &mut buffer).expect("encode");
            black_box(buffer.len())
        })
    });
    let mut producer = Some(target.producer(&events[0]));
    group.bench_function("try_record", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut measured = Duration::ZERO;
            let mut remaining = iterations as usize;
            while remaining > 0 {
                let current = match producer.take() {
                    Some(current) if current.in_flight() + ROUND_EVENTS / 10 < QUEUE_CAPACITY => {
                        current
                    }
                    Some(full) => target.make_room(full, &events[0]),
                    None => target.producer(&events[0]),
                };
                let chunk = remaining.min(QUEUE_CAPACITY - current.in_flight());
                let started = Instant::now();
                for event in events.iter().cycle().skip(remaining).take(chunk) {
                    current
                        .try_record(black_box(event))
                        .expect("room in the queue");
                }
                measured += started.elapsed();
                producer = Some(current);
                remaining -= chunk;
            }
            measured
        })
    });
    if let Some(last) = producer {
        drop(target.make_room(last, &events[0]));
    }
    group.finish();
}

fn main() {
    let events = pool();
    let target = Target::discover();
    summary(&target, &events);
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    criterion_benches(&mut criterion, &target, &events);
    criterion.final_summary();
}
