#!/usr/bin/env python3
"""scripts/check-layout.py -- check src/'s one-way dependency rule.

Areas, lowest first: util <- core <- bgw <- hubspot <- {push, pull, webhook,
enrich}; src/hubsync.c (the module's entry point) sits above them all.  A
file may include headers of its own area and of lower ones, and call
functions defined there; a feature area (push, pull, webhook, enrich) never
includes another feature's header nor calls its functions.  Prints each
violation and exits 1 if there is any.
"""
import os
import re
import sys

LEVEL = {"util": 0, "core": 1, "bgw": 2, "hubspot": 3,
         "push": 4, "pull": 4, "webhook": 4, "enrich": 4, "": 5}
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def area(path):
    rel = os.path.relpath(path, root)
    return rel.split(os.sep)[0] if os.sep in rel else ""


def allowed(frm, to):
    return frm == to or LEVEL[to] < LEVEL[frm]


files = []
for d, _, names in os.walk(root):
    files += [os.path.join(d, n) for n in names if n.endswith((".c", ".h"))]
unknown = sorted({area(f) for f in files} - set(LEVEL))
if unknown:
    sys.exit("unknown area folders under src/: %s" % ", ".join(unknown))

src = {f: open(f, encoding="utf-8").read() for f in files}
# functions defined (not static) in each .c file
defined = {}
for f, text in src.items():
    if f.endswith(".c"):
        for m in re.finditer(r"^(?!static\b)[A-Za-z_][\w \t\*]*\n(\w+)\(", text, re.M):
            defined[m.group(1)] = area(f)

bad = []
for f, text in sorted(src.items()):
    a = area(f)
    for m in re.finditer(r'^#include "([a-z_]+)/[a-z_]+\.h"', text, re.M):
        to = m.group(1)
        if to in LEVEL and not allowed(a, to):
            bad.append("%s includes %s" % (os.path.relpath(f, root), m.group(0)[9:]))
    if f.endswith(".c"):
        body = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        for name in set(re.findall(r"\b(hubsync_\w+)\s*\(", body)):
            to = defined.get(name)
            if to is not None and not allowed(a, to):
                bad.append("%s calls %s (defined in %s/)" % (os.path.relpath(f, root), name, to))
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
