-------------------------------------------------------------------------------
-- Credentials status
-------------------------------------------------------------------------------
-- Which secrets are set, never their values.

CREATE OR REPLACE VIEW hubsync.credentials_status AS
	SELECT * FROM hubsync._credentials_status();
COMMENT ON VIEW hubsync.credentials_status IS
  'Which HubSpot credentials are set, the authentication state (ok, refused, refresh_failed, missing), when the OAuth access token was refreshed and expires, and why a refresh was refused; never a secret value';
