#!/usr/bin/env python3
"""Fake enrichment provider for hubsync's tests and benchmarks.

Usage: python3 test/fake_enrichment.py --port 0 [--key K]

Binds 127.0.0.1, prints the chosen port as the first stdout line, serves until
SIGTERM/SIGINT.  It speaks the contract of docs/enrichment.md:

  POST /enrich  {"record": {...}}           -> one person object
  POST /enrich  {"records": [{...}, ...]}   -> {"results": [person, ...]}

A person object (Clearbit-like):
  {"id": "<hubsync id>", "confidence": 0.9,
   "person": {"title": ..., "linkedin": ..., "phone": ...,
              "employer": {"name": ..., "domain": ...}}}

Control API (JSON bodies):
  POST /_control/config   merge settings:
      latency_ms   delay before every answer (default 0)
      fault        null | "429" | "500" | "timeout" | "malformed" | "wrong_types"
                   | "404"
      fault_count  how many requests get the fault (-1 = all, default -1)
      retry_after  seconds sent in Retry-After with a 429 (default none)
      scores       {email: score} (default score 0.9)
      people       {email: {field overrides of the person object}}
      unknown      [emails the provider has no match for]
  POST /_control/reset    forget config and counters
  GET  /_control/stats    {"requests": n, "batch_requests": n, "records": n,
                           "auth": [Authorization headers seen], "log": [...]}
"""

import argparse
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
DEFAULTS = {"latency_ms": 0, "fault": None, "fault_count": -1,
            "retry_after": None, "scores": {}, "people": {}, "unknown": []}
STATE = {}


def reset():
    with LOCK:
        STATE.clear()
        STATE.update(json.loads(json.dumps(DEFAULTS)))
        STATE["stats"] = {"requests": 0, "batch_requests": 0, "records": 0,
                          "auth": [], "log": []}


def person_for(record):
    """The person object for one request record, derived from its email."""
    props = record.get("properties") or {}
    email = props.get("email") or ""
    local, _, domain = email.partition("@")
    person = {
        "id": record.get("id"),
        "confidence": STATE["scores"].get(email, 0.9),
        "person": {
            "email": email,
            "title": "Head of %s" % local.capitalize(),
            "linkedin": "https://www.linkedin.com/in/%s" % local,
            "phone": "+1555%07d" % (sum(map(ord, email)) % 10000000),
            "employer": {"name": domain.split(".")[0].capitalize(),
                         "domain": domain},
        },
    }
    over = STATE["people"].get(email) or {}
    for k, v in over.items():
        if k == "confidence":
            person["confidence"] = v
        else:
            person["person"][k] = v
    return person


def take_fault():
    """The fault this request gets, if any (counts fault_count down)."""
    with LOCK:
        fault = STATE["fault"]
        if fault is None:
            return None
        if STATE["fault_count"] == 0:
            return None
        if STATE["fault_count"] > 0:
            STATE["fault_count"] -= 1
        return fault


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # small JSON answers: never wait for Nagle
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else {}

    def do_GET(self):
        if self.path == "/_control/stats":
            with LOCK:
                return self.reply(200, STATE["stats"])
        return self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path == "/_control/reset":
            reset()
            return self.reply(200, {"ok": True})
        if self.path == "/_control/config":
            body = self.read_json()
            with LOCK:
                STATE.update(body)
            return self.reply(200, {"ok": True})
        if self.path != "/enrich":
            return self.reply(404, {"error": "not found"})
        try:
            body = self.read_json()
        except ValueError:
            return self.reply(400, {"error": "malformed request"})
        batch = "records" in body
        records = body.get("records") if batch else [body.get("record") or {}]
        with LOCK:
            st = STATE["stats"]
            st["requests"] += 1
            st["batch_requests"] += 1 if batch else 0
            st["records"] += len(records)
            st["auth"].append(self.headers.get("Authorization"))
            st["log"].append({"at": time.time(), "batch": batch,
                              "ids": [r.get("id") for r in records]})
            latency = STATE["latency_ms"]
        fault = take_fault()
        if fault == "timeout":
            time.sleep(30)
            return self.reply(200, {})
        if latency:
            time.sleep(latency / 1000.0)
        if fault == "429":
            headers = {}
            if STATE.get("retry_after") is not None:
                headers["Retry-After"] = STATE["retry_after"]
            return self.reply(429, {"error": "rate limited"}, headers)
        if fault == "500":
            return self.reply(500, {"error": "internal error"})
        if fault == "404":
            return self.reply(404, {"error": "no match"})
        if fault == "malformed":
            return self.reply(200, b'{"person": {"title": "Trunc')
        people = []
        for r in records:
            email = ((r.get("properties") or {}).get("email")) or ""
            if email in STATE["unknown"]:
                continue
            p = person_for(r)
            if fault == "wrong_types":
                p["person"]["title"] = {"value": "CTO"}
                p["person"]["phone"] = [5551234]
            people.append(p)
        if batch:
            return self.reply(200, {"results": people})
        if not people:
            return self.reply(404, {"error": "no match"})
        return self.reply(200, people[0])


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    reset()
    srv = Server(("127.0.0.1", args.port), Handler)
    print(srv.server_address[1])
    sys.stdout.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
