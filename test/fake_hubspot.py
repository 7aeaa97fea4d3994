#!/usr/bin/env python3
"""Fake HubSpot server for hubsync's tests, demos and benchmarks.

Usage: python3 test/fake_hubspot.py --port 0 [--token T] [--app-id N]
       [--portal-id N] [--client-secret S] [--config JSON|@file]

Binds 127.0.0.1, prints the chosen port as the first stdout line, serves until
SIGTERM/SIGINT.  Control API and config keys: test/fake/README.md.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakehub.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
