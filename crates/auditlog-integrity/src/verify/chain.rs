//! Walking a partition's digest rows into its chain: each row's digest recomputed, each
//! link followed back from the newest signed head, every older signed head placed on it.

use std::collections::{HashMap, HashSet};

use auditlog_store::DigestRow;

use super::checkpoints::SignedHead;
use super::report::{Problem, Report, format_micros};
use crate::Hash;
use crate::chain::{BatchRange, GENESIS, batch_digest};

/// One partition's chain: which digest rows it runs through, oldest first.
#[derive(Debug)]
pub struct PartitionChain {
    /// The partition.
    pub partition: i32,
    /// The digest rows (deduplicated, by offset).
    pub rows: Vec<DigestRow>,
    /// Indices into `rows` of the chain, oldest first.
    pub chain: Vec<usize>,
    /// The newest signed head's last offset: batches after it are unsigned.
    pub signed_up_to: Option<i64>,
}

impl PartitionChain {
    /// Walks the chain back from the newest signed head (or from the newest batch when no
    /// checkpoint names this partition) until a chain start, or until the batch at or before
    /// `window_start` (the earliest offset asked about), then forward through the batches
    /// recorded after the head. Problems go into `report`.
    pub fn walk(
        partition: i32,
        mut rows: Vec<DigestRow>,
        heads: &[SignedHead],
        window_start: Option<i64>,
        report: &mut Report,
    ) -> Self {
        rows.sort_by(|a, b| {
            (a.first_offset, a.last_offset, a.digest).cmp(&(
                b.first_offset,
                b.last_offset,
                b.digest,
            ))
        });
        rows.dedup();
        let mut consistent = vec![true; rows.len()];
        let mut by_digest: HashMap<Hash, Vec<usize>> = HashMap::new();
        for (index, row) in rows.iter().enumerate() {
            let recomputed = batch_digest(&row.previous_digest, &range_of(row), &row.root);
            if recomputed != row.digest {
                consistent[index] = false;
                report.problems.push(Problem::BatchMismatch {
                    partition,
                    first_offset: row.first_offset,
                    last_offset: row.last_offset,
                    reason: "its digest does not match its own range, root and previous digest: \
                             the digest row was rewritten"
                        .to_owned(),
                });
            }
            by_digest.entry(row.digest).or_default().push(index);
        }
        let find = |digest: &Hash| -> Option<usize> {
            let candidates = by_digest.get(digest)?;
            candidates
                .iter()
                .copied()
                .find(|index| consistent[*index])
                .or_else(|| candidates.first().copied())
        };

        let top = heads.iter().max_by_key(|head| head.last_offset);
        let mut visited: Vec<usize> = Vec::new();
        let mut on_chain: HashSet<usize> = HashSet::new();
        let mut cursor: Option<Hash> = None;
        // Where the walk stands when a link is missing: resume at the batch before it.
        let mut resume_below: Option<i64> = None;
        match top {
            Some(head) => match find(&head.digest) {
                Some(index) => cursor = Some(rows[index].digest),
                None => {
                    report.problems.push(Problem::BrokenLink {
                        partition,
                        first_offset: head.last_offset,
                        last_offset: head.last_offset,
                        reason: format!(
                            "the head signed at {} names digest {}, which no digest row has \
                             (deleted or rewritten)",
                            format_micros(head.signed_at),
                            hex::encode(head.digest)
                        ),
                    });
                    resume_below = Some(head.last_offset + 1);
                }
            },
            None => {
                cursor = rows
                    .iter()
                    .max_by_key(|row| row.last_offset)
                    .map(|row| row.digest);
            }
        }
        loop {
            if cursor.is_none() {
                let Some(below) = resume_below.take() else {
                    break;
                };
                cursor = rows
                    .iter()
                    .enumerate()
                    .filter(|(index, row)| row.last_offset < below && !on_chain.contains(index))
                    .max_by_key(|(_, row)| row.last_offset)
                    .map(|(_, row)| row.digest);
                if cursor.is_none() {
                    break;
                }
            }
            let digest = cursor.take().expect("set above");
            let Some(index) = find(&digest).filter(|index| !on_chain.contains(index)) else {
                break;
            };
            visited.push(index);
            on_chain.insert(index);
            let row = &rows[index];
            if row.previous_digest == GENESIS
                || window_start.is_some_and(|start| row.first_offset <= start)
            {
                break;
            }
            if find(&row.previous_digest).is_some() {
                cursor = Some(row.previous_digest);
            } else {
                report.problems.push(Problem::BrokenLink {
                    partition,
                    first_offset: row.first_offset,
                    last_offset: row.last_offset,
                    reason: format!(
                        "its previous digest {} is in no digest row (the batch before it was \
                         deleted or rewritten)",
                        hex::encode(row.previous_digest)
                    ),
                });
                resume_below = Some(row.first_offset);
            }
        }
        visited.reverse();

        // Forward from the newest signed batch: what was recorded since the last checkpoint.
        let signed_up_to = top.map(|head| head.last_offset);
        if let Some(mut tip) = visited.last().map(|index| rows[*index].digest)
            && signed_up_to.is_some()
        {
            while let Some(next) = rows
                .iter()
                .enumerate()
                .filter(|(index, row)| row.previous_digest == tip && !on_chain.contains(index))
                .min_by_key(|(_, row)| (row.first_offset, row.last_offset))
                .map(|(index, _)| index)
            {
                visited.push(next);
                on_chain.insert(next);
                tip = rows[next].digest;
            }
        }

        let chain_digests: HashMap<Hash, i64> = visited
            .iter()
            .map(|index| (rows[*index].digest, rows[*index].last_offset))
            .collect();
        let lowest = visited.first().map(|index| rows[*index].first_offset);
        for head in heads {
            if lowest.is_some_and(|lowest| head.last_offset < lowest) {
                continue;
            }
            if chain_digests.get(&head.digest) != Some(&head.last_offset) {
                report.problems.push(Problem::HeadNotOnChain {
                    partition,
                    last_offset: head.last_offset,
                    key_id: head.key_id.clone(),
                    signed_at: head.signed_at,
                });
            }
        }
        report.off_chain_batches += (rows.len() - visited.len()) as u64;
        Self {
            partition,
            rows,
            chain: visited,
            signed_up_to,
        }
    }

    /// The chain's batches, oldest first.
    pub fn batches(&self) -> impl Iterator<Item = &DigestRow> {
        self.chain.iter().map(|index| &self.rows[*index])
    }

    /// Chain batches after the newest signed head: checked, but no signature covers them
    /// yet (all of them when no checkpoint names the partition).
    pub fn unsigned_batches(&self) -> u64 {
        self.batches()
            .filter(|batch| {
                self.signed_up_to
                    .is_none_or(|signed| batch.last_offset > signed)
            })
            .count() as u64
    }

    /// The newest offset any digest row read covers, on the chain or not: rows past it were
    /// written after the digests were read, or forged past the end.
    pub fn tail(&self) -> Option<i64> {
        self.rows.iter().map(|row| row.last_offset).max()
    }

    /// The offset spans the chain covers, merged where batches are contiguous.
    pub fn spans(&self) -> Vec<(i64, i64)> {
        let mut spans: Vec<(i64, i64)> = Vec::new();
        for batch in self.batches() {
            match spans.last_mut() {
                Some(last) if batch.first_offset <= last.1 + 1 => {
                    last.1 = last.1.max(batch.last_offset);
                }
                _ => spans.push((batch.first_offset, batch.last_offset)),
            }
        }
        spans
    }
}

/// The range header a digest covers.
pub fn range_of(row: &DigestRow) -> BatchRange {
    BatchRange {
        topic: row.topic.clone(),
        partition: row.partition,
        first_offset: row.first_offset,
        last_offset: row.last_offset,
        count: row.num_messages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::fixtures::{batch, chain, digests, head, redigest};

    fn walk(rows: Vec<DigestRow>, heads: &[SignedHead]) -> (PartitionChain, Report) {
        let mut report = Report::default();
        let chain = PartitionChain::walk(0, rows, heads, None, &mut report);
        (chain, report)
    }

    fn offsets(chain: &PartitionChain) -> Vec<(i64, i64)> {
        chain
            .batches()
            .map(|batch| (batch.first_offset, batch.last_offset))
            .collect()
    }

    #[test]
    fn an_untouched_chain_is_walked_from_its_signed_heads() {
        let batches = chain(&[(0, 9), (10, 19), (20, 29)]);
        let heads = [head(&batches[0].digest, 1), head(&batches[2].digest, 2)];
        let mut rows = digests(&batches);
        rows.reverse();
        rows.push(rows[0].clone());
        let (chain, report) = walk(rows, &heads);
        assert_eq!(report.problems, vec![]);
        assert_eq!(offsets(&chain), vec![(0, 9), (10, 19), (20, 29)]);
        assert_eq!(chain.spans(), vec![(0, 29)]);
        assert_eq!((chain.unsigned_batches(), chain.tail()), (0, Some(29)));
        assert_eq!(report.off_chain_batches, 0);
    }

    #[test]
    fn batches_after_the_newest_signed_head_are_unsigned() {
        let batches = chain(&[(0, 9), (10, 19), (20, 29)]);
        let (chain, report) = walk(digests(&batches), &[head(&batches[0].digest, 1)]);
        assert_eq!(report.problems, vec![]);
        assert_eq!(offsets(&chain).len(), 3, "walked forward past the head");
        assert_eq!(chain.unsigned_batches(), 2);

        let (chain, report) = walk(digests(&batches), &[]);
        assert_eq!(report.problems, vec![]);
        assert_eq!(
            chain.unsigned_batches(),
            3,
            "no checkpoint names the partition"
        );
    }

    #[test]
    fn a_deleted_digest_row_breaks_the_chain_and_the_walk_resumes_below_it() {
        let batches = chain(&[(0, 9), (10, 19), (20, 29)]);
        let rows = vec![batches[0].digest.clone(), batches[2].digest.clone()];
        let (chain, report) = walk(rows, &[head(&batches[2].digest, 2)]);
        assert_eq!(offsets(&chain), vec![(0, 9), (20, 29)]);
        assert_eq!(
            chain.spans(),
            vec![(0, 9), (20, 29)],
            "offsets 10..=19 are on no span"
        );
        match &report.problems[..] {
            [
                Problem::BrokenLink {
                    partition: 0,
                    first_offset: 20,
                    last_offset: 29,
                    reason,
                },
            ] => {
                assert!(
                    reason.contains(&hex::encode(batches[1].digest.digest)),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_signed_head_whose_digest_no_row_has_breaks_the_chain() {
        let batches = chain(&[(0, 9), (10, 19)]);
        let (chain, report) = walk(digests(&batches[..1]), &[head(&batches[1].digest, 2)]);
        assert_eq!(offsets(&chain), vec![(0, 9)]);
        assert!(
            matches!(
                &report.problems[..],
                [
                    Problem::BrokenLink {
                        first_offset: 19,
                        last_offset: 19,
                        ..
                    },
                    Problem::HeadNotOnChain {
                        last_offset: 19,
                        signed_at: 2,
                        ..
                    },
                ]
            ),
            "{:?}",
            report.problems
        );
    }

    #[test]
    fn a_rewritten_digest_row_does_not_hash_to_its_digest() {
        let batches = chain(&[(0, 9), (10, 19)]);
        let mut rows = digests(&batches);
        rows[0].root[0] ^= 1;
        let (_, report) = walk(rows, &[head(&batches[1].digest, 1)]);
        match &report.problems[..] {
            [
                Problem::BatchMismatch {
                    first_offset: 0,
                    last_offset: 9,
                    reason,
                    ..
                },
            ] => {
                assert!(reason.starts_with("its digest does not match"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_older_signed_head_off_the_newest_chain_is_rewritten_history() {
        let original = chain(&[(0, 9), (10, 19)]);
        // History from offset 10 on is replaced and re-digested consistently; a later
        // checkpoint signs the new head, but the earlier one signed the original.
        let mut replaced = batch(&original[0].digest.digest, 10, 19, &[], &[]);
        replaced.digest.root = [7; 32];
        redigest(&mut replaced.digest);
        let later = batch(&replaced.digest.digest, 20, 29, &[], &[]);
        let rows = vec![
            original[0].digest.clone(),
            replaced.digest.clone(),
            later.digest.clone(),
        ];
        let heads = [head(&original[1].digest, 1), head(&later.digest, 2)];
        let (chain, report) = walk(rows, &heads);
        assert_eq!(offsets(&chain), vec![(0, 9), (10, 19), (20, 29)]);
        assert_eq!(
            report.problems,
            vec![Problem::HeadNotOnChain {
                partition: 0,
                last_offset: 19,
                key_id: heads[0].key_id.clone(),
                signed_at: 1,
            }]
        );
    }

    #[test]
    fn a_replaced_ingesters_branch_is_off_the_chain_and_no_problem() {
        let batches = chain(&[(0, 9), (10, 19)]);
        let zombie = batch(&batches[0].digest.digest, 10, 14, &[], &[]);
        let mut rows = digests(&batches);
        rows.push(zombie.digest);
        let (chain, report) = walk(rows, &[head(&batches[1].digest, 1)]);
        assert_eq!(report.problems, vec![]);
        assert_eq!(offsets(&chain), vec![(0, 9), (10, 19)]);
        assert_eq!(report.off_chain_batches, 1);
    }
}
