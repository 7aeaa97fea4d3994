"""Configuration: defaults, tier presets and validated merging (POST /_fake/config)."""

import copy

from .util import fail

# Every key the fake understands, with its default.  Unconfirmed HubSpot
# behaviours default to the more demanding choice for the client.
DEFAULTS = {
    # identity and credentials
    "token": "test-token",
    "appId": 54321,
    "portalId": 62515,
    "clientSecret": "hubsync-test-secret",
    "developerApiKey": "hubsync-developer-key",
    # rate limits (tier "enterprise": 190 / 10 s, 1,000,000 / day)
    "tier": "enterprise",
    "burstLimit": 190,
    "burstWindowMs": 10000,
    "dailyLimit": 1000000,
    "searchPerSecond": 5,
    "rateLimitCountsRejected": True,
    "dailyHeaders": True,
    "secondlyHeaders": True,
    "searchRateLimitHeaders": False,
    # latency and hangs
    "latencyMs": 0,
    "latencyJitterMs": 0,
    # a slow (CPU-starved) HubSpot: each request waits a random 0..N ms
    # after arriving and before it is counted against the rate limits
    "arrivalDelayMs": 0,
    "hangMaxMs": 60000,
    # search
    "searchIndexLagMs": 3000,
    "searchFilterLimits": {"maxGroups": 5, "maxFiltersPerGroup": 6, "maxFilters": 18},
    "searchMaxLimit": 200,
    "searchResultCap": 10000,
    "searchQueryMaxLength": 3000,
    "searchStrictLowercase": True,
    # batches and lists
    "batchMaxInputs": 100,
    "batchMaxInputsWithHistory": 50,
    "associationBatchMaxInputs": 100,
    # v4 association batch read: associations per input and page (the v4
    # list endpoint's documented default limit)
    "assocBatchReadPageSize": 500,
    "listMaxLimit": 100,
    # list paging.next.after: "id" (the next record id, any id works),
    # "offset", "opaque" (base64 tokens) or "issued" (ids, but only the
    # cursors handed out work); unknown cursors give an empty page
    "listCursor": "id",
    "historyMax": 50,
    # unconfirmed behaviours
    "toObjectIdAsString": False,
    "deleteArchivedStatus": 404,
    # HubSpot sends its JSON error body (category OBJECT_NOT_FOUND) with a
    # 404; False gives the old empty, untyped 404 (client tolerance tests)
    "notFoundBody": True,
    # 409 unique-value clash message: existingId, noId or bare (unconfirmed
    # beyond contacts' email)
    "uniqueConflictMessage": "existingId",
    "batchUpsertEmailPartial": False,
    "mergeCreatesNewId": True,
    "noopWriteTouchesModified": True,
    "validateEnumerations": True,
    "validateEmail": True,
    "assocBatchReadMissingIsError": True,
    # upsert/update results echo the idProperty's value in properties
    "echoIdProperty": True,
    # association batch create of an invalid pair: "documented" (a per-input
    # VALIDATION_ERROR "One or more associations are invalid" with
    # INVALID_OBJECT_IDS context), "named" (OBJECT_NOT_FOUND naming
    # fromObjectId/toObjectId) or "whole400" (the whole batch refused)
    "assocInvalidError": "documented",
    # admin-configured validation rules (see README): a list of
    # {"objectType","propertyName","ruleType","ruleArguments","exceptWhenSet","message"}
    "validationRules": [],
    # change attribution for API writes (history sourceType / webhook changeSource)
    "apiChangeSource": "INTEGRATION",
    "apiSourceId": "{appId}",
    "uiUserId": 76023669,
    # webhooks
    "webhookUrl": None,
    "webhookBatchMax": 100,
    "webhookConcurrency": 10,
    "webhookTimeoutMs": 5000,
    "webhookRetries": 10,
    "webhookRetryDelaysMs": [200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000, 5000],
    "webhookDuplicateProbability": 0.0,
    "webhookShuffle": False,
    "webhookDelayMs": 0,
    "webhookSignatureV1": True,
    "webhookSignatureV3": True,
    "webhookPropertyChangeOnCreate": True,
    "webhookSubscriptions": None,
    "webhookCapture": True,
    # Webhooks Journal: how long entries are kept (HubSpot: three days) and
    # how long a pre-signed download URL stays valid
    "journalRetentionMs": 3 * 86400 * 1000,
    "journalUrlTtlMs": 300000,
    # request log: the ids each batch input names (for debugging chaos runs)
    "logInputIds": False,
    "webhookCaptureMax": 100000,
    # property names: HubSpot's rule, or anything (hostile-name tests)
    "strictPropertyNames": True,
    # OAuth
    "oauthClientId": "hubsync-client-id",
    "oauthClientSecret": "hubsync-oauth-secret",
    "oauthRefreshToken": "hubsync-refresh-token",
    "oauthAuthCode": "hubsync-auth-code",
    "oauthExpiresIn": 1800,
    "oauthRotateRefreshToken": False,
    "oauthUserId": 123,
    "oauthScopes": ["crm.objects.contacts.read", "crm.objects.contacts.write",
                    "crm.objects.companies.read", "crm.objects.companies.write",
                    "crm.objects.deals.read", "crm.objects.deals.write",
                    "crm.schemas.custom.read", "oauth",
                    "developer.webhooks_journal.read",
                    "developer.webhooks_journal.subscriptions.read",
                    "developer.webhooks_journal.subscriptions.write"],
    # owners and pipelines (routes_owners.py): PublicOwner-like dicts, and
    # pipelines by object type name, each with stages and their metadata
    "owners": [
        {"id": "11", "email": "ann@example.com", "firstName": "Ann", "lastName": "Lee", "userId": 501,
         "teams": [{"id": "7", "name": "EMEA", "primary": True}]},
        {"id": "12", "email": "bob@example.com", "firstName": "Bob", "lastName": "Ray", "userId": 502},
        {"id": "13", "email": "cy@example.com", "firstName": "Cy", "lastName": "Old", "archived": True},
    ],
    "pipelines": {
        "deals": [
            {"id": "default", "label": "Sales Pipeline", "stages": [
                {"id": "appointmentscheduled", "label": "Appointment Scheduled",
                 "metadata": {"isClosed": "false", "probability": "0.2"}},
                {"id": "qualifiedtobuy", "label": "Qualified To Buy",
                 "metadata": {"isClosed": "false", "probability": "0.4"}},
                {"id": "closedwon", "label": "Closed Won",
                 "metadata": {"isClosed": "true", "probability": "1.0"}},
                {"id": "closedlost", "label": "Closed Lost",
                 "metadata": {"isClosed": "true", "probability": "0.0"}}]},
        ],
        "tickets": [
            {"id": "0", "label": "Support Pipeline", "stages": [
                {"id": "1", "label": "New", "metadata": {"ticketState": "OPEN"}},
                {"id": "4", "label": "Closed", "metadata": {"ticketState": "CLOSED"}}]},
        ],
    },
    # API version families served (versions.py): a request on another
    # family's path answers 404 OBJECT_NOT_FOUND
    "apiFamilies": ["2026-09", "2026-03", "legacy"],
    # bookkeeping
    "requestLogMax": 100000,
    "randomSeed": None,
}

# Tier presets: applied first when "tier" is given, explicit keys win.
TIERS = {
    "free": {"burstLimit": 100, "dailyLimit": 250000, "dailyHeaders": True},
    "starter": {"burstLimit": 100, "dailyLimit": 250000, "dailyHeaders": True},
    "pro": {"burstLimit": 190, "dailyLimit": 625000, "dailyHeaders": True},
    "enterprise": {"burstLimit": 190, "dailyLimit": 1000000, "dailyHeaders": True},
    "oauth": {"burstLimit": 110, "dailyLimit": 1000000, "dailyHeaders": False},
}

_NULLABLE = {"webhookUrl", "webhookSubscriptions", "randomSeed"}
_POSITIVE = {"burstLimit", "burstWindowMs", "dailyLimit", "searchPerSecond",
             "batchMaxInputs", "batchMaxInputsWithHistory", "listMaxLimit",
             "searchMaxLimit", "webhookBatchMax", "webhookConcurrency",
             "webhookTimeoutMs", "associationBatchMaxInputs", "historyMax",
             "assocBatchReadPageSize",
             "journalRetentionMs", "journalUrlTtlMs"}


def defaults(overrides=None):
    """A fresh config dict: DEFAULTS plus start-up overrides."""
    cfg = copy.deepcopy(DEFAULTS)
    if overrides:
        merge(cfg, overrides)
    return cfg


def _check_type(key, value):
    """400 unless value has the type of the key's default."""
    want = DEFAULTS[key]
    if value is None:
        if key in _NULLABLE:
            return
        fail(400, "config key %s may not be null" % key)
    if isinstance(want, bool):
        ok = isinstance(value, bool)
    elif isinstance(want, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(want, float):
        ok = isinstance(value, (int, float, str)) and not isinstance(value, bool)
    elif want is None:
        ok = True
    else:
        ok = isinstance(value, type(want))
    if not ok:
        fail(400, "config key %s has the wrong type" % key)
    if key in _POSITIVE and value <= 0:
        fail(400, "config key %s must be positive" % key)


def merge(cfg, changes):
    """Validate and merge changes into cfg (in place); returns cfg."""
    if not isinstance(changes, dict):
        fail(400, "config must be a JSON object")
    unknown = sorted(k for k in changes if k not in DEFAULTS)
    if unknown:
        fail(400, "unknown config keys: %s" % ", ".join(unknown))
    tier = changes.get("tier")
    if tier is not None:
        if tier not in TIERS:
            fail(400, "unknown tier %r (free, starter, pro, enterprise, oauth)" % tier)
        cfg.update(TIERS[tier])
    for key, value in changes.items():
        _check_type(key, value)
        if key == "webhookDuplicateProbability":
            value = float(value)
        if key == "searchFilterLimits":
            value = dict(cfg["searchFilterLimits"], **value)
        if key == "assocInvalidError" and value not in ("documented", "named", "whole400"):
            fail(400, "assocInvalidError must be documented, named or whole400")
        if key == "validationRules":
            _check_rules(value)
        if key == "listCursor" and value not in ("id", "offset", "opaque", "issued"):
            fail(400, "listCursor must be id, offset, opaque or issued")
        if key == "uniqueConflictMessage" and value not in ("existingId", "noId", "bare"):
            fail(400, "uniqueConflictMessage must be existingId, noId or bare")
        if key == "deleteArchivedStatus" and value not in (204, 404):
            fail(400, "deleteArchivedStatus must be 204 or 404")
        if key == "apiFamilies" and (
                not value or any(f not in ("2026-09", "2026-03", "legacy") for f in value)):
            fail(400, "apiFamilies must list some of 2026-09, 2026-03, legacy")
        cfg[key] = value
    return cfg


RULE_TYPES = ("MAX_NUMBER", "MIN_NUMBER", "MAX_LENGTH", "MIN_LENGTH", "REGEX", "REQUIRED")


def _check_rules(rules):
    """400 unless every validation rule is well formed."""
    for r in rules:
        if not isinstance(r, dict) or not isinstance(r.get("objectType"), str) or \
                not isinstance(r.get("propertyName"), str) or r.get("ruleType") not in RULE_TYPES:
            fail(400, "a validation rule needs objectType, propertyName and a ruleType "
                      "among %s" % ", ".join(RULE_TYPES))
        args = r.get("ruleArguments", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            fail(400, "ruleArguments must be a list of strings")
        if r["ruleType"] != "REQUIRED" and len(args) != 1:
            fail(400, "rule type %s takes one argument" % r["ruleType"])
        if not isinstance(r.get("exceptWhenSet", []), list):
            fail(400, "exceptWhenSet must be a list of property names")


def source_id(cfg):
    """The sourceId string API writes carry (apiSourceId with {appId} filled)."""
    return cfg["apiSourceId"].replace("{appId}", str(cfg["appId"]))
