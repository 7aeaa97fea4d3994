"""Recording of the API requests the fake serves and its answers (for
test/conformance.py): one JSON object per line, appended to a file given by
--record FILE or the environment variable HUBSYNC_FAKE_RECORD.  A "%p" in the
file name becomes the fake's process id, so that the fakes of a TAP run (some
tests start several) each write their own file."""

import json
import os
import threading


class Recorder:
    """Appends one line per answered API request; a no-op without a file."""

    def __init__(self, path):
        """Open path for appending (None: record nothing)."""
        self.lock = threading.Lock()
        if path:
            path = path.replace("%p", str(os.getpid()))
        self.fh = open(path, "a", encoding="utf-8") if path else None

    @staticmethod
    def _body(data):
        """A body as JSON when it parses, else its text (None when empty)."""
        if data is None or data == b"" or data == "":
            return None
        if isinstance(data, (dict, list)):
            return data
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        try:
            return json.loads(text)
        except ValueError:
            return {"__text__": text[:2000]}

    def write(self, req, path, status, body, headers):
        """One request (path as sent, before any rewrite) and its answer."""
        if self.fh is None:
            return
        ctype = (headers or {}).get("Content-Type")
        if ctype is None and body not in (None, b""):
            ctype = "application/json;charset=utf-8"
        fault = req.fault
        hdrs = req.headers or {}
        entry = {"method": req.method, "path": path, "query": req.query_string,
                 "userAgent": hdrs.get("User-Agent"),
                 "requestType": hdrs.get("Content-Type"),
                 "requestBody": self._body(req.raw), "status": status,
                 "contentType": ctype, "responseBody": self._body(body),
                 "fault": fault.get("kind") if isinstance(fault, dict) else None}
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self.lock:
            self.fh.write(line)
            self.fh.flush()


def from_env_or(path):
    """The record file: path if given, else HUBSYNC_FAKE_RECORD, else None."""
    return path or os.environ.get("HUBSYNC_FAKE_RECORD") or None
