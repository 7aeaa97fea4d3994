-- credentials: only the extension owner can set or read secrets; everyone
-- else sees which are set, never a value.

CREATE ROLE hubsync_regress_app LOGIN;
GRANT USAGE ON SCHEMA hubspot TO hubsync_regress_app;

SELECT hubsync.set_credentials(access_token => 'pat-na1-regress-secret-token',
                               client_secret => 'regress-client-secret');
SELECT access_token, client_secret, oauth_client_id, oauth_refresh_token
FROM hubsync.credentials_status;

-- NULL leaves a value as it was
SELECT hubsync.set_credentials(oauth_client_id => 'regress-oauth-client');
SELECT access_token, client_secret, oauth_client_id FROM hubsync.credentials_status;
SELECT access_token = 'pat-na1-regress-secret-token' AS token_kept FROM hubsync._credentials;

SET ROLE hubsync_regress_app;
-- refused: reading the table, setting credentials, calling the private helpers
SELECT * FROM hubsync._credentials;
SELECT hubsync.set_credentials(access_token => 'pat-stolen');
SELECT hubsync._credentials_changed();
-- allowed: which are set
SELECT access_token, client_secret FROM hubsync.credentials_status;

-- no view, table or function result readable by this role holds a secret
DO $$
DECLARE
	r record;
	hits int := 0;
	n int;
BEGIN
	FOR r IN
		SELECT c.oid::regclass AS rel
		FROM pg_class c
		WHERE c.relnamespace IN ('hubsync'::regnamespace, 'hubspot'::regnamespace)
		  AND c.relkind IN ('r', 'v')
		  AND has_table_privilege(c.oid, 'SELECT')
	LOOP
		EXECUTE format('SELECT count(*) FROM %s t WHERE t::text LIKE ''%%regress-secret%%'' OR t::text LIKE ''%%regress-client-secret%%''', r.rel) INTO n;
		hits := hits + n;
	END LOOP;
	RAISE NOTICE 'readable relations showing a secret: %', hits;
END $$;
SELECT count(*) AS settings_showing_a_secret FROM pg_settings WHERE setting LIKE '%regress%secret%';
RESET ROLE;

-- all-NULL arguments change nothing
SELECT hubsync.set_credentials(access_token => NULL, client_secret => NULL);
SELECT access_token, client_secret FROM hubsync.credentials_status;

DELETE FROM hubsync._credentials;
DROP OWNED BY hubsync_regress_app;
DROP ROLE hubsync_regress_app;
