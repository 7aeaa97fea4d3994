#!/usr/bin/env python3
"""Check what the fake HubSpot served against HubSpot's published OpenAPI
documents.

    HUBSPOT_SPEC_DIR=/path/to/spec-tree python3 test/conformance.py REC.jsonl [...]

REC.jsonl are recordings of the fake (fake_hubspot.py --record FILE, or
HUBSYNC_FAKE_RECORD=DIR/%p.jsonl in the environment of a TAP run, one file
per fake): one request and its answer per line.  HUBSPOT_SPEC_DIR (or
--spec) is a local copy of HubSpot's public API spec collection (any tree of
OpenAPI JSON documents; it is never part of this repository).  Without one the check prints "skipped" and exits 0.

For every recorded request: the method and path must be an operation of some
document (any version family; the most specific path template wins), a JSON
request body must fit the operation's request schema, and the status and
body of the answer must fit the documented responses (the status, else
"default").  The schema check is a subset of JSON Schema: type, nullable,
required, properties, items, enum, $ref, allOf/anyOf/oneOf.  Answers to
injected faults (hostile bodies, 5xx pages, ...) are counted, not checked.

Only hubsync's own requests (User-Agent hubsync/...) have their method, path
and body checked; the TAP tests also call the fake directly, on purpose with
undocumented paths and malformed bodies, and only the fake's answers to those
are checked.  Paths that are not HubSpot API paths (SKIP_PATHS: the
Webhooks Journal's file downloads) are counted, not checked.  Differences
between the documents and HubSpot's real behaviour that the fake and hubsync
follow on purpose (ACCEPTED, each with its reason; also listed in
test/fake/README.md) are reported apart and do not fail the check.

Exit status: 0 when nothing violates the documents (or skipped), 1 when
something does (listed, grouped by operation and reason), 2 on bad usage.
"""

import argparse
import collections
import glob
import json
import os
import re
import sys

TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


# Request paths that are not HubSpot API operations: (regex, reason).
SKIP_PATHS = [
    (re.compile(r"^/_journal-files/"),
     "Webhooks Journal file downloads: the journal API answers a presigned "
     "storage URL (the fake serves it itself), not a documented operation"),
]

# Accepted differences: (operation regex, reason regex, status regex, why).
# Kept in step with the list in test/fake/README.md.
ACCEPTED = [
    (r"/search$", r"^request\.sorts\[\]: dict where string", r".",
     "search sorts are objects {propertyName, direction} as HubSpot's search "
     "guide documents and clients send; the documents type them as strings"),
    (r"associations", r"\.label: null where string", r".",
     "unlabeled association types have label null in HubSpot's answers and "
     "guide; the documents say string"),
    (r"associations", r"^answer\.errors\[\]\.subCategory: str where object", r".",
     "HubSpot answers subCategory as a string (e.g. "
     "crm.associations.NO_ASSOCIATIONS_FOUND); the documents type it as object"),
    (r"objects", r"properties\.\*: null where string", r"^2",
     "a requested property without a value is null in HubSpot's answers; "
     "the documents say string"),
    (r".", r"^answer: required category missing$", r"^429$",
     "HubSpot's real 429 answers carry errorType RATE_LIMIT and policyName, "
     "not category (the fake copies them); hubsync reads both"),
    (r"^POST /oauth/v1/token$", r"^answer: required category missing$", r"^400$",
     "the numbered OAuth endpoint answers errors with HubSpot's status word "
     "(BAD_REFRESH_TOKEN) plus RFC 6749's error, not the Error envelope"),
    (r"^POST /oauth/2026-09/token$",
     r"^answer: required (category|correlationId|message) missing$", r"^200$",
     "the 2026-09 OAuth document lists no success answer for the token "
     "endpoint (only the Error default); the fake answers the token of the "
     "2026-03 and v1 documents"),
    (r"^(GET|PATCH|DELETE) /crm/", r"^answer: no body where status 404 documents one$", r"^404$",
     "the fake's notFoundBody: false mode (off by default; a tolerance test "
     "sets it) answers a missing record with an empty 404"),
]
ACCEPTED = [(re.compile(a), re.compile(b), re.compile(c), why) for a, b, c, why in ACCEPTED]


def accepted(label, reason, status):
    """The reason a violation is an accepted difference, or None."""
    for op_re, reason_re, status_re, why in ACCEPTED:
        if op_re.search(label) and reason_re.search(reason) and status_re.search(str(status)):
            return why
    return None


def from_hubsync(entry):
    """Was the request sent by hubsync (not by a test calling the fake)?
    Recordings without a userAgent (older fakes) count as hubsync's."""
    if "userAgent" not in entry:
        return True
    return (entry["userAgent"] or "").startswith("hubsync/")


def form_body(entry):
    """Is the request body form-encoded (recorded as text)?  Recordings
    without a requestType: a body that is not JSON counts as one."""
    if entry.get("requestType") is None:
        body = entry.get("requestBody")
        return isinstance(body, dict) and "__text__" in body
    return "x-www-form-urlencoded" in entry["requestType"]


class Operation:
    """One documented method + path template of one document."""

    def __init__(self, doc, template, method, op):
        """Keep what validation needs."""
        self.doc = doc
        self.template = template
        self.method = method
        self.op = op
        parts = template.strip("/").split("/")
        self.literals = sum(1 for p in parts if not p.startswith("{"))
        self.nparts = len(parts)
        self.regex = re.compile("^/" + "/".join(
            "[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "/?$")


def load_spec(root):
    """Every operation of every OpenAPI JSON document under root."""
    ops = []
    ndocs = 0
    for path in sorted(glob.glob(os.path.join(root, "**", "*.json"), recursive=True)):
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (ValueError, OSError, UnicodeDecodeError):
            continue
        if not isinstance(doc, dict) or "openapi" not in doc or not isinstance(doc.get("paths"), dict):
            continue
        ndocs += 1
        doc["__file__"] = os.path.relpath(path, root)
        for template, item in doc["paths"].items():
            for method, op in (item or {}).items():
                if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE") and isinstance(op, dict):
                    ops.append(Operation(doc, template, method.upper(), op))
    return ops, ndocs


def resolve(doc, node, seen=0):
    """Follow local $refs (#/components/...)."""
    while isinstance(node, dict) and "$ref" in node and seen < 50:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return {}
        cur = doc
        for part in ref[2:].split("/"):
            cur = cur.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(cur, dict) else {}
        node = cur
        seen += 1
    return node if isinstance(node, dict) else {}


def check(doc, schema, value, where, out, depth=0):
    """Append (where, reason) for each way value does not fit schema."""
    schema = resolve(doc, schema)
    if not schema or depth > 40:
        return
    if value is None:
        if schema.get("nullable") or "type" not in schema:
            return
        out.append((where, "null where %s is documented" % schema.get("type")))
        return
    if "allOf" in schema:
        for s in schema["allOf"]:
            check(doc, s, value, where, out, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            if not any(not _errors(doc, s, value, where, depth + 1) for s in schema[key]):
                out.append((where, "fits none of its %s schemas" % key))
            return
    t = schema.get("type")
    if t in TYPES and not TYPES[t](value):
        out.append((where, "%s where %s is documented" % (type(value).__name__, t)))
        return
    if "enum" in schema and isinstance(value, (str, int, float)) and not isinstance(value, bool) \
            and value not in schema["enum"]:
        out.append((where, "%r is not one of the documented values" % (value,)))
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                out.append((where, "required %s missing" % name))
        for name, sub in props.items():
            if name in value:
                check(doc, sub, value[name], "%s.%s" % (where, name), out, depth + 1)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            for name, v in value.items():
                if name not in props:
                    check(doc, extra, v, "%s.%s" % (where, "*"), out, depth + 1)
    elif isinstance(value, list) and "items" in schema:
        for v in value[:50]:   # a sample: pages repeat one shape
            check(doc, schema["items"], v, "%s[]" % where, out, depth + 1)


def _errors(doc, schema, value, where, depth):
    """The violations of value against schema (for anyOf/oneOf)."""
    out = []
    check(doc, schema, value, where, out, depth)
    return out


def json_schema(doc, holder):
    """The application/json schema of a requestBody / response, or None."""
    holder = resolve(doc, holder)
    content = holder.get("content") or {}
    for ctype, media in content.items():
        if "json" in ctype or ctype == "*/*":
            return (media or {}).get("schema") or {}
    return None


def form_documented(doc, holder):
    """Does a requestBody document a form-encoded body?"""
    content = resolve(doc, holder).get("content") or {}
    return any("x-www-form-urlencoded" in c for c in content)


_SEEN = {}


def candidates(ops, method, path):
    """The operations matching method and path, most specific template first."""
    key = (method, re.sub(r"/\d+(?=/|$)", "/0", path))
    if key in _SEEN:
        return _SEEN[key]
    hits = [o for o in ops if o.method == method and o.regex.match(key[1])]
    best = max((o.literals for o in hits), default=None)
    _SEEN[key] = [o for o in hits if o.literals == best]
    return _SEEN[key]


def validate(entry, ops):
    """(operation label, [reasons]) for one recorded request and answer."""
    method, path = entry["method"], entry["path"]
    ours = from_hubsync(entry)
    found = candidates(ops, method, path)
    if not found:
        if not ours:
            return None, []
        known = any(o.regex.match(path) for o in ops)
        return "%s %s" % (method, path), ["method not documented for this path" if known
                                          else "path not in any document"]
    best = None
    for o in found:
        problems = []
        body = entry.get("requestBody")
        if body is not None and ours:
            schema = o.op.get("requestBody") and json_schema(o.doc, o.op["requestBody"])
            if form_body(entry):
                if not form_documented(o.doc, o.op.get("requestBody")):
                    problems.append(("request", "a form body the operation does not document"))
            elif schema is None:
                problems.append(("request", "a body the operation does not document"))
            else:
                check(o.doc, schema, body, "request", problems)
        status = str(entry["status"])
        responses = o.op.get("responses") or {}
        resp = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
        answer = entry.get("responseBody")
        if resp is None:
            problems.append(("answer", "status %s not documented" % status))
        else:
            schema = json_schema(o.doc, resp)
            if schema is None and answer is not None:
                problems.append(("answer", "a body where status %s documents none" % status))
            elif schema is not None and answer is None and status != "204":
                problems.append(("answer", "no body where status %s documents one" % status))
            elif schema is not None and answer is not None:
                if isinstance(answer, dict) and "__text__" in answer:
                    problems.append(("answer", "a body that is not JSON"))
                else:
                    check(o.doc, schema, answer, "answer", problems)
        if best is None or len(problems) < len(best[1]):
            best = (o, problems)
        if not problems:
            break
    o, problems = best
    return "%s %s" % (method, o.template), ["%s: %s" % p for p in problems]


def main(argv=None):
    """Read the recordings, check them, print a summary."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recordings", nargs="+", help="JSON-lines files written by the fake's --record")
    ap.add_argument("--spec", default=os.environ.get("HUBSPOT_SPEC_DIR"),
                    help="spec collection tree (default $HUBSPOT_SPEC_DIR)")
    ap.add_argument("--examples", type=int, default=1, help="example paths per violation")
    ap.add_argument("--verbose", action="store_true", help="list the accepted differences by operation")
    args = ap.parse_args(argv)
    if not args.spec:
        print("conformance: skipped (no spec: set HUBSPOT_SPEC_DIR to a local copy of "
              "HubSpot's public API spec collection)")
        return 0
    if not os.path.isdir(args.spec):
        print("conformance: skipped (HUBSPOT_SPEC_DIR %s is not a directory)" % args.spec)
        return 0
    ops, ndocs = load_spec(args.spec)
    if not ops:
        print("conformance: skipped (no OpenAPI documents under %s)" % args.spec)
        return 0
    checked = faulted = harness = 0
    skipped = collections.Counter()
    per_op = collections.Counter()
    violations = collections.OrderedDict()
    accepts = collections.OrderedDict()
    for name in args.recordings:
        with open(name, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                entry = json.loads(line)
                if entry.get("fault"):
                    faulted += 1
                    continue
                skip = next((why for rx, why in SKIP_PATHS if rx.match(entry["path"])), None)
                if skip:
                    skipped[skip] += 1
                    continue
                checked += 1
                if not from_hubsync(entry):
                    harness += 1
                label, reasons = validate(entry, ops)
                if label is None:
                    skipped["the tests' own probes of undocumented paths (not hubsync's)"] += 1
                    checked -= 1
                    harness -= 1
                    continue
                per_op[label] += 1
                for r in sorted(set(reasons)):
                    key = (label, r)
                    why = accepted(label, r, entry["status"])
                    if why:
                        a = accepts.setdefault(why, collections.Counter())
                        a["%s  %s" % (label, r)] += 1
                        continue
                    v = violations.setdefault(key, {"count": 0, "examples": []})
                    v["count"] += 1
                    if len(v["examples"]) < args.examples:
                        v["examples"].append("%s %s -> %s" % (entry["method"], entry["path"], entry["status"]))
    print("conformance: %d documents, %d operations; %d requests checked (%d operations; "
          "%d of them sent by the tests, answers only), %d injected faults not checked"
          % (ndocs, len(ops), checked, len(per_op), harness, faulted))
    for why, n in skipped.items():
        print("conformance: skipped %d: %s" % (n, why))
    for why, kinds in accepts.items():
        print("conformance: accepted %d in %d operations: %s" % (sum(kinds.values()), len(kinds), why))
        if args.verbose:
            for kind, n in sorted(kinds.items()):
                print("  %6d  %s" % (n, kind))
    if not violations:
        print("conformance: no violations")
        return 0
    print("conformance: %d violations of %d kinds:" % (sum(v["count"] for v in violations.values()),
                                                        len(violations)))
    for (label, reason), v in violations.items():
        print("  %6d  %s  %s" % (v["count"], label, reason))
        for ex in v["examples"]:
            print("          e.g. %s" % ex)
    return 1


if __name__ == "__main__":
    sys.exit(main())
