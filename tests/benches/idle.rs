//! Idle cost: what an ingester with nothing to consume, and a service that embeds the SDK and
//! sends nothing, cost in CPU while they wait. Operators run many of both.
//!
//! Three processes idle side by side for `AUDITLOG_BENCH_IDLE_SECS` (default 60) after a
//! short settle, each measured from outside through `/proc/PID/task/*/schedstat`
//! (nanoseconds on CPU, summed over threads):
//! - `auditlog ingest` (release build, default settings) in its own group on an empty
//!   4-partition topic;
//! - a service that built the SDK's `Producer` and sent one event (so its connections and
//!   metadata are in place, as in a running service);
//! - the baseline, same run: the same client settings in rdkafka's `ThreadedProducer`
//!   (what the SDK used before it polled only while events are in flight).
//!
//! The two services are this bench's own executable, started again with `--idle-service`.
//! Run with `make bench` (needs the local stack: `make up`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use auditlog_e2e::pipeline::{AuditlogCommand, PipelineTarget, auditlog_binary, free_port};
use auditlog_producer::Producer;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};

/// Connections, metadata and group membership settle before the window opens.
const SETTLE: Duration = Duration::from_secs(10);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|arg| arg == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Some(position) = args.iter().position(|arg| arg == "--idle-service") {
        let kind = args.get(position + 1).expect("--idle-service KIND");
        let topic = args.get(position + 2).expect("--idle-service KIND TOPIC");
        runtime.block_on(idle_service(kind, topic));
        return;
    }
    runtime.block_on(run());
}

async fn run() {
    let seconds: u64 = std::env::var("AUDITLOG_BENCH_IDLE_SECS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(60);
    let target = PipelineTarget::create("idle", 4).await;
    target.migrate();
    println!(
        "idle benchmark: {seconds} s after {} s to settle",
        SETTLE.as_secs()
    );

    // Production defaults: not the tests' 1 s checkpoints, fast heartbeats and 200 ms batches.
    let env: Vec<(&'static str, String)> = target
        .env()
        .into_iter()
        .filter(|(key, _)| {
            !matches!(
                *key,
                "AUDITLOG_CHECKPOINT_INTERVAL_SECS" | "AUDITLOG_KAFKA_PROPERTIES"
            )
        })
        .collect();
    let metrics_port = free_port();
    let mut ingester = AuditlogCommand::new(auditlog_binary(), "idle-ingester")
        .args(["ingest", "--metrics-listen"])
        .arg(format!("127.0.0.1:{metrics_port}"))
        .envs(env)
        .ops_port(metrics_port)
        .spawn();
    let mut sdk = spawn_service("sdk", &target.topic);
    let mut threaded = spawn_service("threaded", &target.topic);
    tokio::time::sleep(SETTLE).await;

    let pids = [ingester.id(), sdk.id(), threaded.id()];
    let before = pids.map(cpu_nanos);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = pids.map(cpu_nanos);
    let share = |index: usize| {
        let spent = after[index].saturating_sub(before[index]) as f64;
        100.0 * spent / (seconds as f64 * 1e9)
    };

    println!(
        "  ingester, idle:            {:>8.3} % of a core (target < 0.1)",
        share(0)
    );
    println!(
        "  SDK service, idle:         {:>8.3} % of a core (target < 0.1)",
        share(1)
    );
    println!(
        "  baseline, rdkafka ThreadedProducer with the same settings: {:>8.3} % of a core",
        share(2)
    );
    if share(2) > 0.0 {
        println!("  SDK / baseline:            {:>8.3}", share(1) / share(2));
    }

    for child in [&mut sdk, &mut threaded] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let status = ingester.terminate(Duration::from_secs(30));
    assert!(
        status.is_some_and(|status| status.success()),
        "the idle ingester stops cleanly:\n{}",
        ingester.log()
    );
}

/// Starts this executable as an idle service of `kind`, and waits until it has sent its
/// one event.
fn spawn_service(kind: &str, topic: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("bench executable"))
        .args(["--idle-service", kind, topic])
        .envs(std::env::vars())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start an idle service");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the service's first line");
    assert_eq!(line.trim(), "ready", "the {kind} service did not start");
    child
}

/// The service side: send one event, say so, then wait to be killed.
async fn idle_service(kind: &str, topic: &str) {
    let brokers = auditlog_testkit::kafka_brokers();
    let event = auditlog_event::testing::sample_event();
    // The objects must live until the process is killed: their threads are what is measured.
    let _kept: Box<dyn std::any::Any> = match kind {
        "sdk" => {
            let producer = Producer::builder(brokers, topic).build().expect("producer");
            producer.send(&event).await.expect("one event delivered");
            Box::new(producer)
        }
        "threaded" => {
            let config = Producer::builder(brokers, topic)
                .config()
                .client_config()
                .expect("client config");
            let producer: ThreadedProducer<DefaultProducerContext> =
                config.create().expect("threaded producer");
            let payload = auditlog_event::EventCodec::new(auditlog_event::Framing::SingleObject)
                .encode_to_vec(&event)
                .expect("encode");
            producer
                .send(BaseRecord::<(), _>::to(topic).payload(&payload))
                .map_err(|(error, _)| error)
                .expect("enqueue");
            rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30))
                .expect("one event delivered");
            Box::new(producer)
        }
        other => panic!("unknown idle service {other}"),
    };
    println!("ready");
    std::future::pending::<()>().await;
}

/// Nanoseconds process `pid` has spent on CPU so far, summed over its threads.
fn cpu_nanos(pid: u32) -> u64 {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    std::fs::read_dir(&tasks)
        .unwrap_or_else(|error| panic!("{}: {error}", tasks.display()))
        .filter_map(|task| {
            let schedstat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            schedstat.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}
