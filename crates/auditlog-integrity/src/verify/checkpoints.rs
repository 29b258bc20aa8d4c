//! Judging checkpoint copies: signatures against the trusted keys, and every copy against
//! every other source.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::report::{Problem, Report};
use crate::checkpoint::{Envelope, TrustedKeys};
use crate::{Hash, IntegrityError};

/// A signed chain head, with where it was signed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignedHead {
    /// The head's last offset.
    pub last_offset: i64,
    /// The head's digest.
    pub digest: Hash,
    /// When the checkpoint was signed, µs since the epoch.
    pub signed_at: i64,
    /// The key that signed it.
    pub key_id: String,
}

/// Checks every checkpoint copy against the trusted keys and the other sources; returns the
/// heads of `topic` that validly signed checkpoints name, by partition.
pub fn check_checkpoints(
    sources: &[(String, Vec<Envelope>)],
    trusted: &TrustedKeys,
    topic: &str,
    report: &mut Report,
) -> BTreeMap<i32, Vec<SignedHead>> {
    let mut envelopes: BTreeMap<&str, Vec<(&str, &Envelope)>> = BTreeMap::new();
    for (source, list) in sources {
        for envelope in list {
            envelopes
                .entry(envelope.body.as_str())
                .or_default()
                .push((source.as_str(), envelope));
        }
    }
    let mut heads: BTreeMap<i32, Vec<SignedHead>> = BTreeMap::new();
    for list in envelopes.values() {
        let mut valid = true;
        let mut opened = None;
        let mut seen_signatures = HashSet::new();
        for (source, envelope) in list {
            if !seen_signatures.insert(&envelope.signature) {
                continue;
            }
            let signed = match envelope.open() {
                Ok(signed) => signed,
                Err(error) => {
                    valid = false;
                    report.problems.push(Problem::MalformedCheckpoint {
                        source: (*source).to_owned(),
                        reason: error.to_string(),
                    });
                    continue;
                }
            };
            let (key_id, signed_at) = (
                signed.checkpoint.key_id.clone(),
                signed.checkpoint.time_micros,
            );
            match trusted.verify(&signed) {
                Ok(()) => opened = Some(signed),
                Err(IntegrityError::UnknownKey { .. }) => {
                    valid = false;
                    report.problems.push(Problem::UnknownKey {
                        source: (*source).to_owned(),
                        key_id,
                        signed_at,
                    });
                }
                Err(_) => {
                    valid = false;
                    report.problems.push(Problem::BadSignature {
                        source: (*source).to_owned(),
                        key_id,
                        signed_at,
                    });
                }
            }
        }
        let present: BTreeSet<&str> = list.iter().map(|(source, _)| *source).collect();
        if let Some(signed) = &opened {
            for (source, _) in sources {
                if !present.contains(source.as_str()) {
                    valid = false;
                    report.problems.push(Problem::MissingCheckpoint {
                        missing_from: source.clone(),
                        present_in: present.iter().map(|name| (*name).to_owned()).collect(),
                        key_id: signed.checkpoint.key_id.clone(),
                        signed_at: signed.checkpoint.time_micros,
                    });
                }
            }
            for head in &signed.checkpoint.heads {
                if head.topic == topic {
                    heads.entry(head.partition).or_default().push(SignedHead {
                        last_offset: head.last_offset,
                        digest: head.digest,
                        signed_at: signed.checkpoint.time_micros,
                        key_id: signed.checkpoint.key_id.clone(),
                    });
                }
            }
        }
        report.checkpoints.add(valid && opened.is_some());
    }
    for list in heads.values_mut() {
        list.sort();
    }
    heads
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{ChainHead, CheckpointSigner};
    use crate::verify::fixtures::TOPIC;

    fn signed(signer: &CheckpointSigner, time_micros: i64, last_offset: i64) -> Envelope {
        let heads = vec![
            ChainHead {
                topic: TOPIC.to_owned(),
                partition: 0,
                last_offset,
                digest: [1; 32],
            },
            ChainHead {
                topic: "other".to_owned(),
                partition: 5,
                last_offset,
                digest: [2; 32],
            },
        ];
        signer.sign(time_micros, heads).envelope()
    }

    fn trusting(signer: &CheckpointSigner) -> TrustedKeys {
        let mut trusted = TrustedKeys::default();
        trusted.add_pem(&signer.public_pem()).unwrap();
        trusted
    }

    fn sources(lists: &[(&str, Vec<Envelope>)]) -> Vec<(String, Vec<Envelope>)> {
        lists
            .iter()
            .map(|(name, list)| ((*name).to_owned(), list.clone()))
            .collect()
    }

    #[test]
    fn checkpoints_in_every_source_with_a_trusted_signature_are_valid() {
        let signer = CheckpointSigner::generate();
        let (older, newer) = (signed(&signer, 1, 9), signed(&signer, 2, 19));
        let copies = sources(&[
            ("clickhouse", vec![older.clone(), newer.clone()]),
            ("kafka", vec![newer, older.clone(), older]),
        ]);
        let mut report = Report::default();
        let heads = check_checkpoints(&copies, &trusting(&signer), TOPIC, &mut report);
        assert_eq!(report.problems, vec![]);
        assert_eq!((report.checkpoints.valid, report.checkpoints.total), (2, 2));
        assert_eq!(
            heads.keys().copied().collect::<Vec<_>>(),
            vec![0],
            "only the topic's heads"
        );
        let offsets: Vec<(i64, i64)> = heads[&0]
            .iter()
            .map(|head| (head.last_offset, head.signed_at))
            .collect();
        assert_eq!(offsets, vec![(9, 1), (19, 2)]);
        assert_eq!(heads[&0][0].key_id, signer.key_id());
    }

    #[test]
    fn a_signature_over_other_text_is_a_bad_signature() {
        let signer = CheckpointSigner::generate();
        let mut forged = signed(&signer, 1, 9);
        forged.signature = signed(&signer, 1, 10).signature;
        let copies = sources(&[("clickhouse", vec![forged])]);
        let mut report = Report::default();
        let heads = check_checkpoints(&copies, &trusting(&signer), TOPIC, &mut report);
        assert!(heads.is_empty(), "a bad signature signs nothing");
        assert_eq!((report.checkpoints.valid, report.checkpoints.total), (0, 1));
        match &report.problems[..] {
            [
                problem @ Problem::BadSignature {
                    source,
                    signed_at: 1,
                    ..
                },
            ] => {
                assert_eq!(source, "clickhouse");
                assert!(
                    problem
                        .to_string()
                        .starts_with("bad signature: checkpoint of key ")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_checkpoint_of_a_key_nobody_trusts_names_the_unknown_key() {
        let (trusted, stranger) = (CheckpointSigner::generate(), CheckpointSigner::generate());
        let copies = sources(&[("kafka", vec![signed(&stranger, 3, 9)])]);
        let mut report = Report::default();
        let heads = check_checkpoints(&copies, &trusting(&trusted), TOPIC, &mut report);
        assert!(heads.is_empty());
        assert_eq!(
            report.problems,
            vec![Problem::UnknownKey {
                source: "kafka".to_owned(),
                key_id: stranger.key_id().to_owned(),
                signed_at: 3,
            }]
        );
        assert_eq!(report.checkpoints.valid, 0);
    }

    #[test]
    fn a_checkpoint_missing_from_one_source_is_named_and_its_heads_still_count() {
        let signer = CheckpointSigner::generate();
        let (kept, deleted) = (signed(&signer, 1, 9), signed(&signer, 2, 19));
        let copies = sources(&[
            ("clickhouse", vec![kept.clone()]),
            ("kafka", vec![kept, deleted]),
            ("file:copy.jsonl", vec![]),
        ]);
        let mut report = Report::default();
        let heads = check_checkpoints(&copies, &trusting(&signer), TOPIC, &mut report);
        let missing: Vec<(&str, &[String], i64)> = report
            .problems
            .iter()
            .map(|problem| match problem {
                Problem::MissingCheckpoint {
                    missing_from,
                    present_in,
                    signed_at,
                    ..
                } => (missing_from.as_str(), present_in.as_slice(), *signed_at),
                other => panic!("{other:?}"),
            })
            .collect();
        let (both, kafka) = (
            ["clickhouse".to_owned(), "kafka".to_owned()],
            ["kafka".to_owned()],
        );
        assert_eq!(
            missing,
            vec![
                ("file:copy.jsonl", &both[..], 1),
                ("clickhouse", &kafka[..], 2),
                ("file:copy.jsonl", &kafka[..], 2),
            ]
        );
        assert_eq!((report.checkpoints.valid, report.checkpoints.total), (0, 2));
        assert_eq!(heads[&0].len(), 2, "the signatures still hold");
    }

    #[test]
    fn text_that_is_no_checkpoint_is_malformed() {
        let signer = CheckpointSigner::generate();
        let mut envelope = signed(&signer, 1, 9);
        envelope.body.push_str("trailing words\n");
        let copies = sources(&[("clickhouse", vec![envelope])]);
        let mut report = Report::default();
        check_checkpoints(&copies, &trusting(&signer), TOPIC, &mut report);
        assert!(
            matches!(&report.problems[..], [Problem::MalformedCheckpoint { source, .. }] if source == "clickhouse"),
            "{:?}",
            report.problems
        );
        assert_eq!((report.checkpoints.valid, report.checkpoints.total), (0, 1));
    }
}
