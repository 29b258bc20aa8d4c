//! `auditlog keygen`: a fresh Ed25519 key pair for signing checkpoints.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cli::KeygenArgs;

pub fn run(args: &KeygenArgs) -> Result<()> {
    let public = public_path(&args.out);
    for path in [&args.out, &public] {
        if path.exists() && !args.force {
            bail!(
                "{} exists; pass --force to replace it (checkpoints signed with the old key \
                 then verify only while its public key is still trusted)",
                path.display()
            );
        }
    }
    let signer = auditlog_integrity::CheckpointSigner::generate();
    write_file(&args.out, &signer.to_pem(), true)?;
    write_file(&public, &signer.public_pem(), false)?;
    println!(
        "key {} written: private {} (give it to the ingesters), public {} (give it to auditors)",
        signer.key_id(),
        args.out.display(),
        public.display()
    );
    Ok(())
}

/// `PATH.pub`.
fn public_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn write_file(path: &Path, text: &str, secret: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
