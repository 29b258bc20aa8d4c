//! The auditor's independent proof check (`crates/auditlog-integrity/tests/independent_check.py`:
//! Python's hashlib and cryptography, no auditlog code), for the tests that need a second
//! implementation to agree with ours.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs the Python check on `document` (`{"proof": ..., "public_key_pem": "..."}` as JSON);
/// whether the proof holds, and the script's complaint when it does not.
pub fn independent_proof_check(document: &str) -> (bool, String) {
    let script = crate::repo_root().join("crates/auditlog-integrity/tests/independent_check.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(document.as_bytes())
        .expect("write the document");
    let output = child.wait_with_output().expect("python3 finishes");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
