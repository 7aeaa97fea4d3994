"""The parsed request handed to route functions, and the route table type."""

import re
import urllib.parse

from .util import fail, loads


class Request:
    """Method, path, query, raw body and headers of one HTTP request."""

    def __init__(self, method, target, raw, headers):
        """Split the target into path and query."""
        parts = urllib.parse.urlsplit(target)
        self.method = method
        self.path = parts.path
        self.query_string = parts.query
        self.query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        self.raw = raw
        self.headers = headers
        self.auth = None
        self.api_version = None    # '2026-09', '2026-03', 'legacy' (hub.handle_api)
        self.fault = None
        self.inputs = None
        self.input_ids = None
        self.input_props = None
        self.api_version = "legacy"     # set by Hub.handle_api from the path
        self._json = None

    def json(self):
        """The JSON body (400 VALIDATION_ERROR when it does not parse)."""
        if self._json is None:
            if not self.raw:
                fail(400, "Invalid input JSON: the request body is empty")
            try:
                self._json = loads(self.raw)
            except ValueError as e:
                fail(400, "Invalid input JSON on line %d, column %d: %s" % (
                    getattr(e, "lineno", 1), getattr(e, "colno", 1), e.args[0]))
        return self._json

    def body_obj(self):
        """The JSON body, which must be an object."""
        body = self.json()
        if not isinstance(body, dict):
            fail(400, "Invalid input JSON: expected an object")
        return body

    def q1(self, name, default=None):
        """Last value of a query parameter."""
        v = self.query.get(name)
        return v[-1] if v else default

    def qint(self, name, default):
        """Integer query parameter (400 if malformed)."""
        v = self.q1(name)
        if v is None or v == "":
            return default
        try:
            return int(v)
        except ValueError:
            fail(400, "%s must be an integer" % name)

    def qbool(self, name):
        """Boolean query parameter ('true' is true)."""
        return (self.q1(name) or "").lower() == "true"

    def qlist(self, name):
        """Comma-separated and/or repeated query parameter as a list."""
        out = []
        for v in self.query.get(name, []):
            out.extend(x.strip() for x in v.split(",") if x.strip())
        return out

    def base_url(self):
        """scheme://host of this server as the client addressed it."""
        return "http://%s" % (self.headers.get("Host") or "127.0.0.1")


class Routes:
    """Ordered (method, regex, function, endpoint label) table."""

    def __init__(self):
        """Empty table."""
        self.table = []

    def add(self, method, pattern, fn):
        """Register fn for method + path pattern ({name} segments become groups)."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self.table.append((method, re.compile("^" + regex + "/?$"), fn, pattern))

    def match(self, method, path):
        """(fn, groups, endpoint label) or (None, None, allowed?) for a path."""
        path_known = False
        for m, regex, fn, pattern in self.table:
            hit = regex.match(path)
            if hit:
                path_known = True
                if m == method:
                    groups = {k: urllib.parse.unquote(v) for k, v in hit.groupdict().items()}
                    label = pattern
                    for key in ("objectType", "fromObjectType", "toObjectType"):
                        if key in groups:
                            label = label.replace("{%s}" % key, groups[key])
                    return fn, groups, "%s %s" % (method, label)
        return None, None, path_known
