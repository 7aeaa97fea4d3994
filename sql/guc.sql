-- guc: every hubsync setting, its default, unit, context and bounds, and
-- refusals of bad values with a clear message.

SELECT name, setting, unit, context, vartype, min_val, max_val
FROM pg_settings WHERE name LIKE 'hubsync.%' ORDER BY name;

-- every setting has a description
SELECT name FROM pg_settings WHERE name LIKE 'hubsync.%' AND coalesce(short_desc, '') = '';

-- origin: user-settable, reserved prefix and length checked
SET hubsync.origin = 'billing';
SHOW hubsync.origin;
SET hubsync.origin = 'hubspot';
SET hubsync.origin = 'HubSpot-import';
SET hubsync.origin = '';
SET hubsync.origin = 'a123456789b123456789c123456789d123456789e123456789f123456789g1234';
SHOW hubsync.origin;
RESET hubsync.origin;

-- max_changes_per_xact: user-settable, not negative
SET hubsync.max_changes_per_xact = 0;
SET hubsync.max_changes_per_xact = -1;
SET hubsync.max_changes_per_xact = 'many';
RESET hubsync.max_changes_per_xact;

-- server-wide settings cannot be set in a session
SET hubsync.batch_size = 50;
SET hubsync.database = 'other';

-- a misspelt setting in the reserved prefix is refused
SET hubsync.batchsize = 50;

-- bounds and formats, checked by ALTER SYSTEM without writing anything
ALTER SYSTEM SET hubsync.batch_size = 101;
ALTER SYSTEM SET hubsync.batch_size = 0;
ALTER SYSTEM SET hubsync.rate_limit = 1001;
ALTER SYSTEM SET hubsync.rate_limit = 0;
ALTER SYSTEM SET hubsync.webhook_port = 70000;
ALTER SYSTEM SET hubsync.api_base_url = 'ftp://example.com';
ALTER SYSTEM SET hubsync.api_base_url = 'http://api.example.com';
ALTER SYSTEM SET hubsync.webhook_public_url = 'hooks.example.com/hubspot';
ALTER SYSTEM SET hubsync.webhook_listen_address = '';
ALTER SYSTEM SET hubsync.reconcile_at = '25:00';
ALTER SYSTEM SET hubsync.reconcile_at = '6am';
ALTER SYSTEM SET hubsync.request_timeout = '10 parsecs';
ALTER SYSTEM SET hubsync.poll_interval = '0';
ALTER SYSTEM SET hubsync.enabled = 'maybe';
ALTER SYSTEM SET hubsync.account_timezone = 'Mars/Olympus_Mons';
ALTER SYSTEM SET hubsync.account_timezone = '';

-- units: time settings take PostgreSQL units
ALTER SYSTEM SET hubsync.batch_linger = '200ms';
ALTER SYSTEM SET hubsync.poll_interval = '1h';
ALTER SYSTEM SET hubsync.request_timeout = '30s';
ALTER SYSTEM SET hubsync.webhook_max_body = '2MB';
ALTER SYSTEM SET hubsync.reconcile_at = '';
ALTER SYSTEM SET hubsync.account_timezone = 'America/New_York';
ALTER SYSTEM RESET hubsync.batch_linger;
ALTER SYSTEM RESET hubsync.poll_interval;
ALTER SYSTEM RESET hubsync.request_timeout;
ALTER SYSTEM RESET hubsync.webhook_max_body;
ALTER SYSTEM RESET hubsync.reconcile_at;
ALTER SYSTEM RESET hubsync.account_timezone;

-- no setting holds a secret (a *_file setting holds a path, like ssl_key_file)
SELECT count(*) AS secret_like_settings FROM pg_settings
WHERE name LIKE 'hubsync.%' AND (name LIKE '%token%' OR name LIKE '%secret%' OR name LIKE '%key%')
  AND name NOT LIKE '%\_file';
