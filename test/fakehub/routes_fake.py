"""The /_fake/ control API: reset, config, seeding, inspection, faults, UI actions."""

import gc

from . import config
from .model import ukey
from .routes_crm import _assoc_inputs
from .util import fail, not_found, now_ms, parse_time_value


def _src_from(hub, body, default="CRM_UI"):
    """Source index for a UI/import/workflow action (changeSource, userId/sourceId)."""
    kind = body.get("changeSource") or default
    sid = body.get("sourceId")
    if sid is None:
        sid = "userId:%d" % int(body.get("userId", hub.cfg["uiUserId"]))
    return hub.store.source(kind, str(sid))


def _rec(hub, ot, key, archived=None):
    """Record by id for control calls (404 if absent or in the wrong state)."""
    try:
        rec = ot.resolve(int(key))
    except ValueError:
        rec = None
    if rec is None or (archived is not None and bool(rec.a) != archived):
        not_found("No %s record %s%s" % (ot.name, key, "" if archived is None else (
            " (archived)" if archived else " (live)")))
    return rec


def _body(req):
    """JSON object body, {} when empty."""
    return req.body_obj() if req.raw else {}


# ----- state ---------------------------------------------------------------
def reset(hub, req):
    """POST /_fake/reset {keepConfig}."""
    hub.reset(bool(_body(req).get("keepConfig")))
    return 200, {"ok": True}


def get_config(hub, req):
    """GET /_fake/config."""
    return 200, dict(hub.cfg)


def post_config(hub, req):
    """POST /_fake/config: merge keys (400 on unknown keys or wrong types)."""
    changes = req.body_obj()
    merged = config.merge(dict(hub.cfg), changes)
    hub.cfg.update(merged)   # in place, never empty: other threads read it unlocked
    if "randomSeed" in changes:
        hub.rng.seed(changes["randomSeed"])
    hub.hooks.refresh()
    return 200, dict(hub.cfg)


def seed(hub, req):
    """POST /_fake/seed: create N records quietly (no webhooks, no rate limits)."""
    body = req.body_obj()
    ot = hub.store.type_of(str(body.get("objectType", "")))
    count = body.get("count", 1)
    if not isinstance(count, int) or count < 1 or count > 5000000:
        fail(400, "count must be an integer between 1 and 5000000")
    template = body.get("properties") or {}
    store = hub.store
    stamp = body.get("sameTimestamp")
    ts = now_ms()
    if stamp is not None:
        ts = stamp if isinstance(stamp, int) else parse_time_value(str(stamp))
        if ts is None:
            fail(400, "sameTimestamp must be epoch ms or ISO-8601")
    spread = body.get("modifiedSpreadMs") or 0
    if not isinstance(spread, int) or spread < 0:
        fail(400, "modifiedSpreadMs must be a non-negative integer")
    placeholders = any("{n}" in str(v) for v in template.values())
    fixed = None if placeholders else store.validate(ot, template)
    first = store.next_id
    planned = []
    seen = {}
    for n in range(1, count + 1):
        if placeholders:
            props = store.validate(ot, {k: str(v).replace("{n}", str(n))
                                        for k, v in template.items()})
        else:
            props = dict(fixed)
        clash = store.unique_clash(ot, props, None, seen)
        if clash:
            raise clash
        for name in ot.uniq:
            if props.get(name):
                seen[(name, ukey(name, props[name]))] = 0
        planned.append(props)
    src = _src_from(hub, body, "IMPORT")
    lag_visible = body.get("searchVisible", True)
    archived = bool(body.get("archived"))
    for n, props in enumerate(planned, 1):
        at = ts - spread + (n * spread) // count if spread else ts
        rec = store.create(ot, props, src, at, emit=bool(body.get("webhooks")))
        if lag_visible:
            rec.chg = 0
        if archived:
            store.archive(ot, rec, src, at, emit=False)
            if lag_visible:
                rec.chg = 0
    if count >= 50000:
        gc.freeze()   # a big static store: keep the cyclic GC from rescanning it
    last = store.next_id - 1
    out = {"objectType": ot.name, "count": count, "firstId": str(first), "lastId": str(last)}
    if count <= 10000 or body.get("returnIds"):
        out["ids"] = [str(i) for i in range(first, last + 1)]
    return 200, out


def list_records(hub, req, objectType):
    """GET /_fake/records/{t}?archived=true|false&offset=&limit=: full records."""
    ot = hub.store.type_of(objectType)
    which = req.q1("archived")
    offset = req.qint("offset", 0)
    limit = req.qint("limit", 0)
    recs = [r for r in ot.recs.values()
            if which is None or bool(r.a) == (which.lower() == "true")]
    page = recs[offset:offset + limit] if limit else recs[offset:]
    return 200, {"total": len(recs),
                 "results": [hub.store.render(ot, r, full=True) for r in page]}


def get_record(hub, req, objectType, objectId):
    """GET /_fake/records/{t}/{id}: record, full history and associations."""
    ot = hub.store.type_of(objectType)
    rec = _rec(hub, ot, objectId)
    names = set(rec.p) | set(rec.h or ()) | set(ot.always)
    out = hub.store.render(ot, rec, full=True, history=sorted(names))
    if rec.id != int(objectId):
        out["mergedInto"] = str(rec.id)
    assoc = {}
    for tot in hub.store.types.values():
        got = hub.assoc.targets(ot, rec.id, tot, live_only=False)
        if got:
            assoc[tot.name] = [{"id": str(i), "types": hub.assoc.to_json_types(t)}
                               for i, t in sorted(got.items()) if t]
    out["associations"] = assoc
    return 200, out


def stats(hub, req):
    """GET /_fake/stats: record counts per object type."""
    out = {}
    for ot in hub.store.types.values():
        if ot.recs:
            archived = sum(1 for r in ot.recs.values() if r.a)
            out[ot.name] = {"live": len(ot.recs) - archived, "archived": archived}
    return 200, out


def requests_log(hub, req):
    """GET /_fake/requests?since=SEQ."""
    entries = hub.log.since(req.qint("since", 0))
    return 200, {"requests": entries, "lastSeq": hub.log.seq}


def _duplicates(hub):
    """Live records sharing an email (contacts) or a hubsync_id value, per type."""
    out = {"email": 0, "hubsync_id": 0, "hubsync_idByType": {}}
    for ot in hub.store.types.values():
        for name in ("email", "hubsync_id"):
            if name not in ot.props or (name == "email" and not ot.contacts):
                continue
            seen, dup = set(), 0
            for r in ot.recs.values():
                v = r.p.get(name)
                if v and not r.a:
                    k = ukey(name, v)
                    if k in seen:
                        dup += 1
                    seen.add(k)
            out[name] += dup
            if name == "hubsync_id":
                out["hubsync_idByType"][ot.name] = dup
    return out


def counters(hub, req):
    """GET /_fake/counters."""
    out = hub.log.snapshot()
    out["rateLimit"] = hub.limits.snapshot()
    out["duplicates"] = _duplicates(hub)
    with hub.hooks.cond:
        out["webhooks"] = dict(hub.hooks.counters)
    out["oauthGrants"] = hub.auth.grants
    return 200, out


def get_faults(hub, req):
    """GET /_fake/faults."""
    return 200, hub.faults.describe()


def post_faults(hub, req):
    """POST /_fake/faults {queue, probability, match, clear}."""
    return 200, hub.faults.configure(req.body_obj())


def delete_faults(hub, req):
    """DELETE /_fake/faults: clear everything."""
    hub.faults.reset()
    return 200, hub.faults.describe()


def _delay_search(hub, rec, body, now):
    """searchDelayMs: the change reaches the search index that late (overrides the lag)."""
    delay = body.get("searchDelayMs")
    if delay is None:
        return
    if not isinstance(delay, int) or delay < 0:
        fail(400, "searchDelayMs must be a non-negative integer")
    rec.chg = now + delay - max(hub.cfg["searchIndexLagMs"], 0)


def touch(hub, req):
    """POST /_fake/touch: quietly change many records at once (no webhooks, no
    rate limits), as an import or a workflow would.

    {objectType, ids: [...] | firstId+lastId, properties: {name: "v{n}"},
     sameTimestamp, modifiedSpreadMs, searchDelayMs, searchVisible, webhooks}"""
    body = req.body_obj()
    store = hub.store
    ot = store.type_of(str(body.get("objectType", "")))
    ids = body.get("ids")
    if ids is None:
        try:
            first, last = int(body["firstId"]), int(body["lastId"])
        except (KeyError, TypeError, ValueError):
            fail(400, "give ids or firstId and lastId")
        ids = [i for i in range(first, last + 1) if i in ot.recs]
    recs = []
    for i in ids:
        rec = ot.recs.get(int(i))
        if rec is None or rec.a:
            fail(404, "no live %s record %s" % (ot.name, i))
        recs.append(rec)
    template = body.get("properties") or {}
    stamp = body.get("sameTimestamp")
    ts = now_ms()
    if stamp is not None:
        ts = stamp if isinstance(stamp, int) else parse_time_value(str(stamp))
        if ts is None:
            fail(400, "sameTimestamp must be epoch ms or ISO-8601")
    spread = body.get("modifiedSpreadMs") or 0
    if not isinstance(spread, int) or spread < 0:
        fail(400, "modifiedSpreadMs must be a non-negative integer")
    src = _src_from(hub, body, "IMPORT")
    count = len(recs)
    changed = 0
    for n, rec in enumerate(recs, 1):
        props = store.validate(ot, {k: str(v).replace("{n}", str(n)) for k, v in template.items()})
        clash = store.unique_clash(ot, props, rec.id)
        if clash:
            raise clash
        at = ts - spread + (n * spread) // count if spread else ts
        if store.update(ot, rec, props, src, at, emit=bool(body.get("webhooks"))):
            changed += 1
        rec.u = at
        if body.get("searchVisible"):
            rec.chg = 0
        else:
            _delay_search(hub, rec, body, at)
    return 200, {"objectType": ot.name, "count": count, "changed": changed}


# ----- UI / import / workflow actions ----------------------------------------
def ui_create(hub, req, objectType):
    """POST /_fake/ui/{t} {properties, associations?, changeSource?, userId?}."""
    ot = hub.store.type_of(objectType)
    body = req.body_obj()
    props = hub.store.validate(ot, body.get("properties"))
    links = _assoc_inputs(hub, ot, body.get("associations") or [])
    clash = hub.store.unique_clash(ot, props)
    if clash:
        raise clash
    src, now = _src_from(hub, body), now_ms()
    rec = hub.store.create(ot, props, src, now)
    for tot, to_id, tids in links:
        hub.assoc.link(ot, rec.id, tot, to_id, tids, src, now)
    _delay_search(hub, rec, body, now)
    return 201, hub.store.render(ot, rec, full=True)


def ui_update(hub, req, objectType, objectId):
    """POST /_fake/ui/{t}/{id} {properties, changeSource?, userId?, sourceId?}."""
    ot = hub.store.type_of(objectType)
    body = req.body_obj()
    rec = _rec(hub, ot, objectId, archived=False)
    props = hub.store.validate(ot, body.get("properties"))
    clash = hub.store.unique_clash(ot, props, rec.id)
    if clash:
        raise clash
    now = now_ms()
    changed = hub.store.update(ot, rec, props, _src_from(hub, body), now)
    if changed:
        _delay_search(hub, rec, body, now)
    out = hub.store.render(ot, rec, full=True)
    out["changed"] = [name for name, _ in changed]
    return 200, out


def ui_delete(hub, req, objectType, objectId):
    """POST /_fake/ui/{t}/{id}/delete: archive as a rep would."""
    ot = hub.store.type_of(objectType)
    rec = _rec(hub, ot, objectId, archived=False)
    hub.store.archive(ot, rec, _src_from(hub, _body(req)), now_ms())
    return 200, hub.store.render(ot, rec, full=True)


def ui_restore(hub, req, objectType, objectId):
    """POST /_fake/ui/{t}/{id}/restore: bring back from the recycle bin."""
    ot = hub.store.type_of(objectType)
    rec = _rec(hub, ot, objectId, archived=True)
    hub.store.restore(ot, rec, _src_from(hub, _body(req)), now_ms())
    return 200, hub.store.render(ot, rec, full=True)


def ui_gdpr(hub, req, objectType, objectId):
    """POST /_fake/ui/contacts/{id}/gdpr-delete: permanent privacy deletion."""
    ot = hub.store.type_of(objectType)
    rec = _rec(hub, ot, objectId)
    hub.store.purge(ot, rec, _src_from(hub, _body(req)), now_ms(), privacy=ot.contacts)
    return 200, {"deleted": str(rec.id)}


def ui_merge(hub, req, objectType):
    """POST /_fake/ui/{t}/merge {primaryObjectId, objectIdToMerge, changeSource?}."""
    ot = hub.store.type_of(objectType)
    body = req.body_obj()
    primary = _rec(hub, ot, str(body.get("primaryObjectId")), archived=False)
    other = _rec(hub, ot, str(body.get("objectIdToMerge")), archived=False)
    survivor = hub.store.merge(ot, primary, other, _src_from(hub, body), now_ms())
    return 200, hub.store.render(ot, survivor, full=True)


def ui_associate(hub, req):
    """POST /_fake/ui/associations {fromObjectType, fromObjectId, toObjectType,
    toObjectId, associationTypeIds?, remove?, changeSource?}; toObjectIds
    (a list) instead of toObjectId links or unlinks many, unlabelled."""
    body = req.body_obj()
    store = hub.store
    fot = store.type_of(str(body.get("fromObjectType")))
    tot = store.type_of(str(body.get("toObjectType")))
    fid = _rec(hub, fot, str(body.get("fromObjectId")), archived=False).id
    many = body.get("toObjectIds")
    if isinstance(many, list):
        # bulk: link (or unlink) one record to many at once (big fixtures)
        src, now, n = _src_from(hub, body), now_ms(), 0
        dflt = [hub.assoc.default_type(fot, tot)]
        for key in many:
            tid_ = _rec(hub, tot, str(key), archived=False).id
            if body.get("remove"):
                n += len(hub.assoc.unlink(fot, fid, tot, tid_, None, src, now))
            else:
                n += len(hub.assoc.link(fot, fid, tot, tid_, dflt, src, now))
        return 200, {"count": n}
    tid_ = _rec(hub, tot, str(body.get("toObjectId")), archived=False).id
    types = body.get("associationTypeIds")
    for t in types or []:
        if hub.assoc.check_type(fot, tot, None, t) is None:
            fail(400, "association type %s is not valid between %s and %s" % (
                t, fot.name, tot.name))
    src, now = _src_from(hub, body), now_ms()
    if body.get("remove"):
        changed = hub.assoc.unlink(fot, fid, tot, tid_, types, src, now)
    else:
        changed = hub.assoc.link(fot, fid, tot, tid_,
                                 types or [hub.assoc.default_type(fot, tot)], src, now)
    return 200, {"changed": changed,
                 "types": hub.assoc.to_json_types(hub.assoc.targets(fot, fid, tot).get(tid_, ()))}


# ----- webhooks and OAuth -----------------------------------------------------
def wh_flush(hub, req):
    """POST /_fake/webhooks/flush {timeoutMs}: wait for pending deliveries."""
    timeout = int(_body(req).get("timeoutMs", 30000))
    done = hub.hooks.flush(timeout)
    return 200, {"done": done, "pending": hub.hooks.pending()}


def wh_pending(hub, req):
    """GET /_fake/webhooks/pending."""
    return 200, hub.hooks.pending()


def wh_events(hub, req):
    """GET /_fake/webhooks/events?since=EVENTID: generated events (captured)."""
    return 200, {"events": hub.hooks.events_since(req.qint("since", 0))}


def wh_deliveries(hub, req):
    """GET /_fake/webhooks/deliveries?since=SEQ: delivery attempts."""
    return 200, {"deliveries": hub.hooks.deliveries_since(req.qint("since", 0))}


def oauth_expire(hub, req):
    """POST /_fake/oauth/expire {token?}: expire issued access tokens now."""
    return 200, {"expired": hub.auth.expire(_body(req).get("token"))}


def oauth_revoke(hub, req):
    """POST /_fake/oauth/revoke: every refresh token issued so far goes bad."""
    return 200, {"revoked": hub.auth.revoke_refresh()}


def health(hub, req):
    """GET /_fake/health."""
    return 200, {"ok": True}


# Handlers that wait or only read hub-internal locked structures run outside
# the store lock; everything else runs under it.
UNLOCKED = {wh_flush, wh_pending, wh_events, wh_deliveries, requests_log, health,
            get_faults, post_faults, delete_faults, oauth_expire,
            oauth_revoke}


def register(routes):
    """Add the control routes."""
    add = routes.add
    add("GET", "/_fake/health", health)
    add("POST", "/_fake/reset", reset)
    add("GET", "/_fake/config", get_config)
    add("POST", "/_fake/config", post_config)
    add("POST", "/_fake/seed", seed)
    add("POST", "/_fake/touch", touch)
    add("GET", "/_fake/stats", stats)
    add("GET", "/_fake/records/{objectType}", list_records)
    add("GET", "/_fake/records/{objectType}/{objectId}", get_record)
    add("GET", "/_fake/requests", requests_log)
    add("GET", "/_fake/counters", counters)
    add("GET", "/_fake/faults", get_faults)
    add("POST", "/_fake/faults", post_faults)
    add("DELETE", "/_fake/faults", delete_faults)
    add("POST", "/_fake/ui/associations", ui_associate)
    add("POST", "/_fake/ui/{objectType}/merge", ui_merge)
    add("POST", "/_fake/ui/{objectType}", ui_create)
    add("POST", "/_fake/ui/{objectType}/{objectId}", ui_update)
    add("POST", "/_fake/ui/{objectType}/{objectId}/delete", ui_delete)
    add("POST", "/_fake/ui/{objectType}/{objectId}/restore", ui_restore)
    add("POST", "/_fake/ui/{objectType}/{objectId}/gdpr-delete", ui_gdpr)
    add("POST", "/_fake/webhooks/flush", wh_flush)
    add("GET", "/_fake/webhooks/pending", wh_pending)
    add("GET", "/_fake/webhooks/events", wh_events)
    add("GET", "/_fake/webhooks/deliveries", wh_deliveries)
    add("POST", "/_fake/oauth/expire", oauth_expire)
    add("POST", "/_fake/oauth/revoke", oauth_revoke)
