//! Detached signatures: `NAME.sig` next to `NAME.xml` holds the DER-encoded ECDSA P-256 signature, with SHA-256,
//! of the exact bytes of `NAME.xml`, made by the file's sender. It is what
//! `openssl dgst -sha256 -sign sender.key -out NAME.sig NAME.xml` makes and
//! `openssl dgst -sha256 -verify sender.pub.pem -signature NAME.sig NAME.xml` checks.
//!
//! Writing goes through `NAME.xml.partial` and `NAME.sig.partial`, each synced then renamed into place, the
//! signature last and any old signature removed first: a crash leaves at worst a file without a signature, never a
//! signature beside a partial or different file. Reading verifies the whole file before parsing any of it.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use p256::PublicKey;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::{InterchangeError, Result};
use crate::{DeductionReader, StatusReportReader, TransferNoticeReader};

/// A DER ECDSA P-256 signature is at most 72 bytes; a larger `.sig` is not one.
const MAX_SIGNATURE_BYTES: u64 = 128;

/// `NAME.sig` for `NAME.xml` (any other extension is replaced the same way).
pub fn signature_path(path: &Path) -> PathBuf {
    path.with_extension("sig")
}

/// The detached signature of `bytes`.
pub fn sign_bytes(bytes: &[u8], key: &SigningKey) -> Result<DerSignature> {
    sign_digest(&Sha256::digest(bytes).into(), key)
}

/// Writes `bytes` to `path` and its signature to [`signature_path`], atomically, signature last.
pub fn write_signed(path: &Path, bytes: &[u8], key: &SigningKey) -> Result<()> {
    let mut file = SignedFile::create(path)?;
    file.write_all(bytes)
        .map_err(InterchangeError::io("writing the file"))?;
    file.commit(key)
}

/// A file being written, hashed as it goes, that becomes `path` and gets its signature on [`Self::commit`]. A
/// streaming writer writes into it: the file never has to be read back to be signed.
#[derive(Debug)]
pub struct SignedFile {
    path: PathBuf,
    partial_path: PathBuf,
    out: Option<BufWriter<File>>,
    hasher: Sha256,
}

impl SignedFile {
    /// Starts `PATH.partial`; `path` itself is untouched until [`Self::commit`].
    pub fn create(path: &Path) -> Result<Self> {
        let partial_path = with_suffix(path, ".partial");
        let file =
            File::create(&partial_path).map_err(InterchangeError::io("creating the file"))?;
        Ok(Self {
            path: path.to_owned(),
            partial_path,
            out: Some(BufWriter::with_capacity(256 * 1024, file)),
            hasher: Sha256::new(),
        })
    }

    /// Syncs the file, moves it to its path, then signs it and writes the signature the same way.
    pub fn commit(mut self, key: &SigningKey) -> Result<()> {
        let out = self.out.take().ok_or(InterchangeError::WriterFailed)?;
        let signature = match self.seal(out, key) {
            Ok(signature) => signature,
            Err(error) => {
                // Not committed: the partial file is of no use to anyone.
                let _ = fs::remove_file(&self.partial_path);
                return Err(error);
            }
        };
        let signature_path = signature_path(&self.path);
        match fs::remove_file(&signature_path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                let action = "removing the old signature";
                return Err(InterchangeError::Io { action, source });
            }
        }
        fs::rename(&self.partial_path, &self.path)
            .map_err(InterchangeError::io("moving the file into place"))?;
        write_synced(&signature_path, signature.as_bytes())?;
        sync_directory(&self.path)
    }

    /// Flushes and syncs the partial file, and signs what was written to it.
    fn seal(&self, out: BufWriter<File>, key: &SigningKey) -> Result<DerSignature> {
        let file = out.into_inner().map_err(|error| InterchangeError::Io {
            action: "flushing the file",
            source: error.into_error(),
        })?;
        file.sync_all()
            .map_err(InterchangeError::io("syncing the file"))?;
        sign_digest(&self.hasher.clone().finalize().into(), key)
    }
}

impl Write for SignedFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the signed file was committed"))?;
        let written = out.write(bytes)?;
        self.hasher.update(bytes.get(..written).unwrap_or_default());
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.as_mut().map_or(Ok(()), BufWriter::flush)
    }
}

impl Drop for SignedFile {
    fn drop(&mut self) {
        // Not committed: the partial file is of no use to anyone.
        if self.out.is_some() {
            let _ = fs::remove_file(&self.partial_path);
        }
    }
}

/// Checks `NAME.sig` against the bytes of `path` and the sender's public key.
pub fn verify_file(path: &Path, sender: &PublicKey) -> Result<()> {
    open_verified(path, sender).map(drop)
}

/// Opens `path`, verifies its signature over the whole file, and returns it positioned at its start: parsing then
/// reads the same open file that was verified.
pub fn open_verified(path: &Path, sender: &PublicKey) -> Result<BufReader<File>> {
    let signature_path = signature_path(path);
    let signature = read_signature(&signature_path)?;
    let file = File::open(path).map_err(InterchangeError::io("opening the file"))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut hasher = Sha256::new();
    std::io::copy(&mut reader, &mut HashWriter(&mut hasher))
        .map_err(InterchangeError::io("reading the file"))?;
    let digest: [u8; 32] = hasher.finalize().into();
    VerifyingKey::from(sender)
        .verify_prehash(&digest, &signature)
        .map_err(|source| InterchangeError::BadSignature {
            path: path.to_owned(),
            source,
        })?;
    reader
        .rewind()
        .map_err(InterchangeError::io("rewinding the file"))?;
    Ok(reader)
}

/// Verifies a deduction file (pain.008) from `sender` (the credit company), then opens it for streaming.
pub fn read_signed_deductions(
    path: &Path,
    sender: &PublicKey,
) -> Result<DeductionReader<BufReader<File>>> {
    DeductionReader::new(open_verified(path, sender)?)
}

/// Verifies a status report (pain.002) from `sender` (the bank), then opens it for streaming.
pub fn read_signed_status_report(
    path: &Path,
    sender: &PublicKey,
) -> Result<StatusReportReader<BufReader<File>>> {
    StatusReportReader::new(open_verified(path, sender)?)
}

/// Verifies a transfer notice (camt.054) from `sender` (the bank), then opens it for streaming.
pub fn read_signed_transfer_notice(
    path: &Path,
    sender: &PublicKey,
) -> Result<TransferNoticeReader<BufReader<File>>> {
    TransferNoticeReader::new(open_verified(path, sender)?)
}

fn sign_digest(digest: &[u8; 32], key: &SigningKey) -> Result<DerSignature> {
    // RFC 6979 deterministic ECDSA over the SHA-256 digest: what `openssl dgst -sha256 -verify` expects.
    PrehashSigner::<DerSignature>::sign_prehash(key, digest).map_err(InterchangeError::Signing)
}

fn read_signature(path: &Path) -> Result<DerSignature> {
    let malformed = |source| InterchangeError::MalformedSignature {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(|source| InterchangeError::MissingSignature {
        path: path.to_owned(),
        source,
    })?;
    let mut bytes = Vec::with_capacity(80);
    file.take(MAX_SIGNATURE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| InterchangeError::MissingSignature {
            path: path.to_owned(),
            source,
        })?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_SIGNATURE_BYTES {
        return Err(malformed(None));
    }
    DerSignature::from_bytes(&bytes).map_err(|source| malformed(Some(source)))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial_path = with_suffix(path, ".partial");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&partial_path)
        .map_err(InterchangeError::io("creating the signature"))?;
    file.write_all(bytes)
        .map_err(InterchangeError::io("writing the signature"))?;
    file.sync_all()
        .map_err(InterchangeError::io("syncing the signature"))?;
    fs::rename(&partial_path, path).map_err(InterchangeError::io("moving the signature into place"))
}

/// Makes the renames durable: they live in the directory's entries.
fn sync_directory(path: &Path) -> Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(InterchangeError::io("syncing the directory"))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Feeds what `io::copy` reads into the hash.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
