"""HubSpot request signatures v1, v2 and v3 (notes section 13).

`sign` is the only implementation: the webhook sender and the test-vector
check both call it."""

import base64
import hashlib
import hmac

# Percent-escapes HubSpot decodes in the URI before computing a v3 signature.
_V3_DECODE = (("%3A", ":"), ("%2F", "/"), ("%3F", "?"), ("%40", "@"), ("%21", "!"),
              ("%24", "$"), ("%27", "'"), ("%28", "("), ("%29", ")"), ("%2A", "*"),
              ("%2C", ","), ("%3B", ";"))


def v3_uri(uri):
    """Apply HubSpot's v3 URI decoding (case-insensitive escapes)."""
    out = uri
    for esc, ch in _V3_DECODE:
        out = out.replace(esc, ch).replace(esc.lower(), ch)
    return out


def sign(version, secret, method, uri, body, timestamp=None):
    """Signature string for one request.

    version: 'v1' | 'v2' | 'v3'; body: str or bytes (raw body);
    timestamp: the X-HubSpot-Request-Timestamp value (v3 only)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    if version == "v1":
        return hashlib.sha256((secret + body).encode("utf-8")).hexdigest()
    if version == "v2":
        return hashlib.sha256((secret + method.upper() + uri + body).encode("utf-8")).hexdigest()
    if version == "v3":
        msg = method.upper() + v3_uri(uri) + body + str(timestamp)
        mac = hmac.new(secret.encode("utf-8"), msg.encode("utf-8"), hashlib.sha256)
        return base64.b64encode(mac.digest()).decode("ascii")
    raise ValueError("unknown signature version %r" % version)
