/* hubsync--0.1.0.sql -- install script of hubsync 0.1.0 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION hubsync" to load this file. \quit

-------------------------------------------------------------------------------
-- Schemas
-------------------------------------------------------------------------------
-- "hubsync" holds the machinery and the SQL API; "hubspot" holds the mirror
-- users read and write.  Both belong to the extension, so DROP EXTENSION
-- removes them.

CREATE SCHEMA hubsync;
CREATE SCHEMA hubspot;
COMMENT ON SCHEMA hubspot IS
  'hubsync mirror of HubSpot CRM objects: read and write these tables; changes sync both ways';
COMMENT ON SCHEMA hubsync IS
  'hubsync machinery and SQL API: outbox, inbox, settings tables, functions and status views';

GRANT USAGE ON SCHEMA hubspot TO PUBLIC;
GRANT USAGE ON SCHEMA hubsync TO PUBLIC;

-------------------------------------------------------------------------------
-- Object model
-------------------------------------------------------------------------------

CREATE TABLE hubsync.object_types (
	object_type          text PRIMARY KEY,       -- mirror table name in schema hubspot
	object_type_id       text NOT NULL UNIQUE,   -- HubSpot objectTypeId, e.g. 0-1
	api_name             text NOT NULL,          -- path segment in /crm/v3/objects/{api_name}
	webhook_prefix       text,                   -- e.g. contact in contact.propertyChange; NULL = object.*
	last_modified_property text NOT NULL,        -- property the poller searches on
	builtin              boolean NOT NULL DEFAULT false,
	paused               boolean NOT NULL DEFAULT false,
	CHECK (object_type ~ '^[a-z_][a-z0-9_]{0,62}$')
);
COMMENT ON TABLE hubsync.object_types IS
  'HubSpot object types hubsync mirrors, one table each in schema hubspot';
COMMENT ON COLUMN hubsync.object_types.object_type IS 'mirror table name in schema hubspot';
COMMENT ON COLUMN hubsync.object_types.object_type_id IS 'HubSpot objectTypeId (0-1, 0-3, 2-123...)';
COMMENT ON COLUMN hubsync.object_types.api_name IS 'name used in HubSpot API paths';
COMMENT ON COLUMN hubsync.object_types.webhook_prefix IS 'prefix of webhook subscription types (contact, deal...); NULL for object.* events';
COMMENT ON COLUMN hubsync.object_types.last_modified_property IS 'last-modified property used by the poller';
COMMENT ON COLUMN hubsync.object_types.builtin IS 'installed by CREATE EXTENSION (not dumped)';
COMMENT ON COLUMN hubsync.object_types.paused IS 'true while hubsync.pause() holds this object type';

INSERT INTO hubsync.object_types
	(object_type, object_type_id, api_name, webhook_prefix, last_modified_property, builtin)
VALUES
	('contacts',          '0-1',   'contacts',          'contact',   'lastmodifieddate',    true),
	('companies',         '0-2',   'companies',         'company',   'hs_lastmodifieddate', true),
	('deals',             '0-3',   'deals',             'deal',      'hs_lastmodifieddate', true),
	('tickets',           '0-5',   'tickets',           'ticket',    'hs_lastmodifieddate', true),
	('products',          '0-7',   'products',          'product',   'hs_lastmodifieddate', true),
	('line_items',        '0-8',   'line_items',        'line_item', 'hs_lastmodifieddate', true),
	('quotes',            '0-14',  'quotes',            NULL,        'hs_lastmodifieddate', true),
	('invoices',          '0-53',  'invoices',          NULL,        'hs_lastmodifieddate', true),
	('subscriptions',     '0-69',  'subscriptions',     NULL,        'hs_lastmodifieddate', true),
	('commerce_payments', '0-101', 'commerce_payments', NULL,        'hs_lastmodifieddate', true);

CREATE TABLE hubsync.property_map (
	object_type   text NOT NULL REFERENCES hubsync.object_types ON DELETE CASCADE,
	property      text NOT NULL,     -- HubSpot property name
	column_name   name NOT NULL,     -- typed column in the mirror table
	sql_type      text NOT NULL CHECK (sql_type IN ('text', 'numeric', 'timestamptz', 'date', 'boolean', 'text[]', 'bigint')),
	builtin       boolean NOT NULL DEFAULT false,
	PRIMARY KEY (object_type, property),
	UNIQUE (object_type, column_name)
);
COMMENT ON TABLE hubsync.property_map IS
  'HubSpot properties kept in typed columns of the mirror tables; all others live in the properties jsonb column';
COMMENT ON COLUMN hubsync.property_map.property IS 'HubSpot property name';
COMMENT ON COLUMN hubsync.property_map.column_name IS 'typed column of the mirror table';
COMMENT ON COLUMN hubsync.property_map.sql_type IS 'SQL type of the column: number is numeric, datetime timestamptz, date date, bool boolean, multi-select text[]';
COMMENT ON COLUMN hubsync.property_map.builtin IS 'installed by CREATE EXTENSION (not dumped)';

INSERT INTO hubsync.property_map (object_type, property, column_name, sql_type, builtin)
SELECT m.t, m.p, m.p, m.ty, true
FROM (VALUES
	('contacts', 'email', 'text'), ('contacts', 'firstname', 'text'),
	('contacts', 'lastname', 'text'), ('contacts', 'phone', 'text'),
	('contacts', 'mobilephone', 'text'), ('contacts', 'company', 'text'),
	('contacts', 'jobtitle', 'text'), ('contacts', 'website', 'text'),
	('contacts', 'city', 'text'), ('contacts', 'country', 'text'),
	('contacts', 'lifecyclestage', 'text'), ('contacts', 'hs_lead_status', 'text'),
	('contacts', 'hubspot_owner_id', 'text'),

	('companies', 'name', 'text'), ('companies', 'domain', 'text'),
	('companies', 'industry', 'text'), ('companies', 'phone', 'text'),
	('companies', 'city', 'text'), ('companies', 'country', 'text'),
	('companies', 'numberofemployees', 'numeric'), ('companies', 'annualrevenue', 'numeric'),
	('companies', 'lifecyclestage', 'text'), ('companies', 'hubspot_owner_id', 'text'),

	('deals', 'dealname', 'text'), ('deals', 'amount', 'numeric'),
	('deals', 'dealstage', 'text'), ('deals', 'pipeline', 'text'),
	('deals', 'closedate', 'timestamptz'), ('deals', 'dealtype', 'text'),
	('deals', 'deal_currency_code', 'text'), ('deals', 'hubspot_owner_id', 'text'),

	('tickets', 'subject', 'text'), ('tickets', 'content', 'text'),
	('tickets', 'hs_pipeline', 'text'), ('tickets', 'hs_pipeline_stage', 'text'),
	('tickets', 'hs_ticket_priority', 'text'), ('tickets', 'hubspot_owner_id', 'text'),

	('products', 'name', 'text'), ('products', 'description', 'text'),
	('products', 'price', 'numeric'), ('products', 'hs_sku', 'text'),
	('products', 'hs_cost_of_goods_sold', 'numeric'),
	('products', 'recurringbillingfrequency', 'text'),

	('line_items', 'name', 'text'), ('line_items', 'quantity', 'numeric'),
	('line_items', 'price', 'numeric'), ('line_items', 'amount', 'numeric'),
	('line_items', 'hs_product_id', 'text'), ('line_items', 'hs_sku', 'text'),
	('line_items', 'recurringbillingfrequency', 'text'),
	('line_items', 'hs_recurring_billing_period', 'text'),

	('quotes', 'hs_title', 'text'), ('quotes', 'hs_expiration_date', 'timestamptz'),
	('quotes', 'hs_status', 'text'), ('quotes', 'hs_quote_amount', 'numeric'),
	('quotes', 'hs_currency', 'text'),

	('invoices', 'hs_invoice_status', 'text'), ('invoices', 'hs_amount_billed', 'numeric'),
	('invoices', 'hs_balance_due', 'numeric'), ('invoices', 'hs_due_date', 'date'),
	('invoices', 'hs_invoice_date', 'date'), ('invoices', 'hs_number', 'text'),
	('invoices', 'hs_currency', 'text'),

	('subscriptions', 'hs_name', 'text'), ('subscriptions', 'hs_status', 'text'),
	('subscriptions', 'hs_recurring_revenue', 'numeric'),
	('subscriptions', 'hs_recurring_billing_frequency', 'text'),
	('subscriptions', 'hs_start_date', 'date'), ('subscriptions', 'hs_end_date', 'date'),
	('subscriptions', 'hs_next_payment_due_date', 'date'),
	('subscriptions', 'hs_currency_code', 'text'),

	('commerce_payments', 'hs_initial_amount', 'numeric'),
	('commerce_payments', 'hs_initiated_date', 'timestamptz'),
	('commerce_payments', 'hs_latest_status', 'text'),
	('commerce_payments', 'hs_payment_method_type', 'text'),
	('commerce_payments', 'hs_processor_type', 'text'),
	('commerce_payments', 'hs_currency_code', 'text'),
	('commerce_payments', 'hs_refunds_amount', 'numeric')
) AS m(t, p, ty);

CREATE TABLE hubsync.field_owners (
	object_type  text NOT NULL REFERENCES hubsync.object_types ON DELETE CASCADE,
	property     text NOT NULL,
	owner        text NOT NULL CHECK (owner IN ('hubspot', 'postgres', 'latest')),
	PRIMARY KEY (object_type, property)
);
COMMENT ON TABLE hubsync.field_owners IS
  'Which side owns a property: hubspot (app SQL cannot change it), postgres (HubSpot edits are reverted), latest (newest wins, the default)';
COMMENT ON COLUMN hubsync.field_owners.owner IS 'hubspot, postgres or latest';

GRANT SELECT ON hubsync.object_types, hubsync.property_map, hubsync.field_owners TO PUBLIC;

-------------------------------------------------------------------------------
-- Secrets
-------------------------------------------------------------------------------

CREATE TABLE hubsync._credentials (
	id                   boolean PRIMARY KEY DEFAULT true CHECK (id),
	access_token         text,
	client_secret        text,
	oauth_client_id      text,
	oauth_client_secret  text,
	oauth_refresh_token  text,
	oauth_access_token   text,
	oauth_expires_at     timestamptz,
	updated_at           timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE hubsync._credentials IS
  'API: private. HubSpot secrets; readable by the extension owner only';
REVOKE ALL ON hubsync._credentials FROM PUBLIC;

CREATE FUNCTION hubsync._credentials_changed() RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_credentials_changed';
COMMENT ON FUNCTION hubsync._credentials_changed() IS
  'API: private. Wakes the workers to reload credentials when the transaction commits';
REVOKE ALL ON FUNCTION hubsync._credentials_changed() FROM PUBLIC;

CREATE FUNCTION hubsync._require_owner(what text) RETURNS void
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

CREATE FUNCTION hubsync.set_credentials(
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
		access_token = COALESCE(EXCLUDED.access_token, c.access_token),
		client_secret = COALESCE(EXCLUDED.client_secret, c.client_secret),
		oauth_client_id = COALESCE(EXCLUDED.oauth_client_id, c.oauth_client_id),
		oauth_client_secret = COALESCE(EXCLUDED.oauth_client_secret, c.oauth_client_secret),
		oauth_refresh_token = COALESCE(EXCLUDED.oauth_refresh_token, c.oauth_refresh_token),
		-- a new refresh token or client invalidates the cached access token
		oauth_access_token = CASE WHEN EXCLUDED.oauth_refresh_token IS NULL
		                           AND EXCLUDED.oauth_client_id IS NULL
		                           AND EXCLUDED.oauth_client_secret IS NULL
		                          THEN c.oauth_access_token END,
		oauth_expires_at = CASE WHEN EXCLUDED.oauth_refresh_token IS NULL
		                         AND EXCLUDED.oauth_client_id IS NULL
		                         AND EXCLUDED.oauth_client_secret IS NULL
		                        THEN c.oauth_expires_at END,
		updated_at = pg_catalog.now();
	PERFORM hubsync._credentials_changed();
END
$$;
COMMENT ON FUNCTION hubsync.set_credentials(text, text, text, text, text) IS
  'Stores HubSpot secrets (private-app token, app client secret, OAuth client and refresh token); NULL keeps a value; takes effect at once';

-- Which secrets are set, never their values.  SECURITY DEFINER so that
-- monitoring roles can see it; it returns booleans and a timestamp only.
CREATE FUNCTION hubsync._credentials_status(
	OUT access_token boolean, OUT client_secret boolean,
	OUT oauth_client_id boolean, OUT oauth_client_secret boolean,
	OUT oauth_refresh_token boolean, OUT oauth_access_token_expires_at timestamptz,
	OUT updated_at timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	SELECT c.access_token IS NOT NULL, c.client_secret IS NOT NULL,
	       c.oauth_client_id IS NOT NULL, c.oauth_client_secret IS NOT NULL,
	       c.oauth_refresh_token IS NOT NULL, c.oauth_expires_at, c.updated_at
	FROM hubsync._credentials c
$$;
COMMENT ON FUNCTION hubsync._credentials_status() IS
  'API: private. Backs hubsync.credentials_status';

CREATE VIEW hubsync.credentials_status AS
	SELECT * FROM hubsync._credentials_status();
COMMENT ON VIEW hubsync.credentials_status IS
  'Which HubSpot credentials are set and when the OAuth access token expires; never a secret value';
GRANT SELECT ON hubsync.credentials_status TO PUBLIC;

-------------------------------------------------------------------------------
-- Outbox, dead letters, inbox, change feed
-------------------------------------------------------------------------------

CREATE TABLE hubsync.outbox (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	object_type      text NOT NULL,
	hubsync_id       uuid NOT NULL,
	hs_object_id     bigint,
	op               text NOT NULL CHECK (op IN ('create', 'update', 'archive')),
	changed          text[] NOT NULL DEFAULT '{}',
	origin           text NOT NULL,
	priority         smallint NOT NULL DEFAULT 0,
	state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'in_flight')),
	attempts         integer NOT NULL DEFAULT 0,
	next_attempt_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	lease_until      timestamptz,
	created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_status      integer,
	last_error       text
);
CREATE INDEX outbox_hubsync_id_idx ON hubsync.outbox (hubsync_id);
COMMENT ON TABLE hubsync.outbox IS
  'Local changes waiting for HubSpot, written in the application''s own transaction';
COMMENT ON COLUMN hubsync.outbox.op IS 'create, update or archive';
COMMENT ON COLUMN hubsync.outbox.hs_object_id IS 'HubSpot id when known at capture (updates, archives)';
COMMENT ON COLUMN hubsync.outbox.changed IS 'names of the changed properties (empty for a create: all of them); values are read from the mirror row when sent';
COMMENT ON COLUMN hubsync.outbox.origin IS 'hubsync.origin of the writing session';
COMMENT ON COLUMN hubsync.outbox.priority IS '0 = real time; higher values are sent later';
COMMENT ON COLUMN hubsync.outbox.state IS 'pending, or in_flight while a worker holds its lease';
COMMENT ON COLUMN hubsync.outbox.lease_until IS 'an in_flight row whose lease passed goes back to pending';

CREATE TABLE hubsync.dead_letters (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	outbox_id        bigint,
	object_type      text NOT NULL,
	hubsync_id       uuid NOT NULL,
	op               text NOT NULL,
	properties       jsonb NOT NULL,
	origin           text NOT NULL,
	attempts         integer NOT NULL,
	status           integer,
	category         text,
	message          text,
	request          jsonb,
	response         jsonb,
	created_at       timestamptz NOT NULL,
	failed_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX dead_letters_hubsync_id_idx ON hubsync.dead_letters (hubsync_id);
COMMENT ON TABLE hubsync.dead_letters IS
  'Changes HubSpot refused for good, with HubSpot''s answer; hubsync.retry_dead_letters() sends them again';

CREATE TABLE hubsync.sync_state (
	hubsync_id       uuid PRIMARY KEY,
	object_type      text NOT NULL,
	remote           jsonb NOT NULL DEFAULT '{}',
	versions         jsonb NOT NULL DEFAULT '{}',
	synced_at        timestamptz
);
COMMENT ON TABLE hubsync.sync_state IS
  'Per record: last values known to be in HubSpot (compare-before-write) and per-property occurredAt of the newest applied HubSpot change';

CREATE TABLE hubsync.inbox (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	dedupe_key       text NOT NULL UNIQUE,
	subscription_type text NOT NULL,
	object_type_id   text,
	object_id        bigint,
	occurred_at      bigint NOT NULL,
	event            jsonb NOT NULL,
	state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'skipped', 'failed')),
	received_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
	applied_at       timestamptz,
	error            text
);
CREATE INDEX inbox_pending_idx ON hubsync.inbox (occurred_at) WHERE state = 'pending';
COMMENT ON TABLE hubsync.inbox IS
  'HubSpot webhook events, stored on receipt and applied in occurredAt order';
REVOKE ALL ON hubsync.inbox FROM PUBLIC;

CREATE TABLE hubsync.changes (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at               timestamptz NOT NULL DEFAULT pg_catalog.now(),
	direction        text NOT NULL CHECK (direction IN ('out', 'in')),
	object_type      text NOT NULL,
	hubsync_id       uuid,
	hs_object_id     bigint,
	op               text NOT NULL,
	origin           text NOT NULL,
	properties       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX changes_hubsync_id_idx ON hubsync.changes (hubsync_id);
COMMENT ON TABLE hubsync.changes IS
  'Change feed, in and out: what changed, where it came from, before and after values';

CREATE TABLE hubsync.conflicts (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at               timestamptz NOT NULL DEFAULT pg_catalog.now(),
	object_type      text NOT NULL,
	hubsync_id       uuid,
	hs_object_id     bigint,
	property         text NOT NULL,
	local_value      text,
	remote_value     text,
	resolution       text NOT NULL
);
COMMENT ON TABLE hubsync.conflicts IS
  'Clashes between a HubSpot edit and the owner of the property, and how they were resolved';

CREATE TABLE hubsync.merges (
	object_type      text NOT NULL,
	merged_id        bigint NOT NULL,
	survivor_id      bigint NOT NULL,
	merged_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (object_type, merged_id)
);
COMMENT ON TABLE hubsync.merges IS
  'Lineage of HubSpot merges: records merged away and the record that absorbed them';

-------------------------------------------------------------------------------
-- Mirror tables
-------------------------------------------------------------------------------

CREATE FUNCTION hubsync._capture() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_capture';
COMMENT ON FUNCTION hubsync._capture() IS
  'API: private. Row trigger on mirror tables: writes changed properties to the outbox';

CREATE FUNCTION hubsync._invalidate_mirror(regclass) RETURNS void
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'hubsync_invalidate_mirror';
COMMENT ON FUNCTION hubsync._invalidate_mirror(regclass) IS
  'API: private. Makes every session reload what it cached about a mirror table';
REVOKE ALL ON FUNCTION hubsync._invalidate_mirror(regclass) FROM PUBLIC;

-- Creates hubspot.<object_type> from hubsync.property_map, with its
-- capture trigger and its place in pg_dump.
CREATE FUNCTION hubsync._create_mirror_table(p_object_type text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cols text;
	tbl text := format('hubspot.%I', p_object_type);
	r record;
BEGIN
	SELECT string_agg(format('%I %s', m.column_name, m.sql_type), ', ' ORDER BY m.column_name)
	INTO cols
	FROM hubsync.property_map m WHERE m.object_type = p_object_type;

	EXECUTE format(
		'CREATE TABLE %s (
			hubsync_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
			hs_object_id bigint UNIQUE,
			%s%s
			properties jsonb NOT NULL DEFAULT ''{}'',
			created_at timestamptz,
			updated_at timestamptz
		)', tbl, cols, CASE WHEN cols IS NULL THEN '' ELSE ',' END);
	EXECUTE format('COMMENT ON TABLE %s IS %L', tbl,
		format('HubSpot %s, synced both ways by hubsync', p_object_type));
	EXECUTE format('COMMENT ON COLUMN %s.hubsync_id IS %L', tbl,
		'local identity; also the unique HubSpot property hubsync_id');
	EXECUTE format('COMMENT ON COLUMN %s.hs_object_id IS %L', tbl,
		'HubSpot record id; NULL until the record exists in HubSpot');
	EXECUTE format('COMMENT ON COLUMN %s.properties IS %L', tbl,
		'every other HubSpot property, as HubSpot sends it');
	EXECUTE format('COMMENT ON COLUMN %s.created_at IS %L', tbl, 'HubSpot createdAt');
	EXECUTE format('COMMENT ON COLUMN %s.updated_at IS %L', tbl, 'HubSpot updatedAt');
	FOR r IN SELECT m.column_name, m.property FROM hubsync.property_map m
	         WHERE m.object_type = p_object_type
	LOOP
		EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', tbl, r.column_name,
			format('HubSpot property %s', r.property));
	END LOOP;
	EXECUTE format(
		'CREATE TRIGGER hubsync_capture AFTER INSERT OR UPDATE OR DELETE ON %s
		 FOR EACH ROW EXECUTE FUNCTION hubsync._capture()', tbl);
	PERFORM pg_catalog.pg_extension_config_dump(tbl::regclass, '');
END
$$;
COMMENT ON FUNCTION hubsync._create_mirror_table(text) IS
  'API: private. Creates the mirror table of an object type from hubsync.property_map';

SELECT hubsync._create_mirror_table(object_type) FROM hubsync.object_types ORDER BY object_type;

CREATE TABLE hubspot.associations (
	from_type        text NOT NULL,
	from_id          bigint,
	to_type          text NOT NULL,
	to_id            bigint,
	type_id          integer NOT NULL,
	category         text NOT NULL DEFAULT 'HUBSPOT_DEFINED',
	label            text,
	from_hubsync_id  uuid,
	to_hubsync_id    uuid,
	UNIQUE NULLS NOT DISTINCT (from_type, from_id, from_hubsync_id, to_type, to_id, to_hubsync_id, type_id, category),
	CHECK (from_id IS NOT NULL OR from_hubsync_id IS NOT NULL),
	CHECK (to_id IS NOT NULL OR to_hubsync_id IS NOT NULL)
);
COMMENT ON TABLE hubspot.associations IS
  'HubSpot v4 associations, one row per direction; an endpoint not yet in HubSpot is named by its hubsync_id';
COMMENT ON COLUMN hubspot.associations.from_type IS 'mirror table name of the source record';
COMMENT ON COLUMN hubspot.associations.from_id IS 'HubSpot id of the source record';
COMMENT ON COLUMN hubspot.associations.to_type IS 'mirror table name of the target record';
COMMENT ON COLUMN hubspot.associations.to_id IS 'HubSpot id of the target record';
COMMENT ON COLUMN hubspot.associations.type_id IS 'HubSpot associationTypeId';
COMMENT ON COLUMN hubspot.associations.category IS 'HUBSPOT_DEFINED, USER_DEFINED or INTEGRATOR_DEFINED';
COMMENT ON COLUMN hubspot.associations.label IS 'association label, NULL when unlabeled';
COMMENT ON COLUMN hubspot.associations.from_hubsync_id IS 'source record by hubsync_id while it is not yet in HubSpot';
COMMENT ON COLUMN hubspot.associations.to_hubsync_id IS 'target record by hubsync_id while it is not yet in HubSpot';

-------------------------------------------------------------------------------
-- Ownership
-------------------------------------------------------------------------------

CREATE FUNCTION hubsync.set_owner(object_type text, property text, owner text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hubsync._require_owner('change field owners');
	IF owner IS NULL OR owner NOT IN ('hubspot', 'postgres', 'latest') THEN
		RAISE EXCEPTION 'invalid owner "%"', owner
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'The owner is hubspot, postgres or latest.';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM hubsync.object_types t WHERE t.object_type = set_owner.object_type) THEN
		RAISE EXCEPTION 'unknown object type "%"', object_type
			USING ERRCODE = 'undefined_object',
			      HINT = 'See hubsync.object_types for the object types hubsync mirrors.';
	END IF;
	INSERT INTO hubsync.field_owners AS f VALUES (object_type, property, owner)
	ON CONFLICT ON CONSTRAINT field_owners_pkey DO UPDATE SET owner = EXCLUDED.owner;
	PERFORM hubsync._invalidate_mirror(pg_catalog.format('hubspot.%I', object_type)::regclass);
END
$$;
COMMENT ON FUNCTION hubsync.set_owner(text, text, text) IS
  'Declares which side owns a property: hubspot, postgres or latest (newest change wins)';

-------------------------------------------------------------------------------
-- Status
-------------------------------------------------------------------------------

CREATE FUNCTION hubsync.worker_status(
	OUT worker text, OUT pid integer, OUT state text, OUT started_at timestamptz)
RETURNS SETOF record
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_worker_status';
COMMENT ON FUNCTION hubsync.worker_status() IS
  'The hubsync background workers: pid, state and start time';

CREATE VIEW hubsync.status AS
SELECT t.object_type,
       t.paused,
       count(o.id) FILTER (WHERE o.state = 'pending')   AS pending,
       count(o.id) FILTER (WHERE o.state = 'in_flight') AS in_flight,
       pg_catalog.now() - min(o.created_at)             AS oldest_pending_age,
       (SELECT count(*) FROM hubsync.dead_letters d WHERE d.object_type = t.object_type) AS dead_letters
FROM hubsync.object_types t
LEFT JOIN hubsync.outbox o ON o.object_type = t.object_type
GROUP BY t.object_type, t.paused;
COMMENT ON VIEW hubsync.status IS
  'One row per object type: changes pending and in flight, age of the oldest, dead letters';

-------------------------------------------------------------------------------
-- pg_dump: keep the rows of these tables
-------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('hubsync.object_types', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('hubsync.property_map', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('hubsync.field_owners', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync._credentials', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.sync_state', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.inbox', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.changes', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.conflicts', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.merges', '');
SELECT pg_catalog.pg_extension_config_dump('hubspot.associations', '');
-- identity sequences too, or restored rows would clash with new ids
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.outbox', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.dead_letters', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.inbox', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.changes', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.conflicts', 'id')::regclass, '');
