"""Webhooks management API for apps (notes 12.1): settings and subscriptions.

Settings map onto the config keys webhookUrl / webhookConcurrency. Once a
subscription exists, only active subscriptions produce events, and events
carry that subscription's id."""

from . import config
from .routes_crm import _batch, _err
from .util import ApiError, error_body, fail, iso_ms, now_ms

_KINDS = ("creation", "deletion", "propertyChange", "merge", "restore", "associationChange")
EVENT_TYPES = frozenset(
    ["%s.%s" % (p, k) for p in ("contact", "company", "deal", "ticket", "line_item", "object")
     for k in _KINDS] +
    ["product.%s" % k for k in _KINDS[:5]] +
    ["contact.privacyDeletion", "conversation.creation", "conversation.deletion",
     "conversation.newMessage", "conversation.privacyDeletion",
     "conversation.propertyChange", "event.completed"])
FIRST_API_SUBSCRIPTION = 4000001


def _auth(hub, req, appId):
    """Developer API key (?hapikey=) or the bearer token; the app id must match."""
    key = req.q1("hapikey")
    if key is not None:
        if key != hub.cfg["developerApiKey"]:
            raise ApiError(401, error_body("The API key provided is invalid.",
                                           "INVALID_AUTHENTICATION"),
                           {"x-hubspot-auth-failure": "401 Unauthorized"})
    else:
        hub.auth.check(req.headers.get("Authorization"))
    if str(appId) != str(hub.cfg["appId"]):
        raise ApiError(404, error_body("App %s not found" % appId, "OBJECT_NOT_FOUND"))


def _settings_json(hub):
    """WebhookSettings of the app (404 when no target URL is set)."""
    cfg = hub.cfg
    if not cfg["webhookUrl"]:
        raise ApiError(404, error_body("No webhook settings found for app %s" % cfg["appId"],
                                       "OBJECT_NOT_FOUND"))
    created, updated = hub.hooks.settings_times or (now_ms(), now_ms())
    return {"targetUrl": cfg["webhookUrl"],
            "throttling": {"maxConcurrentRequests": cfg["webhookConcurrency"]},
            "createdAt": iso_ms(created), "updatedAt": iso_ms(updated)}


def get_settings(hub, req, appId):
    """GET /webhooks/v3/{appId}/settings."""
    _auth(hub, req, appId)
    return 200, _settings_json(hub)


def put_settings(hub, req, appId):
    """PUT /webhooks/v3/{appId}/settings {targetUrl, throttling}."""
    _auth(hub, req, appId)
    body = req.body_obj()
    url = body.get("targetUrl")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        fail(400, "targetUrl must be an http(s) URL")
    changes = {"webhookUrl": url}
    conc = (body.get("throttling") or {}).get("maxConcurrentRequests")
    if conc is not None:
        if not isinstance(conc, int) or not 1 <= conc <= 100:
            fail(400, "throttling.maxConcurrentRequests must be between 1 and 100")
        changes["webhookConcurrency"] = conc
    hub.cfg.update(config.merge(dict(hub.cfg), changes))
    created = hub.hooks.settings_times[0] if hub.hooks.settings_times else now_ms()
    hub.hooks.settings_times = (created, now_ms())
    hub.hooks.refresh()
    return 200, _settings_json(hub)


def delete_settings(hub, req, appId):
    """DELETE /webhooks/v3/{appId}/settings: stop deliveries."""
    _auth(hub, req, appId)
    hub.cfg["webhookUrl"] = None
    hub.hooks.settings_times = None
    hub.hooks.refresh()
    return 204, None


def _sub_or_404(hub, sub_id):
    """Subscription by id (404 if unknown)."""
    try:
        sub = hub.hooks.subs.get(int(sub_id))
    except ValueError:
        sub = None
    if sub is None:
        raise ApiError(404, error_body("Subscription %s not found" % sub_id, "OBJECT_NOT_FOUND"))
    return sub


def _sub_json(sub):
    """SubscriptionResponse: the id as a string (HubSpot's published OpenAPI
    document for Webhooks, v3), though requests give it as an integer."""
    return dict(sub, id=str(sub["id"]))


def _store_sub(hub, sub):
    """Save a subscription (copy-on-write: event threads read the dict unlocked)."""
    subs = dict(hub.hooks.subs)
    subs[sub["id"]] = sub
    hub.hooks.subs = subs


def list_subs(hub, req, appId):
    """GET /webhooks/v3/{appId}/subscriptions."""
    _auth(hub, req, appId)
    return 200, {"results": [_sub_json(s) for _, s in sorted(hub.hooks.subs.items())]}


def create_sub(hub, req, appId):
    """POST /webhooks/v3/{appId}/subscriptions -> 201 (paused unless active:true)."""
    _auth(hub, req, appId)
    body = req.body_obj()
    etype = body.get("eventType")
    if etype not in EVENT_TYPES:
        fail(400, "eventType %s is not supported" % etype)
    if etype.endswith(".propertyChange") and not body.get("propertyName"):
        fail(400, "propertyChange subscriptions need a propertyName")
    if etype.startswith("object.") and not body.get("objectTypeId"):
        fail(400, "object.* subscriptions need an objectTypeId")
    if body.get("propertyName") == "hs_lastmodifieddate":
        fail(400, "hs_lastmodifieddate cannot be subscribed to")
    now = now_ms()
    sub = {"id": FIRST_API_SUBSCRIPTION + hub.hooks.subs_made, "eventType": etype,
           "active": bool(body.get("active", False)),
           "createdAt": iso_ms(now), "updatedAt": iso_ms(now)}
    for key in ("propertyName", "objectTypeId"):
        if body.get(key):
            sub[key] = body[key]
    hub.hooks.subs_made += 1
    _store_sub(hub, sub)
    return 201, _sub_json(sub)


def get_sub(hub, req, appId, subscriptionId):
    """GET /webhooks/v3/{appId}/subscriptions/{id}."""
    _auth(hub, req, appId)
    return 200, _sub_json(_sub_or_404(hub, subscriptionId))


def patch_sub(hub, req, appId, subscriptionId):
    """PATCH /webhooks/v3/{appId}/subscriptions/{id} {active}."""
    _auth(hub, req, appId)
    body = req.body_obj()
    sub = dict(_sub_or_404(hub, subscriptionId))
    if "active" in body:
        sub["active"] = bool(body["active"])
    sub["updatedAt"] = iso_ms(now_ms())
    _store_sub(hub, sub)
    return 200, _sub_json(sub)


def delete_sub(hub, req, appId, subscriptionId):
    """DELETE /webhooks/v3/{appId}/subscriptions/{id} -> 204."""
    _auth(hub, req, appId)
    sub = _sub_or_404(hub, subscriptionId)
    subs = dict(hub.hooks.subs)
    del subs[sub["id"]]
    hub.hooks.subs = subs
    return 204, None


def batch_update_subs(hub, req, appId):
    """POST /webhooks/v3/{appId}/subscriptions/batch/update {inputs:[{id, active}]}."""
    _auth(hub, req, appId)
    body = req.body_obj()
    started = now_ms()
    results, errors = [], []
    for item in body.get("inputs") or []:
        sub = hub.hooks.subs.get(item.get("id"))
        if sub is None:
            errors.append(_err("OBJECT_NOT_FOUND", "Subscription %s not found" %
                               item.get("id"), {"ids": [str(item.get("id"))]}))
            continue
        sub = dict(sub, active=bool(item.get("active")), updatedAt=iso_ms(started))
        _store_sub(hub, sub)
        results.append(_sub_json(sub))
    return (207 if errors else 200), _batch(results, errors, started)


def register(routes):
    """Add the webhooks management routes (they check their own auth)."""
    base = "/webhooks/v3/{appId}"
    routes.add("GET", base + "/settings", get_settings)
    routes.add("PUT", base + "/settings", put_settings)
    routes.add("DELETE", base + "/settings", delete_settings)
    routes.add("GET", base + "/subscriptions", list_subs)
    routes.add("POST", base + "/subscriptions", create_sub)
    routes.add("POST", base + "/subscriptions/batch/update", batch_update_subs)
    routes.add("GET", base + "/subscriptions/{subscriptionId}", get_sub)
    routes.add("PATCH", base + "/subscriptions/{subscriptionId}", patch_sub)
    routes.add("DELETE", base + "/subscriptions/{subscriptionId}", delete_sub)
