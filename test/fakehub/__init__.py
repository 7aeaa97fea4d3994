"""fakehub: an in-process fake of HubSpot's CRM, OAuth and webhook APIs.

Used by hubsync's tests, demos and benchmarks.  Standard library only.
Entry point: test/fake_hubspot.py.  Control API reference: test/fake/README.md.
"""
