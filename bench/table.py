#!/usr/bin/env python3
"""Print the figures bench/run collected (JSON lines) as one table: figure,
value, target and, where a peer did the same job on the same fake, the
peer's value.  With --markdown FILE, also write it as bench/RESULTS.md.
Usage: bench/table.py FIGURES [--markdown FILE --header TEXT]
"""

import json
import sys

# the hubsync figure a peer's figure compares with
PEER_OF = {
    "  naive: ratio to the 1,900 records/s ceiling": "  push: ratio to the 1,900 records/s ceiling",
    "  Node client: ratio to the 1,900 records/s ceiling": "  push: ratio to the 1,900 records/s ceiling",
}


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    peers = {}
    for r in rows:
        if r["figure"] in PEER_OF:
            who = r["figure"].strip().split(":")[0]
            peers.setdefault(PEER_OF[r["figure"]], []).append("%s %s" % (who, r["value"]))
    out = []
    for r in rows:
        peer = ", ".join(peers.get(r["figure"], []))
        out.append((r["figure"], r["value"], r["target"], peer))
    w = max(len(o[0]) for o in out)
    print("\n%-*s %14s  %-22s %s" % (w, "figure", "value", "target", "peer (same job, same fake)"))
    for o in out:
        print("%-*s %14s  %-22s %s" % (w, o[0], o[1], o[2], o[3]))
    if "--markdown" in sys.argv:
        path = sys.argv[sys.argv.index("--markdown") + 1]
        header = sys.argv[sys.argv.index("--header") + 1] if "--header" in sys.argv else ""
        with open(path, "w") as f:
            f.write("# hubsync benchmark results\n\n%s\n\n" % header)
            f.write("| figure | value | target | peer (same job, same fake) |\n|---|---:|---|---|\n")
            for o in out:
                f.write("| %s | %s | %s | %s |\n" % (o[0].strip().replace("|", "/"), o[1], o[2], o[3]))


if __name__ == "__main__":
    main()
