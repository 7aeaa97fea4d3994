"""Properties API (notes 7) and custom-object schemas (notes 8)."""

import re

from .catalog import FIELD_TYPES, TYPES, system_props
from .model import ObjectType, new_custom_prop
from .routes_crm import _batch, _err, _inputs, answer_status
from .util import ApiError, error_body, fail, iso_ms, now_ms

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def _prop_or_404(ot, name, archived=False):
    """PropDef by name (404 if absent)."""
    p = ot.props.get(name)
    if p is None or p.archived != archived:
        raise ApiError(404, error_body("Unable to find property %s for object type %s" % (
            name, ot.name), "OBJECT_NOT_FOUND"))
    return p


def _check_spec(spec, strict=True):
    """400 unless a PropertyCreate body is complete and consistent (strict:
    names follow HubSpot's lowercase rule)."""
    if not isinstance(spec, dict):
        fail(400, "property definition must be an object")
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not spec.get(k)]
    if missing:
        fail(400, "Property definition is missing required fields: %s" % ", ".join(missing))
    if not isinstance(spec["name"], str) or len(spec["name"]) > 255:
        fail(400, "Property name is invalid: a string of at most 255 characters")
    if strict and not _NAME_RE.match(spec["name"]):
        fail(400, "Property name %s is invalid: use lowercase letters, digits and "
                  "underscores, starting with a letter" % spec["name"])
    if spec["type"] not in TYPES:
        fail(400, "Property type %s is not one of %s" % (spec["type"], ", ".join(TYPES)))
    if spec["fieldType"] not in FIELD_TYPES:
        fail(400, "fieldType %s is not one of %s" % (spec["fieldType"], ", ".join(FIELD_TYPES)))
    if spec["type"] == "enumeration" and not isinstance(spec.get("options", []), list):
        fail(400, "options must be an array")


def _add_prop(ot, spec, strict=True):
    """Create one custom property (409 if the name exists); returns it."""
    _check_spec(spec, strict)
    old = ot.props.get(spec["name"])
    if old is not None and not old.archived:
        raise ApiError(409, error_body("A property named '%s' already exists." % spec["name"],
                                       "OBJECT_ALREADY_EXISTS"))
    if spec["groupName"] not in ot.groups:
        ot.groups[spec["groupName"]] = {"name": spec["groupName"], "label": spec["groupName"],
                                        "displayOrder": -1, "archived": False}
    p = new_custom_prop(spec, now_ms())
    ot.props[p.name] = p
    if p.unique:
        ot.reindex_unique()
    return p


def list_props(hub, req, objectType):
    """GET /crm/v3/properties/{t}."""
    ot = hub.store.type_of(objectType)
    archived = req.qbool("archived")
    wanted = set(req.qlist("properties"))
    return 200, {"results": [p.to_json() for p in ot.props.values()
                             if p.archived == archived and (not wanted or p.name in wanted)]}


def create_prop(hub, req, objectType):
    """POST /crm/v3/properties/{t} -> 201."""
    ot = hub.store.type_of(objectType)
    return 201, _add_prop(ot, req.body_obj(), hub.cfg["strictPropertyNames"]).to_json()


def get_prop(hub, req, objectType, name):
    """GET /crm/v3/properties/{t}/{name}."""
    ot = hub.store.type_of(objectType)
    return 200, _prop_or_404(ot, name, req.qbool("archived")).to_json()


def patch_prop(hub, req, objectType, name):
    """PATCH /crm/v3/properties/{t}/{name}: label, options, group, etc."""
    ot = hub.store.type_of(objectType)
    p = _prop_or_404(ot, name)
    body = req.body_obj()
    if "hasUniqueValue" in body and bool(body["hasUniqueValue"]) != p.unique:
        fail(400, "hasUniqueValue can only be set when a property is created")
    if "type" in body and body["type"] not in TYPES:
        fail(400, "invalid type")
    for key, attr in (("label", "label"), ("description", "description"),
                      ("groupName", "group"), ("hidden", "hidden"),
                      ("displayOrder", "display_order"), ("formField", "form_field"),
                      ("type", "type"), ("fieldType", "field_type")):
        if key in body:
            setattr(p, attr, body[key])
    if "options" in body or "fieldType" in body:
        p.set_options(body.get("options", p.options))
    p.refresh()
    p.updated = now_ms()
    return 200, p.to_json()


def delete_prop(hub, req, objectType, name):
    """DELETE /crm/v3/properties/{t}/{name} -> 204 (custom properties only)."""
    ot = hub.store.type_of(objectType)
    p = _prop_or_404(ot, name)
    if p.hubspot_defined:
        fail(400, "HubSpot-defined property %s cannot be deleted" % name)
    p.archived = True
    p.refresh()
    if p.unique:
        ot.reindex_unique()
    return 204, None


def batch_create_props(hub, req, objectType):
    """POST /crm/v3/properties/{t}/batch/create -> 201 (207 per failed input);
    200 with the errors in the body under 2026-09 (its OpenAPI document)."""
    ot = hub.store.type_of(objectType)
    started = now_ms()
    results, errors = [], []
    for spec in _inputs(hub, req, req.body_obj()):
        try:
            results.append(_add_prop(ot, spec, hub.cfg["strictPropertyNames"]).to_json())
        except ApiError as e:
            errors.append(_err(e.body["category"], e.body["message"],
                               {"name": [str(spec.get("name"))]}))
    ok = 200 if req.api_version == "2026-09" else 201
    return answer_status(req, ok, errors), _batch(results, errors, started)


def batch_read_props(hub, req, objectType):
    """POST /crm/v3/properties/{t}/batch/read -> 200 (207 for unknown names,
    except under 2026-09: 200 with the errors in the body)."""
    ot = hub.store.type_of(objectType)
    body = req.body_obj()
    started = now_ms()
    archived = bool(body.get("archived"))
    results, missing = [], []
    for item in _inputs(hub, req, body):
        p = ot.props.get(item.get("name"))
        if p is None or p.archived != archived:
            missing.append(str(item.get("name")))
        else:
            results.append(p.to_json())
    errors = [_err("OBJECT_NOT_FOUND", "Could not find some properties",
                   {"names": missing})] if missing else []
    return answer_status(req, 200, errors), _batch(results, errors, started)


def batch_archive_props(hub, req, objectType):
    """POST /crm/v3/properties/{t}/batch/archive -> 204."""
    ot = hub.store.type_of(objectType)
    for item in _inputs(hub, req, req.body_obj()):
        p = ot.props.get(item.get("name"))
        if p is not None and not p.hubspot_defined:
            p.archived = True
            p.refresh()
    ot.reindex_unique()
    return 204, None


def list_groups(hub, req, objectType):
    """GET /crm/v3/properties/{t}/groups."""
    ot = hub.store.type_of(objectType)
    return 200, {"results": [dict(g) for g in ot.groups.values() if not g["archived"]]}


def create_group(hub, req, objectType):
    """POST /crm/v3/properties/{t}/groups -> 201."""
    ot = hub.store.type_of(objectType)
    body = req.body_obj()
    if not body.get("name") or not body.get("label"):
        fail(400, "Property group needs name and label")
    if body["name"] in ot.groups and not ot.groups[body["name"]]["archived"]:
        raise ApiError(409, error_body("A property group named '%s' already exists." %
                                       body["name"], "OBJECT_ALREADY_EXISTS"))
    g = ot.groups[body["name"]] = {"name": body["name"], "label": body["label"],
                                   "displayOrder": body.get("displayOrder", -1),
                                   "archived": False}
    return 201, dict(g)


def _group(ot, name):
    """Property group by name (404 if absent)."""
    g = ot.groups.get(name)
    if g is None or g["archived"]:
        raise ApiError(404, error_body("Property group %s not found" % name, "OBJECT_NOT_FOUND"))
    return g


def get_group(hub, req, objectType, name):
    """GET /crm/v3/properties/{t}/groups/{name}."""
    return 200, dict(_group(hub.store.type_of(objectType), name))


def patch_group(hub, req, objectType, name):
    """PATCH /crm/v3/properties/{t}/groups/{name}."""
    g = _group(hub.store.type_of(objectType), name)
    body = req.body_obj()
    for key in ("label", "displayOrder"):
        if key in body:
            g[key] = body[key]
    return 200, dict(g)


def delete_group(hub, req, objectType, name):
    """DELETE /crm/v3/properties/{t}/groups/{name} -> 204."""
    _group(hub.store.type_of(objectType), name)["archived"] = True
    return 204, None


# ----- schemas -------------------------------------------------------------
def schema_json(hub, ot):
    """Schema response (notes 8 field list).  allowsSensitiveProperties is
    always there and description only when set (HubSpot's published OpenAPI
    documents for schemas: the former required from 2025-09, the latter a
    string, not nullable)."""
    s = ot.schema
    assoc = []
    for (ftid, ttid), tids in hub.assoc.pairs.items():
        if ftid == ot.tid:
            for t in tids:
                d = hub.assoc.defs[t]
                assoc.append({"id": str(t), "fromObjectTypeId": ftid, "toObjectTypeId": ttid,
                              "name": d.label or "%s_to_%s" % (
                                  ot.word.lower(), hub.store.by_key[ttid].word.lower()),
                              "createdAt": iso_ms(s["createdAt"]),
                              "updatedAt": iso_ms(s["updatedAt"])})
    out = {"id": ot.tid.split("-")[1], "objectTypeId": ot.tid,
           "fullyQualifiedName": ot.name, "name": s["name"], "labels": s["labels"],
           "requiredProperties": s["requiredProperties"],
           "searchableProperties": s["searchableProperties"],
           "primaryDisplayProperty": s["primaryDisplayProperty"],
           "secondaryDisplayProperties": s["secondaryDisplayProperties"],
           "properties": [p.to_json() for p in ot.props.values() if not p.archived],
           "associations": assoc, "metaType": "PORTAL_SPECIFIC",
           "archived": s["archived"], "restorable": True,
           "allowsSensitiveProperties": bool(s.get("allowsSensitiveProperties", False)),
           "createdAt": iso_ms(s["createdAt"]), "updatedAt": iso_ms(s["updatedAt"])}
    if s.get("description") is not None:
        out["description"] = s["description"]
    return out


def _custom(hub, key):
    """Custom object type by objectTypeId / fully qualified name / p_name."""
    ot = hub.store.by_key.get(key)
    if ot is None or ot.schema is None:
        raise ApiError(404, error_body("Unable to find schema for %s" % key, "OBJECT_NOT_FOUND"))
    return ot


def list_schemas(hub, req):
    """GET /crm/v3/schemas."""
    archived = req.qbool("archived")
    return 200, {"results": [schema_json(hub, ot) for ot in hub.store.types.values()
                             if ot.schema and ot.schema["archived"] == archived]}


def create_schema(hub, req):
    """POST /crm/v3/schemas -> 201 (a new 2-N object type)."""
    body = req.body_obj()
    store = hub.store
    name = body.get("name")
    labels = body.get("labels") or {}
    if not name or not _NAME_RE.match(name) or not labels.get("singular") or \
            not labels.get("plural"):
        fail(400, "Schema needs a valid name and labels.singular/labels.plural")
    fqn = "p%s_%s" % (hub.cfg["portalId"], name)
    if fqn in store.by_key:
        raise ApiError(409, error_body("An object type named %s already exists." % name,
                                       "OBJECT_ALREADY_EXISTS"))
    specs = body.get("properties") or []
    for spec in specs:
        _check_spec(dict({"groupName": "information"}, **spec))
    primary = body.get("primaryDisplayProperty")
    names = {s["name"] for s in specs}
    for group in ("requiredProperties", "searchableProperties", "secondaryDisplayProperties"):
        bad = [n for n in body.get(group) or [] if n not in names]
        if bad:
            fail(400, "%s lists undefined properties: %s" % (group, ", ".join(bad)))
    if primary and primary not in names:
        fail(400, "primaryDisplayProperty %s is not defined" % primary)
    now = now_ms()
    tid = "2-%d" % store.next_custom
    store.next_custom += 1
    props = system_props(False) + [new_custom_prop(dict({"groupName": "information"}, **s), now)
                                   for s in specs]
    schema = {"name": name, "labels": labels, "createdAt": now, "updatedAt": now,
             "requiredProperties": body.get("requiredProperties") or [],
             "searchableProperties": body.get("searchableProperties") or [],
             "primaryDisplayProperty": primary,
             "secondaryDisplayProperties": body.get("secondaryDisplayProperties") or [],
              "description": body.get("description"), "archived": False}
    ot = ObjectType(fqn, tid, name.upper(), None, "hs_createdate", None, props, schema)
    store.add_type(ot, ("p_" + name, name))
    for other in body.get("associatedObjects") or []:
        tot = store.by_key.get(other) or store.by_key.get(str(other).lower())
        if tot is None:
            fail(400, "Unknown associated object %s" % other)
        hub.assoc.pair_types(ot, tot)
    return 201, schema_json(hub, ot)


def get_schema(hub, req, objectType):
    """GET /crm/v3/schemas/{t}."""
    return 200, schema_json(hub, _custom(hub, objectType))


def patch_schema(hub, req, objectType):
    """PATCH /crm/v3/schemas/{t}: labels and display/search/required lists."""
    ot = _custom(hub, objectType)
    body = req.body_obj()
    for key in ("labels", "requiredProperties", "searchableProperties",
               "primaryDisplayProperty", "secondaryDisplayProperties", "description"):
        if key in body:
            ot.schema[key] = body[key]
    ot.schema["updatedAt"] = now_ms()
    return 200, schema_json(hub, ot)


def delete_schema(hub, req, objectType):
    """DELETE /crm/v3/schemas/{t} -> 204 (refused while live records exist)."""
    ot = _custom(hub, objectType)
    if any(not r.a for r in ot.recs.values()):
        fail(400, "Object type %s still has records; archive them first" % ot.name)
    ot.schema["archived"] = True
    return 204, None


def create_schema_assoc(hub, req, objectType):
    """POST /crm/v3/schemas/{t}/associations -> 201."""
    ot = _custom(hub, objectType)
    body = req.body_obj()
    fot = hub.store.type_of(str(body.get("fromObjectTypeId") or ot.tid))
    tot = hub.store.type_of(str(body.get("toObjectTypeId")))
    tid = hub.assoc.default_type(fot, tot)
    return 201, {"id": str(tid), "fromObjectTypeId": fot.tid, "toObjectTypeId": tot.tid,
                 "name": body.get("name"), "createdAt": iso_ms(now_ms()),
                 "updatedAt": iso_ms(now_ms())}


def register(routes):
    """Add properties and schema routes."""
    base = "/crm/v3/properties/{objectType}"
    routes.add("GET", base + "/groups", list_groups)
    routes.add("POST", base + "/groups", create_group)
    routes.add("GET", base + "/groups/{name}", get_group)
    routes.add("PATCH", base + "/groups/{name}", patch_group)
    routes.add("DELETE", base + "/groups/{name}", delete_group)
    routes.add("POST", base + "/batch/create", batch_create_props)
    routes.add("POST", base + "/batch/read", batch_read_props)
    routes.add("POST", base + "/batch/archive", batch_archive_props)
    routes.add("GET", base, list_props)
    routes.add("POST", base, create_prop)
    routes.add("GET", base + "/{name}", get_prop)
    routes.add("PATCH", base + "/{name}", patch_prop)
    routes.add("DELETE", base + "/{name}", delete_prop)
    for sbase in ("/crm/v3/schemas", "/crm-object-schemas/v3/schemas"):
        routes.add("GET", sbase, list_schemas)
        routes.add("POST", sbase, create_schema)
        routes.add("GET", sbase + "/{objectType}", get_schema)
        routes.add("PATCH", sbase + "/{objectType}", patch_schema)
        routes.add("DELETE", sbase + "/{objectType}", delete_schema)
        routes.add("POST", sbase + "/{objectType}/associations", create_schema_assoc)
