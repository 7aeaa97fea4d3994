"""Records, object types, value validation and record rendering."""

import re

from .catalog import PropDef
from .util import date_str, iso_ms, parse_iso, parse_time_value

DERIVED = frozenset(("hs_object_id", "createdate", "hs_createdate",
                     "hs_lastmodifieddate", "lastmodifieddate"))
_NUMBER_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


class Rec:
    """One CRM record, kept compact for a million of them.

    p: stored property values (strings; absent = empty), c/u/a: created,
    updated and archived epoch ms (a = 0 when live), h: history dict
    {name: [(value, ms, source_index), ...]} only for properties changed after
    creation, cs: creation source index, chg: ms of the last change (search
    index lag; 0 = searchable at once), prev: earlier states search may still
    show while chg is recent (see Store._touch)."""

    __slots__ = ("id", "p", "c", "u", "a", "h", "cs", "chg", "prev")

    def __init__(self, id_, p, c, u, cs, chg):
        """Build a live record."""
        self.id = id_
        self.p = p
        self.c = c
        self.u = u
        self.a = 0
        self.h = None
        self.cs = cs
        self.chg = chg
        self.prev = None


class ObjectType:
    """An object type: its definitions, records and unique-value indexes."""

    def __init__(self, name, tid, word, hook, created_prop, default_props, props,
                 schema=None):
        """Register definitions; default_props None means created/modified/id."""
        self.name = name
        self.tid = tid
        self.word = word
        self.hook = hook
        self.created_prop = created_prop
        self.contacts = name == "contacts"
        self.lastmod = "lastmodifieddate" if self.contacts else "hs_lastmodifieddate"
        self.always = ("hs_object_id", created_prop, self.lastmod)
        if default_props is None:
            default_props = "%s,hs_lastmodifieddate,hs_object_id" % created_prop
        self.default_props = tuple(default_props.split(","))
        self.props = {p.name: p for p in props}
        self.group = word.lower().replace("_", "") + "information"
        for p in props:
            if p.group == "information":
                p.group = self.group
        self.groups = {self.group: {"name": self.group, "label": word.replace("_", " ").title()
                                    + " information", "displayOrder": -1, "archived": False}}
        self.recs = {}
        self.order = []          # record ids in creation (= id) order, for list paging
        self.aliases = {}
        self.schema = schema
        self.uniq = {}
        self.reindex_unique()

    def unique_names(self):
        """Names of properties whose values must be unique (email for contacts)."""
        names = [p.name for p in self.props.values() if p.unique and not p.archived]
        if self.contacts and "email" not in names:
            names.insert(0, "email")
        return names

    def reindex_unique(self):
        """Rebuild the unique-value indexes from the live records."""
        self.uniq = {n: {} for n in self.unique_names()}
        for rec in self.recs.values():
            if not rec.a:
                self.index_add(rec)

    def index_add(self, rec):
        """Enter rec's unique values into the indexes."""
        for name, idx in self.uniq.items():
            v = rec.p.get(name)
            if v:
                idx[ukey(name, v)] = rec.id

    def index_remove(self, rec):
        """Remove rec's unique values from the indexes."""
        for name, idx in self.uniq.items():
            v = rec.p.get(name)
            if v and idx.get(ukey(name, v)) == rec.id:
                del idx[ukey(name, v)]

    def resolve(self, id_):
        """Record for an id (following merge aliases), or None."""
        rec = self.recs.get(id_)
        if rec is None and id_ in self.aliases:
            return self.resolve(self.aliases[id_])
        return rec

    def value(self, rec, name):
        """A property's wire value for rec (None when empty)."""
        v = rec.p.get(name)
        if v is not None or name not in DERIVED:
            return v
        if name == "hs_object_id":
            return str(rec.id)
        if name in ("createdate", "hs_createdate"):
            return iso_ms(rec.c)
        return iso_ms(rec.u)


def ukey(name, value):
    """Index key of a unique value (emails compare case-insensitively)."""
    if name != "email":
        return value
    low = value.lower()
    return value if low == value else low


class PropError(Exception):
    """One property-level validation error (code, message, property name)."""

    def __init__(self, code, message, name):
        """Remember the code, message and property of the error."""
        super().__init__(message)
        self.code = code
        self.message = message
        self.name = name


def _as_text(raw, pdef):
    """JSON value -> string, the way HubSpot coerces scalar inputs."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (int, str)):
        return str(raw)
    raise PropError("INVALID_PROPERTY_VALUE",
                    "%r is not a valid value for property %s" % (raw, pdef.name), pdef.name)


def _number(pdef, text, cfg):
    """number: a decimal string, kept exactly as sent."""
    if not _NUMBER_RE.match(text):
        raise PropError("INVALID_NUMBER", "%s was not a valid number." % text, pdef.name)
    return text


def _bool(pdef, text, cfg):
    """bool: 'true' / 'false' (any case on input, lower case stored)."""
    low = text.lower()
    if low not in ("true", "false"):
        raise PropError("INVALID_BOOLEAN",
                        "%s was not a valid boolean; use true or false." % text, pdef.name)
    return low


def _datetime(pdef, text, cfg):
    """datetime: ISO-8601 or epoch ms in, ISO with ms and Z stored."""
    ms = parse_time_value(text)
    if ms is None:
        raise PropError("INVALID_DATETIME", "%s was not a valid ISO-8601 date-time or epoch "
                        "milliseconds." % text, pdef.name)
    return iso_ms(ms)


def _date(pdef, text, cfg):
    """date: YYYY-MM-DD or epoch ms at midnight UTC in, YYYY-MM-DD stored."""
    ms = parse_time_value(text)
    if ms is None:
        raise PropError("INVALID_DATE",
                        "%s was not a valid date (YYYY-MM-DD or epoch ms)." % text, pdef.name)
    if ms % 86400000:
        raise PropError("INVALID_DATE", "%s is not midnight UTC; date values must be at "
                        "midnight UTC." % text, pdef.name)
    return date_str(ms)


def _enumeration(pdef, text, cfg):
    """enumeration: option values (';'-joined for multi-select)."""
    opts = pdef.optvals
    if opts and text not in opts and cfg["validateEnumerations"]:
        for part in (text.split(";") if pdef.multi else [text]):
            if part not in opts:
                raise PropError("INVALID_OPTION", "%s was not one of the allowed options: "
                                "%s" % (part, sorted(opts)), pdef.name)
    return text


def _string(pdef, text, cfg):
    """string: anything; contact email must look like an address."""
    if pdef.name == "email" and cfg["validateEmail"] and not _EMAIL_RE.match(text):
        raise PropError("INVALID_EMAIL", "Email address %s is invalid" % text, pdef.name)
    return text


_NORMALIZERS = {"number": _number, "bool": _bool, "datetime": _datetime, "date": _date,
                "enumeration": _enumeration, "string": _string, "phone_number": _string}


def normalize(pdef, raw, cfg):
    """Validate one written value; return its stored string form ('' clears)."""
    text = raw if raw.__class__ is str else _as_text(raw, pdef)
    if not text:
        return ""
    return _NORMALIZERS[pdef.type](pdef, text, cfg)


def check_write(ot, props, cfg):
    """Validate a write's properties dict -> (normalized dict, [PropError])."""
    out = {}
    errors = []
    if not isinstance(props, dict):
        errors.append(PropError("INVALID_PROPERTIES", "properties must be an object", ""))
        return out, errors
    known = ot.props
    for name, raw in props.items():
        pdef = known.get(name)
        if pdef is not None and pdef.fast and raw.__class__ is str:
            out[name] = raw
            continue
        if pdef is None or pdef.archived:
            errors.append(PropError("PROPERTY_DOESNT_EXIST",
                                    'Property "%s" does not exist' % name, name))
            continue
        if pdef.ro:
            errors.append(PropError("READ_ONLY_VALUE",
                                    "%s is a read only property; its value cannot be "
                                    "set." % name, name))
            continue
        try:
            out[name] = normalize(pdef, raw, cfg)
        except PropError as e:
            errors.append(e)
    return out, errors


def filter_value_ms(text):
    """A search filter value for date/datetime properties -> epoch ms or None."""
    return parse_time_value(text) if isinstance(text, str) else (
        int(text) if isinstance(text, int) else None)


def value_ms(v):
    """A stored date/datetime string -> epoch ms."""
    return parse_iso(v) if v else None


def new_custom_prop(spec, created):
    """PropDef from a properties-API create body (already validated)."""
    return PropDef(spec["name"], spec["type"], spec.get("fieldType"),
                   spec.get("options"), label=spec.get("label"),
                   group=spec.get("groupName", "information"),
                   unique=bool(spec.get("hasUniqueValue", False)),
                   hubspot_defined=False, hidden=bool(spec.get("hidden", False)),
                   description=spec.get("description", "") or "",
                   display_order=spec.get("displayOrder", -1),
                   form_field=bool(spec.get("formField", False)), created=created)
