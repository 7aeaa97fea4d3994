#!/usr/bin/env python3
"""Webhook inbound benchmark for hubsync (issue 5).

Starts a throwaway PostgreSQL cluster with hubsync preloaded (binaries from
PATH; run as a non-root user, e.g. the postgres user), then measures:

  1. events/s stored by the embedded receiver: signed deliveries of 100
     events each, 10 concurrent clients (HubSpot's own concurrency), while
     the inbox processor is held back so only the receiver works;
  2. delivery answer latency p50/p99 of those deliveries;
  3. events/s applied to the mirror by the pull worker once released
     (propertyChange events on existing deals: UPDATE, sync_state, change
     feed, NOTIFY);
  4. the CPU time the receiver and the pull worker spent per event (from
     /proc), which varies much less than the rates when the machine is
     shared.

Prints figures only; there are no timed asserts.  Loopback traffic only.
Usage: bench/webhook_bench.py [--deliveries-per-client 50] [--clients 10]
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import row  # noqa: E402

SECRET = "hubsync-bench-secret"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    """User + system CPU time a process has used (Linux /proc), or None."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def worker_pid(sock, port, backend_type):
    return psql(sock, port, "SELECT pid FROM pg_stat_activity WHERE backend_type = '%s'"
                % backend_type)


def psql(sock, port, sql):
    out = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-h", sock, "-p", str(port),
                          "-d", "postgres", "-c", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--deliveries-per-client", type=int, default=50)
    ap.add_argument("--events-per-delivery", type=int, default=100)
    ap.add_argument("--deals", type=int, default=2000)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="hubsync-bench-")
    data = os.path.join(tmp, "data")
    pgport, hookport = free_port(), free_port()
    subprocess.run(["initdb", "-D", data, "-A", "trust", "-N"], check=True,
                   capture_output=True)
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write("shared_preload_libraries = 'hubsync'\n"
                "hubsync.database = 'postgres'\n"
                "listen_addresses = ''\n"
                "unix_socket_directories = '%s'\n"
                "port = %d\n"
                "hubsync.webhook_port = %d\n"
                "hubsync.api_base_url = 'http://127.0.0.1:1'\n"
                "synchronous_commit = on\n" % (tmp, pgport, hookport))
    subprocess.run(["pg_ctl", "-D", data, "-l", os.path.join(tmp, "log"), "-w", "start"],
                   check=True, capture_output=True)
    holder = None
    try:
        psql(tmp, pgport, "CREATE EXTENSION hubsync")
        psql(tmp, pgport, "SELECT hubsync.set_credentials(client_secret => '%s')" % SECRET)
        # existing deals, written without capture (nothing to push)
        psql(tmp, pgport,
             "SET session_replication_role = replica; "
             "INSERT INTO hubspot.deals (hs_object_id, dealname, amount, dealstage) "
             "SELECT 1000 + g, 'deal ' || g, g, 'appointmentscheduled' FROM generate_series(1, %d) g"
             % args.deals)
        url = "http://127.0.0.1:%d/hubspot/webhooks" % hookport
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", hookport, timeout=2)
                c.request("GET", "/")
                c.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)

        # hold the inbox processor back: it blocks on its first write
        holder = subprocess.Popen(["psql", "-X", "-q", "-h", tmp, "-p", str(pgport), "-d", "postgres"],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        holder.stdin.write("BEGIN; LOCK TABLE hubsync.sync_state IN EXCLUSIVE MODE;\n")
        holder.stdin.flush()
        time.sleep(0.5)

        webhook_pid = worker_pid(tmp, pgport, "hubsync webhook")
        pull_pid = worker_pid(tmp, pgport, "hubsync pull")
        webhook_cpu0 = cpu_seconds(webhook_pid)
        base = int(time.time() * 1000) - 1000
        latencies = []
        lock = threading.Lock()
        errors = []

        def client(n):
            conn = http.client.HTTPConnection("127.0.0.1", hookport, timeout=10)
            lat = []
            for d in range(args.deliveries_per_client):
                events = []
                for e in range(args.events_per_delivery):
                    seq = (n * args.deliveries_per_client + d) * args.events_per_delivery + e
                    events.append({
                        "eventId": seq + 1, "subscriptionId": 7, "portalId": 62515,
                        "appId": 54321, "occurredAt": base + seq,
                        "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
                        "objectId": 1001 + seq % args.deals, "propertyName": "amount",
                        "propertyValue": "%d.%02d" % (seq, seq % 100),
                        "changeSource": "CRM_UI", "sourceId": "userId:1"})
                body = json.dumps(events, separators=(",", ":"))
                ts = str(int(time.time() * 1000))
                sig = base64.b64encode(hmac.new(SECRET.encode(), ("POST" + url + body + ts).encode(),
                                                hashlib.sha256).digest()).decode()
                t0 = time.perf_counter()
                conn.request("POST", "/hubspot/webhooks", body=body, headers={
                    "Content-Type": "application/json", "X-HubSpot-Signature-v3": sig,
                    "X-HubSpot-Request-Timestamp": ts})
                r = conn.getresponse()
                r.read()
                lat.append(time.perf_counter() - t0)
                if r.status != 200:
                    errors.append(r.status)
            with lock:
                latencies.extend(lat)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        store_s = time.perf_counter() - t0
        webhook_cpu = cpu_seconds(webhook_pid)
        total = args.clients * args.deliveries_per_client * args.events_per_delivery
        stored = int(psql(tmp, pgport, "SELECT count(*) FROM hubsync.inbox"))

        # release the processor and time the apply
        pull_cpu0 = cpu_seconds(pull_pid)
        t1 = time.perf_counter()
        holder.stdin.write("COMMIT;\n\\q\n")
        holder.stdin.flush()
        holder.wait()
        holder = None
        while int(psql(tmp, pgport, "SELECT count(*) FROM hubsync.inbox WHERE state = 'pending'")) > 0:
            time.sleep(0.05)
        apply_s = time.perf_counter() - t1
        pull_cpu = cpu_seconds(pull_pid)
        applied = int(psql(tmp, pgport, "SELECT count(*) FROM hubsync.inbox WHERE state <> 'pending'"))
        failed = int(psql(tmp, pgport, "SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"))

        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
        print("hubsync webhook bench: %d clients x %d deliveries x %d events"
              % (args.clients, args.deliveries_per_client, args.events_per_delivery))
        row("webhook events stored by the receiver (events/s)", "%.0f" % (stored / store_s), ">= 10000")
        row("webhook delivery answer latency p50 (ms)", "%.1f" % p(0.5), "-")
        row("webhook delivery answer latency p99 (ms)", "%.1f" % p(0.99), "< 100")
        row("webhook events applied to the mirror (events/s)", "%.0f" % (applied / apply_s), ">= 5000")
        row("  events failed", str(failed), "0")
        # CPU time per event: steadier than rates on a shared, loaded machine
        if None not in (webhook_cpu0, webhook_cpu, pull_cpu0, pull_cpu) and stored and applied:
            row("  receiver CPU per event (us)", "%.0f" % ((webhook_cpu - webhook_cpu0) * 1e6 / stored), "-")
            row("  apply CPU per event (us)", "%.0f" % ((pull_cpu - pull_cpu0) * 1e6 / applied), "-")
        if errors or stored != total:
            print("  WARNING: %d non-200 answers, %d of %d events stored" % (len(errors), stored, total))
    finally:
        if holder:
            holder.kill()
        subprocess.run(["pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
