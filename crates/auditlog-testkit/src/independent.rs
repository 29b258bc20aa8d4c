//! The auditor's independent proof check (`crates/auditlog-integrity/tests/independent_check.py`:
//! Python's hashlib and cryptography, no auditlog code), for the tests that need a second
//! implementation to agree with ours.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs the Python check on `document` (`{"proof": ..., "public_key_pem": "..."}` as JSON);
/// whether the proof holds, and the script's complaint when it does not.
pub fn independent_proof_check(document: &str) -> (bool, String) {
    let script = crate::repo_root().join("crates/auditlog-integrity/tests/independent_check.py");
    // `deploy/local/stack.sh install` makes this environment with the script's one
    // dependency (Python's cryptography); a bare python3 is the fallback outside `make`.
    let venv_python = crate::tools_dir().join("auditor-venv/bin/python");
    let python = if venv_python.exists() {
        venv_python
    } else {
        "python3".into()
    };
    let mut child = Command::new(python)
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
