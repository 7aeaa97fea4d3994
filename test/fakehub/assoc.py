"""Associations: type definitions (notes 9.2), the edge store, change events."""

# (from type, to type, typeId, label, inverse typeId or None = synthetic).
# Commerce ids other than 542/393 and most inverses come from third-party
# tables (unconfirmed, notes 9.2).
HUBSPOT_DEFINED = [
    ("contacts", "companies", 279, None, 280),
    ("contacts", "companies", 1, "Primary", 2),
    ("deals", "contacts", 3, None, 4),
    ("deals", "companies", 341, None, 342),
    ("deals", "companies", 5, "Primary", 6),
    ("contacts", "tickets", 15, None, 16),
    ("tickets", "companies", 339, None, 340),
    ("deals", "line_items", 19, None, 20),
    ("deals", "quotes", 63, None, 64),
    ("quotes", "line_items", 67, None, 68),
    ("quotes", "contacts", 69, None, 70),
    ("quotes", "companies", 71, None, 72),
    ("invoices", "contacts", 177, None, 178),
    ("invoices", "companies", 179, None, 180),
    ("invoices", "deals", 175, None, 176),
    ("invoices", "line_items", 409, None, 410),
    ("invoices", "quotes", 407, None, 408),
    ("invoices", "subscriptions", 622, None, None),
    ("invoices", "orders", 517, None, None),
    ("invoices", "discounts", 411, None, None),
    ("invoices", "fees", 413, None, None),
    ("invoices", "taxes", 415, None, None),
    ("invoices", "tickets", 986, None, None),
    ("subscriptions", "contacts", 295, None, 296),
    ("subscriptions", "line_items", 301, None, 302),
    ("companies", "subscriptions", 298, None, None),
    ("deals", "subscriptions", 300, None, None),
    ("quotes", "subscriptions", 304, None, None),
    ("commerce_payments", "contacts", 387, None, 388),
    ("commerce_payments", "companies", 389, None, 390),
    ("commerce_payments", "deals", 391, None, 392),
    ("commerce_payments", "subscriptions", 393, None, None),
    ("commerce_payments", "line_items", 395, None, 396),
    ("commerce_payments", "quotes", 397, None, 398),
    ("commerce_payments", "discounts", 428, None, None),
    ("commerce_payments", "orders", 524, None, None),
    ("commerce_payments", "invoices", 542, None, 541),
    ("commerce_payments", "tickets", 1354, None, None),
    # orders: 507/509/512 as integrators use them (third-party code); the
    # line item pair and every inverse are unconfirmed (notes 9.2)
    ("orders", "contacts", 507, None, 508),
    ("orders", "companies", 509, None, 510),
    ("orders", "deals", 512, None, 511),
    ("orders", "line_items", 513, None, 514),
]
PRIMARY = frozenset((1, 2, 5, 6))
CATEGORIES = ("HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED", "WORK")
SYNTHETIC_START = 900001   # inverses/pairs HubSpot's tables do not give
USER_START = 5001          # USER_DEFINED labels created through the API


class TypeDef:
    """One directional association type."""

    __slots__ = ("type_id", "from_tid", "to_tid", "category", "label", "inverse")

    def __init__(self, type_id, from_tid, to_tid, category, label, inverse):
        """Plain record."""
        self.type_id = type_id
        self.from_tid = from_tid
        self.to_tid = to_tid
        self.category = category
        self.label = label
        self.inverse = inverse

    def to_json(self):
        """{category, typeId, label} as the v4 API returns it."""
        return {"category": self.category, "typeId": self.type_id, "label": self.label}


class Associations:
    """Association type registry and the bidirectional edge store."""

    def __init__(self, hub):
        """Load the HUBSPOT_DEFINED table."""
        self.hub = hub
        self.defs = {}
        self.pairs = {}
        self.edges = {}
        self.next_synthetic = SYNTHETIC_START
        self.next_user = USER_START
        types = hub.store.types
        for f, t, tid, label, inv in HUBSPOT_DEFINED:
            if inv is None:
                inv = self._synthetic()
            self._define(types[f].tid, types[t].tid, "HUBSPOT_DEFINED", tid, label, inv)

    def _synthetic(self):
        """Allocate a synthetic HUBSPOT_DEFINED type id."""
        i = self.next_synthetic
        self.next_synthetic += 1
        return i

    def _define(self, ftid, ttid, category, tid, label, inv, inv_label=None):
        """Register a type and its inverse."""
        self.defs[tid] = TypeDef(tid, ftid, ttid, category, label, inv)
        self.defs[inv] = TypeDef(inv, ttid, ftid, category,
                                 inv_label if inv_label is not None else label, tid)
        self.pairs.setdefault((ftid, ttid), []).append(tid)
        self.pairs.setdefault((ttid, ftid), []).append(inv)

    def pair_types(self, fot, tot):
        """Type ids defined between two object types (creating a synthetic pair)."""
        key = (fot.tid, tot.tid)
        if key not in self.pairs:
            a = self._synthetic()
            self._define(fot.tid, tot.tid, "HUBSPOT_DEFINED", a, None, self._synthetic())
        return self.pairs[key]

    def default_type(self, fot, tot):
        """The unlabeled HUBSPOT_DEFINED type for a pair."""
        for tid in self.pair_types(fot, tot):
            d = self.defs[tid]
            if d.label is None and d.category == "HUBSPOT_DEFINED":
                return tid
        return self.pair_types(fot, tot)[0]

    def create_label(self, fot, tot, label, inverse_label=None):
        """New USER_DEFINED label pair; returns the two TypeDefs."""
        a, b = self.next_user, self.next_user + 1
        self.next_user += 2
        self._define(fot.tid, tot.tid, "USER_DEFINED", a, label, b,
                     inverse_label if inverse_label else None)
        if not inverse_label:
            self.defs[b].label = None
        return self.defs[a], self.defs[b]

    def check_type(self, fot, tot, category, type_id):
        """TypeDef for a requested (category, id) between fot and tot, else None."""
        self.pair_types(fot, tot)
        d = self.defs.get(type_id)
        if d is None or d.from_tid != fot.tid or d.to_tid != tot.tid:
            return None
        if category and category != d.category:
            return None
        return d

    # ----- edges --------------------------------------------------------
    def targets(self, fot, fid, tot, live_only=True):
        """{to_id: set(type ids)} for one record towards one object type."""
        per = self.edges.get((fot.tid, fid))
        got = per.get(tot.tid) if per else None
        if not got:
            return {}
        if not live_only:
            return got
        recs = tot.recs
        return {i: s for i, s in got.items() if i in recs and not recs[i].a}

    def _add_edge(self, ftid, fid, ttid, tid_, type_id):
        """Add one directed edge type; True if new."""
        s = self.edges.setdefault((ftid, fid), {}).setdefault(ttid, {}).setdefault(tid_, set())
        if type_id in s:
            return False
        s.add(type_id)
        return True

    def _del_edge(self, ftid, fid, ttid, tid_, type_id):
        """Remove one directed edge type; True if it existed."""
        per = self.edges.get((ftid, fid))
        s = per.get(ttid, {}).get(tid_) if per else None
        if not s or type_id not in s:
            return False
        s.discard(type_id)
        if not s:
            del per[ttid][tid_]
        return True

    def link(self, fot, fid, tot, tid_, type_ids, src, now, emit=True):
        """Associate two records with type ids (plus inverses); returns added ids."""
        wanted = list(type_ids)
        dflt = self.default_type(fot, tot)
        if any(self.defs[t].label is not None for t in wanted) and dflt not in wanted:
            wanted.append(dflt)
        added = []
        for t in wanted:
            inv = self.defs[t].inverse
            if self._add_edge(fot.tid, fid, tot.tid, tid_, t):
                self._add_edge(tot.tid, tid_, fot.tid, fid, inv)
                added.append(t)
        if emit:
            for t in added:
                self._emit(fot, fid, tot, tid_, t, False, src, now)
        return added

    def unlink(self, fot, fid, tot, tid_, type_ids, src, now, emit=True):
        """Remove the given type ids (None = all) between two records."""
        have = self.targets(fot, fid, tot, live_only=False).get(tid_, set())
        removing = list(have) if type_ids is None else [t for t in type_ids if t in have]
        for t in removing:
            self._del_edge(fot.tid, fid, tot.tid, tid_, t)
            self._del_edge(tot.tid, tid_, fot.tid, fid, self.defs[t].inverse)
        if emit:
            for t in removing:
                self._emit(fot, fid, tot, tid_, t, True, src, now)
        return removing

    def _emit(self, fot, fid, tot, tid_, type_id, removed, src, now):
        """associationChange events for both directions of one type."""
        hooks = self.hub.hooks
        if not hooks.active:
            return
        inv = self.defs[type_id].inverse
        for a, aid, b, bid, t in ((fot, fid, tot, tid_, type_id), (tot, tid_, fot, fid, inv)):
            d = self.defs[t]
            extra = {"associationType": "%s_TO_%s" % (a.word, b.word),
                     "fromObjectId": aid, "toObjectId": bid,
                     "associationRemoved": removed,
                     "isPrimaryAssociation": t in PRIMARY}
            if a.hook is None:
                extra.update(fromObjectTypeId=a.tid, toObjectTypeId=b.tid,
                             associationTypeId=t, associationCategory=d.category)
            hooks.emit(a, "associationChange", None, src, now, **extra)

    def drop_object(self, ot, rid, src, now, emit=True):
        """Remove every edge of a record (GDPR delete)."""
        per = self.edges.pop((ot.tid, rid), None) or {}
        store = self.hub.store
        for ttid, targets in per.items():
            tot = store.by_key[ttid]
            for tid_, types in targets.items():
                for t in types:
                    self._del_edge(ttid, tid_, ot.tid, rid, self.defs[t].inverse)
                    if emit:
                        self._emit(ot, rid, tot, tid_, t, True, src, now)

    def move_object(self, ot, old, new):
        """Re-point every edge of old to new (merge)."""
        per = self.edges.pop((ot.tid, old), None) or {}
        for ttid, targets in per.items():
            for tid_, types in targets.items():
                for t in types:
                    inv = self.defs[t].inverse
                    self._del_edge(ttid, tid_, ot.tid, old, inv)
                    if tid_ != new:
                        self._add_edge(ot.tid, new, ttid, tid_, t)
                        self._add_edge(ttid, tid_, ot.tid, new, inv)

    def type_name(self, fot, tot, type_id):
        """v3-style association type string, e.g. contact_to_company_unlabeled."""
        base = "%s_to_%s" % (fot.word.lower(), tot.word.lower())
        d = self.defs[type_id]
        if d.label is None:
            has_primary = any(t in PRIMARY for t in self.pairs.get((fot.tid, tot.tid), ()))
            return base + "_unlabeled" if has_primary else base
        if type_id in PRIMARY:
            return base
        return "%s_%d" % (base, type_id)

    def embed(self, ot, rid, type_names):
        """The `associations` member of a v3 record for ?associations=..."""
        out = {}
        for name in type_names:
            tot = self.hub.store.by_key.get(name)
            if tot is None:
                continue
            results = []
            for tid_, types in sorted(self.targets(ot, rid, tot).items()):
                for t in sorted(types):
                    results.append({"id": str(tid_), "type": self.type_name(ot, tot, t)})
            if results:
                out[name] = {"results": results}
        return out

    def to_json_types(self, types):
        """[{category, typeId, label}] for a set of type ids."""
        return [self.defs[t].to_json() for t in sorted(types)]
