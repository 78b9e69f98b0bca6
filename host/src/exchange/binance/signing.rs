//! Request signatures for Binance's SIGNED endpoints: HMAC-SHA256 with the
//! API secret (hex), or Ed25519 with a private key (base64), over the query
//! string and body exactly as sent. The key material never leaves this
//! type: `Debug` shows the API key masked, and nothing else.

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What signs a request.
pub enum Signer {
    Hmac(Vec<u8>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the Ed25519 private key is not a PKCS#8 PEM file (`-----BEGIN PRIVATE KEY-----`)")]
    Pem,
    #[error("the {0} is empty")]
    Empty(&'static str),
}

impl Signer {
    pub fn hmac(secret: &str) -> Result<Self, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::Empty("API secret"));
        }
        Ok(Self::Hmac(secret.as_bytes().to_vec()))
    }

    /// From the PEM text of an Ed25519 private key (as Binance's key
    /// generator writes it).
    pub fn ed25519_pem(pem: &str) -> Result<Self, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(|key| Self::Ed25519(Box::new(key)))
            .map_err(|_| KeyError::Pem)
    }

    /// Bytes that identify the key (to tell keys apart by a hash; never
    /// shown).
    pub(super) fn identity(&self) -> Vec<u8> {
        match self {
            Signer::Hmac(secret) => secret.clone(),
            Signer::Ed25519(key) => key.to_bytes().to_vec(),
        }
    }

    /// The `signature` parameter for `payload` (query string then body).
    pub fn sign(&self, payload: &str) -> String {
        match self {
            Signer::Hmac(secret) => {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
                mac.update(payload.as_bytes());
                mac.finalize()
                    .into_bytes()
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect()
            }
            Signer::Ed25519(key) => base64::engine::general_purpose::STANDARD
                .encode(key.sign(payload.as_bytes()).to_bytes()),
        }
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signer::Hmac(_) => "Signer::Hmac(***)",
            Signer::Ed25519(_) => "Signer::Ed25519(***)",
        })
    }
}

/// A secret as it may be shown: `***` and its last four characters.
pub fn mask(secret: &str) -> String {
    let tail: String = {
        let chars: Vec<char> = secret.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    if secret.chars().count() <= 8 {
        "***".into()
    } else {
        format!("***{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_the_binance_docs_example() {
        let signer =
            Signer::hmac("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j")
                .unwrap();
        assert_eq!(
            signer.sign("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
    }

    /// RFC 8032, section 7.1, tests 1 and 2: the private key as PKCS#8 PEM
    /// (the 16-byte PKCS#8 prefix for Ed25519, then the 32-byte seed).
    fn rfc8032_pem(seed_hex: &str) -> String {
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend((0..32).map(|i| u8::from_str_radix(&seed_hex[2 * i..2 * i + 2], 16).unwrap()));
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
    }

    fn hex_to_base64(hex: &str) -> String {
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn ed25519_matches_rfc_8032() {
        let test1 = Signer::ed25519_pem(&rfc8032_pem(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        ))
        .unwrap();
        assert_eq!(
            test1.sign(""),
            hex_to_base64(
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
            )
        );
        let test2 = Signer::ed25519_pem(&rfc8032_pem(
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        ))
        .unwrap();
        // The message is the single byte 0x72 ("r").
        assert_eq!(
            test2.sign("r"),
            hex_to_base64(
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
            )
        );
        assert!(Signer::ed25519_pem("not a key").is_err());
    }

    #[test]
    fn secrets_show_only_their_last_four_characters() {
        assert_eq!(mask("vmPUZE6mv9SD5VNHk4Hl"), "***k4Hl");
        assert_eq!(mask("short"), "***");
        let signer = Signer::hmac("top-secret-value").unwrap();
        assert!(!format!("{signer:?}").contains("secret-value"));
    }
}
