"""Rate limits (notes section 11), request counters and the request log."""

import threading
from collections import deque

from .util import ApiError, correlation_id, now_ms


class Limits:
    """Rolling 10-second window per app, daily counter, search per second."""

    def __init__(self, hub):
        """Empty windows."""
        self.hub = hub
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        """Forget every counted request."""
        with self.lock:
            self.window = deque()       # arrival ms of counted (non-search) requests
            self.accepted = deque()     # arrival ms of those not rejected
            self.second = deque()       # arrival ms, last second (Secondly header)
            self.search = deque()       # arrival ms of search requests, last second
            self.daily = 0
            self.max_window = 0
            self.max_window_accepted = 0
            self.rejected = {"TEN_SECONDLY_ROLLING": 0, "DAILY": 0, "SECONDLY": 0}

    @staticmethod
    def _trim(dq, floor):
        """Drop entries older than floor."""
        while dq and dq[0] <= floor:
            dq.popleft()

    def admit(self, search, oauth):
        """Count one API request; returns rate-limit headers or raises a 429."""
        cfg = self.hub.cfg
        now = now_ms()
        with self.lock:
            if search:
                return self._admit_search(cfg, now)
            win = cfg["burstWindowMs"]
            self._trim(self.window, now - win)
            self._trim(self.accepted, now - win)
            self._trim(self.second, now - 1000)
            over_daily = self.daily >= cfg["dailyLimit"]
            over_burst = len(self.window) >= cfg["burstLimit"]
            rejected = over_daily or over_burst
            if not rejected or cfg["rateLimitCountsRejected"]:
                self.window.append(now)
                self.second.append(now)
                self.daily += 1
                self.max_window = max(self.max_window, len(self.window))
            if not rejected:
                self.accepted.append(now)
                self.max_window_accepted = max(self.max_window_accepted, len(self.accepted))
            headers = self._headers(cfg, oauth)
            if over_daily:
                self.rejected["DAILY"] += 1
                raise ApiError(429, {
                    "status": "error", "message": "You have reached your daily limit.",
                    "errorType": "RATE_LIMIT", "correlationId": correlation_id(),
                    "policyName": "DAILY", "requestId": correlation_id()}, headers)
            if over_burst:
                self.rejected["TEN_SECONDLY_ROLLING"] += 1
                raise ApiError(429, ten_secondly_body(cfg), headers)
            return headers

    def _admit_search(self, cfg, now):
        """The search bucket: N per second, no burst headers."""
        self._trim(self.search, now - 1000)
        rejected = len(self.search) >= cfg["searchPerSecond"]
        if not rejected or cfg["rateLimitCountsRejected"]:
            self.search.append(now)
            self.daily += 1
        headers = {}
        if cfg["searchRateLimitHeaders"]:
            headers = {"X-HubSpot-RateLimit-Daily": str(cfg["dailyLimit"]),
                       "X-HubSpot-RateLimit-Daily-Remaining":
                           str(max(0, cfg["dailyLimit"] - self.daily))}
        if rejected:
            self.rejected["SECONDLY"] += 1
            raise ApiError(429, secondly_body(), headers)
        return headers

    def _headers(self, cfg, oauth):
        """The X-HubSpot-RateLimit-* headers of a non-search response."""
        burst = cfg["burstLimit"]
        h = {}
        if cfg["dailyHeaders"] and not oauth:
            h["X-HubSpot-RateLimit-Daily"] = str(cfg["dailyLimit"])
            h["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, cfg["dailyLimit"] - self.daily))
        h["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(cfg["burstWindowMs"])
        h["X-HubSpot-RateLimit-Max"] = str(burst)
        h["X-HubSpot-RateLimit-Remaining"] = str(max(0, burst - len(self.window)))
        if cfg["secondlyHeaders"]:
            per_sec = max(1, burst // 10)
            h["X-HubSpot-RateLimit-Secondly"] = str(per_sec)
            h["X-HubSpot-RateLimit-Secondly-Remaining"] = str(max(0, per_sec - len(self.second)))
        return h

    def snapshot(self):
        """Counter values for GET /_fake/counters."""
        with self.lock:
            now = now_ms()
            self._trim(self.window, now - self.hub.cfg["burstWindowMs"])
            return {"maxRequestsIn10s": self.max_window,
                    "maxAcceptedIn10s": self.max_window_accepted,
                    "currentWindow": len(self.window), "daily": self.daily,
                    "rateLimited": dict(self.rejected)}


def ten_secondly_body(cfg):
    """429 body of the TEN_SECONDLY_ROLLING policy (notes 11.3)."""
    return {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT", "correlationId": correlation_id(),
            "policyName": "TEN_SECONDLY_ROLLING",
            "groupName": "publicapi:private-app-api-calls-ten-secondly:%s" % cfg["appId"]}


def secondly_body():
    """429 body of the search (secondly) limit (notes 6 / 11.3)."""
    return {"status": "error", "message": "You have reached your secondly limit.",
            "correlationId": correlation_id(), "category": "RATE_LIMITS"}


class RequestLog:
    """Bounded log of API requests plus per-endpoint/status counters."""

    def __init__(self, hub):
        """Empty log."""
        self.hub = hub
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        """Forget all requests."""
        with self.lock:
            self.seq = 0
            self.entries = deque(maxlen=self.hub.cfg["requestLogMax"])
            self.by_endpoint = {}
            self.by_status = {}
            self.total = 0

    def start(self, method, path, query, endpoint):
        """Log a new request (status null until it finishes); returns its entry."""
        entry = {"seq": 0, "method": method, "path": path, "query": query,
                 "endpoint": endpoint, "status": None, "inputs": None,
                 "startMs": now_ms(), "endMs": None}
        with self.lock:
            if self.entries.maxlen != self.hub.cfg["requestLogMax"]:
                self.entries = deque(self.entries, maxlen=self.hub.cfg["requestLogMax"])
            self.seq += 1
            entry["seq"] = self.seq
            self.entries.append(entry)
        return entry

    def finish(self, entry, status, inputs=None, fault=None, endpoint=None):
        """Complete a logged request and count it by endpoint and status."""
        entry["status"] = status
        entry["inputs"] = inputs
        entry["endMs"] = now_ms()
        if endpoint:
            entry["endpoint"] = endpoint
        if fault:
            entry["fault"] = fault
        key = str(status)
        with self.lock:
            per = self.by_endpoint.setdefault(entry["endpoint"], {})
            per[key] = per.get(key, 0) + 1
            self.by_status[key] = self.by_status.get(key, 0) + 1
            self.total += 1

    def since(self, seq):
        """Entries with seq greater than the given one (in order)."""
        with self.lock:
            return [dict(e) for e in self.entries if e["seq"] > seq]

    def snapshot(self):
        """Counters for GET /_fake/counters."""
        with self.lock:
            return {"requests": self.total, "byStatus": dict(self.by_status),
                    "byEndpoint": {k: dict(v) for k, v in self.by_endpoint.items()},
                    "total429": self.by_status.get("429", 0)}
