//! API key material: `rustydb_` + 48 hex digits (192 random bits). Only a SHA-256 of the key is
//! stored; a 192-bit random secret needs no slow hash, and lookup by hash stays one index probe.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::Result;

pub(super) const PREFIX: &str = "rustydb_";
const SHOWN_PREFIX_LEN: usize = PREFIX.len() + 6;

pub(super) struct Minted {
    pub key: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

pub(super) fn mint() -> Result<Minted> {
    let key = format!("{PREFIX}{}", hex::encode(super::random_bytes::<24>()?));
    Ok(Minted {
        prefix: key[..SHOWN_PREFIX_LEN].to_string(),
        hash: digest(&key),
        key,
    })
}

pub(super) fn digest(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Whether a presented key looks like one of ours (cheap rejection before any lookup).
pub(super) fn well_formed(key: &str) -> bool {
    key.len() == PREFIX.len() + 48
        && key.starts_with(PREFIX)
        && key[PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit())
}

pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
