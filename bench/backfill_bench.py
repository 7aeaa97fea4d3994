#!/usr/bin/env python3
"""Backfill and polling benchmarks (issue 6).  Prints figures; asserts nothing.

  1. backfill: records/s imported by hubsync.backfill() with the fake at
     190 requests / 10 s and 200 ms latency, as a ratio to the ceiling
     (100 records per list page: 1,900 records/s; the bulk class of the
     quota leaves 20 % of the window to real-time pushes, so 1,520
     records/s is what a backfill may use);
  2. detection: time from a change made in HubSpot (webhooks off) to its
     arrival in the mirror, with hubsync.poll_interval = 10 s.

Usage: bench/backfill_bench.py [backfill[:N]] [detect]
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Cluster, Fake, row  # noqa: E402

CEILING = 1900.0
BULK_CEILING = 1520.0


def setup(fake_config, settings):
    """A fake and a cluster pointed at it, extension and token ready."""
    fake = Fake(fake_config)
    base = {"hubsync.api_base_url": fake.url, "hubsync.app_id": 54321}
    base.update(settings)
    pg = Cluster(base)
    pg.sql("CREATE EXTENSION hubsync")
    pg.sql("SELECT hubsync.set_credentials(access_token => 'test-token')")
    return fake, pg


def backfill(n=60000):
    """Import n contacts at 190 req / 10 s with 200 ms latency."""
    fake, pg = setup({"burstLimit": 190, "latencyMs": 200, "latencyJitterMs": 0},
                     {"hubsync.rate_limit": 190, "hubsync.max_inflight": 8,
                      "hubsync.poll_interval": "1h"})
    try:
        fake.call("POST", "/_fake/seed", {"objectType": "contacts", "count": n,
                                          "properties": {"email": "b{n}@bench.test",
                                                         "firstname": "F{n}", "lastname": "L{n}",
                                                         "city": "C{n}"}})
        time.sleep(11)   # the poller's first requests leave the window
        before = fake.call("GET", "/_fake/counters")
        t0 = time.time()
        pg.sql("SELECT hubsync.backfill('contacts')")
        pg.wait("SELECT state <> 'running' FROM hubsync.backfills WHERE object_type = 'contacts'",
                timeout=3600, interval=0.2)
        elapsed = time.time() - t0
        after = fake.call("GET", "/_fake/counters")
        got = int(pg.sql("SELECT count(*) FROM hubspot.contacts"))
        rate = got / elapsed
        row("backfill, %d contacts (records/s)" % n, "%.0f" % rate, "-")
        row("  ratio to the 1,900 records/s ceiling", "%.3f" % (rate / CEILING), ">= 0.9")
        row("  ratio to the bulk share (1,520 records/s)", "%.3f" % (rate / BULK_CEILING), "-")
        row("  records imported", str(got), str(n))
        row("  429 responses", str(after["total429"] - before["total429"]), "0")
        row("  highest requests in a rolling 10 s window (fake)",
            str(after["rateLimit"]["maxRequestsIn10s"]), "<= 190")
        row("  progress seen", pg.sql("SELECT state || ', ' || done || ' of ' || total_estimate "
                                      "|| ', ' || rate || '/s' FROM hubsync.backfill_progress"), "-")
    finally:
        pg.stop()
        fake.stop()


def detect(interval=10, changes=5):
    """Webhooks off: time from a HubSpot change to the mirror."""
    fake, pg = setup({"burstLimit": 190, "latencyMs": 200},
                     {"hubsync.rate_limit": 190, "hubsync.poll_interval": "%ds" % interval})
    try:
        rec = fake.call("POST", "/_fake/ui/contacts", {"properties": {"email": "d@bench.test"}})
        pg.wait("SELECT count(*) = 1 FROM hubspot.contacts", timeout=120, interval=0.1)
        worst = 0.0
        total = 0.0
        for i in range(changes):
            time.sleep(interval * (i + 1) / (changes + 1))   # land anywhere in the interval
            t0 = time.time()
            fake.call("POST", "/_fake/ui/contacts/%s" % rec["id"], {"properties": {"firstname": "v%d" % i}})
            pg.wait("SELECT firstname = 'v%d' FROM hubspot.contacts" % i, timeout=120, interval=0.05)
            d = time.time() - t0
            worst = max(worst, d)
            total += d
        row("change detection, webhooks off, poll_interval %d s: mean (s)" % interval,
            "%.1f" % (total / changes), "-")
        row("  worst of %d changes (s)" % changes, "%.1f" % worst, "<= %d" % (interval + 5))
    finally:
        pg.stop()
        fake.stop()


def main():
    todo = sys.argv[1:] or ["backfill", "detect"]
    for t in todo:
        name, _, arg = t.partition(":")
        if name == "backfill":
            backfill(int(arg) if arg else 60000)
        elif name == "detect":
            detect()
        else:
            sys.exit("unknown benchmark %s" % t)


if __name__ == "__main__":
    main()
