//! Password hashing with argon2id at (at least) the OWASP minimum parameters.

use std::sync::OnceLock;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{AppError, AppResult};

/// OWASP: argon2id, m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

/// Each hash holds 19 MiB for tens of milliseconds; without a bound, a burst of sign-ins
/// (or one request aliasing `login` many times) would exhaust memory and the blocking pool.
fn permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new((cores * 2).max(4))
    })
}

/// Hashes and verifies passwords off the runtime, counting each on its node's
/// `interlink_password_hashes_total`, so the cost of sign-ins is visible (and testable) per node.
#[derive(Clone)]
pub struct Passwords {
    hashes: Option<prometheus::IntCounter>,
}

impl Passwords {
    pub fn new(hashes: prometheus::IntCounter) -> Self {
        Self {
            hashes: Some(hashes),
        }
    }

    /// For one-shot commands (seeding, the admin CLI) that serve no metrics.
    pub fn unmetered() -> Self {
        Self { hashes: None }
    }

    /// Hashes on the blocking pool: argon2 is deliberately slow and must not stall the runtime.
    pub async fn hash(&self, password: String) -> AppResult<String> {
        self.run_bounded(move || hash_blocking(&password)).await
    }

    /// Verifies against `stored`, or, when there is no such user, against a fixed dummy hash
    /// so an unknown email costs the same time as a wrong password.
    pub async fn verify(&self, password: String, stored: Option<String>) -> AppResult<bool> {
        self.run_bounded(move || match stored {
            Some(stored) => verify_blocking(&password, &stored),
            None => {
                let _ = verify_blocking(&password, dummy_hash()?);
                Ok(false)
            }
        })
        .await
    }

    async fn run_bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> AppResult<T> + Send + 'static,
    ) -> AppResult<T> {
        let busy = || {
            AppError::rate_limited(
                "the server is busy checking passwords; try again shortly",
                Some(Duration::from_secs(1)),
            )
        };
        let _permit = tokio::time::timeout(Duration::from_secs(5), permits().acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        if let Some(hashes) = &self.hashes {
            hashes.inc();
        }
        tokio::task::spawn_blocking(work)
            .await
            .map_err(AppError::internal)?
    }
}

fn hasher() -> AppResult<Argon2<'static>> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 params: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(anyhow::anyhow!("hashing password: {e}")))
}

fn verify_blocking(password: &str, stored: &str) -> AppResult<bool> {
    let parsed = PasswordHash::new(stored)
        .map_err(|e| AppError::internal(anyhow::anyhow!("stored hash unreadable: {e}")))?;
    Ok(hasher()?
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

fn dummy_hash() -> AppResult<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let hash = hash_blocking("interlink-timing-equaliser")?;
    Ok(DUMMY.get_or_init(|| hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_with_owasp_parameters_and_verifies() -> anyhow::Result<()> {
        let counter = prometheus::IntCounter::new("hashes", "hashes")?;
        let passwords = Passwords::new(counter.clone());
        let stored = passwords
            .hash("correct horse battery".into())
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        let verify = |password: &str, stored: Option<String>| {
            let passwords = passwords.clone();
            let password = password.to_owned();
            async move {
                passwords
                    .verify(password, stored)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e:?}"))
            }
        };
        assert!(verify("correct horse battery", Some(stored.clone())).await?);
        assert!(!verify("wrong", Some(stored)).await?);
        assert!(!verify("anything", None).await?);
        assert_eq!(counter.get(), 4, "one hash and three verifications");
        Ok(())
    }
}
