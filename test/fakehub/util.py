"""Small shared helpers: clocks, ISO-8601 formatting, JSON, HubSpot error bodies."""

import datetime
import functools
import json
import random
import re
import time
import uuid

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def now_ms():
    """Wall-clock time in epoch milliseconds (int)."""
    return int(time.time() * 1000)


@functools.lru_cache(maxsize=65536)
def iso_ms(ms):
    """Epoch ms -> '2024-05-01T12:34:56.789Z' (HubSpot's wire format), memoized."""
    secs, milli = divmod(int(ms), 1000)
    t = time.gmtime(secs)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, milli)


_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?)?$")


def parse_iso(text):
    """ISO-8601 date or date-time string -> epoch ms, or None if malformed.

    A date-time without zone is taken as UTC; a bare date is midnight UTC."""
    m = _ISO_RE.match(text)
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, zone = m.groups()
    try:
        dt = datetime.datetime(int(y), int(mo), int(d), int(hh or 0),
                               int(mi or 0), int(ss or 0),
                               tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    ms = int((dt - _EPOCH).total_seconds()) * 1000
    if frac:
        ms += int((frac + "00")[:3])
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        z = zone[1:].replace(":", "")
        ms -= sign * (int(z[:2]) * 60 + int(z[2:])) * 60000
    return ms


def parse_time_value(text):
    """Epoch-ms digits or ISO-8601 text -> epoch ms, or None."""
    if text.lstrip("-").isdigit():
        return int(text)
    return parse_iso(text)


def date_str(ms):
    """Epoch ms (midnight UTC) -> 'YYYY-MM-DD'."""
    t = time.gmtime(int(ms) // 1000)
    return "%04d-%02d-%02d" % (t.tm_year, t.tm_mon, t.tm_mday)


# Bodies are trees built per request: no circular-reference check needed.
_ENC_ASCII = json.JSONEncoder(separators=(",", ":"), check_circular=False)
_ENC_UTF8 = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


def dumps(obj):
    """Compact JSON bytes with raw UTF-8 (not \\u escapes), as HubSpot sends them."""
    text = _ENC_ASCII.encode(obj)
    if "\\u" in text:       # non-ASCII text: encode again without escapes
        text = _ENC_UTF8.encode(obj)
    return text.encode("utf-8")


def loads(raw):
    """Parse a request body; JSON floats keep their exact decimal text."""
    return json.loads(raw, parse_float=str)


_rand = random.Random()


def correlation_id():
    """A fresh correlation id (random UUID-4 string, no syscall)."""
    return str(uuid.UUID(int=_rand.getrandbits(128), version=4))


class ApiError(Exception):
    """An HTTP error answer: raise anywhere inside a handler."""

    def __init__(self, status, body, headers=None):
        """Status, JSON body (or None) and extra headers of the answer."""
        super().__init__(body.get("message") if isinstance(body, dict) else str(body))
        self.status = status
        self.body = body
        self.headers = headers or {}


def error_body(message, category, **extra):
    """HubSpot's standard error envelope (notes 4.3)."""
    body = {"status": "error", "message": message,
            "correlationId": correlation_id(), "category": category}
    body.update(extra)
    return body


def fail(status, message, category="VALIDATION_ERROR", **extra):
    """Raise an ApiError with the standard envelope."""
    raise ApiError(status, error_body(message, category, **extra))


def not_found(message="Resource not found"):
    """Raise the 404 OBJECT_NOT_FOUND answer."""
    fail(404, message, "OBJECT_NOT_FOUND")
