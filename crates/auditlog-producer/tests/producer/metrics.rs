//! The producer's series count what happened: sent, failed, refused, queued, latency.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditlog_producer::Producer;
use auditlog_producer::event::Action;
use auditlog_producer::metrics::{
    DELIVERY_LATENCY_SECONDS, EVENTS_FAILED_TOTAL, EVENTS_QUEUED, EVENTS_REJECTED_TOTAL,
    EVENTS_SENT_TOTAL,
};
use metrics::atomics::AtomicU64;
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

use crate::support::{brokers, events, fresh_topic};

/// Keeps every series in memory, named `name` or `name{reason}`.
#[derive(Debug, Default)]
struct MemoryRecorder {
    values: Mutex<HashMap<String, Arc<AtomicU64>>>,
    samples: Mutex<HashMap<String, Arc<Samples>>>,
}

#[derive(Debug, Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

fn series_name(key: &Key) -> String {
    match key.labels().find(|label| label.key() == "reason") {
        Some(reason) => format!("{}{{{}}}", key.name(), reason.value()),
        None => key.name().to_owned(),
    }
}

impl MemoryRecorder {
    fn value(&self, name: &str) -> u64 {
        self.values
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |value| value.load(Ordering::Relaxed))
    }

    fn gauge(&self, name: &str) -> f64 {
        f64::from_bits(self.value(name))
    }

    fn samples(&self, name: &str) -> Vec<f64> {
        self.samples
            .lock()
            .unwrap()
            .get(name)
            .map(|samples| samples.0.lock().unwrap().clone())
            .unwrap_or_default()
    }
}

impl Recorder for MemoryRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut values = self.values.lock().unwrap();
        Counter::from_arc(Arc::clone(values.entry(series_name(key)).or_default()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut values = self.values.lock().unwrap();
        Gauge::from_arc(Arc::clone(values.entry(series_name(key)).or_default()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut samples = self.samples.lock().unwrap();
        Histogram::from_arc(Arc::clone(samples.entry(series_name(key)).or_default()))
    }
}

#[tokio::test]
async fn series_count_sent_refused_and_latency_and_the_queue_drains_to_zero() {
    const NUM_EVENTS: usize = 200;
    let topic = fresh_topic("metrics", 2).await;
    let recorder = MemoryRecorder::default();
    // The producer resolves its series when it is built, so the local recorder keeps them.
    let producer = metrics::with_local_recorder(&recorder, || {
        Producer::builder(brokers(), &topic)
            .with_queue_capacity(NUM_EVENTS)
            // Nothing leaves before the flush, so the queue is surely full below.
            .with_linger(Duration::from_secs(1))
            .with_delivery_callback(|result| {
                result.unwrap();
            })
            .build()
            .unwrap()
    });
    let events = events(51, NUM_EVENTS as u64);
    for event in &events {
        producer.try_record(event).unwrap();
    }
    producer.try_record(&events[0]).unwrap_err();
    let mut invalid = events[1].clone();
    invalid.action = Action::from_wire("explode");
    producer.try_record(&invalid).unwrap_err();
    producer.shutdown(Duration::from_secs(20)).await.unwrap();

    assert_eq!(recorder.value(EVENTS_SENT_TOTAL), NUM_EVENTS as u64);
    assert_eq!(recorder.value(EVENTS_FAILED_TOTAL), 0);
    assert_eq!(
        recorder.value(&format!("{EVENTS_REJECTED_TOTAL}{{queue_full}}")),
        1
    );
    assert_eq!(
        recorder.value(&format!("{EVENTS_REJECTED_TOTAL}{{invalid}}")),
        1
    );
    assert_eq!(recorder.gauge(EVENTS_QUEUED), 0.0);
    let latencies = recorder.samples(DELIVERY_LATENCY_SECONDS);
    assert_eq!(latencies.len(), NUM_EVENTS);
    assert!(
        latencies
            .iter()
            .all(|seconds| *seconds > 0.0 && *seconds < 20.0)
    );
}
