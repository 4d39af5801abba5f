//! Access tokens: signing and verifying JWTs with a pinned algorithm and every claim checked.

use std::path::Path;

use anyhow::Context;
use chrono::Utc;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{JwtAlgorithm, JwtConfig};
use crate::error::{AppError, AppResult};

/// The `typ` header of our access tokens (RFC 9068), so no other JWT is mistaken for one.
const TOKEN_TYPE: &str = "at+jwt";
const MAX_LEEWAY_SECS: u64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// The user's token version at issue time; a bump (password change, deactivation)
    /// invalidates every earlier token.
    pub ver: i32,
}

/// A short-lived link to one file for one user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DownloadClaims {
    pub sub: String,
    pub file: String,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
}

const DOWNLOAD_TYPE: &str = "dl+jwt";

pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    key_id: Option<String>,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: chrono::Duration,
}

/// Where the HS256 secret came from, so start-up can warn about a generated one.
#[derive(Debug, PartialEq, Eq)]
pub enum KeySource {
    Configured,
    GeneratedNow,
    LoadedFromDataDir,
}

impl JwtKeys {
    pub fn load(config: &JwtConfig, data_dir: &Path) -> anyhow::Result<(Self, KeySource)> {
        let (algorithm, encoding, decoding, source) = match config.algorithm {
            JwtAlgorithm::HS256 => {
                let (secret, source) = match &config.secret {
                    Some(secret) => (secret.expose().to_owned(), KeySource::Configured),
                    None => load_or_generate_secret(data_dir)?,
                };
                (
                    Algorithm::HS256,
                    EncodingKey::from_secret(secret.as_bytes()),
                    DecodingKey::from_secret(secret.as_bytes()),
                    source,
                )
            }
            JwtAlgorithm::RS256 | JwtAlgorithm::EdDSA => {
                let private_path = config
                    .private_key_file
                    .as_ref()
                    .context("INTERLINK_JWT_PRIVATE_KEY_FILE is required for RS256/EdDSA")?;
                let public_path = config
                    .public_key_file
                    .as_ref()
                    .context("INTERLINK_JWT_PUBLIC_KEY_FILE is required for RS256/EdDSA")?;
                let private = std::fs::read(private_path)
                    .with_context(|| format!("reading {}", private_path.display()))?;
                let public = std::fs::read(public_path)
                    .with_context(|| format!("reading {}", public_path.display()))?;
                if config.algorithm == JwtAlgorithm::RS256 {
                    (
                        Algorithm::RS256,
                        EncodingKey::from_rsa_pem(&private)?,
                        DecodingKey::from_rsa_pem(&public)?,
                        KeySource::Configured,
                    )
                } else {
                    (
                        Algorithm::EdDSA,
                        EncodingKey::from_ed_pem(&private)?,
                        DecodingKey::from_ed_pem(&public)?,
                        KeySource::Configured,
                    )
                }
            }
        };

        // Validation::new pins the single accepted algorithm; jsonwebtoken requires only
        // `exp` by default, so the rest are demanded explicitly.
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "sub", "iss", "aud"]);
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_audience(&[config.audience.as_str()]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = MAX_LEEWAY_SECS;

        let access_ttl = chrono::Duration::from_std(config.access_ttl)
            .context("INTERLINK_ACCESS_TOKEN_TTL_SECS is out of range")?;
        Ok((
            Self {
                algorithm,
                encoding,
                decoding,
                key_id: config.key_id.clone(),
                validation,
                issuer: config.issuer.clone(),
                audience: config.audience.clone(),
                access_ttl,
            },
            source,
        ))
    }

    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl.num_seconds()
    }

    pub fn issue(&self, user_id: Uuid, token_version: i32) -> AppResult<String> {
        let now = Utc::now();
        let claims = Claims {
            sub: user_id.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: (now + self.access_ttl).timestamp(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            jti: Uuid::now_v7().to_string(),
            ver: token_version,
        };
        let mut header = Header::new(self.algorithm);
        header.typ = Some(TOKEN_TYPE.to_owned());
        header.kid = self.key_id.clone();
        encode(&header, &claims, &self.encoding).map_err(AppError::internal)
    }

    /// Every failure is `UNAUTHENTICATED` with the same message: the client learns nothing
    /// about which check failed.
    pub fn verify(&self, token: &str) -> AppResult<Claims> {
        let rejected = || AppError::Unauthenticated("invalid or expired access token".into());
        let header = decode_header(token).map_err(|_| rejected())?;
        if header.alg != self.algorithm || header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(rejected());
        }
        if self.key_id.is_some() && header.kid != self.key_id {
            return Err(rejected());
        }
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| {
                tracing::debug!(error = %err, "access token rejected");
                rejected()
            })
    }
}

impl JwtKeys {
    fn download_audience(&self) -> String {
        format!("{}:files", self.audience)
    }

    /// A download link token for `file_id`, good for `ttl_secs`, usable only by `user_id`'s
    /// visibility (checked again at download).
    pub fn issue_download(&self, file_id: Uuid, user_id: Uuid, ttl_secs: i64) -> AppResult<String> {
        let now = Utc::now().timestamp();
        let claims = DownloadClaims {
            sub: user_id.to_string(),
            file: file_id.to_string(),
            iss: self.issuer.clone(),
            aud: self.download_audience(),
            exp: now + ttl_secs,
            iat: now,
            nbf: now,
        };
        let mut header = Header::new(self.algorithm);
        header.typ = Some(DOWNLOAD_TYPE.to_owned());
        header.kid = self.key_id.clone();
        encode(&header, &claims, &self.encoding).map_err(AppError::internal)
    }

    pub fn verify_download(&self, token: &str) -> AppResult<DownloadClaims> {
        let rejected = || AppError::Unauthenticated("invalid or expired download link".into());
        let header = decode_header(token).map_err(|_| rejected())?;
        if header.alg != self.algorithm || header.typ.as_deref() != Some(DOWNLOAD_TYPE) {
            return Err(rejected());
        }
        let mut validation = self.validation.clone();
        validation.set_audience(&[self.download_audience()]);
        decode::<DownloadClaims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| rejected())
    }
}

fn load_or_generate_secret(data_dir: &Path) -> anyhow::Result<(String, KeySource)> {
    let path = data_dir.join("jwt-secret");
    if path.exists() {
        let secret = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let secret = secret.trim().to_owned();
        anyhow::ensure!(
            secret.len() >= 32,
            "{} holds a secret that is too short",
            path.display()
        );
        return Ok((secret, KeySource::LoadedFromDataDir));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let secret = super::tokens::generate() + &super::tokens::generate();
    write_private_file(&path, &secret)?;
    Ok((secret, KeySource::GeneratedNow))
}

#[cfg(unix)]
fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use std::time::Duration;

    fn config(secret: &str) -> JwtConfig {
        JwtConfig {
            algorithm: JwtAlgorithm::HS256,
            secret: Some(Secret::new(secret)),
            private_key_file: None,
            public_key_file: None,
            key_id: None,
            issuer: "interlink".into(),
            audience: "interlink-api".into(),
            access_ttl: Duration::from_secs(60),
            refresh_ttl: Duration::from_secs(600),
        }
    }

    fn keys(secret: &str) -> anyhow::Result<JwtKeys> {
        Ok(JwtKeys::load(&config(secret), Path::new("/nonexistent"))?.0)
    }

    fn forge(claims: &Claims, header: Header, secret: &str) -> anyhow::Result<String> {
        Ok(encode(
            &header,
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )?)
    }

    fn valid_claims() -> Claims {
        let now = Utc::now().timestamp();
        Claims {
            sub: Uuid::now_v7().to_string(),
            iss: "interlink".into(),
            aud: "interlink-api".into(),
            exp: now + 60,
            iat: now,
            nbf: now,
            jti: "x".into(),
            ver: 0,
        }
    }

    fn typed(alg: Algorithm) -> Header {
        let mut h = Header::new(alg);
        h.typ = Some(TOKEN_TYPE.into());
        h
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_tokens_verify() -> anyhow::Result<()> {
        let k = keys(SECRET)?;
        let user = Uuid::now_v7();
        let token = k.issue(user, 3).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let claims = k.verify(&token).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert_eq!(claims.sub, user.to_string());
        assert_eq!(claims.ver, 3);
        Ok(())
    }

    #[test]
    fn forged_foreign_expired_and_mistyped_tokens_are_rejected() -> anyhow::Result<()> {
        let k = keys(SECRET)?;
        let base = valid_claims();
        assert!(k
            .verify(&forge(&base, typed(Algorithm::HS256), SECRET)?)
            .is_ok());

        let other_secret = "fedcba9876543210fedcba9876543210";
        let cases: Vec<(&str, String)> = vec![
            (
                "wrong key",
                forge(&base, typed(Algorithm::HS256), other_secret)?,
            ),
            (
                "other algorithm",
                forge(&base, typed(Algorithm::HS512), SECRET)?,
            ),
            (
                "no typ",
                forge(&base, Header::new(Algorithm::HS256), SECRET)?,
            ),
            (
                "expired beyond leeway",
                forge(
                    &Claims {
                        exp: base.iat - 31,
                        ..base.clone()
                    },
                    typed(Algorithm::HS256),
                    SECRET,
                )?,
            ),
            (
                "not yet valid",
                forge(
                    &Claims {
                        nbf: base.iat + 120,
                        ..base.clone()
                    },
                    typed(Algorithm::HS256),
                    SECRET,
                )?,
            ),
            (
                "foreign issuer",
                forge(
                    &Claims {
                        iss: "evil".into(),
                        ..base.clone()
                    },
                    typed(Algorithm::HS256),
                    SECRET,
                )?,
            ),
            (
                "foreign audience",
                forge(
                    &Claims {
                        aud: "other-api".into(),
                        ..base.clone()
                    },
                    typed(Algorithm::HS256),
                    SECRET,
                )?,
            ),
            ("garbage", "not.a.jwt".to_owned()),
        ];
        for (name, token) in cases {
            assert!(k.verify(&token).is_err(), "{name} was accepted");
        }
        Ok(())
    }

    #[test]
    fn tokens_missing_required_claims_are_rejected() -> anyhow::Result<()> {
        let k = keys(SECRET)?;
        let now = Utc::now().timestamp();
        let without_aud = serde_json::json!({
            "sub": "u", "iss": "interlink", "exp": now + 60, "iat": now, "nbf": now, "jti": "x", "ver": 0
        });
        let token = encode(
            &typed(Algorithm::HS256),
            &without_aud,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )?;
        assert!(k.verify(&token).is_err());
        Ok(())
    }

    #[test]
    fn a_generated_secret_is_persisted_privately() -> anyhow::Result<()> {
        let dir = tempfile_dir()?;
        let mut c = config(SECRET);
        c.secret = None;
        let (_, first) = JwtKeys::load(&c, &dir)?;
        let (_, second) = JwtKeys::load(&c, &dir)?;
        assert_eq!(first, KeySource::GeneratedNow);
        assert_eq!(second, KeySource::LoadedFromDataDir);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("jwt-secret"))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    fn asymmetric(algorithm: JwtAlgorithm, stem: &str, kid: &str) -> anyhow::Result<JwtKeys> {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut c = config(SECRET);
        c.algorithm = algorithm;
        c.secret = None;
        c.private_key_file = Some(fixtures.join(format!("jwt-{stem}-private.pem")));
        c.public_key_file = Some(fixtures.join(format!("jwt-{stem}-public.pem")));
        c.key_id = Some(kid.to_owned());
        Ok(JwtKeys::load(&c, Path::new("/nonexistent"))?.0)
    }

    #[test]
    fn rs256_and_eddsa_keys_sign_verify_and_pin_their_kid() -> anyhow::Result<()> {
        for (algorithm, stem, expected) in [
            (JwtAlgorithm::RS256, "rsa", Algorithm::RS256),
            (JwtAlgorithm::EdDSA, "ed25519", Algorithm::EdDSA),
        ] {
            let keys = asymmetric(algorithm, stem, "key-1")?;
            let token = keys
                .issue(Uuid::now_v7(), 0)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let header = decode_header(&token)?;
            assert_eq!(header.alg, expected);
            assert_eq!(header.kid.as_deref(), Some("key-1"));
            assert!(keys.verify(&token).is_ok(), "{stem}");

            // The same key under another kid refuses it, and so does an HS256 token.
            assert!(asymmetric(algorithm, stem, "key-2")?
                .verify(&token)
                .is_err());
            let mut hs = typed(Algorithm::HS256);
            hs.kid = Some("key-1".into());
            assert!(keys.verify(&forge(&valid_claims(), hs, SECRET)?).is_err());
        }
        Ok(())
    }

    fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
        let dir = std::env::temp_dir().join(format!("interlink-jwt-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}
