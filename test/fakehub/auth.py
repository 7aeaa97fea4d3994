"""Bearer-token checks (notes 1.3) and the OAuth token endpoints (notes 1.2)."""

import threading
import urllib.parse
import uuid

from .util import ApiError, correlation_id, error_body, iso_ms, now_ms


def _oauth_error(status_name, message, error, api_version=None):
    """400 body of the OAuth token endpoint: the numbered endpoints' shape
    (HubSpot's status word plus RFC 6749's error and error_description), or
    on a dated endpoint RFC 6749's fields with HubSpot's Error envelope
    (category, correlationId, message) and no status word."""
    if api_version in (None, "legacy"):
        return ApiError(400, {"status": status_name, "message": message,
                              "correlationId": correlation_id(), "error": error,
                              "error_description": message})
    return ApiError(400, {"error": error, "error_description": message,
                          "category": "VALIDATION_ERROR", "message": message,
                          "correlationId": correlation_id()})


class Auth:
    """Static private-app token plus OAuth-issued access tokens."""

    def __init__(self, hub):
        """No tokens issued yet."""
        self.hub = hub
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        """Forget issued and revoked tokens."""
        with self.lock:
            self.access = {}          # token -> expiry ms
            self.cc_scopes = {}       # client-credentials token -> its scopes
            self.refresh_issued = set()
            self.revoked = set()
            self.grants = 0

    def check(self, header):
        """'private' or 'oauth' for a good Authorization header, else 401."""
        token = ""
        if header and header[:7].lower() == "bearer ":
            token = header[7:].strip()
        if token and token == self.hub.cfg["token"]:
            return "private"
        with self.lock:
            expiry = self.access.get(token)
        if expiry is not None:
            now = now_ms()
            if now < expiry:
                return "oauth"
            ago = (now - expiry) // 1000
            raise ApiError(401, error_body(
                "The OAuth token used to make this call expired %d second(s) ago." % ago,
                "EXPIRED_AUTHENTICATION", context={"expire time": [iso_ms(expiry)]}))
        raise ApiError(401, error_body(
            "Authentication credentials not found. This API supports OAuth 2.0 "
            "authentication and you can find more details at "
            "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            "INVALID_AUTHENTICATION"), {"x-hubspot-auth-failure": "401 Unauthorized"})

    def kind(self, header):
        """'private', 'oauth' (a user's token: refresh or authorization code
        grant) or 'client_credentials' for a known Authorization header
        (expired or not), else None: what the request log shows."""
        token = header[7:].strip() if header and header[:7].lower() == "bearer " else ""
        if token and token == self.hub.cfg["token"]:
            return "private"
        with self.lock:
            if token in self.cc_scopes:
                return "client_credentials"
            return "oauth" if token in self.access else None

    def check_app_token(self, header, scope):
        """The webhooks journal APIs (HubSpot's published OpenAPI document
        for the Webhooks Journal, 2026-03: oauth2 security only; developer
        docs: a client credentials token carrying the developer scopes):
        401 for any other token (a private-app/static token, a service key,
        a user's OAuth token), 403 MISSING_SCOPES when the client-credentials
        token was not asked for `scope`."""
        self.check(header)        # 401 for unknown or expired tokens
        token = header[7:].strip()
        with self.lock:
            scopes = self.cc_scopes.get(token)
        if scopes is None:
            raise ApiError(401, error_body(
                "This API takes only an OAuth 2.0 client credentials token of the app "
                "(grant_type=client_credentials); static, private app and user tokens "
                "are not accepted", "INVALID_AUTHENTICATION"),
                {"x-hubspot-auth-failure": "401 Unauthorized"})
        if scope not in scopes:
            raise ApiError(403, error_body(
                "This app hasn't been granted all required scopes to make this call.",
                "MISSING_SCOPES", context={"requiredGranularScopes": [scope]}))

    def _refresh_ok(self, token):
        """Is this refresh token currently valid?"""
        if token in self.revoked:
            return False
        return token == self.hub.cfg["oauthRefreshToken"] or token in self.refresh_issued

    def token(self, raw_body, api_version=None):
        """POST /oauth/v{1,3}/token or /oauth/{v}/token: (status,
        AccessTokenResponse).  grant_type refresh_token, authorization_code
        or client_credentials (client id and secret only, no refresh token
        in the answer)."""
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(
            raw_body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        cfg = self.hub.cfg
        grant = form.get("grant_type")
        if grant not in ("refresh_token", "authorization_code", "client_credentials"):
            raise _oauth_error("BAD_GRANT_TYPE", "missing or unsupported grant_type",
                               "unsupported_grant_type", api_version)
        if form.get("client_id") != cfg["oauthClientId"]:
            raise _oauth_error("BAD_CLIENT_ID", "missing or unknown client id",
                               "invalid_client", api_version)
        if form.get("client_secret") != cfg["oauthClientSecret"]:
            raise _oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret",
                               "invalid_client", api_version)
        # client credentials: the token carries the scopes asked for
        # (RFC 6749 "scope", space separated), each one the app must have
        asked = [x for x in (form.get("scope") or "").split(" ") if x]
        if grant == "client_credentials":
            missing = [x for x in asked if x not in cfg["oauthScopes"]]
            if missing:
                raise _oauth_error("BAD_SCOPES", "the app does not have the scope(s) %s"
                                   % " ".join(missing), "invalid_scope", api_version)
        with self.lock:
            if grant == "refresh_token" and not self._refresh_ok(form.get("refresh_token")):
                raise _oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token",
                                   "invalid_grant", api_version)
            if grant == "authorization_code" and form.get("code") != cfg["oauthAuthCode"]:
                raise _oauth_error("BAD_AUTH_CODE", "missing or unknown auth code",
                                   "invalid_grant", api_version)
            self.grants += 1
            access = "CJT" + uuid.uuid4().hex + uuid.uuid4().hex + uuid.uuid4().hex
            self.access[access] = now_ms() + cfg["oauthExpiresIn"] * 1000
            if grant == "client_credentials":
                self.cc_scopes[access] = set(asked)
            refresh = form.get("refresh_token") or cfg["oauthRefreshToken"]
            if grant != "refresh_token" or cfg["oauthRotateRefreshToken"]:
                if cfg["oauthRotateRefreshToken"] and grant == "refresh_token":
                    self.revoked.add(refresh)
                refresh = str(uuid.uuid4())
                self.refresh_issued.add(refresh)
        body = {"token_type": "bearer", "access_token": access, "refresh_token": refresh,
                "expires_in": cfg["oauthExpiresIn"], "hub_id": cfg["portalId"],
                "scopes": list(cfg["oauthScopes"]), "token_use": "access_token",
                "user_id": cfg["oauthUserId"]}
        if grant == "client_credentials":
            body.pop("refresh_token")
            body["scopes"] = asked
        return 200, body

    def access_info(self, token):
        """GET /oauth/v1/access-tokens/{token} metadata."""
        cfg = self.hub.cfg
        with self.lock:
            expiry = self.access.get(token)
        if expiry is None:
            raise ApiError(404, error_body("access token not found", "OBJECT_NOT_FOUND"))
        return 200, {"token": token, "user": "hubsync@example.test",
                     "hub_domain": "fake-%s.hubspot.test" % cfg["portalId"],
                     "scopes": list(cfg["oauthScopes"]), "hub_id": cfg["portalId"],
                     "app_id": cfg["appId"], "expires_in": max(0, (expiry - now_ms()) // 1000),
                     "user_id": cfg["oauthUserId"], "token_type": "access"}

    def refresh_info(self, token, delete=False):
        """GET/DELETE /oauth/v1/refresh-tokens/{token}."""
        cfg = self.hub.cfg
        with self.lock:
            if not self._refresh_ok(token):
                raise ApiError(404, error_body("refresh token not found", "OBJECT_NOT_FOUND"))
            if delete:
                self.revoked.add(token)
                return 204, None
        return 200, {"token": token, "user": "hubsync@example.test",
                     "hub_domain": "fake-%s.hubspot.test" % cfg["portalId"],
                     "scopes": list(cfg["oauthScopes"]), "hub_id": cfg["portalId"],
                     "client_id": cfg["oauthClientId"], "user_id": cfg["oauthUserId"],
                     "token_type": "refresh"}

    def introspect(self, raw_body):
        """POST /oauth/v3/token/introspect."""
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(raw_body.decode()).items()}
        token = form.get("token", "")
        with self.lock:
            expiry = self.access.get(token)
            active = (expiry is not None and expiry > now_ms()) or self._refresh_ok(token)
        return 200, {"active": bool(active), "client_id": self.hub.cfg["oauthClientId"],
                     "hub_id": self.hub.cfg["portalId"]}

    def expire(self, token=None):
        """Control API: expire one or every issued access token now."""
        with self.lock:
            past = now_ms() - 1000
            for t in list(self.access):
                if token is None or t == token:
                    self.access[t] = past
            return len(self.access) if token is None else int(token in self.access)

    def revoke_refresh(self):
        """Control API: every refresh token known so far stops working (as
        when the app is uninstalled); a new oauthRefreshToken in the config
        is good again."""
        with self.lock:
            known = set(self.refresh_issued) | {self.hub.cfg["oauthRefreshToken"]}
            self.revoked |= known
            return len(known)
