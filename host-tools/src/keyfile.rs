//! P-256 keys in files, in the formats OpenSSL reads and writes: private keys as PKCS#8 PEM (`BEGIN PRIVATE
//! KEY`, what `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes; SEC1 `BEGIN EC PRIVATE
//! KEY` is read too), public keys as SPKI PEM (`BEGIN PUBLIC KEY`, `openssl pkey -pubout`).

use std::path::Path;

use anyhow::{Context as _, bail};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a private key (PKCS#8 or SEC1 PEM).
pub fn read_secret(path: &Path) -> anyhow::Result<p256::SecretKey> {
    let text = read_text(path)?;
    if text.contains("BEGIN PRIVATE KEY") {
        return p256::SecretKey::from_pkcs8_pem(&text).map_err(|e| {
            anyhow::anyhow!("{}: not a P-256 PKCS#8 private key: {e}", path.display())
        });
    }
    if text.contains("BEGIN EC PRIVATE KEY") {
        return p256::SecretKey::from_sec1_pem(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a P-256 SEC1 private key: {e}", path.display()));
    }
    bail!(
        "{}: no PEM private key (BEGIN PRIVATE KEY) in this file",
        path.display()
    )
}

/// Reads a public key: an SPKI PEM public key, or the public half of a private key file.
pub fn read_public(path: &Path) -> anyhow::Result<p256::PublicKey> {
    let text = read_text(path)?;
    if text.contains("BEGIN PUBLIC KEY") {
        return p256::PublicKey::from_public_key_pem(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a P-256 public key: {e}", path.display()));
    }
    read_secret(path).map(|secret| secret.public_key())
}

/// Writes a private key as PKCS#8 PEM, readable by its owner only; refuses to overwrite a file.
pub fn write_secret(path: &Path, key: &p256::SecretKey) -> anyhow::Result<()> {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("cannot encode the key: {e}"))?;
    write_new(path, pem.as_bytes(), 0o600)
}

/// Writes a public key as SPKI PEM; refuses to overwrite a file.
pub fn write_public(path: &Path, key: &p256::PublicKey) -> anyhow::Result<()> {
    let pem = key
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("cannot encode the key: {e}"))?;
    write_new(path, pem.as_bytes(), 0o644)
}

/// Creates `path` (never replacing an existing file: keys and certificates are not to be lost) with `mode`.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
