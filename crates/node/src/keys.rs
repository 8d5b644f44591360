//! The node key (Ed25519): signs message-log checkpoints now, hop signatures later. Kept as a
//! PKCS#8 PEM file readable by the owner only.

use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("node key {path}: {message}")]
    Key { path: String, message: String },
}

fn key_err(path: &Path, message: impl ToString) -> KeyError {
    KeyError::Key {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Loads the key at `path`, creating it (mode 0600) if the file does not exist.
pub fn load_or_create(path: &Path) -> Result<SigningKey, KeyError> {
    if path.exists() {
        return load(path);
    }
    if let Some(dir) = path.parent() {
        trust::files::create_private_dir(dir).map_err(|e| key_err(path, e))?;
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| key_err(path, e))?;
    match trust::files::write_private(path, pem.as_bytes()) {
        Ok(()) => Ok(key),
        // Another process made it between our look and our write: its key is the node's.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load(path),
        Err(e) => Err(key_err(path, e)),
    }
}

pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| key_err(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(key_err(
                path,
                format!(
                    "permissions {:o} let others read it; chmod 600 it",
                    mode & 0o777
                ),
            ));
        }
    }
    let pem = std::fs::read_to_string(path).map_err(|e| key_err(path, e))?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| key_err(path, e))
}

/// Hex SHA-256 of the public key: how checkpoints name the key that signed them.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The node key as the store's checkpoint signer.
pub struct NodeSigner(pub SigningKey);

impl store::CheckpointSigner for NodeSigner {
    fn key_id(&self) -> String {
        key_id(&self.0.verifying_key())
    }
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).to_bytes().to_vec()
    }
}
