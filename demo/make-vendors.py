#!/usr/bin/env python3
"""Writes the demo's saved vendor responses, as the APIs answer them (the vendors' fixtures in
tests/fixtures are the templates): Okta's System Log, Stripe's events and webhook endpoints,
and GitHub's status page (Statuspage v2).

The story in the data (the week of 2 March 2026):
- Okta: an admin rotates the secret of the OAuth client hr-sync on 2026-03-04 at 11:20 UTC;
  from 11:22 its token requests fail with invalid_client until 12:05. End-user login
  failures and a rate-limit violation burst on the token endpoint on 2026-03-06 at 14:00 are
  around it too.
- Stripe: the billing receiver stops acknowledging invoice events on 2026-03-03; Stripe
  disables the endpoint. Events of the last 3 days before the demo's clock are still pending.
- GitHub's status page: an incident on Actions on 2026-03-07 10:30-11:05 (the webhook
  failures of that morning are not GitHub's), and one on webhooks on 2026-03-04.

Deterministic: run it again and the files are the same. Usage: python3 demo/make-vendors.py
"""
import copy
import json
import os
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures")
UTC = timezone.utc


def fixture(path):
    with open(os.path.join(FIXTURES, path)) as f:
        return json.load(f)


def write(path, value):
    path = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.write("\n")


def iso(t, ms=True):
    return t.isoformat(timespec="milliseconds" if ms else "seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------- Okta
TEMPLATE = fixture("okta/system-log-list.json")[0]
HR_SYNC = "0oa8hrsync0000000x7"


def okta_event(n, t, kind, result, reason=None, actor=None, targets=(), uri=None, debug=None):
    e = copy.deepcopy(TEMPLATE)
    e["uuid"] = "%08x-17a2-11f1-9a3c-4f6e7d1c2b%02x" % (n, n % 256)
    e["published"] = iso(t)
    e["eventType"] = kind
    e["outcome"] = {"result": result, "reason": reason}
    e["displayMessage"] = {
        "app.oauth2.as.token.grant.access_token": "OAuth2 access token request",
        "app.oauth2.client.lifecycle.update": "Update OAuth client",
        "user.session.start": "User login to Okta",
        "system.org.rate_limit.violation": "Rate limit violation",
    }.get(kind, "Okta event")
    e["legacyEventType"] = None if kind != "user.session.start" else e["legacyEventType"]
    rid = "%032x" % (n * 2654435761 % (1 << 128))
    e["debugContext"] = {"debugData": {"requestId": rid, "requestUri": uri or "/idp/idx/identify", "url": uri or "/idp/idx/identify"}}
    e["debugContext"]["debugData"].update(debug or {})
    e["transaction"]["id"] = rid
    if actor:
        e["actor"] = dict(zip(("id", "type", "alternateId", "displayName"), actor), detailEntry=None)
    e["target"] = [dict(zip(("id", "type", "alternateId", "displayName"), t), detailEntry=None) for t in targets]
    return e


def okta_log():
    events = []
    n = 0
    t = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    hr = (HR_SYNC, "PublicClientApp", HR_SYNC, "HR sync")
    admin = ("00u1admin000000000x7", "User", "ada.admin@acme.example", "Ada Admin")
    user = ("00uttidj01jqL21aM1d6", "User", "john.doe@example.com", "John Doe")
    token = "/oauth2/default/v1/token"
    while t < datetime(2026, 3, 9, 0, 30, tzinfo=UTC):
        n += 1
        broken = datetime(2026, 3, 4, 11, 22, tzinfo=UTC) <= t < datetime(2026, 3, 4, 12, 5, tzinfo=UTC)
        if broken and t.minute % 3 == 0:
            events.append(okta_event(n, t, "app.oauth2.as.token.grant.access_token", "FAILURE", "invalid_client", hr, uri=token))
        elif n % 17 == 0:
            events.append(okta_event(n, t, "user.session.start", "FAILURE", "INVALID_CREDENTIALS", user))
        else:
            events.append(okta_event(n, t, "app.oauth2.as.token.grant.access_token", "SUCCESS", None, hr, uri=token))
        t += timedelta(minutes=1) if broken else timedelta(minutes=47)
    n += 1
    events.append(okta_event(n, datetime(2026, 3, 4, 11, 20, 9, tzinfo=UTC), "app.oauth2.client.lifecycle.update", "SUCCESS",
                             None, admin, [hr], uri="/api/v1/apps/" + HR_SYNC + "/credentials/secrets"))
    for k in range(14):
        n += 1
        events.append(okta_event(n, datetime(2026, 3, 6, 14, 0, 5, tzinfo=UTC) + timedelta(seconds=15 * k),
                                 "system.org.rate_limit.violation", "DENY", None, None,
                                 [(token, "URL Pattern", "/oauth2/{authServerId}/v1/token", "/oauth2/{authServerId}/v1/token")],
                                 uri=token, debug={"threshold": 600}))
    events.sort(key=lambda e: (e["published"], e["uuid"]))
    write("okta/api/v1/logs.json", events)
    return events


# ------------------------------------------------------------------------------- Stripe
EVENT = fixture("stripe/event.json")
ENDPOINT = fixture("stripe/webhook_endpoint.json")


def stripe():
    events = []
    for i in range(40):
        created = datetime(2026, 3, 3, 8, 0, tzinfo=UTC) + timedelta(hours=3 * i + 1)
        e = copy.deepcopy(EVENT)
        e["id"] = "evt_1Qd%04dB7WZ01zgkWwyRHS12y" % i
        e["created"] = int(created.timestamp())
        e["type"] = "invoice.paid" if i % 2 else "invoice.payment_failed"
        e["pending_webhooks"] = 1
        e["request"] = {"id": "req_%014d" % (i * 7919) if i % 3 else None,
                        "idempotency_key": "billing-run-%d" % i if i % 3 else None}
        e["livemode"] = True
        events.append(e)
    events.sort(key=lambda e: (-e["created"], e["id"]))
    write("stripe/v1/events.json", {"object": "list", "url": "/v1/events", "has_more": False, "data": events})
    billing = copy.deepcopy(ENDPOINT)
    billing.update(id="we_1QdBilling0000000000x7", url="https://billing.acme.example/stripe/webhook",
                   status="disabled", enabled_events=["invoice.paid", "invoice.payment_failed"],
                   description="Billing receiver", livemode=True)
    erp = copy.deepcopy(ENDPOINT)
    erp.update(id="we_1QdErp000000000000000x7", url="https://erp.acme.example/hooks/stripe",
               enabled_events=["charge.failed", "charge.succeeded"], description="ERP", livemode=True)
    write("stripe/v1/webhook_endpoints.json",
          {"object": "list", "url": "/v1/webhook_endpoints", "has_more": False, "data": [billing, erp]})
    return events


# --------------------------------------------------------------------------- Statuspage
def incident(iid, name, impact, started, resolved, components):
    comps = [{"id": "c%02d" % i, "name": c, "status": "operational", "created_at": "2017-01-31T20:01:46.638Z",
              "updated_at": iso(resolved), "position": i + 1, "description": None, "showcase": False,
              "start_date": None, "group_id": None, "page_id": "kctbh9vrtdwd", "group": False,
              "only_show_if_degraded": False} for i, c in enumerate(components)]
    updates = []
    for k, (status, at, body) in enumerate([
        ("investigating", started, "We are investigating reports of degraded performance for %s." % ", ".join(components)),
        ("resolved", resolved, "This incident has been resolved."),
    ]):
        updates.insert(0, {"id": "%s-u%d" % (iid, k), "status": status, "body": body, "incident_id": iid,
                           "created_at": iso(at), "updated_at": iso(at), "display_at": iso(at),
                           "affected_components": None, "deliver_notifications": True,
                           "custom_tweet": None, "tweet_id": None})
    return {"id": iid, "name": name, "status": "resolved", "created_at": iso(started), "updated_at": iso(resolved),
            "monitoring_at": None, "resolved_at": iso(resolved), "impact": impact,
            "shortlink": "https://stspg.io/%s" % iid[:7], "started_at": iso(started), "page_id": "kctbh9vrtdwd",
            "incident_updates": updates, "components": comps}


def status():
    incidents = [
        incident("q8d4xv1r2m0k", "Incident with Actions", "minor",
                 datetime(2026, 3, 7, 10, 30, 12, tzinfo=UTC), datetime(2026, 3, 7, 11, 5, 40, tzinfo=UTC), ["Actions"]),
        incident("m1zk7c9w4b2p", "Disruption with webhook deliveries", "major",
                 datetime(2026, 3, 4, 16, 2, 0, tzinfo=UTC), datetime(2026, 3, 4, 16, 48, 30, tzinfo=UTC), ["Webhooks"]),
    ]
    page = {"id": "kctbh9vrtdwd", "name": "GitHub", "url": "https://www.githubstatus.com",
            "time_zone": "Etc/UTC", "updated_at": iso(datetime(2026, 3, 8, 23, 0, tzinfo=UTC))}
    write("status/github/api/v2/incidents.json", {"page": page, "incidents": incidents})
    return incidents


if __name__ == "__main__":
    print("okta: %d events" % len(okta_log()))
    print("stripe: %d events" % len(stripe()))
    print("status: %d incidents" % len(status()))
