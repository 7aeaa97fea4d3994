#!/usr/bin/env python3
"""make_probe_seeds.py -- probe/seeds/ for probe_fuzz: the fake HubSpot's
real answers (seeds/responses/, made by make_seeds.py) and webhook bodies
(seeds/webhook/) under each kind and status that reads them, plus
hand-written answers for the paths those do not reach (207s naming
records, pages with cursors, association reads, enrichment answers).
A file is "kind status\\n" followed by the body."""

import glob
import hashlib
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "probe", "seeds")
U = ["00000000-0000-0000-0000-00000000000%d" % i for i in (1, 2, 3)]

seeds = []


def add(kind, status, body):
    if not isinstance(body, bytes):
        body = json.dumps(body, ensure_ascii=False).encode()
    seeds.append((kind, status, body))


for f in sorted(glob.glob(os.path.join(HERE, "seeds", "responses", "*"))):
    body = open(f, "rb").read()
    for kind, statuses in (("push_upsert", (200, 207, 409, 429)), ("push_update", (200, 404)),
                           ("push_single", (201, 409)), ("push_archive", (207,)),
                           ("read_page", (200, 400)), ("batch_read", (200, 207)),
                           ("assoc", (207,)), ("oauth", (200, 400))):
        for s in statuses:
            add(kind, s, body)
for f in sorted(glob.glob(os.path.join(HERE, "seeds", "webhook", "*"))):
    body = open(f, "rb").read().split(b"\n", 3)[3]
    add("webhook", 3, body)
    add("webhook", 1, body)

ev = {"eventId": 1, "subscriptionId": 2, "portalId": 3, "appId": 4, "occurredAt": 1700000000000,
      "subscriptionType": "contact.propertyChange", "attemptNumber": 0, "objectId": 101,
      "propertyName": "firstname", "propertyValue": "Ann", "changeSource": "CRM_UI", "sourceId": "userId:1"}
assoc_ev = {"eventId": 5, "subscriptionId": 6, "occurredAt": 1700000000001,
            "subscriptionType": "contact.associationChange", "fromObjectId": 101, "toObjectId": 9001,
            "associationType": "CONTACT_TO_COMPANY", "associationRemoved": False, "objectTypeId": "0-1"}
add("webhook", 3, [ev, assoc_ev, dict(ev, eventId=7, propertyValue=None)])
add("webhook", 2, [dict(ev, subscriptionType="contact.deletion", objectId=102)])

r207 = {"status": "COMPLETE",
        "results": [{"id": "555", "properties": {"hubsync_id": U[1]}, "updatedAt": "2024-01-01T00:00:00Z"}],
        "errors": [{"category": "VALIDATION_ERROR", "message": "bad email", "context": {"ids": [U[2]]}},
                   {"category": "CONFLICT", "message": "Contact already exists. Existing ID: 777",
                    "context": {"ids": [U[0]]}}]}
for k in ("push_upsert", "push_update", "push_single"):
    add(k, 207, r207)
add("push_archive", 207, {"errors": [{"category": "OBJECT_NOT_FOUND", "context": {"ids": ["101"]}}]})
add("push_update", 207, {"results": [{"id": "102"}],
                         "errors": [{"category": "OBJECT_NOT_FOUND", "context": {"id": ["103"]}}]})
add("push_upsert", 429, {"status": "error", "policyName": "SECONDLY", "message": "secondly limit"})

page = {"total": 2, "results": [
    {"id": "201", "properties": {"lastmodifieddate": "2024-01-01T00:00:00Z", "email": "x@example.com",
                                 "hs_object_id": "201"}, "updatedAt": "2024-01-01T00:00:00Z"},
    {"id": "202", "properties": {"lastmodifieddate": "1704067200001", "email": "one@example.com"},
     "updatedAt": "2024-01-01T00:00:00.001Z"}], "paging": {"next": {"after": "203"}}}
add("read_page", 200, page)
add("read_page", 200, {"results": [{"id": "101", "properties": {"firstname": "Ann"}, "archived": False}]})
add("read_page", 500, {"status": "error", "message": "é" * 200})

add("batch_read", 207, {"status": "COMPLETE", "results": [{"id": "101", "properties": {"email": "a@b.c"}}],
                        "errors": [{"category": "INTERNAL_ERROR", "context": {"ids": ["102"]}},
                                   {"category": "OBJECT_NOT_FOUND", "context": {"ids": ["999"]}}]})
assoc = {"status": "COMPLETE", "results": [
    {"from": {"id": "101"}, "to": [{"toObjectId": 9001, "associationTypes": [
        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": None}]}]},
    {"from": {"id": "103"}, "to": []}],
    "errors": [{"category": "INTERNAL_ERROR", "context": {"fromObjectId": ["102"]}}]}
add("assoc", 207, assoc)
add("assoc", 200, {"results": [{"from": {"id": "102"}, "to": [{"toObjectId": 9002, "associationTypes": [
    {"category": "USER_DEFINED", "typeId": 7}]}]}]})

add("oauth", 200, {"access_token": "CJT2abc.DEF-123_~+/=", "refresh_token": "new-refresh", "expires_in": "1800"})
add("oauth", 401, {"status": "BAD_CLIENT_ID", "error": "invalid_client"})

person = {"person": {"title": "CTO", "linkedin": "https://l.example/x",
                     "employer": {"name": "Acme", "domain": "acme.example"}}, "confidence": 0.9}
add("enrich", 200, person)
add("enrich", 200, dict(person, confidence="high"))
add("enrich", 404, b"")
add("enrich", 429, b"slow down")
add("enrich_batch", 200, {"results": [dict(person, id=U[0]), dict(person, id=U[1], confidence=0.99),
                                      {"id": U[2], "person": {"title": ["x"]}}]})

os.makedirs(OUT, exist_ok=True)
for old in glob.glob(os.path.join(OUT, "*")):
    os.remove(old)
for kind, status, body in seeds:
    raw = ("%s %d\n" % (kind, status)).encode() + body
    with open(os.path.join(OUT, hashlib.sha1(raw).hexdigest()[:16]), "wb") as f:
        f.write(raw)
print("probe seeds: %d" % len(seeds))
