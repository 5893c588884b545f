//! Access and refresh tokens: HS256 JWTs with the seed's claims plus `jti`, the login family and
//! the token kind. The algorithm is pinned on verification and clock skew is bounded.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::config::SecurityConfig;
use crate::error::{Error, Result};

const KEY_FILE: &str = "jwt.key";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Claims {
    pub sub: String,
    pub username: String,
    pub roles: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// The login this token belongs to; revoking the family revokes every token of the login.
    pub fam: String,
    pub typ: TokenKind,
}

pub(super) struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
}

impl TokenIssuer {
    /// Uses the configured secret, or the data directory's key file (created on first start).
    pub(super) fn new(security: &SecurityConfig, data_dir: &Path) -> Result<TokenIssuer> {
        let secret = match &security.jwt_secret {
            Some(s) => s.expose().as_bytes().to_vec(),
            None => load_or_create_key(data_dir)?,
        };
        let mut validation = Validation::new(Algorithm::HS256);
        // Tolerated clock difference between issuer and verifier.
        validation.leeway = security.token_leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "sub"]);
        Ok(TokenIssuer {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation,
            access_ttl_secs: i64::try_from(security.access_token_ttl_secs).unwrap_or(i64::MAX),
            refresh_ttl_secs: i64::try_from(security.refresh_token_ttl_secs).unwrap_or(i64::MAX),
        })
    }

    /// Seconds past `exp` (and before `nbf`) a token is still accepted.
    pub(super) fn leeway_secs(&self) -> u64 {
        self.validation.leeway
    }

    pub(super) fn issue(
        &self,
        user_id: &str,
        username: &str,
        roles: &[String],
        family: &str,
        kind: TokenKind,
    ) -> Result<(String, Claims)> {
        let now = chrono::Utc::now().timestamp();
        let ttl = match kind {
            TokenKind::Access => self.access_ttl_secs,
            TokenKind::Refresh => self.refresh_ttl_secs,
        };
        let claims = Claims {
            sub: user_id.to_string(),
            username: username.to_string(),
            roles: roles.to_vec(),
            exp: now.saturating_add(ttl),
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            fam: family.to_string(),
            typ: kind,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Config(format!("failed to sign token: {e}")))?;
        Ok((token, claims))
    }

    /// Verifies signature, algorithm, expiry, not-before and kind. The error is safe to show.
    pub(super) fn verify(
        &self,
        token: &str,
        kind: TokenKind,
    ) -> std::result::Result<Claims, String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| format!("invalid token: {e}"))?;
        if data.claims.typ != kind {
            return Err("invalid token: wrong token kind".into());
        }
        Ok(data.claims)
    }
}

/// 64 random bytes, hex, in `jwt.key` (mode 0600), created once.
fn load_or_create_key(data_dir: &Path) -> Result<Vec<u8>> {
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim())
            .map_err(|e| Error::Config(format!("{}: not a hex key: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = super::random_bytes::<64>()?;
            write_private(&path, hex::encode(key).as_bytes())?;
            Ok(key.to_vec())
        }
        Err(source) => Err(Error::DataDir { path, source }),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|source| Error::DataDir {
        path: path.to_path_buf(),
        source,
    })?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
