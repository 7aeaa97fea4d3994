#!/usr/bin/env python3
"""Behaviour tests for the fake HubSpot server (test/fake_hubspot.py).

Run: python3 test/fake/test_fake_hubspot.py   (exit status non-zero on failure)
Each test talks HTTP to a real server process started on port 0.
"""

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SERVER = os.path.join(REPO, "test", "fake_hubspot.py")
VECTORS = os.path.join(REPO, "test", "data", "signature-vectors.json")
TOKEN = "test-token"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Fake:
    """A fake server process plus a tiny HTTP client for it."""

    def __init__(self, *args):
        """Start the server; the first stdout line is the port."""
        self.proc = subprocess.Popen([sys.executable, SERVER, "--port", "0"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if not re.match(r"^\d+\n$", line):
            raise RuntimeError("bad first line %r; stderr: %s" % (
                line, self.proc.stderr.read().decode()))
        self.port = int(line)
        self.local = threading.local()

    def conn(self):
        """A keep-alive connection per thread."""
        c = getattr(self.local, "c", None)
        if c is None:
            c = self.local.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return c

    def raw(self, method, path, body=None, headers=None):
        """One request -> (status, headers dict (lower-case keys), raw bytes)."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        for attempt in (0, 1):
            c = self.conn()
            try:
                c.request(method, path, body=body, headers=headers or {})
                r = c.getresponse()
                data = r.read()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, data
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                c.close()
                self.local.c = None
                if attempt:
                    raise

    def call(self, method, path, body=None, token=TOKEN, headers=None):
        """API call with bearer token -> (status, headers, JSON or None)."""
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        status, hdrs, data = self.raw(method, path, body, h)
        return status, hdrs, (json.loads(data) if data else None)

    def ctl(self, method, path, body=None):
        """Control call; asserts 2xx and returns the JSON body."""
        status, _, data = self.call(method, "/_fake/" + path, body, token=None)
        if not 200 <= status < 300:
            raise AssertionError("control %s %s -> %s %s" % (method, path, status, data))
        return data

    def stop(self):
        """SIGTERM and wait; returns the exit code."""
        c = getattr(self.local, "c", None)
        if c is not None:
            c.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()


FAKE = None


def setUpModule():
    """One shared server for most tests."""
    global FAKE
    FAKE = Fake()


def tearDownModule():
    """Stop the shared server."""
    FAKE.stop()


class Base(unittest.TestCase):
    """Resets the shared fake before each test."""

    def setUp(self):
        """Fresh state with search lag off (tests that need lag set it)."""
        self.f = FAKE
        self.f.ctl("POST", "reset")
        self.f.ctl("POST", "config", {"searchIndexLagMs": 0})

    def create(self, obj, props, status=201):
        """Create one record through the API; returns the body."""
        s, _, b = self.f.call("POST", "/crm/v3/objects/" + obj, {"properties": props})
        self.assertEqual(s, status, b)
        return b

    def assert_error(self, body, category, message_re=None):
        """HubSpot's standard error envelope."""
        self.assertEqual(body["status"], "error")
        self.assertEqual(body["category"], category)
        self.assertRegex(body["correlationId"], r"^[0-9a-f-]{36}$")
        if message_re:
            self.assertRegex(body["message"], message_re)


# ----- 1. start-up and HTTP -------------------------------------------------
class StartTest(unittest.TestCase):
    """Command line, stdout protocol, SIGTERM, keep-alive, headers."""

    def test_cli_options_and_sigterm(self):
        """--token/--app-id/--portal-id/--client-secret become the config."""
        f = Fake("--token", "tok-x", "--app-id", "777", "--portal-id", "888",
                 "--client-secret", "sec-y", "--config", '{"burstLimit": 42}')
        try:
            cfg = f.ctl("GET", "config")
            self.assertEqual((cfg["token"], cfg["appId"], cfg["portalId"],
                              cfg["clientSecret"], cfg["burstLimit"]),
                             ("tok-x", 777, 888, "sec-y", 42))
            self.assertEqual(f.call("GET", "/crm/v3/objects/contacts", token="tok-x")[0], 200)
            self.assertEqual(f.call("GET", "/crm/v3/objects/contacts")[0], 401)
            f.ctl("POST", "config", {"burstLimit": 7})
            f.ctl("POST", "reset")   # back to the start-up values, not the built-ins
            self.assertEqual(f.ctl("GET", "config")["burstLimit"], 42)
            self.assertEqual(f.ctl("GET", "config")["token"], "tok-x")
        finally:
            self.assertEqual(f.stop(), 0)

    def test_defaults(self):
        """Default identity values of the brief."""
        FAKE.ctl("POST", "reset")
        cfg = FAKE.ctl("GET", "config")
        for key, want in (("token", "test-token"), ("appId", 54321), ("portalId", 62515),
                          ("clientSecret", "hubsync-test-secret"), ("burstLimit", 190),
                          ("searchPerSecond", 5), ("searchIndexLagMs", 3000),
                          ("webhookBatchMax", 100), ("webhookConcurrency", 10),
                          ("webhookTimeoutMs", 5000), ("webhookRetries", 10)):
            self.assertEqual(cfg[key], want, key)

    def test_loopback_only(self):
        """The listening socket is bound to 127.0.0.1 (from /proc/net/tcp)."""
        listening = []
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, port = local.split(":")
                if state == "0A" and int(port, 16) == FAKE.port:
                    listening.append(addr)
        self.assertEqual(listening, ["0100007F"])

    def test_sigterm_during_hang(self):
        """SIGTERM ends the server promptly even with a request hanging."""
        f = Fake()
        f.ctl("POST", "faults", {"queue": [{"hang": True}]})
        c = http.client.HTTPConnection("127.0.0.1", f.port, timeout=10)
        c.request("GET", "/crm/v3/objects/deals", headers={"Authorization": "Bearer " + TOKEN})
        time.sleep(0.2)
        t = time.monotonic()
        self.assertEqual(f.stop(), 0)
        self.assertLess(time.monotonic() - t, 3)
        c.close()

    def test_keep_alive_and_nodelay(self):
        """Many requests on one connection, each fast (no delayed-ACK stall)."""
        c = http.client.HTTPConnection("127.0.0.1", FAKE.port, timeout=5)
        c.request("GET", "/_fake/health")
        c.getresponse().read()
        sock = c.sock
        t = time.monotonic()
        for _ in range(30):
            c.request("POST", "/crm/v3/objects/contacts/search", body="{}",
                      headers={"Authorization": "Bearer " + TOKEN})
            r = c.getresponse()
            r.read()
            self.assertIsNotNone(r.getheader("Content-Length"))
            FAKE.ctl("POST", "reset")  # keep the search rate limit out of the way
        self.assertIs(c.sock, sock, "connection was not kept alive")
        self.assertLess((time.monotonic() - t) / 30, 0.03)
        c.close()

    def test_content_length_everywhere(self):
        """204, 404 and 401 answers carry Content-Length too."""
        FAKE.ctl("POST", "reset")
        rid = FAKE.call("POST", "/crm/v3/objects/deals", {"properties": {"dealname": "x"}})[2]["id"]
        for method, path, token, want in (
                ("DELETE", "/crm/v3/objects/deals/" + rid, TOKEN, 204),
                ("GET", "/crm/v3/objects/deals/" + rid, TOKEN, 404),
                ("GET", "/crm/v3/objects/deals", None, 401)):
            h = {"Authorization": "Bearer " + token} if token else {}
            status, hdrs, _ = FAKE.raw(method, path, None, h)
            self.assertEqual(status, want)
            self.assertIn("content-length", hdrs)


# ----- 2. control API ---------------------------------------------------------
class ControlTest(Base):
    """reset, config, seed, records, requests, counters."""

    def test_reset_clears_and_keeps_config(self):
        """reset drops records; keepConfig keeps settings."""
        self.create("contacts", {"email": "r@example.com"})
        self.f.ctl("POST", "config", {"latencyMs": 1, "tier": "free"})
        self.f.ctl("POST", "reset", {"keepConfig": True})
        cfg = self.f.ctl("GET", "config")
        self.assertEqual((cfg["latencyMs"], cfg["burstLimit"]), (1, 100))
        self.assertEqual(self.f.ctl("GET", "records/contacts")["total"], 0)
        self.f.ctl("POST", "reset")
        cfg = self.f.ctl("GET", "config")
        self.assertEqual((cfg["latencyMs"], cfg["burstLimit"], cfg["dailyLimit"]),
                         (0, 190, 1000000))
        self.assertEqual(self.f.ctl("GET", "requests")["requests"], [])

    def test_config_validation_and_tiers(self):
        """Unknown keys and wrong types are refused; tiers set limits."""
        s, _, b = self.f.call("POST", "/_fake/config", {"burstLimitt": 1}, token=None)
        self.assertEqual(s, 400)
        self.assertIn("burstLimitt", b["message"])
        self.assertEqual(self.f.call("POST", "/_fake/config", {"burstLimit": "x"},
                                     token=None)[0], 400)
        for tier, burst, daily in (("free", 100, 250000), ("starter", 100, 250000),
                                   ("pro", 190, 625000), ("enterprise", 190, 1000000),
                                   ("oauth", 110, 1000000)):
            cfg = self.f.ctl("POST", "config", {"tier": tier})
            self.assertEqual((cfg["burstLimit"], cfg["dailyLimit"]), (burst, daily), tier)
        cfg = self.f.ctl("POST", "config", {"tier": "free", "burstLimit": 50})
        self.assertEqual(cfg["burstLimit"], 50)

    def test_seed(self):
        """seed creates N records, {n} placeholders, one shared timestamp."""
        out = self.f.ctl("POST", "seed", {"objectType": "contacts", "count": 25,
                                          "properties": {"email": "s{n}@example.com",
                                                         "firstname": "Seed"},
                                          "sameTimestamp": "2024-01-02T03:04:05.678Z"})
        self.assertEqual(len(out["ids"]), 25)
        recs = self.f.ctl("GET", "records/contacts")["results"]
        self.assertEqual(len(recs), 25)
        self.assertEqual({r["properties"]["lastmodifieddate"] for r in recs},
                         {"2024-01-02T03:04:05.678Z"})
        self.assertEqual({r["updatedAt"] for r in recs}, {"2024-01-02T03:04:05.678Z"})
        self.assertEqual(recs[4]["properties"]["email"], "s5@example.com")
        s, _, b = self.f.call("POST", "/_fake/seed", {"objectType": "contacts", "count": 1,
                                                      "properties": {"email": "s1@example.com"}},
                              token=None)
        self.assertEqual(s, 409)
        self.assertEqual(self.f.call("POST", "/_fake/seed", {"objectType": "contacts",
                                                             "count": 1,
                                                             "properties": {"nope": "1"}},
                                     token=None)[0], 400)

    def test_records_and_history(self):
        """records/{t} lists archived too; records/{t}/{id} has full history."""
        a = self.create("deals", {"dealname": "A", "amount": "10"})
        b = self.create("deals", {"dealname": "B"})
        self.f.call("PATCH", "/crm/v3/objects/deals/" + a["id"], {"properties": {"amount": "20"}})
        self.f.call("DELETE", "/crm/v3/objects/deals/" + b["id"])
        allr = self.f.ctl("GET", "records/deals")["results"]
        self.assertEqual({r["id"]: r["archived"] for r in allr}, {a["id"]: False, b["id"]: True})
        self.assertEqual(len(self.f.ctl("GET", "records/deals?archived=true")["results"]), 1)
        one = self.f.ctl("GET", "records/deals/" + a["id"])
        hist = one["propertiesWithHistory"]["amount"]
        self.assertEqual([h["value"] for h in hist], ["20", "10"])
        self.assertEqual(hist[0]["sourceType"], "INTEGRATION")
        self.assertEqual(hist[0]["sourceId"], "54321")
        self.assertEqual(self.f.call("GET", "/_fake/records/deals/1", token=None)[0], 404)

    def test_request_log(self):
        """requests?since= gives seq, method, path, query, status, inputs, times."""
        self.f.call("POST", "/crm/v3/objects/contacts/batch/create",
                    {"inputs": [{"properties": {"email": "l%d@example.com" % i}}
                                for i in range(3)]})
        self.f.call("GET", "/crm/v3/objects/contacts?limit=2")
        log = self.f.ctl("GET", "requests")["requests"]
        self.assertEqual([(e["method"], e["path"], e["status"]) for e in log],
                         [("POST", "/crm/v3/objects/contacts/batch/create", 201),
                          ("GET", "/crm/v3/objects/contacts", 200)])
        self.assertEqual(log[0]["inputs"], 3)
        self.assertEqual(log[1]["query"], "limit=2")
        self.assertLessEqual(log[0]["startMs"], log[0]["endMs"])
        later = self.f.ctl("GET", "requests?since=%d" % log[0]["seq"])["requests"]
        self.assertEqual([e["seq"] for e in later], [log[1]["seq"]])

    def test_counters(self):
        """Per endpoint/status counts, 429 total, max window, duplicates."""
        self.f.ctl("POST", "config", {"burstLimit": 3})
        for _ in range(5):
            self.f.call("GET", "/crm/v3/objects/contacts")
        c = self.f.ctl("GET", "counters")
        self.assertEqual(c["byEndpoint"]["GET /crm/v3/objects/contacts"], {"200": 3, "429": 2})
        self.assertEqual(c["total429"], 2)
        self.assertEqual(c["rateLimit"]["maxRequestsIn10s"], 5)
        self.assertEqual(c["rateLimit"]["maxAcceptedIn10s"], 3)
        self.f.ctl("POST", "reset")
        self.f.call("POST", "/crm/v3/properties/contacts",
                    {"name": "hubsync_id", "label": "h", "type": "string",
                     "fieldType": "text", "groupName": "contactinformation"})
        for _ in range(3):
            self.create("contacts", {"hubsync_id": "same", "firstname": "x"})
        self.assertEqual(self.f.ctl("GET", "counters")["duplicates"]["hubsync_id"], 2)
        self.assertEqual(self.f.ctl("GET", "counters")["duplicates"]["email"], 0)


# ----- 3. CRM objects ----------------------------------------------------------
STANDARD = [("contacts", "0-1"), ("companies", "0-2"), ("deals", "0-3"), ("tickets", "0-5"),
            ("products", "0-7"), ("line_items", "0-8"), ("quotes", "0-14"),
            ("invoices", "0-53"), ("subscriptions", "0-69"), ("commerce_payments", "0-101"),
            ("orders", "0-123"), ("leads", "0-136"), ("carts", "0-142")]
LASTMOD = {"contacts": "lastmodifieddate"}
CREATED = {"quotes": "hs_createdate", "subscriptions": "hs_createdate",
           "orders": "hs_createdate", "leads": "hs_createdate", "carts": "hs_createdate"}


class ObjectsTest(Base):
    """Single-record endpoints and record shape."""

    def test_every_type_by_name_and_id(self):
        """Create/read/update/archive for each standard type, by name and by id."""
        for name, tid in STANDARD:
            s, _, rec = self.f.call("POST", "/crm/v3/objects/" + tid, {"properties": {}})
            self.assertEqual(s, 201, name)
            self.assertRegex(rec["id"], r"^\d{11,}$")
            props = rec["properties"]
            self.assertEqual(props["hs_object_id"], rec["id"])
            self.assertRegex(props[CREATED.get(name, "createdate")], ISO_MS.pattern)
            self.assertRegex(props[LASTMOD.get(name, "hs_lastmodifieddate")], ISO_MS.pattern)
            s, _, got = self.f.call("GET", "/crm/v3/objects/%s/%s" % (name, rec["id"]))
            self.assertEqual((s, got["id"], got["archived"]), (200, rec["id"], False), name)
            self.assertEqual(self.f.call("DELETE", "/crm/v3/objects/%s/%s" % (tid, rec["id"]))[0],
                             204)
        s, _, b = self.f.call("GET", "/crm/v3/objects/widgets")
        self.assertEqual(s, 400)
        self.assert_error(b, "VALIDATION_ERROR", "Unable to infer object type from: widgets")

    def test_record_shape_and_timestamps(self):
        """Strings everywhere, null when requested but empty, contacts' two modified dates."""
        rec = self.create("contacts", {"email": "shape@example.com", "firstname": "Ann"})
        self.assertEqual(set(rec), {"id", "properties", "createdAt", "updatedAt", "archived"})
        self.assertRegex(rec["createdAt"], ISO_MS.pattern)
        time.sleep(0.01)
        s, _, up = self.f.call("PATCH", "/crm/v3/objects/contacts/" + rec["id"],
                               {"properties": {"lastname": "Lee"}})
        self.assertEqual(s, 200)
        self.assertEqual(up["properties"]["lastname"], "Lee")
        self.assertGreater(up["updatedAt"], rec["updatedAt"])
        self.assertEqual(up["createdAt"], rec["createdAt"])
        s, _, got = self.f.call("GET", "/crm/v3/objects/contacts/%s?properties=jobtitle,"
                                       "hs_lastmodifieddate,lastname&properties=nonexistent"
                                % rec["id"])
        p = got["properties"]
        self.assertIsNone(p["jobtitle"])
        self.assertNotIn("nonexistent", p)
        self.assertEqual(p["lastmodifieddate"], p["hs_lastmodifieddate"])
        self.assertEqual(p["lastmodifieddate"], got["updatedAt"])
        self.assertEqual(p["createdate"], got["createdAt"])
        self.assertTrue(all(isinstance(v, str) for v in p.values() if v is not None))
        s, _, dflt = self.f.call("GET", "/crm/v3/objects/contacts/" + rec["id"])
        self.assertEqual(set(dflt["properties"]), {"firstname", "lastname", "email",
                                                   "lastmodifieddate", "hs_object_id",
                                                   "createdate"})
        deal = self.create("deals", {"dealname": "D"})
        self.assertIn("hs_lastmodifieddate", deal["properties"])
        self.assertNotIn("lastmodifieddate", deal["properties"])

    def test_property_history(self):
        """propertiesWithHistory: newest first, value/timestamp/sourceType/sourceId."""
        rec = self.create("deals", {"dealname": "v1"})
        for v in ("v2", "v3"):
            self.f.call("PATCH", "/crm/v3/objects/deals/" + rec["id"],
                        {"properties": {"dealname": v}})
        self.f.ctl("POST", "ui/deals/" + rec["id"], {"properties": {"dealname": "v4"},
                                                      "userId": 99})
        s, _, got = self.f.call("GET", "/crm/v3/objects/deals/%s?propertiesWithHistory=dealname"
                                % rec["id"])
        hist = got["propertiesWithHistory"]["dealname"]
        self.assertEqual([h["value"] for h in hist], ["v4", "v3", "v2", "v1"])
        self.assertEqual((hist[0]["sourceType"], hist[0]["sourceId"]), ("CRM_UI", "userId:99"))
        self.assertEqual((hist[1]["sourceType"], hist[1]["sourceId"]), ("INTEGRATION", "54321"))
        self.assertTrue(all(ISO_MS.match(h["timestamp"]) for h in hist))
        self.assertGreaterEqual(hist[0]["timestamp"], hist[-1]["timestamp"])

    def test_get_variants(self):
        """idProperty, archived=true, 404 for missing/archived."""
        rec = self.create("contacts", {"email": "Find@Example.com"})
        s, _, got = self.f.call("GET", "/crm/v3/objects/contacts/find@example.com"
                                       "?idProperty=email")
        self.assertEqual((s, got["id"]), (200, rec["id"]))
        s, _, b = self.f.call("GET", "/crm/v3/objects/contacts/999")
        self.assertEqual(s, 404)
        self.assert_error(b, "OBJECT_NOT_FOUND")   # HubSpot's JSON body by default
        self.assertEqual(self.f.call("DELETE", "/crm/v3/objects/contacts/" + rec["id"])[0], 204)
        s, _, gone = self.f.call("GET", "/crm/v3/objects/contacts/" + rec["id"])
        self.assertEqual(s, 404)
        s, _, arch = self.f.call("GET", "/crm/v3/objects/contacts/%s?archived=true" % rec["id"])
        self.assertEqual((s, arch["archived"]), (200, True))
        self.assertRegex(arch["archivedAt"], ISO_MS.pattern)
        self.assertEqual(self.f.call("DELETE", "/crm/v3/objects/contacts/" + rec["id"])[0], 404)
        self.f.ctl("POST", "config", {"deleteArchivedStatus": 204, "notFoundBody": False})
        self.assertEqual(self.f.call("DELETE", "/crm/v3/objects/contacts/" + rec["id"])[0], 204)
        s, h, b = self.f.call("GET", "/crm/v3/objects/contacts/" + rec["id"])
        self.assertEqual((s, b), (404, None))          # the empty 404 on request

    def test_list_paging(self):
        """limit default 10, max 100, after cursor, archived list."""
        self.f.ctl("POST", "seed", {"objectType": "companies", "count": 25,
                                    "properties": {"name": "C{n}"}})
        s, _, page = self.f.call("GET", "/crm/v3/objects/companies")
        self.assertEqual(len(page["results"]), 10)
        seen = [r["id"] for r in page["results"]]
        while "paging" in page:
            after = page["paging"]["next"]["after"]
            self.assertIn("after=" + after, page["paging"]["next"]["link"])
            s, _, page = self.f.call("GET", "/crm/v3/objects/companies?limit=10&after=" + after)
            seen += [r["id"] for r in page["results"]]
        self.assertEqual(len(seen), 25)
        self.assertEqual(len(set(seen)), 25)
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/companies?limit=101")[0], 400)
        self.assertEqual(len(self.f.call("GET", "/crm/v3/objects/companies?limit=100")[2]
                             ["results"]), 25)
        self.f.call("DELETE", "/crm/v3/objects/companies/" + seen[0])
        arch = self.f.call("GET", "/crm/v3/objects/companies?archived=true")[2]["results"]
        self.assertEqual([r["id"] for r in arch], [seen[0]])

    def test_unknown_and_read_only_properties(self):
        """400 VALIDATION_ERROR with PROPERTY_DOESNT_EXIST / READ_ONLY_VALUE."""
        s, _, b = self.f.call("POST", "/crm/v3/objects/contacts",
                              {"properties": {"email": "u@example.com", "colour": "red"}})
        self.assertEqual(s, 400)
        self.assert_error(b, "VALIDATION_ERROR", r"^Property values were not valid: ")
        self.assertEqual(b["errors"], [{"message": 'Property "colour" does not exist',
                                        "code": "PROPERTY_DOESNT_EXIST",
                                        "context": {"propertyName": ["colour"]}}])
        inner = json.loads(b["message"][len("Property values were not valid: "):])
        self.assertEqual(inner[0]["error"], "PROPERTY_DOESNT_EXIST")
        s, _, b = self.f.call("POST", "/crm/v3/objects/contacts",
                              {"properties": {"hs_object_id": "5"}})
        self.assertEqual((s, b["errors"][0]["code"]), (400, "READ_ONLY_VALUE"))
        self.assertEqual(self.f.ctl("GET", "records/contacts")["total"], 0)

    def test_value_types(self):
        """number/date/datetime/bool/enumeration validation and normalisation."""
        s, _, d = self.f.call("POST", "/crm/v3/objects/deals", body=(
            '{"properties":{"dealname":"T","amount":1500.50,'
            '"closedate":"1719705600000","hs_forecast_probability":"0.250"}}'))
        self.assertEqual(s, 201, d)
        self.assertEqual(d["properties"]["amount"], "1500.50")
        self.assertEqual(d["properties"]["hs_forecast_probability"], "0.250")
        self.assertEqual(d["properties"]["closedate"], "2024-06-30T00:00:00.000Z")
        s, _, d2 = self.f.call("PATCH", "/crm/v3/objects/deals/" + d["id"], {"properties": {
            "closedate": "2024-06-30T12:30:00+02:00", "amount": "-3e2"}})
        self.assertEqual(d2["properties"]["closedate"], "2024-06-30T10:30:00.000Z")
        self.assertEqual(d2["properties"]["amount"], "-3e2")
        inv = self.create("invoices", {"hs_due_date": "1719705600000", "hs_currency": "USD",
                                       "hs_invoice_billable": "TRUE"})
        s, _, got = self.f.call("GET", "/crm/v3/objects/invoices/%s?properties=hs_due_date,"
                                       "hs_invoice_billable,hs_invoice_status" % inv["id"])
        self.assertEqual(got["properties"]["hs_due_date"], "2024-06-30")
        self.assertEqual(got["properties"]["hs_invoice_billable"], "true")
        self.assertEqual(got["properties"]["hs_invoice_status"], "draft")
        for obj, props, code in (
                ("deals", {"amount": "12abc"}, "INVALID_NUMBER"),
                ("deals", {"closedate": "yesterday"}, "INVALID_DATETIME"),
                ("invoices", {"hs_due_date": "1719705600001"}, "INVALID_DATE"),
                ("invoices", {"hs_invoice_billable": "yes"}, "INVALID_BOOLEAN"),
                ("deals", {"dealstage": "nosuchstage"}, "INVALID_OPTION"),
                ("contacts", {"email": "not-an-email"}, "INVALID_EMAIL")):
            s, _, b = self.f.call("POST", "/crm/v3/objects/" + obj, {"properties": props})
            self.assertEqual(s, 400, props)
            self.assertEqual(b["errors"][0]["code"], code)
            self.assertEqual(b["errors"][0]["context"]["propertyName"], list(props))
        s, _, cleared = self.f.call("PATCH", "/crm/v3/objects/deals/" + d["id"],
                                    {"properties": {"amount": ""}})
        self.assertIsNone(cleared["properties"]["amount"])

    def test_default_property_sets(self):
        """The properties the notes name exist, with their types."""
        want = {
            "contacts": {"email": "string", "firstname": "string", "lastname": "string",
                         "jobtitle": "string", "lifecyclestage": "enumeration",
                         "phone": "string", "company": "string",
                         "lastmodifieddate": "datetime", "hs_lastmodifieddate": "datetime"},
            "deals": {"dealname": "string", "amount": "number", "dealstage": "enumeration",
                      "pipeline": "enumeration", "closedate": "datetime"},
            "invoices": {"hs_invoice_status": "enumeration", "hs_amount_billed": "number",
                         "hs_balance_due": "number", "hs_due_date": "date",
                         "hs_currency": "string"},
            "commerce_payments": {"hs_initial_amount": "number",
                                  "hs_latest_status": "enumeration",
                                  "hs_initiated_date": "datetime"},
            "subscriptions": {"hs_status": "enumeration", "hs_name": "string",
                              "hs_recurring_revenue": "number"},
            "line_items": {"quantity": "number", "price": "number", "hs_product_id": "string"},
            "quotes": {"hs_title": "string", "hs_expiration_date": "date"},
        }
        for obj, props in want.items():
            got = {p["name"]: p["type"] for p in
                   self.f.call("GET", "/crm/v3/properties/" + obj)[2]["results"]}
            for name, t in props.items():
                self.assertEqual(got.get(name), t, "%s.%s" % (obj, name))

    def test_merge(self):
        """merge: new id by default, aliases, hs_merged_object_ids, moved values."""
        a = self.create("contacts", {"email": "m1@example.com", "firstname": "A"})
        b = self.create("contacts", {"email": "m2@example.com", "jobtitle": "CTO"})
        s, _, m = self.f.call("POST", "/crm/v3/objects/contacts/merge",
                              {"primaryObjectId": a["id"], "objectIdToMerge": b["id"]})
        self.assertEqual(s, 200)
        self.assertNotIn(m["id"], (a["id"], b["id"]))
        self.assertEqual(m["properties"]["email"], "m1@example.com")
        self.assertEqual(m["properties"]["jobtitle"], "CTO")
        self.assertEqual(m["properties"]["hs_merged_object_ids"].split(";"),
                         sorted([a["id"], b["id"]], key=int))
        for old in (a["id"], b["id"]):
            s, _, got = self.f.call("GET", "/crm/v3/objects/contacts/" + old)
            self.assertEqual((s, got["id"]), (200, m["id"]))
        self.f.ctl("POST", "config", {"mergeCreatesNewId": False})
        c = self.create("contacts", {"email": "m3@example.com"})
        s, _, m2 = self.f.call("POST", "/crm/v3/objects/contacts/merge",
                               {"primaryObjectId": c["id"], "objectIdToMerge": m["id"]})
        self.assertEqual(m2["id"], c["id"])

    def test_gdpr_delete(self):
        """gdpr-delete removes the contact permanently (even from archived)."""
        a = self.create("contacts", {"email": "gone@example.com"})
        s, _, _ = self.f.call("POST", "/crm/v3/objects/contacts/gdpr-delete",
                              {"objectId": "gone@example.com", "idProperty": "email"})
        self.assertEqual(s, 204)
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/contacts/%s?archived=true"
                                     % a["id"])[0], 404)
        self.assertEqual(self.f.ctl("GET", "records/contacts")["total"], 0)
        self.assertEqual(self.f.call("POST", "/crm/v3/objects/contacts/gdpr-delete",
                                     {"objectId": a["id"]})[0], 404)


class BatchTest(Base):
    """Batch endpoints, limits and 207 shapes (notes 4.5, 5)."""

    def test_batch_create_read_update_archive(self):
        """Status codes and envelopes of the happy paths."""
        s, _, b = self.f.call("POST", "/crm/v3/objects/deals/batch/create", {"inputs": [
            {"properties": {"dealname": "D%d" % i, "amount": "%d.00" % i}} for i in range(3)]})
        self.assertEqual(s, 201)
        self.assertEqual(b["status"], "COMPLETE")
        self.assertRegex(b["startedAt"], ISO_MS.pattern)
        self.assertRegex(b["completedAt"], ISO_MS.pattern)
        ids = [r["id"] for r in b["results"]]
        s, _, r = self.f.call("POST", "/crm/v3/objects/deals/batch/read", {
            "inputs": [{"id": i} for i in ids], "properties": ["amount"]})
        self.assertEqual(s, 200)
        self.assertNotIn("errors", r)
        self.assertEqual(sorted(x["properties"]["amount"] for x in r["results"]),
                         ["0.00", "1.00", "2.00"])
        s, _, u = self.f.call("POST", "/crm/v3/objects/deals/batch/update", {"inputs": [
            {"id": ids[0], "properties": {"amount": "9"}}]})
        self.assertEqual(s, 200)
        self.assertEqual(u["results"][0]["properties"]["amount"], "9")
        self.assertNotIn("dealname", u["results"][0]["properties"])  # echoes what was sent
        s, _, a = self.f.call("POST", "/crm/v3/objects/deals/batch/archive",
                              {"inputs": [{"id": i} for i in ids + ["12345"]]})
        self.assertEqual((s, a), (204, None))
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/deals")[2]["results"], [])

    def test_207_missing_ids(self):
        """batch read/update with unknown ids -> 207 with OBJECT_NOT_FOUND context.ids."""
        c = self.create("contacts", {"email": "x@example.com"})
        s, _, r = self.f.call("POST", "/crm/v3/objects/contacts/batch/read",
                              {"inputs": [{"id": c["id"]}, {"id": "999"}], "properties": []})
        self.assertEqual(s, 207)
        self.assertEqual(r["numErrors"], 1)
        self.assertEqual(r["errors"], [{
            "status": "error", "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
                       "Check that ids are valid.",
            "context": {"ids": ["999"]}, "errors": [], "links": {}}])
        self.assertEqual(set(r), {"status", "results", "numErrors", "errors", "startedAt",
                                  "completedAt"})
        s, _, u = self.f.call("POST", "/crm/v3/objects/deals/batch/update", {"inputs": [
            {"id": "998", "properties": {"dealname": "x"}}]})
        self.assertEqual(s, 207)
        self.assertEqual(u["errors"][0]["message"][:27], "Could not get some DEAL obj")
        self.assertEqual(u["results"], [])

    def test_upsert(self):
        """upsert by email: new flag; non-unique idProperty -> 400."""
        self.create("contacts", {"email": "old@example.com"})
        s, _, b = self.f.call("POST", "/crm/v3/objects/contacts/batch/upsert", {"inputs": [
            {"id": "OLD@example.com", "idProperty": "email", "properties": {"firstname": "O"}},
            {"id": "new@example.com", "idProperty": "email", "properties": {"firstname": "N"}}]})
        self.assertEqual(s, 200, b)
        by = {r["properties"]["firstname"]: r for r in b["results"]}
        self.assertIs(by["O"]["new"], False)
        self.assertIs(by["N"]["new"], True)
        self.assertEqual(by["N"]["properties"]["email"], "new@example.com")
        self.assertEqual(self.f.ctl("GET", "records/contacts")["total"], 2)
        s, _, e = self.f.call("POST", "/crm/v3/objects/companies/batch/upsert", {"inputs": [
            {"id": "1", "idProperty": "hs_object_id", "properties": {"name": "x"}}]})
        self.assertEqual(s, 400)
        self.assertEqual(e["message"], "Unable to perform update/upsert by non-unique 0-2 "
                                       "property hs_object_id in portal ID 62515")
        s, _, e = self.f.call("POST", "/crm/v3/objects/contacts/batch/upsert", {"inputs": [
            {"id": "a@example.com", "idProperty": "email", "properties": {}},
            {"id": "A@example.com", "idProperty": "email", "properties": {}}]})
        self.assertEqual(s, 400)
        self.assertIn("Duplicate IDs", e["message"])

    def test_upsert_partial_on_unique_property(self):
        """Non-email idProperty: per-input errors -> 207; email: whole batch fails."""
        self.f.call("POST", "/crm/v3/properties/deals", {
            "name": "ext_id", "label": "Ext", "type": "string", "fieldType": "text",
            "groupName": "dealinformation", "hasUniqueValue": True})
        s, _, b = self.f.call("POST", "/crm/v3/objects/deals/batch/upsert", {"inputs": [
            {"id": "e1", "idProperty": "ext_id", "properties": {"dealname": "ok"}},
            {"id": "e2", "idProperty": "ext_id", "properties": {"amount": "zz"}}]})
        self.assertEqual(s, 207, b)
        self.assertEqual(len(b["results"]), 1)
        self.assertEqual(b["errors"][0]["context"], {"ids": ["e2"]})
        s, _, b = self.f.call("POST", "/crm/v3/objects/contacts/batch/upsert", {"inputs": [
            {"id": "p1@example.com", "idProperty": "email", "properties": {}},
            {"id": "p2@example.com", "idProperty": "email", "properties": {"nope": "1"}}]})
        self.assertEqual(s, 400)
        self.assertEqual(self.f.ctl("GET", "records/contacts")["total"], 0)

    def test_input_limits(self):
        """100 inputs max, 50 with propertiesWithHistory."""
        ok = {"inputs": [{"properties": {}} for _ in range(100)]}
        self.assertEqual(self.f.call("POST", "/crm/v3/objects/tickets/batch/create", ok)[0], 201)
        s, _, b = self.f.call("POST", "/crm/v3/objects/tickets/batch/create",
                              {"inputs": [{"properties": {}} for _ in range(101)]})
        self.assertEqual(s, 400)
        self.assert_error(b, "VALIDATION_ERROR")
        read = {"inputs": [{"id": str(i)} for i in range(51)], "properties": [],
                "propertiesWithHistory": ["subject"]}
        self.assertEqual(self.f.call("POST", "/crm/v3/objects/tickets/batch/read", read)[0], 400)
        read["inputs"] = read["inputs"][:50]
        self.assertEqual(self.f.call("POST", "/crm/v3/objects/tickets/batch/read", read)[0], 207)

    def test_trace_id_partial_create(self):
        """With distinct objectWriteTraceIds a bad input fails alone (207)."""
        s, _, b = self.f.call("POST", "/crm/v3/objects/deals/batch/create", {"inputs": [
            {"properties": {"dealname": "a"}, "objectWriteTraceId": "t1"},
            {"properties": {"colour": "x"}, "objectWriteTraceId": "t2"}]})
        self.assertEqual(s, 207)
        self.assertEqual(b["results"][0]["objectWriteTraceId"], "t1")
        self.assertEqual(b["errors"][0]["context"], {"objectWriteTraceId": ["t2"]})
        s, _, b = self.f.call("POST", "/crm/v3/objects/deals/batch/create", {"inputs": [
            {"properties": {"dealname": "a"}}, {"properties": {"colour": "x"}}]})
        self.assertEqual(s, 400)


class UniquenessTest(Base):
    """Email and hasUniqueValue properties (notes 4.4)."""

    def test_email_conflict(self):
        """409 CONFLICT 'Contact already exists. Existing ID: N' (case-insensitive)."""
        a = self.create("contacts", {"email": "dup@example.com"})
        s, _, b = self.f.call("POST", "/crm/v3/objects/contacts",
                              {"properties": {"email": "Dup@Example.com"}})
        self.assertEqual(s, 409)
        self.assert_error(b, "CONFLICT")
        self.assertEqual(b["message"], "Contact already exists. Existing ID: %s" % a["id"])
        other = self.create("contacts", {"email": "o@example.com"})
        s, _, b = self.f.call("PATCH", "/crm/v3/objects/contacts/" + other["id"],
                              {"properties": {"email": "dup@example.com"}})
        self.assertEqual(s, 409)

    def test_batch_create_conflict_fails_whole_batch(self):
        """One existing email fails the whole batch, nothing is created."""
        a = self.create("contacts", {"email": "b1@example.com"})
        s, _, b = self.f.call("POST", "/crm/v3/objects/contacts/batch/create", {"inputs": [
            {"properties": {"email": "fresh@example.com"}},
            {"properties": {"email": "b1@example.com"}}]})
        self.assertEqual(s, 409)
        self.assertRegex(b["message"], r"Existing ID: %s$" % a["id"])
        self.assertEqual(self.f.ctl("GET", "records/contacts")["total"], 1)

    def test_custom_unique_property(self):
        """hasUniqueValue property: 409 names the property; upsert works by it."""
        s, _, p = self.f.call("POST", "/crm/v3/properties/companies", {
            "name": "hubsync_id", "label": "hubsync id", "type": "string",
            "fieldType": "text", "groupName": "companyinformation", "hasUniqueValue": True})
        self.assertEqual((s, p["hasUniqueValue"]), (201, True))
        a = self.create("companies", {"hubsync_id": "u-1", "name": "A"})
        s, _, b = self.f.call("POST", "/crm/v3/objects/companies",
                              {"properties": {"hubsync_id": "u-1"}})
        self.assertEqual(s, 409)
        self.assertIn("hubsync_id", b["message"])
        self.assertRegex(b["message"], r"Existing ID: %s$" % a["id"])
        s, _, u = self.f.call("POST", "/crm/v3/objects/companies/batch/upsert", {"inputs": [
            {"id": "u-1", "idProperty": "hubsync_id", "properties": {"name": "A2"}}]})
        self.assertEqual((s, u["results"][0]["id"], u["results"][0]["new"]), (200, a["id"], False))
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/companies/u-1?idProperty=hubsync_id")
                         [2]["id"], a["id"])
        # archiving frees the value
        self.f.call("DELETE", "/crm/v3/objects/companies/" + a["id"])
        self.create("companies", {"hubsync_id": "u-1"})


class PropertiesSchemasTest(Base):
    """Properties API (notes 7) and schemas (notes 8)."""

    def test_properties_api(self):
        """list/get/create/409/batch create/batch read/groups."""
        s, _, lst = self.f.call("GET", "/crm/v3/properties/contacts")
        email = [p for p in lst["results"] if p["name"] == "email"][0]
        for key in ("label", "type", "fieldType", "groupName", "options", "hasUniqueValue",
                    "hubspotDefined", "modificationMetadata", "createdAt", "archived"):
            self.assertIn(key, email)
        body = {"name": "favourite", "label": "Fav", "type": "enumeration",
                "fieldType": "checkbox", "groupName": "contactinformation",
                "options": [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}]}
        s, _, p = self.f.call("POST", "/crm/v3/properties/contacts", body)
        self.assertEqual((s, p["hubspotDefined"], p["options"][1]["value"]), (201, False, "b"))
        self.assertEqual(self.f.call("POST", "/crm/v3/properties/contacts", body)[0], 409)
        self.assertEqual(self.f.call("GET", "/crm/v3/properties/contacts/favourite")[2]["type"],
                         "enumeration")
        self.assertEqual(self.f.call("GET", "/crm/v3/properties/contacts/nope")[0], 404)
        self.create("contacts", {"favourite": "a;b"})
        self.assertEqual(self.f.call("POST", "/crm/v3/objects/contacts",
                                     {"properties": {"favourite": "a;c"}})[0], 400)
        s, _, bc = self.f.call("POST", "/crm/v3/properties/deals/batch/create", {"inputs": [
            {"name": "p1", "label": "P1", "type": "number", "fieldType": "number",
             "groupName": "dealinformation"},
            {"name": "p2", "label": "P2", "type": "datetime", "fieldType": "date",
             "groupName": "dealinformation"}]})
        self.assertEqual((s, len(bc["results"])), (201, 2))
        s, _, br = self.f.call("POST", "/crm/v3/properties/deals/batch/read",
                               {"inputs": [{"name": "p1"}, {"name": "zz"}]})
        self.assertEqual((s, br["results"][0]["name"]), (207, "p1"))
        self.assertEqual(self.f.call("POST", "/crm/v3/properties/deals", {
            "name": "Bad Name", "label": "x", "type": "string", "fieldType": "text",
            "groupName": "g"})[0], 400)
        s, _, g = self.f.call("POST", "/crm/v3/properties/deals/groups",
                              {"name": "hubsync", "label": "hubsync"})
        self.assertEqual(s, 201)
        names = [x["name"] for x in self.f.call("GET", "/crm/v3/properties/deals/groups")[2]
                 ["results"]]
        self.assertIn("hubsync", names)
        self.assertIn("dealinformation", names)

    def test_schemas(self):
        """Create a custom object on both paths; use it by every name form."""
        body = {"name": "cars", "labels": {"singular": "Car", "plural": "Cars"},
                "primaryDisplayProperty": "model", "requiredProperties": ["model"],
                "searchableProperties": ["model"], "secondaryDisplayProperties": ["year"],
                "properties": [{"name": "model", "label": "Model", "type": "string",
                                "fieldType": "text"},
                               {"name": "year", "label": "Year", "type": "number",
                                "fieldType": "number"},
                               {"name": "vin", "label": "VIN", "type": "string",
                                "fieldType": "text", "hasUniqueValue": True}],
                "associatedObjects": ["CONTACT"]}
        s, _, sc = self.f.call("POST", "/crm/v3/schemas", body)
        self.assertEqual(s, 201, sc)
        for key in ("id", "objectTypeId", "fullyQualifiedName", "name", "labels",
                    "requiredProperties", "searchableProperties", "primaryDisplayProperty",
                    "secondaryDisplayProperties", "properties", "associations", "metaType",
                    "archived", "restorable", "createdAt", "updatedAt"):
            self.assertIn(key, sc)
        self.assertRegex(sc["objectTypeId"], r"^2-\d+$")
        self.assertEqual(sc["fullyQualifiedName"], "p62515_cars")
        self.assertEqual(sc["metaType"], "PORTAL_SPECIFIC")
        self.assertTrue(sc["associations"])
        self.assertEqual(self.f.call("POST", "/crm-object-schemas/v3/schemas", body)[0], 409)
        for path in ("/crm/v3/schemas", "/crm-object-schemas/v3/schemas"):
            lst = self.f.call("GET", path)[2]["results"]
            self.assertEqual([x["objectTypeId"] for x in lst], [sc["objectTypeId"]])
            self.assertEqual(self.f.call("GET", path + "/" + sc["objectTypeId"])[2]["name"],
                             "cars")
        car = self.create(sc["objectTypeId"], {"model": "T", "year": "1925", "vin": "V1"})
        for key in ("p_cars", "p62515_cars", sc["objectTypeId"]):
            s, _, got = self.f.call("GET", "/crm/v3/objects/%s/%s?properties=model" % (
                key, car["id"]))
            self.assertEqual((s, got["properties"]["model"]), (200, "T"), key)
        self.assertIn("hs_createdate", car["properties"])
        self.assertEqual(self.f.call("POST", "/crm/v3/objects/p_cars",
                                     {"properties": {"vin": "V1"}})[0], 409)
        s, _, e = self.f.call("POST", "/crm/v3/objects/p_cars/search", {
            "filterGroups": [{"filters": [{"propertyName": "year", "operator": "GTE",
                                           "value": "1900"}]}]})
        self.assertEqual(e["total"], 1)
        self.f.ctl("POST", "seed", {"objectType": "contacts", "count": 1})
        labels = self.f.call("GET", "/crm/v4/associations/p_cars/contacts/labels")[2]["results"]
        self.assertTrue(labels)


# ----- 6. search -----------------------------------------------------------------
class SearchTest(Base):
    """Search filters, sorts, paging, limits, lag, rate (notes 6)."""

    def search(self, obj, body, status=200):
        """POST search; asserts the status."""
        s, h, b = self.f.call("POST", "/crm/v3/objects/%s/search" % obj, body)
        self.assertEqual(s, status, b)
        return b

    def ids(self, obj, filters, **extra):
        """Matching firstnames for one AND-group of filters (sorted)."""
        self.f.ctl("POST", "config", {"searchPerSecond": 1000})
        body = dict({"filterGroups": [{"filters": filters}] if filters else [],
                     "properties": ["firstname"], "limit": 200}, **extra)
        return sorted(r["properties"]["firstname"] for r in self.search(obj, body)["results"])

    def setUp(self):
        """Four contacts to search."""
        super().setUp()
        self.f.ctl("POST", "config", {"searchPerSecond": 1000})
        for name, age, email, stage in (("ann", "30", "ann@acme.com", "lead"),
                                        ("bob", "40", "bob@acme.com", "customer"),
                                        ("cy", "25", "cy@other.org", "lead"),
                                        ("dee", None, "dee@other.org", None)):
            props = {"firstname": name, "email": email}
            if age:
                props["associatedcompanyid"] = age
            if stage:
                props["lifecyclestage"] = stage
            self.create("contacts", props)

    def test_operators(self):
        """Every operator of the spec enum."""
        f = lambda op, **kw: [dict({"propertyName": "associatedcompanyid", "operator": op},
                                   **kw)]
        self.assertEqual(self.ids("contacts", f("EQ", value="30")), ["ann"])
        self.assertEqual(self.ids("contacts", f("NEQ", value="30")), ["bob", "cy", "dee"])
        self.assertEqual(self.ids("contacts", f("LT", value="30")), ["cy"])
        self.assertEqual(self.ids("contacts", f("LTE", value="30")), ["ann", "cy"])
        self.assertEqual(self.ids("contacts", f("GT", value="30")), ["bob"])
        self.assertEqual(self.ids("contacts", f("GTE", value="30")), ["ann", "bob"])
        self.assertEqual(self.ids("contacts", f("BETWEEN", value="26", highValue="40")),
                         ["ann", "bob"])
        self.assertEqual(self.ids("contacts", f("IN", values=["25", "40"])), ["bob", "cy"])
        self.assertEqual(self.ids("contacts", f("NOT_IN", values=["25", "40"])), ["ann", "dee"])
        self.assertEqual(self.ids("contacts", f("HAS_PROPERTY")), ["ann", "bob", "cy"])
        self.assertEqual(self.ids("contacts", f("NOT_HAS_PROPERTY")), ["dee"])
        tok = lambda op, v: [{"propertyName": "email", "operator": op, "value": v}]
        self.assertEqual(self.ids("contacts", tok("CONTAINS_TOKEN", "*@acme.com")),
                         ["ann", "bob"])
        self.assertEqual(self.ids("contacts", tok("NOT_CONTAINS_TOKEN", "*@acme.com")),
                         ["cy", "dee"])
        self.assertEqual(self.ids("contacts", tok("EQ", "ANN@ACME.COM")), ["ann"])
        lc = lambda op, **kw: [dict({"propertyName": "lifecyclestage", "operator": op}, **kw)]
        self.assertEqual(self.ids("contacts", lc("EQ", value="lead")), ["ann", "cy"])
        self.assertEqual(self.ids("contacts", lc("IN", values=["customer"])), ["bob"])
        self.assertEqual(self.ids("contacts", lc("IN", values=["CUSTOMER"])), [])

    def test_and_or_and_time_filters(self):
        """Filters AND inside a group, groups OR; datetime filters take epoch ms."""
        body = {"filterGroups": [
            {"filters": [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"},
                         {"propertyName": "email", "operator": "CONTAINS_TOKEN",
                          "value": "*other.org"}]},
            {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "bob"}]}],
            "properties": ["firstname"]}
        got = sorted(r["properties"]["firstname"] for r in self.search("contacts", body)["results"])
        self.assertEqual(got, ["bob", "cy"])
        now = int(time.time() * 1000)
        self.assertEqual(len(self.ids("contacts", [{"propertyName": "lastmodifieddate",
                                                    "operator": "GTE",
                                                    "value": str(now - 60000)}])), 4)
        self.assertEqual(self.ids("contacts", [{"propertyName": "hs_lastmodifieddate",
                                                "operator": "GT", "value": str(now + 60000)}]), [])

    def test_sort_paging_total(self):
        """One sort honoured, after as offset, total, default properties."""
        body = {"sorts": [{"propertyName": "firstname", "direction": "DESCENDING"},
                          {"propertyName": "email", "direction": "ASCENDING"}],
                "limit": 3}
        page = self.search("contacts", body)
        self.assertEqual(page["total"], 4)
        self.assertEqual([r["properties"]["firstname"] for r in page["results"]],
                         ["dee", "cy", "bob"])
        self.assertEqual(page["paging"]["next"]["after"], "3")
        self.assertEqual(set(page["results"][0]["properties"]),
                         {"firstname", "lastname", "email", "lastmodifieddate",
                          "hs_object_id", "createdate"})
        page2 = self.search("contacts", dict(body, after="3"))
        self.assertEqual([r["properties"]["firstname"] for r in page2["results"]], ["ann"])
        self.assertNotIn("paging", page2)
        dflt = self.search("contacts", {"properties": ["firstname"]})
        self.assertEqual([r["properties"]["firstname"] for r in dflt["results"]],
                         ["ann", "bob", "cy", "dee"])  # oldest created first

    def test_limits(self):
        """limit <= 200, filter-count limits, 10,000-result cap, archived never returned."""
        self.search("contacts", {"limit": 201}, 400)
        flt = {"propertyName": "firstname", "operator": "HAS_PROPERTY"}
        self.search("contacts", {"filterGroups": [{"filters": [flt]}] * 6}, 400)
        self.search("contacts", {"filterGroups": [{"filters": [flt] * 7}]}, 400)
        self.search("contacts", {"filterGroups": [{"filters": [flt] * 6}] * 3 +
                                 [{"filters": [flt]}]}, 400)
        self.search("contacts", {"filterGroups": [{"filters": [flt] * 6}] * 3})
        self.f.ctl("POST", "config", {"searchFilterLimits": {"maxGroups": 6}})
        self.search("contacts", {"filterGroups": [{"filters": [flt]}] * 6})
        self.search("contacts", {"after": "9900", "limit": 200}, 400)
        e = self.search("contacts", {"after": "10000", "limit": 10}, 400)
        self.assert_error(e, "VALIDATION_ERROR")
        self.search("contacts", {"query": "x" * 3001}, 400)
        victim = self.f.ctl("GET", "records/contacts")["results"][0]["id"]
        self.f.call("DELETE", "/crm/v3/objects/contacts/" + victim)
        self.assertEqual(self.search("contacts", {})["total"], 3)
        self.search("contacts", {"filterGroups": [{"filters": [
            {"propertyName": "nosuch", "operator": "EQ", "value": "1"}]}]}, 400)

    def test_index_lag(self):
        """New records appear, and changes show, only after searchIndexLagMs."""
        self.f.ctl("POST", "config", {"searchIndexLagMs": 400})
        rec = self.create("contacts", {"firstname": "late", "email": "late@example.com"})
        flt = [{"propertyName": "email", "operator": "EQ", "value": "late@example.com"}]
        self.assertEqual(self.ids("contacts", flt), [])
        time.sleep(0.45)
        self.assertEqual(self.ids("contacts", flt), ["late"])
        self.f.call("PATCH", "/crm/v3/objects/contacts/" + rec["id"],
                    {"properties": {"firstname": "later"}})
        self.assertEqual(self.ids("contacts", flt), ["late"])    # old state still indexed
        time.sleep(0.45)
        self.assertEqual(self.ids("contacts", flt), ["later"])
        # state as of now - lag: with changes 250 ms apart, the middle one shows
        for name in ("one", "two"):
            self.f.call("PATCH", "/crm/v3/objects/contacts/" + rec["id"],
                        {"properties": {"firstname": name}})
            time.sleep(0.25)
        self.assertEqual(self.ids("contacts", flt), ["one"])
        time.sleep(0.2)
        self.assertEqual(self.ids("contacts", flt), ["two"])
        self.f.call("DELETE", "/crm/v3/objects/contacts/" + rec["id"])
        self.assertEqual(self.ids("contacts", flt), ["two"])      # archive not indexed yet
        time.sleep(0.45)
        self.assertEqual(self.ids("contacts", flt), [])

    def test_search_rate_limit(self):
        """5 searches per second, then 429 secondly body; no burst headers; exempt from 10 s."""
        self.f.ctl("POST", "config", {"searchPerSecond": 5, "burstLimit": 5})  # 4 creates used
        codes = []
        for _ in range(6):
            s, h, b = self.f.call("POST", "/crm/v3/objects/contacts/search", {})
            codes.append(s)
            self.assertFalse([k for k in h if k.startswith("x-hubspot-ratelimit")], h)
        self.assertEqual(codes, [200] * 5 + [429])
        self.assertEqual(set(b), {"status", "message", "correlationId", "category"})
        self.assertEqual((b["status"], b["message"], b["category"]),
                         ("error", "You have reached your secondly limit.", "RATE_LIMITS"))
        self.assertNotIn("retry-after", h)
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/contacts")[0], 200)
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/contacts")[0], 429)
        time.sleep(1.05)
        self.assertEqual(self.f.call("POST", "/crm/v3/objects/contacts/search", {})[0], 200)

    def test_association_filter_and_query(self):
        """associations.{type} pseudo-property and free-text query."""
        comp = self.create("companies", {"name": "Acme"})
        ann = self.f.ctl("GET", "records/contacts")["results"][0]["id"]
        self.f.call("PUT", "/crm/v4/objects/contacts/%s/associations/default/companies/%s"
                    % (ann, comp["id"]))
        got = self.ids("contacts", [{"propertyName": "associations.company", "operator": "EQ",
                                     "value": comp["id"]}])
        self.assertEqual(got, ["ann"])
        self.assertEqual(self.ids("contacts", [], query="bob"), ["bob"])


# ----- 7. associations v4 -----------------------------------------------------
class VersionAnswersTest(Base):
    """Answers per API version, admin validation rules, idProperty echo."""

    RULE = {"objectType": "deals", "propertyName": "amount", "ruleType": "MAX_NUMBER",
            "ruleArguments": ["1000"], "exceptWhenSet": ["dealtype"]}

    def upsert(self, version, inputs):
        """batch/upsert of deals by a unique property under one version."""
        base = "/crm/v3/objects" if version == "legacy" else "/crm/objects/" + version
        return self.f.call("POST", base + "/deals/batch/upsert", {"inputs": inputs})

    def test_errors_in_body_under_2026_09(self):
        """2026-09: 200 with errors/numErrors; 2026-03 and legacy: 207."""
        self.f.call("POST", "/crm/v3/properties/deals", {
            "name": "ext", "label": "Ext", "type": "string", "fieldType": "text",
            "groupName": "dealinformation", "hasUniqueValue": True})
        self.f.ctl("POST", "config", {"validationRules": [self.RULE]})
        for version, want in (("2026-09", 200), ("2026-03", 207), ("legacy", 207)):
            s, _, b = self.upsert(version, [
                {"id": version + "a", "idProperty": "ext", "objectWriteTraceId": "t1",
                 "properties": {"dealname": "ok", "amount": "5"}},
                {"id": version + "b", "idProperty": "ext", "objectWriteTraceId": "t2",
                 "properties": {"dealname": "big", "amount": "5000"}},
                {"id": version + "c", "idProperty": "ext", "objectWriteTraceId": "t3",
                 "properties": {"dealname": "big", "amount": "5000", "dealtype": "newbusiness"}}])
            self.assertEqual(s, want, (version, b))
            self.assertEqual(b["numErrors"], 1)
            self.assertEqual(sorted(r["objectWriteTraceId"] for r in b["results"]), ["t1", "t3"])
            e = b["errors"][0]
            self.assertEqual((e["category"], e["context"]), ("VALIDATION_ERROR", {"ids": [version + "b"]}))
            self.assertIn('"amount" failed validation rule MAX_NUMBER (1000)', e["message"])
        s, _, b = self.f.call("POST", "/crm/v3/objects/deals",
                              {"properties": {"dealname": "one", "amount": "2000"}})
        self.assertEqual(s, 400)
        self.assert_error(b, "VALIDATION_ERROR", "MAX_NUMBER")
        s, _, b = self.f.call("POST", "/_fake/config", {"validationRules": [{"objectType": "deals"}]},
                              token=None)
        self.assertEqual(s, 400)

    def test_echo_id_property(self):
        """echoIdProperty off: the idProperty value is not in upsert results."""
        self.f.call("POST", "/crm/v3/properties/deals", {
            "name": "ext", "label": "Ext", "type": "string", "fieldType": "text",
            "groupName": "dealinformation", "hasUniqueValue": True})
        inp = [{"id": "e1", "idProperty": "ext", "objectWriteTraceId": "t",
                "properties": {"dealname": "x", "ext": "e1"}}]
        self.assertEqual(self.upsert("2026-09", inp)[2]["results"][0]["properties"]["ext"], "e1")
        self.f.ctl("POST", "config", {"echoIdProperty": False})
        r = self.upsert("2026-09", inp)[2]["results"][0]
        self.assertNotIn("ext", r["properties"])
        self.assertEqual(r["objectWriteTraceId"], "t")

    def test_association_answers(self):
        """Invalid pairs per assocInvalidError; archives per version; unlabeled takes labels."""
        d = self.create("deals", {"dealname": "d"})["id"]
        co = self.create("companies", {"name": "co"})["id"]
        path = "/crm/associations/2026-09/deals/companies/batch/"
        ok = {"from": {"id": d}, "to": {"id": co},
              "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}
        bad = {"from": {"id": "999"}, "to": {"id": co},
               "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}]}
        s, _, b = self.f.call("POST", path + "create", {"inputs": [ok, bad]})
        self.assertEqual(s, 200, b)
        self.assertEqual(len(b["results"]), 1)
        self.assertEqual(b["errors"][0]["message"], "One or more associations are invalid")
        self.assertEqual(b["errors"][0]["context"], {"INVALID_OBJECT_IDS": ["DEAL=999 is not valid"]})
        s, _, b = self.f.call("POST", "/crm/v4/associations/deals/companies/batch/create",
                              {"inputs": [ok, bad]})
        self.assertEqual(s, 207)
        self.f.ctl("POST", "config", {"assocInvalidError": "named"})
        s, _, b = self.f.call("POST", path + "create", {"inputs": [bad]})
        self.assertEqual(b["errors"][0]["context"]["fromObjectId"], ["999"])
        self.f.ctl("POST", "config", {"assocInvalidError": "whole400"})
        s, _, b = self.f.call("POST", path + "create", {"inputs": [ok, bad]})
        self.assertEqual(s, 400)
        unl = {"from": {"id": d}, "to": {"id": co},
               "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}]}
        s, _, b = self.f.call("POST", path + "labels/archive", {"inputs": [unl]})
        self.assertEqual(s, 200)
        self.assertEqual((b["status"], b["results"]), ("COMPLETE", []))
        rec = self.f.ctl("GET", "records/deals/" + d)
        self.assertFalse(rec["associations"].get("companies"))
        s, _, b = self.f.call("POST", "/crm/v4/associations/deals/companies/batch/labels/archive",
                              {"inputs": [unl]})
        self.assertEqual((s, b), (204, None))

    def test_documented_shapes_per_version(self):
        """Answers as each version's OpenAPI document has them: association
        ids strings on dated paths (numbers on legacy v4), property batches
        200 with errors under 2026-09, associate/default never 207, batch
        error entries with errors[], schemas with allowsSensitiveProperties
        and no null description, subscription ids as strings."""
        d = self.create("deals", {"dealname": "d"})["id"]
        co = self.create("companies", {"name": "co"})["id"]
        inp = {"inputs": [{"from": {"id": d}, "to": {"id": co},
                           "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                      "associationTypeId": 5}]}]}
        for base, kind in (("/crm/associations/2026-09", str), ("/crm/associations/2026-03", str),
                           ("/crm/v4/associations", int)):
            r = self.f.call("POST", base + "/deals/companies/batch/create", inp)[2]["results"][0]
            self.assertIsInstance(r["toObjectId"], kind, base)
            self.assertIsInstance(r["fromObjectId"], kind, base)
            r = self.f.call("POST", base + "/deals/companies/batch/read",
                            {"inputs": [{"id": d}]})[2]["results"][0]
            self.assertIsInstance(r["to"][0]["toObjectId"], kind, base)
        for base in ("/crm/associations/2026-09", "/crm/associations/2026-03", "/crm/v4/associations"):
            s, _, b = self.f.call("POST", base + "/deals/companies/batch/associate/default",
                                  {"inputs": [{"from": {"id": d}, "to": {"id": "999"}}]})
            self.assertEqual((s, b["numErrors"]), (200, 1), base)
        for base, want in (("/crm/properties/2026-09", 200), ("/crm/properties/2026-03", 207)):
            name = "p" + base[-2:]
            s, _, b = self.f.call("POST", base + "/deals/batch/create", {"inputs": [
                {"name": name, "label": "P", "type": "string", "fieldType": "text",
                 "groupName": "dealinformation"},
                {"name": name + "x", "label": "P", "type": "nonsense", "fieldType": "text",
                 "groupName": "dealinformation"}]})
            self.assertEqual((s, b.get("numErrors")), (want, 1), (base, b))
            s, _, b = self.f.call("POST", base + "/deals/batch/read",
                                  {"inputs": [{"name": name}, {"name": "nope"}]})
            self.assertEqual(s, want, (base, b))
        self.f.call("POST", "/crm/v3/properties/deals", {
            "name": "ext", "label": "Ext", "type": "string", "fieldType": "text",
            "groupName": "dealinformation", "hasUniqueValue": True})
        self.create("deals", {"dealname": "x", "ext": "taken"})
        s, _, b = self.f.call("POST", "/crm/objects/2026-09/deals/batch/create", {"inputs": [
            {"objectWriteTraceId": "t", "properties": {"dealname": "y", "ext": "taken"}}]})
        self.assertEqual(b["errors"][0]["errors"], [], b)
        s, _, sch = self.f.call("POST", "/crm-object-schemas/2026-09/schemas", {
            "name": "cars", "labels": {"singular": "Car", "plural": "Cars"},
            "primaryDisplayProperty": "model", "requiredProperties": ["model"],
            "properties": [{"name": "model", "label": "Model", "type": "string",
                            "fieldType": "text"}]})
        self.assertEqual(s, 201, sch)
        self.assertIs(sch["allowsSensitiveProperties"], False)
        self.assertNotIn("description", sch)
        s, _, sub = self.f.call("POST", "/webhooks/v3/54321/subscriptions", {
            "eventType": "deal.propertyChange", "propertyName": "amount"})
        self.assertIsInstance(sub["id"], str)


class AssociationsTest(Base):
    """v4 association endpoints, labels table, toObjectId type, events."""

    def setUp(self):
        """Two contacts and a company."""
        super().setUp()
        self.c1 = self.create("contacts", {"email": "a1@example.com"})["id"]
        self.c2 = self.create("contacts", {"email": "a2@example.com"})["id"]
        self.co = self.create("companies", {"name": "Co"})["id"]

    def test_batch_create_read_archive(self):
        """batch/create 201, batch/read numbers, batch/archive 204."""
        s, _, b = self.f.call("POST", "/crm/v4/associations/contacts/companies/batch/create",
                              {"inputs": [{"from": {"id": self.c1}, "to": {"id": self.co},
                                           "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                      "associationTypeId": 279}]}]})
        self.assertEqual(s, 201, b)
        self.assertEqual(b["results"][0]["fromObjectTypeId"], "0-1")
        self.assertEqual(b["results"][0]["toObjectId"], int(self.co))
        s, _, r = self.f.call("POST", "/crm/v4/associations/contacts/companies/batch/read",
                              {"inputs": [{"id": self.c1}, {"id": self.c2}]})
        self.assertEqual(s, 207)
        self.assertEqual(r["results"], [{"from": {"id": self.c1}, "to": [
            {"toObjectId": int(self.co), "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}]}]}])
        self.assertEqual(r["errors"][0]["context"], {"fromObjectId": [self.c2]})
        back = self.f.call("POST", "/crm/v4/associations/companies/contacts/batch/read",
                           {"inputs": [{"id": self.co}]})[2]
        self.assertEqual(back["results"][0]["to"][0]["associationTypes"][0]["typeId"], 280)
        self.f.ctl("POST", "config", {"toObjectIdAsString": True})
        r = self.f.call("POST", "/crm/v4/associations/contacts/companies/batch/read",
                        {"inputs": [{"id": self.c1}]})[2]
        self.assertEqual(r["results"][0]["to"][0]["toObjectId"], self.co)
        s, _, _ = self.f.call("POST", "/crm/v4/associations/contacts/companies/batch/archive",
                              {"inputs": [{"from": {"id": self.c1}, "to": [{"id": self.co}]}]})
        self.assertEqual(s, 204)
        self.assertEqual(self.f.call("POST", "/crm/v4/associations/contacts/companies/batch/read",
                                     {"inputs": [{"id": self.c1}]})[0], 207)

    def test_default_labels_and_single_endpoints(self):
        """associate/default, labeled PUT, GET, labels archive, DELETE."""
        s, _, b = self.f.call("POST", "/crm/v4/associations/contacts/companies/batch/associate/"
                                      "default", {"inputs": [{"from": {"id": self.c2},
                                                              "to": {"id": self.co}}]})
        self.assertEqual(s, 200)
        self.assertEqual(b["results"][0]["associationSpec"],
                         {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279})
        s, _, b = self.f.call("PUT", "/crm/v4/objects/contacts/%s/associations/companies/%s"
                              % (self.c1, self.co),
                              [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}])
        self.assertEqual(s, 201)
        self.assertEqual(b["labels"], ["Primary"])
        s, _, g = self.f.call("GET", "/crm/v4/objects/contacts/%s/associations/companies"
                              % self.c1)
        self.assertEqual(sorted(t["typeId"] for t in g["results"][0]["associationTypes"]),
                         [1, 279])
        s, _, _ = self.f.call("POST", "/crm/v4/associations/contacts/companies/batch/labels/"
                                      "archive", {"inputs": [{"from": {"id": self.c1},
                                                              "to": {"id": self.co},
                                                              "types": [{"associationCategory":
                                                                         "HUBSPOT_DEFINED",
                                                                         "associationTypeId": 1}]}]})
        self.assertEqual(s, 204)
        g = self.f.call("GET", "/crm/v4/objects/contacts/%s/associations/companies" % self.c1)[2]
        self.assertEqual([t["typeId"] for t in g["results"][0]["associationTypes"]], [279])
        s, _, _ = self.f.call("PUT", "/crm/v4/objects/contacts/%s/associations/companies/%s"
                              % (self.c1, self.co),
                              [{"associationCategory": "HUBSPOT_DEFINED",
                                "associationTypeId": 3}])
        self.assertEqual(s, 400)   # 3 is deal->contact, not contact->company
        self.assertEqual(self.f.call("DELETE", "/crm/v4/objects/contacts/%s/associations/"
                                               "companies/%s" % (self.c1, self.co))[0], 204)
        self.assertEqual(self.f.call("GET", "/crm/v4/objects/contacts/%s/associations/companies"
                                     % self.c1)[2]["results"], [])
        s, _, d = self.f.call("PUT", "/crm/v4/objects/contacts/%s/associations/default/companies/"
                                     "%s" % (self.c1, self.co))
        self.assertEqual((s, d["status"]), (200, "COMPLETE"))
        got = self.f.call("GET", "/crm/v3/objects/contacts/%s?associations=companies" % self.c1)[2]
        self.assertEqual(got["associations"]["companies"]["results"][0]["id"], self.co)

    def test_labels_table(self):
        """The HUBSPOT_DEFINED ids of notes 9.2, incl. 542 and 393."""
        def ids(f, t):
            """Label table of one object pair: {typeId: (category, label)}."""
            s, _, b = self.f.call("GET", "/crm/v4/associations/%s/%s/labels" % (f, t))
            self.assertEqual(s, 200)
            return {x["typeId"]: (x["category"], x["label"]) for x in b["results"]}
        self.assertEqual(ids("contacts", "companies")[279], ("HUBSPOT_DEFINED", None))
        self.assertEqual(ids("contacts", "companies")[1], ("HUBSPOT_DEFINED", "Primary"))
        self.assertIn(542, ids("commerce_payments", "invoices"))
        self.assertIn(393, ids("commerce_payments", "subscriptions"))
        self.assertIn(3, ids("deals", "contacts"))
        self.assertIn(4, ids("contacts", "deals"))
        self.assertIn(19, ids("deals", "line_items"))
        self.assertIn(177, ids("invoices", "contacts"))
        self.assertIn(541, ids("0-53", "0-101"))
        s, _, lab = self.f.call("POST", "/crm/v4/associations/contacts/companies/labels",
                                {"label": "Billing", "name": "billing"})
        self.assertEqual(lab["results"][0]["category"], "USER_DEFINED")
        self.assertIn(lab["results"][0]["typeId"], ids("contacts", "companies"))

    def test_association_change_events(self):
        """API association changes emit contact./company.associationChange events."""
        self.f.call("PUT", "/crm/v4/objects/contacts/%s/associations/default/companies/%s"
                    % (self.c1, self.co))
        evs = [e for e in self.f.ctl("GET", "webhooks/events")["events"]
               if e["subscriptionType"].endswith("associationChange")]
        self.assertEqual(sorted(e["subscriptionType"] for e in evs),
                         ["company.associationChange", "contact.associationChange"])
        c = [e for e in evs if e["subscriptionType"] == "contact.associationChange"][0]
        self.assertEqual((c["associationType"], c["fromObjectId"], c["toObjectId"],
                          c["associationRemoved"], c["isPrimaryAssociation"], c["changeSource"]),
                         ("CONTACT_TO_COMPANY", int(self.c1), int(self.co), False, False,
                          "INTEGRATION"))
        self.f.ctl("POST", "ui/associations", {"fromObjectType": "contacts",
                                               "fromObjectId": self.c1,
                                               "toObjectType": "companies", "toObjectId": self.co,
                                               "remove": True})
        last = self.f.ctl("GET", "webhooks/events")["events"][-1]
        self.assertEqual((last["associationRemoved"], last["changeSource"]), (True, "CRM_UI"))


# ----- 8. auth ---------------------------------------------------------------------
class AuthTest(Base):
    """Bearer tokens and OAuth (notes 1)."""

    def token(self, path="/oauth/v1/token", **over):
        """POST a refresh grant -> (status, body)."""
        form = dict(grant_type="refresh_token", client_id="hubsync-client-id",
                    client_secret="hubsync-oauth-secret", refresh_token="hubsync-refresh-token")
        form.update(over)
        body = "&".join("%s=%s" % kv for kv in form.items())
        s, _, b = self.f.raw("POST", path, body,
                             {"Content-Type": "application/x-www-form-urlencoded"})
        return s, json.loads(b)

    def test_missing_and_bad_token(self):
        """401 INVALID_AUTHENTICATION with x-hubspot-auth-failure."""
        for token in (None, "wrong"):
            s, h, b = self.f.call("GET", "/crm/v3/objects/contacts", token=token)
            self.assertEqual(s, 401)
            self.assert_error(b, "INVALID_AUTHENTICATION", r"^Authentication credentials not found")
            self.assertEqual(h["x-hubspot-auth-failure"], "401 Unauthorized")
        self.assertEqual(self.f.ctl("GET", "counters")["rateLimit"]["daily"], 0)

    def test_oauth_refresh_and_expiry(self):
        """Refresh grant -> AccessTokenResponse; token works until expiry, then 401."""
        self.f.ctl("POST", "config", {"oauthExpiresIn": 1})
        for path in ("/oauth/v1/token", "/oauth/v3/token"):
            s, b = self.token(path)
            self.assertEqual(s, 200, b)
            for key in ("access_token", "expires_in", "refresh_token", "token_type",
                        "token_use", "hub_id"):
                self.assertIn(key, b)
            self.assertEqual((b["token_type"], b["expires_in"], b["hub_id"], b["token_use"]),
                             ("bearer", 1, 62515, "access_token"))
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/contacts",
                                     token=b["access_token"])[0], 200)
        time.sleep(1.1)
        s, _, e = self.f.call("GET", "/crm/v3/objects/contacts", token=b["access_token"])
        self.assertEqual(s, 401)
        self.assert_error(e, "EXPIRED_AUTHENTICATION", r"^The OAuth token used to make this "
                                                      r"call expired \d+ second\(s\) ago\.$")
        self.assertIn("expire time", e["context"])
        self.f.ctl("POST", "reset")
        s, b = self.token()
        self.assertEqual(b["expires_in"], 1800)
        self.f.ctl("POST", "oauth/expire", {})
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/contacts",
                                     token=b["access_token"])[0], 401)

    def test_oauth_errors(self):
        """Bad refresh token -> 400 BAD_REFRESH_TOKEN; bad client -> 400."""
        s, b = self.token(refresh_token="nope")
        self.assertEqual(s, 400)
        self.assertEqual((b["status"], b["message"], b["error"]),
                         ("BAD_REFRESH_TOKEN", "missing or unknown refresh token", "invalid_grant"))
        self.assertIn("correlationId", b)
        self.assertEqual(b["error_description"], b["message"])
        self.assertEqual(self.token(client_secret="x")[0], 400)
        self.assertEqual(self.token(client_id="x")[1]["status"], "BAD_CLIENT_ID")
        self.f.ctl("POST", "config", {"oauthRefreshToken": "rt-2"})
        self.assertEqual(self.token(refresh_token="rt-2")[0], 200)


# ----- 9. rate limits ---------------------------------------------------------------
class RateLimitTest(Base):
    """10-second window, daily limit, headers, 429 bodies (notes 11)."""

    def test_burst_window(self):
        """N per window, then TEN_SECONDLY_ROLLING 429; headers count down."""
        self.f.ctl("POST", "config", {"burstLimit": 3, "burstWindowMs": 1000})
        rem = []
        for _ in range(3):
            s, h, _ = self.f.call("GET", "/crm/v3/objects/deals")
            self.assertEqual(s, 200)
            rem.append(h["x-hubspot-ratelimit-remaining"])
            self.assertEqual(h["x-hubspot-ratelimit-max"], "3")
            self.assertEqual(h["x-hubspot-ratelimit-interval-milliseconds"], "1000")
            self.assertEqual(h["x-hubspot-ratelimit-daily"], "1000000")
            self.assertIn("x-hubspot-ratelimit-daily-remaining", h)
            self.assertIn("x-hubspot-ratelimit-secondly", h)
        self.assertEqual(rem, ["2", "1", "0"])
        s, h, b = self.f.call("GET", "/crm/v3/objects/deals")
        self.assertEqual(s, 429)
        self.assertEqual(set(b), {"status", "message", "errorType", "correlationId",
                                  "policyName", "groupName"})
        self.assertEqual((b["status"], b["message"], b["errorType"], b["policyName"]),
                         ("error", "You have reached your ten_secondly_rolling limit.",
                          "RATE_LIMIT", "TEN_SECONDLY_ROLLING"))
        self.assertNotIn("retry-after", h)
        time.sleep(1.05)
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/deals")[0], 200)
        c = self.f.ctl("GET", "counters")["rateLimit"]
        self.assertEqual((c["maxRequestsIn10s"], c["rateLimited"]["TEN_SECONDLY_ROLLING"]), (4, 1))

    def test_rejected_requests_count(self):
        """A 429'd request still counts in the window (rateLimitCountsRejected)."""
        self.f.ctl("POST", "config", {"burstLimit": 2, "burstWindowMs": 600})
        self.f.call("GET", "/crm/v3/objects/deals")
        time.sleep(0.3)
        self.f.call("GET", "/crm/v3/objects/deals")
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/deals")[0], 429)   # t=0.3
        time.sleep(0.35)   # first request left the window, the 429 has not
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/deals")[0], 429)

    def test_daily_limit_and_oauth_headers(self):
        """DAILY 429 body; oauth tier drops the Daily headers."""
        self.f.ctl("POST", "config", {"dailyLimit": 2})
        self.f.call("GET", "/crm/v3/objects/deals")
        self.f.call("GET", "/crm/v3/objects/deals")
        s, _, b = self.f.call("GET", "/crm/v3/objects/deals")
        self.assertEqual(s, 429)
        self.assertEqual((b["policyName"], b["message"], b["errorType"]),
                         ("DAILY", "You have reached your daily limit.", "RATE_LIMIT"))
        self.assertIn("requestId", b)
        self.f.ctl("POST", "reset")
        self.f.ctl("POST", "config", {"tier": "oauth"})
        s, h, _ = self.f.call("GET", "/crm/v3/objects/deals")
        self.assertEqual(h["x-hubspot-ratelimit-max"], "110")
        self.assertNotIn("x-hubspot-ratelimit-daily", h)


# ----- 10. latency and faults ---------------------------------------------------------
class FaultTest(Base):
    """latency, scripted faults, probabilities."""

    def test_latency_is_per_request_and_concurrent(self):
        """latencyMs delays each call; parallel calls overlap."""
        self.f.ctl("POST", "config", {"latencyMs": 300, "latencyJitterMs": 50})
        t = time.monotonic()
        self.f.call("GET", "/crm/v3/objects/deals")
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        t = time.monotonic()

        def one():
            """One GET on its own connection."""
            c = http.client.HTTPConnection("127.0.0.1", self.f.port, timeout=5)
            c.request("GET", "/crm/v3/objects/deals", headers={"Authorization": "Bearer " + TOKEN})
            c.getresponse().read()
            c.close()
        threads = [threading.Thread(target=one) for _ in range(4)]
        [x.start() for x in threads]
        [x.join() for x in threads]
        self.assertLess(time.monotonic() - t, 0.9)

    def test_status_faults(self):
        """Queued status faults match by path and count, with HubSpot-like bodies."""
        self.f.ctl("POST", "faults", {"queue": [
            {"status": 429, "policy": "TEN_SECONDLY_ROLLING", "match": "/batch/upsert",
             "count": 2},
            {"status": 423, "match": "/crm/v3/objects/deals"},
            {"status": 477, "retryAfter": 7, "match": "/crm/v3/objects/deals"},
            {"status": 500}, {"status": 502}, {"status": 503}, {"status": 504}]})
        up = {"inputs": [{"id": "f@example.com", "idProperty": "email", "properties": {}}]}
        for _ in range(2):
            s, _, b = self.f.call("POST", "/crm/v3/objects/contacts/batch/upsert", up)
            self.assertEqual((s, b["policyName"]), (429, "TEN_SECONDLY_ROLLING"))
        s, _, b = self.f.call("GET", "/crm/v3/objects/deals")
        self.assertEqual(s, 423)
        s, h, b = self.f.call("GET", "/crm/v3/objects/deals")
        self.assertEqual((s, h["retry-after"]), (477, "7"))
        for want in (500, 502, 503, 504):
            s, h, raw = self.f.raw("GET", "/crm/v3/objects/companies", None,
                                   {"Authorization": "Bearer " + TOKEN})
            self.assertEqual(s, want)
        self.assertEqual(self.f.call("POST", "/crm/v3/objects/contacts/batch/upsert", up)[0], 200)
        self.assertEqual(self.f.ctl("GET", "faults")["queue"], [])
        log = self.f.ctl("GET", "requests")["requests"]
        self.assertEqual(log[0]["fault"], "status:429")

    def test_apply_then_fail(self):
        """apply: the write happens, the answer is an error (duplicate-risk drills)."""
        self.f.ctl("POST", "faults", {"queue": [{"status": 504, "apply": True}]})
        s, _, _ = self.f.raw("POST", "/crm/v3/objects/contacts",
                             json.dumps({"properties": {"email": "ap@example.com"}}),
                             {"Authorization": "Bearer " + TOKEN})
        self.assertEqual(s, 504)
        self.assertEqual(self.f.ctl("GET", "records/contacts")["total"], 1)

    def test_hang_reset_malformed(self):
        """hang until the client times out; reset = RST; malformed JSON body."""
        self.f.ctl("POST", "faults", {"queue": [{"hang": True}, {"reset": True},
                                                {"malformed": True}]})
        c = http.client.HTTPConnection("127.0.0.1", self.f.port, timeout=0.5)
        t = time.monotonic()
        with self.assertRaises(socket.timeout):
            c.request("GET", "/crm/v3/objects/deals", headers={"Authorization": "Bearer " + TOKEN})
            c.getresponse()
        self.assertGreaterEqual(time.monotonic() - t, 0.45)
        c.close()
        c = http.client.HTTPConnection("127.0.0.1", self.f.port, timeout=5)
        with self.assertRaises((ConnectionResetError, http.client.RemoteDisconnected)) as cm:
            c.request("GET", "/crm/v3/objects/deals", headers={"Authorization": "Bearer " + TOKEN})
            c.getresponse()
        self.assertIsInstance(cm.exception, ConnectionResetError)
        c.close()
        s, h, raw = self.f.raw("GET", "/crm/v3/objects/deals", None,
                               {"Authorization": "Bearer " + TOKEN})
        self.assertEqual(s, 200)
        self.assertEqual(int(h["content-length"]), len(raw))
        with self.assertRaises(ValueError):
            json.loads(raw)
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/deals")[0], 200)

    def test_hang_is_bounded(self):
        """A hang ends after hangMaxMs (never forever)."""
        self.f.ctl("POST", "config", {"hangMaxMs": 300})
        self.f.ctl("POST", "faults", {"queue": [{"hang": True}]})
        c = http.client.HTTPConnection("127.0.0.1", self.f.port, timeout=5)
        t = time.monotonic()
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            c.request("GET", "/crm/v3/objects/deals", headers={"Authorization": "Bearer " + TOKEN})
            c.getresponse()
        self.assertLess(time.monotonic() - t, 2)
        c.close()

    def test_partial_207(self):
        """partial207 fails every other input of a batch with the given category."""
        self.f.ctl("POST", "faults", {"queue": [{"partial207": True, "category": "LOCKED"}]})
        s, _, b = self.f.call("POST", "/crm/v3/objects/contacts/batch/upsert", {"inputs": [
            {"id": "p%d@example.com" % i, "idProperty": "email", "properties": {}}
            for i in range(4)]})
        self.assertEqual(s, 207)
        self.assertEqual(len(b["results"]), 2)
        self.assertEqual([e["context"]["ids"] for e in b["errors"]],
                         [["p1@example.com"], ["p3@example.com"]])
        self.assertEqual(b["errors"][0]["category"], "LOCKED")
        self.assertEqual(self.f.ctl("GET", "records/contacts")["total"], 2)

    def test_probabilities(self):
        """probability faults fire at about the given rate (seeded)."""
        self.f.ctl("POST", "config", {"randomSeed": 7, "burstLimit": 1000})
        self.f.ctl("POST", "faults", {"probability": {"500": 0.3, "429": 0.2}})
        codes = [self.f.call("GET", "/crm/v3/objects/deals")[0] for _ in range(200)]
        self.assertTrue(30 <= codes.count(500) <= 90, codes.count(500))
        self.assertTrue(15 <= codes.count(429) <= 65, codes.count(429))
        self.assertEqual(codes.count(200) + codes.count(500) + codes.count(429), 200)
        self.assertEqual(self.f.call("POST", "/_fake/faults", {"probability": {"999": 1}},
                                     token=None)[0], 400)
        self.f.call("DELETE", "/_fake/faults", token=None)
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/deals")[0], 200)


# ----- 11. webhooks ---------------------------------------------------------------------
class Receiver:
    """A tiny webhook receiver that records requests and answers per a policy."""

    def __init__(self, statuses=(), delay=0.0, delays=()):
        """statuses: answers for the first requests (then 200); delay(s): seconds to wait."""
        self.requests = []
        self.statuses = list(statuses)
        self.delays = list(delays)
        self.delay = delay
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            """Request handler of the receiver."""
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                """Keep the test output quiet."""
                pass

            def do_POST(self):
                """Record the delivery, then answer per the policy."""
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.inflight += 1
                    outer.max_inflight = max(outer.max_inflight, outer.inflight)
                    n = len(outer.requests)
                    outer.requests.append((self.path, dict(self.headers), body, time.time()))
                    status = outer.statuses[n] if n < len(outer.statuses) else 200
                    delay = outer.delays[n] if n < len(outer.delays) else outer.delay
                time.sleep(delay)
                with outer.lock:
                    outer.inflight -= 1
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/hubspot/webhooks?tenant=acme%%3Aprod" % (
            self.server.server_address[1])

    def events(self):
        """All delivered events in arrival order."""
        return [e for _, _, body, _ in self.requests for e in json.loads(body)]

    def close(self):
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()


def independent_v3(secret, url, body, ts):
    """v3 signature computed here, independently of the fake's code."""
    signed = url.replace("%3A", ":")
    mac = hmac.new(secret.encode(), ("POST" + signed).encode() + body + ts.encode(),
                   hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class WebhookTest(Base):
    """Delivery, signatures, retries, batching, event fields (notes 12-13)."""

    def hook(self, rx, **cfg):
        """Point the fake at a receiver with a fast retry schedule."""
        base = {"webhookUrl": rx.url, "webhookRetryDelaysMs": [100, 150, 200]}
        base.update(cfg)
        self.f.ctl("POST", "config", base)
        self.addCleanup(rx.close)

    def flush(self, timeout=10000):
        """Wait for deliveries; assert they all finished."""
        out = self.f.ctl("POST", "webhooks/flush", {"timeoutMs": timeout})
        self.assertTrue(out["done"], out)

    def test_signed_delivery_with_retry(self):
        """500 first -> retried with attemptNumber 1; v3 and v1 signatures verify."""
        rx = Receiver(statuses=[500])
        self.hook(rx)
        rec = self.create("contacts", {"email": "wh@example.com"})
        self.flush()
        self.assertEqual(len(rx.requests), 2)
        first, second = [json.loads(r[2]) for r in rx.requests]
        self.assertEqual([e["eventId"] for e in first], [e["eventId"] for e in second])
        self.assertEqual({e["attemptNumber"] for e in first}, {0})
        self.assertEqual({e["attemptNumber"] for e in second}, {1})
        for path, headers, body, at in rx.requests:
            h = {k.lower(): v for k, v in headers.items()}
            self.assertEqual(path, "/hubspot/webhooks?tenant=acme%3Aprod")
            self.assertEqual(h["content-type"], "application/json")
            ts = h["x-hubspot-request-timestamp"]
            self.assertLess(abs(int(ts) - at * 1000), 5000)
            self.assertEqual(h["x-hubspot-signature-v3"],
                             independent_v3("hubsync-test-secret", rx.url, body, ts))
            self.assertEqual(h["x-hubspot-signature-version"], "v1")
            self.assertEqual(h["x-hubspot-signature"],
                             hashlib.sha256(b"hubsync-test-secret" + body).hexdigest())
        created = [e for e in second if e["subscriptionType"] == "contact.creation"][0]
        self.assertEqual(list(created), ["eventId", "subscriptionId", "portalId", "appId",
                                         "occurredAt", "subscriptionType", "attemptNumber",
                                         "objectId", "changeFlag", "changeSource", "sourceId"])
        self.assertEqual((created["objectId"], created["portalId"], created["appId"],
                          created["changeFlag"], created["changeSource"], created["sourceId"]),
                         (int(rec["id"]), 62515, 54321, "CREATED", "INTEGRATION", "54321"))
        self.assertIsInstance(created["occurredAt"], int)
        prop = [e for e in second if e["subscriptionType"] == "contact.propertyChange"][0]
        self.assertEqual((prop["propertyName"], prop["propertyValue"]),
                         ("email", "wh@example.com"))
        w = self.f.ctl("GET", "counters")["webhooks"]
        self.assertEqual((w["deliveriesFailed"], w["deliveriesRetried"], w["deliveriesSucceeded"]),
                         (1, 1, 1))
        self.f.ctl("POST", "config", {"webhookSignatureV1": False, "clientSecret": "other"})
        self.create("contacts", {"email": "wh2@example.com"})
        self.flush()
        h = {k.lower(): v for k, v in rx.requests[-1][1].items()}
        self.assertNotIn("x-hubspot-signature", h)
        self.assertEqual(h["x-hubspot-signature-v3"],
                         independent_v3("other", rx.url, rx.requests[-1][2],
                                        h["x-hubspot-request-timestamp"]))

    def test_batches_and_concurrency(self):
        """<= webhookBatchMax events per POST, <= webhookConcurrency in flight."""
        rx = Receiver(delay=0.3)
        self.hook(rx, webhookBatchMax=20, webhookConcurrency=3)
        self.f.call("POST", "/crm/v3/objects/tickets/batch/create",
                    {"inputs": [{"properties": {"subject": "s%d" % i}} for i in range(60)]})
        self.flush()
        sizes = [len(json.loads(r[2])) for r in rx.requests]
        self.assertEqual(sum(sizes), 120)
        self.assertLessEqual(max(sizes), 20)
        self.assertEqual(rx.max_inflight, 3)
        ids = [e["eventId"] for e in rx.events()]
        self.assertEqual(len(set(ids)), 120)

    def test_timeout_and_connection_failure(self):
        """A slow receiver (> webhookTimeoutMs) and a closed port are failures, retried."""
        rx = Receiver(delays=[1.0])
        self.hook(rx, webhookTimeoutMs=300)
        self.create("deals", {"dealname": "slow"})
        self.flush()
        attempts = sorted({e["attemptNumber"] for e in rx.events()})
        self.assertEqual(attempts, [0, 1])
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        dead = "http://127.0.0.1:%d/hook" % s.getsockname()[1]
        s.close()
        self.f.ctl("POST", "reset")
        self.f.ctl("POST", "config", {"webhookUrl": dead, "webhookRetries": 2,
                                      "webhookRetryDelaysMs": [50]})
        self.create("deals", {"dealname": "nobody"})
        self.flush()
        d = self.f.ctl("GET", "webhooks/deliveries")["deliveries"]
        self.assertEqual([x["attempt"] for x in d], [0, 1, 2])
        self.assertTrue(all(x["status"] is None and x["error"] for x in d))
        self.assertEqual(self.f.ctl("GET", "counters")["webhooks"]["deliveriesDropped"], 1)

    def test_duplicates_shuffle_delay(self):
        """Duplicate, shuffled and delayed deliveries when configured."""
        rx = Receiver()
        self.hook(rx, webhookDuplicateProbability=1.0, webhookShuffle=True,
                  webhookDelayMs=300, randomSeed=3)
        t = time.time()
        self.f.call("POST", "/crm/v3/objects/deals/batch/create",
                    {"inputs": [{"properties": {"dealname": "d%d" % i}} for i in range(20)]})
        self.flush()
        ids = [e["eventId"] for e in rx.events()]
        self.assertEqual(len(ids), 80)
        self.assertEqual(len(set(ids)), 40)
        self.assertGreaterEqual(rx.requests[0][3] - t, 0.28)
        self.assertNotEqual(ids[:40], sorted(ids[:40]))

    def test_event_kinds_and_sources(self):
        """UI/import/workflow actions, deletes, restores, merges, GDPR, object.* types."""
        c = self.f.ctl("POST", "ui/contacts", {"properties": {"email": "ui@example.com"},
                                               "changeSource": "IMPORT"})
        cid = int(c["id"])
        self.f.ctl("POST", "ui/contacts/%d" % cid, {"properties": {"firstname": "Rep"},
                                                     "userId": 42})
        self.f.ctl("POST", "ui/contacts/%d" % cid, {"properties": {"jobtitle": "Boss"},
                                                     "changeSource": "WORKFLOWS",
                                                     "sourceId": "workflow:7"})
        self.f.ctl("POST", "ui/contacts/%d/delete" % cid)
        self.f.ctl("POST", "ui/contacts/%d/restore" % cid)
        other = int(self.create("contacts", {"email": "o2@example.com"})["id"])
        merged = int(self.f.ctl("POST", "ui/contacts/merge", {"primaryObjectId": cid,
                                                              "objectIdToMerge": other})["id"])
        self.f.ctl("POST", "ui/contacts/%d/gdpr-delete" % merged)
        inv = int(self.create("invoices", {"hs_currency": "EUR"})["id"])
        li = int(self.create("line_items", {"name": "x"})["id"])
        ev = self.f.ctl("GET", "webhooks/events")["events"]
        kinds = [(e["subscriptionType"], e.get("changeSource"), e.get("sourceId")) for e in ev]
        self.assertIn(("contact.creation", "IMPORT", "userId:76023669"), kinds)
        self.assertIn(("contact.propertyChange", "CRM_UI", "userId:42"), kinds)
        self.assertIn(("contact.propertyChange", "WORKFLOWS", "workflow:7"), kinds)
        self.assertIn(("contact.deletion", "CRM_UI", "userId:76023669"), kinds)
        self.assertIn(("contact.restore", "CRM_UI", "userId:76023669"), kinds)
        m = [e for e in ev if e["subscriptionType"] == "contact.merge"][0]
        self.assertEqual((m["primaryObjectId"], m["mergedObjectIds"], m["newObjectId"],
                          m["objectId"]), (cid, [other], merged, merged))
        self.assertIsInstance(m["numberOfPropertiesMoved"], int)
        p = [e for e in ev if e["subscriptionType"] == "contact.privacyDeletion"][0]
        self.assertEqual(p["objectId"], merged)
        o = [e for e in ev if e["subscriptionType"] == "object.creation"][0]
        self.assertEqual((o["objectTypeId"], o["objectId"]), ("0-53", inv))
        self.assertIn(("line_item.creation", "INTEGRATION", "54321"), kinds)
        self.assertEqual([e for e in ev if e.get("objectId") == li and
                          e["subscriptionType"] == "line_item.creation"][0]["changeFlag"],
                         "CREATED")
        pc = [e for e in ev if e["subscriptionType"] == "contact.propertyChange" and
              e["changeSource"] == "CRM_UI"][0]
        self.assertEqual((pc["propertyName"], pc["propertyValue"]), ("firstname", "Rep"))
        self.assertNotIn("lastmodifieddate", [e.get("propertyName") for e in ev])

    def test_subscriptions_and_source_id(self):
        """webhookSubscriptions filters events; apiSourceId shapes sourceId."""
        self.f.ctl("POST", "config", {"webhookSubscriptions": [
            "deal.creation", {"eventType": "deal.propertyChange", "propertyName": "amount"}],
            "apiSourceId": "app:{appId}", "apiChangeSource": "API"})
        self.create("deals", {"dealname": "n", "amount": "5"})
        self.create("contacts", {"email": "s@example.com"})
        ev = self.f.ctl("GET", "webhooks/events")["events"]
        self.assertEqual(sorted((e["subscriptionType"], e.get("propertyName")) for e in ev),
                         [("deal.creation", None), ("deal.propertyChange", "amount")])
        self.assertEqual({(e["changeSource"], e["sourceId"]) for e in ev}, {("API", "app:54321")})
        self.assertEqual(len({e["subscriptionId"] for e in ev}), 2)

    def test_management_api(self):
        """/webhooks/v3/{appId}: settings set the target; subscriptions filter events."""
        rx = Receiver()
        self.addCleanup(rx.close)
        base = "/webhooks/v3/54321"
        key = "?hapikey=hubsync-developer-key"
        self.assertEqual(self.f.call("GET", base + "/settings" + key, token=None)[0], 404)
        self.assertEqual(self.f.call("GET", base + "/settings?hapikey=bad", token=None)[0], 401)
        self.assertEqual(self.f.call("GET", "/webhooks/v3/1/settings" + key, token=None)[0], 404)
        s, _, st = self.f.call("PUT", base + "/settings" + key, {
            "targetUrl": rx.url, "throttling": {"maxConcurrentRequests": 4}}, token=None)
        self.assertEqual((s, st["targetUrl"], st["throttling"]["maxConcurrentRequests"]),
                         (200, rx.url, 4))
        self.assertEqual(self.f.ctl("GET", "config")["webhookConcurrency"], 4)
        s, _, sub = self.f.call("POST", base + "/subscriptions", {
            "eventType": "deal.propertyChange", "propertyName": "amount"})   # bearer works too
        self.assertEqual((s, sub["active"]), (201, False))
        self.assertEqual(self.f.call("POST", base + "/subscriptions", {
            "eventType": "deal.propertyChange"})[0], 400)
        self.create("deals", {"dealname": "quiet", "amount": "1"})
        self.flush()
        self.assertEqual(rx.requests, [])                 # paused subscription: nothing
        s, _, b = self.f.call("POST", base + "/subscriptions/batch/update",
                              {"inputs": [{"id": int(sub["id"]), "active": True}]})
        self.assertEqual((s, b["results"][0]["active"]), (200, True))
        self.create("deals", {"dealname": "loud", "amount": "2"})
        self.flush()
        evs = rx.events()
        self.assertEqual([(e["subscriptionType"], e["propertyName"], e["subscriptionId"])
                          for e in evs], [("deal.propertyChange", "amount", int(sub["id"]))])
        lst = self.f.call("GET", base + "/subscriptions")[2]["results"]
        self.assertEqual([x["id"] for x in lst], [sub["id"]])
        self.assertEqual(self.f.call("DELETE", base + "/subscriptions/%s" % sub["id"])[0], 204)
        self.assertEqual(self.f.call("DELETE", base + "/settings")[0], 204)
        self.assertIsNone(self.f.ctl("GET", "config")["webhookUrl"])

    def test_pending_and_no_url(self):
        """No webhookUrl: nothing is queued; pending reports counts."""
        self.create("contacts", {"email": "q@example.com"})
        pend = self.f.ctl("GET", "webhooks/pending")
        self.assertEqual(pend["total"], 0)
        self.assertEqual(self.f.ctl("GET", "counters")["webhooks"]["deliveriesSent"], 0)
        rx = Receiver(delay=0.5)
        self.hook(rx, webhookDelayMs=200)
        self.create("contacts", {"email": "q2@example.com"})
        self.assertGreater(self.f.ctl("GET", "webhooks/pending")["total"], 0)
        self.flush()
        self.assertEqual(self.f.ctl("GET", "webhooks/pending")["total"], 0)


# ----- signatures -----------------------------------------------------------------------
class SignatureVectorTest(unittest.TestCase):
    """The fake's one signing function reproduces every vector."""

    def test_every_vector(self):
        """v1, v2, v3 vectors including the URI-decoding one."""
        self.assertTrue(os.path.exists(VECTORS),
                        "signature vectors not found at %s"
                        % VECTORS)
        sys.path.insert(0, os.path.join(REPO, "test"))
        from fakehub.signature import sign
        with open(VECTORS, encoding="utf-8") as f:
            vectors = json.load(f)["vectors"]
        self.assertGreaterEqual(len(vectors), 9)
        versions = set()
        for v in vectors:
            versions.add(v["version"])
            self.assertEqual(len(v["body"].encode("utf-8")), v["body_utf8_bytes"], v["name"])
            got = sign(v["version"], v["secret"], v["method"], v["uri"], v["body"],
                       v.get("timestamp"))
            self.assertEqual(got, v["expected"], v["name"])
            if "uri_as_received" in v:
                got = sign(v["version"], v["secret"], v["method"], v["uri_as_received"],
                           v["body"].encode("utf-8"), v.get("timestamp"))
                self.assertEqual(got, v["expected"], v["name"] + " (as received)")
                self.assertNotEqual(v["expected_if_not_decoded"], got)
        self.assertEqual(versions, {"v1", "v2", "v3"})


class UiControlTest(Base):
    """The /_fake/ui/ actions change the store like a rep would."""

    def test_ui_lifecycle(self):
        """create, update, delete, restore, merge via ui/ paths."""
        a = self.f.ctl("POST", "ui/companies", {"properties": {"name": "UI Co"}})
        self.assertEqual(a["properties"]["name"], "UI Co")
        up = self.f.ctl("POST", "ui/companies/" + a["id"], {"properties": {"domain": "ui.test"}})
        self.assertEqual(up["changed"], ["domain"])
        self.f.ctl("POST", "ui/companies/%s/delete" % a["id"])
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/companies/" + a["id"])[0], 404)
        self.f.ctl("POST", "ui/companies/%s/restore" % a["id"])
        got = self.f.call("GET", "/crm/v3/objects/companies/%s?properties=domain" % a["id"])[2]
        self.assertEqual(got["properties"]["domain"], "ui.test")
        s, _, _ = self.f.call("POST", "/_fake/ui/companies/%s/restore" % a["id"], {}, token=None)
        self.assertEqual(s, 404)   # not archived any more
        self.assertEqual(self.f.call("POST", "/_fake/ui/companies/" + a["id"],
                                     {"properties": {"nope": "1"}}, token=None)[0], 400)
        b = self.f.ctl("POST", "ui/companies", {"properties": {"name": "B"}})
        m = self.f.ctl("POST", "ui/companies/merge", {"primaryObjectId": a["id"],
                                                      "objectIdToMerge": b["id"]})
        self.assertEqual(self.f.call("GET", "/crm/v3/objects/companies/" + b["id"])[2]["id"],
                         m["id"])
        rec = self.f.ctl("GET", "records/companies/" + b["id"])
        self.assertEqual(rec["mergedInto"], m["id"])

    def test_unknown_path_and_method(self):
        """404 for an unknown path, 405 for a known path with another method."""
        self.assertEqual(self.f.call("GET", "/crm/v3/nothing/here")[0], 404)
        self.assertEqual(self.f.call("PUT", "/crm/v3/objects/contacts", {})[0], 405)
        self.assertEqual(self.f.call("GET", "/crm/v3/nothing/here", token=None)[0], 401)

    def test_date_versioned_path(self):
        """/crm/objects/2026-03/{t} answers like /crm/v3/objects/{t}."""
        rec = self.create("contacts", {"email": "dv@example.com"})
        s, _, got = self.f.call("GET", "/crm/objects/2026-03/contacts/" + rec["id"])
        self.assertEqual((s, got["id"]), (200, rec["id"]))



# ----- API version families -------------------------------------------------
class VersionsTest(Base):
    """The three families (2026-09, 2026-03, legacy) on the published paths,
    apiFamilies, and the request log's path / rawPath / apiVersion."""

    def test_families_and_log(self):
        """Each family's paths answer; the log keeps the numbered path."""
        a = self.create("contacts", {"email": "v1@example.com"})
        b = self.create("companies", {"name": "B"})
        seq = self.f.ctl("GET", "requests")["lastSeq"]
        for v in ("2026-09", "2026-03"):
            s, _, got = self.f.call("GET", "/crm/objects/%s/contacts/%s" % (v, a["id"]))
            self.assertEqual((s, got["id"]), (200, a["id"]))
            s, _, got = self.f.call("PUT", "/crm/objects/%s/contacts/%s/associations/default/"
                                    "companies/%s" % (v, a["id"], b["id"]))
            self.assertEqual(s, 200, got)
            s, _, got = self.f.call("POST", "/crm/associations/%s/contacts/companies/batch/read"
                                    % v, {"inputs": [{"id": a["id"]}]})
            self.assertIn(s, (200, 207), got)
            for path in ("/crm/associations/%s/contacts/companies/labels",
                         "/crm/properties/%s/contacts/email", "/crm-object-schemas/%s/schemas",
                         "/crm/owners/%s", "/crm/pipelines/%s/deals"):
                s, _, got = self.f.call("GET", path % v)
                self.assertEqual(s, 200, (path, got))
        for path in ("/crm/associations/v4/contacts/companies/labels", "/crm/v3/owners",
                     "/crm-object-schemas/v3/schemas", "/crm/v3/schemas",
                     "/crm/v3/pipelines/tickets/0/stages"):
            self.assertEqual(self.f.call("GET", path)[0], 200, path)
        log = self.f.ctl("GET", "requests?since=%d" % seq)["requests"]
        first = log[0]
        self.assertEqual((first["path"], first["rawPath"], first["apiVersion"]),
                         ("/crm/v3/objects/contacts/" + a["id"],
                          "/crm/objects/2026-09/contacts/" + a["id"], "2026-09"))
        self.assertEqual(first["endpoint"], "GET /crm/v3/objects/contacts/{objectId}")
        self.assertEqual(log[1]["path"], "/crm/v4/objects/contacts/%s/associations/default/"
                         "companies/%s" % (a["id"], b["id"]))
        self.assertEqual(log[-1]["apiVersion"], "legacy")

    def test_api_families(self):
        """A family the fake does not serve answers 404 OBJECT_NOT_FOUND."""
        self.f.ctl("POST", "config", {"apiFamilies": ["2026-03"]})
        self.assertEqual(self.f.call("GET", "/crm/objects/2026-03/contacts")[0], 200)
        for path in ("/crm/objects/2026-09/contacts", "/crm/v3/objects/contacts",
                     "/crm/objects/2025-09/contacts", "/crm/associations/v4/contacts/companies/labels"):
            s, _, body = self.f.call("GET", path)
            self.assertEqual(s, 404, path)
            self.assert_error(body, "OBJECT_NOT_FOUND")
        s, _, body = self.f.call("POST", "/oauth/v1/token", "grant_type=client_credentials",
                                 token=None,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(s, 404)
        self.assertEqual(self.f.call("POST", "/_fake/config", {"apiFamilies": ["v3"]},
                                     token=None)[0], 400)
        self.assertEqual(self.f.call("POST", "/_fake/config", {"apiFamilies": []},
                                     token=None)[0], 400)

    def test_oauth_dated(self):
        """client_credentials on /oauth/{v}/token; RFC 6749 error fields."""
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        ok = "grant_type=client_credentials&client_id=hubsync-client-id&" \
             "client_secret=hubsync-oauth-secret"
        s, _, body = self.f.call("POST", "/oauth/2026-09/token", ok, token=None, headers=form)
        self.assertEqual(s, 200, body)
        self.assertNotIn("refresh_token", body)
        self.assertEqual(self.f.call("GET", "/crm/owners/2026-09",
                                     token=body["access_token"])[0], 200)
        s, _, body = self.f.call("POST", "/oauth/2026-03/token",
                                 ok.replace("oauth-secret", "wrong"), token=None, headers=form)
        self.assertEqual((s, body["error"], body["error_description"]),
                         (400, "invalid_client", "missing or invalid client secret"))
        self.assertNotIn("status", body)
        s, _, body = self.f.call("POST", "/oauth/v1/token",
                                 ok.replace("oauth-secret", "wrong"), token=None, headers=form)
        self.assertEqual((s, body["status"], body["error"]),
                         (400, "BAD_CLIENT_SECRET", "invalid_client"))


if __name__ == "__main__":
    import warnings
    warnings.simplefilter("ignore", ResourceWarning)
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
