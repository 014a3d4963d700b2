//! Proves tests/idp_support/keys.rs: its tokens verify with jsonwebtoken against its JWKS, as
//! scopetrail would verify an identity provider's, and tampering is caught.

#[path = "idp_support/keys.rs"]
mod keys;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use keys::TestKeys;
use serde_json::{Value, json};

fn claims() -> Value {
    json!({"iss": "https://idp.example", "sub": "svc-reporting", "scope": "audit:read", "exp": 1})
}

/// Verifies `token` the way a resource server does: the key chosen by the header's kid.
fn verify(keys: &TestKeys, alg: Algorithm, token: &str) -> jsonwebtoken::errors::Result<Value> {
    let jwks: JwkSet = serde_json::from_value(keys.jwks()).unwrap();
    let kid = decode_header(token)?.kid.expect("token header has a kid");
    let jwk = jwks.find(&kid).expect("kid is in the JWKS");
    let mut validation = Validation::new(alg);
    // The fixed claims are not what is under test here, only the signature.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    Ok(decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims)
}

/// The token with its payload swapped for other claims, signature kept.
fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged = claims();
    forged["scope"] = json!("admin");
    let payload = TestKeys::unsigned(&forged);
    let payload = payload.split('.').nth(1).unwrap();
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[test]
fn rs256_verifies_and_tampering_fails() {
    let keys = TestKeys::generate();
    let token = keys.sign("RS256", &claims());
    assert_eq!(verify(&keys, Algorithm::RS256, &token).unwrap(), claims());
    assert!(verify(&keys, Algorithm::RS256, &tampered(&token)).is_err());
}

#[test]
fn es256_verifies_and_tampering_fails() {
    let keys = TestKeys::generate();
    let token = keys.sign("ES256", &claims());
    let signature = token.rsplit('.').next().unwrap();
    // 64 bytes of r||s are 86 base64url characters unpadded; DER would be longer and vary.
    assert_eq!(signature.len(), 86);
    assert_eq!(verify(&keys, Algorithm::ES256, &token).unwrap(), claims());
    assert!(verify(&keys, Algorithm::ES256, &tampered(&token)).is_err());
}

#[test]
fn a_key_from_another_generation_does_not_verify() {
    let token = TestKeys::generate().sign("RS256", &claims());
    assert!(verify(&TestKeys::generate(), Algorithm::RS256, &token).is_err());
}

#[test]
fn unsigned_has_an_empty_signature_part() {
    let token = TestKeys::unsigned(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert!(!parts[0].is_empty() && !parts[1].is_empty());
    assert_eq!(parts[2], "");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "none", "typ": "JWT"}));
    // jsonwebtoken has no "none" algorithm: such a token is refused at the header already.
    assert!(decode_header(&token).is_err());
}

#[test]
#[should_panic(expected = "unsupported alg")]
fn sign_rejects_other_algorithms() {
    TestKeys::generate().sign("HS256", &claims());
}
