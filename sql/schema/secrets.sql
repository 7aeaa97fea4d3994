-------------------------------------------------------------------------------
-- Secrets
-------------------------------------------------------------------------------
-- HubSpot credentials, readable by the extension owner only.

CREATE TABLE hubsync._credentials (
	id                   boolean PRIMARY KEY DEFAULT true CHECK (id),
	access_token         text,
	client_secret        text,
	oauth_client_id      text,
	oauth_client_secret  text,
	oauth_refresh_token  text,
	oauth_access_token   text,
	oauth_expires_at     timestamptz,
	updated_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
	oauth_refreshed_at   timestamptz,
	oauth_refresh_error  text
);
COMMENT ON TABLE hubsync._credentials IS
  'API: private. HubSpot secrets; readable by the extension owner only';
