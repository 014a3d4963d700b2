//! Signing keys made at test time, and JWTs signed with them, so that tests can hand scopetrail
//! access tokens and a JWKS like an identity provider's without any key material in the tree.
//!
//! Verifying these tokens with jsonwebtoken 11 needs no setup while the crate is built with the
//! `aws_lc_rs` feature alone: it then picks its aws-lc provider on first use. Should `rust_crypto`
//! ever be enabled too (by us or by a dependency), jsonwebtoken panics on the first sign or
//! verify, and the consuming code must call
//! `jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default()` once at startup.
// Each test crate that includes this module uses only part of it.
#![allow(dead_code)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub struct TestKeys {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
}

impl TestKeys {
    /// A fresh RSA 2048 key (kid "rsa-1") and a fresh P-256 key (kid "ec-1").
    pub fn generate() -> TestKeys {
        TestKeys {
            rsa: RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation"),
            ec: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .expect("P-256 key generation"),
        }
    }

    /// A compact JWS: header {"alg": alg, "typ": "JWT", "kid": <the key's kid>}, the claims as
    /// given. `alg` is "RS256" or "ES256"; anything else panics.
    pub fn sign(&self, alg: &str, claims: &Value) -> String {
        let kid = match alg {
            "RS256" => "rsa-1",
            "ES256" => "ec-1",
            _ => panic!("TestKeys::sign: unsupported alg {alg:?}"),
        };
        let signing_input = format!(
            "{}.{}",
            b64_json(&json!({"alg": alg, "typ": "JWT", "kid": kid})),
            b64_json(claims)
        );
        let signature = if alg == "RS256" {
            let mut sig = vec![0; self.rsa.public_modulus_len()];
            self.rsa
                .sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    signing_input.as_bytes(),
                    &mut sig,
                )
                .expect("RS256 signing");
            sig
        } else {
            // The FIXED algorithm gives r||s (64 bytes), which JWS requires, not ASN.1 DER.
            let sig = self
                .ec
                .sign(&SystemRandom::new(), signing_input.as_bytes())
                .expect("ES256 signing");
            sig.as_ref().to_vec()
        };
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// An unsigned token: header {"alg":"none","typ":"JWT"}, empty signature part ("xxx.yyy.").
    pub fn unsigned(claims: &Value) -> String {
        format!(
            "{}.{}.",
            b64_json(&json!({"alg": "none", "typ": "JWT"})),
            b64_json(claims)
        )
    }

    /// The RSA key as PEM (PKCS#8 `PRIVATE KEY`), as a GitHub App's private key is given.
    pub fn rsa_private_pem(&self) -> String {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        let der: Pkcs8V1Der<'static> = self.rsa.as_der().expect("PKCS#8 encoding");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    /// The public JWKS holding both keys, as an identity provider publishes it.
    pub fn jwks(&self) -> Value {
        // aws-lc gives n and e big-endian without leading zeros, as JWK (RFC 7518 §6.3.1) wants.
        let rsa = PublicKeyComponents::<Vec<u8>>::from(self.rsa.public_key());
        // An uncompressed P-256 point: 0x04, then x and y, 32 bytes each.
        let point = self.ec.public_key().as_ref();
        let (x, y) = point[1..].split_at(32);
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
             "n": URL_SAFE_NO_PAD.encode(&rsa.n), "e": URL_SAFE_NO_PAD.encode(&rsa.e)},
            {"kty": "EC", "kid": "ec-1", "use": "sig", "alg": "ES256", "crv": "P-256",
             "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)},
        ]})
    }
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON serialization"))
}
