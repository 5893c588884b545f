//! Password hashing with argon2id (the crate's defaults), off the async runtime: a hash costs
//! tens of milliseconds by design.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::{Error, Result};

pub(super) fn hash_blocking(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Config(format!("failed to hash password: {e}")))
}

pub(super) async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

/// `false` for a wrong password or an unparsable stored hash.
pub(super) async fn verify(password: String, stored: String) -> Result<bool> {
    Ok(tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await?)
}
