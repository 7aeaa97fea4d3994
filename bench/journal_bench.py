#!/usr/bin/env python3
"""Webhooks Journal inbound benchmark for hubsync (issue 24).

Starts a throwaway PostgreSQL cluster with hubsync preloaded (binaries from
PG_BIN; run as a non-root user, e.g. the postgres user) and the fake
HubSpot, with the receiver off and hubsync.journal_interval set, then
measures:

  1. latency: a rep's edit made in the fake until the mirror row shows it,
     p50 and p99 over --edits sequential edits made at random moments of
     the interval (the target: journal_interval + 1 s);
  2. events/s applied from the journal: --records contacts (imported by a
     backfill first) changed at once in the fake (one journal entry of one
     propertyChange each), from the change until the last is in the mirror.

Prints figures only; there are no timed asserts.  Loopback traffic only.
Usage: bench/journal_bench.py [--interval-ms 1000] [--edits 40] [--records 5000]
"""

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Cluster, Fake, percentile, row  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--edits", type=int, default=40)
    ap.add_argument("--records", type=int, default=5000)
    args = ap.parse_args()

    fake = Fake({"searchIndexLagMs": 0, "burstLimit": 1000})
    cluster = Cluster({"hubsync.api_base_url": fake.url, "hubsync.app_id": 54321,
                       "hubsync.portal_id": 62515, "hubsync.rate_limit": 1000,
                       "hubsync.journal_interval": "%dms" % args.interval_ms,
                       "hubsync.poll_interval": "1h", "hubsync.poll_trailing_interval": "1h",
                       "hubsync.poll_archived_interval": "1h",
                       "hubsync.poll_association_interval": "1h"})
    try:
        cluster.sql("CREATE EXTENSION hubsync")
        # a static token for CRM calls, the app's client id and secret for
        # the journal (it takes only a client-credentials token)
        cluster.sql("SELECT hubsync.set_credentials(access_token => 'test-token', "
                    "oauth_client_id => 'hubsync-client-id', "
                    "oauth_client_secret => 'hubsync-oauth-secret')")
        cluster.wait("SELECT count(*) > 0 AND bool_and(state = 'active') "
                     "FROM hubsync.journal_subscriptions", timeout=120)
        cluster.wait("SELECT coalesce((SELECT started FROM hubsync.journal_state), false)",
                     timeout=120)

        # 1. latency of single edits
        rec = fake.call("POST", "/_fake/ui/contacts",
                        {"properties": {"email": "bench@journal.test", "firstname": "L0"}})
        cid = int(rec["id"])
        cluster.wait("SELECT count(*) = 1 FROM hubspot.contacts WHERE hs_object_id = %d" % cid,
                     timeout=120)
        lat = []
        for i in range(1, args.edits + 1):
            time.sleep(random.uniform(0, args.interval_ms / 1000.0))
            t0 = time.time()
            fake.call("POST", "/_fake/ui/contacts/%d" % cid, {"properties": {"firstname": "L%d" % i}})
            cluster.wait("SELECT firstname = 'L%d' FROM hubspot.contacts WHERE hs_object_id = %d"
                         % (i, cid), timeout=120, interval=0.01)
            lat.append((time.time() - t0) * 1000.0)
        target = "< %d ms (journal_interval + 1 s)" % (args.interval_ms + 1000)
        row("journal: rep edit -> mirror, p50 (interval %d ms)" % args.interval_ms,
            "%.0f ms" % percentile(lat, 50), target)
        row("journal: rep edit -> mirror, p99 (interval %d ms)" % args.interval_ms,
            "%.0f ms" % percentile(lat, 99), target)

        # 2. events/s applied: a bulk change of imported records
        n = args.records
        seed = fake.call("POST", "/_fake/seed", {"objectType": "contacts", "count": n,
                                                 "properties": {"email": "b{n}@journal.test"},
                                                 "searchVisible": True})
        cluster.sql("SELECT hubsync.backfill('contacts')")
        cluster.wait("SELECT count(*) >= %d FROM hubspot.contacts WHERE email LIKE 'b%%@journal.test'"
                     % n, timeout=600, interval=0.2)
        cluster.wait("SELECT NOT EXISTS (SELECT 1 FROM hubsync.inbox WHERE state = 'pending')",
                     timeout=600, interval=0.2)
        before = int(cluster.sql("SELECT events FROM hubsync.journal_state"))
        t0 = time.time()
        fake.call("POST", "/_fake/touch", {"objectType": "contacts", "firstId": seed["firstId"],
                                           "lastId": seed["lastId"], "webhooks": True,
                                           "properties": {"jobtitle": "Bulk {n}"}})
        cluster.wait("SELECT count(*) = %d FROM hubspot.contacts WHERE jobtitle LIKE 'Bulk %%'" % n,
                     timeout=900, interval=0.05)
        took = time.time() - t0
        events = int(cluster.sql("SELECT events FROM hubsync.journal_state")) - before
        row("journal: events applied per second (%d changes)" % n,
            "%.0f/s" % (events / took if took > 0 else 0), "report")
        row("journal: bulk change -> last row in the mirror", "%.2f s" % took, "report")
    finally:
        cluster.stop()
        fake.stop()


if __name__ == "__main__":
    main()
