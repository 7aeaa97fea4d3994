"""CRM search (notes section 6): filters, sorting, offset paging, index lag."""

import fnmatch
import heapq
import re

from .model import filter_value_ms, value_ms
from .util import fail

OPERATORS = ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
             "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN")
_TOKEN_SPLIT = re.compile(r"[\s,;:/()\[\]\"'<>!?]+")
_SEARCHABLE = {
    "contacts": ("firstname", "lastname", "email", "phone", "mobilephone", "company"),
    "companies": ("name", "domain", "website", "phone"),
    "deals": ("dealname",),
    "tickets": ("subject", "content"),
    "products": ("name", "description", "hs_sku"),
    "line_items": ("name", "hs_sku"),
}
_TIME_FIELD = {"hs_lastmodifieddate": "u", "lastmodifieddate": "u",
               "createdate": "c", "hs_createdate": "c"}


def _bad(message):
    """400 VALIDATION_ERROR for a malformed search request."""
    fail(400, message)


def _getter(ot, name):
    """(kind, fn(rec) -> comparable or None) for one property."""
    pdef = ot.props.get(name)
    if pdef is None:
        _bad('Property "%s" does not exist on object type %s' % (name, ot.name))
    t = pdef.type
    if name == "hs_object_id":
        return "number", lambda r: r.id
    if name in _TIME_FIELD:
        attr = _TIME_FIELD[name]
        return "time", lambda r: (value_ms(r.p[name]) if name in r.p else getattr(r, attr))
    if t == "number":
        def num(r):
            """Stored number as float (None if empty or malformed)."""
            v = r.p.get(name)
            try:
                return float(v) if v is not None else None
            except ValueError:
                return None
        return "number", num
    if t in ("date", "datetime"):
        return "time", lambda r: value_ms(r.p.get(name))
    if t == "enumeration":
        return "enum", lambda r: r.p.get(name)
    return "string", lambda r: r.p.get(name)


def _convert(kind, value, name):
    """A filter value converted to the property's comparison domain."""
    if kind == "number":
        try:
            return float(value)
        except (TypeError, ValueError):
            _bad("%s is not a valid number for property %s" % (value, name))
    if kind == "time":
        ms = filter_value_ms(value)
        if ms is None:
            _bad("%s is not a valid date/time for property %s (epoch ms)" % (value, name))
        return ms
    if not isinstance(value, str):
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    return value


def _token_match(text, pattern):
    """CONTAINS_TOKEN semantics: wildcard or whole-token, case-insensitive."""
    text = text.lower()
    pattern = pattern.lower()
    if "*" in pattern:
        if fnmatch.fnmatchcase(text, pattern):
            return True
        return any(fnmatch.fnmatchcase(t, pattern) for t in _TOKEN_SPLIT.split(text) if t)
    return text == pattern or pattern in _TOKEN_SPLIT.split(text) or \
        pattern in re.split(r"[\s@.\-_]+", text)


def _assoc_filter(hub, ot, f):
    """Predicate for the associations.{type} pseudo-property."""
    tot = hub.store.by_key.get(f["propertyName"].split(".", 1)[1])
    if tot is None:
        _bad("Unknown association type in %s" % f["propertyName"])
    op = f.get("operator")
    if op == "EQ":
        ids = {str(f.get("value"))}
    elif op == "IN":
        ids = {str(v) for v in f.get("values") or []}
    else:
        _bad("associations.* filters support EQ and IN only")
    assoc = hub.assoc
    return lambda r: any(str(i) in ids for i in assoc.targets(ot, r.id, tot))


def _compile_filter(hub, ot, f):
    """One filter dict -> predicate(rec)."""
    if not isinstance(f, dict) or "propertyName" not in f:
        _bad("each filter needs a propertyName")
    name = f["propertyName"]
    if name.startswith("associations."):
        return _assoc_filter(hub, ot, f)
    op = f.get("operator", "EQ")
    if op not in OPERATORS:
        _bad("Unknown filter operator %s" % op)
    kind, get = _getter(ot, name)
    if op == "HAS_PROPERTY":
        return lambda r: get(r) is not None
    if op == "NOT_HAS_PROPERTY":
        return lambda r: get(r) is None
    strict = hub.cfg["searchStrictLowercase"]
    textual = kind in ("string", "enum")
    if op in ("IN", "NOT_IN"):
        vals = f.get("values")
        if not isinstance(vals, list) or not vals:
            _bad("operator %s needs a non-empty values array" % op)
        wanted = {_convert(kind, v, name) for v in vals}
        if textual:
            wanted = wanted if strict else {v.lower() for v in wanted}
            fn = lambda r: (lambda x: x is not None and x.lower() in wanted)(get(r))
        else:
            fn = lambda r: get(r) in wanted
        return fn if op == "IN" else (lambda r: not fn(r))
    if "value" not in f:
        _bad("operator %s needs a value" % op)
    value = _convert(kind, f["value"], name)
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        fn = lambda r: (lambda x: x is not None and _token_match(str(x), str(value)))(get(r))
        return fn if op == "CONTAINS_TOKEN" else (lambda r: not fn(r))
    if textual:
        if kind == "string" or not strict:
            value = value.lower()
        base = get
        get = lambda r: (lambda x: x.lower() if x is not None else None)(base(r))
    if op == "EQ":
        return lambda r: get(r) == value
    if op == "NEQ":
        return lambda r: get(r) != value
    if op == "BETWEEN":
        if "highValue" not in f:
            _bad("operator BETWEEN needs highValue")
        high = _convert(kind, f["highValue"], name)
        if textual:
            high = high.lower()
        return lambda r: (lambda x: x is not None and value <= x <= high)(get(r))
    cmp = {"LT": lambda x: x < value, "LTE": lambda x: x <= value,
           "GT": lambda x: x > value, "GTE": lambda x: x >= value}[op]
    return lambda r: (lambda x: x is not None and cmp(x))(get(r))


def _compile(hub, ot, body):
    """filterGroups -> list of lists of predicates (OR of ANDs)."""
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        _bad("filterGroups must be an array")
    lim = hub.cfg["searchFilterLimits"]
    if len(groups) > lim["maxGroups"]:
        _bad("Too many filterGroups: %d (the maximum is %d)" % (len(groups), lim["maxGroups"]))
    total = 0
    out = []
    for g in groups:
        filters = g.get("filters") if isinstance(g, dict) else None
        if not isinstance(filters, list):
            _bad("each filterGroup needs a filters array")
        if len(filters) > lim["maxFiltersPerGroup"]:
            _bad("Too many filters in a filterGroup: %d (the maximum is %d)" % (
                len(filters), lim["maxFiltersPerGroup"]))
        total += len(filters)
        out.append([_compile_filter(hub, ot, f) for f in filters])
    if total > lim["maxFilters"]:
        _bad("Too many filters: %d (the maximum is %d in total)" % (total, lim["maxFilters"]))
    return out


def _sort_key(ot, sorts):
    """(key function, reverse) from the first sort rule (only one is honoured)."""
    if not sorts:
        return (lambda r: (r.c, r.id)), False
    s = sorts[0]
    if isinstance(s, str):
        name, desc = (s[1:], True) if s.startswith("-") else (s, False)
    elif isinstance(s, dict) and "propertyName" in s:
        name = s["propertyName"]
        desc = s.get("direction", "ASCENDING") == "DESCENDING"
    else:
        _bad("sorts entries need a propertyName")
    _, get = _getter(ot, name)

    def key(r):
        """Sort key: missing values last, ties by id."""
        v = get(r)
        missing = v is None
        if isinstance(v, str):
            v = v.lower()
        return (missing != desc, v if not missing else 0, r.id if not desc else -r.id)
    return key, desc


def _query_pred(ot, query):
    """Free-text query predicate over the type's searchable properties."""
    names = _SEARCHABLE.get(ot.name)
    if names is None:
        if ot.schema:
            names = tuple(ot.schema.get("searchableProperties") or ()) or (
                ot.schema.get("primaryDisplayProperty"),)
        else:
            names = tuple(n for n in ot.props if n.endswith(("name", "title", "label")))
    tokens = query.lower().split()

    def pred(r):
        """Do all query tokens occur in the searchable text?"""
        text = " ".join(r.p.get(n, "") for n in names if n).lower()
        return all(t in text for t in tokens)
    return pred


_BOUND_OPS = ("EQ", "GT", "GTE", "LT", "LTE")


def _fast(hub, ot, body, now, limit, after, props):
    """The pollers' query shape, without per-record predicates: filters only
    on the last-modified time and hs_object_id (EQ/GT/GTE/LT/LTE, one group),
    sorted on one of them.  Returns the response, or None for the general
    path.  Same results as the general path, an index scan's speed."""
    if body.get("query"):
        return None
    groups = body.get("filterGroups") or []
    if len(groups) > 1:
        return None
    bounds = {"u": [None, None], "id": [None, None]}
    for f in (groups[0].get("filters") or []) if groups else []:
        if not isinstance(f, dict):
            return None
        name, op = f.get("propertyName"), f.get("operator", "EQ")
        if name == "hs_object_id":
            field = "id"
            try:
                v = int(str(f.get("value")))
            except ValueError:
                return None
        elif name == ot.lastmod or (name in ("hs_lastmodifieddate", "lastmodifieddate") and name in ot.props):
            field = "u"
            v = filter_value_ms(f.get("value"))
            if v is None:
                return None
        else:
            return None
        if op not in _BOUND_OPS:
            return None
        lo, hi = bounds[field]
        if op in ("EQ", "GT", "GTE"):
            v2 = v + 1 if op == "GT" else v
            lo = v2 if lo is None else max(lo, v2)
        if op in ("EQ", "LT", "LTE"):
            v2 = v - 1 if op == "LT" else v
            hi = v2 if hi is None else min(hi, v2)
        bounds[field] = [lo, hi]
    sorts = body.get("sorts")
    desc = False
    by = "created"
    if sorts:
        s0 = sorts[0]
        if isinstance(s0, str):
            name, desc = (s0[1:], True) if s0.startswith("-") else (s0, False)
        elif isinstance(s0, dict):
            name = s0.get("propertyName")
            desc = s0.get("direction", "ASCENDING") == "DESCENDING"
        else:
            return None
        if name == "hs_object_id":
            by = "id"
        elif name in ("hs_lastmodifieddate", "lastmodifieddate") and name in ot.props:
            by = "u"
        else:
            return None
    big = 1 << 62
    ulo, uhi = bounds["u"]
    ilo, ihi = bounds["id"]
    ulo = -big if ulo is None else ulo
    uhi = big if uhi is None else uhi
    ilo = -big if ilo is None else ilo
    ihi = big if ihi is None else ihi
    horizon = now - max(hub.cfg["searchIndexLagMs"], 0)
    recs = ot.recs.values()
    hits = [r for r in recs if r.chg <= horizon and not r.a and
            ulo <= r.u <= uhi and ilo <= r.id <= ihi]
    visible = hub.store.visible
    for rec in [r for r in recs if r.chg > horizon]:
        r = visible(rec, now)
        if r is not None and not r.a and ulo <= r.u <= uhi and ilo <= r.id <= ihi:
            hits.append(r)
    if by == "u":
        key = (lambda r: (-r.u, -r.id)) if desc else (lambda r: (r.u, r.id))
    elif by == "id":
        key = (lambda r: -r.id) if desc else (lambda r: r.id)
    else:
        key = lambda r: (r.c, r.id)
    want = after + limit
    page = heapq.nsmallest(want, hits, key=key)[after:want] if want < len(hits) // 4 \
        else sorted(hits, key=key)[after:want]
    render = hub.store.render
    out = {"total": len(hits), "results": [render(ot, r, props) for r in page]}
    if after + limit < len(hits):
        out["paging"] = {"next": {"after": str(after + limit)}}
    return out


def run(hub, ot, body, now):
    """Execute a search request body; returns the response dict."""
    cfg = hub.cfg
    if not isinstance(body, dict):
        _bad("search body must be a JSON object")
    limit = body.get("limit", 10)
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        _bad("limit must be an integer")
    if limit < 1 or limit > cfg["searchMaxLimit"]:
        _bad("limit must be between 1 and %d" % cfg["searchMaxLimit"])
    after = body.get("after") or 0
    try:
        after = int(after)
    except (TypeError, ValueError):
        _bad("after must be an integer offset")
    cap = cfg["searchResultCap"]
    if after < 0 or after + limit > cap:
        _bad("Paging past %d results is not supported (after=%d, limit=%d); narrow the "
             "filters instead." % (cap, after, limit))
    query = body.get("query")
    if query is not None and len(str(query)) > cfg["searchQueryMaxLength"]:
        _bad("query is longer than %d characters" % cfg["searchQueryMaxLength"])
    props = body.get("properties") or None
    fast = _fast(hub, ot, body, now, limit, after, props)
    if fast is not None:
        return fast
    groups = _compile(hub, ot, body)
    key, desc = _sort_key(ot, body.get("sorts"))
    qpred = _query_pred(ot, str(query)) if query else None
    visible = hub.store.visible
    hits = []
    for rec in list(ot.recs.values()):
        r = visible(rec, now)
        if r is None or r.a:
            continue
        if groups and not any(all(p(r) for p in g) for g in groups):
            continue
        if qpred and not qpred(r):
            continue
        hits.append(r)
    hits.sort(key=key, reverse=desc)
    page = hits[after:after + limit]
    render = hub.store.render
    out = {"total": len(hits), "results": [render(ot, r, props) for r in page]}
    if after + limit < len(hits):
        out["paging"] = {"next": {"after": str(after + limit)}}
    return out
