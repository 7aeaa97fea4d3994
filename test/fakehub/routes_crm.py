"""CRM v3 object endpoints: list/get/create/update/archive, merge, GDPR, batches, search."""

import base64
import binascii
import bisect

from . import rules, search
from .model import PropError, check_write, normalize, ukey
from .util import ApiError, error_body, fail, iso_ms, now_ms


# ----- helpers -------------------------------------------------------------
def _not_found(hub, message="Object not found.  objectId are usually numeric."):
    """404 with the standard body, or an empty body (config notFoundBody)."""
    if hub.cfg["notFoundBody"]:
        raise ApiError(404, error_body(message, "OBJECT_NOT_FOUND"))
    raise ApiError(404, None)


def _inputs(hub, req, body, limit=None):
    """body.inputs as a list, enforcing the batch input limit."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        fail(400, "Invalid input JSON: inputs must be an array")
    limit = limit or hub.cfg["batchMaxInputs"]
    req.inputs = len(inputs)
    if hub.cfg["logInputIds"]:
        req.input_ids = [str(i.get("id")) for i in inputs if isinstance(i, dict)]
        req.input_props = [i.get("properties") for i in inputs if isinstance(i, dict)]
    if len(inputs) > limit:
        fail(400, "Too many inputs: %d. The maximum number of inputs per batch request "
                  "is %d." % (len(inputs), limit), context={"limit": [str(limit)]})
    for item in inputs:
        if not isinstance(item, dict):
            fail(400, "Invalid input JSON: each input must be an object")
    return inputs


def _batch(results, errors, started):
    """Batch response envelope (BatchResponse...WithErrors when errors)."""
    out = {"status": "COMPLETE", "results": results}
    if errors:
        out["numErrors"] = len(errors)
        out["errors"] = errors
    out["startedAt"] = iso_ms(started)
    out["completedAt"] = iso_ms(now_ms())
    return out


def answer_status(req, ok, errors):
    """ok, or 207 when some inputs failed -- except under 2026-09, whose
    answers carry the errors inside the ok body (HubSpot's published
    OpenAPI documents, version 2026-09, list no 207 for batch endpoints)."""
    if errors and getattr(req, "api_version", "legacy") != "2026-09":
        return 207
    return ok


def _err(category, message, context, sub=None):
    """One entry of a 207 errors array."""
    e = {"status": "error", "category": category, "message": message,
         "context": context, "errors": [], "links": {}}
    if sub:
        e["subCategory"] = sub
    return e


def missing_error(ot, ids):
    """The OBJECT_NOT_FOUND entry for ids that do not exist (notes 4.5)."""
    return _err("OBJECT_NOT_FOUND",
                "Could not get some %s objects, they may be deleted or not exist. "
                "Check that ids are valid." % ot.word, {"ids": [str(i) for i in ids]})


def _input_error(body, context):
    """A 207 errors entry from an error body, tied to one input by context
    (StandardError: errors is required, an empty list when there are none)."""
    entry = {"errors": []}
    entry.update(body, context=context, links={})
    return entry


def _fault_fails(req, n):
    """Input indexes a partial207 fault makes fail."""
    f = req.fault
    if not f or f.get("kind") != "partial207":
        return set()
    if "failIndexes" in f:
        return {int(i) for i in f["failIndexes"] if 0 <= int(i) < n}
    every = int(f.get("failEvery", 2))
    return {i for i in range(n) if i % every == every - 1}


def _fault_error(req, context):
    """The 207 error entry a partial207 fault reports for one input."""
    f = req.fault
    return _err(f.get("category", "INTERNAL_ERROR"),
                f.get("message", "Internal error while processing this input; retry."),
                context, f.get("subCategory"))


def _src(hub):
    """Source index of API writes."""
    return hub.store.api_source()


def _assoc_inputs(hub, ot, items):
    """Validate inline create associations -> [(to type, to id, [type ids])]."""
    out = []
    if not isinstance(items, list):
        fail(400, "associations must be an array")
    store = hub.store
    for a in items:
        try:
            to_id = int(a["to"]["id"])
            types = a["types"]
        except (KeyError, TypeError, ValueError):
            fail(400, "Invalid association input: needs to.id and types")
        tids = []
        tot = None
        for t in types:
            d = hub.assoc.defs.get(t.get("associationTypeId"))
            if d is None or d.from_tid != ot.tid or \
                    t.get("associationCategory", d.category) != d.category:
                fail(400, "association type %s (%s) is not valid from %s" % (
                    t.get("associationTypeId"), t.get("associationCategory"), ot.name))
            tot = store.by_key[d.to_tid]
            tids.append(d.type_id)
        if tot is None:
            fail(400, "association to %s has no types" % to_id)
        rec = tot.recs.get(to_id)
        if rec is None or rec.a:
            fail(400, "Association target %s %d does not exist" % (tot.name, to_id))
        out.append((tot, to_id, tids))
    return out


# ----- single-record endpoints --------------------------------------------
def list_objects(hub, req, objectType):
    """GET /crm/v3/objects/{t}: id-ordered paging with an `after` cursor."""
    ot = hub.store.type_of(objectType)
    limit = req.qint("limit", 10)
    if limit < 1 or limit > hub.cfg["listMaxLimit"]:
        fail(400, "limit must be between 1 and %d" % hub.cfg["listMaxLimit"])
    mode = hub.cfg["listCursor"]
    raw = req.q1("after")
    archived = req.qbool("archived")
    props = req.qlist("properties") or None
    hist = req.qlist("propertiesWithHistory")
    assoc = req.qlist("associations")
    order, recs = ot.order, ot.recs
    picked = []
    skip = 0
    after = _list_cursor_start(hub, ot, mode, raw)
    if after is None:
        return 200, {"results": []}     # a cursor it never gave: nothing (not an error)
    if mode == "offset":
        skip, after = after, 0
    i = bisect.bisect_left(order, after)
    while i < len(order) and len(picked) <= limit:
        rec = recs.get(order[i])
        if rec is not None and bool(rec.a) == archived:
            if skip > 0:
                skip -= 1
            else:
                picked.append(rec)
        i += 1
    more = len(picked) > limit
    picked = picked[:limit]
    results = [hub.store.render(ot, r, props, hist, assoc) for r in picked]
    out = {"results": results}
    if more:
        nxt = _list_cursor_next(hub, ot, mode, picked[-1].id + 1,
                                (int(raw) if mode == "offset" and raw else 0) + limit)
        out["paging"] = {"next": {"after": nxt, "link": "%s%s?limit=%d&after=%s" % (
            req.base_url(), req.path, limit, nxt)}}
    return 200, out


def _list_cursor_next(hub, ot, mode, next_id, next_offset):
    """The paging.next.after of a list page, per config listCursor: "id" the
    next record id; "offset" the position of the next record; "opaque" a
    base64 token; "issued" the next id, but only as a token it handed out."""
    if mode == "offset":
        return str(next_offset)
    if mode == "opaque":
        return base64.urlsafe_b64encode(("%s:%d" % (ot.tid, next_id)).encode()).decode().rstrip("=")
    if mode == "issued":
        hub.issued_cursors.add((ot.tid, str(next_id)))
    return str(next_id)


def _list_cursor_start(hub, ot, mode, raw):
    """Where a list page starts for the `after` sent: an id (an offset in
    "offset" mode), 0 without one, None for a cursor the fake never gave in
    the "opaque" and "issued" modes (then the page is empty)."""
    if raw is None or raw == "":
        return 0
    if mode == "opaque":
        try:
            tid, nxt = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().split(":")
            return int(nxt) if tid == ot.tid else None
        except (ValueError, UnicodeDecodeError, binascii.Error):
            return None
    if mode == "issued" and (ot.tid, raw) not in hub.issued_cursors:
        return None
    try:
        return int(raw)
    except ValueError:
        fail(400, "after must be an integer")


def get_object(hub, req, objectType, objectId):
    """GET /crm/v3/objects/{t}/{id}."""
    ot = hub.store.type_of(objectType)
    rec = hub.store.find(ot, objectId, req.q1("idProperty"), req.qbool("archived"))
    if rec is None:
        _not_found(hub)
    return 200, hub.store.render(ot, rec, req.qlist("properties") or None,
                                 req.qlist("propertiesWithHistory"),
                                 req.qlist("associations"))


def create_object(hub, req, objectType):
    """POST /crm/v3/objects/{t} -> 201."""
    ot = hub.store.type_of(objectType)
    body = req.body_obj()
    store = hub.store
    props = store.validate(ot, body.get("properties"))
    refused = rules.check(hub, ot, None, props)
    if refused:
        raise ApiError(400, refused)
    links = _assoc_inputs(hub, ot, body.get("associations") or [])
    now = now_ms()
    src = _src(hub)
    clash = store.unique_clash(ot, props)
    if clash:
        raise clash
    rec = store.create(ot, props, src, now)
    for tot, to_id, tids in links:
        hub.assoc.link(ot, rec.id, tot, to_id, tids, src, now)
    return 201, store.render_written(ot, rec, rec.p)


def update_object(hub, req, objectType, objectId):
    """PATCH /crm/v3/objects/{t}/{id} -> 200 with the written properties."""
    ot = hub.store.type_of(objectType)
    body = req.body_obj()
    store = hub.store
    rec = store.find(ot, objectId, req.q1("idProperty"))
    if rec is None:
        _not_found(hub)
    props = store.validate(ot, body.get("properties"))
    refused = rules.check(hub, ot, rec.p, props)
    if refused:
        raise ApiError(400, refused)
    clash = store.unique_clash(ot, props, rec.id)
    if clash:
        raise clash
    store.update(ot, rec, props, _src(hub), now_ms())
    return 200, store.render_written(ot, rec, props)


def archive_object(hub, req, objectType, objectId):
    """DELETE /crm/v3/objects/{t}/{id} -> 204 (archive)."""
    ot = hub.store.type_of(objectType)
    rec = hub.store.find(ot, objectId)
    if rec is None:
        if hub.cfg["deleteArchivedStatus"] == 204:
            return 204, None
        _not_found(hub)
    hub.store.archive(ot, rec, _src(hub), now_ms())
    return 204, None


def merge_objects(hub, req, objectType):
    """POST /crm/v3/objects/{t}/merge -> 200 with the surviving record."""
    ot = hub.store.type_of(objectType)
    body = req.body_obj()
    store = hub.store
    primary = store.find(ot, str(body.get("primaryObjectId")))
    other = store.find(ot, str(body.get("objectIdToMerge")))
    if primary is None or other is None:
        _not_found(hub, "Merge failed: one of the objects does not exist")
    survivor = store.merge(ot, primary, other, _src(hub), now_ms())
    return 200, store.render(ot, survivor, list(survivor.p))


def gdpr_delete(hub, req):
    """POST /crm/v3/objects/contacts/gdpr-delete -> 204 (permanent)."""
    ot = hub.store.type_of("contacts")
    body = req.body_obj()
    key = str(body.get("objectId"))
    idp = body.get("idProperty")
    rec = hub.store.find(ot, key, idp) or hub.store.find(ot, key, idp, archived=True)
    if rec is None:
        _not_found(hub)
    hub.store.purge(ot, rec, _src(hub), now_ms(), privacy=True)
    return 204, None


def search_objects(hub, req, objectType):
    """POST /crm/v3/objects/{t}/search."""
    ot = hub.store.type_of(objectType)
    return 200, search.run(hub, ot, req.json(), now_ms())


# ----- batch endpoints -----------------------------------------------------
def batch_read(hub, req, objectType):
    """POST .../batch/read -> 200, or 207 listing missing ids."""
    ot = hub.store.type_of(objectType)
    body = req.body_obj()
    hist = body.get("propertiesWithHistory") or []
    limit = hub.cfg["batchMaxInputsWithHistory"] if hist else None
    inputs = _inputs(hub, req, body, limit)
    started = now_ms()
    props = body.get("properties") or None
    idp = body.get("idProperty")
    archived = req.qbool("archived")
    store = hub.store
    fails = _fault_fails(req, len(inputs))
    results, missing, errors, seen = [], [], [], set()
    for i, item in enumerate(inputs):
        key = str(item.get("id"))
        if i in fails:
            errors.append(_fault_error(req, {"ids": [key]}))
            continue
        rec = store.find(ot, key, idp, archived)
        if rec is None:
            missing.append(key)
        elif rec.id not in seen:
            seen.add(rec.id)
            results.append(store.render(ot, rec, props, hist))
    if missing:
        errors.insert(0, missing_error(ot, missing))
    return answer_status(req, 200, errors), _batch(results, errors, started)


def _trace_mode(inputs):
    """True when every input carries a distinct objectWriteTraceId."""
    ids = [i.get("objectWriteTraceId") for i in inputs]
    return bool(ids) and all(ids) and len(set(ids)) == len(ids)


def _prop_errors(hub, ot, props):
    """(normalized, [PropError]) without raising."""
    return check_write(ot, props if props is not None else {}, hub.cfg)


def batch_create(hub, req, objectType):
    """POST .../batch/create -> 201 (whole batch fails unless trace ids given)."""
    ot = hub.store.type_of(objectType)
    body = req.body_obj()
    inputs = _inputs(hub, req, body)
    started = now_ms()
    store = hub.store
    partial = _trace_mode(inputs)
    fails = _fault_fails(req, len(inputs))
    plans, errors, pending = [], [], {}
    for i, item in enumerate(inputs):
        trace = item.get("objectWriteTraceId")
        ctx = {"objectWriteTraceId": [trace]} if trace else {"inputIndex": [str(i)]}
        if i in fails:
            errors.append(_fault_error(req, ctx))
            continue
        props, perrs = _prop_errors(hub, ot, item.get("properties"))
        if perrs:
            if not partial:
                raise ApiError(400, store.validation_body(perrs))
            errors.append(_input_error(store.validation_body(perrs), ctx))
            continue
        refused = rules.check(hub, ot, None, props)
        if refused:
            if not partial:
                raise ApiError(400, refused)
            errors.append(_input_error(refused, ctx))
            continue
        try:
            links = _assoc_inputs(hub, ot, item.get("associations") or [])
        except ApiError as e:
            if not partial:
                raise
            errors.append(_input_error(e.body, ctx))
            continue
        clash = store.unique_clash(ot, props, None, pending)
        if clash:
            if not partial:
                raise clash
            errors.append(_input_error(clash.body, ctx))
            continue
        for name in ot.uniq:
            if props.get(name):
                pending[(name, ukey(name, props[name]))] = 0
        plans.append((props, links, trace))
    now = now_ms()
    src = _src(hub)
    results = []
    for props, links, trace in plans:
        rec = store.create(ot, props, src, now)
        for tot, to_id, tids in links:
            hub.assoc.link(ot, rec.id, tot, to_id, tids, src, now)
        out = store.render_written(ot, rec, rec.p)
        if trace:
            out["objectWriteTraceId"] = trace
        results.append(out)
    return answer_status(req, 201, errors), _batch(results, errors, started)


def _dup_check(keys):
    """400 when the same id appears twice in one batch."""
    seen, dups = set(), []
    for k in keys:
        if k in seen:
            dups.append(k)
        seen.add(k)
    if dups:
        fail(400, "Duplicate IDs found in batch input: %s. IDs must be unique" % dups)


def batch_update(hub, req, objectType):
    """POST .../batch/update -> 200, or 207 with OBJECT_NOT_FOUND for missing ids."""
    ot = hub.store.type_of(objectType)
    body = req.body_obj()
    inputs = _inputs(hub, req, body)
    started = now_ms()
    store = hub.store
    _dup_check([(i.get("idProperty"), str(i.get("id"))) for i in inputs])
    partial = _trace_mode(inputs)
    fails = _fault_fails(req, len(inputs))
    plans, errors, missing, pending = [], [], [], {}
    for i, item in enumerate(inputs):
        key = str(item.get("id"))
        ctx = {"ids": [key]}
        if i in fails:
            errors.append(_fault_error(req, ctx))
            continue
        props, perrs = _prop_errors(hub, ot, item.get("properties"))
        if perrs:
            if not partial:
                raise ApiError(400, store.validation_body(perrs))
            errors.append(_input_error(store.validation_body(perrs), ctx))
            continue
        rec = store.find(ot, key, item.get("idProperty") or body.get("idProperty"))
        if rec is None:
            missing.append(key)
            continue
        refused = rules.check(hub, ot, rec.p, props)
        if refused:
            if not partial:
                raise ApiError(400, refused)
            errors.append(_input_error(refused, ctx))
            continue
        clash = store.unique_clash(ot, props, rec.id, pending)
        if clash:
            if not partial:
                raise clash
            errors.append(_input_error(clash.body, ctx))
            continue
        for name in ot.uniq:
            if props.get(name):
                pending[(name, ukey(name, props[name]))] = rec.id
        plans.append((rec, props, item.get("objectWriteTraceId")))
    now = now_ms()
    src = _src(hub)
    results = []
    for rec, props, trace in plans:
        store.update(ot, rec, props, src, now)
        out = store.render_written(ot, rec, props)
        if trace:
            out["objectWriteTraceId"] = trace
        results.append(out)
    if missing:
        errors.insert(0, missing_error(ot, missing))
    return answer_status(req, 200, errors), _batch(results, errors, started)


def _upsert_id_property(hub, ot, idp):
    """400 unless idp is a unique property usable for upsert (notes 4.4)."""
    if not idp or idp not in ot.uniq:
        fail(400, "Unable to perform update/upsert by non-unique %s property %s in portal "
                  "ID %s" % (ot.tid, idp or "hs_object_id", hub.cfg["portalId"]))


def batch_upsert(hub, req, objectType):
    """POST .../batch/upsert -> 200 (207 with per-input errors, not for email)."""
    ot = hub.store.type_of(objectType)
    body = req.body_obj()
    inputs = _inputs(hub, req, body)
    started = now_ms()
    store = hub.store
    cfg = hub.cfg
    default_idp = body.get("idProperty")
    keys, seen, dups, checked = [], set(), [], {}
    for item in inputs:
        idp = item.get("idProperty") or default_idp
        if idp not in checked:
            _upsert_id_property(hub, ot, idp)
            checked[idp] = tuple(n for n in ot.uniq if n != idp)
        key = item.get("id")
        key = key if key.__class__ is str else str(key)
        k = (idp, ukey(idp, key))
        if k in seen:
            dups.append(k)
        seen.add(k)
        keys.append((idp, key, k[1]))
    if dups:
        fail(400, "Duplicate IDs found in batch input: %s. IDs must be unique" % dups)
    partial = "email" not in checked or cfg["batchUpsertEmailPartial"]
    fails = _fault_fails(req, len(inputs))
    plans, errors, pending = [], [], {}
    recs, known = ot.recs, ot.props
    for i, item in enumerate(inputs):
        idp, key, ikey = keys[i]
        if fails and i in fails:
            errors.append(_fault_error(req, {"ids": [key]}))
            continue
        props, perrs = check_write(ot, item.get("properties") or {}, cfg)
        rid = ot.uniq[idp].get(ikey)
        rec = recs.get(rid) if rid is not None else None
        if rec is not None and rec.p.get(idp) == key:
            props[idp] = key
        else:
            try:
                props[idp] = normalize(known[idp], key, cfg)
            except PropError as e:
                perrs.append(e)
        if perrs:
            if not partial:
                raise ApiError(400, store.validation_body(perrs))
            errors.append(_input_error(store.validation_body(perrs), {"ids": [key]}))
            continue
        refused = rules.check(hub, ot, rec.p if rec is not None else None, props)
        if refused:
            if not partial:
                raise ApiError(400, refused)
            errors.append(_input_error(refused, {"ids": [key]}))
            continue
        other = checked[idp]
        if other:
            clash = store.unique_clash(ot, {n: props[n] for n in other if n in props},
                                       rid, pending)
            if clash:
                if not partial:
                    raise clash
                errors.append(_input_error(clash.body, {"ids": [key]}))
                continue
            for name in other:
                v = props.get(name)
                if v:
                    pending[(name, ukey(name, v))] = rid or 0
        # echoIdProperty off: the idProperty's value is not in the answer,
        # even when the input also wrote it (whether HubSpot echoes it is
        # unconfirmed; a client must match on objectWriteTraceId)
        plans.append((rec, props, item.get("objectWriteTraceId"),
                      None if cfg["echoIdProperty"] else idp))
    now = now_ms()
    src = _src(hub)
    results = []
    render = store.render_written
    create, update = store.create, store.update
    for rec, props, trace, hide in plans:
        if rec is None:
            rec = create(ot, props, src, now)
            out = render(ot, rec, props)
            out["new"] = True
        else:
            update(ot, rec, props, src, now)
            out = render(ot, rec, props)
            out["new"] = False
        if hide:
            out["properties"].pop(hide, None)   # echoIdProperty off
        if trace:
            out["objectWriteTraceId"] = trace
        results.append(out)
    return answer_status(req, 200, errors), _batch(results, errors, started)


def batch_archive(hub, req, objectType):
    """POST .../batch/archive -> 204 (missing ids are ignored)."""
    ot = hub.store.type_of(objectType)
    inputs = _inputs(hub, req, req.body_obj())
    now = now_ms()
    src = _src(hub)
    for item in inputs:
        rec = hub.store.find(ot, str(item.get("id")))
        if rec is not None:
            hub.store.archive(ot, rec, src, now)
    return 204, None


def register(routes):
    """Add the object routes to a Routes table."""
    base = "/crm/v3/objects/{objectType}"
    routes.add("POST", "/crm/v3/objects/contacts/gdpr-delete", gdpr_delete)
    routes.add("GET", base, list_objects)
    routes.add("POST", base, create_object)
    routes.add("POST", base + "/search", search_objects)
    routes.add("POST", base + "/merge", merge_objects)
    routes.add("POST", base + "/batch/read", batch_read)
    routes.add("POST", base + "/batch/create", batch_create)
    routes.add("POST", base + "/batch/update", batch_update)
    routes.add("POST", base + "/batch/upsert", batch_upsert)
    routes.add("POST", base + "/batch/archive", batch_archive)
    routes.add("GET", base + "/{objectId}", get_object)
    routes.add("PATCH", base + "/{objectId}", update_object)
    routes.add("DELETE", base + "/{objectId}", archive_object)
