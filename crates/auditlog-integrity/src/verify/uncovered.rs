//! Judging stored rows that no chain batch covers: between or beside the chain's batches,
//! with no source position at all, or past the newest digest the verifier read.

use std::collections::BTreeMap;

use auditlog_store::StoredRow;
use uuid::Uuid;

use super::report::{Problem, Report};

/// Why a row outside every chain span is named: the sweep of `auditlog verify` selects rows
/// whose partition and offset lie in no span of any chain (or that have no source position).
pub const NO_DIGEST_RECORDS_IT: &str =
    "is covered by no batch on the chain: no digest records its partition and offset";

/// Reports rows that no chain batch covers (`reason` says why they were selected).
pub fn uncovered(rows: &[StoredRow<'_>], reason: &str, report: &mut Report) {
    for row in rows {
        report.problems.push(Problem::UncoveredEvent {
            id: row.id,
            partition: row.source.partition,
            offset: row.source.offset,
            reason: reason.to_owned(),
        });
    }
}

/// Judges rows (`id`, partition, offset) found past their partition's newest digest read.
/// An ingester records a batch's digest before inserting its rows, so a real row lies in a
/// digest recorded by now (`recorded_since`: the (first, last) ranges of each partition's
/// digests that end past the tail): it arrived while verify ran, and its contents are the
/// next run's to check. A row that no digest places is forged.
pub fn late_rows(
    late: &[(Uuid, i32, i64)],
    recorded_since: &BTreeMap<i32, Vec<(i64, i64)>>,
    report: &mut Report,
) {
    for (id, partition, offset) in late {
        let covered = recorded_since.get(partition).is_some_and(|ranges| {
            ranges
                .iter()
                .any(|(first, last)| (*first..=*last).contains(offset))
        });
        if covered {
            report.unchecked_late_events += 1;
        } else {
            report.problems.push(Problem::UncoveredEvent {
                id: *id,
                partition: *partition,
                offset: *offset,
                reason: "lies past the end of the chain, where no digest records it".to_owned(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use auditlog_store::Source;

    use super::*;
    use crate::verify::PartitionChain;
    use crate::verify::fixtures::{chain, head};

    fn row(id: u128, partition: i32, offset: i64) -> StoredRow<'static> {
        StoredRow {
            bytes: b"",
            id: Uuid::from_u128(id),
            time_micros: 0,
            organization_id: Uuid::nil(),
            source: Source { partition, offset },
        }
    }

    #[test]
    fn a_row_between_the_chains_batches_is_forged_or_inserted() {
        // The digest row of 10..=19 is gone: its offsets are on no span, so the sweep of
        // rows outside every span selects a row claiming offset 15.
        let batches = chain(&[(0, 9), (10, 19), (20, 29)]);
        let mut report = Report::default();
        let walked = PartitionChain::walk(
            0,
            vec![batches[0].digest.clone(), batches[2].digest.clone()],
            &[head(&batches[2].digest, 1)],
            None,
            &mut report,
        );
        assert!(
            !walked
                .spans()
                .iter()
                .any(|(first, last)| (*first..=*last).contains(&15))
        );
        let mut report = Report::default();
        uncovered(&[row(7, 0, 15)], NO_DIGEST_RECORDS_IT, &mut report);
        assert_eq!(
            report
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec![format!(
                "forged or inserted: event {} (partition 0 offset 15) is covered by no batch on \
                 the chain: no digest records its partition and offset",
                Uuid::from_u128(7)
            )]
        );
    }

    #[test]
    fn a_row_with_no_source_position_is_forged_or_inserted() {
        let mut report = Report::default();
        uncovered(&[row(8, -1, -1)], NO_DIGEST_RECORDS_IT, &mut report);
        assert_eq!(
            report.problems,
            vec![Problem::UncoveredEvent {
                id: Uuid::from_u128(8),
                partition: -1,
                offset: -1,
                reason: NO_DIGEST_RECORDS_IT.to_owned(),
            }]
        );
    }

    #[test]
    fn a_row_past_the_chain_is_late_if_a_digest_recorded_since_places_it_and_forged_if_not() {
        let recorded_since = BTreeMap::from([(0, vec![(30, 39)]), (1, vec![])]);
        let late = [
            (Uuid::from_u128(1), 0, 35),
            (Uuid::from_u128(2), 0, 40),
            (Uuid::from_u128(3), 1, 12),
        ];
        let mut report = Report::default();
        late_rows(&late, &recorded_since, &mut report);
        assert_eq!(report.unchecked_late_events, 1);
        let named: Vec<(i32, i64)> = report
            .problems
            .iter()
            .map(|problem| match problem {
                Problem::UncoveredEvent {
                    partition,
                    offset,
                    reason,
                    ..
                } => {
                    assert_eq!(
                        reason,
                        "lies past the end of the chain, where no digest records it"
                    );
                    (*partition, *offset)
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(named, vec![(0, 40), (1, 12)]);
    }
}
