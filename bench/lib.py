"""Shared plumbing for hubsync benchmarks: a throwaway cluster with hubsync
preloaded, the fake HubSpot, and small helpers.  Standard library only; run
as an unprivileged user (bench/run takes care of that when started as root).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")


def free_port():
    """A free TCP port on loopback."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Fake:
    """The fake HubSpot in a child process."""

    def __init__(self, config=None):
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "test", "fake_hubspot.py"),
                                      "--port", "0"], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = "http://127.0.0.1:%d" % self.port
        if config:
            self.call("POST", "/_fake/config", config)

    def call(self, method, path, body=None):
        """One control-API call; returns decoded JSON."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def stop(self):
        """Terminate the fake."""
        self.proc.terminate()
        self.proc.wait(10)


class Cluster:
    """A throwaway PostgreSQL cluster with hubsync preloaded."""

    def __init__(self, settings):
        self.dir = tempfile.mkdtemp(prefix="hubsync-bench.")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        subprocess.run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres"],
                       check=True, stdout=subprocess.DEVNULL)
        conf = {"listen_addresses": "''", "unix_socket_directories": "'%s'" % self.dir,
                "port": str(self.port), "shared_preload_libraries": "'hubsync'",
                "hubsync.database": "'postgres'", "max_wal_size": "'4GB'",
                "shared_buffers": "'512MB'"}
        conf.update({k: ("'%s'" % v if isinstance(v, str) else str(v)) for k, v in settings.items()})
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))
        subprocess.run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l",
                        os.path.join(self.dir, "log"), "-w", "start"], check=True,
                       stdout=subprocess.DEVNULL)

    def env(self):
        """Environment for libpq clients."""
        e = dict(os.environ, PGHOST=self.dir, PGPORT=str(self.port), PGUSER="postgres",
                 PGDATABASE="postgres")
        return e

    def sql(self, text):
        """Run SQL with psql; returns unaligned output."""
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-Atq", "-v", "ON_ERROR_STOP=1",
                            "-c", text], env=self.env(), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql failed (%d): %s" % (r.returncode, r.stderr.strip()))
        return r.stdout.strip()

    def sql_many(self, *statements):
        """Run statements with psql, each in its own transaction."""
        args = [os.path.join(PG_BIN, "psql"), "-X", "-Atq", "-v", "ON_ERROR_STOP=1"]
        for st in statements:
            args += ["-c", st]
        r = subprocess.run(args, env=self.env(), check=True, capture_output=True, text=True)
        return r.stdout.strip()

    def wait(self, query, timeout=600, interval=0.05):
        """Poll until the query returns 't'."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.sql(query) == "t":
                return True
            time.sleep(interval)
        raise RuntimeError("timed out waiting for: " + query)

    def worker_pid(self, kind):
        """Pid of a hubsync worker."""
        return int(self.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'hubsync %s'" % kind))

    def stop(self):
        """Stop and remove the cluster; its server log stays in the
        system temporary folder as hubsync-bench-last.log."""
        subprocess.run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.copy(os.path.join(self.dir, "log"),
                    os.path.join(tempfile.gettempdir(), "hubsync-bench-last.log"))
        if not os.environ.get("HUBSYNC_BENCH_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def rss_kb(pid):
    """Private resident memory of a process, in kB (RssAnon: the shared
    buffers a backend touches count in VmRSS but are not its own)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def cpu_ticks(pid):
    """User plus system CPU time of a process so far, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_us_per(ticks, n):
    """Microseconds of CPU per item, from a number of clock ticks."""
    return ticks * 1e6 / os.sysconf("SC_CLK_TCK") / max(n, 1)


def percentile(values, p):
    """The p-th percentile (0-100) of a list."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def row(figure, value, target):
    """Print one result line; with HUBSYNC_BENCH_FIGURES set, also append it
    there as JSON for bench/run's summary table."""
    print("%-58s %14s   target %s" % (figure, value, target), flush=True)
    path = os.environ.get("HUBSYNC_BENCH_FIGURES")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"figure": figure, "value": value, "target": target}) + "\n")
