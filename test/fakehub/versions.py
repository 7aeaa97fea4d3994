"""HubSpot's API version families: which one a path belongs to, and the
numbered route that serves it.

HubSpot publishes each CRM API twice over: date-versioned paths
(/crm/objects/2026-09/{objectType}, a new version each March and
September) and the older numbered ones (/crm/v3/objects/{objectType},
/crm/v4/associations/..., /oauth/v1/token), here called "legacy".  The paths
below are those of HubSpot's published OpenAPI documents (objects,
associations, associations schema (labels), properties, schemas, owners,
pipelines, OAuth) for versions 2026-09, 2026-03 and v3/v4/v1.  The fake's
route functions are registered once, on the numbered paths; a dated path is
served by the numbered route it corresponds to, and the request log keeps
that numbered path (the path as sent is logged as rawPath).
"""

import re

from .util import ApiError, error_body

FAMILIES = ("2026-09", "2026-03", "legacy")

_V = r"(?P<v>\d{4}-\d{2})"

# (pattern, numbered replacement); first match wins.
_DATED = [
    # per-record associations live under the objects family in the dated
    # documents, under /crm/v4/objects in the numbered one
    (re.compile(r"^/crm/objects/" + _V + r"/(?P<rest>[^/]+/[^/]+/associations(/.*)?)$"),
     r"/crm/v4/objects/\g<rest>"),
    (re.compile(r"^/crm/objects/" + _V + r"(?P<rest>/.*)$"), r"/crm/v3/objects\g<rest>"),
    # batch associations and (Associations Schema document) labels
    (re.compile(r"^/crm/associations/" + _V + r"(?P<rest>/.*)$"),
     r"/crm/v4/associations\g<rest>"),
    (re.compile(r"^/crm/properties/" + _V + r"(?P<rest>/.*)$"), r"/crm/v3/properties\g<rest>"),
    (re.compile(r"^/crm-object-schemas/" + _V + r"/schemas(?P<rest>/.*)?$"),
     r"/crm/v3/schemas\g<rest>"),
    (re.compile(r"^/crm/owners/" + _V + r"(?P<rest>/.*)?$"), r"/crm/v3/owners\g<rest>"),
    (re.compile(r"^/crm/pipelines/" + _V + r"(?P<rest>/.*)$"), r"/crm/v3/pipelines\g<rest>"),
    (re.compile(r"^/oauth/" + _V + r"/token$"), r"/oauth/v1/token"),
    (re.compile(r"^/oauth/" + _V + r"/token/(?P<rest>introspect|revoke)$"),
     r"/oauth/v3/token/\g<rest>"),
]

# Numbered paths of the same families; the one spelled differently from the
# fake's route is rewritten (the v3 schemas document's own path).
_LEGACY = [
    (re.compile(r"^/crm-object-schemas/v3/schemas(?P<rest>/.*)?$"), r"/crm/v3/schemas\g<rest>"),
    (re.compile(r"^/crm/v[34]/"), None),
    (re.compile(r"^/crm/associations/v4/"), None),
    (re.compile(r"^/oauth/v[13]/"), None),
]


def classify(path):
    """(family, numbered path) of a request path.

    family is '2026-09', '2026-03' or 'legacy' for a path of one of the
    versioned families, None for anything else (webhooks settings, ...);
    a dated version the fake does not know is its own name (never served)."""
    for pattern, numbered in _DATED:
        hit = pattern.match(path)
        if hit:
            return hit.group("v"), hit.expand(numbered)
    for pattern, numbered in _LEGACY:
        hit = pattern.match(path)
        if hit:
            return "legacy", hit.expand(numbered) if numbered else path
    return None, path


def check_served(cfg, family, raw_path):
    """404 OBJECT_NOT_FOUND (HubSpot's error body) unless the fake is
    configured (apiFamilies) to serve this family."""
    if family is None or family in cfg["apiFamilies"]:
        return
    raise ApiError(404, error_body(
        "Unknown path %s: API version %s is not served" % (raw_path, family),
        "OBJECT_NOT_FOUND"))
