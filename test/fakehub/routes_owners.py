"""Owners and pipelines: GET /crm/v3/owners and /crm/v3/pipelines/{objectType}.

Shapes as HubSpot's published OpenAPI documents for the owners API
(PublicOwner: id, email, firstName, lastName, userId, teams, archived,
createdAt, updatedAt; forward paging with `after`) and the pipelines API
(Pipeline with stages; stage metadata values are strings: probability,
isClosed for deals, ticketState for tickets).  The data is config
(`owners`, `pipelines` by object type name), changed with POST /_fake/config.
"""

from .util import fail


def _owner_out(o):
    """PublicOwner JSON: the configured owner with the required fields."""
    out = {"id": str(o["id"]), "type": o.get("type", "PERSON"),
           "archived": bool(o.get("archived", False)),
           "createdAt": o.get("createdAt", "2024-01-01T00:00:00.000Z"),
           "updatedAt": o.get("updatedAt", "2024-01-01T00:00:00.000Z"),
           "teams": o.get("teams", [])}
    for k in ("email", "firstName", "lastName", "userId", "userIdIncludingInactive"):
        if k in o:
            out[k] = o[k]
    return out


def list_owners(hub, req):
    """GET /crm/v3/owners: active (or, with archived=true, archived) owners, paged."""
    limit = req.qint("limit", 100)
    if limit < 1 or limit > 500:
        fail(400, "limit must be between 1 and 500")
    after = req.qint("after", 0)
    archived = req.qbool("archived")
    email = req.q1("email")
    picked = [o for o in hub.cfg["owners"]
              if bool(o.get("archived", False)) == bool(archived)
              and (email is None or o.get("email") == email)]
    page = picked[after:after + limit]
    out = {"results": [_owner_out(o) for o in page]}
    if after + limit < len(picked):
        nxt = str(after + limit)
        out["paging"] = {"next": {"after": nxt,
                                  "link": "%s/crm/v3/owners?after=%s" % (req.base_url(), nxt)}}
    return 200, out


def get_owner(hub, req, ownerId):
    """GET /crm/v3/owners/{ownerId}."""
    archived = req.qbool("archived")
    for o in hub.cfg["owners"]:
        if str(o["id"]) == ownerId and bool(o.get("archived", False)) == bool(archived):
            return 200, _owner_out(o)
    fail(404, "Owner not found", "OBJECT_NOT_FOUND")


def _stage_out(s, i):
    """PipelineStage JSON."""
    return {"id": s["id"], "label": s.get("label", s["id"]), "displayOrder": s.get("displayOrder", i),
            "metadata": {k: str(v) for k, v in s.get("metadata", {}).items()},
            "archived": bool(s.get("archived", False)),
            "createdAt": s.get("createdAt", "2024-01-01T00:00:00.000Z"),
            "updatedAt": s.get("updatedAt", "2024-01-01T00:00:00.000Z"),
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}


def _pipeline_out(p, i):
    """Pipeline JSON with its stages."""
    return {"id": p["id"], "label": p.get("label", p["id"]), "displayOrder": p.get("displayOrder", i),
            "archived": bool(p.get("archived", False)),
            "createdAt": p.get("createdAt", "2024-01-01T00:00:00.000Z"),
            "updatedAt": p.get("updatedAt", "2024-01-01T00:00:00.000Z"),
            "stages": [_stage_out(s, j) for j, s in enumerate(p.get("stages", []))]}


def _pipelines_of(hub, objectType):
    """The configured pipelines of an object type (400 for an unknown type)."""
    ot = hub.store.type_of(objectType)
    return hub.cfg["pipelines"].get(ot.name, [])


def list_pipelines(hub, req, objectType):
    """GET /crm/v3/pipelines/{objectType}: every pipeline with its stages (no paging)."""
    return 200, {"results": [_pipeline_out(p, i) for i, p in enumerate(_pipelines_of(hub, objectType))]}


def get_pipeline(hub, req, objectType, pipelineId):
    """GET /crm/v3/pipelines/{objectType}/{pipelineId}."""
    for i, p in enumerate(_pipelines_of(hub, objectType)):
        if p["id"] == pipelineId:
            return 200, _pipeline_out(p, i)
    fail(404, "Pipeline not found", "OBJECT_NOT_FOUND")


def list_stages(hub, req, objectType, pipelineId):
    """GET /crm/v3/pipelines/{objectType}/{pipelineId}/stages."""
    status, p = get_pipeline(hub, req, objectType, pipelineId)
    return 200, {"results": p["stages"]}


def register(routes):
    """Add the owners and pipelines routes."""
    routes.add("GET", "/crm/v3/owners", list_owners)
    routes.add("GET", "/crm/v3/owners/{ownerId}", get_owner)
    routes.add("GET", "/crm/v3/pipelines/{objectType}", list_pipelines)
    routes.add("GET", "/crm/v3/pipelines/{objectType}/{pipelineId}", get_pipeline)
    routes.add("GET", "/crm/v3/pipelines/{objectType}/{pipelineId}/stages", list_stages)
