#!/usr/bin/env python3
"""make_seeds.py -- seed corpora from the fake HubSpot's real outputs.

Starts test/fake_hubspot.py, makes the requests hubsync makes (batch upsert,
update, read, archive, search, list, properties, OAuth token) plus failing
ones (400, 404, 409, 429, 401, bad refresh token) and writes every answer
body to seeds/responses/; makes a rep change records so the fake generates
webhook events and writes signed deliveries (in the webhook harness's
"uri\\nsignature\\ntimestamp\\nbody" layout) to seeds/webhook/."""

import hashlib
import json
import os
import subprocess
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from fakehub.signature import sign  # noqa: E402

SECRET = "hubsync-fuzz-secret"   # the webhook harness's secret
URI = "https://hooks.example.com/hubspot/webhooks"


def main():
    fake = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "fake_hubspot.py"),
                             "--port", "0"], stdout=subprocess.PIPE)
    port = int(fake.stdout.readline())
    base = "http://127.0.0.1:%d" % port
    out = {"responses": [], "webhook": []}

    def call(method, path, body=None, token="test-token", form=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if form is not None:
            data, headers = form.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
        if token:
            headers["Authorization"] = "Bearer " + token
        req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
        if raw and not path.startswith("/_fake/"):
            out["responses"].append(raw)
        return json.loads(raw) if raw else None

    try:
        call("POST", "/crm/v3/properties/contacts", {"name": "hubsync_id", "label": "hubsync id",
             "type": "string", "fieldType": "text", "groupName": "contactinformation",
             "hasUniqueValue": True})
        up = call("POST", "/crm/v3/objects/contacts/batch/upsert", {"inputs": [
            {"idProperty": "hubsync_id", "id": "00000000-0000-0000-0000-00000000000%d" % i,
             "properties": {"email": "seed%d@example.com" % i, "firstname": "Séed ✓"}}
            for i in range(3)]})
        ids = [r["id"] for r in up["results"]]
        call("POST", "/crm/v3/objects/contacts/batch/update", {"inputs": [
            {"id": ids[0], "properties": {"lastname": "Quote\"d"}}]})
        call("POST", "/crm/v3/objects/contacts/batch/read", {"properties": ["email"],
             "inputs": [{"id": i} for i in ids + ["99999999999"]]})
        call("POST", "/crm/v3/objects/contacts/search", {"filterGroups": [], "limit": 2})
        call("GET", "/crm/v3/objects/contacts?limit=2")
        call("GET", "/crm/v3/properties/contacts/groups")
        call("POST", "/crm/v3/objects/contacts/batch/upsert", {"inputs": [
            {"idProperty": "hubsync_id", "id": "x", "properties": {"nope": "1"}}]})
        call("POST", "/crm/v3/objects/contacts", {"properties": {"email": "seed0@example.com"}})
        call("GET", "/crm/v3/objects/contacts/1")
        call("GET", "/crm/v3/objects/contacts", token="bad")
        call("POST", "/crm/v3/objects/contacts/batch/archive", {"inputs": [{"id": ids[2]}]})
        call("POST", "/oauth/v1/token", token=None, form="grant_type=refresh_token&client_id="
             "hubsync-client-id&client_secret=hubsync-oauth-secret&refresh_token=hubsync-refresh-token")
        call("POST", "/oauth/v1/token", token=None, form="grant_type=refresh_token&client_id="
             "hubsync-client-id&client_secret=hubsync-oauth-secret&refresh_token=bad")
        call("POST", "/_fake/faults", {"queue": [{"status": 429, "policy": "TEN_SECONDLY_ROLLING"},
                                                 {"status": 429, "policy": "DAILY"},
                                                 {"status": 423}, {"status": 500}]}, token=None)
        for _ in range(4):
            call("GET", "/crm/v3/objects/contacts?limit=1")
        # webhooks: rep edits and the API writes above
        call("POST", "/_fake/ui/contacts/%s" % ids[0], {"properties": {"firstname": "Rep"}}, token=None)
        call("POST", "/_fake/ui/deals", {"properties": {"dealname": "Seed deal"}}, token=None)
        events = call("GET", "/_fake/webhooks/events", token=None)
        evs = events.get("events", events) if isinstance(events, dict) else events
        for i in range(0, len(evs), 4):
            body = json.dumps(evs[i:i + 4])
            ts = "1700000000000"
            out["webhook"].append(("%s\n%s\n%s\n%s" % (URI, sign("v3", SECRET, "POST", URI, body, ts),
                                                       ts, body)).encode())
    finally:
        fake.terminate()
        fake.wait()

    for kind, items in out.items():
        d = os.path.join(HERE, "seeds", kind)
        os.makedirs(d, exist_ok=True)
        for raw in items:
            with open(os.path.join(d, hashlib.sha1(raw).hexdigest()[:16]), "wb") as f:
                f.write(raw)
        print("%s: %d seeds" % (kind, len(items)))


if __name__ == "__main__":
    main()
