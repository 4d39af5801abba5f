//! PLACEHOLDER for the `outbound` branch's Standard Webhooks signer (same public API).

use base64::Engine;
use sha2::{Digest, Sha256};

pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    pub fn generate() -> Self {
        Self((0..32).map(|_| rand::random::<u8>()).collect())
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let raw = text.strip_prefix("whsec_").ok_or("not a whsec_ secret")?;
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    pub fn to_text(&self) -> String {
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(&self.0)
        )
    }
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let mut h = Sha256::new();
    h.update(&inner);
    h.update(message);
    let first = h.finalize();
    let mut h = Sha256::new();
    h.update(&outer);
    h.update(first);
    h.finalize().to_vec()
}

pub fn sign(secret: &SigningSecret, message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{message_id}.{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(hmac(&secret.0, &message))
    )
}

pub fn signature_header(
    secrets: &[&SigningSecret],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| sign(s, message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}
