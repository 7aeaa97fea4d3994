-------------------------------------------------------------------------------
-- Credentials
-------------------------------------------------------------------------------
-- Storing HubSpot secrets, the owner check, the authentication state and
-- what hubsync.credentials_status shows.

CREATE OR REPLACE FUNCTION hubsync._credentials_changed() RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_credentials_changed';
COMMENT ON FUNCTION hubsync._credentials_changed() IS
  'API: private. Wakes the workers to reload credentials when the transaction commits';

CREATE OR REPLACE FUNCTION hubsync._require_owner(what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ext_owner name;
BEGIN
	SELECT r.rolname INTO ext_owner
	FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_roles r ON r.oid = e.extowner
	WHERE e.extname = 'hubsync';
	IF NOT pg_catalog.pg_has_role(current_user, ext_owner, 'MEMBER') THEN
		RAISE EXCEPTION 'permission denied to %', what
			USING ERRCODE = 'insufficient_privilege',
			      HINT = pg_catalog.format('Only the owner of extension hubsync (role %I) or a member of it may do this.', ext_owner);
	END IF;
END
$$;
COMMENT ON FUNCTION hubsync._require_owner(text) IS
  'API: private. Raises insufficient_privilege unless the caller is the extension owner';

CREATE OR REPLACE FUNCTION hubsync.set_credentials(
	access_token         text DEFAULT NULL,
	client_secret        text DEFAULT NULL,
	oauth_client_id      text DEFAULT NULL,
	oauth_client_secret  text DEFAULT NULL,
	oauth_refresh_token  text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hubsync._require_owner('set hubsync credentials');
	INSERT INTO hubsync._credentials AS c
		(access_token, client_secret, oauth_client_id, oauth_client_secret, oauth_refresh_token)
	VALUES
		(set_credentials.access_token, set_credentials.client_secret,
		 set_credentials.oauth_client_id, set_credentials.oauth_client_secret,
		 set_credentials.oauth_refresh_token)
	ON CONFLICT (id) DO UPDATE SET
		access_token = CASE WHEN EXCLUDED.access_token = '' THEN NULL ELSE COALESCE(EXCLUDED.access_token, c.access_token) END,
		client_secret = CASE WHEN EXCLUDED.client_secret = '' THEN NULL ELSE COALESCE(EXCLUDED.client_secret, c.client_secret) END,
		oauth_client_id = CASE WHEN EXCLUDED.oauth_client_id = '' THEN NULL ELSE COALESCE(EXCLUDED.oauth_client_id, c.oauth_client_id) END,
		oauth_client_secret = CASE WHEN EXCLUDED.oauth_client_secret = '' THEN NULL ELSE COALESCE(EXCLUDED.oauth_client_secret, c.oauth_client_secret) END,
		oauth_refresh_token = CASE WHEN EXCLUDED.oauth_refresh_token = '' THEN NULL ELSE COALESCE(EXCLUDED.oauth_refresh_token, c.oauth_refresh_token) END,
		-- a new refresh token or client invalidates the cached access token
		oauth_access_token = CASE WHEN EXCLUDED.oauth_refresh_token IS NULL
		                           AND EXCLUDED.oauth_client_id IS NULL
		                           AND EXCLUDED.oauth_client_secret IS NULL
		                          THEN c.oauth_access_token END,
		oauth_expires_at = CASE WHEN EXCLUDED.oauth_refresh_token IS NULL
		                         AND EXCLUDED.oauth_client_id IS NULL
		                         AND EXCLUDED.oauth_client_secret IS NULL
		                        THEN c.oauth_expires_at END,
		-- and lifts the pause a refused refresh token caused
		oauth_refreshed_at = CASE WHEN EXCLUDED.oauth_refresh_token IS NULL
		                           AND EXCLUDED.oauth_client_id IS NULL
		                           AND EXCLUDED.oauth_client_secret IS NULL
		                          THEN c.oauth_refreshed_at END,
		oauth_refresh_error = CASE WHEN EXCLUDED.oauth_refresh_token IS NULL
		                            AND EXCLUDED.oauth_client_id IS NULL
		                            AND EXCLUDED.oauth_client_secret IS NULL
		                           THEN c.oauth_refresh_error END,
		updated_at = pg_catalog.now();
	-- '' removes a value, on the first call too
	UPDATE hubsync._credentials AS c SET
		access_token = NULLIF(c.access_token, ''), client_secret = NULLIF(c.client_secret, ''),
		oauth_client_id = NULLIF(c.oauth_client_id, ''), oauth_client_secret = NULLIF(c.oauth_client_secret, ''),
		oauth_refresh_token = NULLIF(c.oauth_refresh_token, '');
	PERFORM hubsync._credentials_changed();
END
$$;
COMMENT ON FUNCTION hubsync.set_credentials(text, text, text, text, text) IS
  'Stores HubSpot secrets (private-app token, app client secret, OAuth client and refresh token); NULL keeps a value, '''' removes it; takes effect at once';

CREATE OR REPLACE FUNCTION hubsync._auth_state() RETURNS text
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hubsync_auth_state';
COMMENT ON FUNCTION hubsync._auth_state() IS
  'API: private. ok; refused after HubSpot answered 401; refresh_failed after HubSpot refused the OAuth refresh token (sync paused until credentials change)';

-- Which secrets are set, never their values.  SECURITY DEFINER so that
-- monitoring roles can see it; it returns booleans, timestamps, the
-- authentication state and a refresh error made of HubSpot's status words
-- only (never a token).  Always one row: before set_credentials (and after
-- a restore, as pg_dump leaves secrets out) every secret shows false and
-- auth says 'missing'.
CREATE OR REPLACE FUNCTION hubsync._credentials_status(
	OUT access_token boolean, OUT client_secret boolean,
	OUT oauth_client_id boolean, OUT oauth_client_secret boolean,
	OUT oauth_refresh_token boolean, OUT oauth_access_token_expires_at timestamptz,
	OUT updated_at timestamptz, OUT auth text,
	OUT oauth_refreshed_at timestamptz, OUT oauth_refresh_error text)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT c.access_token IS NOT NULL, c.client_secret IS NOT NULL,
	       c.oauth_client_id IS NOT NULL, c.oauth_client_secret IS NOT NULL,
	       c.oauth_refresh_token IS NOT NULL, c.oauth_expires_at, c.updated_at,
	       CASE WHEN c.oauth_refresh_error IS NOT NULL AND c.access_token IS NULL
	            THEN 'refresh_failed'
	            WHEN c.access_token IS NULL
	             AND (c.oauth_client_id IS NULL OR c.oauth_client_secret IS NULL)
	            THEN 'missing'
	            ELSE hubsync._auth_state() END,
	       c.oauth_refreshed_at, c.oauth_refresh_error
	FROM (VALUES (true)) one (id)
	LEFT JOIN hubsync._credentials c ON c.id = one.id
$$;
COMMENT ON FUNCTION hubsync._credentials_status() IS
  'API: private. Backs hubsync.credentials_status';
