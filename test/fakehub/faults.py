"""Scripted and random faults: error statuses, hangs, resets, bad JSON, 207s."""

import threading

from .limits import secondly_body, ten_secondly_body
from .util import correlation_id, error_body, fail

KINDS = ("status", "hang", "reset", "malformed", "partial207", "hostile", "garble")
PROB_KEYS = ("423", "429", "477", "500", "502", "503", "504",
             "hang", "reset", "malformed", "partial207")
_EDGE_HTML = ("<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1>"
              "</center></body></html>")
_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable",
            504: "Gateway Time-out"}


HOSTILE = ("huge", "deep", "types", "missing", "nonutf8", "truncated", "scalar", "nul",
           "badtime")


def hostile_body(fault):
    """A hostile 200 body: bigger than any client should take, nested past
    any parser's stack, wrong JSON types, missing fields, bytes that are not
    UTF-8, cut off, a bare scalar, an escaped NUL, or a page whose record's
    last-modified date is no date (badtime)."""
    mode = fault["hostile"]
    if mode == "huge":
        size = int(fault.get("bytes", 40 * 1024 * 1024))
        return b'{"status":"COMPLETE","results":[],"pad":"' + b"x" * size + b'"}'
    if mode == "deep":
        n = int(fault.get("depth", 100000))
        return b'{"status":"COMPLETE","results":' + b"[" * n + b"]" * n + b"}"
    if mode == "types":
        return (b'{"status":7,"results":[{"id":{"nested":true},"properties":[1,2,3],'
                b'"createdAt":false},"a string",17,null,{"id":"123456789012345678901234567",'
                b'"properties":"nope"},{"id":"abc","properties":{"hubsync_id":42}},'
                b'{"id":1e400,"properties":null}],"errors":"not an array","numErrors":"x"}')
    if mode == "missing":
        return b'{"status":"COMPLETE"}'
    if mode == "nonutf8":
        return b'{"status":"COMPLETE","results":[{"id":"1","properties":{"firstname":"\xff\xfe\xc3"}}]}'
    if mode == "truncated":
        return b'{"status":"COMPLETE","results":[{"id":"1","prop'
    if mode == "scalar":
        return b'"just a string"'
    if mode == "badtime":
        return (b'{"total":1,"results":[{"id":"424242","properties":{"lastmodifieddate":'
                b'"2024-02-30T25:61:00Z","hs_lastmodifieddate":"2024-02-30T25:61:00Z",'
                b'"email":"bad-time@poll.test"},"updatedAt":"2024-01-01T00:00:00Z",'
                b'"archived":false}]}')
    return b'{"status":"COMPLETE","results":[{"id":"1","properties":{"x":"a\\u0000b"}}]}'


GARBLE = ("timestamp", "cursor", "total", "id", "results", "paging", "nonobject")
HOSTILE_CURSOR = "a&b=c/d#e f?g"


def garble_body(fault, body):
    """The real answer (a dict) with one field made hostile: every record's
    last-modified times (value, default "not-a-date"), the paging cursor
    (value, default a cursor with '&', '=', '/', '#', '?' and a space; or
    cursorBytes of 'x'), the search total, the record ids, the results (an
    object instead of a list), paging (a string), or the whole answer (a
    JSON list instead of an object)."""
    mode = fault["garble"]
    value = fault.get("value", "not-a-date")
    if not isinstance(body, dict):
        return body
    body = dict(body)
    results = body.get("results") if isinstance(body.get("results"), list) else []
    if mode == "timestamp":
        out = []
        for r in results:
            r = dict(r)
            r["updatedAt"] = value
            if isinstance(r.get("properties"), dict):
                props = dict(r["properties"])
                for k in ("hs_lastmodifieddate", "lastmodifieddate"):
                    if k in props:
                        props[k] = value
                r["properties"] = props
            out.append(r)
        body["results"] = out
    elif mode == "cursor":
        if "cursorBytes" in fault:
            cursor = "x" * int(fault["cursorBytes"])
        else:
            cursor = fault.get("value", HOSTILE_CURSOR)
        body["paging"] = {"next": {"after": cursor}}
    elif mode == "total":
        body["total"] = fault.get("value", "lots")
    elif mode == "id":
        body["results"] = [dict(r, id=fault.get("value", "12abc")) for r in results]
    elif mode == "results":
        body["results"] = {"not": "a list"}
    elif mode == "paging":
        body["paging"] = "next page please"
    else:  # nonobject
        return [body]
    return body


def _kind(entry):
    """Which fault an entry describes (400 unless exactly one)."""
    found = [k for k in KINDS if k != "status" and entry.get(k)]
    if "status" in entry:
        found.append("status")
    if len(found) != 1:
        fail(400, "a fault needs exactly one of status, hang, reset, malformed, partial207, "
             "hostile, garble")
    return found[0]


class Faults:
    """The fault queue and per-request fault probabilities."""

    def __init__(self, hub):
        """No faults."""
        self.hub = hub
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        """Clear the queue and probabilities."""
        with self.lock:
            self.queue = []
            self.prob = {}
            self.prob_match = None
            self.fired = 0

    def configure(self, body):
        """Apply a POST /_fake/faults body: clear, queue (appended), probability."""
        if not isinstance(body, dict):
            fail(400, "faults body must be an object")
        entries = []
        for e in body.get("queue") or []:
            if not isinstance(e, dict):
                fail(400, "queue entries must be objects")
            e = dict(e)
            e["kind"] = _kind(e)
            if e["kind"] == "hostile" and e["hostile"] not in HOSTILE:
                fail(400, "hostile must be one of %s" % ", ".join(HOSTILE))
            if e["kind"] == "garble" and e["garble"] not in GARBLE:
                fail(400, "garble must be one of %s" % ", ".join(GARBLE))
            count = e.setdefault("count", 1)
            if not isinstance(count, int) or count < 1:
                fail(400, "count must be a positive integer")
            e.setdefault("skip", 0)
            entries.append(e)
        prob = body.get("probability")
        if prob is not None:
            bad = [k for k in prob if k not in PROB_KEYS]
            if bad or not all(isinstance(v, (int, float, str)) for v in prob.values()):
                fail(400, "probability keys must be among %s" % ", ".join(PROB_KEYS))
            prob = {k: float(v) for k, v in prob.items()}
            if sum(prob.values()) > 1.0:
                fail(400, "fault probabilities add up to more than 1")
        with self.lock:
            if body.get("clear"):
                self.queue = []
                self.prob = {}
                self.prob_match = None
            self.queue.extend(entries)
            if prob is not None:
                self.prob = prob
                self.prob_match = body.get("match")
        return self.describe()

    def describe(self):
        """Current queue and probabilities (GET /_fake/faults)."""
        with self.lock:
            return {"queue": [dict(e) for e in self.queue], "probability": dict(self.prob),
                    "match": self.prob_match, "fired": self.fired}

    def pick(self, method, path):
        """The fault for this request (consumed from the queue), or None."""
        batch = "/batch/" in path
        with self.lock:
            for e in self.queue:
                if e.get("match") and e["match"] not in path:
                    continue
                if e.get("method") and e["method"].upper() != method:
                    continue
                if e["kind"] == "partial207" and not batch:
                    continue
                if e["skip"] > 0:
                    e["skip"] -= 1
                    continue
                e["count"] -= 1
                if e["count"] <= 0:
                    self.queue.remove(e)
                self.fired += 1
                return e
            if self.prob and (not self.prob_match or self.prob_match in path):
                r = self.hub.rng.random()
                acc = 0.0
                for key, p in self.prob.items():
                    acc += p
                    if r < acc:
                        if key == "partial207" and not batch:
                            return None
                        self.fired += 1
                        return self._from_key(key)
        return None

    @staticmethod
    def _from_key(key):
        """A fault entry for a probability key."""
        if key.isdigit():
            return {"kind": "status", "status": int(key)}
        return {"kind": key, key: True}


def status_response(fault, cfg):
    """(status, body, headers) for a status fault, with HubSpot-like bodies."""
    status = int(fault["status"])
    headers = {}
    if "body" in fault:
        body = fault["body"]
        body = body if isinstance(body, (dict, list)) else str(body).encode("utf-8")
        if fault.get("contentType"):
            headers["Content-Type"] = fault["contentType"]
        return status, body, headers
    if status == 429:
        policy = fault.get("policy", "TEN_SECONDLY_ROLLING")
        if policy == "DAILY":
            return status, {"status": "error", "message": "You have reached your daily limit.",
                            "errorType": "RATE_LIMIT", "correlationId": correlation_id(),
                            "policyName": "DAILY", "requestId": correlation_id()}, headers
        if policy in ("SECONDLY", "SEARCH"):
            return status, secondly_body(), headers
        return status, ten_secondly_body(cfg), headers
    if status == 477:
        headers["Retry-After"] = str(fault.get("retryAfter", 1))
        return status, error_body("Migration in progress; retry after the Retry-After delay.",
                                  "MIGRATION_IN_PROGRESS"), headers
    if status == 423:
        return status, error_body("The object is locked by another request; wait at least "
                                  "2 seconds and retry.", "LOCKED"), headers
    if status in _REASONS:
        reason = _REASONS[status]
        headers["Content-Type"] = "text/html"
        return status, (_EDGE_HTML % (status, reason, status, reason)).encode(), headers
    if "retryAfter" in fault:
        headers["Retry-After"] = str(fault["retryAfter"])
    return status, error_body("internal error (injected fault %d)" % status,
                              "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR"), headers
