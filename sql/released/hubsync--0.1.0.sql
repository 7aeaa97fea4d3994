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
	solo             boolean NOT NULL DEFAULT false,
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
COMMENT ON COLUMN hubsync.outbox.priority IS 'reserved for a later release (always 0): the outbox is sent in commit order';
COMMENT ON COLUMN hubsync.outbox.state IS 'pending, or in_flight while a worker holds its lease';
COMMENT ON COLUMN hubsync.outbox.solo IS 'send in a batch of its own (after HubSpot refused a whole batch)';
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
	hs_object_id     bigint,
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
-- Push machinery (called by the push worker)
-------------------------------------------------------------------------------

-- Every property of a mirror row (given as to_jsonb(row)) as HubSpot wire
-- strings: numeric as its decimal text, timestamptz as ISO 8601 UTC with
-- ms, date as YYYY-MM-DD, boolean as true/false, text[] joined with ';',
-- NULL as ''.  In C (src/wire.c): it runs for every pushed record.
CREATE FUNCTION hubsync._wire_row(p_object_type text, r jsonb) RETURNS jsonb
LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'hubsync_wire_row';
COMMENT ON FUNCTION hubsync._wire_row(text, jsonb) IS
  'API: private. All properties of a mirror row as HubSpot wire strings';

-- The current mirror row of a record, as (hs_object_id, wire properties).
CREATE FUNCTION hubsync._mirror_wire(p_object_type text, p_hubsync_id uuid,
	OUT found boolean, OUT hs_object_id bigint, OUT wire jsonb)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r jsonb;
BEGIN
	EXECUTE format('SELECT to_jsonb(t) FROM hubspot.%I t WHERE t.hubsync_id = $1', p_object_type)
		INTO r USING p_hubsync_id;
	found := r IS NOT NULL;
	hs_object_id := (r ->> 'hs_object_id')::bigint;
	wire := CASE WHEN r IS NULL THEN NULL ELSE hubsync._wire_row(p_object_type, r) END;
END
$$;
COMMENT ON FUNCTION hubsync._mirror_wire(text, uuid) IS
  'API: private. A mirror row''s HubSpot id and wire properties';

-- What to send for one record: for a create every set property, for an
-- update the changed ones (a removed jsonb key as ''); either way only
-- values HubSpot does not already have (compare-before-write).
CREATE FUNCTION hubsync._props_to_send(wire jsonb, changed text[], remote jsonb,
	is_create boolean) RETURNS jsonb
LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'hubsync_props_to_send';
COMMENT ON FUNCTION hubsync._props_to_send(jsonb, text[], jsonb, boolean) IS
  'API: private. The properties of a record a push must send';

-- Claim up to p_limit records' pending changes for sending: rows of one
-- record coalesce into one push, records with a push in flight wait, a
-- record in back-off waits with all its rows.  Returns one row per record
-- with what to send:
--   kind 'upsert'  batch upsert by hubsync_id (create, or update of a record
--                  whose HubSpot id is not known yet)
--   kind 'update'  batch update by HubSpot id
--   kind 'archive' batch archive by HubSpot id
-- Records with nothing left to send (compare-before-write, or created and
-- deleted before ever being sent) are finished here and not returned.
-- Every step is driven by the primary key or the hubsync_id index, so a
-- claim costs the same with ten or ten million changes queued.  Right
-- after a bulk load the outbox's statistics still say it is nearly empty
-- and the planner would sort the whole table to find the oldest rows;
-- step 1 is planned with enable_seqscan off to keep it on the primary key.
CREATE FUNCTION hubsync._claim(p_limit integer, p_lease_seconds integer)
RETURNS TABLE (hubsync_id uuid, object_type text, api_name text, kind text,
               hs_object_id bigint, props jsonb, outbox_ids bigint[],
               attempts integer, first_created timestamptz, solo boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cand uuid[];
	agg jsonb;
	ot record;
	r record;
	known_id bigint;
	sent jsonb;
	finished bigint[] := '{}';
BEGIN
	-- 1. the records of the oldest pending changes
	PERFORM set_config('enable_seqscan', 'off', true);
	SELECT array_agg(s.hubsync_id ORDER BY s.first_id) INTO cand
	FROM (SELECT c.hubsync_id, min(c.id) AS first_id
	      FROM (SELECT o.id, o.hubsync_id
	            FROM hubsync.outbox o
	            WHERE o.state = 'pending' AND o.next_attempt_at <= now()
	            ORDER BY o.id
	            LIMIT p_limit * 4
	            FOR UPDATE SKIP LOCKED) c
	      GROUP BY c.hubsync_id) s;
	PERFORM set_config('enable_seqscan', 'on', true);
	IF cand IS NULL THEN
		RETURN;
	END IF;

	-- 2. without those in flight, in back-off or of a paused object type
	SELECT array_agg(u.id ORDER BY u.ord) INTO cand
	FROM (SELECT x.id, x.ord
	      FROM unnest(cand) WITH ORDINALITY AS x(id, ord)
	      WHERE NOT EXISTS (
	              SELECT 1 FROM hubsync.outbox i
	              LEFT JOIN hubsync.object_types t ON t.object_type = i.object_type
	              WHERE i.hubsync_id = x.id
	                AND (i.state = 'in_flight' OR i.next_attempt_at > now() OR t.paused))
	      ORDER BY x.ord
	      LIMIT p_limit) u;
	IF cand IS NULL THEN
		RETURN;
	END IF;

	-- 3. lease every pending change of those records, one summary each
	WITH claimed AS (
		UPDATE hubsync.outbox o
		SET state = 'in_flight',
		    lease_until = now() + make_interval(secs => p_lease_seconds),
		    attempts = o.attempts + 1
		WHERE o.hubsync_id = ANY (cand) AND o.state = 'pending'
		RETURNING o.*
	)
	SELECT jsonb_agg(to_jsonb(s)) INTO agg
	FROM (SELECT c.hubsync_id,
	             min(c.object_type) AS object_type,
	             array_agg(c.id ORDER BY c.id) AS ids,
	             array_agg(c.id ORDER BY c.id) FILTER (WHERE c.op = 'archive') AS archive_ids,
	             bool_or(c.op = 'create') AS has_create,
	             bool_or(c.op = 'create' AND c.attempts > 1) AS create_tried,
	             bool_or(c.op = 'archive') AS has_archive,
	             max(c.hs_object_id) AS hs_object_id,
	             array_remove(array_agg(DISTINCT x), NULL) AS changed,
	             max(c.attempts) AS attempts,
	             min(c.created_at) AS first_created,
	             bool_or(c.solo) AS solo
	      FROM claimed c LEFT JOIN LATERAL unnest(c.changed) x ON true
	      GROUP BY c.hubsync_id) s;
	IF agg IS NULL THEN
		RETURN;
	END IF;

	-- 4. per object type, the current mirror rows and what HubSpot has
	FOR ot IN
		SELECT DISTINCT t.object_type, t.api_name
		FROM jsonb_array_elements(agg) e
		JOIN hubsync.object_types t ON t.object_type = e ->> 'object_type'
	LOOP
		FOR r IN EXECUTE format(
			'SELECT c.*, t.hubsync_id IS NOT NULL AS row_found, t.hs_object_id AS row_hs_id,
			        s.hs_object_id AS state_hs_id,
			        CASE WHEN t.hubsync_id IS NOT NULL AND NOT c.has_archive
			             THEN hubsync._props_to_send(hubsync._wire_row(%L, to_jsonb(t)),
			                                         coalesce(c.changed, ''{}''),
			                                         coalesce(s.remote, ''{}''), c.has_create)
			        END AS sent
			 FROM jsonb_to_recordset($1) AS c(hubsync_id uuid, object_type text, ids bigint[],
			      archive_ids bigint[], has_create boolean, create_tried boolean, has_archive boolean, hs_object_id bigint,
			      changed text[], attempts integer, first_created timestamptz, solo boolean)
			 LEFT JOIN hubspot.%I t ON t.hubsync_id = c.hubsync_id
			 LEFT JOIN hubsync.sync_state s ON s.hubsync_id = c.hubsync_id
			 WHERE c.object_type = %L
			 ORDER BY c.ids[1]', ot.object_type, ot.object_type, ot.object_type)
			USING agg
		LOOP
			hubsync_id := r.hubsync_id;
			object_type := r.object_type;
			api_name := ot.api_name;
			outbox_ids := r.ids;
			attempts := r.attempts;
			first_created := r.first_created;
			solo := coalesce(r.solo, false);
			known_id := coalesce(r.row_hs_id, r.state_hs_id, r.hs_object_id);

			IF r.has_archive THEN
				IF known_id IS NULL THEN
					-- never reached HubSpot (or created and deleted before it
					-- left): nothing to archive
					IF NOT r.create_tried THEN
						finished := finished || r.ids;
						CONTINUE;
					END IF;
					-- a create that may have been applied: upsert it first;
					-- the archive waits, and follows once the id is known
					UPDATE hubsync.outbox o
					SET state = 'pending', lease_until = NULL, attempts = greatest(o.attempts - 1, 0)
					WHERE o.id = ANY (r.archive_ids);
					outbox_ids := ARRAY(SELECT unnest(r.ids) EXCEPT SELECT unnest(r.archive_ids));
					kind := 'upsert';
					hs_object_id := NULL;
					props := jsonb_build_object('hubsync_id', r.hubsync_id::text);
					RETURN NEXT;
					CONTINUE;
				ELSE
					kind := 'archive';
					hs_object_id := known_id;
					props := NULL;
					RETURN NEXT;
					CONTINUE;
				END IF;
			END IF;

			IF NOT r.row_found AND NOT r.has_archive THEN
				-- the row is gone; its archive is a later change
				finished := finished || r.ids;
				CONTINUE;
			END IF;
			sent := coalesce(r.sent, '{}');
			IF sent = '{}' AND NOT (r.has_create AND known_id IS NULL) THEN
				finished := finished || r.ids;
				CONTINUE;
			END IF;

			hs_object_id := known_id;
			IF known_id IS NULL THEN
				kind := 'upsert';
				props := sent || jsonb_build_object('hubsync_id', r.hubsync_id::text);
			ELSE
				kind := 'update';
				-- a create linked to an existing HubSpot record also claims it
				props := CASE WHEN r.has_create
				              THEN sent || jsonb_build_object('hubsync_id', r.hubsync_id::text)
				              ELSE sent END;
			END IF;
			RETURN NEXT;
		END LOOP;
	END LOOP;

	IF finished <> '{}' THEN
		DELETE FROM hubsync.outbox o WHERE o.id = ANY (finished);
	END IF;
END
$$;
COMMENT ON FUNCTION hubsync._claim(integer, integer) IS
  'API: private. Push worker: claims pending changes, coalesced per record, with what to send';

-- Leases of a crashed or restarted worker run out: back to pending.
CREATE FUNCTION hubsync._release_expired_leases(p_all boolean DEFAULT false) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	WITH r AS (
		UPDATE hubsync.outbox SET state = 'pending', lease_until = NULL
		WHERE state = 'in_flight' AND (p_all OR lease_until < now())
		RETURNING 1)
	SELECT count(*) FROM r
$$;
COMMENT ON FUNCTION hubsync._release_expired_leases(boolean) IS
  'API: private. Returns in-flight changes whose lease ran out to pending';

-- HubSpot accepted a record's push.
CREATE FUNCTION hubsync._push_done(p_hubsync_id uuid, p_object_type text, p_kind text,
	p_hs_object_id bigint, p_sent jsonb, p_outbox_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_origin text;
BEGIN
	SELECT string_agg(DISTINCT o.origin, ',') INTO v_origin
	FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids);
	DELETE FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids);
	IF p_kind = 'archive' THEN
		DELETE FROM hubsync.sync_state s WHERE s.hubsync_id = p_hubsync_id;
	ELSE
		INSERT INTO hubsync.sync_state AS s (hubsync_id, object_type, hs_object_id, remote, synced_at)
		VALUES (p_hubsync_id, p_object_type, p_hs_object_id, coalesce(p_sent, '{}') - 'hubsync_id', now())
		ON CONFLICT ON CONSTRAINT sync_state_pkey DO UPDATE
		SET remote = s.remote || EXCLUDED.remote,
		    hs_object_id = coalesce(EXCLUDED.hs_object_id, s.hs_object_id),
		    synced_at = now();
		IF p_hs_object_id IS NOT NULL THEN
			-- not a property change: the capture trigger enqueues nothing
			EXECUTE format('UPDATE hubspot.%I SET hs_object_id = $1 WHERE hubsync_id = $2 AND hs_object_id IS DISTINCT FROM $1',
			               p_object_type)
			USING p_hs_object_id, p_hubsync_id;
		END IF;
	END IF;
	INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties)
	VALUES ('out', p_object_type, p_hubsync_id, p_hs_object_id, p_kind, coalesce(v_origin, 'app'),
	        coalesce(p_sent, '{}'));
END
$$;
COMMENT ON FUNCTION hubsync._push_done(uuid, text, text, bigint, jsonb, bigint[]) IS
  'API: private. Records a push HubSpot accepted';

-- A push to try again later.  p_count_attempt false for 429/401: waiting
-- for quota or credentials is not a failed attempt.  p_solo: send the
-- record in a batch of its own from now on.
CREATE FUNCTION hubsync._push_retry(p_outbox_ids bigint[], p_status integer, p_error text,
	p_delay_ms bigint, p_count_attempt boolean, p_solo boolean) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE hubsync.outbox o
	SET state = 'pending', lease_until = NULL, solo = o.solo OR p_solo,
	    next_attempt_at = now() + make_interval(secs => p_delay_ms / 1000.0),
	    attempts = CASE WHEN p_count_attempt THEN o.attempts ELSE greatest(o.attempts - 1, 0) END,
	    last_status = p_status, last_error = p_error
	WHERE o.id = ANY (p_outbox_ids)
$$;
COMMENT ON FUNCTION hubsync._push_retry(bigint[], integer, text, bigint, boolean, boolean) IS
  'API: private. Schedules a push for another attempt';

-- HubSpot refused a push for good: keep it with the reason.
CREATE FUNCTION hubsync._push_dead(p_outbox_ids bigint[], p_status integer, p_category text,
	p_message text, p_request jsonb, p_response jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	d record;
BEGIN
	SELECT min(o.object_type) AS object_type, (array_agg(o.hubsync_id))[1] AS hubsync_id,
	       string_agg(DISTINCT o.op, ',') AS op, string_agg(DISTINCT o.origin, ',') AS origin,
	       max(o.attempts) AS attempts, min(o.created_at) AS created_at,
	       (SELECT array_agg(DISTINCT x) FROM hubsync.outbox o2, unnest(o2.changed) x
	         WHERE o2.id = ANY (p_outbox_ids)) AS changed
	INTO d
	FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids);
	IF d.object_type IS NULL THEN
		RETURN;
	END IF;
	INSERT INTO hubsync.dead_letters
		(outbox_id, object_type, hubsync_id, op, properties, origin, attempts, status,
		 category, message, request, response, created_at)
	VALUES (p_outbox_ids[1], d.object_type, d.hubsync_id, d.op,
	        coalesce(p_request -> 'properties', to_jsonb(coalesce(d.changed, '{}'::text[]))),
	        d.origin, d.attempts, p_status, p_category, p_message, p_request, p_response, d.created_at);
	DELETE FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids);
	PERFORM pg_notify('hubsync_alerts', jsonb_build_object(
		'alert', 'dead_letter', 'object_type', d.object_type, 'hubsync_id', d.hubsync_id,
		'status', p_status, 'category', p_category, 'message', left(p_message, 200))::text);
END
$$;
COMMENT ON FUNCTION hubsync._push_dead(bigint[], integer, text, text, jsonb, jsonb) IS
  'API: private. Moves a push HubSpot refused for good to hubsync.dead_letters';

-- A contact whose email HubSpot already has: link the row to that record;
-- the pending change is then sent as an update of it.
CREATE FUNCTION hubsync._push_link(p_hubsync_id uuid, p_object_type text, p_hs_object_id bigint,
	p_outbox_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	INSERT INTO hubsync.sync_state AS s (hubsync_id, object_type, hs_object_id)
	VALUES (p_hubsync_id, p_object_type, p_hs_object_id)
	ON CONFLICT ON CONSTRAINT sync_state_pkey DO UPDATE SET hs_object_id = EXCLUDED.hs_object_id;
	EXECUTE format('UPDATE hubspot.%I SET hs_object_id = $1 WHERE hubsync_id = $2', p_object_type)
	USING p_hs_object_id, p_hubsync_id;
	UPDATE hubsync.outbox o SET state = 'pending', lease_until = NULL,
	       attempts = greatest(o.attempts - 1, 0), next_attempt_at = now(),
	       last_status = 409, last_error = 'linked to existing HubSpot record ' || p_hs_object_id
	WHERE o.id = ANY (p_outbox_ids);
END
$$;
COMMENT ON FUNCTION hubsync._push_link(uuid, text, bigint, bigint[]) IS
  'API: private. Links a new contact to the HubSpot record that already has its email';

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
-- SQL API: idempotent upsert, read-after-write, dead letters, pause
-------------------------------------------------------------------------------

-- The mirror table of an object type, or a clear error.
CREATE FUNCTION hubsync._mirror_table(p_object_type text) RETURNS regclass
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM hubsync.object_types t WHERE t.object_type = p_object_type) THEN
		RAISE EXCEPTION 'unknown object type "%"', p_object_type
			USING ERRCODE = 'undefined_object',
			      HINT = 'See hubsync.object_types for the object types hubsync mirrors, or add one with hubsync.track_object().';
	END IF;
	RETURN format('hubspot.%I', p_object_type)::regclass;
END
$$;
COMMENT ON FUNCTION hubsync._mirror_table(text) IS
  'API: private. The mirror table of an object type, or an error with a hint';

-- Insert or update the mirror row whose key_property equals key_value.
-- Idempotent: the same call twice leaves one row and enqueues at most one
-- push (the second changes nothing, so the capture trigger sends nothing).
CREATE FUNCTION hubsync.upsert(object_type text, key_property text, key_value text,
	properties jsonb DEFAULT '{}') RETURNS uuid
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	tbl regclass := hubsync._mirror_table(object_type);
	key_col name;
	key_type text;
	found_id uuid;
	sets text := '';
	extra jsonb := '{}';
	cols text := '';
	vals text := '';
	e record;
	m record;
BEGIN
	IF key_property IS NULL OR key_value IS NULL THEN
		RAISE EXCEPTION 'hubsync.upsert needs a key property and a key value'
			USING ERRCODE = 'null_value_not_allowed',
			      HINT = 'For example: hubsync.upsert(''contacts'', ''email'', ''ann@example.com'', ''{"firstname": "Ann"}'').';
	END IF;
	IF properties IS NULL OR jsonb_typeof(properties) <> 'object' THEN
		RAISE EXCEPTION 'properties must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'Pass properties as ''{"name": "value", ...}''::jsonb.';
	END IF;
	-- one caller at a time per key, so concurrent upserts never insert twice
	PERFORM pg_advisory_xact_lock(hashtextextended(object_type || '/' || key_property || '/' || key_value, 0));

	SELECT pm.column_name, pm.sql_type INTO key_col, key_type
	FROM hubsync.property_map pm
	WHERE pm.object_type = upsert.object_type AND pm.property = key_property;
	IF key_col IS NOT NULL THEN
		EXECUTE format('SELECT hubsync_id FROM %s WHERE %I::text = $1 LIMIT 1', tbl, key_col)
			INTO found_id USING key_value;
	ELSE
		EXECUTE format('SELECT hubsync_id FROM %s WHERE properties ->> $2 = $1 LIMIT 1', tbl)
			INTO found_id USING key_value, key_property;
	END IF;

	-- the key itself is part of what the row holds
	properties := properties || jsonb_build_object(key_property, key_value);

	FOR e IN SELECT * FROM jsonb_each(properties) LOOP
		SELECT pm.column_name, pm.sql_type INTO m
		FROM hubsync.property_map pm
		WHERE pm.object_type = upsert.object_type AND pm.property = e.key;
		IF m.column_name IS NULL THEN
			extra := extra || jsonb_build_object(e.key, e.value);
		ELSE
			sets := sets || format('%I = hubsync._from_wire(%L, %L)::%s, ', m.column_name,
			                       e.value #>> '{}', m.sql_type, m.sql_type);
			cols := cols || format('%I, ', m.column_name);
			vals := vals || format('hubsync._from_wire(%L, %L)::%s, ', e.value #>> '{}', m.sql_type, m.sql_type);
		END IF;
	END LOOP;

	IF found_id IS NULL THEN
		EXECUTE format('INSERT INTO %s (%s properties) VALUES (%s $1) RETURNING hubsync_id', tbl, cols, vals)
			INTO found_id USING extra;
	ELSE
		EXECUTE format('UPDATE %s SET %s properties = properties || $1 WHERE hubsync_id = $2', tbl, sets)
			USING extra, found_id;
	END IF;
	RETURN found_id;
END
$$;
COMMENT ON FUNCTION hubsync.upsert(text, text, text, jsonb) IS
  'Idempotent insert-or-update of the mirror row whose key property has the given value; returns its hubsync_id';

-- A HubSpot wire string (or JSON scalar text) as the text input of a typed
-- column: '' is NULL, epoch milliseconds become timestamps, ';' separates
-- multi-select values.
CREATE FUNCTION hubsync._from_wire(v text, sql_type text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE
		WHEN v IS NULL OR v = '' THEN NULL
		WHEN sql_type IN ('timestamptz', 'date') AND v ~ '^-?[0-9]{1,15}$' THEN
			CASE sql_type
				WHEN 'timestamptz' THEN pg_catalog.to_timestamp(v::numeric / 1000)::text
				ELSE (pg_catalog.to_timestamp(v::numeric / 1000) AT TIME ZONE 'UTC')::date::text
			END
		WHEN sql_type = 'text[]' THEN
			(SELECT pg_catalog.array_agg(x)::text FROM pg_catalog.regexp_split_to_table(v, ';') x)
		ELSE v
	END
$$;
COMMENT ON FUNCTION hubsync._from_wire(text, text) IS
  'API: private. Text input of a typed column from a HubSpot wire string';

-- Where a record stands: pending (in the outbox), failed (dead letter) or
-- synced.
CREATE VIEW hubsync.record_status AS
SELECT k.object_type,
       k.hubsync_id,
       s.hs_object_id,
       CASE WHEN o.pending IS NOT NULL THEN 'pending'
            WHEN d.hubsync_id IS NOT NULL THEN 'failed'
            ELSE 'synced' END AS status,
       coalesce(o.attempts, d.attempts, 0) AS attempts,
       coalesce(o.last_error, d.message) AS last_error,
       o.next_attempt_at,
       s.synced_at
FROM (SELECT ob.object_type, ob.hubsync_id FROM hubsync.outbox ob
      UNION SELECT dl.object_type, dl.hubsync_id FROM hubsync.dead_letters dl
      UNION SELECT ss.object_type, ss.hubsync_id FROM hubsync.sync_state ss) k
LEFT JOIN LATERAL (
	SELECT count(*) AS pending, max(ob.attempts) AS attempts,
	       (array_agg(ob.last_error ORDER BY ob.id DESC))[1] AS last_error,
	       min(ob.next_attempt_at) AS next_attempt_at
	FROM hubsync.outbox ob WHERE ob.hubsync_id = k.hubsync_id
	HAVING count(*) > 0) o ON true
LEFT JOIN LATERAL (
	SELECT dl.hubsync_id, dl.attempts, dl.category || ': ' || dl.message AS message
	FROM hubsync.dead_letters dl WHERE dl.hubsync_id = k.hubsync_id
	ORDER BY dl.id DESC LIMIT 1) d ON true
LEFT JOIN hubsync.sync_state s ON s.hubsync_id = k.hubsync_id;
COMMENT ON VIEW hubsync.record_status IS
  'Per record: pending (changes waiting), failed (in dead letters) or synced; attempts and last error';

-- Wait until a record's committed changes reached HubSpot (read-after-write).
-- Returns 'synced', 'failed', or 'pending' when the timeout passed first.
CREATE FUNCTION hubsync.await_synced(object_type text, hubsync_id uuid,
	timeout interval DEFAULT '10s') RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	deadline timestamptz := clock_timestamp() + timeout;
	st text;
BEGIN
	PERFORM hubsync._mirror_table(object_type);
	IF pg_catalog.txid_current_if_assigned() IS NOT NULL AND EXISTS (
		SELECT 1 FROM hubsync.outbox o WHERE o.hubsync_id = await_synced.hubsync_id AND o.xmin::text::bigint = pg_catalog.txid_current_if_assigned() % 4294967296) THEN
		RAISE EXCEPTION 'the change to % is not committed yet', hubsync_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
			      HINT = 'Call hubsync.await_synced() after COMMIT: HubSpot only sees committed changes.';
	END IF;
	LOOP
		SELECT r.status INTO st FROM hubsync.record_status r
		WHERE r.hubsync_id = await_synced.hubsync_id AND r.object_type = await_synced.object_type;
		st := coalesce(st, 'synced');
		IF st <> 'pending' OR clock_timestamp() >= deadline THEN
			RETURN st;
		END IF;
		PERFORM pg_sleep(0.005);
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync.await_synced(text, uuid, interval) IS
  'Waits until a record''s committed changes are in HubSpot; returns synced, failed or pending (timed out)';

-- Send dead letters again (all, or those of one object type / category).
CREATE FUNCTION hubsync.retry_dead_letters(object_type text DEFAULT NULL,
	category text DEFAULT NULL, hubsync_id uuid DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM hubsync._require_owner('retry dead letters');
	WITH moved AS (
		DELETE FROM hubsync.dead_letters d
		WHERE (retry_dead_letters.object_type IS NULL OR d.object_type = retry_dead_letters.object_type)
		  AND (retry_dead_letters.category IS NULL OR d.category = retry_dead_letters.category)
		  AND (retry_dead_letters.hubsync_id IS NULL OR d.hubsync_id = retry_dead_letters.hubsync_id)
		RETURNING d.*
	), ins AS (
		INSERT INTO hubsync.outbox (object_type, hubsync_id, op, changed, origin)
		SELECT m.object_type, m.hubsync_id,
		       CASE WHEN m.op LIKE '%archive%' THEN 'archive'
		            WHEN m.op LIKE '%create%' THEN 'create' ELSE 'update' END,
		       coalesce((SELECT array_agg(k) FROM jsonb_object_keys(
		                   CASE WHEN jsonb_typeof(m.properties) = 'object' THEN m.properties ELSE '{}' END) k
		                 WHERE k <> 'hubsync_id'), '{}'),
		       m.origin
		FROM moved m
		RETURNING 1)
	SELECT count(*) INTO n FROM ins;
	IF n > 0 THEN
		PERFORM hubsync._wake_push();
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION hubsync.retry_dead_letters(text, text, uuid) IS
  'Re-queues dead letters (optionally of one object type, category or record); returns how many';

-- Drop dead letters for good.
CREATE FUNCTION hubsync.discard_dead_letters(object_type text DEFAULT NULL,
	category text DEFAULT NULL, hubsync_id uuid DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM hubsync._require_owner('discard dead letters');
	DELETE FROM hubsync.dead_letters d
	WHERE (discard_dead_letters.object_type IS NULL OR d.object_type = discard_dead_letters.object_type)
	  AND (discard_dead_letters.category IS NULL OR d.category = discard_dead_letters.category)
	  AND (discard_dead_letters.hubsync_id IS NULL OR d.hubsync_id = discard_dead_letters.hubsync_id);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION hubsync.discard_dead_letters(text, text, uuid) IS
  'Deletes dead letters (optionally of one object type, category or record); returns how many';

CREATE FUNCTION hubsync._wake_push() RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_wake_push';
COMMENT ON FUNCTION hubsync._wake_push() IS
  'API: private. Wakes the push worker when the calling transaction commits';

-- Hold or release sync of one object type, or of all.
CREATE FUNCTION hubsync._set_paused(p_object_type text, p_paused boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hubsync._require_owner(CASE WHEN p_paused THEN 'pause' ELSE 'resume' END || ' hubsync');
	IF p_object_type IS NOT NULL THEN
		PERFORM hubsync._mirror_table(p_object_type);
	END IF;
	UPDATE hubsync.object_types t SET paused = p_paused
	WHERE p_object_type IS NULL OR t.object_type = p_object_type;
	IF NOT p_paused THEN
		PERFORM hubsync._wake_push();
	END IF;
END
$$;
COMMENT ON FUNCTION hubsync._set_paused(text, boolean) IS
  'API: private. Backs hubsync.pause() and hubsync.resume()';

CREATE FUNCTION hubsync.pause(object_type text DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$ SELECT hubsync._set_paused(object_type, true) $$;
COMMENT ON FUNCTION hubsync.pause(text) IS
  'Holds sync of one object type (or all): changes keep queueing and leave on resume';

CREATE FUNCTION hubsync.resume(object_type text DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$ SELECT hubsync._set_paused(object_type, false) $$;
COMMENT ON FUNCTION hubsync.resume(text) IS
  'Resumes sync held by hubsync.pause()';

-------------------------------------------------------------------------------
-- Status
-------------------------------------------------------------------------------

CREATE FUNCTION hubsync.worker_status(
	OUT worker text, OUT pid integer, OUT state text, OUT started_at timestamptz)
RETURNS SETOF record
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_worker_status';
COMMENT ON FUNCTION hubsync.worker_status() IS
  'The hubsync background workers: pid, state and start time';

CREATE FUNCTION hubsync._auth_state() RETURNS text
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hubsync_auth_state';
COMMENT ON FUNCTION hubsync._auth_state() IS
  'API: private. ok, or refused after HubSpot answered 401 (pushing stopped until credentials change)';

CREATE VIEW hubsync.status AS
SELECT t.object_type,
       t.paused,
       hubsync._auth_state() AS auth,
       count(o.id) FILTER (WHERE o.state = 'pending')   AS pending,
       count(o.id) FILTER (WHERE o.state = 'in_flight') AS in_flight,
       pg_catalog.now() - min(o.created_at)             AS oldest_pending_age,
       (SELECT count(*) FROM hubsync.dead_letters d WHERE d.object_type = t.object_type) AS dead_letters
FROM hubsync.object_types t
LEFT JOIN hubsync.outbox o ON o.object_type = t.object_type
GROUP BY t.object_type, t.paused;
COMMENT ON VIEW hubsync.status IS
  'One row per object type: paused, HubSpot''s verdict on our credentials (ok or refused), changes pending and in flight, age of the oldest, dead letters';

-------------------------------------------------------------------------------
-- Inbound: webhook inbox, applying HubSpot's changes (issue 5)
-------------------------------------------------------------------------------

CREATE INDEX inbox_pending_order_idx ON hubsync.inbox (occurred_at, id) WHERE state = 'pending';
COMMENT ON COLUMN hubsync.inbox.dedupe_key IS
  'sha256 of subscriptionId, objectId, occurredAt, propertyName, propertyValue, eventId (and association ends): duplicate deliveries store nothing';
COMMENT ON COLUMN hubsync.inbox.state IS
  'pending, applied, skipped (unknown type, stale, echo, record gone) or failed (see error)';

CREATE FUNCTION hubsync.ingest_webhook(method text, uri text, body text,
	signature_v3 text, request_timestamp text)
RETURNS integer
LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'hubsync_ingest_webhook';
COMMENT ON FUNCTION hubsync.ingest_webhook(text, text, text, text, text) IS
  'Checks a HubSpot webhook delivery (v3 signature, timestamp, size, JSON) exactly as the embedded receiver does and stores its events in hubsync.inbox; returns the number of new events';
REVOKE ALL ON FUNCTION hubsync.ingest_webhook(text, text, text, text, text) FROM PUBLIC;

CREATE FUNCTION hubsync._webhook_signature(version integer, secret text, method text,
	uri text, body text, request_timestamp text DEFAULT NULL)
RETURNS text
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_webhook_signature';
COMMENT ON FUNCTION hubsync._webhook_signature(integer, text, text, text, text, text) IS
  'API: private. HubSpot request signature v1, v2 or v3 (the receiver''s code), for tests and tools';
REVOKE ALL ON FUNCTION hubsync._webhook_signature(integer, text, text, text, text, text) FROM PUBLIC;

CREATE FUNCTION hubsync.webhook_counters(OUT counter text, OUT value bigint)
RETURNS SETOF record
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_webhook_counters';
COMMENT ON FUNCTION hubsync.webhook_counters() IS
  'Counters of the webhook receiver and the inbox processor since server start: deliveries, events stored, duplicates, refusals by reason, events applied, skipped and failed';

CREATE VIEW hubsync.webhook_stats AS SELECT * FROM hubsync.webhook_counters();
COMMENT ON VIEW hubsync.webhook_stats IS
  'Webhook receiver and inbox counters since server start (refusals leave no other trace)';
GRANT SELECT ON hubsync.webhook_stats TO PUBLIC;

-- A HubSpot wire string converted to the text form of a typed column,
-- or NULL when it is empty or cannot convert (never an error).
CREATE FUNCTION hubsync._wire_to_column(value text, sql_type text) RETURNS text
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hubsync_wire_to_column';
COMMENT ON FUNCTION hubsync._wire_to_column(text, text) IS
  'API: private. Text form of a HubSpot value for a typed column (number, datetime ISO or epoch ms, date, bool, multi-select), NULL if it cannot convert';

-- The mirror object type an inbox event is about, or NULL.
CREATE FUNCTION hubsync._event_object_type(p_subscription_type text, p_object_type_id text)
RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT t.object_type FROM hubsync.object_types t
	WHERE CASE WHEN split_part(p_subscription_type, '.', 1) = 'object'
	           THEN t.object_type_id = p_object_type_id
	           ELSE t.webhook_prefix = split_part(p_subscription_type, '.', 1) END
	LIMIT 1
$$;
COMMENT ON FUNCTION hubsync._event_object_type(text, text) IS
  'API: private. Mirror table of a webhook event, by subscription type prefix or objectTypeId';

-- Records the inbox events p_ids need read from HubSpot before they can
-- be applied: creations, restores, merge survivors and property changes of
-- records not in the mirror.  Set-based: one look-up per object type.
CREATE FUNCTION hubsync._inbox_fetch_plan(p_ids bigint[])
RETURNS TABLE (object_type text, api_name text, ids bigint[], properties text[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	v_missing bigint[];
BEGIN
	FOR r IN
		SELECT t.object_type AS ot, t.api_name AS api,
		       array_agg(DISTINCT CASE WHEN split_part(i.subscription_type, '.', 2) = 'merge'
		                               THEN coalesce((i.event ->> 'newObjectId')::bigint, i.object_id)
		                               ELSE i.object_id END)
		           FILTER (WHERE split_part(i.subscription_type, '.', 2) IN ('creation', 'restore', 'merge')) AS direct,
		       array_agg(DISTINCT i.object_id)
		           FILTER (WHERE split_part(i.subscription_type, '.', 2) = 'propertyChange') AS changed
		FROM hubsync.inbox i
		JOIN hubsync.object_types t
		  ON CASE WHEN split_part(i.subscription_type, '.', 1) = 'object'
		          THEN t.object_type_id = i.object_type_id
		          ELSE t.webhook_prefix = split_part(i.subscription_type, '.', 1) END
		WHERE i.id = ANY (p_ids) AND i.state = 'pending' AND i.object_id IS NOT NULL
		GROUP BY t.object_type, t.api_name
	LOOP
		v_missing := NULL;
		IF r.changed IS NOT NULL THEN
			EXECUTE format('SELECT array_agg(x) FROM unnest($1) x
			                WHERE NOT EXISTS (SELECT 1 FROM hubspot.%I m WHERE m.hs_object_id = x)', r.ot)
				INTO v_missing USING r.changed;
		END IF;
		ids := ARRAY(SELECT DISTINCT x FROM unnest(coalesce(r.direct, '{}') || coalesce(v_missing, '{}')) x
		             WHERE x IS NOT NULL ORDER BY x);
		CONTINUE WHEN cardinality(ids) = 0;
		object_type := r.ot;
		api_name := r.api;
		SELECT array_agg(m.property ORDER BY m.property) || ARRAY['hubsync_id'] INTO properties
		FROM hubsync.property_map m WHERE m.object_type = r.ot;
		properties := coalesce(properties, ARRAY['hubsync_id']);
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync._inbox_fetch_plan(bigint[]) IS
  'API: private. Pull worker: records to batch-read from HubSpot before applying the given inbox events';

-- Typed columns and jsonb extras of a set of HubSpot properties.
--   cols: column => value ready for jsonb_populate_record
--   extra: properties kept in the properties jsonb (unmapped, or values
--          that could not convert)
--   clear: mapped properties whose raw value must leave the jsonb
CREATE FUNCTION hubsync._wire_to_row(p_object_type text, p_props jsonb,
	OUT cols jsonb, OUT extra jsonb, OUT clear text[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	conv text;
BEGIN
	cols := '{}';
	extra := '{}';
	clear := '{}';
	FOR r IN
		SELECT p.key, p.value, m.column_name, m.sql_type
		FROM jsonb_each(coalesce(p_props, '{}')) p
		LEFT JOIN hubsync.property_map m ON m.object_type = p_object_type AND m.property = p.key
		WHERE p.key NOT IN ('hs_object_id', 'hubsync_id')
	LOOP
		IF r.column_name IS NULL THEN
			extra := extra || jsonb_build_object(r.key, r.value);
			CONTINUE;
		END IF;
		IF jsonb_typeof(r.value) = 'null' OR (r.value #>> '{}') = '' THEN
			cols := cols || jsonb_build_object(r.column_name, NULL::text);
			clear := clear || r.key;
			CONTINUE;
		END IF;
		conv := hubsync._wire_to_column(r.value #>> '{}', r.sql_type);
		IF conv IS NULL THEN
			-- keep what HubSpot sent; the typed column stays empty
			cols := cols || jsonb_build_object(r.column_name, NULL::text);
			extra := extra || jsonb_build_object(r.key, r.value);
		ELSIF r.sql_type = 'text[]' THEN
			cols := cols || jsonb_build_object(r.column_name, to_jsonb(conv::text[]));
			clear := clear || r.key;
		ELSE
			cols := cols || jsonb_build_object(r.column_name, conv);
			clear := clear || r.key;
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync._wire_to_row(text, jsonb) IS
  'API: private. Splits HubSpot properties into typed mirror columns and the properties jsonb';

-- One applied change: sync_state, change feed, NOTIFY (sent at commit).
CREATE FUNCTION hubsync._record_in_change(p_object_type text, p_hubsync_id uuid,
	p_hs_object_id bigint, p_op text, p_props jsonb, p_versions jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	payload text;
	wire jsonb;
BEGIN
	SELECT coalesce(jsonb_object_agg(p.key, coalesce(p.value #>> '{}', '')), '{}') INTO wire
	FROM jsonb_each(coalesce(p_props, '{}')) p;
	IF p_op = 'delete' THEN
		DELETE FROM hubsync.sync_state s WHERE s.hubsync_id = p_hubsync_id;
	ELSE
		INSERT INTO hubsync.sync_state AS s (hubsync_id, object_type, hs_object_id, remote, versions, synced_at)
		VALUES (p_hubsync_id, p_object_type, p_hs_object_id, wire - 'hubsync_id', coalesce(p_versions, '{}'), now())
		ON CONFLICT ON CONSTRAINT sync_state_pkey DO UPDATE
		SET remote = s.remote || EXCLUDED.remote,
		    versions = s.versions || EXCLUDED.versions,
		    hs_object_id = coalesce(EXCLUDED.hs_object_id, s.hs_object_id),
		    synced_at = now();
	END IF;
	INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties)
	VALUES ('in', p_object_type, p_hubsync_id, p_hs_object_id, p_op, 'hubspot', coalesce(p_props, '{}'));
	payload := jsonb_build_object('object_type', p_object_type, 'hubsync_id', p_hubsync_id,
		'hs_object_id', p_hs_object_id, 'op', p_op,
		'changed', (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]') FROM jsonb_object_keys(coalesce(p_props, '{}')) k))::text;
	IF octet_length(payload) > 7900 THEN
		payload := jsonb_build_object('object_type', p_object_type, 'hubsync_id', p_hubsync_id,
			'hs_object_id', p_hs_object_id, 'op', p_op, 'changed', NULL, 'truncated', true)::text;
	END IF;
	PERFORM pg_notify('hubsync_changes', payload);
END
$$;
COMMENT ON FUNCTION hubsync._record_in_change(text, uuid, bigint, text, jsonb, jsonb) IS
  'API: private. Sync state, change feed row and NOTIFY hubsync_changes for one applied HubSpot change';

-- Writes a record read from HubSpot into the mirror (INSERT, or UPDATE
-- when something differs); every property's version becomes at least the
-- record's updatedAt.  p_linked names the local row to use (merge
-- survivor).  Returns the local hubsync_id.
CREATE FUNCTION hubsync._apply_record(p_object_type text, p_record jsonb, p_linked uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_id bigint := (p_record ->> 'id')::bigint;
	v_props jsonb := coalesce(p_record -> 'properties', '{}');
	v_claim text := v_props ->> 'hubsync_id';
	v_hid uuid := p_linked;
	v_row record;
	v_cols jsonb;
	v_norm jsonb;
	v_before jsonb;
	v_after jsonb;
	v_set text;
	v_version bigint;
	v_versions jsonb;
	v_wire jsonb;
	v_remote jsonb;
	v_changed jsonb;
BEGIN
	IF v_hid IS NULL THEN
		EXECUTE format('SELECT hubsync_id FROM hubspot.%I WHERE hs_object_id = $1', p_object_type)
			INTO v_hid USING v_id;
	END IF;
	IF v_hid IS NULL AND v_claim ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' THEN
		-- a record we created ourselves: its row is here already
		EXECUTE format('SELECT hubsync_id FROM hubspot.%I WHERE hubsync_id = $1 AND (hs_object_id IS NULL OR hs_object_id = $2)',
		               p_object_type)
			INTO v_hid USING v_claim::uuid, v_id;
	ELSIF v_claim !~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' THEN
		v_claim := NULL;
	END IF;
	v_row := hubsync._wire_to_row(p_object_type, v_props);
	v_cols := v_row.cols || jsonb_build_object('hs_object_id', v_id,
		'created_at', p_record -> 'createdAt', 'updated_at', p_record -> 'updatedAt');
	v_version := (extract(epoch FROM (p_record ->> 'updatedAt')::timestamptz) * 1000)::bigint;
	SELECT coalesce(jsonb_object_agg(k, v_version), '{}') INTO v_versions
	FROM jsonb_object_keys(v_props) k WHERE k <> 'hs_object_id';
	SELECT coalesce(jsonb_object_agg(p.key, coalesce(p.value #>> '{}', '')), '{}') INTO v_wire
	FROM jsonb_each(v_props) p WHERE p.key NOT IN ('hs_object_id', 'hubsync_id');

	IF v_hid IS NULL THEN
		v_hid := coalesce(v_claim::uuid, gen_random_uuid());
		v_cols := v_cols || jsonb_build_object('hubsync_id', v_hid, 'properties', v_row.extra);
		EXECUTE format('INSERT INTO hubspot.%1$I SELECT * FROM jsonb_populate_record(NULL::hubspot.%1$I, $1)',
		               p_object_type) USING v_cols;
		PERFORM hubsync._record_in_change(p_object_type, v_hid, v_id, 'insert', v_wire, v_versions);
		RETURN v_hid;
	END IF;

	EXECUTE format('SELECT to_jsonb(t) FROM hubspot.%I t WHERE hubsync_id = $1', p_object_type)
		INTO v_before USING v_hid;
	EXECUTE format('SELECT to_jsonb(r) FROM jsonb_populate_record(NULL::hubspot.%I, $1) r', p_object_type)
		INTO v_norm USING v_cols;
	SELECT coalesce(jsonb_object_agg(n.key, n.value), '{}') INTO v_norm
	FROM jsonb_each(v_norm) n WHERE v_cols ? n.key;
	v_after := v_before || v_norm || jsonb_build_object('properties',
		(coalesce(v_before -> 'properties', '{}') - v_row.clear) || v_row.extra);
	SELECT s.remote INTO v_remote FROM hubsync.sync_state s WHERE s.hubsync_id = v_hid;
	SELECT coalesce(jsonb_object_agg(w.key, w.value), '{}') INTO v_changed
	FROM jsonb_each(v_wire) w WHERE (v_remote -> w.key) IS DISTINCT FROM w.value;
	IF v_after IS DISTINCT FROM v_before THEN
		SELECT string_agg(format('%I = r.%I', k, k), ', ') INTO v_set
		FROM jsonb_object_keys(v_after) k WHERE k <> 'hubsync_id';
		EXECUTE format('UPDATE hubspot.%1$I t SET %2$s FROM jsonb_populate_record(NULL::hubspot.%1$I, $1) r WHERE t.hubsync_id = $2',
		               p_object_type, v_set) USING v_after, v_hid;
		PERFORM hubsync._record_in_change(p_object_type, v_hid, v_id, 'update', v_changed, v_versions);
	ELSE
		-- nothing new for the mirror; still remember what HubSpot holds
		INSERT INTO hubsync.sync_state AS s (hubsync_id, object_type, hs_object_id, remote, versions, synced_at)
		VALUES (v_hid, p_object_type, v_id, v_wire, v_versions, now())
		ON CONFLICT ON CONSTRAINT sync_state_pkey DO UPDATE
		SET remote = s.remote || EXCLUDED.remote, versions = s.versions || EXCLUDED.versions,
		    hs_object_id = EXCLUDED.hs_object_id, synced_at = now();
	END IF;
	RETURN v_hid;
END
$$;
COMMENT ON FUNCTION hubsync._apply_record(text, jsonb, uuid) IS
  'API: private. Writes a record read from HubSpot into its mirror table';

-- *.propertyChange: newest wins per property, echoes of our pushes change
-- nothing, properties owned by postgres are pushed back.
CREATE FUNCTION hubsync._apply_property(p_object_type text, p_event jsonb, p_occurred bigint,
	p_fetched jsonb, OUT outcome text, OUT note text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_id bigint := (p_event ->> 'objectId')::bigint;
	v_prop text := p_event ->> 'propertyName';
	v_value text := coalesce(p_event ->> 'propertyValue', '');
	v_hid uuid;
	v_state record;
	v_map record;
	v_owner text;
	v_conv text;
	v_local jsonb;
	v_n integer;
	v_app text := current_setting('hubsync.app_id', true);
BEGIN
	IF v_prop IS NULL OR v_id IS NULL THEN
		outcome := 'skipped'; note := 'propertyChange without objectId or propertyName';
		RETURN;
	END IF;
	EXECUTE format('SELECT hubsync_id FROM hubspot.%I WHERE hs_object_id = $1', p_object_type)
		INTO v_hid USING v_id;
	IF v_hid IS NULL THEN
		IF p_fetched ? (p_object_type || ':' || v_id) THEN
			PERFORM hubsync._apply_record(p_object_type, p_fetched -> (p_object_type || ':' || v_id));
			outcome := 'applied'; note := 'record read from HubSpot';
		ELSE
			outcome := 'skipped'; note := 'record not found in HubSpot';
		END IF;
		RETURN;
	END IF;

	SELECT s.remote, s.versions INTO v_state FROM hubsync.sync_state s WHERE s.hubsync_id = v_hid;
	IF coalesce((v_state.versions ->> v_prop)::bigint, -1) >= p_occurred THEN
		outcome := 'skipped'; note := 'stale: a newer value of this property was already applied';
		RETURN;
	END IF;
	IF p_event ->> 'changeSource' IN ('API', 'INTEGRATION')
	   AND v_app IS NOT NULL AND v_app <> '0'
	   AND (p_event ->> 'sourceId' = v_app OR p_event ->> 'sourceId' ~ ('^[a-zA-Z]*[:-]' || v_app || '$'))
	   AND ((v_state.remote ->> v_prop) IS NOT DISTINCT FROM v_value
	        -- the echo can overtake the push's own bookkeeping: a push of
	        -- this property in flight with exactly this value is ours too
	        OR (EXISTS (SELECT 1 FROM hubsync.outbox o
	                    WHERE o.hubsync_id = v_hid AND o.state = 'in_flight'
	                      AND (v_prop = ANY (o.changed) OR o.op = 'create'))
	            AND (SELECT w.wire ->> v_prop FROM hubsync._mirror_wire(p_object_type, v_hid) w)
	                IS NOT DISTINCT FROM v_value)) THEN
		UPDATE hubsync.sync_state s SET versions = s.versions || jsonb_build_object(v_prop, p_occurred)
		WHERE s.hubsync_id = v_hid;
		outcome := 'echo'; note := 'echo of our own push';
		RETURN;
	END IF;

	SELECT m.column_name, m.sql_type INTO v_map FROM hubsync.property_map m
	WHERE m.object_type = p_object_type AND m.property = v_prop;
	SELECT f.owner INTO v_owner FROM hubsync.field_owners f
	WHERE f.object_type = p_object_type AND f.property = v_prop;

	IF v_owner = 'postgres' THEN
		SELECT w.wire INTO v_local FROM hubsync._mirror_wire(p_object_type, v_hid) w;
		IF (v_local ->> v_prop) IS NOT DISTINCT FROM v_value THEN
			-- HubSpot already holds our value: no clash
			UPDATE hubsync.sync_state s
			SET remote = s.remote || jsonb_build_object(v_prop, v_value),
			    versions = s.versions || jsonb_build_object(v_prop, p_occurred)
			WHERE s.hubsync_id = v_hid;
			outcome := 'skipped'; note := 'HubSpot already holds the postgres-owned value';
			RETURN;
		END IF;
		INSERT INTO hubsync.outbox (object_type, hubsync_id, hs_object_id, op, changed, origin)
		VALUES (p_object_type, v_hid, v_id, 'update', ARRAY[v_prop], 'hubspot-revert');
		INSERT INTO hubsync.conflicts (object_type, hubsync_id, hs_object_id, property,
		                               local_value, remote_value, resolution)
		VALUES (p_object_type, v_hid, v_id, v_prop, v_local ->> v_prop, v_value,
		        'reverted: property owned by postgres');
		PERFORM pg_notify('hubsync_alerts', jsonb_build_object('alert', 'conflict',
			'object_type', p_object_type, 'hubsync_id', v_hid, 'property', v_prop)::text);
		-- HubSpot holds this value now: the push compares against it
		UPDATE hubsync.sync_state s
		SET remote = s.remote || jsonb_build_object(v_prop, v_value),
		    versions = s.versions || jsonb_build_object(v_prop, p_occurred)
		WHERE s.hubsync_id = v_hid;
		IF NOT FOUND THEN
			INSERT INTO hubsync.sync_state (hubsync_id, object_type, hs_object_id, remote, versions)
			VALUES (v_hid, p_object_type, v_id, jsonb_build_object(v_prop, v_value),
			        jsonb_build_object(v_prop, p_occurred));
		END IF;
		outcome := 'reverted'; note := 'property owned by postgres: value pushed back';
		RETURN;
	END IF;

	IF coalesce(v_owner, 'latest') = 'latest' AND EXISTS (
		SELECT 1 FROM hubsync.outbox o
		WHERE o.hubsync_id = v_hid AND v_prop = ANY (o.changed) AND o.origin <> 'hubspot-revert'
		  AND o.created_at > to_timestamp(p_occurred / 1000.0)) THEN
		-- a newer local edit is on its way to HubSpot: it wins
		UPDATE hubsync.sync_state s
		SET remote = s.remote || jsonb_build_object(v_prop, v_value),
		    versions = s.versions || jsonb_build_object(v_prop, p_occurred)
		WHERE s.hubsync_id = v_hid;
		outcome := 'skipped'; note := 'stale: a newer local change is pending';
		RETURN;
	END IF;

	IF v_map.column_name IS NULL THEN
		EXECUTE format('UPDATE hubspot.%I SET properties = properties || jsonb_build_object($1::text, $2::text)
		                WHERE hubsync_id = $3 AND (properties -> $1) IS DISTINCT FROM to_jsonb($2::text)',
		               p_object_type) USING v_prop, v_value, v_hid;
	ELSE
		v_conv := hubsync._wire_to_column(v_value, v_map.sql_type);
		IF v_conv IS NULL AND v_value <> '' THEN
			-- cannot convert: keep HubSpot's text in properties
			EXECUTE format('UPDATE hubspot.%I SET %I = NULL, properties = properties || jsonb_build_object($1::text, $2::text)
			                WHERE hubsync_id = $3', p_object_type, v_map.column_name)
				USING v_prop, v_value, v_hid;
		ELSE
			EXECUTE format('UPDATE hubspot.%1$I SET %2$I = $1::%3$s, properties = properties - $2
			                WHERE hubsync_id = $3 AND (%2$I IS DISTINCT FROM $1::%3$s OR properties ? $2)',
			               p_object_type, v_map.column_name, v_map.sql_type)
				USING v_conv, v_prop, v_hid;
		END IF;
	END IF;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	IF v_n > 0 THEN
		PERFORM hubsync._record_in_change(p_object_type, v_hid, v_id, 'update',
			jsonb_build_object(v_prop, v_value), jsonb_build_object(v_prop, p_occurred));
	ELSE
		UPDATE hubsync.sync_state s
		SET remote = s.remote || jsonb_build_object(v_prop, v_value),
		    versions = s.versions || jsonb_build_object(v_prop, p_occurred)
		WHERE s.hubsync_id = v_hid;
		IF NOT FOUND THEN
			INSERT INTO hubsync.sync_state (hubsync_id, object_type, hs_object_id, remote, versions)
			VALUES (v_hid, p_object_type, v_id, jsonb_build_object(v_prop, v_value),
			        jsonb_build_object(v_prop, p_occurred));
		END IF;
	END IF;
	outcome := 'applied';
END
$$;
COMMENT ON FUNCTION hubsync._apply_property(text, jsonb, bigint, jsonb) IS
  'API: private. Applies one propertyChange event (versions, echoes, ownership)';

-- Deletes the local row of a HubSpot record (deletion, merged away).
CREATE FUNCTION hubsync._apply_delete(p_object_type text, p_id bigint, p_privacy boolean)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_hid uuid;
BEGIN
	EXECUTE format('DELETE FROM hubspot.%I WHERE hs_object_id = $1 RETURNING hubsync_id', p_object_type)
		INTO v_hid USING p_id;
	DELETE FROM hubspot.associations a
	WHERE (a.from_type = p_object_type AND a.from_id = p_id)
	   OR (a.to_type = p_object_type AND a.to_id = p_id);
	IF p_privacy THEN
		-- GDPR: no personal data of this contact may stay behind
		DELETE FROM hubsync.changes c
		WHERE c.object_type = p_object_type AND (c.hs_object_id = p_id OR c.hubsync_id = v_hid);
		DELETE FROM hubsync.inbox i
		WHERE i.object_id = p_id AND i.state <> 'pending'
		  AND hubsync._event_object_type(i.subscription_type, i.object_type_id) = p_object_type;
		UPDATE hubsync.inbox i SET event = jsonb_build_object('redacted', true) || (i.event - 'propertyValue')
		WHERE i.object_id = p_id AND i.state = 'pending'
		  AND hubsync._event_object_type(i.subscription_type, i.object_type_id) = p_object_type;
		DELETE FROM hubsync.outbox o WHERE o.hubsync_id = v_hid;
		DELETE FROM hubsync.conflicts c WHERE c.object_type = p_object_type AND (c.hs_object_id = p_id OR c.hubsync_id = v_hid);
	END IF;
	IF v_hid IS NULL THEN
		RETURN false;
	END IF;
	IF p_privacy THEN
		DELETE FROM hubsync.sync_state s WHERE s.hubsync_id = v_hid;
		PERFORM pg_notify('hubsync_changes', jsonb_build_object('object_type', p_object_type,
			'hubsync_id', v_hid, 'hs_object_id', p_id, 'op', 'delete', 'changed', '[]'::jsonb)::text);
	ELSE
		PERFORM hubsync._record_in_change(p_object_type, v_hid, p_id, 'delete', '{}', NULL);
	END IF;
	RETURN true;
END
$$;
COMMENT ON FUNCTION hubsync._apply_delete(text, bigint, boolean) IS
  'API: private. Removes a record HubSpot deleted; a privacy deletion also erases its change feed and inbox rows';

-- *.merge: the survivor keeps (or takes over) the primary's local row,
-- merged-away rows go, lineage is kept.
CREATE FUNCTION hubsync._apply_merge(p_object_type text, p_event jsonb, p_fetched jsonb,
	OUT outcome text, OUT note text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_survivor bigint := coalesce((p_event ->> 'newObjectId')::bigint, (p_event ->> 'objectId')::bigint);
	v_primary bigint := coalesce((p_event ->> 'primaryObjectId')::bigint, v_survivor);
	v_gone bigint[];
	v_keep uuid;
	g bigint;
BEGIN
	SELECT array_agg(DISTINCT x::bigint) INTO v_gone
	FROM (SELECT jsonb_array_elements_text(coalesce(p_event -> 'mergedObjectIds', '[]')) x
	      UNION SELECT v_primary::text) s
	WHERE x::bigint <> v_survivor;
	v_gone := coalesce(v_gone, '{}');
	-- the survivor row: already there, else the primary's row carries on
	EXECUTE format('SELECT hubsync_id FROM hubspot.%I WHERE hs_object_id = $1', p_object_type)
		INTO v_keep USING v_survivor;
	IF v_keep IS NULL AND v_primary <> v_survivor THEN
		EXECUTE format('SELECT hubsync_id FROM hubspot.%I WHERE hs_object_id = $1', p_object_type)
			INTO v_keep USING v_primary;
		IF v_keep IS NOT NULL THEN
			EXECUTE format('UPDATE hubspot.%I SET hs_object_id = $1 WHERE hubsync_id = $2', p_object_type)
				USING v_survivor, v_keep;
			UPDATE hubsync.sync_state s SET hs_object_id = v_survivor WHERE s.hubsync_id = v_keep;
		END IF;
	END IF;
	FOREACH g IN ARRAY v_gone LOOP
		INSERT INTO hubsync.merges AS m (object_type, merged_id, survivor_id)
		VALUES (p_object_type, g, v_survivor)
		ON CONFLICT ON CONSTRAINT merges_pkey DO UPDATE SET survivor_id = EXCLUDED.survivor_id, merged_at = now();
		UPDATE hubsync.merges m SET survivor_id = v_survivor
		WHERE m.object_type = p_object_type AND m.survivor_id = g;
		UPDATE hubspot.associations a SET from_id = v_survivor
		WHERE a.from_type = p_object_type AND a.from_id = g
		  AND NOT EXISTS (SELECT 1 FROM hubspot.associations b WHERE b.from_type = a.from_type AND b.from_id = v_survivor
		                  AND b.to_type = a.to_type AND b.to_id = a.to_id AND b.type_id = a.type_id);
		UPDATE hubspot.associations a SET to_id = v_survivor
		WHERE a.to_type = p_object_type AND a.to_id = g
		  AND NOT EXISTS (SELECT 1 FROM hubspot.associations b WHERE b.to_type = a.to_type AND b.to_id = v_survivor
		                  AND b.from_type = a.from_type AND b.from_id = a.from_id AND b.type_id = a.type_id);
		PERFORM hubsync._apply_delete(p_object_type, g, false);
	END LOOP;
	IF p_fetched ? (p_object_type || ':' || v_survivor) THEN
		PERFORM hubsync._apply_record(p_object_type, p_fetched -> (p_object_type || ':' || v_survivor), v_keep);
		outcome := 'applied';
	ELSE
		outcome := 'applied'; note := 'survivor not readable from HubSpot';
	END IF;
END
$$;
COMMENT ON FUNCTION hubsync._apply_merge(text, jsonb, jsonb) IS
  'API: private. Applies a merge: survivor refreshed, merged-away rows removed, lineage in hubsync.merges';

-- *.associationChange: one direction of one association type.
CREATE FUNCTION hubsync._apply_association(p_object_type text, p_event jsonb,
	OUT outcome text, OUT note text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_from bigint := (p_event ->> 'fromObjectId')::bigint;
	v_to bigint := (p_event ->> 'toObjectId')::bigint;
	v_word text := substring(p_event ->> 'associationType' FROM '_TO_(.*)$');
	v_from_word text := substring(p_event ->> 'associationType' FROM '^(.*)_TO_');
	v_to_type text;
	v_type integer := (p_event ->> 'associationTypeId')::integer;
	v_primary boolean := coalesce((p_event ->> 'isPrimaryAssociation')::boolean, false);
	v_category text := coalesce(p_event ->> 'associationCategory', 'HUBSPOT_DEFINED');
	v_n integer;
BEGIN
	IF p_event ? 'toObjectTypeId' THEN
		SELECT t.object_type INTO v_to_type FROM hubsync.object_types t
		WHERE t.object_type_id = p_event ->> 'toObjectTypeId';
	ELSE
		SELECT t.object_type INTO v_to_type FROM hubsync.object_types t
		WHERE upper(t.webhook_prefix) = v_word OR upper(t.object_type) = v_word OR upper(t.object_type) = v_word || 'S'
		ORDER BY t.webhook_prefix IS NULL LIMIT 1;
	END IF;
	IF v_type IS NULL THEN
		SELECT m.id INTO v_type FROM (VALUES
			('CONTACT', 'COMPANY', true, 1), ('COMPANY', 'CONTACT', true, 2),
			('CONTACT', 'COMPANY', false, 279), ('COMPANY', 'CONTACT', false, 280),
			('DEAL', 'CONTACT', false, 3), ('CONTACT', 'DEAL', false, 4),
			('DEAL', 'COMPANY', true, 5), ('COMPANY', 'DEAL', true, 6),
			('DEAL', 'COMPANY', false, 341), ('COMPANY', 'DEAL', false, 342),
			('CONTACT', 'TICKET', false, 15), ('TICKET', 'CONTACT', false, 16),
			('DEAL', 'LINE_ITEM', false, 19), ('LINE_ITEM', 'DEAL', false, 20),
			('TICKET', 'COMPANY', false, 339), ('COMPANY', 'TICKET', false, 340),
			('TICKET', 'COMPANY', true, 26), ('COMPANY', 'TICKET', true, 25),
			('DEAL', 'TICKET', false, 27), ('TICKET', 'DEAL', false, 28)
		) AS m(f, t, p, id)
		WHERE m.f = v_from_word AND m.t = v_word AND m.p = v_primary;
	END IF;
	IF v_to_type IS NULL OR v_type IS NULL OR v_from IS NULL OR v_to IS NULL THEN
		outcome := 'skipped'; note := 'association type not known to hubsync';
		RETURN;
	END IF;
	IF coalesce((p_event ->> 'associationRemoved')::boolean, false) THEN
		DELETE FROM hubspot.associations a
		WHERE a.from_type = p_object_type AND a.from_id = v_from
		  AND a.to_type = v_to_type AND a.to_id = v_to AND a.type_id = v_type;
	ELSE
		INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id, type_id, category)
		VALUES (p_object_type, v_from, v_to_type, v_to, v_type, v_category)
		ON CONFLICT DO NOTHING;
	END IF;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	IF v_n > 0 THEN
		PERFORM pg_notify('hubsync_changes', jsonb_build_object('object_type', 'associations',
			'op', CASE WHEN (p_event ->> 'associationRemoved')::boolean THEN 'delete' ELSE 'insert' END,
			'from_type', p_object_type, 'from_id', v_from, 'to_type', v_to_type, 'to_id', v_to,
			'type_id', v_type)::text);
		INSERT INTO hubsync.changes (direction, object_type, hs_object_id, op, origin, properties)
		VALUES ('in', 'associations', v_from,
		        CASE WHEN (p_event ->> 'associationRemoved')::boolean THEN 'delete' ELSE 'insert' END,
		        'hubspot', jsonb_build_object('from_type', p_object_type, 'from_id', v_from,
		        'to_type', v_to_type, 'to_id', v_to, 'type_id', v_type));
	END IF;
	outcome := 'applied';
END
$$;
COMMENT ON FUNCTION hubsync._apply_association(text, jsonb) IS
  'API: private. Applies an associationChange event to hubspot.associations';

-- Pull worker, set-based: applies the propertyChange events among p_ids
-- that need no per-event rule, all changes of a record in one UPDATE with
-- newest-wins per property (sync_state.versions), and marks them in the
-- inbox.  A record qualifies when every one of its pending events in p_ids
-- is a propertyChange of a property not owned by postgres, none comes from
-- an app (API / INTEGRATION: maybe an echo of ours), its row is in the
-- mirror and it has nothing in the outbox; an object type with a merge
-- among p_ids is left out whole.  Everything else stays pending for the
-- per-event path.  One statement per object type.  Returns how many events
-- were applied and skipped (stale).
CREATE FUNCTION hubsync._apply_fast(p_ids bigint[], OUT applied integer, OUT skipped integer)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET work_mem = '32MB' AS $$
DECLARE
	t record;
	v_owned text[];
	v_set text;
	v_diff text;
	v_a integer;
	v_s integer;
BEGIN
	applied := 0;
	skipped := 0;
	FOR t IN
		SELECT ot.object_type, array_agg(i.id) AS ids
		FROM hubsync.inbox i
		JOIN hubsync.object_types ot
		  ON CASE WHEN split_part(i.subscription_type, '.', 1) = 'object'
		          THEN ot.object_type_id = i.object_type_id
		          ELSE ot.webhook_prefix = split_part(i.subscription_type, '.', 1) END
		WHERE i.id = ANY (p_ids) AND i.state = 'pending'
		GROUP BY ot.object_type
		HAVING NOT bool_or(split_part(i.subscription_type, '.', 2) = 'merge')
		ORDER BY ot.object_type
	LOOP
		SELECT coalesce(array_agg(f.property), '{}') INTO v_owned
		FROM hubsync.field_owners f WHERE f.object_type = t.object_type AND f.owner = 'postgres';
		SELECT string_agg(format('%1$I = CASE WHEN u.cols ? %1$L THEN r.%1$I ELSE t.%1$I END', m.column_name), ', '),
		       string_agg(format('(u.cols ? %1$L AND r.%1$I IS DISTINCT FROM t.%1$I)', m.column_name), ' OR ')
		INTO v_set, v_diff
		FROM hubsync.property_map m WHERE m.object_type = t.object_type;

		EXECUTE format($q$
			WITH e AS (
				SELECT i.id, i.object_id, i.occurred_at,
				       i.event ->> 'propertyName' AS prop,
				       coalesce(i.event ->> 'propertyValue', '') AS val,
				       bool_and(split_part(i.subscription_type, '.', 2) = 'propertyChange'
				                AND (i.event ->> 'propertyName') IS NOT NULL
				                AND coalesce(i.event ->> 'changeSource', '') NOT IN ('API', 'INTEGRATION')
				                AND (i.event ->> 'propertyName') <> ALL ($2))
				           OVER (PARTITION BY i.object_id) AS plain
				FROM hubsync.inbox i
				WHERE i.id = ANY ($1) AND i.state = 'pending' AND i.object_id IS NOT NULL
			), ev AS MATERIALIZED (
				-- eligible events, with their local row and applied version
				SELECT e.id, e.object_id, e.occurred_at, e.prop, e.val, m.hubsync_id AS hid,
				       s.hubsync_id IS NOT NULL AS has_state,
				       coalesce((s.versions ->> e.prop)::bigint, -1) AS ver
				FROM e
				JOIN hubspot.%1$I m ON m.hs_object_id = e.object_id
				LEFT JOIN hubsync.sync_state s ON s.hubsync_id = m.hubsync_id
				WHERE e.plain
				  AND NOT EXISTS (SELECT 1 FROM hubsync.outbox o WHERE o.hubsync_id = m.hubsync_id)
			), win AS (
				-- per record and property, the newest value not yet applied
				SELECT DISTINCT ON (ev.hid, ev.prop) ev.*
				FROM ev WHERE ev.occurred_at > ev.ver
				ORDER BY ev.hid, ev.prop, ev.occurred_at DESC, ev.id
			), conv AS (
				SELECT w.*, pm.column_name, pm.sql_type,
				       CASE WHEN pm.column_name IS NOT NULL AND w.val <> ''
				            THEN hubsync._wire_to_column(w.val, pm.sql_type) END AS c
				FROM win w
				LEFT JOIN hubsync.property_map pm ON pm.object_type = $3 AND pm.property = w.prop
			), u AS MATERIALIZED (
				-- per record: typed columns, jsonb extras, raw values to drop
				SELECT conv.hid, conv.object_id, bool_or(conv.has_state) AS has_state,
				       coalesce(jsonb_object_agg(conv.column_name,
				                    CASE WHEN conv.c IS NULL THEN NULL
				                         WHEN conv.sql_type = 'text[]' THEN to_jsonb(conv.c::text[])
				                         ELSE to_jsonb(conv.c) END)
				                FILTER (WHERE conv.column_name IS NOT NULL), '{}') AS cols,
				       coalesce(jsonb_object_agg(conv.prop, conv.val)
				                FILTER (WHERE conv.column_name IS NULL OR (conv.c IS NULL AND conv.val <> '')), '{}') AS extra,
				       coalesce(array_agg(conv.prop)
				                FILTER (WHERE conv.column_name IS NOT NULL AND (conv.c IS NOT NULL OR conv.val = '')), '{}') AS clear,
				       jsonb_object_agg(conv.prop, conv.val) AS wire,
				       jsonb_object_agg(conv.prop, conv.occurred_at) AS versions
				FROM conv GROUP BY conv.hid, conv.object_id
			), upd AS (
				-- real UPDATEs (users' triggers fire), only of rows that change
				UPDATE hubspot.%1$I t
				SET %2$s properties = (t.properties - u.clear) || u.extra
				FROM u, LATERAL jsonb_populate_record(NULL::hubspot.%1$I, u.cols) r
				WHERE t.hubsync_id = u.hid
				  AND (%3$s ((t.properties - u.clear) || u.extra) IS DISTINCT FROM t.properties)
				RETURNING t.hubsync_id
			), su AS (
				-- (no join with upd here: a nested loop over it is quadratic)
				UPDATE hubsync.sync_state s
				SET remote = s.remote || u.wire, versions = s.versions || u.versions,
				    hs_object_id = coalesce(u.object_id, s.hs_object_id), synced_at = now()
				FROM u WHERE s.hubsync_id = u.hid AND u.has_state
			), si AS (
				INSERT INTO hubsync.sync_state AS s (hubsync_id, object_type, hs_object_id, remote, versions, synced_at)
				SELECT u.hid, $3, u.object_id, u.wire, u.versions, now()
				FROM u WHERE NOT u.has_state
				ON CONFLICT ON CONSTRAINT sync_state_pkey DO UPDATE
				SET remote = s.remote || EXCLUDED.remote,
				    versions = s.versions || EXCLUDED.versions,
				    hs_object_id = coalesce(EXCLUDED.hs_object_id, s.hs_object_id),
				    synced_at = now()
			), ch AS (
				INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties)
				SELECT 'in', $3, u.hid, u.object_id, 'update', 'hubspot', u.wire
				FROM u JOIN upd ON upd.hubsync_id = u.hid
			), mk AS (
				-- every eligible event is done: applied, or stale
				UPDATE hubsync.inbox i
				SET state = CASE WHEN ev.occurred_at > ev.ver THEN 'applied' ELSE 'skipped' END,
				    applied_at = now(),
				    error = CASE WHEN ev.occurred_at > ev.ver THEN NULL
				                 ELSE 'stale: a newer value of this property was already applied' END
				FROM ev WHERE i.id = ev.id
				RETURNING i.state
			), n AS (
				SELECT jsonb_build_object('object_type', $3, 'hubsync_id', u.hid,
				           'hs_object_id', u.object_id, 'op', 'update',
				           'changed', (SELECT jsonb_agg(k ORDER BY k) FROM jsonb_object_keys(u.wire) k))::text AS payload,
				       u.hid, u.object_id
				FROM u JOIN upd ON upd.hubsync_id = u.hid
			)
			SELECT (SELECT count(*) FILTER (WHERE mk.state = 'applied') FROM mk)::integer,
			       (SELECT count(*) FILTER (WHERE mk.state = 'skipped') FROM mk)::integer,
			       (SELECT count(pg_notify('hubsync_changes',
			                   CASE WHEN octet_length(n.payload) > 7900
			                        THEN jsonb_build_object('object_type', $3, 'hubsync_id', n.hid,
			                                 'hs_object_id', n.object_id, 'op', 'update', 'changed', NULL,
			                                 'truncated', true)::text
			                        ELSE n.payload END)) FROM n)
			$q$, t.object_type, coalesce(v_set || ', ', ''), coalesce(v_diff || ' OR ', ''))
			INTO v_a, v_s USING t.ids, v_owned, t.object_type;
		applied := applied + coalesce(v_a, 0);
		skipped := skipped + coalesce(v_s, 0);
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync._apply_fast(bigint[]) IS
  'API: private. Pull worker: applies plain propertyChange events set-based, a record per UPDATE, newest wins per property';

-- Pull worker: which of p_ids are still pending, in occurredAt order.
CREATE FUNCTION hubsync._inbox_still_pending(p_ids bigint[]) RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT i.id FROM hubsync.inbox i WHERE i.id = ANY (p_ids) AND i.state = 'pending'
	ORDER BY i.occurred_at, i.id
$$;
COMMENT ON FUNCTION hubsync._inbox_still_pending(bigint[]) IS
  'API: private. Pull worker: the given inbox events still pending, in occurredAt order';

-- One inbox event: dispatch by subscription type, then record the outcome
-- on the inbox row.  Returns the outcome: applied, echo, reverted,
-- skipped, unknown (subscription type not handled), retry (a record
-- read failed; stays pending).
CREATE FUNCTION hubsync._apply_event(p_id bigint, p_fetched jsonb, p_fetch_failed text[])
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e record;
	v_ot text;
	v_kind text;
	v_id bigint;
	r record;
BEGIN
	SELECT i.id, i.subscription_type, i.object_type_id, i.object_id, i.occurred_at, i.event INTO e
	FROM hubsync.inbox i WHERE i.id = p_id AND i.state = 'pending';
	IF NOT FOUND THEN
		RETURN 'gone';
	END IF;
	v_kind := split_part(e.subscription_type, '.', 2);
	v_ot := hubsync._event_object_type(e.subscription_type, e.object_type_id);
	IF v_ot IS NULL OR v_kind NOT IN ('propertyChange', 'creation', 'restore', 'deletion',
	                                  'privacyDeletion', 'merge', 'associationChange') THEN
		UPDATE hubsync.inbox i SET state = 'skipped', applied_at = now(),
		       error = CASE WHEN v_ot IS NULL THEN 'object type not mirrored by hubsync'
		                    ELSE 'subscription type not handled by hubsync' END
		WHERE i.id = p_id;
		RETURN 'unknown';
	END IF;
	v_id := coalesce(e.object_id, (e.event ->> 'objectId')::bigint);
	IF v_kind IN ('creation', 'restore', 'merge', 'propertyChange') AND v_ot = ANY (p_fetch_failed) THEN
		-- a read from HubSpot failed: try again later
		IF v_kind <> 'propertyChange' OR NOT EXISTS (
			SELECT 1 FROM hubsync.sync_state s WHERE s.object_type = v_ot AND s.hs_object_id = v_id) THEN
			RETURN 'retry';
		END IF;
	END IF;

	CASE v_kind
		WHEN 'propertyChange' THEN
			SELECT * INTO r FROM hubsync._apply_property(v_ot, e.event, e.occurred_at, p_fetched);
		WHEN 'creation', 'restore' THEN
			IF p_fetched ? (v_ot || ':' || v_id) THEN
				PERFORM hubsync._apply_record(v_ot, p_fetched -> (v_ot || ':' || v_id));
				SELECT 'applied'::text AS outcome, NULL::text AS note INTO r;
			ELSE
				SELECT 'skipped'::text AS outcome, 'record not found in HubSpot'::text AS note INTO r;
			END IF;
		WHEN 'deletion', 'privacyDeletion' THEN
			PERFORM hubsync._apply_delete(v_ot, v_id, v_kind = 'privacyDeletion');
			SELECT 'applied'::text AS outcome, NULL::text AS note INTO r;
		WHEN 'merge' THEN
			SELECT * INTO r FROM hubsync._apply_merge(v_ot, e.event, p_fetched);
		WHEN 'associationChange' THEN
			SELECT * INTO r FROM hubsync._apply_association(v_ot, e.event);
	END CASE;

	UPDATE hubsync.inbox i
	SET state = CASE WHEN r.outcome IN ('applied', 'echo', 'reverted') THEN 'applied' ELSE 'skipped' END,
	    applied_at = now(), error = r.note
	WHERE i.id = p_id AND i.state = 'pending';
	RETURN r.outcome;
END
$$;
COMMENT ON FUNCTION hubsync._apply_event(bigint, jsonb, text[]) IS
  'API: private. Pull worker: applies one inbox event in its own subtransaction';

-- Pull worker: ids of the next pending events, oldest first.
CREATE FUNCTION hubsync._inbox_next(p_limit integer) RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT i.id FROM hubsync.inbox i WHERE i.state = 'pending'
	ORDER BY i.occurred_at, i.id LIMIT p_limit
$$;
COMMENT ON FUNCTION hubsync._inbox_next(integer) IS
  'API: private. Pull worker: the next pending inbox events in occurredAt order';

-- Pull worker: a poisoned event is dead-lettered with its error.
CREATE FUNCTION hubsync._inbox_failed(p_id bigint, p_error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE hubsync.inbox SET state = 'failed', applied_at = now(), error = p_error WHERE id = p_id
$$;
COMMENT ON FUNCTION hubsync._inbox_failed(bigint, text) IS
  'API: private. Marks an inbox event failed with its error';

-------------------------------------------------------------------------------
-- Privileges: private functions are for the workers and the owner only,
-- except the few that public functions and views call as the caller.
-------------------------------------------------------------------------------

DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid FROM pg_catalog.pg_proc p
		WHERE p.pronamespace = 'hubsync'::regnamespace
		  AND p.proname LIKE '\_%'
		  AND p.proname NOT IN ('_credentials_status', '_from_wire', '_mirror_table', '_require_owner', '_capture', '_auth_state', '_set_paused')
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
	END LOOP;
END
$$;

CREATE FUNCTION hubsync._wake_workers() RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_wake_workers';
COMMENT ON FUNCTION hubsync._wake_workers() IS
  'API: private. Wakes every hubsync worker when the calling transaction commits';
REVOKE ALL ON FUNCTION hubsync._wake_workers() FROM PUBLIC;

-- idle workers notice the new extension at once
SELECT hubsync._wake_workers();

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
