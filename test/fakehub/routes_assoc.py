"""Associations v4 endpoints (notes 9.1) and association labels."""

import base64
import binascii
from urllib.parse import unquote

from .routes_crm import _batch, _err, _fault_error, _fault_fails, _inputs, _src, answer_status
from .util import ApiError, error_body, fail, now_ms


def _oid(hub, req, i):
    """toObjectId/fromObjectId: a string under a dated version (HubSpot's
    published OpenAPI documents for associations, 2026-03 and 2026-09), a
    JSON number under legacy v4 (its 2024 document; string with config
    toObjectIdAsString)."""
    if req.api_version not in (None, "legacy") or hub.cfg["toObjectIdAsString"]:
        return str(i)
    return int(i)


def _live(ot, key):
    """Live record id for a path/body id, or None."""
    try:
        rec = ot.resolve(int(key))
    except (TypeError, ValueError):
        return None
    return rec.id if rec is not None and not rec.a else None


def _need(hub, ot, key):
    """Live record id or 404."""
    rid = _live(ot, key)
    if rid is None:
        raise ApiError(404, error_body("No %s with id %s exists" % (ot.name, key),
                                       "OBJECT_NOT_FOUND"))
    return rid


def _types(hub, fot, tot, specs):
    """Validate [{associationCategory, associationTypeId}] -> [type ids] or 400."""
    if not isinstance(specs, list) or not specs:
        fail(400, "association types must be a non-empty array")
    out = []
    for s in specs:
        if not isinstance(s, dict):
            fail(400, "association type entries must be objects")
        d = hub.assoc.check_type(fot, tot, s.get("associationCategory"),
                                 s.get("associationTypeId"))
        if d is None:
            fail(400, "association type %s/%s is not valid between %s and %s" % (
                s.get("associationCategory"), s.get("associationTypeId"), fot.name, tot.name))
        out.append(d.type_id)
    return out


def _pair_json(hub, req, fot, fid, tot, tid_):
    """LabelsBetweenObjectPair for two records."""
    types = hub.assoc.targets(fot, fid, tot).get(tid_, set())
    return {"fromObjectTypeId": fot.tid, "fromObjectId": _oid(hub, req, fid),
            "toObjectTypeId": tot.tid, "toObjectId": _oid(hub, req, tid_),
            "labels": [hub.assoc.defs[t].label for t in sorted(types)
                       if hub.assoc.defs[t].label is not None]}


def _default_specs(hub, fot, fid, tot, tid_):
    """BatchResponsePublicDefaultAssociation results for one default link."""
    t = hub.assoc.default_type(fot, tot)
    inv = hub.assoc.defs[t].inverse
    return [{"from": {"id": str(fid)}, "to": {"id": str(tid_)},
             "associationSpec": {"associationCategory": "HUBSPOT_DEFINED",
                                 "associationTypeId": t}},
            {"from": {"id": str(tid_)}, "to": {"id": str(fid)},
             "associationSpec": {"associationCategory": "HUBSPOT_DEFINED",
                                 "associationTypeId": inv}}]


def _targets_json(hub, req, fot, fid, tot):
    """[{toObjectId, associationTypes}] for one record, sorted by id."""
    return [{"toObjectId": _oid(hub, req, i), "associationTypes": hub.assoc.to_json_types(types)}
            for i, types in sorted(hub.assoc.targets(fot, fid, tot).items()) if types]


# ----- single-record endpoints ---------------------------------------------
def put_default(hub, req, fromObjectType, fromObjectId, toObjectType, toObjectId):
    """PUT .../associations/default/{to}/{toId} -> 200."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    fid, tid_ = _need(hub, fot, fromObjectId), _need(hub, tot, toObjectId)
    started = now_ms()
    hub.assoc.link(fot, fid, tot, tid_, [hub.assoc.default_type(fot, tot)], _src(hub), started)
    return 200, _batch(_default_specs(hub, fot, fid, tot, tid_), [], started)


def put_labeled(hub, req, fromObjectType, fromObjectId, toObjectType, toObjectId):
    """PUT .../associations/{to}/{toId} with a types array -> 201."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    fid, tid_ = _need(hub, fot, fromObjectId), _need(hub, tot, toObjectId)
    types = _types(hub, fot, tot, req.json())
    hub.assoc.link(fot, fid, tot, tid_, types, _src(hub), now_ms())
    return 201, _pair_json(hub, req, fot, fid, tot, tid_)


def delete_pair(hub, req, fromObjectType, fromObjectId, toObjectType, toObjectId):
    """DELETE .../associations/{to}/{toId} -> 204 (every type between the pair)."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    try:
        fid, tid_ = int(fromObjectId), int(toObjectId)
    except ValueError:
        fail(400, "object ids must be numeric")
    hub.assoc.unlink(fot, fid, tot, tid_, None, _src(hub), now_ms())
    return 204, None


def list_assoc(hub, req, fromObjectType, fromObjectId, toObjectType):
    """GET .../associations/{to} -> 200 with offset paging (limit default 500)."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    fid = _need(hub, fot, fromObjectId)
    limit = req.qint("limit", 500)
    if limit < 1 or limit > 500:
        fail(400, "limit must be between 1 and 500")
    after = req.qint("after", 0)
    allr = _targets_json(hub, req, fot, fid, tot)
    out = {"results": allr[after:after + limit]}
    if after + limit < len(allr):
        nxt = str(after + limit)
        out["paging"] = {"next": {"after": nxt, "link": "%s%s?after=%s&limit=%d" % (
            req.base_url(), req.path, nxt, limit)}}
    return 200, out


# ----- batch endpoints -----------------------------------------------------
def _ainputs(hub, req):
    """inputs of an association batch body (limit associationBatchMaxInputs)."""
    return _inputs(hub, req, req.body_obj(), hub.cfg["associationBatchMaxInputs"])


def _nested_id(item, key):
    """item[key]['id'] as a string, or None."""
    v = item.get(key)
    return str(v.get("id")) if isinstance(v, dict) and v.get("id") is not None else None


def _invalid_pair(hub, fot, f, fid, tot, t):
    """The error for a pair whose record does not exist (config assocInvalidError).

    "documented": HubSpot's VALIDATION_ERROR "One or more associations are
    invalid", whose context names the bad object (INVALID_OBJECT_IDS
    "DEAL=123 is not valid") but not the input; "named": OBJECT_NOT_FOUND
    with context fromObjectId/toObjectId; "whole400": the batch fails."""
    bad = "%s=%s is not valid" % ((fot.word, f) if fid is None else (tot.word, t))
    mode = hub.cfg["assocInvalidError"]
    if mode == "named":
        return _err("OBJECT_NOT_FOUND", "Could not find %s" % (
            "%s %s" % (fot.name, f) if fid is None else "%s %s" % (tot.name, t)),
            {"fromObjectId": [str(f)], "toObjectId": [str(t)]})
    if mode == "whole400":
        fail(400, "One or more associations are invalid", context={"INVALID_OBJECT_IDS": [bad]})
    return _err("VALIDATION_ERROR", "One or more associations are invalid",
                {"INVALID_OBJECT_IDS": [bad]})


def batch_create(hub, req, fromObjectType, toObjectType):
    """POST /crm/v4/associations/{f}/{t}/batch/create -> 201 (207 on errors);
    200 with errors in the body under 2026-09 (its OpenAPI document)."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    started = now_ms()
    results, errors, src = [], [], _src(hub)
    for item in _ainputs(hub, req):
        f, t = _nested_id(item, "from"), _nested_id(item, "to")
        fid, tid_ = _live(fot, f), _live(tot, t)
        if fid is None or tid_ is None:
            errors.append(_invalid_pair(hub, fot, f, fid, tot, t))
            continue
        types = _types(hub, fot, tot, item.get("types"))
        hub.assoc.link(fot, fid, tot, tid_, types, src, started)
        results.append(_pair_json(hub, req, fot, fid, tot, tid_))
    ok = 200 if req.api_version == "2026-09" else 201
    return answer_status(req, ok, errors), _batch(results, errors, started)


def batch_default(hub, req, fromObjectType, toObjectType):
    """POST .../batch/associate/default -> 200, errors in the body: no
    version's OpenAPI document lists a 207 for it."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    started = now_ms()
    t = hub.assoc.default_type(fot, tot)
    results, errors, src = [], [], _src(hub)
    for item in _ainputs(hub, req):
        f, to = _nested_id(item, "from"), _nested_id(item, "to")
        fid, tid_ = _live(fot, f), _live(tot, to)
        if fid is None or tid_ is None:
            errors.append(_err("OBJECT_NOT_FOUND", "Could not find one of the objects",
                               {"fromObjectId": [str(f)], "toObjectId": [str(to)]}))
            continue
        hub.assoc.link(fot, fid, tot, tid_, [t], src, started)
        results.extend(_default_specs(hub, fot, fid, tot, tid_))
    return 200, _batch(results, errors, started)


def batch_read(hub, req, fromObjectType, toObjectType):
    """POST .../batch/read -> 200 (207 for unknown ids / ids without associations)."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    started = now_ms()
    results, errors = [], []
    inputs = _ainputs(hub, req)
    fails = _fault_fails(req, len(inputs))
    size = hub.cfg["assocBatchReadPageSize"]
    for i, item in enumerate(inputs):
        key = str(item.get("id"))
        if i in fails:
            errors.append(_fault_error(req, {"fromObjectId": [key]}))
            continue
        fid = _live(fot, key)
        to = _targets_json(hub, req, fot, fid, tot) if fid is not None else []
        after = item.get("after")
        if after is not None and fid is not None:
            last = _assoc_cursor_id(tot, after)
            to = [t for t in to if int(t["toObjectId"]) > last]
        if fid is None or (not to and after is None and hub.cfg["assocBatchReadMissingIsError"]):
            errors.append(_err("OBJECT_NOT_FOUND",
                               "No %s is associated with %s %s." % (
                                   tot.word.lower(), fot.word.lower(), key),
                               {"fromObjectId": [key]},
                               "crm.associations.NO_ASSOCIATIONS_FOUND"))
            continue
        result = {"from": {"id": str(fid)}, "to": to[:size]}
        if len(to) > size:
            # one page per input; paging only when there is more (spec)
            nxt = _assoc_cursor(tot, to[size - 1]["toObjectId"])
            result["paging"] = {"next": {"after": nxt, "link": "%s/crm/v4/objects/%s/%s/associations/%s?after=%s" % (
                req.base_url(), fot.tid, fid, tot.tid, nxt)}}
        results.append(result)
    return answer_status(req, 200, errors), _batch(results, errors, started)


def _archived(req, started):
    """An association archive's answer: 204 (v4), or 200 with a
    BatchResponseVoid body under a dated version (HubSpot's published
    OpenAPI documents, versions 2026-03 and 2026-09)."""
    if req.api_version == "legacy":
        return 204, None
    return 200, _batch([], [], started)


def _assoc_cursor(tot, last_id):
    """An opaque paging token, shaped like HubSpot's: base64 of
    "<toObjectTypeId>-<last toObjectId>" (e.g. MC0yLTc1MDI= for 0-2-7502)."""
    return base64.b64encode(("%s-%s" % (tot.tid, last_id)).encode()).decode()


def _assoc_cursor_id(tot, token):
    """The last toObjectId a token of _assoc_cursor names; 400 for a token
    this fake never handed out (a made-up cursor)."""
    try:
        raw = base64.b64decode(unquote(str(token)), validate=True).decode()
        ttid, last = raw.rsplit("-", 1)
        if ttid != tot.tid:
            raise ValueError(raw)
        return int(last)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        fail(400, "Invalid input: after %r is not a paging token of this request" % (token,))


def batch_archive(hub, req, fromObjectType, toObjectType):
    """POST .../batch/archive -> 204 (all types between each pair)."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    now, src = now_ms(), _src(hub)
    for item in _ainputs(hub, req):
        f = _nested_id(item, "from")
        tos = item.get("to") or []
        for t in tos if isinstance(tos, list) else [tos]:
            try:
                hub.assoc.unlink(fot, int(f), tot, int(t.get("id")), None, src, now)
            except (TypeError, ValueError, AttributeError):
                fail(400, "batch archive inputs need from.id and to[].id")
    return _archived(req, now)


def batch_labels_archive(hub, req, fromObjectType, toObjectType):
    """POST .../batch/labels/archive -> 204 (only the given types; the
    unlabeled type takes the pair's labeled types with it, as HubSpot's
    published OpenAPI documents say of this endpoint)."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    now, src = now_ms(), _src(hub)
    unlabeled = hub.assoc.default_type(fot, tot)
    for item in _ainputs(hub, req):
        f, t = _nested_id(item, "from"), _nested_id(item, "to")
        types = _types(hub, fot, tot, item.get("types"))
        try:
            hub.assoc.unlink(fot, int(f), tot, int(t),
                             None if unlabeled in types else types, src, now)
        except (TypeError, ValueError):
            fail(400, "labels archive inputs need from.id and to.id")
    return _archived(req, now)


# ----- labels ----------------------------------------------------------------
def get_labels(hub, req, fromObjectType, toObjectType):
    """GET /crm/v4/associations/{f}/{t}/labels."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    tids = hub.assoc.pair_types(fot, tot)
    return 200, {"results": [hub.assoc.defs[t].to_json() for t in tids]}


def create_label(hub, req, fromObjectType, toObjectType):
    """POST .../labels {label, name, inverseLabel?} -> 200 with the new types."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    body = req.body_obj()
    if not body.get("label") or not body.get("name"):
        fail(400, "label and name are required")
    a, b = hub.assoc.create_label(fot, tot, body["label"], body.get("inverseLabel"))
    return 200, {"results": [a.to_json(), b.to_json()]}


def update_label(hub, req, fromObjectType, toObjectType):
    """PUT .../labels {associationTypeId, label, inverseLabel?} -> 204."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    body = req.body_obj()
    d = hub.assoc.check_type(fot, tot, None, body.get("associationTypeId"))
    if d is None or d.category != "USER_DEFINED":
        fail(400, "associationTypeId is not a user-defined label of this pair")
    d.label = body.get("label", d.label)
    if body.get("inverseLabel"):
        hub.assoc.defs[d.inverse].label = body["inverseLabel"]
    return 204, None


def delete_label(hub, req, fromObjectType, toObjectType, typeId):
    """DELETE .../labels/{typeId} -> 204."""
    store = hub.store
    fot, tot = store.type_of(fromObjectType), store.type_of(toObjectType)
    try:
        d = hub.assoc.check_type(fot, tot, None, int(typeId))
    except ValueError:
        d = None
    if d is None or d.category != "USER_DEFINED":
        fail(400, "associationTypeId %s is not a user-defined label of this pair" % typeId)
    for t in (d.type_id, d.inverse):
        pair = (hub.assoc.defs[t].from_tid, hub.assoc.defs[t].to_tid)
        hub.assoc.pairs[pair].remove(t)
    return 204, None


def register(routes):
    """Add the v4 association routes."""
    obj = "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations"
    routes.add("PUT", obj + "/default/{toObjectType}/{toObjectId}", put_default)
    routes.add("PUT", obj + "/{toObjectType}/{toObjectId}", put_labeled)
    routes.add("DELETE", obj + "/{toObjectType}/{toObjectId}", delete_pair)
    routes.add("GET", obj + "/{toObjectType}", list_assoc)
    base = "/crm/v4/associations/{fromObjectType}/{toObjectType}"
    routes.add("POST", base + "/batch/create", batch_create)
    routes.add("POST", base + "/batch/associate/default", batch_default)
    routes.add("POST", base + "/batch/read", batch_read)
    routes.add("POST", base + "/batch/archive", batch_archive)
    routes.add("POST", base + "/batch/labels/archive", batch_labels_archive)
    for lbase in (base, "/crm/associations/v4/{fromObjectType}/{toObjectType}"):
        routes.add("GET", lbase + "/labels", get_labels)
        routes.add("POST", lbase + "/labels", create_label)
        routes.add("PUT", lbase + "/labels", update_label)
        routes.add("DELETE", lbase + "/labels/{typeId}", delete_label)
