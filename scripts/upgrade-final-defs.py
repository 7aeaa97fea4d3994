#!/usr/bin/env python3
"""scripts/upgrade-final-defs.py V1 DELTA V2 -- print CREATE OR REPLACE blocks
for every function whose definition in the V2 install script differs from the
last one the upgrade path (V1 script, then DELTA) leaves behind.  Append its
output to the upgrade script when several sections changed one function;
test/t/040_upgrade.pl checks the result.  Example:
  scripts/upgrade-final-defs.py sql/hubsync--0.1.0.sql \
      sql/hubsync--0.1.0--0.2.0.sql sql/hubsync--0.2.0.sql
"""
import re, sys
pat = re.compile(r"^CREATE (?:OR REPLACE )?FUNCTION hubsync\.(\w+)\(", re.M)

def blocks(text):
    out = {}
    for m in pat.finditer(text):
        end = text.find("COMMENT ON FUNCTION hubsync.%s(" % m.group(1), m.start())
        nxt = pat.search(text, m.end())
        if end < 0 or (nxt and nxt.start() < end):
            end = nxt.start() if nxt else len(text)
        else:
            end = text.index("';\n", end) + 3
        out.setdefault(m.group(1), []).append(text[m.start():end].replace("CREATE OR REPLACE FUNCTION", "CREATE FUNCTION", 1).strip())
    return out

v1, delta, v2 = (open(p).read() for p in sys.argv[1:4])
old = blocks(v1)
for k, v in blocks(delta).items():
    old[k] = v
for name, defs in blocks(v2).items():
    if len(defs) > 1:
        sys.stderr.write("warning: %s defined %d times\n" % (name, len(defs)))
    if old.get(name, [None])[-1] != defs[-1]:
        sys.stderr.write("changed: %s\n" % name)
        print(defs[-1].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1) + "\n")
