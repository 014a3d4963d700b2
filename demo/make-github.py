#!/usr/bin/env python3
"""Writes the demo's saved GitHub responses (demo/github/), as `gh api --paginate` saves them:
the file of a request path holds its pages one after another. Shapes follow the fixtures in
tests/fixtures/github/ (hook-delivery-items.json, audit-log.json).

The story (week of 2 March 2026, org `acme`):
- the deploy webhook delivers `push` and `workflow_run` events every 20 minutes;
- on 2026-03-07 at 09:55 an admin changes the hook's config; from 10:00 to 11:40 the receiver
  times out or answers 502, and GitHub's redeliveries of those events fail too;
- the audit log also has a team member removed, an OAuth app's access denied by an admin,
  and events that explain no failure (a repository created), which are not exported.

Deterministic: run it again and the files are the same. Usage: python3 demo/make-github.py
"""
import json
import os
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "github")
HOOK = 40125913
START = datetime(2026, 3, 5, 0, 0, tzinfo=timezone.utc)
END = datetime(2026, 3, 9, 0, 50, tzinfo=timezone.utc)
BROKEN = (datetime(2026, 3, 7, 10, 0, tzinfo=timezone.utc), datetime(2026, 3, 7, 11, 40, tzinfo=timezone.utc))


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def write(path, pages):
    full = os.path.join(OUT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        for page in pages:
            f.write(json.dumps(page, indent=2))
            f.write("\n")


def deliveries():
    items = []
    next_id = 9_100_000_000
    t = START
    n = 0
    while t < END:
        n += 1
        event = "push" if n % 3 else "workflow_run"
        guid = f"{n:08x}-1a2b-11f1-8e4c-0242ac120002"
        broken = BROKEN[0] <= t < BROKEN[1]
        status, code, duration = ("OK", 200, 0.31)
        if broken:
            status, code, duration = (
                ("timed out", 0, 10.0) if n % 2 else ("Invalid HTTP Response: 502", 502, 0.42)
            )
        items.append(dict(id=next_id, guid=guid, delivered_at=stamp(t), redelivery=False,
                          duration=duration, status=status, status_code=code, event=event,
                          action="completed" if event == "workflow_run" else None,
                          installation_id=None, repository_id=None, throttled_at=None))
        next_id += 1
        if broken:
            # GitHub does not retry by itself; the team's redelivery job does, 15 minutes on.
            r = t + timedelta(minutes=15)
            items.append(dict(id=next_id, guid=guid, delivered_at=stamp(r), redelivery=True,
                              duration=10.0, status="timed out", status_code=0, event=event,
                              action="completed" if event == "workflow_run" else None,
                              installation_id=None, repository_id=None, throttled_at=None))
            next_id += 1
        t += timedelta(minutes=20)
    items.sort(key=lambda d: d["id"], reverse=True)
    return [items[i:i + 100] for i in range(0, len(items), 100)]


def ms(t):
    return int(t.timestamp() * 1000)


def audit():
    def event(t, doc, action, **rest):
        return {"@timestamp": ms(t), "action": action, "actor": rest.pop("actor", "mona-admin"),
                "created_at": ms(t), "_document_id": doc, "org": "acme", **rest}
    events = [
        event(datetime(2026, 3, 6, 8, 12, 4, tzinfo=timezone.utc), "aW5mcmEtcmVwby1jcmVhdGU",
              "repo.create", repo="acme/infra-tools", visibility="private"),
        event(datetime(2026, 3, 6, 16, 40, 51, tzinfo=timezone.utc), "dGVhbS1yZW1vdmUtbWVtYmVy",
              "team.remove_member", team="acme/release", user="octo-deployer"),
        event(datetime(2026, 3, 7, 9, 55, 30, tzinfo=timezone.utc), "aG9vay1jb25maWctY2hhbmdlZA",
              "hook.config_changed", hook_id=HOOK,
              config={"content_type": "json", "insecure_ssl": "0", "url": "https://deploy.acme.example/hooks/github-v2"}),
        event(datetime(2026, 3, 8, 13, 2, 17, tzinfo=timezone.utc), "b2F1dGgtYXBwLWRlbmllZA",
              "org.oauth_app_access_denied", oauth_application_name="Release Notes Bot"),
    ]
    return [events]


def main():
    write("orgs/acme/hooks.json", [[{
        "type": "Organization", "id": HOOK, "name": "web", "active": True,
        "events": ["push", "workflow_run"],
        "config": {"content_type": "json", "insecure_ssl": "0", "url": "https://deploy.acme.example/hooks/github"},
        "updated_at": "2026-03-07T09:55:30Z", "created_at": "2025-11-02T14:20:11Z",
        "url": f"https://api.github.com/orgs/acme/hooks/{HOOK}",
        "ping_url": f"https://api.github.com/orgs/acme/hooks/{HOOK}/pings",
        "deliveries_url": f"https://api.github.com/orgs/acme/hooks/{HOOK}/deliveries",
    }]])
    write(f"orgs/acme/hooks/{HOOK}/deliveries.json", deliveries())
    write("orgs/acme/audit-log.json", audit())


if __name__ == "__main__":
    main()
