"""Webhook events (notes 12.3) and their delivery: batching, signatures, retries."""

import heapq
import http.client
import ssl
import threading
import urllib.parse
from collections import deque

from .signature import sign
from .store import _NO_EVENT
from .util import dumps, now_ms

USER_AGENT = ("HubSpot Connect 2.0 (http://dev.hubspot.com/) "
              "(namespace: webhooks-nio-http-client) - WebhooksExecutorDaemon-executor")
FIRST_EVENT_ID = 100000001
FIRST_SUBSCRIPTION_ID = 3000001
COUNTER_KEYS = ("eventsGenerated", "eventsQueued", "duplicatesInjected", "deliveriesSent",
                "deliveriesSucceeded", "deliveriesFailed", "deliveriesRetried",
                "deliveriesDropped", "eventsSent", "eventsDelivered", "eventsDropped")


class Webhooks:
    """Event generation, capture and the delivery engine (one dispatcher thread)."""

    def __init__(self, hub):
        """Start the dispatcher thread."""
        self.hub = hub
        self.cond = threading.Condition()
        self.staged = []
        self._clear()
        self.refresh()
        threading.Thread(target=self._dispatch_loop, name="webhook-dispatch",
                         daemon=True).start()

    def _clear(self):
        """Forget every event, delivery and counter (reset)."""
        self.gen = getattr(self, "gen", 0) + 1
        self.queue = []          # heap of (ready_ms, seq, event)
        self.retry = []          # heap of (ready_ms, seq, attempt, [events])
        self.inflight = 0
        self.seq = 0
        self.next_event = FIRST_EVENT_ID
        self.sub_ids = {}
        self.subs = {}            # id -> subscription made through the webhooks API
        self.subs_made = 0
        self.settings_times = None
        self.captured = deque(maxlen=self.hub.cfg["webhookCaptureMax"])
        self.deliveries = deque(maxlen=10000)
        self.delivery_seq = 0
        self.counters = dict.fromkeys(COUNTER_KEYS, 0)
        self.staged = []

    def reset(self):
        """Drop all state; in-flight deliveries finish but are ignored."""
        with self.cond:
            self._clear()
            self.refresh()
            self.cond.notify_all()

    def refresh(self):
        """Recompute whether events are generated at all (after config changes)."""
        cfg = self.hub.cfg
        self.active = bool(cfg["webhookUrl"]) or cfg["webhookCapture"]
        if self.captured.maxlen != cfg["webhookCaptureMax"]:
            self.captured = deque(self.captured, maxlen=cfg["webhookCaptureMax"])

    # ----- generation ---------------------------------------------------
    def subscription(self, stype, prop, tid):
        """subscriptionId for an event, or None when nothing subscribes to it.

        Subscriptions made through the webhooks API win (only active ones
        count); otherwise config webhookSubscriptions (null = everything),
        with a stable synthetic id per (eventType, propertyName, objectTypeId)."""
        if self.subs:
            for s in self.subs.values():
                if s["active"] and s["eventType"] == stype and \
                        s.get("propertyName") in (None, prop) and \
                        s.get("objectTypeId") in (None, tid):
                    return s["id"]
            return None
        listed = self.hub.cfg["webhookSubscriptions"]
        if listed is not None and not any(
                s == stype if isinstance(s, str) else (
                    s.get("eventType") == stype and s.get("propertyName") in (None, prop)
                    and s.get("objectTypeId") in (None, tid)) for s in listed):
            return None
        key = (stype, prop, tid)
        sid = self.sub_ids.get(key)
        if sid is None:
            sid = self.sub_ids[key] = FIRST_SUBSCRIPTION_ID + len(self.sub_ids)
        return sid

    def emit(self, ot, kind, object_id, src, now, **extra):
        """Stage one event (caller holds the store lock; commit() queues it)."""
        if ot.hook == "product" and kind == "associationChange":
            return
        self.staged.append((self.next_event, 1, ot, kind, object_id, src, now, extra))
        self.next_event += 1

    def emit_changes(self, ot, object_id, src, now, created, pairs):
        """Stage a creation event and/or one propertyChange per (name, value)."""
        n = len(pairs) + (1 if created else 0)
        if n:
            self.staged.append((self.next_event, n, ot, "changes", object_id, src, now,
                                (created, pairs)))
            self.next_event += n

    def _event(self, eid, ot, kind, object_id, src, now, extra, subscribe=None,
               with_tid=False):
        """Build one event dict in HubSpot's field order, or None if unsubscribed.

        subscribe replaces the webhook subscription look-up and with_tid keeps
        the objectTypeId of prefixed types (the journal's view of the event)."""
        if ot.hook:
            if kind == "privacyDeletion" and ot.hook != "contact":
                kind = "deletion"
            stype = "%s.%s" % (ot.hook, kind)
            tid = None
        else:
            if kind == "privacyDeletion":
                kind = "deletion"
            stype = "object." + kind
            tid = ot.tid
        sub_id = (subscribe or self.subscription)(stype, extra.get("propertyName"), tid)
        if with_tid:
            tid = ot.tid
        if sub_id is None:
            return None
        cfg = self.hub.cfg
        ev = {"eventId": eid, "subscriptionId": sub_id,
              "portalId": cfg["portalId"], "appId": cfg["appId"], "occurredAt": now,
              "subscriptionType": stype, "attemptNumber": 0}
        if object_id is not None:
            ev["objectId"] = object_id
        if tid is not None:
            ev["objectTypeId"] = tid
        ev.update(extra)
        source, sid = self.hub.store.sources[src]
        ev["changeSource"] = source
        if sid is not None:
            ev["sourceId"] = sid
        if tid is not None:
            ev["isSensitive"] = False
        return ev

    def _expand(self, item, subscribe=None, with_tid=False):
        """Event dicts of one staged item (see _event for the options)."""
        eid, n, ot, kind, object_id, src, now, extra = item
        opts = {"subscribe": subscribe, "with_tid": with_tid}
        if kind != "changes":
            ev = self._event(eid, ot, kind, object_id, src, now, extra, **opts)
            return [ev] if ev else []
        created, pairs = extra
        out = []
        if created:
            out.append(self._event(eid, ot, "creation", object_id, src, now,
                                   {"changeFlag": "CREATED"}, **opts))
            eid += 1
        for name, value in pairs:
            if name in _NO_EVENT:
                continue
            out.append(self._event(eid, ot, "propertyChange", object_id, src, now,
                                   {"propertyName": name, "propertyValue": value}, **opts))
            eid += 1
        return [e for e in out if e]

    def commit(self):
        """Move staged events to capture and the delivery queue (store lock held)."""
        if not self.staged:
            return
        with self.cond:
            staged, self.staged = self.staged, []
            cfg = self.hub.cfg
            self.counters["eventsGenerated"] += sum(item[1] for item in staged)
            if cfg["webhookCapture"]:
                self.captured.extend(staged)
            self.hub.journal.record(staged)
            if not cfg["webhookUrl"]:
                return
            rng = self.hub.rng
            base = now_ms() + cfg["webhookDelayMs"]
            dup_p = cfg["webhookDuplicateProbability"]
            spread = 100 if cfg["webhookShuffle"] else 0
            for item in staged:
                for ev in self._expand(item):
                    self._push(base + (rng.randint(0, spread) if spread else 0), ev)
                    if dup_p and rng.random() < dup_p:
                        self._push(base + rng.randint(20, 300), dict(ev))
                        self.counters["duplicatesInjected"] += 1
            self.cond.notify_all()

    def _push(self, ready, ev):
        """Queue one event for first delivery."""
        self.seq += 1
        heapq.heappush(self.queue, (ready, self.seq, ev))
        self.counters["eventsQueued"] += 1

    # ----- delivery -----------------------------------------------------
    def _next_batch(self, now):
        """(attempt, events) ready to send now, or None; caller holds cond."""
        if self.retry and self.retry[0][0] <= now:
            _, _, attempt, events = heapq.heappop(self.retry)
            return attempt, events
        if self.queue and self.queue[0][0] <= now:
            limit = self.hub.cfg["webhookBatchMax"]
            events = []
            while self.queue and self.queue[0][0] <= now and len(events) < limit:
                events.append(heapq.heappop(self.queue)[2])
            if self.hub.cfg["webhookShuffle"]:
                self.hub.rng.shuffle(events)
            return 0, events
        return None

    def _dispatch_loop(self):
        """Start deliveries as events become ready, within the concurrency cap."""
        while True:
            with self.cond:
                while True:
                    now = now_ms()
                    if self.inflight < self.hub.cfg["webhookConcurrency"]:
                        batch = self._next_batch(now)
                        if batch:
                            break
                    wake = [h[0][0] for h in (self.queue, self.retry) if h]
                    timeout = max(0.005, (min(wake) - now) / 1000.0) if wake else 1.0
                    self.cond.wait(min(timeout, 1.0))
                self.inflight += 1
                gen = self.gen
            attempt, events = batch
            threading.Thread(target=self._deliver, args=(events, attempt, gen),
                             daemon=True).start()

    def _post(self, url, body, headers, timeout):
        """POST body to url; returns (status or None, error text or None)."""
        parts = urllib.parse.urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443,
                                               timeout=timeout,
                                               context=ssl._create_unverified_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port or 80,
                                              timeout=timeout)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status, None
        except Exception as e:  # connection refused, timeout, reset...
            return None, "%s: %s" % (type(e).__name__, e)
        finally:
            conn.close()

    def _deliver(self, events, attempt, gen):
        """One delivery attempt of a batch; schedules the retry on failure."""
        cfg = self.hub.cfg
        url = cfg["webhookUrl"]
        started = now_ms()
        status = error = None
        if url:
            payload = []
            for ev in events:
                ev = dict(ev)
                ev["attemptNumber"] = attempt
                payload.append(ev)
            body = dumps(payload)
            ts = str(now_ms())
            secret = cfg["clientSecret"]
            headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
            if cfg["webhookSignatureV3"]:
                headers["X-HubSpot-Signature-v3"] = sign("v3", secret, "POST", url, body, ts)
                headers["X-HubSpot-Request-Timestamp"] = ts
            if cfg["webhookSignatureV1"]:
                headers["X-HubSpot-Signature"] = sign("v1", secret, "POST", url, body)
                headers["X-HubSpot-Signature-Version"] = "v1"
            status, error = self._post(url, body, headers, cfg["webhookTimeoutMs"] / 1000.0)
        else:
            error = "webhookUrl not set"
        ok = status is not None and 200 <= status < 300
        with self.cond:
            self.inflight -= 1
            self.cond.notify_all()
            if gen != self.gen:
                return
            self._account(events, attempt, status, error, started, ok)

    def _account(self, events, attempt, status, error, started, ok):
        """Counters, the delivery log and retry scheduling (caller holds cond)."""
        c = self.counters
        c["deliveriesSent"] += 1
        c["eventsSent"] += len(events)
        self.delivery_seq += 1
        self.deliveries.append({
            "seq": self.delivery_seq, "attempt": attempt, "status": status,
            "error": error, "events": len(events),
            "eventIds": [e["eventId"] for e in events],
            "startMs": started, "endMs": now_ms()})
        if ok:
            c["deliveriesSucceeded"] += 1
            c["eventsDelivered"] += len(events)
            return
        c["deliveriesFailed"] += 1
        cfg = self.hub.cfg
        if attempt < cfg["webhookRetries"]:
            delays = cfg["webhookRetryDelaysMs"] or [1000]
            delay = delays[min(attempt, len(delays) - 1)]
            self.seq += 1
            heapq.heappush(self.retry, (now_ms() + delay, self.seq, attempt + 1, events))
            c["deliveriesRetried"] += 1
        else:
            c["deliveriesDropped"] += 1
            c["eventsDropped"] += len(events)

    # ----- control API helpers ------------------------------------------
    def pending(self):
        """Counts of events not yet delivered (or given up)."""
        with self.cond:
            queued = len(self.queue)
            retrying = sum(len(r[3]) for r in self.retry)
            return {"staged": len(self.staged), "queued": queued, "retrying": retrying,
                    "retryBatches": len(self.retry), "inFlight": self.inflight,
                    "total": queued + retrying + self.inflight + len(self.staged)}

    def flush(self, timeout_ms):
        """Wait until nothing is queued, retrying or in flight; True if done."""
        deadline = now_ms() + timeout_ms
        with self.cond:
            while self.queue or self.retry or self.inflight or self.staged:
                left = deadline - now_ms()
                if left <= 0:
                    return False
                self.cond.wait(min(left / 1000.0, 0.05))
        return True

    def events_since(self, since):
        """Captured events with eventId > since (capture holds the last N changes)."""
        with self.cond:
            items = [i for i in self.captured if i[0] + i[1] - 1 > since]
            return [e for i in items for e in self._expand(i) if e["eventId"] > since]

    def deliveries_since(self, since):
        """Delivery log entries with seq > since."""
        with self.cond:
            return [d for d in self.deliveries if d["seq"] > since]
