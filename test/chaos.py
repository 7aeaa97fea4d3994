#!/usr/bin/env python3
"""Convergence under chaos (issue 11).

For --duration seconds, everything goes wrong at once:
  * app sessions insert, update and delete contacts, deals, invoices and
    contact-deal associations, some in large
    transactions, each tagged with its own hubsync.origin; a few inserts carry
    an invalid email (a fault meant to be permanent: it must dead-letter);
  * "reps" in the fake HubSpot create, edit, delete, restore and merge the
    same records, with webhooks on, duplicated and shuffled;
  * an application trigger on hubspot.deals makes the contacts of a deal
    that becomes closedwon customers (lifecyclestage), also when the deal
    is moved by a rep: its writes, made while hubsync applies HubSpot's
    changes, must reach HubSpot too;
  * the fake injects 10% 429, 5% 5xx, 1% hangs past hubsync's request
    timeout, 1% 207 partial failures and the odd connection reset;
  * hubsync workers are killed with kill -9 at random moments, and the whole
    server is restarted once.
Then the load stops, faults are cleared, and once both sides are quiet they
are compared record by record and property by property: no record missing
on either side, none duplicated, no value diverging, dead letters exactly
for the invalid emails.  Prints a summary table; exits 1 on any difference.

Short run (CI, via test/t/097_chaos.pl): --duration 30.  Long run: 1800.
Runs as an unprivileged user with PostgreSQL's binaries in $PG_BIN.
Usage: test/chaos.py [--duration S] [--seed N] [--apps N] [--reps N]
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
from decimal import Decimal, InvalidOperation

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
from lib import Cluster, Fake, free_port  # noqa: E402

# Properties compared on each side, per object type (typed mirror columns).
COMPARED = {
    "contacts": ["email", "firstname", "lastname", "company", "jobtitle", "city", "lifecyclestage"],
    "deals": ["dealname", "amount", "dealstage", "pipeline"],
    "invoices": ["hs_invoice_status", "hs_amount_billed", "hs_currency"],
}
NUMERIC = {("deals", "amount"), ("invoices", "hs_amount_billed")}
INVOICE_STATUSES = ["draft", "open", "paid", "voided"]
ASSOC_SWEEP_S = 10
STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
          "decisionmakerboughtin", "contractsent", "closedwon", "closedlost"]
FAULTS = {"429": 0.10, "500": 0.02, "502": 0.01, "503": 0.01, "504": 0.01,
          "hang": 0.01, "partial207": 0.01, "reset": 0.003}
REQUEST_TIMEOUT_MS = 2000


class Stats:
    """Counters shared by the load threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.n = {}

    def add(self, key, k=1):
        with self.lock:
            self.n[key] = self.n.get(key, 0) + k

    def get(self, key):
        return self.n.get(key, 0)


class Chaos:
    """One chaos run: the cluster, the fake, the load threads and the check."""

    def __init__(self, args):
        self.args = args
        self.stats = Stats()
        self.stop = threading.Event()
        self.bad_emails = set()
        self.bad_lock = threading.Lock()
        self.app_log = {}   # tag -> (start, end, outcome) of each app statement
        self.faults_log = []  # (time, what) of each kill and restart
        self.hook_port = free_port()
        url = "http://127.0.0.1:%d/hubspot/webhooks" % self.hook_port
        self.fake = Fake({"randomSeed": args.seed, "webhookUrl": url,
                          "webhookDuplicateProbability": 0.2, "webhookShuffle": True,
                          "hangMaxMs": 3 * REQUEST_TIMEOUT_MS, "searchIndexLagMs": 0,
                          "logInputIds": True})
        self.pg = Cluster({"hubsync.api_base_url": self.fake.url,
                           "hubsync.webhook_port": self.hook_port,
                           "hubsync.app_id": 54321, "hubsync.rate_limit": 190,
                           "hubsync.request_timeout": "%dms" % REQUEST_TIMEOUT_MS,
                           "hubsync.poll_association_interval": "%ds" % ASSOC_SWEEP_S,
                           "restart_after_crash": "on", "max_connections": 50})
        self.pg.sql("CREATE EXTENSION hubsync")
        self.pg.sql("SELECT hubsync.set_credentials(access_token => 'test-token', "
                    "client_secret => 'hubsync-test-secret')")
        # ownership: the billing side owns deal names, reps own job titles
        self.pg.sql("SELECT hubsync.set_owner('deals', 'dealname', 'postgres')")
        self.pg.sql("SELECT hubsync.set_owner('contacts', 'jobtitle', 'hubspot')")
        # the application's trigger: a won deal makes its contacts customers
        self.pg.sql("""
CREATE FUNCTION public.deal_won() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.dealstage = 'closedwon' AND OLD.dealstage IS DISTINCT FROM 'closedwon' THEN
        UPDATE hubspot.contacts c SET lifecyclestage = 'customer'
        WHERE c.lifecyclestage IS DISTINCT FROM 'customer' AND c.hs_object_id IN (
            SELECT a.from_id FROM hubspot.associations a
            WHERE a.from_type = 'contacts' AND a.to_type = 'deals' AND a.to_id = NEW.hs_object_id
            UNION ALL
            SELECT a.to_id FROM hubspot.associations a
            WHERE a.from_type = 'deals' AND a.to_type = 'contacts' AND a.from_id = NEW.hs_object_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER deal_won AFTER UPDATE ON hubspot.deals
    FOR EACH ROW EXECUTE FUNCTION public.deal_won();
""")

    # ---- load -----------------------------------------------------------

    def app_session(self, ix):
        """One application session: random writes until told to stop."""
        rnd = random.Random(self.args.seed * 100 + ix)
        n = 0
        while not self.stop.is_set():
            n += 1
            tag = "app%d-%d" % (ix, n)
            op = rnd.random()
            if op < 0.25:
                sql, kind = self.app_insert(rnd, ix, n, tag), "app inserts"
            elif op < 0.80:
                sql, kind = self.app_update(rnd, tag), "app updates"
            elif op < 0.86:
                sql, kind = self.app_association(rnd), "app association changes"
            elif op < 0.92:
                t = rnd.choice(list(COMPARED))
                sql = ("DELETE FROM hubspot.%s WHERE hubsync_id IN (SELECT hubsync_id FROM "
                       "hubspot.%s ORDER BY random() LIMIT 1)" % (t, t))
                kind = "app deletes"
            else:
                sql = ("UPDATE hubspot.contacts SET lastname = '%s' WHERE hubsync_id IN "
                       "(SELECT hubsync_id FROM hubspot.contacts ORDER BY random() LIMIT 200)" % tag)
                kind = "app large transactions"
            began = time.time()
            try:
                self.pg.sql("SET LOCAL hubsync.origin = 'app%d'; %s" % (ix, sql))
                self.stats.add(kind)
                self.app_log[tag] = (began, time.time(), "committed")
            except RuntimeError:
                self.stats.add("app errors (crash, restart, deadlock)")
                self.app_log[tag] = (began, time.time(), "failed")
                time.sleep(0.5)
            time.sleep(rnd.uniform(0.005, 0.05))

    @staticmethod
    def app_association(rnd):
        """SQL linking a random contact to a random deal, or removing a link."""
        if rnd.random() < 0.6:
            return ("INSERT INTO hubspot.associations (from_type, from_hubsync_id, to_type, to_hubsync_id) "
                    "SELECT 'contacts', c.hubsync_id, 'deals', d.hubsync_id "
                    "FROM (SELECT hubsync_id FROM hubspot.contacts ORDER BY random() LIMIT 1) c, "
                    "(SELECT hubsync_id FROM hubspot.deals ORDER BY random() LIMIT 1) d ON CONFLICT DO NOTHING")
        return ("DELETE FROM hubspot.associations WHERE ctid IN (SELECT ctid FROM hubspot.associations "
                "WHERE from_type = 'contacts' AND to_type = 'deals' ORDER BY random() LIMIT 1)")

    def app_insert(self, rnd, ix, n, tag):
        """SQL inserting a few contacts (1 in 100 with an invalid email), a deal or an invoice."""
        if rnd.random() < 0.2:
            return ("INSERT INTO hubspot.invoices (hs_currency, hs_amount_billed, hs_invoice_status) "
                    "VALUES ('%s', %s, 'draft')" % (rnd.choice(["EUR", "USD"]), Decimal(rnd.randint(1, 10 ** 7)) / 100))
        if rnd.random() < 0.5:
            amount = Decimal(rnd.randint(-10 ** 9, 10 ** 9)) / 100
            return ("INSERT INTO hubspot.deals (dealname, amount, dealstage, pipeline) "
                    "VALUES ('%s', %s, '%s', 'default')" % (tag, amount, rnd.choice(STAGES)))
        rows = []
        for k in range(rnd.randint(1, 5)):
            email = "%s-%d@app.test" % (tag, k)
            if rnd.random() < 0.01:
                email = "invalid-%s-%d" % (tag, k)
                with self.bad_lock:
                    self.bad_emails.add(email)
            rows.append("('%s', '%s', 'Town %d')" % (email, tag, rnd.randint(1, 50)))
        return "INSERT INTO hubspot.contacts (email, firstname, city) VALUES " + ", ".join(rows)

    def app_update(self, rnd, tag):
        """SQL updating a few random contacts or deals."""
        k = rnd.randint(1, 10)
        if rnd.random() < 0.2:
            return ("UPDATE hubspot.invoices SET hs_invoice_status = '%s', hs_amount_billed = %s "
                    "WHERE hubsync_id IN (SELECT hubsync_id FROM hubspot.invoices ORDER BY random() LIMIT %d)"
                    % (rnd.choice(INVOICE_STATUSES), Decimal(rnd.randint(1, 10 ** 7)) / 100, k))
        if rnd.random() < 0.5:
            return ("UPDATE hubspot.contacts SET firstname = '%s', company = 'Co %d' WHERE hubsync_id IN "
                    "(SELECT hubsync_id FROM hubspot.contacts ORDER BY random() LIMIT %d)"
                    % (tag, rnd.randint(1, 9), k))
        amount = Decimal(rnd.randint(0, 10 ** 12)) / 1000
        return ("UPDATE hubspot.deals SET amount = %s, dealstage = '%s', dealname = '%s' "
                "WHERE hubsync_id IN (SELECT hubsync_id FROM hubspot.deals ORDER BY random() LIMIT %d)"
                % (amount, rnd.choice(STAGES), tag, k))

    def remote_ids(self, t):
        """Ids of live records of a type in the fake (a sample is enough)."""
        d = self.fake.call("GET", "/_fake/records/%s?archived=false&limit=500" % t)
        return [r["id"] for r in d["results"]]

    def rep(self, ix):
        """A sales rep in HubSpot's UI: edits, creates, deletes, restores, merges."""
        rnd = random.Random(self.args.seed * 1000 + ix)
        deleted = []
        n = 0
        ids = {t: [] for t in COMPARED}
        while not self.stop.is_set():
            n += 1
            t = rnd.choice(list(COMPARED))
            if n % 20 == 1 or not ids[t]:
                ids[t] = self.remote_ids(t)
            op = rnd.random()
            try:
                if op < 0.15 or not ids[t]:
                    self.rep_create(rnd, t, ix, n)
                elif op < 0.80:
                    self.rep_edit(rnd, t, rnd.choice(ids[t]), ix, n)
                elif op < 0.88:
                    victim = rnd.choice(ids[t])
                    self.fake.call("POST", "/_fake/ui/%s/%s/delete" % (t, victim), {})
                    deleted.append((t, victim))
                    self.stats.add("rep deletes")
                elif op < 0.95 and deleted:
                    t2, victim = deleted.pop(rnd.randrange(len(deleted)))
                    self.fake.call("POST", "/_fake/ui/%s/%s/restore" % (t2, victim), {})
                    self.stats.add("rep restores")
                elif op < 0.975 and ids["contacts"] and ids["deals"]:
                    self.fake.call("POST", "/_fake/ui/associations", {
                        "fromObjectType": "contacts", "fromObjectId": rnd.choice(ids["contacts"]),
                        "toObjectType": "deals", "toObjectId": rnd.choice(ids["deals"]),
                        "remove": rnd.random() < 0.3})
                    self.stats.add("rep association changes")
                elif t == "contacts" and len(ids[t]) > 2:
                    a, b = rnd.sample(ids[t], 2)
                    self.fake.call("POST", "/_fake/ui/contacts/merge",
                                   {"primaryObjectId": a, "objectIdToMerge": b})
                    self.stats.add("rep merges")
            except (urllib.error.HTTPError, urllib.error.URLError):
                self.stats.add("rep actions refused (gone, conflict)")
            time.sleep(rnd.uniform(0.02, 0.1))

    def rep_create(self, rnd, t, ix, n):
        """A rep creates a record."""
        if t == "contacts":
            props = {"email": "rep%d-%d@rep.test" % (ix, n), "firstname": "Rep%d" % n,
                     "jobtitle": "Title %d" % n}
        elif t == "invoices":
            props = {"hs_currency": "EUR", "hs_amount_billed": "%d.75" % n, "hs_invoice_status": "draft"}
        else:
            props = {"dealname": "rep deal %d-%d" % (ix, n), "amount": "%d.5" % n,
                     "dealstage": rnd.choice(STAGES), "pipeline": "default"}
        self.fake.call("POST", "/_fake/ui/%s" % t, {"properties": props})
        self.stats.add("rep creates")

    def rep_edit(self, rnd, t, rid, ix, n):
        """A rep edits a record."""
        if t == "contacts":
            props = {"firstname": "rep%d-%d" % (ix, n), "jobtitle": "Title %d" % n}
        elif t == "invoices":
            props = {"hs_invoice_status": rnd.choice(INVOICE_STATUSES), "hs_amount_billed": "%d.50" % n}
        else:
            props = {"dealstage": rnd.choice(STAGES), "amount": "%d.25" % n,
                     "dealname": "rep edit %d" % n}
        self.fake.call("POST", "/_fake/ui/%s/%s" % (t, rid), {"properties": props})
        self.stats.add("rep edits")

    def killer(self):
        """kill -9 a random hubsync worker now and then; restart the server
        once, halfway through."""
        rnd = random.Random(self.args.seed)
        start = time.time()
        restarted = False
        while not self.stop.wait(rnd.uniform(5, 12)):
            if not restarted and time.time() - start > self.args.duration / 2:
                subprocess.run([os.path.join(self.pg_bin(), "pg_ctl"), "-D", self.pg.data,
                                "-m", "fast", "-w", "restart", "-l", os.path.join(self.pg.dir, "log")],
                               check=True, stdout=subprocess.DEVNULL)
                self.stats.add("server restarts")
                self.faults_log.append((time.time(), "server restarted (fast)"))
                restarted = True
                continue
            try:
                pids = self.pg.sql("SELECT pid FROM pg_stat_activity WHERE backend_type LIKE 'hubsync %'")
            except RuntimeError:
                continue
            pids = [int(p) for p in pids.split()]
            if pids:
                try:
                    victim = rnd.choice(pids)
                    os.kill(victim, signal.SIGKILL)
                    self.stats.add("workers killed (kill -9)")
                    self.faults_log.append((time.time(), "kill -9 of pid %d" % victim))
                except ProcessLookupError:
                    pass

    @staticmethod
    def pg_bin():
        return os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")

    # ---- the run ------------------------------------------------------

    def run(self):
        """Load with faults for the duration, then quiesce and compare."""
        self.pg.sql("INSERT INTO hubspot.contacts (email, firstname) "
                    "SELECT 'seed' || g || '@app.test', 'seed' FROM generate_series(1, 200) g")
        self.pg.sql("INSERT INTO hubspot.deals (dealname, amount, dealstage, pipeline) "
                    "SELECT 'seed ' || g, g * 10.5, 'appointmentscheduled', 'default' "
                    "FROM generate_series(1, 100) g")
        self.pg.sql("INSERT INTO hubspot.invoices (hs_currency, hs_amount_billed, hs_invoice_status) "
                    "SELECT 'EUR', g * 3.5, 'draft' FROM generate_series(1, 50) g")
        self.wait_quiet(120)
        self.fake.call("POST", "/_fake/faults", {"probability": FAULTS, "match": "/crm/"})
        threads = [threading.Thread(target=self.app_session, args=(i,)) for i in range(self.args.apps)]
        threads += [threading.Thread(target=self.rep, args=(i,)) for i in range(self.args.reps)]
        threads.append(threading.Thread(target=self.killer))
        for th in threads:
            th.start()
        time.sleep(self.args.duration)
        self.stop.set()
        for th in threads:
            th.join()
        faults = self.fake.call("GET", "/_fake/faults")
        self.stats.add("faults injected", faults.get("fired", 0))
        self.fake.call("DELETE", "/_fake/faults")
        started = time.time()
        quiet = self.wait_quiet(self.args.quiesce_timeout)
        self.stats.add("seconds to quiesce", int(time.time() - started))
        # association changes search cannot show (a restored record's links)
        # are the association sweep's to find: wait for one that started
        # after the load ended (the second to end after now)
        swept = self.wait_swept(self.args.quiesce_timeout) and self.wait_swept(self.args.quiesce_timeout)
        self.stats.add("seconds to quiesce and sweep associations", int(time.time() - started))
        quiet = self.wait_quiet(self.args.quiesce_timeout) and quiet and swept
        return self.compare(quiet)

    def wait_swept(self, timeout):
        """Wait until every type's association sweep has ended after now."""
        mark = self.pg.sql("SELECT now()")
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                behind = self.pg.sql(
                    "SELECT count(*) FROM hubsync.poll_state s "
                    "WHERE s.object_type IN (SELECT DISTINCT from_type FROM hubsync._association_pairs()) "
                    "  AND coalesce(s.associations_at <= '%s', true)" % mark)
            except RuntimeError:
                behind = "1"
            if behind == "0":
                return True
            time.sleep(1)
        print("the association sweep did not end within %d s" % timeout)
        return False

    def wait_quiet(self, timeout):
        """Wait until nothing is queued on either side, twice in a row."""
        deadline = time.time() + timeout
        calm = 0
        while time.time() < deadline:
            try:
                pending = self.pg.sql(
                    "SELECT (SELECT count(*) FROM hubsync.outbox) + "
                    "(SELECT count(*) FROM hubsync.inbox WHERE state = 'pending')")
            except RuntimeError:
                pending = "1"
            hooks = self.fake.call("GET", "/_fake/webhooks/pending")["total"]
            calm = calm + 1 if pending == "0" and hooks == 0 else 0
            if calm >= 3:
                return True
            time.sleep(1)
        return False

    # ---- the check ----------------------------------------------------

    def local_rows(self, t):
        """Local mirror rows of a type as dicts."""
        cols = ", ".join(COMPARED[t])
        out = self.pg.sql("SELECT coalesce(json_agg(r), '[]') FROM (SELECT hubsync_id, hs_object_id, %s "
                          "FROM hubspot.%s) r" % (cols, t))
        return json.loads(out)

    def remote_rows(self, t):
        """Every live record of a type in the fake."""
        rows, offset = [], 0
        while True:
            d = self.fake.call("GET", "/_fake/records/%s?archived=false&offset=%d&limit=1000" % (t, offset))
            rows += d["results"]
            offset += len(d["results"])
            if not d["results"] or offset >= d["total"]:
                return rows

    @staticmethod
    def same(t, prop, local, remote):
        """Equal under HubSpot's wire rules: '' is NULL, numbers by value."""
        if local in (None, "") or remote in (None, ""):
            return local in (None, "") and remote in (None, "")
        if (t, prop) in NUMERIC:
            try:
                return Decimal(str(local)) == Decimal(remote)
            except InvalidOperation:
                return False
        return str(local) == remote

    @staticmethod
    def hms(t):
        """A wall-clock time as HH:MM:SS.mmm (UTC)."""
        return time.strftime("%H:%M:%S", time.gmtime(t)) + ".%03d" % (int(t * 1000) % 1000)

    def explain(self, t, rid, prop):
        """Print both sides' history of one differing record (or property)."""
        print("\n--- %s %s %s" % (t, rid, prop or "(record)"))
        try:
            rec = self.fake.call("GET", "/_fake/records/%s/%s" % (t, rid))
        except urllib.error.HTTPError as e:
            rec = {"error": e.code}
        hist = rec.get("propertiesWithHistory", {}).get(prop, []) if prop else []
        print("HubSpot: archived=%s mergedInto=%s" % (rec.get("archived"), rec.get("mergedInto")))
        for h in reversed(hist[:12]):
            app = self.app_log.get(h.get("value") or "")
            print("  HubSpot %s %-14s %s %s%s" % (h.get("timestamp"), h.get("sourceType"), h.get("sourceId"),
                                                h.get("value"), "  (app statement %s-%s %s)" % (
                                                    self.hms(app[0]), self.hms(app[1]), app[2]) if app else ""))
        cond = "AND i.event ->> 'propertyName' = %s" % ("'%s'" % prop) if prop else ""
        print(self.pg.sql(
            "SELECT string_agg(format('  inbox %%s %%s %%s %%s %%s -> %%s %%s (received %%s applied %%s)', i.occurred_at, "
            "i.subscription_type, i.event ->> 'changeSource', i.event ->> 'sourceId', "
            "i.event ->> 'propertyValue', i.state, coalesce(i.error, ''), to_char(i.received_at, 'HH24:MI:SS.MS'), "
            "to_char(i.applied_at, 'HH24:MI:SS.MS')), E'\\n' ORDER BY i.occurred_at) "
            "FROM hubsync.inbox i WHERE i.object_id = %s %s" % (rid, cond)))
        print(self.pg.sql(
            "SELECT string_agg(format('  change %%s %%s %%s %%s %%s (before %%s)', to_char(c.at, 'HH24:MI:SS.MS'), "
            "c.direction, c.op, c.origin, c.properties, c.before), E'\\n' ORDER BY c.id) FROM hubsync.changes c "
            "WHERE c.hs_object_id = %s" % rid))
        hid = self.pg.sql("SELECT hubsync_id FROM hubspot.%s WHERE hs_object_id = %s" % (t, rid))
        if not hasattr(self, "requests"):
            self.requests = self.fake.call("GET", "/_fake/requests")["requests"]
        for r in self.requests:
            ids = r.get("ids") or []
            for k, key in enumerate(ids):
                if key in (rid, hid):
                    props = (r.get("props") or [None] * len(ids))[k]
                    print("  request %s %s %s -> %s%s %s" % (
                        self.hms(r["startMs"] / 1000.0),
                        r["method"], r["path"].rsplit("/", 2)[-1], r["status"],
                        " fault " + r["fault"] if r.get("fault") else "",
                        json.dumps(props.get(prop) if prop and props else props)))
        print(self.pg.sql(
            "SELECT format('  sync_state remote %%s version %%s synced_at %%s', s.remote -> %s, s.versions -> %s, "
            "(extract(epoch FROM s.synced_at) * 1000)::bigint) FROM hubsync.sync_state s "
            "WHERE s.hs_object_id = %s" % ("'%s'" % prop if prop else "'-'", "'%s'" % prop if prop else "'-'", rid)))

    def compare(self, quiet):
        """Compare both sides; print the summary; True when they agree."""
        problems = []
        self.examples = []
        table = []
        for t in COMPARED:
            local = self.local_rows(t)
            remote = {r["id"]: r for r in self.remote_rows(t)}
            linked = {str(r["hs_object_id"]): r for r in local if r["hs_object_id"] is not None}
            unsynced = [r for r in local if r["hs_object_id"] is None]
            unexpected = [r for r in unsynced if r.get("email") not in self.bad_emails]
            missing_local = sorted(set(remote) - set(linked))
            missing_remote = sorted(set(linked) - set(remote))
            self.examples += [(t, rid, None) for rid in missing_remote + missing_local]
            diverging = []
            for rid in set(linked) & set(remote):
                for p in COMPARED[t]:
                    lv, rv = linked[rid][p], remote[rid]["properties"].get(p)
                    if not self.same(t, p, lv, rv):
                        diverging.append((rid, p, lv, rv))
                        self.examples.append((t, rid, p))
            table.append((t, len(local), len(remote), len(missing_local), len(missing_remote),
                          len(diverging), len(unsynced)))
            for label, items in (("missing locally", missing_local), ("missing in HubSpot", missing_remote),
                                 ("diverging", diverging), ("never synced (valid)", unexpected)):
                if items:
                    problems.append("%s %s: %d, e.g. %s" % (t, label, len(items), items[:3]))
        # associations, contact -> deal, both sides
        local_pairs = set(tuple(x.split(":")) for x in self.pg.sql(
            "SELECT from_id || ':' || to_id FROM hubspot.associations WHERE from_type = 'contacts' "
            "AND to_type = 'deals' AND from_id IS NOT NULL AND to_id IS NOT NULL").split())
        # (HubSpot keeps the links of a record in the recycle bin, for a
        # restore; only links between live records count)
        live_deals = set(str(r["id"]) for r in self.remote_rows("deals"))
        remote_pairs = set()
        for r in self.remote_rows("contacts"):
            rec = self.fake.call("GET", "/_fake/records/contacts/%s" % r["id"])
            for link in (rec.get("associations") or {}).get("deals", []):
                if str(link["id"]) in live_deals:
                    remote_pairs.add((str(r["id"]), str(link["id"])))
        only_local, only_remote = sorted(local_pairs - remote_pairs), sorted(remote_pairs - local_pairs)
        table.append(("contact-deal links", len(local_pairs), len(remote_pairs), len(only_remote),
                      len(only_local), 0, 0))
        if only_local or only_remote:
            problems.append("associations differ: %d only here, %d only in HubSpot, e.g. %s %s"
                            % (len(only_local), len(only_remote), only_local[:3], only_remote[:3]))
            self.assoc_examples = (only_local + only_remote)[:3]
        dead = json.loads(self.pg.sql(
            "SELECT coalesce(json_agg(json_build_object('type', d.object_type, 'op', d.op, 'status', d.status, "
            "'category', d.category, 'message', d.message, 'properties', d.properties)), '[]') "
            "FROM hubsync.dead_letters d"))
        # expected: the invalid emails (their insert, or a later write to the row)
        bad_dead = [d for d in dead if "invalid-" not in json.dumps(d) and "INVALID_EMAIL" not in json.dumps(d)]
        with self.bad_lock:
            bad_local = int(self.pg.sql("SELECT count(*) FROM hubspot.contacts WHERE email LIKE 'invalid-%'"))
        counters = self.fake.call("GET", "/_fake/counters")
        dups = counters["duplicates"]
        if bad_dead:
            problems.append("dead letters not caused by an invalid email: %d, e.g. %s" % (len(bad_dead), bad_dead[:2]))
        if len(dead) < bad_local:
            problems.append("%d invalid emails in the mirror but only %d dead letters" % (bad_local, len(dead)))
        if dups.get("email") or dups.get("hubsync_id"):
            problems.append("duplicates in HubSpot: %s" % dups)
        hooks = counters.get("webhooks", {})
        if hooks.get("eventsDropped"):
            problems.append("the fake gave up delivering %d webhook events" % hooks["eventsDropped"])
        if not quiet:
            problems.append("never quiet: changes still queued at the end")
        for need in ("app updates", "rep edits", "app association changes", "rep association changes",
                     "workers killed (kill -9)", "server restarts"):
            if self.stats.get(need) == 0:
                problems.append("the run had no %s: too short to prove anything" % need)

        print("\nhubsync chaos run: %d s, seed %d, %d app sessions, %d reps"
              % (self.args.duration, self.args.seed, self.args.apps, self.args.reps))
        print("%-18s %8s %8s %14s %16s %10s %9s" % ("type", "local", "remote", "missing local",
                                                   "missing remote", "diverging", "unsynced"))
        for r in table:
            print("%-18s %8d %8d %14d %16d %10d %9d" % r)
        for k in sorted(self.stats.n):
            print("  %-40s %8d" % (k, self.stats.n[k]))
        print("  %-40s %8d" % ("429 answers", counters.get("total429", 0)))
        print("  %-40s %8d" % ("dead letters (expected: invalid emails)", len(dead)))
        print("  %-40s %8d" % ("conflicts recorded", int(self.pg.sql("SELECT count(*) FROM hubsync.conflicts"))))
        print("  %-40s %8d" % ("trigger writes pushed (origin trigger)", int(self.pg.sql(
            "SELECT count(*) FROM hubsync.changes WHERE direction = 'out' AND origin = 'trigger'"))))
        for k in ("eventsGenerated", "duplicatesInjected", "deliveriesSent", "deliveriesFailed", "eventsDropped"):
            print("  %-40s %8d" % ("webhook " + k, hooks.get(k, 0)))
        print("  %-40s %8s" % ("duplicates in HubSpot (email, hubsync_id)",
                               "%s, %s" % (dups.get("email", 0), dups.get("hubsync_id", 0))))
        for p in problems:
            print("DIFFERENCE: " + p)
        if self.examples:
            print("\n" + "; ".join("%s %s" % (self.hms(at), what) for at, what in self.faults_log))
        for t, rid, prop in self.examples[:self.args.explain]:
            self.explain(t, rid, prop)
        for c, d in getattr(self, "assoc_examples", []):
            print("\n--- contact %s - deal %s" % (c, d))
            print(self.pg.sql(
                "SELECT string_agg(format('  inbox %%s %%s %%s removed=%%s -> %%s %%s (applied %%s)', i.occurred_at, "
                "i.subscription_type, i.event ->> 'changeSource', i.event ->> 'associationRemoved', i.state, "
                "coalesce(i.error, ''), to_char(i.applied_at, 'HH24:MI:SS.MS')), E'\\n' ORDER BY i.occurred_at) "
                "FROM hubsync.inbox i WHERE i.subscription_type LIKE '%%associationChange' AND "
                "((i.event ->> 'fromObjectId') IN ('%s', '%s') AND (i.event ->> 'toObjectId') IN ('%s', '%s'))"
                % (c, d, c, d)))
            print("  contact rows: %s; deal rows: %s; merges: %s" % (
                self.pg.sql("SELECT count(*) FROM hubspot.contacts WHERE hs_object_id = %s" % c),
                self.pg.sql("SELECT count(*) FROM hubspot.deals WHERE hs_object_id = %s" % d),
                self.pg.sql("SELECT string_agg(merged_id || '->' || survivor_id, ',') FROM hubsync.merges "
                            "WHERE survivor_id IN (%s, %s) OR merged_id IN (%s, %s)" % (c, d, c, d))))
        print("RESULT: %s" % ("converged" if not problems else "DIVERGED"), flush=True)
        return not problems

    def close(self):
        self.pg.stop()
        self.fake.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--apps", type=int, default=3)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--quiesce-timeout", type=int, default=300)
    ap.add_argument("--explain", type=int, default=4, help="differences to explain in detail")
    chaos = Chaos(ap.parse_args())
    try:
        ok = chaos.run()
    finally:
        chaos.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
