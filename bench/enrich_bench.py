#!/usr/bin/env python3
"""Enrichment benchmarks (issue 8).  Prints figures; asserts nothing.

  1. realtime: latency from the commit of a form submission to the enriched
     values being readable in (the fake) HubSpot, with a provider taking
     300 ms per call; p50 / p90 / max over single-row commits;
  2. batch: records enriched by the batch lane, calls made, time taken;
  3. trigger: what two enrichment rules (neither matching) add to a
     single-table INSERT and UPDATE, per row.

Usage: bench/enrich_bench.py [realtime[:N]|batch[:N]|trigger[:N] ...]
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import ROOT, Cluster, Fake, percentile, row  # noqa: E402

MAPPING = {"jobtitle": "$.person.title", "mobilephone": "$.person.phone",
           "company": "$.person.employer.name", "website": "$.person.employer.domain"}


class Provider:
    """The fake enrichment provider in a child process."""

    def __init__(self, config):
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "test", "fake_enrichment.py"),
                                      "--port", "0"], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = "http://127.0.0.1:%d/enrich" % self.port
        self.call("POST", "config", config)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d/_control/%s" % (self.port, path),
                                     data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def hubspot_get(fake, path):
    """An authenticated read from the fake HubSpot's CRM API; None on 404."""
    req = urllib.request.Request(fake.url + path, headers={"Authorization": "Bearer test-token"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def setup(provider_latency_ms, settings):
    """Fake HubSpot, fake provider and a cluster with a provider and rules."""
    fake = Fake({"latencyMs": 0, "burstLimit": 100000})
    prov = Provider({"latency_ms": provider_latency_ms})
    base = {"hubsync.api_base_url": fake.url, "hubsync.app_id": 54321,
            "hubsync.rate_limit": 1000}
    base.update(settings)
    pg = Cluster(base)
    pg.sql("CREATE EXTENSION hubsync")
    pg.sql("SELECT hubsync.set_credentials(access_token => 'test-token')")
    req = urllib.request.Request(fake.url + "/crm/v3/properties/contacts", method="POST",
                                 data=json.dumps({"name": "form", "label": "Form", "type": "string",
                                                  "fieldType": "text",
                                                  "groupName": "contactinformation"}).encode(),
                                 headers={"Authorization": "Bearer test-token",
                                          "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()
    pg.sql("INSERT INTO hubsync.enrichment_providers (name, endpoint, mapping, score_path, "
           "min_score, daily_budget, accepts_batch, batch_size, timeout_ms) VALUES "
           "('fakeco', '%s', '%s', '$.confidence', 0.8, 0, true, 100, 5000)"
           % (prov.url, json.dumps(MAPPING)))
    pg.sql("SELECT hubsync.set_enrichment_key('fakeco', 'bench-key')")
    pg.sql("INSERT INTO hubsync.enrichment_rules (name, object_type, condition, lane, provider) VALUES "
           "('demo', 'contacts', $$properties->>'form' = 'demo request'$$, 'realtime', 'fakeco'), "
           "('nurture', 'contacts', $$lifecyclestage = 'lead'$$, 'batch', 'fakeco')")
    # warm up: the hubsync_id property, connections
    pg.sql("INSERT INTO hubspot.contacts (email, properties) VALUES "
           "('warmup@example.com', '{\"form\": \"demo request\"}')")
    pg.wait("SELECT count(*) = 1 FROM hubsync.enrichment_jobs WHERE state = 'done'", timeout=60)
    pg.wait("SELECT count(*) = 0 FROM hubsync.outbox", timeout=60)
    return fake, prov, pg


def realtime(n=30):
    """Commit of a form submission to enriched values in HubSpot."""
    fake, prov, pg = setup(300, {"hubsync.batch_linger": "0"})
    try:
        lat = []
        for i in range(n):
            out = pg.sql_many(
                "INSERT INTO hubspot.contacts (email, firstname, properties) VALUES "
                "('rt%d@acme.example', 'R', '{\"form\": \"demo request\"}') RETURNING hubsync_id" % i,
                "SELECT extract(epoch FROM clock_timestamp())")
            hid, committed = out.splitlines()[0], float(out.splitlines()[-1])
            deadline = time.time() + 30
            while time.time() < deadline:
                r = hubspot_get(fake, "/crm/v3/objects/contacts/%s?idProperty=hubsync_id&properties=jobtitle" % hid)
                if r and (r.get("properties") or {}).get("jobtitle"):
                    lat.append((time.time() - committed) * 1000)
                    break
                time.sleep(0.005)
            time.sleep(0.05)
        row("enrichment commit-to-HubSpot latency p50 (ms, %d leads)" % n, "%.0f" % percentile(lat, 50),
            "< 1000 (provider 300 ms)")
        row("  p90 (ms)", "%.0f" % percentile(lat, 90), "-")
        row("  max (ms)", "%.0f" % max(lat), "-")
        row("  leads enriched in HubSpot", "%d/%d" % (len(lat), n), "%d" % n)
    finally:
        pg.stop()
        prov.stop()
        fake.stop()


def batch(n=500):
    """The batch lane: n nurture leads, provider batches of 100, 300 ms a call."""
    fake, prov, pg = setup(300, {"hubsync.enrichment_batch_interval": "1s"})
    try:
        before = prov.call("GET", "stats")
        t0 = time.time()
        pg.sql("INSERT INTO hubspot.contacts (email, lifecyclestage) "
               "SELECT 'b' || g || '@nurture.example', 'lead' FROM generate_series(1, %d) g" % n)
        pg.wait("SELECT count(*) = %d FROM hubsync.enrichment_jobs WHERE lane = 'batch' AND state = 'done'" % n,
                timeout=300, interval=0.1)
        elapsed = time.time() - t0
        after = prov.call("GET", "stats")
        row("batch lane: %d leads enriched (s, incl. up to 1 s interval)" % n, "%.1f" % elapsed, "-")
        row("  provider calls", str(after["requests"] - before["requests"]), "%d" % ((n + 99) // 100))
        pg.wait("SELECT count(*) = 0 FROM hubsync.outbox", timeout=300, interval=0.1)
        row("  ... and pushed to HubSpot (s)", "%.1f" % (time.time() - t0), "-")
    finally:
        pg.stop()
        prov.stop()
        fake.stop()


def trigger(n=20000):
    """Per-row cost of the hubsync_enrich trigger with two rules."""
    pg = Cluster({"hubsync.enabled": "off"})
    try:
        pg.sql("CREATE EXTENSION hubsync")

        def timed(statement):
            t0 = time.time()
            pg.sql("SET hubsync.max_changes_per_xact = 0; " + statement)
            return time.time() - t0

        ins = ("INSERT INTO hubspot.contacts (email, lifecyclestage) SELECT '%s' || g || '@x.example', "
               "'subscriber' FROM generate_series(1, {n}) g").replace("{n}", str(n))
        upd = "UPDATE hubspot.contacts SET firstname = 'changed' WHERE email LIKE '%s%%'"
        pg.sql("INSERT INTO hubsync.enrichment_providers (name, endpoint, mapping) VALUES "
               "('p', 'http://127.0.0.1:9/', '{\"jobtitle\": \"$.t\"}')")
        pg.sql("INSERT INTO hubsync.enrichment_rules (name, object_type, condition, lane, provider, enabled) VALUES "
               "('r', 'contacts', $$lifecyclestage = 'salesqualifiedlead'$$, 'realtime', 'p', false), "
               "('b', 'contacts', $$properties->>'form' = 'demo request'$$, 'batch', 'p', false)")
        best = {}
        for k in range(3):
            for enabled in ("false", "true"):
                pg.sql("UPDATE hubsync.enrichment_rules SET enabled = %s" % enabled)
                prefix = "r%d%s" % (k, enabled[0])
                t_ins = timed(ins % prefix)
                t_upd = timed(upd % prefix)
                for key, v in (("ins" + enabled, t_ins), ("upd" + enabled, t_upd)):
                    best[key] = min(best.get(key, v), v)
        row("enrich trigger, 2 rules: added per INSERT (us, best of 3 x %d rows)" % n,
            "%.1f" % max(0.0, (best["instrue"] - best["insfalse"]) * 1e6 / n), "-")
        row("enrich trigger, 2 rules: added per UPDATE (us)",
            "%.1f" % max(0.0, (best["updtrue"] - best["updfalse"]) * 1e6 / n), "-")
    finally:
        pg.stop()


def main():
    runs = sys.argv[1:] or ["realtime", "batch", "trigger"]
    for r in runs:
        name, _, arg = r.partition(":")
        fn = {"realtime": realtime, "batch": batch, "trigger": trigger}[name]
        fn(int(arg)) if arg else fn()


if __name__ == "__main__":
    main()
