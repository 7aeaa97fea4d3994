"""The CRM record store: object types, writes with history, uniqueness, rendering."""

import json

from . import catalog
from .config import source_id
from .model import DERIVED, ObjectType, Rec, check_write, ukey
from .util import ApiError, error_body, fail, iso_ms

_NO_EVENT = frozenset(catalog.SYSTEM_READ_ONLY) | DERIVED
FIRST_ID = 10000000001        # ids exceed 32 bits, like HubSpot's
FIRST_CUSTOM_TYPE = 3604285   # custom objectTypeIds start at 2-3604285


class Store:
    """All object types and records of one fake portal."""

    def __init__(self, hub):
        """Empty portal with the standard object types."""
        self.hub = hub
        self.types = {}
        self.by_key = {}
        self.next_id = FIRST_ID
        self.next_custom = FIRST_CUSTOM_TYPE
        self.sources = []
        self.source_idx = {}
        self.domains = {}
        for name, tid, word, hook, created, dflt, props in catalog.standard_specs():
            self.add_type(ObjectType(name, tid, word, hook, created, dflt, props))

    # ----- object types -------------------------------------------------
    def add_type(self, ot, aliases=()):
        """Register an object type under its name, id, singular word and aliases."""
        self.types[ot.name] = ot
        self.by_key[ot.name] = ot
        self.by_key[ot.tid] = ot
        for key in (ot.word.lower(),) + tuple(aliases):
            self.by_key.setdefault(key, ot)

    def type_of(self, key):
        """Object type for a path segment (name, objectTypeId, p_name, pN_name)."""
        ot = self.by_key.get(key) or self.by_key.get(key.lower())
        if ot is None:
            fail(400, "Unable to infer object type from: %s" % key)
        return ot

    def alloc_id(self):
        """Next record id (global across types, numeric)."""
        i = self.next_id
        self.next_id += 1
        return i

    def source(self, kind, sid):
        """Interned index of a (sourceType, sourceId) pair."""
        key = (kind, sid)
        idx = self.source_idx.get(key)
        if idx is None:
            idx = self.source_idx[key] = len(self.sources)
            self.sources.append(key)
        return idx

    def domain(self, email):
        """hs_email_domain of an address (one shared string per domain)."""
        d = email.rpartition("@")[2].lower()
        return self.domains.setdefault(d, d)

    def api_source(self):
        """Source index for writes made through the public API."""
        cfg = self.hub.cfg
        return self.source(cfg["apiChangeSource"], source_id(cfg))

    # ----- lookups ------------------------------------------------------
    def find(self, ot, key, id_property=None, archived=False):
        """Record by id (or unique property value), None if absent/wrong state."""
        if id_property and id_property != "hs_object_id":
            if id_property not in ot.uniq:
                fail(400, "Property %s is not a unique identifier for %s" % (
                    id_property, ot.name))
            rid = ot.uniq[id_property].get(ukey(id_property, key))
            if rid is None and archived:
                return self._find_archived_by(ot, id_property, key)
        else:
            try:
                rid = int(key)
            except (TypeError, ValueError):
                return None
        rec = ot.resolve(rid) if rid is not None else None
        if rec is None or bool(rec.a) != bool(archived):
            return None
        return rec

    def _find_archived_by(self, ot, name, value):
        """Archived record id holding a unique value (slow path)."""
        k = ukey(name, value)
        for rec in ot.recs.values():
            v = rec.p.get(name)
            if rec.a and v and ukey(name, v) == k:
                return rec.id
        return None

    # ----- validation ---------------------------------------------------
    def validate(self, ot, props):
        """Normalized properties or 400 VALIDATION_ERROR listing every problem."""
        out, errors = check_write(ot, props if props is not None else {}, self.hub.cfg)
        if errors:
            raise ApiError(400, self.validation_body(errors))
        return out

    def validation_body(self, errors, **extra):
        """The 400 body for property errors (message text plus errors[])."""
        portal = self.hub.cfg["portalId"]
        inner = [{"isValid": False, "message": e.message, "error": e.code,
                  "name": e.name, "localizedErrorMessage": e.message,
                  "portalId": portal} for e in errors]
        return error_body(
            "Property values were not valid: " + json.dumps(inner, separators=(",", ":")),
            "VALIDATION_ERROR",
            errors=[{"message": e.message, "code": e.code,
                     "context": {"propertyName": [e.name]}} for e in errors],
            **extra)

    def conflict(self, ot, name, value, existing):
        """ApiError 409 for a unique-value clash, shaped by uniqueConflictMessage:
        "existingId" (contacts' email: HubSpot's confirmed text; others: a
        message naming the property and the id), "noId" (the same without
        any id) or "bare" (names neither property nor id)."""
        shape = self.hub.cfg["uniqueConflictMessage"]
        if shape == "bare":
            return ApiError(409, error_body("A record with this unique value already exists.",
                                            "CONFLICT"))
        if name == "email" and ot.contacts:
            msg = "Contact already exists."
            if shape == "existingId":
                msg += " Existing ID: %d" % existing
            return ApiError(409, error_body(msg, "CONFLICT"))
        msg = 'A %s with the unique property "%s" value "%s" already exists.' % (
            ot.word.lower(), name, value)
        context = {"propertyName": [name]}
        if shape == "existingId":
            msg += " Existing ID: %d" % existing
            context["existingId"] = [str(existing)]
        return ApiError(409, error_body(msg, "CONFLICT", context=context))

    def unique_clash(self, ot, props, self_id=None, pending=None):
        """ApiError for the first unique value already used by another record."""
        for name, idx in ot.uniq.items():
            v = props.get(name)
            if not v:
                continue
            k = ukey(name, v)
            other = idx.get(k)
            if other is not None and other != self_id:
                return self.conflict(ot, name, v, other)
            if pending is not None:
                if (name, k) in pending:
                    return self.conflict(ot, name, v, pending[(name, k)])
        return None

    # ----- writes -------------------------------------------------------
    def _touch(self, rec, now):
        """Before a change: remember the state search may still show (index lag).

        rec.prev lists (since_ms, props, updated, archived) of earlier states;
        only those that can still be "the state as of now - lag" are kept."""
        lag = self.hub.cfg["searchIndexLagMs"]
        if lag <= 0:
            rec.prev = None
        else:
            prev = rec.prev
            state = (rec.chg, dict(rec.p), rec.u, rec.a)
            if prev is None:
                rec.prev = [state]
            else:
                prev.append(state)
                horizon = now - lag
                while len(prev) > 1 and prev[1][0] <= horizon:
                    del prev[0]
        rec.chg = now

    def create(self, ot, props, src, now, emit=True):
        """Create a record from normalized props (uniqueness already checked)."""
        p = {k: v for k, v in props.items() if v}
        defaults = catalog.CREATE_DEFAULTS.get(ot.name)
        if defaults:
            for k, v in defaults.items():
                p.setdefault(k, v)
        if ot.contacts and "email" in p:
            p["hs_email_domain"] = self.domain(p["email"])
        rid = self.alloc_id()
        rec = Rec(rid, p, now, now, src, now)
        ot.recs[rid] = rec
        ot.order.append(rid)
        for name, idx in ot.uniq.items():
            v = p.get(name)
            if v:
                idx[ukey(name, v)] = rid
        if emit:
            hooks = self.hub.hooks
            if hooks.active:
                hooks.emit_changes(ot, rid, src, now, True, tuple(p.items())
                                   if self.hub.cfg["webhookPropertyChangeOnCreate"] else ())
        return rec

    def update(self, ot, rec, props, src, now, emit=True):
        """Apply normalized props to rec; returns [(name, new value)] that changed."""
        changed = []
        p = rec.p
        email_changed = False
        for name, v in props.items():
            old = p.get(name)
            if v == old:
                continue
            if old is None:
                if not v:
                    continue
                if name in DERIVED:
                    old = ot.value(rec, name)
                    if v == old:
                        continue
            if not changed:
                self._touch(rec, now)
            if name in ot.uniq and not rec.a:
                idx = ot.uniq[name]
                if old and idx.get(ukey(name, old)) == rec.id:
                    del idx[ukey(name, old)]
                if v:
                    idx[ukey(name, v)] = rec.id
            if v:
                p[name] = v
            else:
                del p[name]
            changed.append((name, v))
            self._history(rec, name, old, v, now, src)
            if name == "email":
                email_changed = True
        if changed:
            if email_changed and ot.contacts:
                email = p.get("email")
                if email:
                    p["hs_email_domain"] = self.domain(email)
                else:
                    p.pop("hs_email_domain", None)
            if now > rec.u:
                rec.u = now
            if emit:
                hooks = self.hub.hooks
                if hooks.active:
                    hooks.emit_changes(ot, rec.id, src, now, False, changed)
        elif self.hub.cfg["noopWriteTouchesModified"]:
            self._touch(rec, now)
            if now > rec.u:
                rec.u = now
        return changed

    def _history(self, rec, name, old, new, now, src):
        """Append a value to rec's history of name (lazily seeding the first)."""
        h = rec.h
        if h is None:
            h = rec.h = {}
        lst = h.get(name)
        if lst is None:
            lst = h[name] = [(old, rec.c, rec.cs)] if old is not None else []
        lst.append((new, now, src))
        if len(lst) > self.hub.cfg["historyMax"]:
            del lst[0]

    def archive(self, ot, rec, src, now, emit=True):
        """Move rec to the recycle bin (archive)."""
        self._touch(rec, now)
        ot.index_remove(rec)
        rec.a = now
        rec.u = now
        if emit and self.hub.hooks.active:
            self.hub.hooks.emit(ot, "deletion", rec.id, src, now, changeFlag="DELETED")

    def restore(self, ot, rec, src, now, emit=True):
        """Bring an archived record back (409 if its unique values are taken)."""
        err = self.unique_clash(ot, rec.p, rec.id)
        if err:
            raise err
        self._touch(rec, now)
        rec.a = 0
        rec.u = now
        ot.index_add(rec)
        if emit and self.hub.hooks.active:
            self.hub.hooks.emit(ot, "restore", rec.id, src, now, changeFlag="RESTORED")

    def purge(self, ot, rec, src, now, emit=True, privacy=False):
        """Delete rec permanently (GDPR delete)."""
        ot.index_remove(rec)
        del ot.recs[rec.id]
        self.hub.assoc.drop_object(ot, rec.id, src, now, emit=False)
        if emit and self.hub.hooks.active:
            kind = "privacyDeletion" if privacy else "deletion"
            self.hub.hooks.emit(ot, kind, rec.id, src, now, changeFlag="DELETED")

    def merge(self, ot, primary, other, src, now, emit=True):
        """Merge other into primary; returns the surviving record."""
        if primary is other:
            fail(400, "Cannot merge an object with itself")
        moved = {k: v for k, v in other.p.items()
                 if k not in primary.p and k not in _NO_EVENT}
        ids = [i for i in (primary.p.get("hs_merged_object_ids") or "").split(";") if i]
        ids += [i for i in (other.p.get("hs_merged_object_ids") or "").split(";") if i]
        ids.append(str(other.id))
        ot.index_remove(primary)
        ot.index_remove(other)
        del ot.recs[other.id]
        if self.hub.cfg["mergeCreatesNewId"]:
            ids.append(str(primary.id))
            del ot.recs[primary.id]
            p = dict(primary.p)
            p.update(moved)
            survivor = Rec(self.alloc_id(), p, primary.c, now, primary.cs, now)
            survivor.h = primary.h
            ot.recs[survivor.id] = survivor
            ot.order.append(survivor.id)
            ot.aliases[primary.id] = survivor.id
        else:
            survivor = primary
            self._touch(survivor, now)
            survivor.p.update(moved)
            survivor.u = now
        ot.aliases[other.id] = survivor.id
        for name, v in moved.items():
            self._history(survivor, name, None, v, now, src)
        survivor.p["hs_merged_object_ids"] = ";".join(sorted(set(ids), key=int))
        ot.index_add(survivor)
        for gone in (other.id, primary.id):
            if gone != survivor.id:
                self.hub.assoc.move_object(ot, gone, survivor.id)
        if emit and self.hub.hooks.active:
            self.hub.hooks.emit(ot, "merge", survivor.id, src, now, changeFlag="MERGED",
                                primaryObjectId=primary.id, mergedObjectIds=[other.id],
                                newObjectId=survivor.id,
                                numberOfPropertiesMoved=len(moved))
        return survivor

    # ----- reading ------------------------------------------------------
    def render(self, ot, rec, names=None, history=None, assoc=None, full=False):
        """SimplePublicObject JSON for rec.

        names: property names to include (None = the type's defaults);
        history: names for propertiesWithHistory; assoc: type names to embed;
        full: every stored and derived property (control API)."""
        p = rec.p
        if full:
            names = list(p)
        elif names is None:
            names = ot.default_props
        known = ot.props
        props = {}
        for n in names:
            if n in known:
                v = p.get(n)
                if v is None and n in DERIVED:
                    v = ot.value(rec, n)
                props[n] = v
        created = iso_ms(rec.c)
        for n in ot.always:
            if n not in props:
                v = p.get(n)
                if v is None:
                    v = str(rec.id) if n == "hs_object_id" else \
                        created if n == ot.created_prop else iso_ms(rec.u)
                props[n] = v
        out = {"id": str(rec.id), "properties": props, "createdAt": created,
               "updatedAt": iso_ms(rec.u), "archived": bool(rec.a)}
        if rec.a:
            out["archivedAt"] = iso_ms(rec.a)
        if history:
            out["propertiesWithHistory"] = {
                n: self.history(ot, rec, n) for n in history if n in known}
        if assoc:
            out["associations"] = self.hub.assoc.embed(ot, rec.id, assoc)
        return out

    def render_written(self, ot, rec, props):
        """Record JSON for a write response: the written properties + system ones."""
        get = rec.p.get
        out_props = {n: get(n) for n in props}
        created = iso_ms(rec.c)
        out_props["hs_object_id"] = str(rec.id)
        out_props[ot.created_prop] = get(ot.created_prop) or created
        out_props[ot.lastmod] = iso_ms(rec.u)
        out = {"id": str(rec.id), "properties": out_props, "createdAt": created,
               "updatedAt": iso_ms(rec.u), "archived": bool(rec.a)}
        if rec.a:
            out["archivedAt"] = iso_ms(rec.a)
        return out

    def history(self, ot, rec, name):
        """propertiesWithHistory entries for one property, newest first."""
        if rec.h and name in rec.h:
            entries = rec.h[name]
        elif name in rec.p:
            entries = [(rec.p[name], rec.c, rec.cs)]
        elif name in DERIVED:
            ts = rec.c if name in ("createdate", "hs_createdate", "hs_object_id") else rec.u
            entries = [(ot.value(rec, name), ts, None)]
        else:
            entries = []
        out = []
        for value, ts, src in reversed(entries):
            kind, sid = self.sources[src] if src is not None else ("CALCULATED", None)
            item = {"value": value, "timestamp": iso_ms(ts), "sourceType": kind}
            if sid is not None:
                item["sourceId"] = sid
                if sid.startswith("userId:"):
                    item["updatedByUserId"] = int(sid[7:])
            out.append(item)
        return out

    def visible(self, rec, now):
        """rec as search sees it: its state as of now - searchIndexLagMs, or None."""
        lag = max(self.hub.cfg["searchIndexLagMs"], 0)
        if rec.chg + lag <= now:
            if rec.prev is not None:
                rec.prev = None
            return rec
        if rec.prev:
            asof = now - lag
            for since, p, u, a in reversed(rec.prev):
                if since <= asof:
                    view = Rec(rec.id, p, rec.c, u, rec.cs, since)
                    view.a = a
                    return view
        return None
