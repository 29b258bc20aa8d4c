//! The formats checked by an independent implementation (`independent_check.py`: Python's
//! hashlib and cryptography), as an auditor without our code would check them.

use std::io::Write;
use std::process::{Command, Stdio};

use auditlog_integrity::{
    BatchRange, ChainHead, CheckpointSigner, batch_digest, event_leaf, merkle,
};

/// Runs the Python check on `document`; its exit status and complaint.
fn python_check(document: &str) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/independent_check.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(document.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn python_checks_a_leaf_its_batch_and_the_signed_checkpoint() {
    let rows: Vec<Vec<u8>> = (0..11_u8).map(|number| vec![number; 40]).collect();
    let leaves: Vec<_> = rows.iter().map(|row| event_leaf(row)).collect();
    let root = merkle::root(&leaves);
    let range = BatchRange {
        topic: "audit-events".to_owned(),
        partition: 2,
        first_offset: 500,
        last_offset: 510,
        count: 11,
    };
    let previous = [9; 32];
    let digest = batch_digest(&previous, &range, &root);
    let signer = CheckpointSigner::generate();
    let signed = signer.sign(
        1_767_225_600_000_000,
        vec![ChainHead {
            topic: range.topic.clone(),
            partition: range.partition,
            last_offset: range.last_offset,
            digest,
        }],
    );
    let signed_text = String::from_utf8(signed.checkpoint.signed_bytes()).unwrap();
    let index = 6;
    let path = merkle::inclusion_proof(&leaves, index).unwrap();
    let document = |leaf_row: &[u8], signature: &[u8]| {
        let mut leaf_data = vec![b'E'];
        leaf_data.extend_from_slice(leaf_row);
        serde_json::json!({
            "leaf_data": hex::encode(leaf_data),
            "index": index,
            "size": leaves.len(),
            "path": path.iter().map(hex::encode).collect::<Vec<_>>(),
            "root": hex::encode(root),
            "previous": hex::encode(previous),
            "topic": range.topic,
            "partition": range.partition,
            "first_offset": range.first_offset,
            "last_offset": range.last_offset,
            "count": range.count,
            "signed_text": signed_text,
            "signature": hex::encode(signature),
            "public_key_pem": signer.public_pem(),
        })
        .to_string()
    };

    let (valid, complaint) = python_check(&document(&rows[index], &signed.signature));
    assert!(valid, "{complaint}");

    let mut changed_row = rows[index].clone();
    changed_row[0] ^= 1;
    let (valid, complaint) = python_check(&document(&changed_row, &signed.signature));
    assert!(!valid);
    assert!(complaint.contains("not in the batch's tree"), "{complaint}");

    let mut bad_signature = signed.signature;
    bad_signature[10] ^= 1;
    let (valid, complaint) = python_check(&document(&rows[index], &bad_signature));
    assert!(!valid);
    assert!(
        complaint.contains("bad checkpoint signature"),
        "{complaint}"
    );
}
