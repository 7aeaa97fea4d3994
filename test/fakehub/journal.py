"""The Webhooks Journal (2026-03): subscriptions, entries by offset, pre-signed downloads, expiry.

Every change the store makes already becomes webhook events (webhooks.py);
the same changes, when a journal subscription covers them, also become one
journal entry per store commit.  An entry has an offset (a UUID) and a file
of events, downloaded from a pre-signed URL this fake serves itself (no
bearer token: one sent with it is refused, as a pre-signed storage URL
refuses a second authentication).  Entries older than journalRetentionMs
(three days) are gone: an offset the journal no longer has answers 404.
See test/fake/README.md for the sources and the choices made."""

import threading
import uuid

from .util import ApiError, error_body, fail, iso_ms, now_ms

VERSIONS = ("2026-03",)
FIRST_SUBSCRIPTION = 5000001
SUB_TYPES = ("OBJECT", "ASSOCIATION")
ALL_ACTIONS = ("CREATE", "UPDATE", "DELETE", "MERGE", "RESTORE", "ASSOCIATION_ADDED",
               "ASSOCIATION_REMOVED", "SNAPSHOT", "APP_INSTALL", "APP_UNINSTALL",
               "ADDED_TO_LIST", "REMOVED_FROM_LIST", "GDPR_DELETE")
_ACTION_OF = {"creation": "CREATE", "propertyChange": "UPDATE", "deletion": "DELETE",
              "privacyDeletion": "GDPR_DELETE", "merge": "MERGE", "restore": "RESTORE"}
COUNTER_KEYS = ("entries", "events", "reads", "downloads", "downloadsRefusedAuth",
                "downloadsExpired", "offsetsNotFound", "expiredEntries")


class Journal:
    """Subscriptions, entries and the files behind their pre-signed URLs."""

    def __init__(self, hub):
        """Empty journal."""
        self.hub = hub
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        """Forget subscriptions, entries, files and counters."""
        with self.lock:
            self.subs = {}
            self.next_sub = FIRST_SUBSCRIPTION
            self.entries = []          # [{"offset", "at", "events"}], oldest first
            self.files = {}            # token -> (offset, expires ms)
            self.counters = dict.fromkeys(COUNTER_KEYS, 0)

    # ----- recording -----------------------------------------------------
    def _sub_for(self, stype, action, tid):
        """id of an active subscription covering (type, action, objectTypeId), or None."""
        for s in self.subs.values():
            if s["subscriptionType"] == stype and s["objectTypeId"] == tid and \
                    action in s["actions"]:
                return s["id"]
        return None

    def _entry_event(self, ev):
        """A webhook-shaped event as a journal event, or None if unsubscribed."""
        kind = ev["subscriptionType"].split(".", 1)[1]
        tid = ev.get("objectTypeId")
        if kind == "associationChange":
            stype = "ASSOCIATION"
            action = "ASSOCIATION_REMOVED" if ev.get("associationRemoved") else "ASSOCIATION_ADDED"
        else:
            stype, action = "OBJECT", _ACTION_OF.get(kind)
        sub = self._sub_for(stype, action, tid) if action else None
        if sub is None:
            return None
        out = {k: v for k, v in ev.items()
               if k not in ("subscriptionType", "attemptNumber", "isSensitive")}
        out.update(subscriptionId=sub, subscriptionType=stype, action=action, objectTypeId=tid)
        return out

    def record(self, staged):
        """One entry of the journal events of one store commit (caller holds the store lock)."""
        with self.lock:
            if not self.subs:
                return
        hooks = self.hub.hooks
        events = []
        for item in staged:
            for ev in hooks._expand(item, subscribe=lambda *a: 0, with_tid=True):
                with self.lock:
                    jev = self._entry_event(ev)
                if jev is not None:
                    events.append(jev)
        if not events:
            return
        with self.lock:
            self.entries.append({"offset": str(uuid.uuid4()), "at": now_ms(), "events": events})
            self.counters["entries"] += 1
            self.counters["events"] += len(events)

    def _expire(self, older_than=None):
        """Drop entries past retention (or older than the given ms); caller holds lock."""
        cut = older_than if older_than is not None else \
            now_ms() - self.hub.cfg["journalRetentionMs"]
        keep = [e for e in self.entries if e["at"] >= cut]
        self.counters["expiredEntries"] += len(self.entries) - len(keep)
        self.entries = keep

    def expire(self, older_than=None):
        """Control: drop entries older than a time (default: all of them)."""
        with self.lock:
            before = len(self.entries)
            self._expire(now_ms() + 1 if older_than is None else older_than)
            return before - len(self.entries)

    # ----- reading -------------------------------------------------------
    def _fetch_response(self, entry, base):
        """JournalFetchResponse of an entry, with a fresh pre-signed URL."""
        token = uuid.uuid4().hex
        expires = now_ms() + self.hub.cfg["journalUrlTtlMs"]
        self.files[token] = (entry["offset"], expires)
        if len(self.files) > 100000:
            now = now_ms()
            self.files = {t: f for t, f in self.files.items() if f[1] > now}
        return {"currentOffset": entry["offset"], "expiresAt": iso_ms(expires),
                "url": "%s/_journal-files/%s?X-Fake-Signature=%s" % (base, token, token[:16])}

    def _position(self, offset):
        """Index of an offset in entries, or 404 (expired or unknown)."""
        for i, e in enumerate(self.entries):
            if e["offset"] == offset:
                return i
        self.counters["offsetsNotFound"] += 1
        raise ApiError(404, error_body(
            "Offset %s was not found: it expired or does not exist" % offset,
            "OBJECT_NOT_FOUND"))

    def pick(self, which, base, offset=None, count=1):
        """Entries for earliest / latest / next: list of JournalFetchResponse."""
        with self.lock:
            self._expire()
            self.counters["reads"] += 1
            if which == "earliest":
                chosen = self.entries[:count]
            elif which == "latest":
                chosen = self.entries[-count:] if self.entries else []
            else:
                i = self._position(offset)
                chosen = self.entries[i + 1:i + 1 + count]
            return [self._fetch_response(e, base) for e in chosen]

    def read(self, offsets, base):
        """batch/read: (results, errors) for the given offsets."""
        with self.lock:
            self._expire()
            self.counters["reads"] += 1
            by = {e["offset"]: e for e in self.entries}
            results, errors = [], []
            for o in offsets:
                if o in by:
                    results.append(self._fetch_response(by[o], base))
                else:
                    errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                                   "message": "Offset %s was not found" % o,
                                   "context": {"offset": [o]}})
            return results, errors

    def download(self, token, authorization):
        """The file behind a pre-signed URL: (status, body)."""
        with self.lock:
            if authorization:
                self.counters["downloadsRefusedAuth"] += 1
                raise ApiError(400, error_body(
                    "Only one auth mechanism allowed: the URL is pre-signed, "
                    "send no Authorization header", "VALIDATION_ERROR"))
            f = self.files.get(token)
            if f is None or f[1] < now_ms():
                self.counters["downloadsExpired"] += 1
                raise ApiError(403, error_body("Request has expired", "FORBIDDEN"))
            for e in self.entries:
                if e["offset"] == f[0]:
                    self.counters["downloads"] += 1
                    return 200, e["events"]
            self.counters["downloadsExpired"] += 1
            raise ApiError(403, error_body("The entry has expired", "FORBIDDEN"))

    # ----- subscriptions -------------------------------------------------
    def create_sub(self, body):
        """POST /webhooks-journal/subscriptions/{v}: a SubscriptionResponse."""
        cfg = self.hub.cfg
        stype = body.get("subscriptionType")
        if stype not in SUB_TYPES:
            fail(400, "subscriptionType must be OBJECT or ASSOCIATION (others are not faked)")
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions or \
                any(a not in ALL_ACTIONS for a in actions):
            fail(400, "actions must be a non-empty list of %s" % ", ".join(ALL_ACTIONS))
        tid = body.get("objectTypeId")
        if not isinstance(tid, str) or not tid:
            fail(400, "objectTypeId is required")
        if body.get("portalId") != cfg["portalId"]:
            fail(400, "portalId must be the account the app is installed in (%s)" % cfg["portalId"])
        required = ("objectIds", "properties") if stype == "OBJECT" else \
            ("objectIds", "associatedObjectTypeIds")
        for k in required:
            if not isinstance(body.get(k), list):
                fail(400, "%s is required (an array; empty for all)" % k)
        now = iso_ms(now_ms())
        with self.lock:
            sid = self.next_sub
            self.next_sub += 1
            sub = {"id": sid, "appId": cfg["appId"], "portalId": cfg["portalId"],
                   "subscriptionType": stype, "objectTypeId": tid, "actions": list(actions),
                   "objectIds": body.get("objectIds", []), "createdAt": now, "updatedAt": now,
                   "createdBy": cfg["oauthUserId"]}
            for k in ("properties", "associatedObjectTypeIds"):
                if k in body:
                    sub[k] = body[k]
            self.subs[sid] = sub
            return dict(sub)

    def list_subs(self):
        """All subscriptions."""
        with self.lock:
            return [dict(s) for s in self.subs.values()]

    def get_sub(self, sid):
        """One subscription, or 404."""
        with self.lock:
            s = self.subs.get(sid)
            if s is None:
                raise ApiError(404, error_body("Subscription %s not found" % sid,
                                               "OBJECT_NOT_FOUND"))
            return dict(s)

    def delete_sub(self, sid):
        """Delete one subscription, or 404."""
        with self.lock:
            if self.subs.pop(sid, None) is None:
                raise ApiError(404, error_body("Subscription %s not found" % sid,
                                               "OBJECT_NOT_FOUND"))

    def snapshot(self):
        """Control view: counters, subscriptions, entries kept."""
        with self.lock:
            return {"counters": dict(self.counters), "subscriptions": list(self.subs.values()),
                    "entries": len(self.entries),
                    "latestOffset": self.entries[-1]["offset"] if self.entries else None,
                    "events": [ev for e in self.entries[-50:] for ev in e["events"]]}


# ----- routes ------------------------------------------------------------------
READ = "developer.webhooks_journal.read"
SUBS_READ = "developer.webhooks_journal.subscriptions.read"
SUBS_WRITE = "developer.webhooks_journal.subscriptions.write"


def _check(hub, req, v, scope=READ):
    """Bearer token: the app's client-credentials token carrying `scope`
    (401 for any other token, 403 without the scope), and the version."""
    hub.auth.check_app_token(req.headers.get("Authorization"), scope)
    if v not in VERSIONS:
        raise ApiError(404, error_body("Unknown API version %s" % v, "OBJECT_NOT_FOUND"))


def _sid(text):
    """Subscription id path segment -> int (404 when not a number)."""
    try:
        return int(text)
    except ValueError:
        raise ApiError(404, error_body("Subscription %s not found" % text, "OBJECT_NOT_FOUND"))


def _count(text):
    """count path segment: 1..1000."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1 or n > 1000:
        fail(400, "count must be between 1 and 1000")
    return n


def _batch(results, errors=None):
    """BatchResponseJournalFetchResponse (WithErrors when errors)."""
    t = iso_ms(now_ms())
    out = {"status": "COMPLETE", "results": results, "requestedAt": t, "startedAt": t,
           "completedAt": t}
    if errors:
        out["errors"] = errors
        out["numErrors"] = len(errors)
        return 207, out
    return 200, out


def _single(hub, req, which, offset=None):
    """One entry: 200 JournalFetchResponse; 404 when there is none (or next: 204)."""
    got = hub.journal.pick(which, req.base_url(), offset)
    if got:
        return 200, got[0]
    if which == "next":
        return 204, None
    raise ApiError(404, error_body("The journal has no entries", "OBJECT_NOT_FOUND"))


def register(open_routes, control):
    """Journal API (own auth, exempt from the rate limits), downloads, control endpoints."""
    add = open_routes.add
    for var in ("journal-local", "journal"):
        base = "/webhooks-journal/%s/{v}" % var
        add("GET", base + "/earliest",
            lambda hub, req, v: (_check(hub, req, v), _single(hub, req, "earliest"))[1])
        add("GET", base + "/latest",
            lambda hub, req, v: (_check(hub, req, v), _single(hub, req, "latest"))[1])
        add("GET", base + "/offset/{offset}/next",
            lambda hub, req, v, offset: (_check(hub, req, v),
                                         _single(hub, req, "next", offset))[1])
        add("GET", base + "/batch/earliest/{count}",
            lambda hub, req, v, count: (_check(hub, req, v), _batch(hub.journal.pick(
                "earliest", req.base_url(), count=_count(count))))[1])
        add("GET", base + "/batch/latest/{count}",
            lambda hub, req, v, count: (_check(hub, req, v), _batch(hub.journal.pick(
                "latest", req.base_url(), count=_count(count))))[1])
        add("GET", base + "/batch/{offset}/next/{count}",
            lambda hub, req, v, offset, count: (_check(hub, req, v), _batch(hub.journal.pick(
                "next", req.base_url(), offset, _count(count))))[1])
        add("POST", base + "/batch/read",
            lambda hub, req, v: (_check(hub, req, v), _batch(*hub.journal.read(
                [str(o) for o in (req.body_obj().get("inputs") or [])], req.base_url())))[1])
    subs = "/webhooks-journal/subscriptions/{v}"
    add("GET", subs, lambda hub, req, v: (_check(hub, req, v, SUBS_READ),
                                          (200, {"results": hub.journal.list_subs()}))[1])
    add("POST", subs, lambda hub, req, v: (_check(hub, req, v, SUBS_WRITE),
                                           (200, hub.journal.create_sub(req.body_obj())))[1])
    add("GET", subs + "/{subscriptionId}",
        lambda hub, req, v, subscriptionId: (_check(hub, req, v, SUBS_READ),
                                             (200, hub.journal.get_sub(_sid(subscriptionId))))[1])
    add("DELETE", subs + "/{subscriptionId}",
        lambda hub, req, v, subscriptionId: (_check(hub, req, v, SUBS_WRITE),
                                             hub.journal.delete_sub(_sid(subscriptionId)),
                                             (204, None))[2])
    add("GET", "/_journal-files/{token}",
        lambda hub, req, token: hub.journal.download(token, req.headers.get("Authorization")))

    control.add("GET", "/_fake/journal", lambda hub, req: (200, hub.journal.snapshot()))
    control.add("POST", "/_fake/journal/expire",
                lambda hub, req: (200, {"expired": hub.journal.expire(
                    (req.json() if req.raw else {}).get("olderThanMs"))}))
