//! A sink's offsets: committing after a confirmed batch, what was committed at start (for
//! `--until-caught-up`), and the lag gauge.

use std::collections::BTreeMap;
use std::sync::Arc;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{KAFKA_TIMEOUT, SinkRunner, Watermarks};
use crate::{StreamError, metrics as names};

impl SinkRunner {
    /// Commits `next` for `partition` if this member still owns it; a failed commit is
    /// logged and superseded by the next one (the batch is delivered either way).
    pub(super) async fn commit(&mut self, partition: i32, next: i64) {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.topic.clone();
        let result = tokio::task::spawn_blocking(move || {
            let owned = consumer
                .assignment()?
                .find_partition(&topic, partition)
                .is_some();
            if !owned {
                return Ok(false);
            }
            let mut offsets = TopicPartitionList::new();
            offsets.add_partition_offset(&topic, partition, Offset::Offset(next))?;
            consumer.commit(&offsets, CommitMode::Sync).map(|()| true)
        })
        .await;
        match result {
            Ok(Ok(true)) => {
                self.committed.insert(partition, next);
            }
            Ok(Ok(false)) => tracing::info!(
                sink = %self.name,
                partition,
                "partition moved to another member before its commit; it re-reads from its last commit"
            ),
            Ok(Err(error)) => tracing::warn!(sink = %self.name, partition, %error, "commit failed"),
            Err(error) => tracing::warn!(sink = %self.name, partition, %error, "commit failed"),
        }
    }

    pub(super) async fn committed_at_start(
        &self,
        targets: &Watermarks,
    ) -> Result<BTreeMap<i32, i64>, StreamError> {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.topic.clone();
        let partitions: Vec<i32> = targets.keys().copied().collect();
        let committed = tokio::task::spawn_blocking(move || {
            let mut list = TopicPartitionList::new();
            for partition in partitions {
                list.add_partition(&topic, partition);
            }
            consumer.committed_offsets(list, KAFKA_TIMEOUT)
        })
        .await
        .map_err(|error| StreamError::SinkStopped {
            sink: self.name.clone(),
            message: error.to_string(),
        })??;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|element| match element.offset() {
                Offset::Offset(offset) => Some((element.partition(), offset)),
                _ => None,
            })
            .collect())
    }

    pub(super) fn is_caught_up(&self) -> bool {
        let Some(targets) = &self.targets else {
            return false;
        };
        targets.iter().all(|(partition, (low, high))| {
            let committed = self.committed.get(partition).copied().unwrap_or(0);
            committed.max(*low) >= *high
        })
    }

    pub(super) async fn publish_lag(&self) {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.topic.clone();
        let committed = self.committed.clone();
        let lag = tokio::task::spawn_blocking(move || {
            let assignment = consumer.assignment().ok()?;
            if assignment.count() == 0 {
                // Not a member yet (or between rebalances): no lag to speak of.
                return None;
            }
            let positions = consumer
                .committed_offsets(assignment.clone(), KAFKA_TIMEOUT)
                .ok();
            let mut lag = 0_i64;
            for element in assignment.elements_for_topic(&topic) {
                let partition = element.partition();
                let (low, high) = consumer
                    .fetch_watermarks(&topic, partition, KAFKA_TIMEOUT)
                    .ok()?;
                let from_group = positions
                    .as_ref()
                    .and_then(|list| list.find_partition(&topic, partition))
                    .and_then(|element| match element.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    });
                let done = from_group
                    .or_else(|| committed.get(&partition).copied())
                    .unwrap_or(low)
                    .max(low);
                lag += (high - done).max(0);
            }
            Some(lag)
        })
        .await
        .ok()
        .flatten();
        if let Some(lag) = lag {
            metrics::gauge!(names::LAG_MESSAGES, "sink" => self.name.clone()).set(lag as f64);
        }
    }
}
