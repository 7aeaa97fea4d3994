"""The Hub (all state of one fake portal) and the per-request pipeline."""

import gc
import random
import sys
import threading
import time
import traceback

from . import config, journal, versions, routes_assoc, routes_crm, routes_fake, routes_meta, routes_owners, routes_webhooks
from .assoc import Associations
from .auth import Auth
from .faults import Faults, garble_body, hostile_body, status_response
from .limits import Limits, RequestLog
from .record import Recorder
from .request import Routes
from .store import Store
from .util import ApiError, error_body, fail
from .webhooks import Webhooks

MALFORMED_BODY = b'{"status":"COMPLETE","results":[{"id":"1","properties":{"email":'


class Hub:
    """Config, store, associations, webhooks, limits, faults, auth and logs."""

    def __init__(self, overrides=None):
        """Fresh portal; overrides are the start-up config (reset returns to them)."""
        self.base = overrides or {}
        self.cfg = config.defaults(self.base)
        self.lock = threading.RLock()
        self.rng = random.Random(self.cfg["randomSeed"])
        self.store = Store(self)
        self.assoc = Associations(self)
        self.issued_cursors = set()     # (objectTypeId, cursor) handed out (listCursor "issued")
        self.recorder = Recorder(None)  # server.main sets the --record file
        self.hooks = Webhooks(self)
        self.journal = journal.Journal(self)
        self.limits = Limits(self)
        self.log = RequestLog(self)
        self.faults = Faults(self)
        self.auth = Auth(self)
        self.stopping = False
        self.api = Routes()
        routes_crm.register(self.api)
        routes_meta.register(self.api)
        routes_assoc.register(self.api)
        routes_owners.register(self.api)
        self.control = Routes()
        routes_fake.register(self.control)
        self.open = Routes()           # no bearer token needed (own auth)
        self._register_oauth()
        routes_webhooks.register(self.open)
        journal.register(self.open, self.control)

    def _register_oauth(self):
        """OAuth endpoints: no bearer token needed."""
        add = self.open.add
        for base in ("/oauth/v1/token", "/oauth/v3/token"):
            add("POST", base, lambda hub, req: hub.auth.token(req.raw, req.api_version))
        add("POST", "/oauth/v3/token/introspect", lambda hub, req: hub.auth.introspect(req.raw))
        add("GET", "/oauth/v1/access-tokens/{token}",
            lambda hub, req, token: hub.auth.access_info(token))
        add("GET", "/oauth/v1/refresh-tokens/{token}",
            lambda hub, req, token: hub.auth.refresh_info(token))
        add("DELETE", "/oauth/v1/refresh-tokens/{token}",
            lambda hub, req, token: hub.auth.refresh_info(token, delete=True))

    def reset(self, keep_config=False):
        """Forget all records, counters, faults and tokens (config too unless kept)."""
        with self.lock:
            gc.unfreeze()
            if not keep_config:
                self.cfg.update(config.defaults(self.base))   # in place, never empty
            self.rng.seed(self.cfg["randomSeed"])
            self.hooks.reset()          # first: captured events refer to the old store
            self.journal.reset()
            self.store = Store(self)
            self.assoc = Associations(self)
            self.issued_cursors = set()
            self.limits.reset()
            self.log.reset()
            self.faults.reset()
            self.auth.reset()

    # ----- dispatch -------------------------------------------------------
    def _run(self, fn, req, groups, locked=True):
        """Call a route function -> (status, body, headers)."""
        if locked:
            with self.lock:
                try:
                    out = fn(self, req, **groups)
                finally:
                    self.hooks.commit()
        else:
            out = fn(self, req, **groups)
        return out if len(out) == 3 else (out[0], out[1], {})

    def handle_control(self, req):
        """A /_fake/ request -> ('respond', status, body, headers)."""
        try:
            fn, groups, known = self.control.match(req.method, req.path)
            if fn is None:
                fail(405 if known else 404, "no control endpoint %s %s" % (req.method, req.path),
                     "OBJECT_NOT_FOUND")
            status, body, headers = self._run(fn, req, groups, fn not in routes_fake.UNLOCKED)
        except ApiError as e:
            status, body, headers = e.status, e.body, e.headers
        except Exception:  # a bug in the fake: answer 500 and say why on stderr
            traceback.print_exc(file=sys.stderr)
            status, body, headers = 500, error_body("fake server error", "INTERNAL_ERROR"), {}
        return "respond", status, body, headers

    def handle_api(self, req):
        """A HubSpot API request -> (action, status, body, headers).

        action is 'respond', ('hang', ms) or 'reset'."""
        # the family the path belongs to (versions.py): req.api_version is
        # '2026-09', '2026-03' or 'legacy' (None: a path of no versioned
        # family); routing and the log use the numbered path
        raw_path = req.path
        family, req.path = versions.classify(raw_path)
        req.api_version = family
        fn, groups, endpoint = self.open.match(req.method, req.path)
        auth_needed = fn is None
        if auth_needed:
            fn, groups, endpoint = self.api.match(req.method, req.path)
        label = endpoint if fn else "%s %s" % (req.method, req.path)
        entry = self.log.start(req.method, req.path, req.query_string, label)
        entry["rawPath"] = raw_path
        entry["apiVersion"] = family
        entry["auth"] = self.auth.kind(req.headers.get("Authorization"))
        fault_name = None
        try:
            versions.check_served(self.cfg, family, raw_path)
            result, fault_name = self._pipeline(req, fn, groups, endpoint, auth_needed)
        except ApiError as e:
            result = ("respond", e.status, e.body, e.headers)
        except Exception:  # a bug in the fake: answer 500 and say why on stderr
            traceback.print_exc(file=sys.stderr)
            result = ("respond", 500, error_body("fake server error", "INTERNAL_ERROR"), {})
        action = result[0]
        status = result[1] if action == "respond" else (0 if action == "reset" else -1)
        if req.input_ids is not None:
            entry["ids"] = req.input_ids
            entry["props"] = req.input_props
        self.log.finish(entry, status, req.inputs, fault_name)
        return result

    def _pipeline(self, req, fn, groups, endpoint, auth_needed):
        """Latency (half in, half out), auth, rate limits, faults, the handler."""
        cfg = self.cfg
        delay = cfg["latencyMs"]
        if cfg["latencyJitterMs"]:
            delay += self.rng.uniform(0, cfg["latencyJitterMs"])
        half = delay / 2000.0
        if half > 0:
            time.sleep(half)     # the request travelling to HubSpot
        if cfg["arrivalDelayMs"]:
            # a starved HubSpot: the request waits before it is counted
            time.sleep(self.rng.uniform(0, cfg["arrivalDelayMs"]) / 1000.0)
        try:
            result, name = self._serve(req, fn, groups, endpoint, auth_needed)
        except ApiError:
            if half > 0:
                time.sleep(half)
            raise
        if half > 0 and result[0] == "respond":
            time.sleep(half)     # the answer travelling back
        return result, name

    def _serve(self, req, fn, groups, endpoint, auth_needed):
        """Auth, rate limits, faults, the handler, post-faults."""
        headers = {}
        if auth_needed:
            req.auth = self.auth.check(req.headers.get("Authorization"))
        if fn is None:
            if endpoint:
                fail(405, "Method %s not allowed on %s" % (req.method, req.path))
            raise ApiError(404, error_body("Unknown path %s" % req.path, "OBJECT_NOT_FOUND"))
        if auth_needed:
            search = req.method == "POST" and req.path.endswith("/search")
            headers = self.limits.admit(search, req.auth == "oauth")
        fault = self.faults.pick(req.method, req.path)
        req.fault = fault
        name = fault_label(fault)
        apply_first = bool(fault and (fault.get("apply") or fault["kind"] == "garble"))
        if fault and fault["kind"] != "partial207" and not apply_first:
            return self._fault_result(fault, headers), name
        try:
            status, body, extra = self._run(fn, req, groups)
        except ApiError as e:
            e.headers = dict(headers, **e.headers)
            raise
        headers.update(extra)
        if fault and fault["kind"] == "garble":
            # the real answer, with one value made hostile
            return ("respond", status, garble_body(fault, body), headers), name
        if apply_first and fault["kind"] != "partial207":
            return self._fault_result(fault, headers), name
        return ("respond", status, body, headers), name

    def _fault_result(self, fault, headers):
        """The (action, status, body, headers) a fault produces."""
        kind = fault["kind"]
        cap = self.cfg["hangMaxMs"]
        if kind == "hang":
            ms = fault.get("ms", cap)
            return ("hang", min(int(ms), cap)), None, None, None
        if kind == "reset":
            return "reset", None, None, None
        if kind == "malformed":
            return "respond", int(fault.get("status", 200)), MALFORMED_BODY, dict(headers)
        if kind == "hostile":
            return "respond", 200, hostile_body(fault), dict(headers)
        status, body, extra = status_response(fault, self.cfg)
        return "respond", status, body, dict(headers, **extra)


def fault_label(fault):
    """Short name of a fault for the request log."""
    if not fault:
        return None
    if fault["kind"] == "status":
        return "status:%s" % fault["status"]
    return fault["kind"]
