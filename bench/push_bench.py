#!/usr/bin/env python3
"""Push benchmarks (issue 4).  Prints figures; asserts nothing.

  1. throughput: records/s pushed with the fake at 190 requests / 10 s and
     200 ms latency, as a ratio to the 1,900 records/s ceiling, and 429s;
  2. commit-to-HubSpot latency p50 / p99 with latency 0;
  3. the cost the capture trigger adds to a single-row UPDATE (pgbench),
     next to an equivalent PL/pgSQL trigger log (Heroku Connect's design);
  4. realtime: the real-time lane -- single-row updates committed while a
     60,000-contact bulk push saturates the quota, commit to HubSpot;
  5. associations: 20,000 deals with a contact and a company link each;
  6. the push worker's memory while draining 1,000,000 changes, and the
     outbox's size: its peak, and after housekeeping once it has drained
     (near empty).  Full run: bench/run push memory (1,000,000 changes;
     about 25 min on a loaded 2-core machine); a short one:
     bench/run push memory:100000 (about 2.5 min).

The throughput figure includes the push worker's CPU per pushed record
(utime + stime from /proc over the drain).

Usage: bench/push_bench.py [throughput|latency|trigger|realtime|associations|memory[:N] ...]
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import PG_BIN, Cluster, Fake, cpu_ticks, cpu_us_per, percentile, row, rss_kb  # noqa: E402

CEILING = 1900.0


def setup(fake_config, settings):
    """A fake and a cluster pointed at it, extension and token ready."""
    fake = Fake(fake_config)
    base = {"hubsync.api_base_url": fake.url, "hubsync.app_id": 54321}
    base.update(settings)
    pg = Cluster(base)
    pg.sql("CREATE EXTENSION hubsync")
    pg.sql("SELECT hubsync.set_credentials(access_token => 'test-token')")
    # create the hubsync_id property before measuring
    pg.sql("INSERT INTO hubspot.contacts (email) VALUES ('warmup@example.com')")
    pg.wait("SELECT count(*) = 0 FROM hubsync.outbox")
    return fake, pg


def throughput(n=60000):
    """Push n contacts at 190 req / 10 s with 200 ms latency."""
    fake, pg = setup({"burstLimit": 190, "latencyMs": 200, "latencyJitterMs": 0},
                     {"hubsync.rate_limit": 190, "hubsync.max_inflight": 8})
    try:
        # let the warm-up requests leave the rolling window
        time.sleep(11)
        before = fake.call("GET", "/_fake/counters")
        pg.sql("SELECT hubsync.pause('contacts')")
        pg.sql("SET hubsync.max_changes_per_xact = 0; INSERT INTO hubspot.contacts (email, firstname) "
               "SELECT 'tp' || g || '@example.com', 'T' || g FROM generate_series(1, %d) g" % n)
        pid = pg.worker_pid("push")
        cpu0 = cpu_ticks(pid)
        t0 = time.time()
        pg.sql("SELECT hubsync.resume('contacts')")
        pg.wait("SELECT count(*) = 0 FROM hubsync.outbox", timeout=3600, interval=0.1)
        elapsed = time.time() - t0
        cpu = cpu_ticks(pid) - cpu0
        after = fake.call("GET", "/_fake/counters")
        rate = n / elapsed
        row("push throughput, %d contacts (records/s)" % n, "%.0f" % rate, "-")
        row("  push: ratio to the 1,900 records/s ceiling", "%.3f" % (rate / CEILING),
            ">= 0.98, above the Node client")
        row("  429 responses", str(after["total429"] - before["total429"]), "0")
        row("  highest requests in a rolling 10 s window (fake)",
            str(after["rateLimit"]["maxRequestsIn10s"]), "<= 190")
        dups = after["duplicates"]["hubsync_id"] + after["duplicates"]["email"]
        row("  duplicates in HubSpot", str(dups), "0")
        row("  push worker CPU per pushed record (us)", "%.0f" % cpu_us_per(cpu, n), "half of before (issue 21)")
    finally:
        pg.stop()
        fake.stop()


def latency(n=300):
    """Commit-to-HubSpot latency of single-row inserts, latency 0."""
    fake, pg = setup({"latencyMs": 0}, {"hubsync.rate_limit": 1000, "hubsync.batch_linger": "0"})
    fake.call("POST", "/_fake/config", {"burstLimit": 1000})
    try:
        seq = fake.call("GET", "/_fake/requests")["lastSeq"]
        commits = []
        for i in range(n):
            # the second statement runs right after the first one commits
            out = pg.sql_many("INSERT INTO hubspot.contacts (email) VALUES ('lat%d@example.com')" % i,
                              "SELECT extract(epoch FROM clock_timestamp()) * 1000")
            commits.append(float(out.splitlines()[-1]))
            time.sleep(0.02)
        pg.wait("SELECT count(*) = 0 FROM hubsync.outbox")
        reqs = [r for r in fake.call("GET", "/_fake/requests?since=%d" % seq)["requests"]
                if r["path"].endswith("/batch/upsert")]
        lat = []
        for c, r in zip(commits, reqs):
            lat.append(max(0.0, r["startMs"] - c))
        row("commit-to-HubSpot latency p50 (ms, %d single-row commits)" % n,
            "%.1f" % percentile(lat, 50), "< 10")
        row("commit-to-HubSpot latency p99 (ms)", "%.1f" % percentile(lat, 99), "-")
        row("  requests for %d commits" % n, str(len(reqs)), "%d" % n)
    finally:
        pg.stop()
        fake.stop()


PLPGSQL_LOG = """
CREATE TABLE trigger_log (id bigserial PRIMARY KEY, table_name text, record_id uuid,
    action text, state text DEFAULT 'NEW', values jsonb, old jsonb, created_at timestamptz DEFAULT now());
CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trigger_log (table_name, record_id, action, values, old)
    VALUES (TG_TABLE_NAME, NEW.hubsync_id, TG_OP, to_jsonb(NEW), to_jsonb(OLD));
    RETURN NEW;
END $$;
"""


def pgbench_tps(pg, table, seconds=20):
    """TPS of single-row UPDATEs of one table (one client)."""
    script = os.path.join(pg.dir, "update.sql")
    with open(script, "w") as f:
        f.write("\\set id random(1, 10000)\n\\set v random(1, 1000000000)\n"
                "UPDATE %s SET firstname = 'v' || :v WHERE lastname = 'k' || :id;\n" % table)
    r = subprocess.run([os.path.join(PG_BIN, "pgbench"), "-n", "-c", "1", "-T", str(seconds),
                        "-f", script], env=pg.env(), capture_output=True, text=True, check=True)
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
    return float(m.group(1))


def trigger():
    """Cost of the capture trigger on a single-row UPDATE."""
    pg = Cluster({"synchronous_commit": "off", "hubsync.enabled": "off",
                  "hubsync.api_base_url": "http://127.0.0.1:9"})
    try:
        pg.sql("CREATE EXTENSION hubsync")
        for t in ("bare", "heroku"):
            pg.sql("CREATE TABLE %s (LIKE hubspot.contacts INCLUDING ALL)" % t)
        pg.sql(PLPGSQL_LOG)
        pg.sql("CREATE TRIGGER log AFTER INSERT OR UPDATE OR DELETE ON heroku FOR EACH ROW "
               "EXECUTE FUNCTION log_change()")
        for t in ("bare", "heroku", "hubspot.contacts"):
            pg.sql("SET hubsync.max_changes_per_xact = 0; INSERT INTO %s (email, lastname) "
                   "SELECT 'b' || g || '@example.com', 'k' || g FROM generate_series(1, 10000) g" % t)
            pg.sql("CREATE INDEX ON %s (lastname)" % t)
            pg.sql("VACUUM ANALYZE %s" % t)
        pg.sql("TRUNCATE hubsync.outbox")
        results = {}
        for rnd in range(3):
            for t in ("bare", "hubspot.contacts", "heroku"):
                results.setdefault(t, []).append(pgbench_tps(pg, t, seconds=10))
        bare = max(results["bare"])
        hub = max(results["hubspot.contacts"])
        her = max(results["heroku"])
        row("single-row UPDATE, bare table (tps)", "%.0f" % bare, "-")
        row("single-row UPDATE with hubsync capture (tps)", "%.0f" % hub, "-")
        row("  hubsync cost vs bare (x)", "%.2f" % (bare / hub), "<= 1.3 (design: 1.24)")
        row("single-row UPDATE with a PL/pgSQL trigger log (tps)", "%.0f" % her, "-")
        row("  PL/pgSQL trigger-log cost vs bare (x)", "%.2f" % (bare / her), "hubsync must beat it")
    finally:
        pg.stop()


def memory(n=1000000):
    """Push worker memory while draining n changes (fake latency 0)."""
    fake, pg = setup({"burstLimit": 100000, "latencyMs": 0, "dailyLimit": 100000000},
                     {"hubsync.rate_limit": 1000, "hubsync.daily_limit": 0, "hubsync.max_inflight": 8})
    try:
        pid = pg.worker_pid("push")
        start = rss_kb(pid)
        pg.sql("SELECT hubsync.pause('contacts')")
        pg.sql("SET hubsync.max_changes_per_xact = 0; INSERT INTO hubspot.contacts (email) "
               "SELECT 'm' || g || '@example.com' FROM generate_series(1, %d) g" % n)
        pg.sql("SELECT hubsync.resume('contacts')")
        samples = []
        sizes = []
        size_sql = "SELECT pg_total_relation_size('hubsync.outbox')"
        t0 = time.time()
        while pg.sql("SELECT count(*) = 0 FROM hubsync.outbox") != "t":
            samples.append(rss_kb(pid))
            sizes.append(int(pg.sql(size_sql)))
            time.sleep(2)
        elapsed = time.time() - t0
        end = rss_kb(pid)
        drained = int(pg.sql(size_sql))
        # housekeeping (every hubsync.housekeeping_interval) truncates the
        # empty outbox when nobody holds a lock on it
        t1 = time.time()
        while int(pg.sql(size_sql)) > 1024 * 1024 and time.time() - t1 < 120:
            time.sleep(1)
        shrunk = int(pg.sql(size_sql))
        row("push worker private RSS before draining (kB)", str(start), "-")
        row("push worker private RSS, peak while draining %d changes (kB)" % n, str(max(samples or [end])), "flat")
        row("push worker private RSS after draining (kB)", str(end), "flat")
        quarter = samples[len(samples) // 4] if samples else end
        row("  private RSS growth from 25% to end (kB)", str(end - quarter), "~0")
        row("  drain rate (records/s, rate limit 1000 req/10 s)", "%.0f" % (n / elapsed), "-")
        row("outbox size, peak while draining (kB)", str(max(sizes + [drained]) // 1024), "-")
        row("outbox size right after draining (kB)", str(drained // 1024), "-")
        row("outbox size %.0f s later, after housekeeping (kB)" % (time.time() - t1), str(shrunk // 1024),
            "near empty (< 1024)")
        row("  change feed rows kept (hubsync.changes_retention)", pg.sql("SELECT count(*) FROM hubsync.changes"), "-")
    finally:
        pg.stop()
        fake.stop()


def realtime(n=60000, updates=20):
    """The real-time lane (issue 21): while n contacts drain at the ceiling
    (190 req / 10 s, 200 ms latency), single-row updates of already-synced
    contacts, 0.5 s apart: commit to HubSpot (the fake's arrival) latency."""
    fake, pg = setup({"burstLimit": 190, "latencyMs": 200, "latencyJitterMs": 0},
                     {"hubsync.rate_limit": 190, "hubsync.max_inflight": 8})
    try:
        pg.sql("INSERT INTO hubspot.contacts (email, firstname) "
               "SELECT 'rt' || g || '@example.com', 'R' || g FROM generate_series(1, %d) g" % updates)
        pg.wait("SELECT count(*) = 0 FROM hubsync.outbox")
        ids = pg.sql("SELECT hs_object_id FROM hubspot.contacts WHERE email LIKE 'rt%%' ORDER BY email").split()
        time.sleep(11)
        before = fake.call("GET", "/_fake/counters")
        seq = fake.call("GET", "/_fake/requests")["lastSeq"]
        pg.sql("SET hubsync.max_changes_per_xact = 0; INSERT INTO hubspot.contacts (email, firstname) "
               "SELECT 'bk' || g || '@example.com', 'B' || g FROM generate_series(1, %d) g" % n)
        time.sleep(1)
        commits = []
        for i, hs in enumerate(ids):
            out = pg.sql_many("UPDATE hubspot.contacts SET firstname = 'U%d' WHERE hs_object_id = %s" % (i, hs),
                              "SELECT extract(epoch FROM clock_timestamp()) * 1000")
            commits.append(float(out.splitlines()[-1]))
            time.sleep(0.5)
        left = int(pg.sql("SELECT count(*) FROM hubsync.outbox"))
        pg.wait("SELECT count(*) = 0 FROM hubsync.outbox", timeout=3600, interval=0.2)
        after = fake.call("GET", "/_fake/counters")
        # the bulk job is creates (batch upsert); the updates, 0.5 s apart,
        # are the only batch updates, one record each, in commit order
        arrived = []
        for r in fake.call("GET", "/_fake/requests?since=%d" % seq)["requests"]:
            if r["path"].endswith("/batch/update"):
                arrived += [r["startMs"]] * (r.get("inputs") or 1)
        lat = [max(0.0, a - c) for a, c in zip(arrived, commits)] if len(arrived) == len(commits) else []
        row("real-time lane during a %d-contact bulk push: commit-to-HubSpot p50 (ms, %d updates)"
            % (n, updates), "%.0f" % percentile(lat, 50), "< 1000")
        row("  real-time lane: max (ms)", "%.0f" % max(lat or [float("nan")]), "< 5000")
        row("  updates that reached HubSpot", "%d/%d" % (len(lat), updates), "%d" % updates)
        row("  bulk changes still queued after the last update", str(left), "-")
        row("  update requests seen (fake)", "%d" % len(arrived), "%d" % updates)
        row("  429 responses", str(after["total429"] - before["total429"]), "0")
    finally:
        pg.stop()
        fake.stop()


def associations(n=20000):
    """n deals, each linked to a contact and a company, pushed at 190 req /
    10 s with 200 ms latency: records and associations per second."""
    fake, pg = setup({"burstLimit": 190, "latencyMs": 200, "latencyJitterMs": 0},
                     {"hubsync.rate_limit": 190, "hubsync.max_inflight": 8})
    try:
        pg.sql("INSERT INTO hubspot.contacts (email) SELECT 'ac' || g || '@example.com' FROM generate_series(1, 100) g")
        pg.sql("INSERT INTO hubspot.companies (name) SELECT 'Co ' || g FROM generate_series(1, 100) g")
        pg.wait("SELECT count(*) = 0 FROM hubsync.outbox")
        time.sleep(11)
        before = fake.call("GET", "/_fake/counters")
        pg.sql("SELECT hubsync.pause('deals')")
        pg.sql("SET hubsync.max_changes_per_xact = 0; INSERT INTO hubspot.deals (dealname) "
               "SELECT 'Deal ' || g FROM generate_series(1, %d) g" % n)
        pg.sql("SET hubsync.max_changes_per_xact = 0; "
               "WITH d AS (SELECT hubsync_id, row_number() OVER () % 100 AS k FROM hubspot.deals), "
               "c AS (SELECT hubsync_id, row_number() OVER () % 100 AS k FROM hubspot.contacts), "
               "o AS (SELECT hubsync_id, row_number() OVER () % 100 AS k FROM hubspot.companies) "
               "INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id) "
               "SELECT 'deals', d.hubsync_id, 'contacts', c.hubsync_id FROM d JOIN c USING (k) "
               "UNION ALL SELECT 'deals', d.hubsync_id, 'companies', o.hubsync_id FROM d JOIN o USING (k)")
        pid = pg.worker_pid("push")
        cpu0 = cpu_ticks(pid)
        t0 = time.time()
        pg.sql("SELECT hubsync.resume('deals')")
        pg.wait("SELECT count(*) = 0 FROM hubsync.outbox", timeout=3600, interval=0.2)
        t1 = time.time()
        pg.wait("SELECT count(*) = 0 FROM hubsync.association_outbox WHERE state = 'pending'",
                timeout=3600, interval=0.2)
        t2 = time.time()
        cpu = cpu_ticks(pid) - cpu0
        after = fake.call("GET", "/_fake/counters")
        links = int(pg.sql("SELECT count(*) FROM hubspot.associations WHERE from_type = 'deals' AND from_id IS NOT NULL"))
        row("deals pushed, %d deals (records/s)" % n, "%.0f" % (n / (t1 - t0)), "-")
        row("  deals + their %d associations, overall (records/s)" % (2 * n), "%.0f" % (n / (t2 - t0)), "-")
        row("  associations pushed (associations/s, after the deals)", "%.0f" % (2 * n / max(t2 - t1, 0.001)), "-")
        row("  deal associations in the mirror with HubSpot ids", "%d" % links, ">= %d" % (2 * n))
        row("  requests (fake)", str(after["requests"] - before["requests"]), "-")
        row("  429 responses", str(after["total429"] - before["total429"]), "0")
        row("  highest requests in a rolling 10 s window (fake)",
            str(after["rateLimit"]["maxRequestsIn10s"]), "<= 190")
        row("  push worker CPU per deal (us, associations included)", "%.0f" % cpu_us_per(cpu, n), "-")
    finally:
        pg.stop()
        fake.stop()


SCENARIOS = {"throughput": throughput, "latency": latency, "trigger": trigger, "memory": memory,
             "realtime": realtime, "associations": associations}

if __name__ == "__main__":
    names = sys.argv[1:] or ["latency", "trigger", "throughput", "realtime", "associations", "memory"]
    for name in names:
        # "memory:200000" runs a scenario with another size
        name, _, size = name.partition(":")
        print("== %s" % name, flush=True)
        SCENARIOS[name](*([int(size)] if size else []))
