#!/usr/bin/env python3
"""Throughput and memory of the fake HubSpot server (test/fake_hubspot.py).

Prints figures only (no pass/fail):
  1. batch requests/s for 100-record batch upserts (creates), batch upserts
     (updates) and batch updates by id, latency 0, several concurrent
     keep-alive connections;
  2. in a fresh server process: memory (RSS) with N records seeded (default
     1,000,000), seed time, and a short upsert run, a GET and a search
     against the big store.

Usage: python3 bench/fake_throughput.py [--connections 4] [--requests 1500]
                                         [--records 1000000] [--skip-memory]
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(REPO, "test", "fake_hubspot.py")
HEADERS = {"Authorization": "Bearer test-token", "Content-Type": "application/json"}


class Fake:
    """The server process under test."""

    def __init__(self):
        """Start it on a free port with limits out of the way."""
        self.proc = subprocess.Popen([sys.executable, SERVER, "--port", "0"],
                                     stdout=subprocess.PIPE)
        self.port = int(self.proc.stdout.readline())
        self.ctl("POST", "config", {"burstLimit": 10 ** 9, "dailyLimit": 10 ** 12,
                                    "searchPerSecond": 1000})

    def ctl(self, method, path, body=None, timeout=600):
        """Control call -> JSON."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.request(method, "/_fake/" + path, body=json.dumps(body) if body else None)
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status >= 300:
            raise RuntimeError("%s %s -> %d %s" % (method, path, r.status, data[:300]))
        return json.loads(data)

    def call(self, method, path, body=None):
        """One API call -> (status, JSON)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers=HEADERS)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, json.loads(data) if data else None

    def cpu_seconds(self):
        """User+system CPU seconds the server has used."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory(self):
        """(VmRSS, VmHWM) in MiB."""
        out = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(("VmRSS", "VmHWM")):
                    out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
        return out["VmRSS"], out["VmHWM"]

    def stop(self):
        """SIGTERM and wait."""
        self.proc.terminate()
        self.proc.wait(30)


def run_phase(fake, label, path, bodies_per_conn):
    """Send pre-built bodies over one keep-alive connection per thread; print figures."""
    lat = []
    errors = []
    lock = threading.Lock()

    def worker(bodies):
        """Send this connection's share of the bodies, timing each."""
        c = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=120)
        mine = []
        for b in bodies:
            t = time.perf_counter()
            c.request("POST", path, body=b, headers=HEADERS)
            r = c.getresponse()
            r.read()
            mine.append(time.perf_counter() - t)
            if r.status not in (200, 201):
                errors.append(r.status)
        c.close()
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, args=(b,)) for b in bodies_per_conn]
    cpu0 = fake.cpu_seconds()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    cpu = fake.cpu_seconds() - cpu0
    n = len(lat)
    lat.sort()
    pct = lambda p: lat[min(n - 1, int(n * p))] * 1000
    print("%-28s %5d req in %5.2f s = %6.1f req/s (%7.0f records/s); latency ms "
          "p50 %.1f p95 %.1f p99 %.1f; server CPU %.2f ms/req%s" % (
              label, n, elapsed, n / elapsed, n * 100 / elapsed, pct(0.5), pct(0.95),
              pct(0.99), cpu * 1000 / max(n, 1),
              "; ERRORS %d" % len(errors) if errors else ""))
    sys.stdout.flush()
    return n / elapsed


def split(items, parts):
    """Round-robin items into parts lists."""
    return [items[i::parts] for i in range(parts)]


def throughput(fake, conns, requests):
    """Phase 1: batch upsert creates, upsert updates, updates by id."""
    print("== throughput: %d connections, 100 records per request, latency 0" % conns)
    emails = [["bench%d_%d@example.com" % (j, i) for i in range(100)] for j in range(requests)]

    def upsert_body(batch, tag):
        """A 100-input upsert body for one batch of emails."""
        return json.dumps({"inputs": [
            {"id": e, "idProperty": "email",
             "properties": {"firstname": "F%s" % tag, "lastname": "L%d" % i,
                            "jobtitle": "engineer", "lifecyclestage": "lead"}}
            for i, e in enumerate(batch)]}).encode()

    path = "/crm/v3/objects/contacts/batch/upsert"
    run_phase(fake, "batch/upsert (creates)", path,
              split([upsert_body(b, "a") for b in emails], conns))
    run_phase(fake, "batch/upsert (updates)", path,
              split([upsert_body(b, "b") for b in emails], conns))
    ids = [r["id"] for r in fake.ctl("GET", "records/contacts")["results"]]
    ids = ids[:requests * 100]
    bodies = [json.dumps({"inputs": [{"id": i, "properties": {"jobtitle": "cto%d" % k}}
                                     for i in ids[k * 100:(k + 1) * 100]]}).encode()
              for k in range(len(ids) // 100)]
    run_phase(fake, "batch/update by id", "/crm/v3/objects/contacts/batch/update",
              split(bodies, conns))


def memory(fake, records, conns):
    """Phase 2 (own server process): RSS with many records seeded, then work on them."""
    rss0, _ = fake.memory()
    print("== memory: RSS before seeding %.0f MiB" % rss0)
    t0 = time.perf_counter()
    chunk = 100000
    done = 0
    while done < records:
        n = min(chunk, records - done)
        fake.ctl("POST", "seed", {"objectType": "contacts", "count": n,
                                  "properties": {"email": "seed%d_{n}@example.com" % done,
                                                 "firstname": "Seed", "lastname": "Record",
                                                 "lifecyclestage": "customer"}})
        done += n
    seed_s = time.perf_counter() - t0
    rss, hwm = fake.memory()
    stats = fake.ctl("GET", "stats")
    print("seeded %d contacts in %.1f s (%.0f records/s); RSS %.0f MiB (peak %.0f MiB), "
          "%.0f bytes/record" % (stats["contacts"]["live"], seed_s, records / seed_s, rss, hwm,
                                 (rss - rss0) * 1048576 / max(records, 1)))
    t = time.perf_counter()
    s, rec = fake.call("GET", "/crm/v3/objects/contacts/seed%d_%d@example.com?idProperty=email"
                       % (records - chunk if records > chunk else 0, 7))
    print("GET by email on the big store: %d in %.1f ms" % (s, (time.perf_counter() - t) * 1000))
    batches = [json.dumps({"inputs": [
        {"id": "seed%d_%d@example.com" % (0, k * 100 + i + 1), "idProperty": "email",
         "properties": {"firstname": "Upd"}} for i in range(100)]}).encode()
        for k in range(min(300, records // 100))]
    run_phase(fake, "batch/upsert @ %d records" % records,
              "/crm/v3/objects/contacts/batch/upsert", split(batches, conns))
    t = time.perf_counter()
    s, res = fake.call("POST", "/crm/v3/objects/contacts/search", {
        "filterGroups": [{"filters": [{"propertyName": "firstname", "operator": "EQ",
                                       "value": "Seed"}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "limit": 200})
    print("search (EQ + sort, full scan) over %d records: %d, total %s, in %.2f s" % (
        records, s, res.get("total") if res else None, time.perf_counter() - t))
    rss, hwm = fake.memory()
    print("final RSS %.0f MiB (peak %.0f MiB)" % (rss, hwm))


def main():
    """Parse options, run both phases, stop the server."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--requests", type=int, default=1500, help="requests per phase")
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    print("fake HubSpot bench: python %s, %d CPUs" % (sys.version.split()[0], os.cpu_count()))
    fake = Fake()
    try:
        throughput(fake, args.connections, args.requests)
    finally:
        fake.stop()
    if not args.skip_memory:
        fake = Fake()
        try:
            memory(fake, args.records, args.connections)
        finally:
            fake.stop()


if __name__ == "__main__":
    main()
