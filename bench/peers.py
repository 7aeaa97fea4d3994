#!/usr/bin/env python3
"""The push job of bench/push_bench.py's throughput figure, done by peers on
the same fake with the same limits (190 requests / 10 s, 200 ms latency):

  * a naive sync: one POST /crm/v3/objects/contacts per record, 8 at a time,
    waiting 10 s after a 429 (what a hand-written connector does);
  * HubSpot's own Node client (@hubspot/api-client, pinned as in
    test/fake/node_client_check.sh): batch create, 100 records per request,
    its built-in limiter and 429 retry.  Skipped, visibly, without node/npm
    or the npm registry.

Prints records/s and the ratio to the 1,900 records/s ceiling, 429s and
duplicates.  Usage: bench/peers.py [--naive N] [--node N]
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Fake, row  # noqa: E402

CEILING = 1900.0
LIMITS = {"burstLimit": 190, "latencyMs": 200, "latencyJitterMs": 0}
NODE_CLIENT = "@hubspot/api-client@13.4.0"


def naive(n):
    """One request per record, 8 workers, 10 s back-off on 429."""
    fake = Fake(LIMITS)
    try:
        def one(k):
            conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=60)
            body = json.dumps({"properties": {"email": "naive%d@example.com" % k, "firstname": "N%d" % k}})
            while True:
                conn.request("POST", "/crm/v3/objects/contacts", body,
                             {"Authorization": "Bearer test-token", "Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status != 429:
                    conn.close()
                    return r.status
                time.sleep(10)

        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            statuses = list(ex.map(one, range(n)))
        rate = n / (time.time() - t0)
        c = fake.call("GET", "/_fake/counters")
        row("peer: naive one request per record, %d contacts (records/s)" % n, "%.0f" % rate, "-")
        row("  naive: ratio to the 1,900 records/s ceiling", "%.3f" % (rate / CEILING), "-")
        row("  naive: 429 responses", str(c["total429"]), "-")
        row("  naive: records refused", str(sum(1 for s in statuses if s >= 300)), "0")
    finally:
        fake.stop()


def node_client(n):
    """HubSpot's Node client, batch create with its limiter and retry."""
    if not shutil.which("node") or not shutil.which("npm"):
        print("SKIP: HubSpot Node client peer: node/npm not installed")
        return
    scratch = tempfile.mkdtemp(prefix="hubsync-peer-node.")
    env = dict(os.environ, npm_config_cache=os.path.join(scratch, "cache"), npm_config_update_notifier="false")
    try:
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", NODE_CLIENT],
                           cwd=scratch, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print("SKIP: HubSpot Node client peer: npm could not install %s" % NODE_CLIENT)
            return
        shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_node.js"), scratch)
        fake = Fake(LIMITS)
        try:
            out = subprocess.run(["node", os.path.join(scratch, "peer_node.js"), fake.url, str(n)],
                                 cwd=scratch, capture_output=True, text=True, timeout=3600)
            c = fake.call("GET", "/_fake/counters")
            stats = fake.call("GET", "/_fake/stats")
        finally:
            fake.stop()
        if out.returncode != 0:
            print("HubSpot Node client peer failed: %s" % out.stderr.strip()[:300])
            return
        rate = n / float(out.stdout.strip())
        row("peer: HubSpot Node client batch API, %d contacts (records/s)" % n, "%.0f" % rate, "-")
        row("  Node client: ratio to the 1,900 records/s ceiling", "%.3f" % (rate / CEILING), "-")
        row("  Node client: 429 responses", str(c["total429"]), "-")
        row("  Node client: records in HubSpot", str(stats["contacts"]["live"]), str(n))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--naive", type=int, default=1000)
    ap.add_argument("--node", type=int, default=60000)
    args = ap.parse_args()
    naive(args.naive)
    node_client(args.node)


if __name__ == "__main__":
    main()
