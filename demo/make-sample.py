#!/usr/bin/env python3
"""Writes the demo's sample logs: a week (2-8 March 2026) of an integration proxy's outbound
HTTP log, JSON lines, rotated daily and compressed like logrotate does.

The story in the data (DESIGN §1):
- erp-sync (prod) posts journals to Oracle Fusion; from 2026-03-05 09:02 UTC every POST is
  refused with 403 insufficient_scope (gl:journal:write) until it is fixed at 15:10. The same
  client in test keeps working.
- inv-sync's POST /api/v1/items is refused with insufficient_scope (writes also need
  inventory.read) while its GETs succeed; the header says invalid_token, the body says
  insufficient_scope.
- release-bot's GitHub token expires on 2026-03-07 at 02:00: 401 invalid_token.
- inventory answers 429 and 503 in a tight loop on 2026-03-06 around 14:00.
- one line was cut short when the log rotated.

Deterministic: run it again and the files are the same. Usage: python3 demo/make-sample.py
"""
import gzip
import json
import os
import random
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "logs")
rng = random.Random(20260302)

FUSION = "https://fa-acme.fa.ocs.oraclecloud.com/fscmRestApi/resources/11.13.18.05"
FUSION_TEST = "https://fa-acme-test.fa.ocs.oraclecloud.com/fscmRestApi/resources/11.13.18.05"
INVENTORY = "https://inventory.acme.example/api/v1"
GITHUB = "https://api.github.com"

START = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc)
END = datetime(2026, 3, 9, 1, 0, tzinfo=timezone.utc)
SCOPE_LOST = datetime(2026, 3, 5, 9, 2, tzinfo=timezone.utc)
SCOPE_BACK = datetime(2026, 3, 5, 15, 10, tzinfo=timezone.utc)
TOKEN_EXPIRED = datetime(2026, 3, 7, 2, 0, tzinfo=timezone.utc)
TOKEN_RENEWED = datetime(2026, 3, 7, 4, 0, tzinfo=timezone.utc)
STORM = datetime(2026, 3, 6, 14, 0, tzinfo=timezone.utc)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def line(t, client, method, url, status, headers=None, body=None, agent="erp-sync/4.2 (Java 21)"):
    request_id = f"req-{rng.getrandbits(48):012x}"
    record = {
        "ts": iso(t),
        "client_id": client,
        "request": {"id": request_id, "method": method, "url": url, "headers": {"user-agent": agent}},
        "response": {"status": status, "duration_ms": rng.randint(40, 900)},
    }
    if headers:
        record["response"]["headers"] = headers
    if body:
        record["response"]["body"] = body
    return t, json.dumps(record, separators=(",", ":"))


def traffic():
    t = START
    while t < END:
        jitter = timedelta(seconds=rng.randint(0, 50), milliseconds=rng.randint(0, 999))
        now = t + jitter
        # erp-sync, prod: ledgers read, journals posted.
        yield line(now, "erp-sync", "GET", f"{FUSION}/ledgers?limit=25", 200)
        if SCOPE_LOST <= t + timedelta(minutes=2) < SCOPE_BACK and t.minute % 10 == 0:
            yield line(
                now + timedelta(minutes=2), "erp-sync", "POST", f"{FUSION}/journalBatches", 403,
                headers={"www-authenticate": 'Bearer error="insufficient_scope", error_description="The access token does not have the required scope", scope="gl:journal:write"'},
                body={"error": "insufficient_scope", "error_description": "Missing scope gl:journal:write"},
            )
        elif t.minute % 10 == 0:
            yield line(now + timedelta(minutes=2), "erp-sync", "POST", f"{FUSION}/journalBatches", 201)
        # erp-sync, test: the same calls work.
        if t.minute % 30 == 0:
            yield line(now, "erp-sync-test", "POST", f"{FUSION_TEST}/journalBatches", 201)
        # inv-sync: reads work, writes need inventory.read too.
        item = rng.randint(1000, 9999)
        yield line(now + timedelta(seconds=20), "inv-sync", "GET", f"{INVENTORY}/items/{item}", 200, agent="inv-sync/1.8 (python-requests)")
        if t.hour in (9, 13, 17) and t.minute == 30:
            yield line(
                now + timedelta(seconds=25), "inv-sync", "POST", f"{INVENTORY}/items", 403,
                headers={"www-authenticate": 'Bearer error="invalid_token"'},
                body={"error": "insufficient_scope", "error_description": "inventory.write requires inventory.read"},
                agent="inv-sync/1.8 (python-requests)",
            )
        # 429 and 503 in a tight loop: a retry every 2 seconds for ten minutes.
        if STORM <= t < STORM + timedelta(minutes=10):
            for k in range(150):
                burst_t = t + timedelta(seconds=k * 2, milliseconds=rng.randint(0, 999))
                if k % 4 == 3:
                    yield line(burst_t, "inv-sync", "GET", f"{INVENTORY}/items/{item}", 503, agent="inv-sync/1.8 (python-requests)")
                else:
                    yield line(
                        burst_t, "inv-sync", "GET", f"{INVENTORY}/items/{item}", 429,
                        headers={"retry-after": "30", "x-ratelimit-limit": "600", "x-ratelimit-remaining": "0"},
                        agent="inv-sync/1.8 (python-requests)",
                    )
        # release-bot on GitHub, every 15 minutes.
        if t.minute % 15 == 0:
            if TOKEN_EXPIRED <= t < TOKEN_RENEWED:
                yield line(
                    now, "Iv1.8a61f9b3a7aba766", "GET", f"{GITHUB}/repos/acme/erp/releases/latest", 401,
                    headers={"www-authenticate": 'Bearer error="invalid_token", error_description="The access token expired"'},
                    body={"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
                    agent="release-bot/2.0",
                )
            else:
                yield line(now, "Iv1.8a61f9b3a7aba766", "GET", f"{GITHUB}/repos/acme/erp/releases/latest", 200, agent="release-bot/2.0")
        t += timedelta(minutes=5)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.remove(os.path.join(OUT, name))
    days = {}
    for t, text in sorted(traffic(), key=lambda x: x[0]):
        days.setdefault(t.date(), []).append(text)
    for day, lines in sorted(days.items()):
        body = "\n".join(lines) + "\n"
        if day.day == 4:
            # Rotation cut a line short.
            body = body.replace("\n", "\n" + lines[100][:57] + "\n", 1)
        if day.day <= 6:
            # Rotated on the next day and compressed: erp-proxy.log-20260303.gz holds 2 March.
            name = f"erp-proxy.log-{(day + timedelta(days=1)).strftime('%Y%m%d')}.gz"
            with open(os.path.join(OUT, name), "wb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                    gz.write(body.encode())
        elif day.day == 7:
            name = "erp-proxy.log.1"  # rotated, not yet compressed
            open(os.path.join(OUT, name), "w").write(body)
        else:
            with open(os.path.join(OUT, "erp-proxy.log"), "a") as f:
                f.write(body)


if __name__ == "__main__":
    main()
