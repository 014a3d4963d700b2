#!/usr/bin/env python3
"""Writes the demo's saved tokens (demo/tokens/): the access tokens the `erp-sync` integration
keeps on disk in production and in test, as Oracle IDCS issues them (JWTs with `scope`,
`client_id`, `aud`, `exp`). The demo's `jwt` probes read them the way scopetrail reads a token
file an integration refreshes.

The story: test was granted `gl:journal:write`, prod never was (the proxy log's 403s on journal
posts say the same); and prod's 30-day token expires on 9 March 2026 at 07:00, six hours after
the demo's pinned clock.

The tokens are not signed by any real key (the demo is offline, with no JWKS to check them
against): their signature part is a placeholder, and the probe says "not checked". Against a
real issuer, set `jwks_url` in the probe and the signature is verified.

Deterministic: run it again and the files are the same. Usage: python3 demo/make-tokens.py
"""
import base64
import json
import os
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tokens")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def epoch(*args):
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())


def token(claims):
    header = {"alg": "RS256", "typ": "JWT", "kid": "SIGNING_KEY", "x5t": "demo"}
    parts = [b64(json.dumps(p, separators=(",", ":")).encode()) for p in (header, claims)]
    return ".".join(parts + [b64(b"placeholder-signature-not-checked-in-the-demo")])


TOKENS = {
    "erp-sync-prod.jwt": {
        "iss": "https://idcs-acme.identity.oraclecloud.com/",
        "aud": ["https://fa-acme.fa.ocs.oraclecloud.com:443"],
        "sub": "erp-sync", "sub_type": "client", "client_id": "erp-sync", "tok_type": "AT",
        "scope": "gl:journal:read gl:ledger:read",
        "iat": epoch(2026, 2, 7, 7), "exp": epoch(2026, 3, 9, 7),
    },
    "erp-sync-test.jwt": {
        "iss": "https://idcs-acme-test.identity.oraclecloud.com/",
        "aud": ["https://fa-acme-test.fa.ocs.oraclecloud.com:443"],
        "sub": "erp-sync-test", "sub_type": "client", "client_id": "erp-sync-test", "tok_type": "AT",
        "scope": "gl:journal:read gl:journal:write gl:ledger:read",
        "iat": epoch(2026, 3, 8, 20), "exp": epoch(2026, 3, 22, 20),
    },
}

os.makedirs(OUT, exist_ok=True)
for name, claims in TOKENS.items():
    with open(os.path.join(OUT, name), "w") as f:
        f.write(token(claims) + "\n")
print(f"wrote {len(TOKENS)} tokens to {OUT}")
