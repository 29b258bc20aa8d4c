//! The proof format checked by an independent implementation (`independent_check.py`:
//! Python's hashlib and cryptography), as an auditor without our code would check it.

use auditlog_integrity::proof::{EventProof, ProofParts, proof_batch};
use auditlog_integrity::{
    BatchRange, ChainHead, CheckpointSigner, batch_digest, event_leaf, merkle,
};
use base64::Engine as _;

/// The Python check's verdict on `proof` with `public_key_pem`, and its complaint.
fn python_check(proof: &EventProof, public_key_pem: &str) -> (bool, String) {
    let document = serde_json::json!({ "proof": proof, "public_key_pem": public_key_pem });
    auditlog_testkit::independent_proof_check(&document.to_string())
}

#[test]
fn python_checks_a_proof_through_two_links_to_the_checkpoint() {
    let rows: Vec<Vec<u8>> = (0..11_u8).map(|number| vec![number; 40]).collect();
    let leaves: Vec<_> = rows.iter().map(|row| event_leaf(row)).collect();
    let range = |first, last, count| BatchRange {
        topic: "audit-events".to_owned(),
        partition: 2,
        first_offset: first,
        last_offset: last,
        count,
    };
    let root = merkle::root(&leaves);
    let previous = [9; 32];
    let digest = batch_digest(&previous, &range(500, 510, 11), &root);
    let (root_2, root_3) = ([4; 32], [5; 32]);
    let digest_2 = batch_digest(&digest, &range(511, 520, 10), &root_2);
    let digest_3 = batch_digest(&digest_2, &range(521, 530, 10), &root_3);
    let signer = CheckpointSigner::generate();
    let signed = signer.sign(
        1_767_225_600_000_000,
        vec![ChainHead {
            topic: "audit-events".into(),
            partition: 2,
            last_offset: 530,
            digest: digest_3,
        }],
    );
    let proof = EventProof::build(ProofParts {
        event_id: uuid::Uuid::nil(),
        topic: "audit-events",
        partition: 2,
        offset: 506,
        columns: vec![],
        row: &rows[6],
        leaves: &leaves,
        leaf_index: 6,
        batches: vec![
            proof_batch(&range(500, 510, 11), &root, &previous, &digest),
            proof_batch(&range(511, 520, 10), &root_2, &digest, &digest_2),
            proof_batch(&range(521, 530, 10), &root_3, &digest_2, &digest_3),
        ],
        checkpoint: Some(signed.envelope()),
    })
    .unwrap();

    let (valid, complaint) = python_check(&proof, &signer.public_pem());
    assert!(valid, "{complaint}");

    let mut changed = proof.clone();
    let mut row = rows[6].clone();
    row[0] ^= 1;
    changed.row = base64::engine::general_purpose::STANDARD.encode(&row);
    changed.leaf = hex::encode(event_leaf(&row));
    let (valid, complaint) = python_check(&changed, &signer.public_pem());
    assert!(!valid);
    assert!(complaint.contains("not in the batch's tree"), "{complaint}");

    let mut broken_link = proof.clone();
    broken_link.links[0].root = hex::encode([6; 32]);
    let (valid, complaint) = python_check(&broken_link, &signer.public_pem());
    assert!(!valid);
    assert!(
        complaint.contains("does not hash to its digest"),
        "{complaint}"
    );

    let mut bad_signature = proof.clone();
    let checkpoint = bad_signature.checkpoint.as_mut().unwrap();
    let mut signature = base64::engine::general_purpose::STANDARD
        .decode(&checkpoint.signature)
        .unwrap();
    signature[10] ^= 1;
    checkpoint.signature = base64::engine::general_purpose::STANDARD.encode(signature);
    let (valid, complaint) = python_check(&bad_signature, &signer.public_pem());
    assert!(!valid);
    assert!(
        complaint.contains("bad checkpoint signature"),
        "{complaint}"
    );

    let stranger = CheckpointSigner::generate();
    let (valid, complaint) = python_check(&proof, &stranger.public_pem());
    assert!(!valid);
    assert!(complaint.contains("another key"), "{complaint}");
}
