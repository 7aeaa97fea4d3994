"""Admin-configured validation rules (config validationRules).

A portal administrator can attach validation rules to properties
(HubSpot's property-validations API: ruleType MAX_NUMBER, MIN_NUMBER,
MAX_LENGTH, REGEX, ...).  A write whose resulting record breaks a rule is
refused with 400 VALIDATION_ERROR, per record inside a batch.  A rule may
carry "exceptWhenSet": the record passes when those properties have a
value ("deals over 1000 need a next step")."""

import re

from .util import error_body


def _num(v):
    """v as a float, or None."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _breaks(rule, value):
    """Whether a property value breaks a rule (no value breaks only REQUIRED)."""
    kind, args = rule["ruleType"], rule.get("ruleArguments") or []
    if kind == "REQUIRED":
        return value in (None, "")
    if value in (None, ""):
        return False
    if kind in ("MAX_NUMBER", "MIN_NUMBER"):
        n, limit = _num(value), _num(args[0])
        if n is None or limit is None:
            return False
        return n > limit if kind == "MAX_NUMBER" else n < limit
    if kind == "MAX_LENGTH":
        return len(value) > int(args[0])
    if kind == "MIN_LENGTH":
        return len(value) < int(args[0])
    if kind == "REGEX":
        return re.fullmatch(args[0], value) is None
    return False


def check(hub, ot, current, written):
    """The 400 error body of the first rule the record breaks, or None.

    current: the record's stored properties before the write (None for a
    create); written: the normalized properties being written."""
    rules = hub.cfg["validationRules"]
    if not rules:
        return None
    merged = dict(current or {})
    merged.update(written)
    for rule in rules:
        try:
            if hub.store.type_of(rule["objectType"]) is not ot:
                continue
        except Exception:   # unknown type in a rule: it never applies
            continue
        name = rule["propertyName"]
        if not _breaks(rule, merged.get(name)):
            continue
        if any(merged.get(n) not in (None, "") for n in rule.get("exceptWhenSet") or []):
            continue
        args = ",".join(rule.get("ruleArguments") or [])
        msg = rule.get("message") or (
            'Property "%s" failed validation rule %s%s%s' % (
                name, rule["ruleType"], " (%s)" % args if args else "",
                "; required: %s" % ", ".join(rule["exceptWhenSet"])
                if rule.get("exceptWhenSet") else ""))
        return error_body(
            "Property values were not valid: %s" % msg, "VALIDATION_ERROR",
            errors=[{"message": msg, "code": "INVALID_PROPERTY_VALIDATION_RULE",
                     "context": {"propertyName": [name],
                                 "ruleType": [rule["ruleType"]]}}])
    return None
