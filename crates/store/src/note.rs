//! Signed notes (the C2SP `signed-note` format) and transparency-log checkpoints
//! (C2SP `tlog-checkpoint`), signed with ed25519.
//!
//! A checkpoint's text is
//! ```text
//! kaudit/<log id>          origin
//! 1234                     tree size
//! <base64 root hash>
//! time 2026-11-22T10:00:00.000000Z
//!
//! — kaudit/<log id> <base64(key hash (4 bytes) || signature (64 bytes))>
//! ```
//! The key hash is the first four bytes of SHA-256(name || "\n" || 0x01 || public key), as
//! C2SP specifies for ed25519 keys, so Go's `golang.org/x/mod/sumdb/note` reads these notes.

use std::fs;
use std::io;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use kaudit_model::durable;

use crate::merkle::Hash;

/// The key that signs checkpoints and retention records.
pub struct Keys {
    /// The log's name, the first line of every checkpoint.
    pub origin: String,
    signing: Option<SigningKey>,
    /// The public half.
    pub public: VerifyingKey,
}

impl Keys {
    /// Creates a new key pair with a random seed.
    pub fn generate(origin: String) -> io::Result<Keys> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| io::Error::other(e.to_string()))?;
        let signing = SigningKey::from_bytes(&seed);
        Ok(Keys {
            origin,
            public: signing.verifying_key(),
            signing: Some(signing),
        })
    }

    /// Saves the private key (PKCS#8 PEM, mode 0600), the public key (SPKI PEM) and the origin.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        durable::create_dir_all(dir)?;
        let signing = self.signing.as_ref().expect("a signing key to save");
        let pem = signing
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| io::Error::other(e.to_string()))?;
        durable::replace_private(&dir.join("signing.key"), pem.as_bytes())?;
        durable::replace(&dir.join("signing.pub"), self.public_pem().as_bytes())?;
        durable::replace(&dir.join("origin"), format!("{}\n", self.origin).as_bytes())?;
        Ok(())
    }

    /// Loads the key pair saved by [`Keys::save`].
    pub fn load(dir: &Path) -> io::Result<Keys> {
        let origin = fs::read_to_string(dir.join("origin"))?.trim().to_string();
        let pem = fs::read_to_string(dir.join("signing.key"))?;
        let signing = SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", dir.join("signing.key").display()),
            )
        })?;
        Ok(Keys {
            origin,
            public: signing.verifying_key(),
            signing: Some(signing),
        })
    }

    /// A verifier from a public key (PEM, or the note verifier-key form
    /// `<name>+<hex key hash>+<base64(0x01 || key)>`), for checking without the private key.
    pub fn verifier(origin: String, text: &str) -> Result<Keys, String> {
        use ed25519_dalek::pkcs8::DecodePublicKey;
        let text = text.trim();
        let public = if text.starts_with("-----BEGIN") {
            VerifyingKey::from_public_key_pem(text).map_err(|e| format!("public key: {e}"))?
        } else {
            // `<name>+<hash>+<base64>`: names have no '+', base64 may.
            let b = text.splitn(3, '+').nth(2).unwrap_or("");
            let raw = B64.decode(b).map_err(|e| format!("verifier key: {e}"))?;
            if raw.len() != 33 || raw[0] != 1 {
                return Err("verifier key: not an ed25519 note key".into());
            }
            VerifyingKey::from_bytes(raw[1..].try_into().unwrap())
                .map_err(|e| format!("verifier key: {e}"))?
        };
        Ok(Keys {
            origin,
            signing: None,
            public,
        })
    }

    /// The public key as SPKI PEM.
    pub fn public_pem(&self) -> String {
        self.public
            .to_public_key_pem(LineEnding::LF)
            .expect("ed25519 public keys encode")
    }

    /// The C2SP note verifier key: `<name>+<hex key hash>+<base64(0x01 || key)>`.
    pub fn verifier_key(&self) -> String {
        let mut k = vec![1u8];
        k.extend_from_slice(self.public.as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.origin,
            u32::from_be_bytes(self.key_hash()),
            B64.encode(k)
        )
    }

    fn key_hash(&self) -> [u8; 4] {
        let mut h = Sha256::new();
        h.update(self.origin.as_bytes());
        h.update(b"\n\x01");
        h.update(self.public.as_bytes());
        h.finalize()[..4].try_into().unwrap()
    }

    /// Signs `body` (which must end in a newline) into a note.
    pub fn sign(&self, body: &str) -> String {
        debug_assert!(body.ends_with('\n'));
        let sig = self
            .signing
            .as_ref()
            .expect("signing needs the private key")
            .sign(body.as_bytes());
        let mut blob = self.key_hash().to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        format!("{body}\n\u{2014} {} {}\n", self.origin, B64.encode(blob))
    }

    /// Checks a note's signature by this key; returns the signed body.
    pub fn open<'n>(&self, note: &'n str) -> Result<&'n str, String> {
        let Some(split) = note.rfind("\n\n") else {
            return Err("not a signed note (no blank line before the signatures)".into());
        };
        let body = &note[..split + 1];
        let sigs = &note[split + 2..];
        let want = self.key_hash();
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(format!("malformed signature line {line:?}"));
            };
            let Some((name, b)) = rest.split_once(' ') else {
                return Err(format!("malformed signature line {line:?}"));
            };
            let blob = B64
                .decode(b)
                .map_err(|_| format!("signature of {name} is not base64"))?;
            if name != self.origin || blob.len() != 68 || blob[..4] != want {
                continue;
            }
            let sig = Signature::from_bytes(blob[4..].try_into().unwrap());
            return self
                .public
                .verify(body.as_bytes(), &sig)
                .map(|_| body)
                .map_err(|_| "signature does not verify: the note was altered or forged".into());
        }
        Err(format!(
            "no signature by {} (key {:08x})",
            self.origin,
            u32::from_be_bytes(want)
        ))
    }
}

/// A tree head: what a checkpoint says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// When it was signed (microseconds since the epoch).
    pub time: i64,
}

impl Checkpoint {
    /// The note body.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\ntime {}\n",
            self.origin,
            self.size,
            B64.encode(self.root),
            kaudit_model::MicroTime(self.time)
        )
    }

    /// Parses a checkpoint body (already signature-checked).
    pub fn parse(body: &str) -> Result<Checkpoint, String> {
        let mut lines = body.lines();
        let origin = lines.next().ok_or("empty checkpoint")?.to_string();
        let size = lines
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or("checkpoint: second line is not a tree size")?;
        let root: Hash = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .and_then(|v| v.try_into().ok())
            .ok_or("checkpoint: third line is not a base64 SHA-256 root")?;
        let mut time = 0;
        for l in lines {
            if let Some(t) = l.strip_prefix("time ") {
                time = kaudit_model::MicroTime::parse(t)
                    .ok_or("checkpoint: bad time")?
                    .micros();
            }
        }
        Ok(Checkpoint {
            origin,
            size,
            root,
            time,
        })
    }
}

/// One line of `checkpoints.jsonl` or `retention.jsonl`: a signed note.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Line {
    pub note: String,
}

impl Line {
    /// The line as written to the file (with its newline).
    pub fn to_line(note: String) -> String {
        let mut line = serde_json::to_string(&Line { note }).expect("a string serializes");
        line.push('\n');
        line
    }
}

/// A notes file's text (empty when there is no such file). Lossy: a write cut by a crash can
/// end inside a character, and one damaged byte must not hide every note (the line then fails
/// to parse, and is reported as what it is).
pub(crate) fn read_text(path: &Path) -> crate::Result<String> {
    match fs::read(path) {
        Ok(t) => Ok(String::from_utf8(t)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(crate::Error::io(path, e)),
    }
}

/// The bodies of the notes in the file at `path` that `keys` signed, in file order (lines
/// that are not such notes are passed over: `verify` reports them). A file that cannot be
/// read is an error (one that does not exist holds none).
pub(crate) fn signed_bodies(path: &Path, keys: &Keys) -> crate::Result<Vec<String>> {
    Ok(read_text(path)?
        .lines()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .filter_map(|l| keys.open(&l.note).ok().map(str::to_string))
        .collect())
}

/// The latest checkpoint in `path` signed by `keys`, if any (read from the end: only the
/// notes after it are checked; lines that are not such notes are passed over, so one damaged
/// line does not hide the checkpoints before it). A file that cannot be read is an error.
pub(crate) fn latest_checkpoint(
    path: &Path,
    keys: &Keys,
) -> crate::Result<Option<(String, Checkpoint)>> {
    Ok(read_text(path)?
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .find_map(|l| {
            let cp = Checkpoint::parse(keys.open(&l.note).ok()?).ok()?;
            Some((l.note, cp))
        }))
}

/// The checkpoint on the last whole line of `path` (an unfinished last line, a write cut by
/// a crash, is passed over): what a proof vouches for, so anything but a checkpoint signed by
/// `keys` there is an error, not something to skip.
pub(crate) fn last_checkpoint(
    path: &Path,
    keys: &Keys,
) -> crate::Result<Option<(String, Checkpoint)>> {
    let text = read_text(path)?;
    let whole = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    let Some((n, line)) = whole
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .last()
    else {
        return Ok(None);
    };
    let at = |e: String| {
        crate::Error::damaged(path, format!("line {}: {e} (run `kaudit verify`)", n + 1))
    };
    let l: Line =
        serde_json::from_str(line).map_err(|e| at(format!("not a checkpoint line: {e}")))?;
    let cp = Checkpoint::parse(keys.open(&l.note).map_err(at)?).map_err(at)?;
    Ok(Some((l.note, cp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_open_and_reject_edits() {
        for _ in 0..20 {
            // Random keys: some verifier keys have '+' in their base64.
            let k = Keys::generate("kaudit/test".into()).unwrap();
            let v = Keys::verifier(k.origin.clone(), &k.verifier_key()).unwrap();
            assert_eq!(v.public, k.public);
        }
        let k = Keys::generate("kaudit/test".into()).unwrap();
        let cp = Checkpoint {
            origin: k.origin.clone(),
            size: 42,
            root: [7; 32],
            time: 1_700_000_000_000_000,
        };
        let note = k.sign(&cp.body());
        let body = k.open(&note).unwrap();
        assert_eq!(Checkpoint::parse(body).unwrap(), cp);
        let forged = note.replacen("42\n", "43\n", 1);
        assert!(k.open(&forged).unwrap_err().contains("altered or forged"));
        let other = Keys::generate("kaudit/test".into()).unwrap();
        assert!(other.open(&note).is_err());
        let v = Keys::verifier(k.origin.clone(), &k.verifier_key()).unwrap();
        assert!(v.open(&note).is_ok());
        let v = Keys::verifier(k.origin.clone(), &k.public_pem()).unwrap();
        assert!(v.open(&note).is_ok());
    }
}
