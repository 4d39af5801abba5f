//! Signing outgoing webhooks the Standard Webhooks v1 way (`webhook-signature: v1,<base64>`),
//! so receivers can check them with any of that specification's libraries.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// The specification asks for secrets of 24 to 64 bytes.
const MIN_SECRET_BYTES: usize = 24;
const MAX_SECRET_BYTES: usize = 64;

/// A signing secret: the decoded key bytes. Its `Debug` does not print them.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

impl SigningSecret {
    /// 32 bytes from the operating system's generator.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// `whsec_` and the key in standard base64.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or("a signing secret starts with whsec_")?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "a signing secret is whsec_ and standard base64")?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(format!(
                "a signing secret is {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes"
            ));
        }
        Ok(Self(key))
    }

    /// The form `parse` reads: `whsec_…`.
    pub fn to_text(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
pub fn sign(secret: &SigningSecret, message_id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` only fails for fixed-size MACs.
    let mut mac = match Hmac::<Sha256>::new_from_slice(&secret.0) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The webhook-signature header: one `v1,` signature per secret, space-separated (during a
/// rotation both the new and the previous secret sign).
pub fn signature_header(
    secrets: &[&SigningSecret],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> anyhow::Result<SigningSecret> {
        SigningSecret::parse(text).map_err(anyhow::Error::msg)
    }

    /// The vectors published with the specification, standard-webhooks/standard-webhooks:
    /// `libraries/go/webhook_test.go` (TestWebhookSign) and `libraries/rust/src/lib.rs`
    /// (test_sign). Only the vectors are taken, not the code.
    #[test]
    fn sign_matches_the_published_vectors() -> anyhow::Result<()> {
        let vectors = [
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#,
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
            (
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                r#"{"email":"test@example.com","username":"test_user"}"#,
                "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
        ];
        for (text, id, timestamp, body, expected) in vectors {
            let key = secret(text)?;
            assert_eq!(sign(&key, id, timestamp, body.as_bytes()), expected);
            assert_eq!(key.to_text(), text);
        }
        Ok(())
    }

    #[test]
    fn secrets_round_trip_and_do_not_print() -> anyhow::Result<()> {
        let generated = SigningSecret::generate();
        assert_eq!(generated.0.len(), 32);
        assert_ne!(generated, SigningSecret::generate());
        let text = generated.to_text();
        assert!(text.starts_with("whsec_"));
        assert_eq!(secret(&text)?, generated);
        let printed = format!("{generated:?}");
        assert!(!printed.contains(&text[PREFIX.len()..]), "{printed}");
        assert_eq!(printed, "SigningSecret(..)");
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
            "whsec_",
            "whsec_AAAA",
        ] {
            assert!(SigningSecret::parse(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn the_header_carries_one_signature_per_secret() {
        let (new, old) = (SigningSecret::generate(), SigningSecret::generate());
        let header = signature_header(&[&new, &old], "msg_1", 1_700_000_000, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [
                sign(&new, "msg_1", 1_700_000_000, b"{}"),
                sign(&old, "msg_1", 1_700_000_000, b"{}")
            ]
        );
    }

    /// The specification's own Rust library verifies what we sign.
    #[test]
    fn the_reference_library_verifies_our_signatures() -> anyhow::Result<()> {
        use standardwebhooks::Webhook;

        let (new, old) = (SigningSecret::generate(), SigningSecret::generate());
        let body = br#"{"type":"task.created","data":{"id":"t1"}}"#;
        let now = chrono::Utc::now().timestamp();
        let headers = |timestamp: i64, signature: &str| -> anyhow::Result<_> {
            let mut map = http::HeaderMap::new();
            map.insert("webhook-id", "msg_1".parse()?);
            map.insert("webhook-timestamp", timestamp.to_string().parse()?);
            map.insert("webhook-signature", signature.parse()?);
            Ok(map)
        };
        let rotating = signature_header(&[&new, &old], "msg_1", now, body);
        for key in [&new, &old] {
            let verifier = Webhook::new(&key.to_text())?;
            verifier.verify(body, &headers(now, &rotating)?)?;
            // A changed body, a changed timestamp, and one older than five minutes fail.
            assert!(verifier
                .verify(
                    br#"{"type":"task.created","data":{"id":"t2"}}"#,
                    &headers(now, &rotating)?
                )
                .is_err());
            assert!(verifier
                .verify(body, &headers(now - 1, &rotating)?)
                .is_err());
            let stale = now - 6 * 60;
            let signed_stale = signature_header(&[key], "msg_1", stale, body);
            assert!(verifier
                .verify(body, &headers(stale, &signed_stale)?)
                .is_err());
        }
        // Neither secret of the header: refused.
        let stranger = Webhook::new(&SigningSecret::generate().to_text())?;
        assert!(stranger.verify(body, &headers(now, &rotating)?).is_err());
        Ok(())
    }
}
