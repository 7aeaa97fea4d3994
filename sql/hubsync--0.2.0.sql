/* hubsync--0.2.0.sql -- install script of hubsync 0.2.0 */

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

	('quotes', 'hs_title', 'text'), ('quotes', 'hs_expiration_date', 'date'),
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
	updated_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
	oauth_refreshed_at   timestamptz,
	oauth_refresh_error  text
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

-- hubsync.credentials_status: see the "Security" section near the end.

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
	dedupe_key       bytea NOT NULL UNIQUE,
	subscription_type text NOT NULL,
	object_type_id   text,
	object_id        bigint,
	occurred_at      bigint NOT NULL,
	event            jsonb NOT NULL,
	state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'skipped', 'failed')),
	received_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
	applied_at       timestamptz,
	error            text,
	property_name    text,
	property_value   text,
	change_source    text,
	source_id        text
);
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
	-- a table of the install script is the extension's; one made later
	-- (hubsync.track_object) is dumped like any table
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
	           WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = tbl::regclass
	             AND d.deptype = 'e') THEN
		PERFORM pg_catalog.pg_extension_config_dump(tbl::regclass, '');
	END IF;
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

-- The current mirror row of a record, as (hs_object_id, wire properties);
-- both NULL when there is no such row.
CREATE FUNCTION hubsync._mirror_wire(p_object_type text, p_hubsync_id uuid,
	OUT hs_object_id bigint, OUT wire jsonb)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r jsonb;
BEGIN
	EXECUTE format('SELECT to_jsonb(t) FROM hubspot.%I t WHERE t.hubsync_id = $1', p_object_type)
		INTO r USING p_hubsync_id;
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
			'SELECT c.*, t.hubsync_id IS NOT NULL AS row_found, k.known_id,
			        CASE WHEN t.hubsync_id IS NOT NULL AND NOT c.has_archive
			             THEN hubsync._props_to_send(hubsync._wire_row(%L, to_jsonb(t)),
			                                         coalesce(c.changed, ''{}''),
			                                         coalesce(s.remote, ''{}''),
			                                         c.has_create OR k.known_id IS NULL)
			        END AS sent
			 FROM jsonb_to_recordset($1) AS c(hubsync_id uuid, object_type text, ids bigint[],
			      archive_ids bigint[], has_create boolean, create_tried boolean, has_archive boolean, hs_object_id bigint,
			      changed text[], attempts integer, first_created timestamptz, solo boolean)
			 LEFT JOIN hubspot.%I t ON t.hubsync_id = c.hubsync_id
			 LEFT JOIN hubsync.sync_state s ON s.hubsync_id = c.hubsync_id
			 CROSS JOIN LATERAL (SELECT coalesce(t.hs_object_id, s.hs_object_id, c.hs_object_id) AS known_id) k
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
			known_id := r.known_id;

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
-- After a push: the mirror row may have moved while the push was in
-- flight, by an inbound change that queued nothing (a rep's edit applied,
-- a record refreshed).  HubSpot now holds what was sent, its newest write,
-- so the mirror takes those values back and both sides agree.  A property
-- with another local change queued is left alone: that push comes next.
-- Runs in the push worker, where the capture trigger stays quiet.
CREATE FUNCTION hubsync._adopt_pushed(p_object_type text, p_hubsync_id uuid,
	p_hs_object_id bigint, p_sent jsonb, p_outbox_ids bigint[], p_versions jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_now jsonb;
	v_adopt jsonb;
	v_row record;
	v_set text;
BEGIN
	-- lock the row first: an inbound change being applied to it commits
	-- before we look, so the next statement sees it
	EXECUTE format('SELECT 1 FROM hubspot.%I WHERE hubsync_id = $1 FOR UPDATE', p_object_type)
		USING p_hubsync_id;
	SELECT w.wire INTO v_now FROM hubsync._mirror_wire(p_object_type, p_hubsync_id) w;
	IF v_now IS NULL OR p_sent IS NULL THEN
		RETURN;
	END IF;
	SELECT jsonb_object_agg(k.key, k.value) INTO v_adopt
	FROM jsonb_each(p_sent - 'hubsync_id') k
	WHERE coalesce(v_now ->> k.key, '') IS DISTINCT FROM coalesce(k.value #>> '{}', '')
	  AND NOT EXISTS (SELECT 1 FROM hubsync.outbox o
	                  WHERE o.hubsync_id = p_hubsync_id AND o.id <> ALL (p_outbox_ids)
	                    AND (k.key = ANY (o.changed) OR o.op = 'create'));
	IF v_adopt IS NULL THEN
		RETURN;
	END IF;
	v_row := hubsync._wire_to_row(p_object_type, v_adopt);
	SELECT string_agg(format('%I = r.%I', c, c), ', ') INTO v_set FROM jsonb_object_keys(v_row.cols) c;
	EXECUTE format('UPDATE hubspot.%1$I t SET %2$s properties = (t.properties - $2) || $3
	                FROM jsonb_populate_record(NULL::hubspot.%1$I, $1) r WHERE t.hubsync_id = $4',
	               p_object_type, coalesce(v_set || ',', ''))
		USING v_row.cols, v_row.clear, v_row.extra, p_hubsync_id;
	PERFORM hubsync._record_in_change(p_object_type, p_hubsync_id, p_hs_object_id, 'update',
		v_adopt, p_versions);
END
$$;
COMMENT ON FUNCTION hubsync._adopt_pushed(text, uuid, bigint, jsonb, bigint[], jsonb) IS
  'API: private. After a push, gives the mirror back the values HubSpot now holds where an inbound change moved it meanwhile';

-- The properties sent take the write's updatedAt as their version, so an
-- older webhook event (a rep's, or the echo of an earlier push) arriving
-- later is recognised as stale.
CREATE FUNCTION hubsync._push_done(p_hubsync_id uuid, p_object_type text, p_kind text,
	p_hs_object_id bigint, p_sent jsonb, p_outbox_ids bigint[],
	p_updated_at timestamptz DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_origin text;
	v_versions jsonb := '{}';
	v_before jsonb;
	v_created timestamptz;
	v_prev_sync timestamptz;
	v_overtaken text[] := '{}';
	v_row_id bigint;
	v_other uuid;
BEGIN
	SELECT string_agg(DISTINCT o.origin, ','), min(o.created_at) INTO v_origin, v_created
	FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids);
	DELETE FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids);
	IF p_kind = 'update' AND p_hs_object_id IS NOT NULL THEN
		EXECUTE format('SELECT (SELECT hs_object_id FROM hubspot.%1$I WHERE hubsync_id = $1),
		                       (SELECT hubsync_id FROM hubspot.%1$I WHERE hs_object_id = $2 AND hubsync_id <> $1)',
		               p_object_type)
			INTO v_row_id, v_other USING p_hubsync_id, p_hs_object_id;
		IF v_other IS NOT NULL AND v_row_id IS DISTINCT FROM p_hs_object_id THEN
			-- HubSpot answered for another record of ours: it merged ours
			-- into it.  The write landed on the survivor, which is read again.
			INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties)
			VALUES ('out', p_object_type, p_hubsync_id, p_hs_object_id, p_kind, coalesce(v_origin, 'app'),
			        coalesce(p_sent, '{}'));
			IF v_row_id IS NOT NULL THEN
				PERFORM hubsync._merged_away(p_object_type, v_row_id, p_hs_object_id);
			END IF;
			PERFORM hubsync._request_refresh(p_object_type, p_hs_object_id,
				coalesce((extract(epoch FROM p_updated_at) * 1000)::bigint, 0));
			RETURN;
		END IF;
	END IF;
	IF p_updated_at IS NOT NULL AND p_sent IS NOT NULL THEN
		SELECT coalesce(jsonb_object_agg(k, (extract(epoch FROM p_updated_at) * 1000)::bigint), '{}')
		INTO v_versions
		FROM jsonb_object_keys(p_sent) k WHERE k <> 'hubsync_id';
		-- sent properties a rep changed again after our write landed (its
		-- event already applied): HubSpot holds the rep's newer value
		SELECT coalesce(array_agg(v.key), '{}') INTO v_overtaken
		FROM jsonb_each_text(v_versions) v
		JOIN hubsync.sync_state s ON s.hubsync_id = p_hubsync_id
		WHERE (s.versions ->> v.key)::bigint > v.value::bigint;
	END IF;
	-- the change feed's before values: what HubSpot had, as last known
	SELECT CASE WHEN p_kind = 'archive' THEN s.remote
	            ELSE (SELECT jsonb_object_agg(k, s.remote -> k)
	                  FROM jsonb_object_keys(coalesce(p_sent, '{}') - 'hubsync_id') k) END,
	       s.synced_at
	INTO v_before, v_prev_sync
	FROM hubsync.sync_state s WHERE s.hubsync_id = p_hubsync_id;
	IF p_kind = 'archive' THEN
		DELETE FROM hubsync.sync_state s WHERE s.hubsync_id = p_hubsync_id;
	ELSE
		INSERT INTO hubsync.sync_state AS s (hubsync_id, object_type, hs_object_id, remote, versions, synced_at)
		VALUES (p_hubsync_id, p_object_type, p_hs_object_id, coalesce(p_sent, '{}') - 'hubsync_id',
		        v_versions, now())
		ON CONFLICT ON CONSTRAINT sync_state_pkey DO UPDATE
		SET remote = s.remote || (EXCLUDED.remote - v_overtaken),
		    versions = s.versions || (SELECT coalesce(jsonb_object_agg(v.key,
		                                  greatest(v.value::bigint, coalesce((s.versions ->> v.key)::bigint, -1))), '{}')
		                              FROM jsonb_each_text(EXCLUDED.versions) v),
		    hs_object_id = coalesce(EXCLUDED.hs_object_id, s.hs_object_id),
		    synced_at = now();
		IF p_hs_object_id IS NOT NULL THEN
			-- not a property change: the capture trigger enqueues nothing
			EXECUTE format('UPDATE hubspot.%I SET hs_object_id = $1 WHERE hubsync_id = $2 AND hs_object_id IS DISTINCT FROM $1',
			               p_object_type)
			USING p_hs_object_id, p_hubsync_id;
		END IF;
		-- only when something from HubSpot reached the row since this change
		-- was queued (inbound writes stamp synced_at with their transaction
		-- start, hence the margin): the common push costs nothing more
		IF v_prev_sync > v_created - interval '5 minutes' THEN
			PERFORM hubsync._adopt_pushed(p_object_type, p_hubsync_id, p_hs_object_id, p_sent - v_overtaken,
			                              p_outbox_ids, v_versions - v_overtaken);
		END IF;
	END IF;
	INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties, before)
	VALUES ('out', p_object_type, p_hubsync_id, p_hs_object_id, p_kind, coalesce(v_origin, 'app'),
	        coalesce(p_sent, '{}'), v_before);
END
$$;
COMMENT ON FUNCTION hubsync._push_done(uuid, text, text, bigint, jsonb, bigint[], timestamptz) IS
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

-- HubSpot refused a push for good: keep it with the reason.  The alert
-- names the record, the dead letter, the status and the category, never
-- HubSpot's message (anyone may LISTEN; the message, which may quote the
-- record's values, stays in hubsync.dead_letters).
CREATE FUNCTION hubsync._push_dead(p_outbox_ids bigint[], p_status integer, p_category text,
	p_message text, p_request jsonb, p_response jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	d record;
	v_id bigint;
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
	        d.origin, d.attempts, p_status, p_category, p_message, p_request, p_response, d.created_at)
	RETURNING id INTO v_id;
	DELETE FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids);
	PERFORM hubsync._alert('dead_letter', d.object_type, jsonb_build_object(
		'object_type', d.object_type, 'hubsync_id', d.hubsync_id, 'dead_letter_id', v_id,
		'status', p_status, 'category', p_category));
END
$$;
COMMENT ON FUNCTION hubsync._push_dead(bigint[], integer, text, text, jsonb, jsonb) IS
  'API: private. Moves a push HubSpot refused for good to hubsync.dead_letters';

-- An update of a record a rep deleted in HubSpot meanwhile: not a fault
-- to retry or dead-letter but a conflict HubSpot's deletion wins.  The
-- change is dropped and each property it carried recorded in
-- hubsync.conflicts; the deletion itself reaches the mirror by webhook or
-- by the poller's archived sweep.
CREATE FUNCTION hubsync._push_gone(p_outbox_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	d record;
BEGIN
	SELECT min(o.object_type) AS object_type, (array_agg(o.hubsync_id))[1] AS hubsync_id,
	       max(o.hs_object_id) AS hs_object_id,
	       (SELECT array_agg(DISTINCT x ORDER BY x) FROM hubsync.outbox o2, unnest(o2.changed) x
	         WHERE o2.id = ANY (p_outbox_ids)) AS changed
	INTO d
	FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids);
	IF d.object_type IS NULL THEN
		RETURN;
	END IF;
	INSERT INTO hubsync.conflicts (object_type, hubsync_id, hs_object_id, property,
	                               local_value, remote_value, resolution)
	SELECT d.object_type, d.hubsync_id, d.hs_object_id, p, w.wire ->> p, NULL,
	       'dropped: the record was deleted in HubSpot'
	FROM unnest(coalesce(d.changed, '{}')) p
	LEFT JOIN hubsync._mirror_wire(d.object_type, d.hubsync_id) w ON true;
	DELETE FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids);
	PERFORM pg_notify('hubsync_alerts', jsonb_build_object('alert', 'conflict',
		'object_type', d.object_type, 'hubsync_id', d.hubsync_id,
		'resolution', 'dropped: the record was deleted in HubSpot')::text);
END
$$;
COMMENT ON FUNCTION hubsync._push_gone(bigint[]) IS
  'API: private. Drops an update of a record deleted in HubSpot and records it in hubsync.conflicts';

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

-- Whether the calling role may read an object type's mirror table (NULL:
-- every mirror table).  Where hubsync keeps CRM values or HubSpot's
-- messages about records (record_status, the poller's, backfill's and
-- reconciliation's tables, hubsync.status.poll_error), a role sees them
-- only for the object types whose mirror table it may SELECT.  Executable
-- by everyone: views and row security policies call it as the reader.
CREATE FUNCTION hubsync._can_read_mirror(p_object_type text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE WHEN p_object_type IS NOT NULL
	            THEN coalesce(pg_catalog.has_table_privilege(
	                     pg_catalog.to_regclass(pg_catalog.format('hubspot.%I', p_object_type))::oid, 'SELECT'), false)
	            ELSE NOT EXISTS (SELECT 1 FROM hubsync.object_types t
	                             WHERE NOT coalesce(pg_catalog.has_table_privilege(
	                                 pg_catalog.to_regclass(pg_catalog.format('hubspot.%I', t.object_type))::oid, 'SELECT'), false))
	       END
$$;
COMMENT ON FUNCTION hubsync._can_read_mirror(text) IS
  'API: private. Whether the calling role may SELECT the mirror table of an object type (NULL: of every type)';

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
	v text;
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
			-- a JSON array for a multi-select is its values joined with ';'
			v := CASE WHEN jsonb_typeof(e.value) = 'array'
			          THEN (SELECT string_agg(x, ';') FROM jsonb_array_elements_text(e.value) x)
			          ELSE e.value #>> '{}' END;
			-- converted now, so a bad value fails here with a clear error
			v := hubsync._from_wire(v, m.sql_type);
			sets := sets || format('%I = %L::%s, ', m.column_name, v, m.sql_type);
			cols := cols || format('%I, ', m.column_name);
			vals := vals || format('%L::%s, ', v, m.sql_type);
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
-- multi-select values.  The strict mode of the C converter behind
-- hubsync._wire_to_column (src/convert.c): one parser, but a value that
-- cannot convert is an error here instead of NULL.
CREATE FUNCTION hubsync._from_wire(v text, sql_type text) RETURNS text
LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'hubsync_from_wire';
COMMENT ON FUNCTION hubsync._from_wire(text, text) IS
  'API: private. Text input of a typed column from a HubSpot wire string; an error when it cannot convert';

-- Where a record stands: pending (in the outbox), failed (dead letter) or
-- synced.  Readable by everyone, but a role sees only the records of the
-- object types whose mirror table it may SELECT (last_error is HubSpot's
-- message about the record, which may quote its values).
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
LEFT JOIN hubsync.sync_state s ON s.hubsync_id = k.hubsync_id
WHERE k.object_type IN (SELECT t.object_type FROM hubsync.object_types t
                        WHERE hubsync._can_read_mirror(t.object_type));
COMMENT ON VIEW hubsync.record_status IS
  'Per record: pending (changes waiting), failed (in dead letters) or synced; attempts and last error; only the object types whose mirror table the reader may SELECT';
GRANT SELECT ON hubsync.record_status TO PUBLIC;

-- The records whose changes the calling transaction queued and has not
-- committed yet (only of the object types the caller may read), so that
-- hubsync.await_synced, which runs with the caller's rights, can refuse
-- to wait for them.
CREATE VIEW hubsync._uncommitted_changes AS
SELECT DISTINCT ob.object_type, ob.hubsync_id
FROM hubsync.outbox ob
WHERE pg_catalog.txid_current_if_assigned() IS NOT NULL
  AND ob.xmin::text::bigint = pg_catalog.txid_current_if_assigned() % 4294967296
  AND hubsync._can_read_mirror(ob.object_type);
COMMENT ON VIEW hubsync._uncommitted_changes IS
  'API: private. Records with changes queued by the calling transaction (not committed yet)';
GRANT SELECT ON hubsync._uncommitted_changes TO PUBLIC;

-- Wait until a record's committed changes reached HubSpot (read-after-write).
-- Returns 'synced', 'failed', or 'pending' when the timeout passed first.
-- Runs with the caller's rights: the caller must be able to read the
-- record (SELECT on its mirror table), and may wait an hour at most, so
-- that no role can probe records it cannot read or hold a backend
-- polling without end.
CREATE FUNCTION hubsync.await_synced(object_type text, hubsync_id uuid,
	timeout interval DEFAULT '10s') RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	mirror regclass := hubsync._mirror_table(object_type);
	deadline timestamptz;
	pause float8 := 0.005;
	st text;
BEGIN
	IF NOT has_table_privilege(mirror, 'SELECT') THEN
		RAISE EXCEPTION 'permission denied to await records of %', mirror
			USING ERRCODE = 'insufficient_privilege',
			      HINT = format('hubsync.await_synced() needs SELECT on %s: GRANT SELECT ON %s TO %I.',
			                    mirror, mirror, current_user);
	END IF;
	IF timeout IS NULL OR timeout > interval '1 hour' THEN
		RAISE EXCEPTION 'timeout of hubsync.await_synced() must be at most 1 hour, not %',
			coalesce(timeout::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'Call it again to wait longer.';
	END IF;
	IF EXISTS (SELECT 1 FROM hubsync._uncommitted_changes u
	           WHERE u.hubsync_id = await_synced.hubsync_id) THEN
		RAISE EXCEPTION 'the change to % is not committed yet', hubsync_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
			      HINT = 'Call hubsync.await_synced() after COMMIT: HubSpot only sees committed changes.';
	END IF;
	deadline := clock_timestamp() + timeout;
	LOOP
		SELECT r.status INTO st FROM hubsync.record_status r
		WHERE r.hubsync_id = await_synced.hubsync_id AND r.object_type = await_synced.object_type;
		st := coalesce(st, 'synced');
		IF st <> 'pending' OR clock_timestamp() >= deadline THEN
			RETURN st;
		END IF;
		-- 5 ms at first (read-after-write is usually quick), then up to 50 ms
		PERFORM pg_sleep(pause);
		pause := least(pause * 2, 0.05);
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync.await_synced(text, uuid, interval) IS
  'Waits (at most 1 hour) until a record''s committed changes are in HubSpot; returns synced, failed or pending (timed out); needs SELECT on the mirror table';

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
  'API: private. ok; refused after HubSpot answered 401; refresh_failed after HubSpot refused the OAuth refresh token (sync paused until credentials change)';

-- hubsync.status: see "hubsync.status, final form" below; hubsync.summary: "Operations".

-------------------------------------------------------------------------------
-- Inbound: webhook inbox, applying HubSpot's changes (issue 5)
-------------------------------------------------------------------------------

CREATE INDEX inbox_pending_order_idx ON hubsync.inbox (occurred_at, id) WHERE state = 'pending';
COMMENT ON COLUMN hubsync.inbox.dedupe_key IS
  'sha256 of subscriptionId, objectId, occurredAt, propertyName, propertyValue, eventId (and association ends, subscriptionType, objectTypeId), computed by the receiver: duplicate deliveries store nothing';
COMMENT ON COLUMN hubsync.inbox.property_name IS
  'propertyName of a propertyChange event, read from the event at receipt';
COMMENT ON COLUMN hubsync.inbox.property_value IS
  'propertyValue of a propertyChange event, read from the event at receipt (NULL once a privacy deletion erased it)';
COMMENT ON COLUMN hubsync.inbox.change_source IS
  'changeSource of the event (CRM_UI, API, INTEGRATION...), read at receipt';
COMMENT ON COLUMN hubsync.inbox.source_id IS
  'sourceId of the event (userId:..., or the app id of an API write), read at receipt';
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

CREATE FUNCTION hubsync._parse_probe(kind text, body bytea, status integer DEFAULT 200)
RETURNS text
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_parse_probe';
COMMENT ON FUNCTION hubsync._parse_probe(text, bytea, integer) IS
  'API: private, for tests/fuzzing. Runs one untrusted body through the very functions the receiver and workers run on it (webhook checks and dedupe key, push results and 207s, pages, batch and association reads, OAuth and enrichment answers) and returns a short summary; writes in the caller''s transaction, to be rolled back';
REVOKE ALL ON FUNCTION hubsync._parse_probe(text, bytea, integer) FROM PUBLIC;

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
		-- group the events by type first, then match each group once
		WITH g AS (
			SELECT i.subscription_type, i.object_type_id, split_part(i.subscription_type, '.', 2) AS kind,
			       array_agg(CASE WHEN split_part(i.subscription_type, '.', 2) = 'merge'
			                      THEN coalesce((i.event ->> 'newObjectId')::bigint, i.object_id)
			                      ELSE i.object_id END) AS ids
			-- (each id looked up by primary key alone, state checked after:
			-- never a scan of the pending index or the table, however long
			-- the backlog or the history)
			FROM unnest(p_ids) AS x(id)
			CROSS JOIN LATERAL (SELECT i.* FROM hubsync.inbox i WHERE i.id = x.id LIMIT 1) i
			WHERE i.state = 'pending' AND i.object_id IS NOT NULL
			  AND split_part(i.subscription_type, '.', 2) IN ('creation', 'restore', 'merge', 'propertyChange')
			GROUP BY i.subscription_type, i.object_type_id
		)
		SELECT t.object_type AS ot, t.api_name AS api,
		       array_agg(DISTINCT x) FILTER (WHERE g.kind IN ('creation', 'restore', 'merge')) AS direct,
		       array_agg(DISTINCT x) FILTER (WHERE g.kind = 'propertyChange') AS changed
		FROM g
		JOIN hubsync.object_types t
		  ON CASE WHEN split_part(g.subscription_type, '.', 1) = 'object'
		          THEN t.object_type_id = g.object_type_id
		          ELSE t.webhook_prefix = split_part(g.subscription_type, '.', 1) END
		CROSS JOIN LATERAL unnest(g.ids) x
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
-- p_props are the properties that changed (recorded and announced);
-- p_remote, when given, every value HubSpot holds now (remembered in
-- sync_state), else p_props.  An update that changed no property is
-- remembered but neither recorded nor announced.
CREATE FUNCTION hubsync._record_in_change(p_object_type text, p_hubsync_id uuid,
	p_hs_object_id bigint, p_op text, p_props jsonb, p_versions jsonb,
	p_remote jsonb DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	payload text;
	wire jsonb;
	v_before jsonb;
BEGIN
	SELECT coalesce(jsonb_object_agg(p.key, coalesce(p.value #>> '{}', '')), '{}') INTO wire
	FROM jsonb_each(coalesce(p_remote, p_props, '{}')) p;
	-- the change feed's before values: what HubSpot had, as last known
	SELECT CASE WHEN p_op = 'delete' THEN s.remote
	            ELSE (SELECT jsonb_object_agg(k, s.remote -> k) FROM jsonb_object_keys(coalesce(p_props, '{}')) k) END
	INTO v_before
	FROM hubsync.sync_state s WHERE s.hubsync_id = p_hubsync_id;
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
	IF p_op = 'update' AND coalesce(p_props, '{}') = '{}' THEN
		RETURN;
	END IF;
	INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties, before)
	VALUES ('in', p_object_type, p_hubsync_id, p_hs_object_id, p_op, 'hubspot', coalesce(p_props, '{}'), v_before);
	payload := jsonb_build_object('object_type', p_object_type, 'hubsync_id', p_hubsync_id,
		'hs_object_id', p_hs_object_id, 'op', p_op, 'direction', 'in',
		'changed', (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]') FROM jsonb_object_keys(coalesce(p_props, '{}')) k))::text;
	IF octet_length(payload) > 7900 THEN
		payload := jsonb_build_object('object_type', p_object_type, 'hubsync_id', p_hubsync_id,
			'hs_object_id', p_hs_object_id, 'op', p_op, 'direction', 'in', 'changed', NULL, 'truncated', true)::text;
	END IF;
	PERFORM pg_notify('hubsync_changes', payload);
END
$$;
COMMENT ON FUNCTION hubsync._record_in_change(text, uuid, bigint, text, jsonb, jsonb, jsonb) IS
  'API: private. Sync state, change feed row and NOTIFY hubsync_changes for one applied HubSpot change';

-- The properties among p_wire whose value differs between two mirror
-- rows (to_jsonb of the row before and after): typed columns compared
-- typed, the rest in the properties jsonb, an empty string equal to NULL.
CREATE FUNCTION hubsync._changed_props(p_object_type text, p_wire jsonb,
	p_before jsonb, p_after jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(jsonb_object_agg(w.key, w.value), '{}')
	FROM jsonb_each(coalesce(p_wire, '{}')) w
	LEFT JOIN hubsync.property_map m ON m.object_type = p_object_type AND m.property = w.key
	WHERE (m.column_name IS NOT NULL AND (p_before -> m.column_name) IS DISTINCT FROM (p_after -> m.column_name))
	   OR nullif(p_before -> 'properties' ->> w.key, '') IS DISTINCT FROM nullif(p_after -> 'properties' ->> w.key, '')
$$;
COMMENT ON FUNCTION hubsync._changed_props(text, jsonb, jsonb, jsonb) IS
  'API: private. Properties whose value really changed between two versions of a mirror row (empty string = NULL)';

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
	v_changed jsonb;
	v_keep text[];
	v_newer text[];
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
		-- the hubsync_id HubSpot's record carries, unless a row of ours
		-- already has it (one linked to another record: a merge or a copy)
		IF v_claim IS NOT NULL THEN
			EXECUTE format('SELECT hubsync_id FROM hubspot.%I WHERE hubsync_id = $1', p_object_type)
				INTO v_hid USING v_claim::uuid;
			v_hid := CASE WHEN v_hid IS NULL THEN v_claim::uuid END;
		END IF;
		v_hid := coalesce(v_hid, gen_random_uuid());
		v_cols := v_cols || jsonb_build_object('hubsync_id', v_hid, 'properties', v_row.extra);
		EXECUTE format('INSERT INTO hubspot.%1$I SELECT * FROM jsonb_populate_record(NULL::hubspot.%1$I, $1)',
		               p_object_type) USING v_cols;
		-- a new row: what changed is every property that has a value
		SELECT coalesce(jsonb_object_agg(w.key, w.value), '{}') INTO v_changed
		FROM jsonb_each(v_wire) w WHERE (w.value #>> '{}') <> '';
		PERFORM hubsync._record_in_change(p_object_type, v_hid, v_id, 'insert', v_changed, v_versions, v_wire);
		RETURN v_hid;
	END IF;

	-- locked, the record's queued changes first and then its row, so what
	-- is queued cannot change under us; busy (a claim, a push's bookkeeping
	-- or an application holds them) means try again in a later round
	-- (never a wait that could close a deadlock)
	PERFORM 1 FROM hubsync.outbox o WHERE o.hubsync_id = v_hid FOR UPDATE NOWAIT;
	EXECUTE format('SELECT to_jsonb(t) FROM hubspot.%I t WHERE hubsync_id = $1 FOR UPDATE NOWAIT', p_object_type)
		INTO v_before USING v_hid;
	EXECUTE format('SELECT to_jsonb(r) FROM jsonb_populate_record(NULL::hubspot.%I, $1) r', p_object_type)
		INTO v_norm USING v_cols;
	SELECT coalesce(jsonb_object_agg(n.key, n.value), '{}') INTO v_norm
	FROM jsonb_each(v_norm) n WHERE v_cols ? n.key;
	-- A property with a local change still waiting to be claimed keeps its
	-- local value: that push compares against what this read records, lands
	-- later and wins.  For a queued create of ours ('*') that is every
	-- property the row sets; HubSpot's values fill the rest.  (A change
	-- already in flight is adopted by its bookkeeping if it lands; a
	-- property HubSpot owns is never pushed, so HubSpot's value is taken.)
	SELECT coalesce(array_agg(DISTINCT x), '{}') INTO v_keep
	FROM hubsync.outbox o,
	     unnest(CASE WHEN o.op = 'create' THEN ARRAY['*'] ELSE o.changed END) x
	WHERE o.hubsync_id = v_hid AND o.state = 'pending';
	IF '*' = ANY (v_keep) THEN
		SELECT coalesce(array_agg(m.property), '{}')
		       || ARRAY(SELECT jsonb_object_keys(coalesce(v_before -> 'properties', '{}')))
		INTO v_keep
		FROM hubsync.property_map m
		WHERE m.object_type = p_object_type AND (v_before ->> m.column_name::text) IS NOT NULL;
	END IF;
	v_keep := ARRAY(SELECT k FROM unnest(v_keep) k
	                WHERE NOT EXISTS (SELECT 1 FROM hubsync.field_owners f
	                                  WHERE f.object_type = p_object_type AND f.property = k
	                                    AND f.owner = 'hubspot'));
	-- Properties a newer change already reached (a push recorded after this
	-- read was made, or a later event): for them the read is old news.
	SELECT coalesce(array_agg(v.key), '{}') INTO v_newer
	FROM hubsync.sync_state s, jsonb_each_text(s.versions) v
	WHERE s.hubsync_id = v_hid AND v.value::bigint > v_version;
	v_keep := v_keep || v_newer;
	v_versions := v_versions - v_newer;
	v_wire := v_wire - v_newer;
	IF v_keep <> '{}' THEN
		v_norm := v_norm - ARRAY(SELECT m.column_name::text FROM hubsync.property_map m
		                         WHERE m.object_type = p_object_type AND m.property = ANY (v_keep));
		v_row.extra := v_row.extra - v_keep;
		v_row.clear := ARRAY(SELECT c FROM unnest(v_row.clear) c WHERE c <> ALL (v_keep));
	END IF;
	v_after := v_before || v_norm || jsonb_build_object('properties',
		(coalesce(v_before -> 'properties', '{}') - v_row.clear) || v_row.extra);
	IF v_after IS DISTINCT FROM v_before THEN
		SELECT string_agg(format('%I = r.%I', k, k), ', ') INTO v_set
		FROM jsonb_object_keys(v_after) k WHERE k <> 'hubsync_id';
		EXECUTE format('UPDATE hubspot.%1$I t SET %2$s FROM jsonb_populate_record(NULL::hubspot.%1$I, $1) r WHERE t.hubsync_id = $2',
		               p_object_type, v_set) USING v_after, v_hid;
		-- the change feed gets what really changed in the mirror
		v_changed := hubsync._changed_props(p_object_type, v_wire, v_before, v_after);
		PERFORM hubsync._record_in_change(p_object_type, v_hid, v_id, 'update', v_changed, v_versions, v_wire);
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

-- Queues a fresh read of one record from HubSpot, as a synthetic restore
-- event: the inbox processor batch-reads it and writes it whole (local
-- values of queued changes kept).  Once per record and instant.
CREATE FUNCTION hubsync._request_refresh(p_object_type text, p_id bigint, p_occurred bigint)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_t record;
	v_stype text;
	v_n integer;
BEGIN
	SELECT * INTO v_t FROM hubsync.object_types t WHERE t.object_type = p_object_type;
	v_stype := coalesce(v_t.webhook_prefix, 'object') || '.restore';
	INSERT INTO hubsync.inbox (dedupe_key, subscription_type, object_type_id, object_id, occurred_at, event)
	VALUES (sha256(convert_to(format('refresh:%s:%s:%s', p_object_type, p_id, p_occurred), 'UTF8')),
	        v_stype, v_t.object_type_id, p_id, p_occurred,
	        jsonb_build_object('subscriptionType', v_stype, 'objectTypeId', v_t.object_type_id,
	                           'objectId', p_id, 'occurredAt', p_occurred, 'changeSource', 'HUBSYNC_REFRESH'))
	ON CONFLICT (dedupe_key) DO NOTHING;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n > 0;
END
$$;
COMMENT ON FUNCTION hubsync._request_refresh(text, bigint, bigint) IS
  'API: private. Queues a fresh read of one record from HubSpot (ambiguous events)';
REVOKE ALL ON FUNCTION hubsync._request_refresh(text, bigint, bigint) FROM PUBLIC;

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
	IF v_hid IS NOT NULL THEN
		-- Locked, the record's queued changes first and then its row, so
		-- the checks of queued changes below see what really stays queued
		-- (a claim deciding what to send cannot interleave).  Busy (a
		-- claim, a push's bookkeeping or an application holds them) means
		-- try again in a later round, never a wait that could close a
		-- deadlock.
		PERFORM 1 FROM hubsync.outbox o WHERE o.hubsync_id = v_hid FOR UPDATE NOWAIT;
		EXECUTE format('SELECT hubsync_id FROM hubspot.%I WHERE hubsync_id = $1 AND hs_object_id = $2 FOR UPDATE NOWAIT',
		               p_object_type)
			INTO v_hid USING v_hid, v_id;
	END IF;
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
	IF (v_state.versions ->> v_prop)::bigint = p_occurred
	   AND coalesce(v_state.remote ->> v_prop, '') <> v_value THEN
		-- HubSpot took two values of this property in the same millisecond
		-- (two writes landing together, e.g. one to a record merged into
		-- this one): the events cannot say which is current, HubSpot can
		PERFORM hubsync._request_refresh(p_object_type, v_id, p_occurred);
		outcome := 'skipped'; note := 'ambiguous: another value has the same timestamp; the record is read again';
		RETURN;
	END IF;
	IF coalesce((v_state.versions ->> v_prop)::bigint, -1) >= p_occurred THEN
		outcome := 'skipped'; note := 'stale: a newer value of this property was already applied';
		RETURN;
	END IF;
	-- A change written by our own app is an echo of a push, to skip, when
	-- the mirror holds that value or has a change of the property still
	-- waiting to be claimed (its push compares against what HubSpot holds
	-- now, lands later and wins).  Otherwise the mirror moved while that
	-- push was in flight (an inbound change or a restore applied in
	-- between): HubSpot's newest value is ours, so adopt it.  (A change
	-- already claimed may not send this property at all; if it does, its
	-- bookkeeping or its own echo adopts it in turn.)
	IF p_event ->> 'changeSource' IN ('API', 'INTEGRATION')
	   AND v_app IS NOT NULL AND v_app <> '0'
	   AND (p_event ->> 'sourceId' = v_app OR p_event ->> 'sourceId' ~ ('^[a-zA-Z]*[:-]' || v_app || '$'))
	   AND (EXISTS (SELECT 1 FROM hubsync.outbox o
	                WHERE o.hubsync_id = v_hid AND o.state = 'pending'
	                  AND (v_prop = ANY (o.changed) OR o.op = 'create'))
	        OR (SELECT coalesce(w.wire ->> v_prop, '') FROM hubsync._mirror_wire(p_object_type, v_hid) w)
	           = v_value) THEN
		-- HubSpot holds this value as of p_occurred: a queued push compares
		-- against it
		UPDATE hubsync.sync_state s
		SET remote = s.remote || jsonb_build_object(v_prop, v_value),
		    versions = s.versions || jsonb_build_object(v_prop, p_occurred)
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
		WHERE o.hubsync_id = v_hid AND o.state = 'pending' AND v_prop = ANY (o.changed)
		  AND o.origin <> 'hubspot-revert' AND o.created_at > to_timestamp(p_occurred / 1000.0)) THEN
		-- a newer local edit waits to be sent, and its push compares against
		-- HubSpot's value recorded here: it wins.  (One already claimed may
		-- not send this property; the rep's value is applied, and if the
		-- push does send it, its bookkeeping or its echo adopts it.)
		UPDATE hubsync.sync_state s
		SET remote = s.remote || jsonb_build_object(v_prop, v_value),
		    versions = s.versions || jsonb_build_object(v_prop, p_occurred)
		WHERE s.hubsync_id = v_hid;
		outcome := 'skipped'; note := 'stale: a newer local change is pending';
		RETURN;
	END IF;

	IF v_map.column_name IS NULL THEN
		-- (an empty string and no value are the same: no change)
		EXECUTE format('UPDATE hubspot.%I SET properties = properties || jsonb_build_object($1::text, $2::text)
		                WHERE hubsync_id = $3 AND nullif(properties ->> $1, '''') IS DISTINCT FROM nullif($2::text, '''')',
		               p_object_type) USING v_prop, v_value, v_hid;
	ELSE
		v_conv := hubsync._wire_to_column(v_value, v_map.sql_type);
		IF v_conv IS NULL AND v_value <> '' THEN
			-- cannot convert: keep HubSpot's text in properties
			EXECUTE format('UPDATE hubspot.%1$I SET %2$I = NULL, properties = properties || jsonb_build_object($1::text, $2::text)
			                WHERE hubsync_id = $3 AND (%2$I IS NOT NULL OR (properties -> $1) IS DISTINCT FROM to_jsonb($2::text))',
			               p_object_type, v_map.column_name)
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
		UPDATE hubsync.inbox i SET event = jsonb_build_object('redacted', true) || (i.event - 'propertyValue'),
		       property_value = NULL
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
			'hubsync_id', v_hid, 'hs_object_id', p_id, 'op', 'delete', 'direction', 'in',
			'changed', '[]'::jsonb)::text);
	ELSE
		PERFORM hubsync._record_in_change(p_object_type, v_hid, p_id, 'delete', '{}', NULL);
	END IF;
	RETURN true;
END
$$;
COMMENT ON FUNCTION hubsync._apply_delete(text, bigint, boolean) IS
  'API: private. Removes a record HubSpot deleted; a privacy deletion also erases its change feed and inbox rows';

-- A record HubSpot merged into another: lineage kept, its associations
-- moved to the survivor, its row removed.
CREATE FUNCTION hubsync._merged_away(p_object_type text, p_gone bigint, p_survivor bigint)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	INSERT INTO hubsync.merges AS m (object_type, merged_id, survivor_id)
	VALUES (p_object_type, p_gone, p_survivor)
	ON CONFLICT ON CONSTRAINT merges_pkey DO UPDATE SET survivor_id = EXCLUDED.survivor_id, merged_at = now();
	UPDATE hubsync.merges m SET survivor_id = p_survivor
	WHERE m.object_type = p_object_type AND m.survivor_id = p_gone;
	UPDATE hubspot.associations a SET from_id = p_survivor
	WHERE a.from_type = p_object_type AND a.from_id = p_gone
	  AND NOT EXISTS (SELECT 1 FROM hubspot.associations b WHERE b.from_type = a.from_type AND b.from_id = p_survivor
	                  AND b.to_type = a.to_type AND b.to_id = a.to_id AND b.type_id = a.type_id);
	UPDATE hubspot.associations a SET to_id = p_survivor
	WHERE a.to_type = p_object_type AND a.to_id = p_gone
	  AND NOT EXISTS (SELECT 1 FROM hubspot.associations b WHERE b.to_type = a.to_type AND b.to_id = p_survivor
	                  AND b.from_type = a.from_type AND b.from_id = a.from_id AND b.type_id = a.type_id);
	PERFORM hubsync._apply_delete(p_object_type, p_gone, false);
END
$$;
COMMENT ON FUNCTION hubsync._merged_away(text, bigint, bigint) IS
  'API: private. Removes the row of a record HubSpot merged into another, keeping lineage and associations';
REVOKE ALL ON FUNCTION hubsync._merged_away(text, bigint, bigint) FROM PUBLIC;

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
		PERFORM hubsync._merged_away(p_object_type, g, v_survivor);
	END LOOP;
	IF p_fetched ? (p_object_type || ':' || v_survivor) THEN
		PERFORM hubsync._apply_record(p_object_type, p_fetched -> (p_object_type || ':' || v_survivor), v_keep);
		outcome := 'applied';
	ELSE
		-- HubSpot no longer has the survivor (deleted since): neither do we,
		-- whichever order the deletion's event and this one are applied in
		PERFORM hubsync._apply_delete(p_object_type, v_survivor, false);
		outcome := 'applied'; note := 'survivor deleted in HubSpot since: its row removed';
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
			'direction', 'in', 'from_type', p_object_type, 'from_id', v_from, 'to_type', v_to_type, 'to_id', v_to,
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
-- per-event path.  One statement per object type; it reads the inbox's
-- typed columns (the event jsonb only for rows stored without them).  The
-- change feed and NOTIFY get, per record, the properties whose value
-- really changed (the old row is read through a second reference to the
-- table, which sees it as it was before the UPDATE).  Returns how many
-- events were applied and skipped (stale).
CREATE FUNCTION hubsync._apply_fast(p_ids bigint[], OUT applied integer, OUT skipped integer)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET work_mem = '32MB' AS $$
DECLARE
	t record;
	v_owned text[];
	v_set text;
	v_diff text;
	v_cc text;
	v_a integer;
	v_s integer;
BEGIN
	applied := 0;
	skipped := 0;
	FOR t IN
		-- group the events by type first, then match each group once
		WITH g AS (
			SELECT i.subscription_type, i.object_type_id, array_agg(i.id) AS ids
			-- (each id looked up by primary key alone, state checked after:
			-- never a scan of the pending index or the table, however long
			-- the backlog or the history)
			FROM unnest(p_ids) AS x(id)
			CROSS JOIN LATERAL (SELECT i.id, i.subscription_type, i.object_type_id, i.state
			                    FROM hubsync.inbox i WHERE i.id = x.id LIMIT 1) i
			WHERE i.state = 'pending'
			GROUP BY i.subscription_type, i.object_type_id
		)
		SELECT ot.object_type, array_agg(x) AS ids
		FROM g
		JOIN hubsync.object_types ot
		  ON CASE WHEN split_part(g.subscription_type, '.', 1) = 'object'
		          THEN ot.object_type_id = g.object_type_id
		          ELSE ot.webhook_prefix = split_part(g.subscription_type, '.', 1) END
		CROSS JOIN LATERAL unnest(g.ids) x
		GROUP BY ot.object_type
		HAVING NOT bool_or(split_part(g.subscription_type, '.', 2) = 'merge')
		ORDER BY ot.object_type
	LOOP
		SELECT coalesce(array_agg(f.property), '{}') INTO v_owned
		FROM hubsync.field_owners f WHERE f.object_type = t.object_type AND f.owner = 'postgres';
		SELECT string_agg(format('%1$I = CASE WHEN u.cols ? %1$L THEN r.%1$I ELSE t.%1$I END', m.column_name), ', '),
		       string_agg(format('(u.cols ? %1$L AND r.%1$I IS DISTINCT FROM t.%1$I)', m.column_name), ' OR '),
		       string_agg(format('CASE WHEN u.cols ? %1$L AND r.%1$I IS DISTINCT FROM o.%1$I THEN %1$L END', m.column_name), ', ')
		INTO v_set, v_diff, v_cc
		FROM hubsync.property_map m WHERE m.object_type = t.object_type;

		EXECUTE format($q$
			WITH e AS (
				SELECT i.id, i.object_id, i.occurred_at, p.prop,
				       coalesce(i.property_value, i.event ->> 'propertyValue', '') AS val,
				       bool_and(split_part(i.subscription_type, '.', 2) = 'propertyChange'
				                AND p.prop IS NOT NULL
				                AND coalesce(i.change_source, i.event ->> 'changeSource', '') NOT IN ('API', 'INTEGRATION')
				                AND p.prop <> ALL ($2))
				           OVER (PARTITION BY i.object_id) AS plain
				FROM unnest($1) AS x(id)
				CROSS JOIN LATERAL (SELECT i.* FROM hubsync.inbox i WHERE i.id = x.id LIMIT 1) i
				CROSS JOIN LATERAL (SELECT coalesce(i.property_name, i.event ->> 'propertyName') AS prop) p
				WHERE i.state = 'pending' AND i.object_id IS NOT NULL
			), ev0 AS (
				-- eligible events, with their local row and applied version
				SELECT e.id, e.object_id, e.occurred_at, e.prop, e.val, m.hubsync_id AS hid,
				       s.hubsync_id IS NOT NULL AS has_state,
				       coalesce((s.versions ->> e.prop)::bigint, -1) AS ver,
				       s.remote -> e.prop AS before_value,
				       min(e.val) OVER w <> max(e.val) OVER w AS twins
				FROM e
				JOIN hubspot.%1$I m ON m.hs_object_id = e.object_id
				LEFT JOIN hubsync.sync_state s ON s.hubsync_id = m.hubsync_id
				WHERE e.plain
				  AND NOT EXISTS (SELECT 1 FROM hubsync.outbox o WHERE o.hubsync_id = m.hubsync_id)
				WINDOW w AS (PARTITION BY e.object_id, e.prop, e.occurred_at)
			), ev AS MATERIALIZED (
				-- a record with two values of a property at the same instant
				-- is left to the per-event path (which reads it again)
				SELECT z.* FROM (
					SELECT ev0.*, bool_or(ev0.twins OR (ev0.occurred_at = ev0.ver
					                      AND coalesce(ev0.before_value #>> '{}', '') <> ev0.val))
					                  OVER (PARTITION BY ev0.hid) AS ambiguous
					FROM ev0) z
				WHERE NOT z.ambiguous
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
				       jsonb_object_agg(conv.prop, conv.column_name)
				                FILTER (WHERE conv.column_name IS NOT NULL) AS colmap,
				       coalesce(jsonb_object_agg(conv.prop, conv.val)
				                FILTER (WHERE conv.column_name IS NULL OR (conv.c IS NULL AND conv.val <> '')), '{}') AS extra,
				       coalesce(array_agg(conv.prop)
				                FILTER (WHERE conv.column_name IS NOT NULL AND (conv.c IS NOT NULL OR conv.val = '')), '{}') AS clear,
				       jsonb_object_agg(conv.prop, conv.val) AS wire,
				       jsonb_object_agg(conv.prop, conv.before_value) AS before,
				       jsonb_object_agg(conv.prop, conv.occurred_at) AS versions,
				       count(*) AS nprops, min(conv.prop) AS prop1
				FROM conv GROUP BY conv.hid, conv.object_id
			), upd AS (
				-- real UPDATEs (users' triggers fire), only of rows that change;
				-- o is the row as it was, x the typed columns that change
				UPDATE hubspot.%1$I t
				SET %2$s properties = (t.properties - u.clear) || u.extra
				FROM u
				JOIN hubspot.%1$I o ON o.hubsync_id = u.hid
				CROSS JOIN LATERAL jsonb_populate_record(NULL::hubspot.%1$I, u.cols) r
				CROSS JOIN LATERAL (SELECT array_remove(ARRAY[%4$s]::text[], NULL) AS cc) x
				WHERE t.hubsync_id = u.hid
				  AND (%3$s ((t.properties - u.clear) || u.extra) IS DISTINCT FROM t.properties)
				RETURNING t.hubsync_id, u.object_id, u.nprops, u.prop1, u.before,
				          -- (one property, the usual case, without a subquery)
				          CASE WHEN u.nprops = 1 THEN
				               CASE WHEN (u.colmap ->> u.prop1) = ANY (x.cc)
				                         OR nullif(o.properties ->> u.prop1, '') IS DISTINCT FROM nullif(t.properties ->> u.prop1, '')
				                    THEN u.wire ELSE '{}' END
				          ELSE (SELECT coalesce(jsonb_object_agg(w.key, w.value), '{}')
				                FROM jsonb_each(u.wire) w
				                WHERE (u.colmap ->> w.key) = ANY (x.cc)
				                   OR nullif(o.properties ->> w.key, '') IS DISTINCT FROM nullif(t.properties ->> w.key, ''))
				          END AS changed
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
				-- the change feed: what really changed, one row per record
				INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties, before)
				SELECT 'in', $3, upd.hubsync_id, upd.object_id, 'update', 'hubspot', upd.changed,
				       (SELECT jsonb_object_agg(k, upd.before -> k) FROM jsonb_object_keys(upd.changed) k)
				FROM upd WHERE upd.changed <> '{}'
			), mk AS (
				-- every eligible event is done: applied, or stale (by primary
				-- key: never a hash of the whole inbox, however long its history)
				UPDATE hubsync.inbox i
				SET state = 'applied', applied_at = now(), error = NULL
				WHERE i.id = ANY (ARRAY(SELECT ev.id FROM ev WHERE ev.occurred_at > ev.ver))
				RETURNING i.state
			), mks AS (
				UPDATE hubsync.inbox i
				SET state = 'skipped', applied_at = now(),
				    error = 'stale: a newer value of this property was already applied'
				WHERE i.id = ANY (ARRAY(SELECT ev.id FROM ev WHERE ev.occurred_at <= ev.ver))
				RETURNING i.state
			), n AS (
				-- the text jsonb_build_object(...)::text gives, built directly
				SELECT '{"op": "update", "changed": '
				       || CASE WHEN upd.nprops = 1 THEN jsonb_build_array(upd.prop1)
				               ELSE (SELECT to_jsonb(array_agg(k ORDER BY k)) FROM jsonb_object_keys(upd.changed) k) END::text
				       || ', "direction": "in", "hubsync_id": "' || upd.hubsync_id::text || '", "object_type": ' || %5$L
				       || ', "hs_object_id": ' || coalesce(upd.object_id::text, 'null') || '}' AS payload,
				       upd.hubsync_id AS hid, upd.object_id
				FROM upd WHERE upd.changed <> '{}'
			)
			SELECT (SELECT count(*) FROM mk)::integer,
			       (SELECT count(*) FROM mks)::integer,
			       (SELECT count(pg_notify('hubsync_changes',
			                   CASE WHEN octet_length(n.payload) > 7900
			                        THEN jsonb_build_object('object_type', $3, 'hubsync_id', n.hid,
			                                 'hs_object_id', n.object_id, 'op', 'update', 'direction', 'in', 'changed', NULL,
			                                 'truncated', true)::text
			                        ELSE n.payload END)) FROM n)
			$q$, t.object_type, coalesce(v_set || ', ', ''), coalesce(v_diff || ' OR ', ''), coalesce(v_cc, 'NULL'),
			to_jsonb(t.object_type)::text)
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
	-- (each id looked up by primary key alone, state checked after: never
	-- a scan of the pending index or the table, however long the backlog)
	SELECT i.id
	FROM unnest(p_ids) AS x(id)
	CROSS JOIN LATERAL (SELECT i.id, i.occurred_at, i.state FROM hubsync.inbox i
	                    WHERE i.id = x.id LIMIT 1) i
	WHERE i.state = 'pending'
	ORDER BY i.occurred_at, i.id
$$;
COMMENT ON FUNCTION hubsync._inbox_still_pending(bigint[]) IS
  'API: private. Pull worker: the given inbox events still pending, in occurredAt order';

-- One inbox event: dispatch by subscription type, then record the outcome
-- on the inbox row.  Returns the outcome: applied, echo, reverted,
-- skipped, unknown (subscription type not handled), retry (a record
-- read failed; stays pending).  p_fetch_failed names the object types
-- whose read failed, and as 'type:id' single records a read left out.
CREATE FUNCTION hubsync._apply_event(p_id bigint, p_fetched jsonb, p_fetch_failed text[])
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e record;
	v_ot text;
	v_kind text;
	v_id bigint;
	v_known bigint;
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
	IF v_kind IN ('creation', 'restore', 'merge', 'propertyChange')
	   AND (v_ot = ANY (p_fetch_failed) OR v_ot || ':' || v_id = ANY (p_fetch_failed)
	        OR v_ot || ':' || (e.event ->> 'newObjectId') = ANY (p_fetch_failed)) THEN
		-- a read from HubSpot failed (for the type, or for this record or
		-- a merge's survivor): try again later
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
			-- A deletion older than the newest change hubsync applied to the
			-- record (restored, changed since: a replayed or late event)
			-- removes nothing.  The newest change is the largest occurredAt
			-- / updatedAt in sync_state.versions, which only hubsync writes
			-- (not the row's updated_at, which mirror writers can set).
			SELECT max(v.value::numeric)::bigint INTO v_known
			FROM hubsync.sync_state s CROSS JOIN LATERAL jsonb_each_text(s.versions) v
			WHERE s.object_type = v_ot AND s.hs_object_id = v_id
			  AND v.value ~ '^[0-9]{1,18}$';
			IF v_known IS NOT NULL AND e.occurred_at < v_known THEN
				SELECT 'skipped'::text AS outcome,
				       format('stale %s: occurredAt %s is older than the record''s last known change (%s); row kept',
				              v_kind, e.occurred_at, v_known) AS note INTO r;
			ELSE
				PERFORM hubsync._apply_delete(v_ot, v_id, v_kind = 'privacyDeletion');
				SELECT 'applied'::text AS outcome, NULL::text AS note INTO r;
			END IF;
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














-- >>> issue 7: revenue data and the object model
-------------------------------------------------------------------------------
-- Revenue data and the object model (issue 7): associations both ways
-------------------------------------------------------------------------------

-- An association row may name its type by label alone: the push worker
-- resolves the id from HubSpot's labels endpoint.
ALTER TABLE hubspot.associations ALTER COLUMN type_id DROP NOT NULL;
COMMENT ON COLUMN hubspot.associations.type_id IS
  'HubSpot associationTypeId; NULL on INSERT means: resolve it from label (NULL label = the unlabeled default type) through HubSpot''s labels endpoint';

CREATE TABLE hubsync.association_types (
	from_type   text NOT NULL,
	to_type     text NOT NULL,
	type_id     integer NOT NULL,
	category    text NOT NULL,
	label       text,
	fetched_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (from_type, to_type, type_id)
);
COMMENT ON TABLE hubsync.association_types IS
  'Cache of HubSpot''s association labels endpoint (GET /crm/v4/associations/{from}/{to}/labels): type ids, categories and labels per pair of object types';
COMMENT ON COLUMN hubsync.association_types.label IS 'label, NULL for the unlabeled type';
GRANT SELECT ON hubsync.association_types TO PUBLIC;

-- Push worker: store the labels endpoint's answer for one pair.
CREATE FUNCTION hubsync._assoc_types_store(p_from_type text, p_to_type text, p_results jsonb)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n integer;
BEGIN
	DELETE FROM hubsync.association_types t WHERE t.from_type = p_from_type AND t.to_type = p_to_type;
	INSERT INTO hubsync.association_types (from_type, to_type, type_id, category, label)
	SELECT DISTINCT ON ((r ->> 'typeId')::integer) p_from_type, p_to_type, (r ->> 'typeId')::integer,
	       coalesce(r ->> 'category', 'HUBSPOT_DEFINED'), nullif(r ->> 'label', '')
	FROM jsonb_array_elements(coalesce(p_results, '[]')) r
	WHERE (r ->> 'typeId') ~ '^[0-9]+$';
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION hubsync._assoc_types_store(text, text, jsonb) IS
  'API: private. Push worker: caches HubSpot''s association labels of a pair of object types';

-- The type id of a label between two object types, from the cache.
CREATE FUNCTION hubsync.association_type(from_type text, to_type text, label text DEFAULT NULL)
RETURNS integer
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT t.type_id FROM hubsync.association_types t
	WHERE t.from_type = association_type.from_type AND t.to_type = association_type.to_type
	  AND CASE WHEN association_type.label IS NULL
	           THEN t.label IS NULL AND t.category = 'HUBSPOT_DEFINED'
	           ELSE t.label = association_type.label END
	ORDER BY t.type_id LIMIT 1
$$;
COMMENT ON FUNCTION hubsync.association_type(text, text, text) IS
  'HubSpot associationTypeId of a label (NULL: the unlabeled default type) between two object types, from the cached labels endpoint; NULL when not cached yet';

-- Association changes waiting for HubSpot.  Kept apart from the record
-- outbox: an entry leaves only once both ends have a HubSpot id, so an
-- association to a record created in the same transaction follows that
-- record's create, and entries of one pair leave in commit order.
CREATE TABLE hubsync.association_outbox (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	op               text NOT NULL CHECK (op IN ('create', 'archive')),
	from_type        text NOT NULL,
	from_id          bigint,
	from_hubsync_id  uuid,
	to_type          text NOT NULL,
	to_id            bigint,
	to_hubsync_id    uuid,
	type_id          integer,
	category         text NOT NULL DEFAULT 'HUBSPOT_DEFINED',
	label            text,
	origin           text NOT NULL,
	state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'in_flight', 'failed')),
	attempts         integer NOT NULL DEFAULT 0,
	next_attempt_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	lease_until      timestamptz,
	created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_status      integer,
	last_error       text
);
CREATE INDEX association_outbox_pending_idx ON hubsync.association_outbox (id) WHERE state = 'pending';
-- the claim's look-ups: older changes of a pair, rows waiting for an id
CREATE INDEX association_outbox_from_idx ON hubsync.association_outbox (from_hubsync_id);
CREATE INDEX association_outbox_from_id_idx ON hubsync.association_outbox (from_id);
CREATE INDEX associations_from_hubsync_id_idx ON hubspot.associations (from_hubsync_id);
CREATE INDEX associations_from_id_idx ON hubspot.associations (from_type, from_id);
COMMENT ON TABLE hubsync.association_outbox IS
  'INSERTs and DELETEs of hubspot.associations waiting for HubSpot (v4 batch create / labels archive); an entry waits until both records have a HubSpot id; failed entries stay with their error';
COMMENT ON COLUMN hubsync.association_outbox.state IS
  'pending, in_flight while the push worker sends it, failed when HubSpot refused it for good (see last_error)';

CREATE FUNCTION hubsync._applying_remote() RETURNS boolean
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hubsync_applying_remote_fn';
COMMENT ON FUNCTION hubsync._applying_remote() IS
  'API: private. true while hubsync itself applies HubSpot''s changes (nothing is captured then)';

-- BEFORE trigger: fill a missing type id from a cached label, and a
-- missing label from a cached type id, so both directions keep labels;
-- an association already in the table is not inserted twice.
CREATE FUNCTION hubsync._association_defaults() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NEW.from_id IS NOT NULL AND NEW.to_id IS NOT NULL AND NEW.type_id IS NOT NULL AND EXISTS (
		SELECT 1 FROM hubspot.associations a
		WHERE a.from_type = NEW.from_type AND a.from_id = NEW.from_id AND a.to_type = NEW.to_type
		  AND a.to_id = NEW.to_id AND a.type_id = NEW.type_id) THEN
		-- already there (say, HubSpot's news of our own push): one row each
		RETURN NULL;
	END IF;
	IF NEW.type_id IS NULL THEN
		NEW.type_id := hubsync.association_type(NEW.from_type, NEW.to_type, NEW.label);
	END IF;
	IF NEW.type_id IS NOT NULL THEN
		-- HubSpot's word on a known type: its category, and its label
		SELECT coalesce(NEW.label, t.label), t.category INTO NEW.label, NEW.category
		FROM hubsync.association_types t
		WHERE t.from_type = NEW.from_type AND t.to_type = NEW.to_type AND t.type_id = NEW.type_id;
		IF NOT FOUND THEN
			NEW.category := coalesce(NEW.category, 'HUBSPOT_DEFINED');
		END IF;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION hubsync._association_defaults() IS
  'API: private. BEFORE INSERT trigger of hubspot.associations: type id from label and label from type id, from the cache';

-- AFTER trigger: application INSERTs and DELETEs of associations go to
-- the association outbox (not hubsync's own writes while applying
-- HubSpot's changes, nor a pg_restore).
CREATE FUNCTION hubsync._capture_association() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_origin text := coalesce(current_setting('hubsync.origin', true), 'app');
	n integer;
BEGIN
	-- pg_restore brings the queue back with the links; only a restore by a
	-- role that owns the table counts (anyone can set application_name)
	IF hubsync._applying_remote()
	   OR (current_setting('application_name') = 'pg_restore'
	       AND pg_has_role(session_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'USAGE')) THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'UPDATE' THEN
		-- filling in an id, type or label that was resolved later is no change
		IF NEW.from_type = OLD.from_type AND NEW.to_type = OLD.to_type
		   AND NEW.from_hubsync_id IS NOT DISTINCT FROM OLD.from_hubsync_id
		   AND NEW.to_hubsync_id IS NOT DISTINCT FROM OLD.to_hubsync_id
		   AND (OLD.from_id IS NULL OR NEW.from_id = OLD.from_id)
		   AND (OLD.to_id IS NULL OR NEW.to_id = OLD.to_id)
		   AND (OLD.type_id IS NULL OR NEW.type_id = OLD.type_id) THEN
			RETURN NULL;
		END IF;
	END IF;
	IF TG_OP IN ('DELETE', 'UPDATE') THEN
		-- a create not sent yet is simply dropped
		DELETE FROM hubsync.association_outbox o
		WHERE o.op = 'create' AND o.state = 'pending'
		  AND o.from_type = OLD.from_type AND o.to_type = OLD.to_type
		  AND o.from_id IS NOT DISTINCT FROM OLD.from_id AND o.to_id IS NOT DISTINCT FROM OLD.to_id
		  AND o.from_hubsync_id IS NOT DISTINCT FROM OLD.from_hubsync_id
		  AND o.to_hubsync_id IS NOT DISTINCT FROM OLD.to_hubsync_id
		  AND o.type_id IS NOT DISTINCT FROM OLD.type_id
		  AND o.label IS NOT DISTINCT FROM OLD.label;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n = 0 THEN
			INSERT INTO hubsync.association_outbox (op, from_type, from_id, from_hubsync_id, to_type,
				to_id, to_hubsync_id, type_id, category, label, origin)
			VALUES ('archive', OLD.from_type, OLD.from_id, OLD.from_hubsync_id, OLD.to_type,
				OLD.to_id, OLD.to_hubsync_id, OLD.type_id, OLD.category, OLD.label, v_origin);
		END IF;
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		IF NOT EXISTS (SELECT 1 FROM hubsync.object_types t WHERE t.object_type = NEW.from_type)
		   OR NOT EXISTS (SELECT 1 FROM hubsync.object_types t WHERE t.object_type = NEW.to_type) THEN
			RAISE EXCEPTION 'association between unknown object types "%" and "%"', NEW.from_type, NEW.to_type
				USING ERRCODE = 'undefined_object',
				      HINT = 'from_type and to_type are mirror table names from hubsync.object_types.';
		END IF;
		INSERT INTO hubsync.association_outbox (op, from_type, from_id, from_hubsync_id, to_type,
			to_id, to_hubsync_id, type_id, category, label, origin)
		VALUES ('create', NEW.from_type, NEW.from_id, NEW.from_hubsync_id, NEW.to_type,
			NEW.to_id, NEW.to_hubsync_id, NEW.type_id, NEW.category, NEW.label, v_origin);
	END IF;
	PERFORM hubsync._wake_push();
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION hubsync._capture_association() IS
  'API: private. AFTER trigger of hubspot.associations: queues INSERTs and DELETEs for HubSpot';

CREATE TRIGGER hubsync_association_defaults BEFORE INSERT ON hubspot.associations
	FOR EACH ROW EXECUTE FUNCTION hubsync._association_defaults();
CREATE TRIGGER hubsync_capture AFTER INSERT OR UPDATE OR DELETE ON hubspot.associations
	FOR EACH ROW EXECUTE FUNCTION hubsync._capture_association();

-- HubSpot id of a record by its hubsync_id, or NULL.
CREATE FUNCTION hubsync._hs_id(p_object_type text, p_hubsync_id uuid) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v bigint;
BEGIN
	IF p_hubsync_id IS NULL THEN
		RETURN NULL;
	END IF;
	EXECUTE format('SELECT hs_object_id FROM hubspot.%I WHERE hubsync_id = $1', p_object_type)
		INTO v USING p_hubsync_id;
	IF v IS NULL THEN
		SELECT s.hs_object_id INTO v FROM hubsync.sync_state s WHERE s.hubsync_id = p_hubsync_id;
	END IF;
	RETURN v;
END
$$;
COMMENT ON FUNCTION hubsync._hs_id(text, uuid) IS
  'API: private. HubSpot id of a mirror row by hubsync_id, NULL while it is not in HubSpot';

-- Whether a mirror row exists.
CREATE FUNCTION hubsync._row_exists(p_object_type text, p_hubsync_id uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v boolean;
BEGIN
	IF p_hubsync_id IS NULL OR to_regclass(format('hubspot.%I', p_object_type)) IS NULL THEN
		RETURN false;
	END IF;
	EXECUTE format('SELECT EXISTS (SELECT 1 FROM hubspot.%I WHERE hubsync_id = $1)', p_object_type)
		INTO v USING p_hubsync_id;
	RETURN v;
END
$$;
COMMENT ON FUNCTION hubsync._row_exists(text, uuid) IS
  'API: private. Whether the mirror table of an object type has a row with this hubsync_id';

-- Push worker: claim association changes that can leave now.  An entry
-- waits while an end has no HubSpot id yet (its create is still in the
-- outbox), while an older entry of the same pair is queued, and while its
-- type is a label not cached yet: then a row of kind 'labels' asks the
-- worker to read the pair's labels.  Kinds: 'create', 'archive', 'labels'.
CREATE FUNCTION hubsync._assoc_claim(p_limit integer, p_lease_seconds integer)
RETURNS TABLE (kind text, id bigint, from_api text, to_api text, from_type text, to_type text,
               from_id bigint, to_id bigint, type_id integer, category text, attempts integer,
               first_created timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	e record;
	v_from bigint;
	v_to bigint;
	v_type integer;
	v_cat text;
	v_asked text[] := '{}';
	v_n integer := 0;
BEGIN
	UPDATE hubsync.association_outbox o SET state = 'pending', lease_until = NULL
	WHERE o.state = 'in_flight' AND o.lease_until < now();
	FOR e IN
		SELECT o.* FROM hubsync.association_outbox o
		WHERE o.state = 'pending' AND o.next_attempt_at <= now()
		ORDER BY o.id LIMIT p_limit * 4
		FOR UPDATE SKIP LOCKED
	LOOP
		EXIT WHEN v_n >= p_limit;
		-- an older change of the same pair goes first
		CONTINUE WHEN EXISTS (
			SELECT 1 FROM hubsync.association_outbox p
			WHERE p.from_hubsync_id = e.from_hubsync_id
			  AND p.id < e.id AND p.state IN ('pending', 'in_flight')
			  AND p.from_type = e.from_type AND p.to_type = e.to_type
			  AND (p.to_id = e.to_id OR p.to_hubsync_id = e.to_hubsync_id))
		  OR EXISTS (
			SELECT 1 FROM hubsync.association_outbox p
			WHERE p.from_id = e.from_id
			  AND p.id < e.id AND p.state IN ('pending', 'in_flight')
			  AND p.from_type = e.from_type AND p.to_type = e.to_type
			  AND (p.to_id = e.to_id OR p.to_hubsync_id = e.to_hubsync_id));
		v_from := coalesce(e.from_id, hubsync._hs_id(e.from_type, e.from_hubsync_id));
		v_to := coalesce(e.to_id, hubsync._hs_id(e.to_type, e.to_hubsync_id));
		IF v_from IS NULL OR v_to IS NULL THEN
			IF e.op = 'archive' THEN
				-- never reached HubSpot: nothing to remove there
				DELETE FROM hubsync.association_outbox o WHERE o.id = e.id;
			ELSIF (v_from IS NULL AND NOT hubsync._row_exists(e.from_type, e.from_hubsync_id))
			   OR (v_to IS NULL AND NOT hubsync._row_exists(e.to_type, e.to_hubsync_id)) THEN
				UPDATE hubsync.association_outbox o
				SET state = 'failed', last_error = 'a record of this association was deleted before it reached HubSpot'
				WHERE o.id = e.id;
			ELSE
				-- waits for its record's create; meanwhile later entries get
				-- their turn (the records of a commit normally leave before
				-- its associations are looked at, so this is the odd case)
				UPDATE hubsync.association_outbox o SET next_attempt_at = now() + interval '1 second'
				WHERE o.id = e.id;
			END IF;
			CONTINUE;
		END IF;
		v_type := e.type_id;
		v_cat := e.category;
		IF v_type IS NULL THEN
			SELECT t.type_id, t.category INTO v_type, v_cat FROM hubsync.association_types t
			WHERE t.from_type = e.from_type AND t.to_type = e.to_type
			  AND CASE WHEN e.label IS NULL THEN t.label IS NULL AND t.category = 'HUBSPOT_DEFINED'
			           ELSE t.label = e.label END
			ORDER BY t.type_id LIMIT 1;
			IF v_type IS NULL THEN
				IF EXISTS (SELECT 1 FROM hubsync.association_types t
				           WHERE t.from_type = e.from_type AND t.to_type = e.to_type
				             AND t.fetched_at > now() - interval '1 minute') THEN
					UPDATE hubsync.association_outbox o
					SET state = 'failed', last_error = format('HubSpot has no association label %s from %s to %s',
					        coalesce(quote_literal(e.label), '(unlabeled)'), e.from_type, e.to_type)
					WHERE o.id = e.id;
				ELSIF NOT (e.from_type || '/' || e.to_type) = ANY (v_asked) THEN
					v_asked := v_asked || (e.from_type || '/' || e.to_type);
					kind := 'labels'; id := NULL;
					SELECT t.api_name INTO from_api FROM hubsync.object_types t WHERE t.object_type = e.from_type;
					SELECT t.api_name INTO to_api FROM hubsync.object_types t WHERE t.object_type = e.to_type;
					from_type := e.from_type; to_type := e.to_type;
					from_id := NULL; to_id := NULL; type_id := NULL; category := NULL;
					attempts := 0; first_created := e.created_at;
					RETURN NEXT;
				END IF;
				CONTINUE;
			END IF;
		END IF;
		UPDATE hubsync.association_outbox o
		SET state = 'in_flight', lease_until = now() + make_interval(secs => p_lease_seconds),
		    attempts = o.attempts + 1, from_id = v_from, to_id = v_to, type_id = v_type, category = v_cat
		WHERE o.id = e.id;
		IF e.op = 'create' AND (e.from_id IS NULL OR e.to_id IS NULL OR e.type_id IS NULL) THEN
			-- the mirror learns the ids and type it was waiting for
			IF e.from_hubsync_id IS NOT NULL THEN
				UPDATE hubspot.associations a
				SET from_id = coalesce(a.from_id, v_from), to_id = coalesce(a.to_id, v_to),
				    type_id = coalesce(a.type_id, v_type)
				WHERE a.from_hubsync_id = e.from_hubsync_id
				  AND a.from_type = e.from_type AND a.to_type = e.to_type
				  AND (a.to_id = v_to OR a.to_hubsync_id = e.to_hubsync_id)
				  AND (a.type_id IS NULL OR a.type_id = v_type)
				  AND (a.from_id IS NULL OR a.to_id IS NULL OR a.type_id IS NULL);
			ELSE
				UPDATE hubspot.associations a
				SET to_id = coalesce(a.to_id, v_to), type_id = coalesce(a.type_id, v_type)
				WHERE a.from_type = e.from_type AND a.from_id = v_from AND a.to_type = e.to_type
				  AND (a.to_id = v_to OR a.to_hubsync_id = e.to_hubsync_id)
				  AND (a.type_id IS NULL OR a.type_id = v_type)
				  AND (a.to_id IS NULL OR a.type_id IS NULL);
			END IF;
		END IF;
		kind := e.op; id := e.id;
		SELECT t.api_name INTO from_api FROM hubsync.object_types t WHERE t.object_type = e.from_type;
		SELECT t.api_name INTO to_api FROM hubsync.object_types t WHERE t.object_type = e.to_type;
		from_type := e.from_type; to_type := e.to_type;
		from_id := v_from; to_id := v_to; type_id := v_type; category := v_cat;
		attempts := e.attempts + 1; first_created := e.created_at;
		v_n := v_n + 1;
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync._assoc_claim(integer, integer) IS
  'API: private. Push worker: association changes ready to send (both ends in HubSpot), and label look-ups needed';

-- Push worker: HubSpot accepted association changes.
CREATE FUNCTION hubsync._assoc_done(p_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	WITH d AS (
		DELETE FROM hubsync.association_outbox o WHERE o.id = ANY (p_ids) RETURNING o.*
	)
	INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties)
	SELECT 'out', 'associations', d.from_hubsync_id, d.from_id,
	       CASE d.op WHEN 'create' THEN 'insert' ELSE 'delete' END, d.origin,
	       jsonb_build_object('from_type', d.from_type, 'from_id', d.from_id, 'to_type', d.to_type,
	                          'to_id', d.to_id, 'type_id', d.type_id, 'category', d.category, 'label', d.label)
	FROM d ORDER BY d.id;
END
$$;
COMMENT ON FUNCTION hubsync._assoc_done(bigint[]) IS
  'API: private. Push worker: records association changes HubSpot accepted';

-- Push worker: association changes to try again later, or failed for good.
-- The alert names the changes and the status; HubSpot's message stays in
-- hubsync.association_outbox.last_error (anyone may LISTEN).
CREATE FUNCTION hubsync._assoc_retry(p_ids bigint[], p_status integer, p_error text,
	p_delay_ms bigint, p_count_attempt boolean, p_failed boolean) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE hubsync.association_outbox o
	SET state = CASE WHEN p_failed THEN 'failed' ELSE 'pending' END, lease_until = NULL,
	    next_attempt_at = now() + make_interval(secs => p_delay_ms / 1000.0),
	    attempts = CASE WHEN p_count_attempt THEN o.attempts ELSE greatest(o.attempts - 1, 0) END,
	    last_status = p_status, last_error = p_error
	WHERE o.id = ANY (p_ids);
	SELECT pg_notify('hubsync_alerts', jsonb_build_object('alert', 'association_failed',
		'ids', to_jsonb(p_ids), 'status', p_status)::text)
	WHERE p_failed;
$$;
COMMENT ON FUNCTION hubsync._assoc_retry(bigint[], integer, text, bigint, boolean, boolean) IS
  'API: private. Push worker: schedules association changes again, or marks them failed';

-- Send failed association changes again.
CREATE FUNCTION hubsync.retry_failed_associations() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM hubsync._require_owner('retry failed associations');
	UPDATE hubsync.association_outbox o
	SET state = 'pending', attempts = 0, next_attempt_at = now()
	WHERE o.state = 'failed';
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		PERFORM hubsync._wake_push();
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION hubsync.retry_failed_associations() IS
  'Re-queues association changes HubSpot refused (state failed in hubsync.association_outbox); returns how many';

-------------------------------------------------------------------------------
-- Revenue data and the object model (issue 7): typed properties
-------------------------------------------------------------------------------

CREATE FUNCTION hubsync._hubspot_get(path text) RETURNS jsonb
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_hubspot_get';
COMMENT ON FUNCTION hubsync._hubspot_get(text) IS
  'API: private. One GET from HubSpot in this backend: {"status": N, "body": JSON}; for track_object and map_property';

-- The SQL type for a HubSpot property definition (its type and fieldType).
CREATE FUNCTION hubsync._sql_type_of(p_def jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE p_def ->> 'type'
		WHEN 'number' THEN 'numeric'
		WHEN 'date' THEN 'date'
		WHEN 'datetime' THEN 'timestamptz'
		WHEN 'bool' THEN 'boolean'
		WHEN 'enumeration' THEN CASE WHEN p_def ->> 'fieldType' = 'checkbox' THEN 'text[]' ELSE 'text' END
		ELSE 'text'
	END
$$;
COMMENT ON FUNCTION hubsync._sql_type_of(jsonb) IS
  'API: private. SQL column type of a HubSpot property: number numeric, date date, datetime timestamptz, bool boolean, multi-select text[], else text';

-- Adds the typed column of a property to a mirror table and moves the
-- values already in properties into it.  Values that do not convert stay
-- in properties.  The fill is no change to HubSpot, so the capture
-- trigger is off for it (the ALTER TABLE lock keeps other writers out
-- until commit, so nothing else goes uncaptured).
CREATE FUNCTION hubsync._add_typed_column(p_object_type text, p_property text, p_sql_type text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	tbl regclass := hubsync._mirror_table(p_object_type);
	col text := p_property;
BEGIN
	IF col IN ('hubsync_id', 'hs_object_id', 'properties', 'created_at', 'updated_at')
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attname = col AND NOT a.attisdropped) THEN
		col := left('p_' || p_property, 63);
	END IF;
	INSERT INTO hubsync.property_map (object_type, property, column_name, sql_type)
	VALUES (p_object_type, p_property, col, p_sql_type);
	EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', tbl, col, p_sql_type);
	EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', tbl, col, format('HubSpot property %s', p_property));
	EXECUTE format('ALTER TABLE %s DISABLE TRIGGER hubsync_capture', tbl);
	EXECUTE format(
		'UPDATE %1$s t SET %2$I = c.v::%3$s, properties = t.properties - %4$L
		 FROM (SELECT hubsync_id, hubsync._wire_to_column(properties ->> %4$L, %5$L) AS v,
		              properties ->> %4$L AS raw
		       FROM %1$s WHERE properties ? %4$L) c
		 WHERE t.hubsync_id = c.hubsync_id AND (c.v IS NOT NULL OR coalesce(c.raw, '''') = '''')',
		tbl, col, p_sql_type, p_property, p_sql_type);
	EXECUTE format('ALTER TABLE %s ENABLE TRIGGER hubsync_capture', tbl);
	PERFORM hubsync._invalidate_mirror(tbl);
END
$$;
COMMENT ON FUNCTION hubsync._add_typed_column(text, text, text) IS
  'API: private. Adds a typed property column to a mirror table, filled from properties';

-- Turns a HubSpot property into a typed column of its mirror table.
CREATE FUNCTION hubsync.map_property(object_type text, property text, sql_type text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_api text;
	v_old text;
	v_type text := map_property.sql_type;
	r jsonb;
BEGIN
	PERFORM hubsync._require_owner('map HubSpot properties');
	PERFORM hubsync._mirror_table(map_property.object_type);
	IF property IS NULL OR property !~ '^[a-z][a-z0-9_]{0,99}$' THEN
		RAISE EXCEPTION 'invalid HubSpot property name "%"', property
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'HubSpot property names are lower case letters, digits and underscores.';
	END IF;
	IF property IN ('hubsync_id', 'hs_object_id') THEN
		RAISE EXCEPTION 'property "%" is hubsync''s own', property
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'It is already a column of every mirror table.';
	END IF;
	IF v_type IS NOT NULL AND v_type NOT IN ('text', 'numeric', 'timestamptz', 'date', 'boolean', 'text[]', 'bigint') THEN
		RAISE EXCEPTION 'unsupported column type "%"', v_type
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'Use text, numeric, timestamptz, date, boolean, text[] or bigint, or NULL to take the type from HubSpot.';
	END IF;
	SELECT m.sql_type INTO v_old FROM hubsync.property_map m
	WHERE m.object_type = map_property.object_type AND m.property = map_property.property;
	IF v_old IS NOT NULL THEN
		IF v_type IS NULL OR v_type = v_old THEN
			RETURN v_old;		-- already mapped: nothing to do
		END IF;
		RAISE EXCEPTION 'property "%" of % is already a % column', property, object_type, v_old
			USING ERRCODE = 'duplicate_column',
			      HINT = 'A mapped property keeps its type.';
	END IF;
	IF v_type IS NULL THEN
		SELECT t.api_name INTO v_api FROM hubsync.object_types t WHERE t.object_type = map_property.object_type;
		r := hubsync._hubspot_get(format('/crm/v3/properties/%s/%s', v_api, property));
		IF (r ->> 'status')::integer = 404 THEN
			RAISE EXCEPTION 'HubSpot has no property "%" on %', property, object_type
				USING ERRCODE = 'undefined_object',
				      HINT = 'Create it in HubSpot first, or pass the column type to map it anyway.';
		ELSIF (r ->> 'status')::integer <> 200 THEN
			RAISE EXCEPTION 'could not read property "%" of % from HubSpot (HTTP %)', property, object_type, r ->> 'status'
				USING ERRCODE = 'connection_failure',
				      HINT = 'Pass the column type to map the property without asking HubSpot.';
		END IF;
		v_type := hubsync._sql_type_of(r -> 'body');
	END IF;
	PERFORM hubsync._add_typed_column(map_property.object_type, property, v_type);
	RETURN v_type;
END
$$;
COMMENT ON FUNCTION hubsync.map_property(text, text, text) IS
  'Turns a HubSpot property into a typed column of its mirror table (type from HubSpot''s property definition when not given), filled from properties; returns the column type';

-- Values of typed properties that could not convert and were kept in
-- properties instead (the column is NULL): the conversion report.
CREATE FUNCTION hubsync.unconverted_values(only_type text DEFAULT NULL)
RETURNS TABLE (object_type text, hubsync_id uuid, hs_object_id bigint, property text,
               sql_type text, value text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m record;
BEGIN
	FOR m IN
		SELECT pm.object_type AS ot, pm.property AS prop, pm.sql_type AS ty
		FROM hubsync.property_map pm
		WHERE only_type IS NULL OR pm.object_type = only_type
		ORDER BY 1, 2
	LOOP
		RETURN QUERY EXECUTE format(
			'SELECT %L::text, t.hubsync_id, t.hs_object_id, %L::text, %L::text, t.properties ->> %L
			 FROM hubspot.%I t WHERE t.properties ? %L ORDER BY t.hubsync_id',
			m.ot, m.prop, m.ty, m.prop, m.ot, m.prop);
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync.unconverted_values(text) IS
  'HubSpot values of typed properties that could not convert to the column type: kept in properties, listed here';

-- More revenue properties in typed columns (HubSpot types per the API
-- notes, section 10).  Added with ALTER TABLE, like map_property, so that
-- a fresh install and an upgraded one have the same column order.
SELECT hubsync._add_typed_column(m.t, m.p, m.ty)
FROM (VALUES
	('invoices', 'hs_amount_paid', 'numeric'), ('invoices', 'hs_subtotal', 'numeric'),
	('subscriptions', 'hs_last_payment_date', 'timestamptz'),
	('commerce_payments', 'hs_net_amount', 'numeric'), ('commerce_payments', 'hs_fees_amount', 'numeric'),
	('line_items', 'discount', 'numeric'), ('line_items', 'tax', 'numeric'),
	('line_items', 'hs_discount_percentage', 'numeric'),
	('line_items', 'hs_line_item_currency_code', 'text'),
	('line_items', 'hs_recurring_billing_start_date', 'date')
) AS m(t, p, ty);
UPDATE hubsync.property_map SET builtin = true
WHERE (object_type, property) IN (('invoices', 'hs_amount_paid'), ('invoices', 'hs_subtotal'),
	('subscriptions', 'hs_last_payment_date'), ('commerce_payments', 'hs_net_amount'),
	('commerce_payments', 'hs_fees_amount'), ('line_items', 'discount'), ('line_items', 'tax'),
	('line_items', 'hs_discount_percentage'), ('line_items', 'hs_line_item_currency_code'),
	('line_items', 'hs_recurring_billing_start_date'));

-------------------------------------------------------------------------------
-- Revenue data and the object model (issue 7): BI views in hubspot
-------------------------------------------------------------------------------
-- Months are calendar months in UTC; amounts are summed per currency and
-- never converted; records HubSpot merged away (hubsync.merges) never
-- count.  The exact definitions are in docs/bi.md.

-- Closed-won deal amount by close month and pipeline.
CREATE VIEW hubspot.revenue_by_month AS
SELECT date_trunc('month', d.closedate AT TIME ZONE 'UTC')::date AS month,
       d.pipeline,
       d.deal_currency_code AS currency,
       count(*) AS deals,
       coalesce(sum(d.amount), 0) AS amount
FROM hubspot.deals d
WHERE (d.dealstage = 'closedwon' OR d.properties ->> 'hs_is_closed_won' = 'true')
  AND d.closedate IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM hubsync.merges m
                  WHERE m.object_type = 'deals' AND m.merged_id = d.hs_object_id)
GROUP BY 1, 2, 3;
COMMENT ON VIEW hubspot.revenue_by_month IS
  'Closed-won deals (dealstage closedwon or hs_is_closed_won) by UTC close month, pipeline and currency: count and sum of amount';

-- Periods per year of a billing frequency (NULL: monthly).
CREATE FUNCTION hubsync.billing_periods_per_year(frequency text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE coalesce(frequency, 'monthly')
		WHEN 'weekly' THEN 52 WHEN 'biweekly' THEN 26 WHEN 'monthly' THEN 12
		WHEN 'quarterly' THEN 4 WHEN 'per_six_months' THEN 2 WHEN 'annually' THEN 1
		WHEN 'per_two_years' THEN 0.5 WHEN 'per_three_years' THEN 1 / 3.0
		WHEN 'per_four_years' THEN 0.25 WHEN 'per_five_years' THEN 0.2
	END::numeric
$$;
COMMENT ON FUNCTION hubsync.billing_periods_per_year(text) IS
  'Billing periods per year of a HubSpot recurring billing frequency (weekly 52 ... per_five_years 0.2; NULL is monthly)';

-- Monthly recurring revenue of the subscriptions active in each month.
CREATE VIEW hubspot.mrr AS
WITH s AS (
	SELECT s.hs_currency_code AS currency,
	       s.hs_recurring_revenue * hubsync.billing_periods_per_year(s.hs_recurring_billing_frequency) AS yearly,
	       date_trunc('month', s.hs_start_date)::date AS first_month,
	       date_trunc('month', coalesce(s.hs_end_date, current_date))::date AS last_month
	FROM hubspot.subscriptions s
	WHERE s.hs_start_date IS NOT NULL AND s.hs_recurring_revenue IS NOT NULL
	  AND (s.hs_status IN ('active', 'past_due')
	       OR (s.hs_status IN ('canceled', 'expired') AND s.hs_end_date IS NOT NULL))
	  AND NOT EXISTS (SELECT 1 FROM hubsync.merges m
	                  WHERE m.object_type = 'subscriptions' AND m.merged_id = s.hs_object_id)
)
SELECT g.month::date AS month, s.currency, count(*) AS subscriptions,
       round(sum(s.yearly) / 12, 2) AS mrr
FROM s, generate_series(s.first_month, s.last_month, interval '1 month') g(month)
GROUP BY 1, 2;
COMMENT ON VIEW hubspot.mrr IS
  'Monthly recurring revenue by month and currency: subscriptions active in the month, hs_recurring_revenue normalised to a month (x periods per year / 12), rounded to cents';

-- Open invoice balance by days past due, as of a given day.
CREATE FUNCTION hubsync.invoice_aging(as_of date DEFAULT current_date)
RETURNS TABLE (bucket text, currency text, invoices bigint, balance numeric)
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN a.days <= 30 THEN '0-30' WHEN a.days <= 60 THEN '31-60'
	            WHEN a.days <= 90 THEN '61-90' ELSE '90+' END,
	       a.hs_currency, count(*), sum(a.hs_balance_due)
	FROM (SELECT i.hs_currency, i.hs_balance_due,
	             greatest(coalesce(invoice_aging.as_of - i.hs_due_date, 0), 0) AS days
	      FROM hubspot.invoices i
	      WHERE i.hs_invoice_status = 'open' AND i.hs_balance_due > 0
	        AND NOT EXISTS (SELECT 1 FROM hubsync.merges m
	                        WHERE m.object_type = 'invoices' AND m.merged_id = i.hs_object_id)) a
	GROUP BY 1, 2
	ORDER BY min(a.days), 2
$$;
COMMENT ON FUNCTION hubsync.invoice_aging(date) IS
  'Open invoices with a balance due, by days past due on a given day (0-30 includes not yet due), per currency';

CREATE VIEW hubspot.invoice_aging AS SELECT * FROM hubsync.invoice_aging(current_date);
COMMENT ON VIEW hubspot.invoice_aging IS
  'Open invoice balance (hs_balance_due of invoices with hs_invoice_status open) in 0-30 / 31-60 / 61-90 / 90+ days past hs_due_date, today, per currency';

-- Succeeded payments minus refunds, by month.
CREATE VIEW hubspot.payments_by_month AS
SELECT date_trunc('month', p.hs_initiated_date AT TIME ZONE 'UTC')::date AS month,
       p.hs_currency_code AS currency,
       count(*) AS payments,
       sum(p.hs_initial_amount) AS gross,
       sum(coalesce(p.hs_refunds_amount, 0)) AS refunds,
       sum(p.hs_initial_amount) - sum(coalesce(p.hs_refunds_amount, 0)) AS net
FROM hubspot.commerce_payments p
WHERE p.hs_latest_status IN ('succeeded', 'partially_refunded', 'refunded')
  AND p.hs_initiated_date IS NOT NULL AND p.hs_initial_amount IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM hubsync.merges m
                  WHERE m.object_type = 'commerce_payments' AND m.merged_id = p.hs_object_id)
GROUP BY 1, 2;
COMMENT ON VIEW hubspot.payments_by_month IS
  'Payments that succeeded (hs_latest_status succeeded, partially_refunded or refunded) by UTC month of hs_initiated_date and currency: gross, refunds (hs_refunds_amount) and net';


-------------------------------------------------------------------------------
-- Revenue data and the object model (issue 7): custom objects
-------------------------------------------------------------------------------

-- Mirrors a HubSpot custom object: reads its schema, records the object
-- type (objectTypeId, API name, poller's last-modified property), maps its
-- own properties to typed columns and creates hubspot.<name>.
CREATE FUNCTION hubsync.track_object(object_type text) RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r jsonb;
	s jsonb;
	v_tid text;
	v_name text;
	v_existing text;
	p jsonb;
BEGIN
	PERFORM hubsync._require_owner('track HubSpot object types');
	IF object_type IS NULL OR object_type !~ '^(2-[0-9]+|p[0-9]*_[a-z0-9_]+|[a-z][a-z0-9_]*)$' THEN
		RAISE EXCEPTION 'invalid custom object "%"', object_type
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'Name a custom object by its objectTypeId (2-123456), p_{name} or p{portalId}_{name}.';
	END IF;
	SELECT t.object_type INTO v_existing FROM hubsync.object_types t
	WHERE t.object_type_id = track_object.object_type OR t.api_name = track_object.object_type
	   OR t.object_type = track_object.object_type;
	IF v_existing IS NOT NULL THEN
		RETURN hubsync._mirror_table(v_existing);
	END IF;
	r := hubsync._hubspot_get('/crm/v3/schemas/' || object_type);
	IF (r ->> 'status')::integer = 404 THEN
		RAISE EXCEPTION 'HubSpot has no custom object "%"', object_type
			USING ERRCODE = 'undefined_object',
			      HINT = 'GET /crm/v3/schemas lists the custom objects of the account.';
	ELSIF (r ->> 'status')::integer <> 200 THEN
		RAISE EXCEPTION 'could not read the schema of "%" from HubSpot (HTTP %)', object_type, r ->> 'status'
			USING ERRCODE = 'connection_failure',
			      HINT = 'Check the credentials (scope crm.schemas.custom.read) and try again.';
	END IF;
	s := r -> 'body';
	v_tid := s ->> 'objectTypeId';
	SELECT t.object_type INTO v_existing FROM hubsync.object_types t WHERE t.object_type_id = v_tid;
	IF v_existing IS NOT NULL THEN
		RETURN hubsync._mirror_table(v_existing);
	END IF;
	v_name := left(regexp_replace(lower(coalesce(s ->> 'name', 'object_' || replace(v_tid, '-', '_'))),
	                              '[^a-z0-9_]', '_', 'g'), 60);
	IF v_name !~ '^[a-z_]' THEN
		v_name := 'p_' || v_name;
	END IF;
	IF EXISTS (SELECT 1 FROM hubsync.object_types t WHERE t.object_type = v_name)
	   OR v_name = 'associations' OR to_regclass(format('hubspot.%I', v_name)) IS NOT NULL THEN
		v_name := left('p_' || v_name, 63);
	END IF;
	INSERT INTO hubsync.object_types (object_type, object_type_id, api_name, webhook_prefix, last_modified_property)
	VALUES (v_name, v_tid, v_tid, NULL, 'hs_lastmodifieddate');
	FOR p IN SELECT * FROM jsonb_array_elements(coalesce(s -> 'properties', '[]')) LOOP
		CONTINUE WHEN coalesce((p ->> 'hubspotDefined')::boolean, false)
		           OR p ->> 'name' IN ('hubsync_id', 'hs_object_id')
		           OR p ->> 'name' !~ '^[a-z][a-z0-9_]{0,62}$'
		           OR (p ->> 'name') IN ('properties', 'created_at', 'updated_at');
		INSERT INTO hubsync.property_map (object_type, property, column_name, sql_type)
		VALUES (v_name, p ->> 'name', p ->> 'name', hubsync._sql_type_of(p))
		ON CONFLICT DO NOTHING;
	END LOOP;
	PERFORM hubsync._create_mirror_table(v_name);
	PERFORM hubsync._wake_workers();
	RETURN hubsync._mirror_table(v_name);
END
$$;
COMMENT ON FUNCTION hubsync.track_object(text) IS
  'Mirrors a HubSpot custom object (objectTypeId 2-N, p_{name} or p{portal}_{name}): reads its schema, creates hubspot.<name> with typed columns for its properties; it then syncs both ways like a standard object';

SELECT pg_catalog.pg_extension_config_dump('hubsync.association_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.association_types', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.association_outbox', 'id')::regclass, '');

-- <<< issue 7: revenue data and the object model

-------------------------------------------------------------------------------
-- Operations: status, alerts, housekeeping (issue 10)
-------------------------------------------------------------------------------

-- Hot queue tables: vacuum and analyze them early -- a drained backlog
-- leaves as many dead rows as it had changes, and the claim's plan needs
-- fresh statistics -- and leave room in each page for HOT updates
-- (outbox state, sync_state values).
ALTER TABLE hubsync.outbox SET (fillfactor = 80,
	autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
	autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_vacuum_insert_threshold = 1000,
	autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000);
ALTER TABLE hubsync.inbox SET (fillfactor = 90,
	autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
	autovacuum_vacuum_insert_scale_factor = 0.05,
	autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000);
ALTER TABLE hubsync.sync_state SET (fillfactor = 80,
	autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE hubsync.changes SET (
	autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05,
	autovacuum_analyze_scale_factor = 0.05);

-- Last push and pull per object type, and pruning of the change feed by
-- age per object type and direction.
CREATE INDEX changes_object_type_direction_at_idx ON hubsync.changes (object_type, direction, at);
-- Pruning of applied and skipped webhook events by age.
CREATE INDEX inbox_done_received_at_idx ON hubsync.inbox (received_at) WHERE state IN ('applied', 'skipped');

-- The alerts sent on NOTIFY hubsync_alerts: the latest of each kind and
-- subject, and how many were held back since by the rate limit.
CREATE TABLE hubsync.alerts (
	alert            text NOT NULL,
	key              text NOT NULL DEFAULT '',
	first_sent_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_sent_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_seen_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
	sent             bigint NOT NULL DEFAULT 1,
	suppressed       bigint NOT NULL DEFAULT 0,
	payload          jsonb NOT NULL,
	PRIMARY KEY (alert, key)
);
COMMENT ON TABLE hubsync.alerts IS
  'Alerts sent on NOTIFY hubsync_alerts: the latest of each kind and subject; repeats within hubsync.alert_interval are counted, not sent';
COMMENT ON COLUMN hubsync.alerts.alert IS 'dead_letter, auth_failed, pending_age, inbound_lag, daily_quota or trigger_grant';
COMMENT ON COLUMN hubsync.alerts.key IS 'subject: object type (dead_letter, pending_age), UTC day (daily_quota), mirror table (trigger_grant) or empty';
COMMENT ON COLUMN hubsync.alerts.last_sent_at IS 'when the last NOTIFY was sent';
COMMENT ON COLUMN hubsync.alerts.last_seen_at IS 'when the condition was last seen, sent or not';
COMMENT ON COLUMN hubsync.alerts.sent IS 'notifications sent for this kind and subject';
COMMENT ON COLUMN hubsync.alerts.suppressed IS 'occurrences held back by the rate limit since the last notification';
COMMENT ON COLUMN hubsync.alerts.payload IS 'JSON payload of the last notification';

-- Pauses survive pg_dump: the rows of the built-in object types are not
-- dumped (CREATE EXTENSION makes them), so their paused flag is mirrored
-- in a table that is.  Triggers keep the two in step both ways; a restore
-- of hubsync.paused_types pauses the types again.
CREATE TABLE hubsync.paused_types (
	object_type      text PRIMARY KEY
);
COMMENT ON TABLE hubsync.paused_types IS
  'Object types held by hubsync.pause(), kept in step with hubsync.object_types.paused so that pg_dump carries pauses';

CREATE FUNCTION hubsync._types_to_paused() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NEW.paused THEN
		INSERT INTO hubsync.paused_types (object_type) VALUES (NEW.object_type) ON CONFLICT DO NOTHING;
	ELSE
		DELETE FROM hubsync.paused_types p WHERE p.object_type = NEW.object_type;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION hubsync._types_to_paused() IS
  'API: private. Trigger: records a pause or resume of hubsync.object_types in hubsync.paused_types';

CREATE FUNCTION hubsync._paused_to_types() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		UPDATE hubsync.object_types t SET paused = true
		WHERE t.object_type = NEW.object_type AND NOT t.paused;
	ELSE
		UPDATE hubsync.object_types t SET paused = false
		WHERE t.object_type = OLD.object_type AND t.paused;
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION hubsync._paused_to_types() IS
  'API: private. Trigger: a row of hubsync.paused_types (say restored by pg_restore) pauses its object type';

CREATE TRIGGER hubsync_paused AFTER UPDATE OF paused ON hubsync.object_types
	FOR EACH ROW EXECUTE FUNCTION hubsync._types_to_paused();
CREATE TRIGGER hubsync_paused AFTER INSERT OR DELETE ON hubsync.paused_types
	FOR EACH ROW EXECUTE FUNCTION hubsync._paused_to_types();
SELECT pg_catalog.pg_extension_config_dump('hubsync.paused_types', '');

-- A duration setting as an interval; p_default when the library is not
-- loaded (the setting does not exist then).
CREATE FUNCTION hubsync._setting_interval(p_name text, p_default interval) RETURNS interval
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(nullif(current_setting(p_name, true), '')::interval, p_default)
$$;
COMMENT ON FUNCTION hubsync._setting_interval(text, interval) IS
  'API: private. A hubsync duration setting as an interval';

-- Sends an alert on NOTIFY hubsync_alerts (at commit) unless one of the
-- same kind and subject was sent within hubsync.alert_interval; then it
-- is only counted, and the count goes with the next one sent.  Returns
-- whether it was sent.
CREATE FUNCTION hubsync._alert(p_alert text, p_key text, p_payload jsonb) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_interval interval := hubsync._setting_interval('hubsync.alert_interval', '300s');
	v_payload jsonb;
	v_prev record;
BEGIN
	SELECT a.last_sent_at, a.suppressed INTO v_prev
	FROM hubsync.alerts a WHERE a.alert = p_alert AND a.key = p_key FOR UPDATE;
	IF FOUND AND v_prev.last_sent_at > now() - v_interval THEN
		UPDATE hubsync.alerts a SET suppressed = a.suppressed + 1, last_seen_at = now()
		WHERE a.alert = p_alert AND a.key = p_key;
		RETURN false;
	END IF;
	v_payload := jsonb_build_object('alert', p_alert, 'at', now(),
	                                'database', current_database(),
	                                'suppressed', coalesce(v_prev.suppressed, 0))
	             || coalesce(p_payload, '{}');
	INSERT INTO hubsync.alerts AS a (alert, key, payload)
	VALUES (p_alert, p_key, v_payload)
	ON CONFLICT ON CONSTRAINT alerts_pkey DO UPDATE
	SET last_sent_at = now(), last_seen_at = now(), sent = a.sent + 1, suppressed = 0,
	    payload = EXCLUDED.payload;
	PERFORM pg_notify('hubsync_alerts', v_payload::text);
	RETURN true;
END
$$;
COMMENT ON FUNCTION hubsync._alert(text, text, jsonb) IS
  'API: private. Sends a rate-limited alert on NOTIFY hubsync_alerts';

-- The state of the shared HubSpot budget and request counters.
CREATE FUNCTION hubsync.quota_status(
	OUT window_used integer, OUT window_limit integer, OUT window_left integer,
	OUT daily_used bigint, OUT daily_limit bigint, OUT daily_left bigint,
	OUT search_used integer, OUT search_limit integer, OUT search_left integer,
	OUT blocked_until timestamptz,
	OUT requests bigint, OUT responses_2xx bigint, OUT responses_4xx bigint,
	OUT responses_5xx bigint, OUT transport_errors bigint, OUT throttled_429 bigint,
	OUT retries bigint)
RETURNS record
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'hubsync_quota_status';
COMMENT ON FUNCTION hubsync.quota_status() IS
  'The shared HubSpot budget now (rolling 10-second window, the account''s day (hubsync.account_timezone), search second: used, limit, left; blocked_until after a 429) and request counters since server start';

-- Roles other than its owner that hold TRIGGER on a mirror table: hubsync's
-- workers (superuser) fire every trigger of the mirror when they apply
-- HubSpot's changes, so TRIGGER there is as good as superuser.
CREATE FUNCTION hubsync._trigger_grantees(p_table text) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT array_agg(g.role ORDER BY g.role)
	FROM (SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS role
	      FROM pg_class c, aclexplode(c.relacl) a
	      WHERE c.oid = to_regclass(format('hubspot.%I', p_table))
	        AND a.privilege_type = 'TRIGGER' AND a.grantee <> c.relowner) g
$$;
COMMENT ON FUNCTION hubsync._trigger_grantees(text) IS
  'API: private. Roles other than the owner holding TRIGGER on hubspot.<table> (NULL when none)';

-- Checks the alert thresholds (called by the housekeeping round): auth
-- refused, oldest pending change, inbound lag, daily quota.  Dead letters
-- alert where they are made (hubsync._push_dead).  Returns how many
-- alerts were sent.
CREATE FUNCTION hubsync._check_alerts() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n integer := 0;
	v_age interval := hubsync._setting_interval('hubsync.alert_pending_age', '900s');
	v_lag interval := hubsync._setting_interval('hubsync.alert_inbound_lag', '300s');
	v_pct numeric := coalesce(nullif(current_setting('hubsync.alert_daily_quota', true), '')::numeric, 90);
	v_oldest timestamptz;
	v_occurred bigint;
	r record;
	q record;
BEGIN
	IF hubsync._auth_state() = 'refused' THEN
		n := n + hubsync._alert('auth_failed', '', jsonb_build_object(
			'message', 'HubSpot refused hubsync''s credentials (HTTP 401): pushing has stopped',
			'hint', 'Set a valid token with hubsync.set_credentials(access_token => ...).'))::integer;
	END IF;

	IF v_age > interval '0' THEN
		-- the oldest rows come first in id order: a cheap look before a scan
		SELECT min(o.created_at) INTO v_oldest
		FROM (SELECT ob.created_at FROM hubsync.outbox ob ORDER BY ob.id LIMIT 100) o;
		IF v_oldest < now() - v_age THEN
			FOR r IN
				SELECT o.object_type, count(*) AS pending, now() - min(o.created_at) AS age
				FROM hubsync.outbox o
				JOIN hubsync.object_types t ON t.object_type = o.object_type AND NOT t.paused
				GROUP BY o.object_type
				HAVING min(o.created_at) < now() - v_age
				ORDER BY o.object_type
			LOOP
				n := n + hubsync._alert('pending_age', r.object_type, jsonb_build_object(
					'object_type', r.object_type, 'pending', r.pending,
					'oldest_pending_seconds', round(extract(epoch FROM r.age)),
					'threshold_seconds', extract(epoch FROM v_age)))::integer;
			END LOOP;
		END IF;
	END IF;

	IF v_lag > interval '0' THEN
		SELECT min(i.occurred_at) INTO v_occurred FROM hubsync.inbox i WHERE i.state = 'pending';
		IF v_occurred IS NOT NULL AND to_timestamp(v_occurred / 1000.0) < now() - v_lag THEN
			n := n + hubsync._alert('inbound_lag', '', jsonb_build_object(
				'lag_seconds', round(extract(epoch FROM now() - to_timestamp(v_occurred / 1000.0))),
				'pending_events', (SELECT count(*) FROM hubsync.inbox i WHERE i.state = 'pending'),
				'threshold_seconds', extract(epoch FROM v_lag)))::integer;
		END IF;
	END IF;

	-- a trigger on a mirror table runs as superuser when a worker applies
	-- HubSpot's changes: whoever may create one holds superuser rights
	FOR r IN
		SELECT c.relname::text AS tbl, hubsync._trigger_grantees(c.relname) AS grantees
		FROM pg_class c
		WHERE c.relnamespace = 'hubspot'::regnamespace AND c.relkind = 'r'
	LOOP
		IF r.grantees IS NOT NULL THEN
			n := n + hubsync._alert('trigger_grant', r.tbl, jsonb_build_object(
				'table', 'hubspot.' || r.tbl, 'roles', to_jsonb(r.grantees),
				'message', 'roles other than the owner may create triggers on this mirror table; hubsync''s workers run them as superuser',
				'hint', format('REVOKE TRIGGER ON hubspot.%I FROM %s;', r.tbl,
				               array_to_string(r.grantees, ', '))))::integer;
		END IF;
	END LOOP;

	IF v_pct > 0 THEN
		SELECT * INTO q FROM hubsync.quota_status();
		IF q.daily_limit > 0 AND q.daily_used >= q.daily_limit * v_pct / 100 THEN
			n := n + hubsync._alert('daily_quota', to_char(now() AT TIME ZONE coalesce(current_setting('hubsync.account_timezone', true), 'UTC'), 'YYYY-MM-DD'),
				jsonb_build_object('daily_used', q.daily_used, 'daily_limit', q.daily_limit,
				                   'threshold_percent', v_pct))::integer;
		END IF;
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION hubsync._check_alerts() IS
  'API: private. Housekeeping: sends the alerts whose thresholds are passed';

-- Housekeeping: deletes up to p_batch applied or skipped inbox events
-- older than hubsync.inbox_retention, up to p_batch change feed rows older
-- than hubsync.changes_retention, and alert rows not seen for a week.
-- Returns the largest number deleted from one table, so the caller goes
-- on while a table still has a full batch to prune.
CREATE FUNCTION hubsync._prune(p_batch integer) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_inbox interval := hubsync._setting_interval('hubsync.inbox_retention', '7d');
	v_changes interval := hubsync._setting_interval('hubsync.changes_retention', '7d');
	v_n bigint;
	v_max bigint := 0;
BEGIN
	IF v_inbox > interval '0' THEN
		DELETE FROM hubsync.inbox i
		WHERE i.id IN (SELECT x.id FROM hubsync.inbox x
		               WHERE x.state IN ('applied', 'skipped') AND x.received_at < now() - v_inbox
		               ORDER BY x.received_at LIMIT p_batch);
		GET DIAGNOSTICS v_n = ROW_COUNT;
		v_max := greatest(v_max, v_n);
	END IF;
	IF v_changes > interval '0' THEN
		-- per object type and direction through the index, oldest first
		WITH RECURSIVE types AS (
			SELECT min(c.object_type) AS t FROM hubsync.changes c
			UNION ALL
			SELECT (SELECT min(c.object_type) FROM hubsync.changes c WHERE c.object_type > types.t)
			FROM types WHERE types.t IS NOT NULL
		)
		DELETE FROM hubsync.changes c
		WHERE c.id IN (SELECT x.id
		               FROM types, (VALUES ('in'), ('out')) d(direction),
		                    LATERAL (SELECT c2.id FROM hubsync.changes c2
		                             WHERE c2.object_type = types.t AND c2.direction = d.direction
		                               AND c2.at < now() - v_changes
		                             ORDER BY c2.at LIMIT p_batch) x
		               WHERE types.t IS NOT NULL
		               LIMIT p_batch);
		GET DIAGNOSTICS v_n = ROW_COUNT;
		v_max := greatest(v_max, v_n);
	END IF;
	DELETE FROM hubsync.alerts a
	WHERE a.last_seen_at < now() - greatest(interval '7 days',
	                                        hubsync._setting_interval('hubsync.alert_interval', '300s'));
	RETURN v_max;
END
$$;
COMMENT ON FUNCTION hubsync._prune(integer) IS
  'API: private. Housekeeping: deletes one batch of inbox events and change feed rows past their retention';

-- Housekeeping: once a large backlog has drained, the outbox's heap and
-- indexes are mostly empty pages that vacuum cannot return (index files
-- never shrink).  When the outbox is empty and bigger than p_min_bytes,
-- truncate it -- only if nobody is using it right now (NOWAIT), so no
-- application transaction ever waits for this.  Returns whether it did.
CREATE FUNCTION hubsync._shrink_outbox(p_min_bytes bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF pg_total_relation_size('hubsync.outbox') < p_min_bytes
	   OR EXISTS (SELECT 1 FROM hubsync.outbox ORDER BY id LIMIT 1) THEN
		RETURN false;
	END IF;
	BEGIN
		LOCK TABLE hubsync.outbox IN ACCESS EXCLUSIVE MODE NOWAIT;
	EXCEPTION WHEN lock_not_available THEN
		RETURN false;
	END;
	-- a new snapshot, taken under the lock: nothing can be in flight now
	IF EXISTS (SELECT 1 FROM hubsync.outbox) THEN
		RETURN false;
	END IF;
	TRUNCATE hubsync.outbox;
	RETURN true;
END
$$;
COMMENT ON FUNCTION hubsync._shrink_outbox(bigint) IS
  'API: private. Housekeeping: truncates a large, empty outbox when nobody uses it';

-- One row per object type.  To add columns (poll cursor, backfill
-- progress...), add a LEFT JOIN LATERAL keyed on t.object_type and append
-- its columns at the end (CREATE OR REPLACE VIEW keeps existing columns
-- in place).
-- hubsync.status is defined once, after the poller's and enrichment's
-- tables it reads (see "hubsync.status, final form").

-- Dead letters grouped by reason, for a first look before retrying or
-- discarding them by object type and category.
CREATE VIEW hubsync.dead_letter_reasons AS
SELECT d.object_type, d.category, d.status,
       count(*) AS dead_letters,
       min(d.failed_at) AS first_failed_at,
       max(d.failed_at) AS last_failed_at,
       (array_agg(d.message ORDER BY d.id DESC))[1] AS last_message
FROM hubsync.dead_letters d
GROUP BY d.object_type, d.category, d.status;
COMMENT ON VIEW hubsync.dead_letter_reasons IS
  'Dead letters grouped by object type, category and HTTP status, with the latest message: what to retry (hubsync.retry_dead_letters) or discard (hubsync.discard_dead_letters)';

-- One row for the whole of hubsync: budget, requests, webhooks, workers,
-- credentials.  SELECT * FROM hubsync.summary \watch 1 is a live dashboard.
CREATE VIEW hubsync.summary AS
SELECT q.window_used, q.window_left, q.window_limit,
       q.daily_used, q.daily_left, q.daily_limit,
       q.search_used, q.search_left, q.search_limit,
       q.blocked_until,
       q.requests, q.responses_2xx, q.responses_4xx, q.responses_5xx,
       q.transport_errors, q.throttled_429, q.retries,
       w.webhook_deliveries, w.webhook_events, w.webhook_duplicates, w.webhook_refused,
       ws.push_worker, ws.pull_worker, ws.webhook_worker, ws.enrich_worker,
       hubsync._auth_state() AS auth,
       (SELECT count(*) FROM hubsync.outbox) AS outbox,
       (SELECT count(*) FROM hubsync.dead_letters) AS dead_letters,
       (SELECT max(a.last_sent_at) FROM hubsync.alerts a) AS last_alert_at
FROM hubsync.quota_status() q,
     (SELECT sum(c.value) FILTER (WHERE c.counter = 'deliveries_accepted') AS webhook_deliveries,
             sum(c.value) FILTER (WHERE c.counter = 'events_stored') AS webhook_events,
             sum(c.value) FILTER (WHERE c.counter = 'events_duplicate') AS webhook_duplicates,
             sum(c.value) FILTER (WHERE c.counter LIKE 'refused\_%') AS webhook_refused
      FROM hubsync.webhook_counters() c) w,
     (SELECT max(s.state) FILTER (WHERE s.worker = 'hubsync push') AS push_worker,
             max(s.state) FILTER (WHERE s.worker = 'hubsync pull') AS pull_worker,
             max(s.state) FILTER (WHERE s.worker = 'hubsync webhook') AS webhook_worker,
             max(s.state) FILTER (WHERE s.worker = 'hubsync enrich') AS enrich_worker
      FROM hubsync.worker_status() s) ws;
COMMENT ON VIEW hubsync.summary IS
  'One row: HubSpot budget used and left (10-second window, day, search), requests by status class, 429s, retries, webhook deliveries, duplicates and refusals, worker states, credentials verdict, outbox and dead letters';

-------------------------------------------------------------------------------
-- Security: credentials status and OAuth (issue 9)
-------------------------------------------------------------------------------

-- Which secrets are set, never their values.  SECURITY DEFINER so that
-- monitoring roles can see it; it returns booleans, timestamps, the
-- authentication state and a refresh error made of HubSpot's status words
-- only (never a token).  Always one row: before set_credentials (and after
-- a restore, as pg_dump leaves secrets out) every secret shows false and
-- auth says 'missing'.
CREATE FUNCTION hubsync._credentials_status(
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

CREATE VIEW hubsync.credentials_status AS
	SELECT * FROM hubsync._credentials_status();
COMMENT ON VIEW hubsync.credentials_status IS
  'Which HubSpot credentials are set, the authentication state (ok, refused, refresh_failed, missing), when the OAuth access token was refreshed and expires, and why a refresh was refused; never a secret value';
GRANT SELECT ON hubsync.credentials_status TO PUBLIC;

-------------------------------------------------------------------------------
-- Polling safety net, backfill and reconciliation (issue 6)
-------------------------------------------------------------------------------

CREATE TABLE hubsync.poll_state (
	object_type      text PRIMARY KEY REFERENCES hubsync.object_types ON DELETE CASCADE,
	cursor_ms        bigint,
	cursor_id        bigint,
	catching_up      boolean NOT NULL DEFAULT false,
	trail_ms         bigint,
	trail_id         bigint,
	polled_at        timestamptz,
	trailed_at       timestamptz,
	archived_at      timestamptz,
	associations_at  timestamptz,
	found            bigint NOT NULL DEFAULT 0,
	last_error       text
);
COMMENT ON TABLE hubsync.poll_state IS
  'Per object type: where the poller (search on the last-modified property) stands';
COMMENT ON COLUMN hubsync.poll_state.cursor_ms IS 'fast poll: last-modified time (HubSpot epoch ms) read up to; the next poll starts a little before it';
COMMENT ON COLUMN hubsync.poll_state.cursor_id IS 'hs_object_id reached while walking records that share cursor_ms (NULL when not walking)';
COMMENT ON COLUMN hubsync.poll_state.catching_up IS 'true while a poll stopped after its slice of pages and goes on at once';
COMMENT ON COLUMN hubsync.poll_state.trail_ms IS 'trailing sweep: start of its next window (records older than hubsync.poll_index_lag)';
COMMENT ON COLUMN hubsync.poll_state.trail_id IS 'hs_object_id reached while the trailing sweep walks records sharing trail_ms';
COMMENT ON COLUMN hubsync.poll_state.polled_at IS 'end of the last fast poll';
COMMENT ON COLUMN hubsync.poll_state.trailed_at IS 'end of the last trailing sweep';
COMMENT ON COLUMN hubsync.poll_state.archived_at IS 'end of the last sweep of archived records';
COMMENT ON COLUMN hubsync.poll_state.associations_at IS 'end of the last association sweep';
COMMENT ON COLUMN hubsync.poll_state.found IS 'records read by the poller so far';
COMMENT ON COLUMN hubsync.poll_state.last_error IS 'last HubSpot error of the poller for this type (NULL after a success)';

CREATE TABLE hubsync.backfills (
	object_type      text PRIMARY KEY REFERENCES hubsync.object_types ON DELETE CASCADE,
	state            text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
	streams          jsonb,
	done             bigint NOT NULL DEFAULT 0,
	total_estimate   bigint,
	requests         bigint NOT NULL DEFAULT 0,
	started_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
	finished_at      timestamptz,
	last_error       text
);
COMMENT ON TABLE hubsync.backfills IS
  'Background imports started by hubsync.backfill(): where each stands (resumed after a restart)';
COMMENT ON COLUMN hubsync.backfills.streams IS 'list paging cursors still to read, as [{"after": cursor, "end": id or null}]; NULL until planned';
COMMENT ON COLUMN hubsync.backfills.done IS 'records imported or matched so far';
COMMENT ON COLUMN hubsync.backfills.total_estimate IS 'records HubSpot reported at the start (search total)';
COMMENT ON COLUMN hubsync.backfills.requests IS 'HubSpot list requests made';

CREATE TABLE hubsync.reconcile_runs (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	started_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
	finished_at      timestamptz,
	trigger          text NOT NULL CHECK (trigger IN ('manual', 'daily')),
	object_type      text,
	repair           boolean NOT NULL,
	state            text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed', 'abandoned')),
	records_local    bigint NOT NULL DEFAULT 0,
	records_remote   bigint NOT NULL DEFAULT 0,
	missing_local    bigint NOT NULL DEFAULT 0,
	missing_remote   bigint NOT NULL DEFAULT 0,
	mismatch         bigint NOT NULL DEFAULT 0,
	archived_remote  bigint NOT NULL DEFAULT 0,
	repaired         bigint NOT NULL DEFAULT 0,
	requests         bigint NOT NULL DEFAULT 0,
	error            text
);
COMMENT ON TABLE hubsync.reconcile_runs IS
  'History of reconciliation runs (hubsync.reconcile() and the daily run at hubsync.reconcile_at) with their drift counts';
COMMENT ON COLUMN hubsync.reconcile_runs.object_type IS 'the object type compared, NULL for all';
COMMENT ON COLUMN hubsync.reconcile_runs.mismatch IS 'properties whose values differ (one per record and property)';
COMMENT ON COLUMN hubsync.reconcile_runs.repaired IS 'drifts acted on (pull or push)';
COMMENT ON COLUMN hubsync.reconcile_runs.requests IS 'HubSpot requests the run made';

CREATE TABLE hubsync.reconcile_drift (
	run_id           bigint NOT NULL REFERENCES hubsync.reconcile_runs ON DELETE CASCADE,
	object_type      text NOT NULL,
	hubsync_id       uuid,
	hs_object_id     bigint,
	kind             text NOT NULL CHECK (kind IN ('missing_local', 'missing_remote', 'mismatch', 'archived_remote')),
	property         text,
	local_value      text,
	remote_value     text,
	action           text NOT NULL
);
CREATE INDEX reconcile_drift_run_idx ON hubsync.reconcile_drift (run_id);
COMMENT ON TABLE hubsync.reconcile_drift IS
  'Drifts found by each reconciliation run (the rows hubsync.reconcile() returned)';

-- HubSpot records read by a reconciliation run, until it compares them.
CREATE UNLOGGED TABLE hubsync._reconcile_remote (
	run_id           bigint NOT NULL,
	object_type      text NOT NULL,
	id               bigint NOT NULL,
	archived         boolean NOT NULL,
	rec              jsonb,
	PRIMARY KEY (run_id, object_type, id)
);
COMMENT ON TABLE hubsync._reconcile_remote IS
  'API: private. HubSpot records read by a running reconciliation, dropped when it ends';
REVOKE ALL ON hubsync.poll_state, hubsync.backfills, hubsync.reconcile_runs,
	hubsync.reconcile_drift, hubsync._reconcile_remote FROM PUBLIC;
GRANT SELECT ON hubsync.poll_state, hubsync.backfills, hubsync.reconcile_runs,
	hubsync.reconcile_drift TO PUBLIC;
-- HubSpot's error messages (last_error, error) and the drift's local and
-- remote values are shown to a role only for the object types whose mirror
-- table it may read (a run over every type: only to a role that may read
-- them all).  The extension owner and superusers, the workers included,
-- are not subject to these policies.
ALTER TABLE hubsync.poll_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE hubsync.backfills ENABLE ROW LEVEL SECURITY;
ALTER TABLE hubsync.reconcile_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE hubsync.reconcile_drift ENABLE ROW LEVEL SECURITY;
CREATE POLICY mirror_readers ON hubsync.poll_state FOR SELECT
	USING (hubsync._can_read_mirror(object_type));
CREATE POLICY mirror_readers ON hubsync.backfills FOR SELECT
	USING (hubsync._can_read_mirror(object_type));
CREATE POLICY mirror_readers ON hubsync.reconcile_runs FOR SELECT
	USING (hubsync._can_read_mirror(object_type));
-- drift can be many rows: the readable types are looked up once
CREATE POLICY mirror_readers ON hubsync.reconcile_drift FOR SELECT
	USING (object_type IN (SELECT t.object_type FROM hubsync.object_types t
	                       WHERE hubsync._can_read_mirror(t.object_type)));
-- Merge lineage (ids only), for the readers of the type's mirror table:
-- hubsync.invoice_aging(), behind the view hubspot.invoice_aging, runs
-- with the reader's rights and leaves merged-away invoices out.
GRANT SELECT ON hubsync.merges TO PUBLIC;
ALTER TABLE hubsync.merges ENABLE ROW LEVEL SECURITY;
CREATE POLICY mirror_readers ON hubsync.merges FOR SELECT
	USING (hubsync._can_read_mirror(object_type));

-- The HubSpot properties the poller, backfill and reconciliation read.
CREATE FUNCTION hubsync._read_properties(p_object_type text) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(array_agg(m.property ORDER BY m.property), '{}') || ARRAY['hubsync_id', t.last_modified_property]
	FROM hubsync.object_types t
	LEFT JOIN hubsync.property_map m ON m.object_type = t.object_type
	WHERE t.object_type = p_object_type
	GROUP BY t.last_modified_property
$$;
COMMENT ON FUNCTION hubsync._read_properties(text) IS
  'API: private. Properties requested when hubsync reads records of a type (mapped ones, hubsync_id, last-modified)';

-- Records read from HubSpot by the poller, a backfill or a repair, put
-- through the same rules as webhook events.  A record with a local row
-- (by hs_object_id, else by the hubsync_id it carries, else by email for
-- contacts; the last two are linked) gets one propertyChange event in the
-- inbox per mapped property whose value differs from what hubsync last
-- knew of HubSpot (sync_state.remote), stamped with the record's
-- updatedAt: the pull worker applies them like webhooks (newest wins per
-- property, ownership, echoes), and the dedupe key keeps a record read
-- twice from queuing twice.  A record without a local row is inserted as
-- a webhook creation would be.  Must run with the capture trigger off
-- (the pull worker or hubsync.reconcile).
CREATE FUNCTION hubsync._ingest_records(p_object_type text, p_records jsonb, p_source text,
	OUT inserted integer, OUT linked integer, OUT events integer)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET work_mem = '32MB' AS $$
DECLARE
	v_t record;
	r record;
	v_hid uuid;
	v_claim text;
	v_unlinked boolean;
	v_matched jsonb;
	v_new jsonb;
	v_rest jsonb := '[]';
	v_stype text;
BEGIN
	inserted := 0;
	linked := 0;
	events := 0;
	SELECT * INTO v_t FROM hubsync.object_types t WHERE t.object_type = p_object_type;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'object type "%" is not tracked by hubsync', p_object_type
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	v_stype := coalesce(v_t.webhook_prefix, 'object') || '.propertyChange';

	-- 1. local rows by hs_object_id, set-based
	EXECUTE format($q$
		SELECT coalesce(jsonb_agg(jsonb_build_object('h', m.hubsync_id, 'r', e)) FILTER (WHERE m.hubsync_id IS NOT NULL), '[]'),
		       coalesce(jsonb_agg(e) FILTER (WHERE m.hubsync_id IS NULL), '[]')
		FROM jsonb_array_elements(coalesce($1, '[]')) e
		LEFT JOIN hubspot.%I m ON m.hs_object_id = (e ->> 'id')::bigint
		WHERE coalesce((e ->> 'archived')::boolean, false) = false$q$, p_object_type)
		INTO v_matched, v_new USING p_records;

	-- 2. rows not in HubSpot yet: by the hubsync_id the record carries,
	--    then by email for contacts; those are linked
	EXECUTE format('SELECT EXISTS (SELECT 1 FROM hubspot.%I WHERE hs_object_id IS NULL)', p_object_type)
		INTO v_unlinked;
	IF v_unlinked AND jsonb_array_length(v_new) > 0 THEN
		FOR r IN SELECT (e ->> 'id')::bigint AS id, e AS rec, coalesce(e -> 'properties', '{}') AS props
		         FROM jsonb_array_elements(v_new) e
		LOOP
			v_hid := NULL;
			v_claim := r.props ->> 'hubsync_id';
			IF v_claim ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' THEN
				EXECUTE format('SELECT hubsync_id FROM hubspot.%I WHERE hubsync_id = $1 AND hs_object_id IS NULL',
				               p_object_type) INTO v_hid USING v_claim::uuid;
			END IF;
			IF v_hid IS NULL AND p_object_type = 'contacts' AND coalesce(r.props ->> 'email', '') <> '' THEN
				SELECT c.hubsync_id INTO v_hid FROM hubspot.contacts c
				WHERE lower(c.email) = lower(r.props ->> 'email') AND c.hs_object_id IS NULL
				LIMIT 1;
			END IF;
			IF v_hid IS NULL THEN
				v_rest := v_rest || jsonb_build_array(r.rec);
			ELSE
				-- not a property change: the capture trigger enqueues nothing
				EXECUTE format('UPDATE hubspot.%I SET hs_object_id = $1 WHERE hubsync_id = $2', p_object_type)
					USING r.id, v_hid;
				UPDATE hubsync.sync_state s SET hs_object_id = r.id WHERE s.hubsync_id = v_hid;
				v_matched := v_matched || jsonb_build_array(jsonb_build_object('h', v_hid, 'r', r.rec));
				linked := linked + 1;
			END IF;
		END LOOP;
		v_new := v_rest;
	END IF;

	-- 3. records new here: inserted set-based, as a creation webhook would
	IF jsonb_array_length(v_new) > 0 THEN
		EXECUTE format($q$
			WITH n AS (
				SELECT e AS rec, (e ->> 'id')::bigint AS id, coalesce(e -> 'properties', '{}') AS props,
				       (extract(epoch FROM (e ->> 'updatedAt')::timestamptz) * 1000)::bigint AS ver,
				       CASE WHEN (e -> 'properties' ->> 'hubsync_id') ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
				                 AND row_number() OVER (PARTITION BY e -> 'properties' ->> 'hubsync_id') = 1
				                 AND NOT EXISTS (SELECT 1 FROM hubspot.%1$I m
				                                 WHERE m.hubsync_id = (e -> 'properties' ->> 'hubsync_id')::uuid)
				            THEN (e -> 'properties' ->> 'hubsync_id')::uuid
				            ELSE gen_random_uuid() END AS hid
				FROM jsonb_array_elements($1) e
			), kv AS (
				SELECT n.hid, p.key, p.value, pm.column_name, pm.sql_type,
				       CASE WHEN pm.column_name IS NOT NULL AND coalesce(p.value #>> '{}', '') <> ''
				            THEN hubsync._wire_to_column(p.value #>> '{}', pm.sql_type) END AS c
				FROM n CROSS JOIN LATERAL jsonb_each(n.props) p
				LEFT JOIN hubsync.property_map pm ON pm.object_type = $2 AND pm.property = p.key
				WHERE p.key NOT IN ('hs_object_id', 'hubsync_id')
			), agg AS MATERIALIZED (
				SELECT n.hid, n.id, n.rec,
				       coalesce(jsonb_object_agg(kv.column_name,
				                    CASE WHEN kv.c IS NULL THEN NULL
				                         WHEN kv.sql_type = 'text[]' THEN to_jsonb(kv.c::text[])
				                         ELSE to_jsonb(kv.c) END)
				                FILTER (WHERE kv.column_name IS NOT NULL), '{}') AS cols,
				       coalesce(jsonb_object_agg(kv.key, kv.value)
				                FILTER (WHERE kv.key IS NOT NULL AND (kv.column_name IS NULL
				                        OR (kv.c IS NULL AND coalesce(kv.value #>> '{}', '') <> ''))), '{}') AS extra,
				       coalesce(jsonb_object_agg(kv.key, coalesce(kv.value #>> '{}', ''))
				                FILTER (WHERE kv.key IS NOT NULL), '{}') AS wire,
				       coalesce(jsonb_object_agg(kv.key, n.ver) FILTER (WHERE kv.key IS NOT NULL), '{}') AS versions
				FROM n LEFT JOIN kv ON kv.hid = n.hid
				GROUP BY n.hid, n.id, n.rec
			), ins AS (
				INSERT INTO hubspot.%1$I
				SELECT r.* FROM agg, LATERAL jsonb_populate_record(NULL::hubspot.%1$I,
					agg.cols || jsonb_build_object('hubsync_id', agg.hid, 'hs_object_id', agg.id,
						'created_at', agg.rec -> 'createdAt', 'updated_at', agg.rec -> 'updatedAt',
						'properties', agg.extra)) r
				RETURNING 1
			), ss AS (
				INSERT INTO hubsync.sync_state AS s (hubsync_id, object_type, hs_object_id, remote, versions, synced_at)
				SELECT agg.hid, $2, agg.id, agg.wire, agg.versions, now() FROM agg
				ON CONFLICT ON CONSTRAINT sync_state_pkey DO UPDATE
				SET remote = EXCLUDED.remote, versions = EXCLUDED.versions,
				    hs_object_id = EXCLUDED.hs_object_id, synced_at = now()
			), ch AS (
				INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties)
				SELECT 'in', $2, agg.hid, agg.id, 'insert', 'hubspot', agg.wire FROM agg
			)
			SELECT count(pg_notify('hubsync_changes', jsonb_build_object('object_type', $2,
			           'hubsync_id', agg.hid, 'hs_object_id', agg.id, 'op', 'insert', 'direction', 'in',
			           'changed', (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]') FROM jsonb_object_keys(agg.wire) k))::text))
			FROM agg$q$, p_object_type)
			INTO inserted USING v_new, p_object_type;
	END IF;

	-- 4. records here: what differs becomes propertyChange events
	WITH m AS (
		SELECT (x ->> 'h')::uuid AS hid, (x -> 'r' ->> 'id')::bigint AS id,
		       coalesce(x -> 'r' -> 'properties', '{}') AS props,
		       (extract(epoch FROM (x -> 'r' ->> 'updatedAt')::timestamptz) * 1000)::bigint AS ver
		FROM jsonb_array_elements(v_matched) x
	), ins AS (
		INSERT INTO hubsync.inbox (dedupe_key, subscription_type, object_type_id, object_id, occurred_at,
		                           property_name, property_value, change_source, event)
		SELECT sha256(convert_to(format('%s:%s:%s:%s:%s', p_source, p_object_type, m.id, p.key, m.ver), 'UTF8')),
		       v_stype, v_t.object_type_id, m.id, m.ver,
		       p.key, coalesce(p.value #>> '{}', ''), 'HUBSYNC_' || upper(p_source),
		       jsonb_build_object('subscriptionType', v_stype, 'objectTypeId', v_t.object_type_id,
		                          'objectId', m.id, 'propertyName', p.key,
		                          'propertyValue', coalesce(p.value #>> '{}', ''),
		                          'occurredAt', m.ver, 'changeSource', 'HUBSYNC_' || upper(p_source))
		FROM m
		CROSS JOIN LATERAL jsonb_each(m.props) p
		JOIN hubsync.property_map pm ON pm.object_type = p_object_type AND pm.property = p.key
		LEFT JOIN hubsync.sync_state s ON s.hubsync_id = m.hid
		WHERE coalesce(s.remote ->> p.key, '') IS DISTINCT FROM coalesce(p.value #>> '{}', '')
		  AND coalesce((s.versions ->> p.key)::bigint, -1) < m.ver
		ON CONFLICT (dedupe_key) DO NOTHING
		RETURNING 1
	)
	SELECT count(*) INTO events FROM ins;
END
$$;
COMMENT ON FUNCTION hubsync._ingest_records(text, jsonb, text) IS
  'API: private. Puts records read from HubSpot (poll, backfill, repair) through the webhook apply rules';

-- Records the archived sweep found: a deletion event for each one that
-- still has a local row.
CREATE FUNCTION hubsync._ingest_archived(p_object_type text, p_records jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_t record;
	v_stype text;
	v_n integer;
BEGIN
	SELECT * INTO v_t FROM hubsync.object_types t WHERE t.object_type = p_object_type;
	v_stype := coalesce(v_t.webhook_prefix, 'object') || '.deletion';
	EXECUTE format($q$
		INSERT INTO hubsync.inbox (dedupe_key, subscription_type, object_type_id, object_id, occurred_at, event)
		SELECT sha256(convert_to(format('poll:%%s:%%s:deletion:%%s', $1, r.id, r.at), 'UTF8')), $2, $3, r.id, r.at,
		       jsonb_build_object('subscriptionType', $2, 'objectTypeId', $3, 'objectId', r.id,
		                          'occurredAt', r.at, 'changeFlag', 'DELETED', 'changeSource', 'HUBSYNC_POLL')
		FROM (SELECT (e ->> 'id')::bigint AS id,
		             (extract(epoch FROM coalesce(e ->> 'archivedAt', e ->> 'updatedAt')::timestamptz) * 1000)::bigint AS at
		      FROM jsonb_array_elements(coalesce($4, '[]')) e) r
		WHERE EXISTS (SELECT 1 FROM hubspot.%I m WHERE m.hs_object_id = r.id)
		ON CONFLICT (dedupe_key) DO NOTHING$q$, p_object_type)
		USING p_object_type, v_stype, v_t.object_type_id, p_records;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END
$$;
COMMENT ON FUNCTION hubsync._ingest_archived(text, jsonb) IS
  'API: private. Archived sweep: queues a deletion for each archived HubSpot record still mirrored';

-- Association pairs the association sweep reads: both directions of the
-- standard pairs between mirrored types that have rows.
CREATE FUNCTION hubsync._association_pairs(OUT from_type text, OUT to_type text,
	OUT from_api text, OUT to_api text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	v_has boolean;
BEGIN
	FOR r IN
		SELECT p.f, p.t, ft.api_name AS fa, tt.api_name AS ta
		FROM (VALUES ('contacts', 'companies'), ('deals', 'contacts'), ('deals', 'companies'),
		             ('contacts', 'tickets'), ('tickets', 'companies'), ('deals', 'line_items'),
		             ('deals', 'tickets'), ('quotes', 'deals'), ('invoices', 'contacts'),
		             ('invoices', 'companies'), ('invoices', 'deals')) AS p0(a, b)
		CROSS JOIN LATERAL (VALUES (p0.a, p0.b), (p0.b, p0.a)) AS p(f, t)
		JOIN hubsync.object_types ft ON ft.object_type = p.f
		JOIN hubsync.object_types tt ON tt.object_type = p.t
		ORDER BY p.f, p.t
	LOOP
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM hubspot.%I WHERE hs_object_id IS NOT NULL)', r.f)
			INTO v_has;
		CONTINUE WHEN NOT v_has;
		from_type := r.f;
		to_type := r.t;
		from_api := r.fa;
		to_api := r.ta;
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync._association_pairs() IS
  'API: private. Association sweep: the (from, to) type pairs to read';

-- Up to p_limit HubSpot ids of p_object_type after p_after, in order.
CREATE FUNCTION hubsync._association_sweep_ids(p_object_type text, p_after bigint, p_limit integer)
RETURNS bigint[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v bigint[];
BEGIN
	EXECUTE format('SELECT coalesce(array_agg(id ORDER BY id), ''{}'') FROM
	                (SELECT hs_object_id AS id FROM hubspot.%I WHERE hs_object_id > $1
	                 ORDER BY hs_object_id LIMIT $2) s', p_object_type)
		INTO v USING p_after, p_limit;
	RETURN v;
END
$$;
COMMENT ON FUNCTION hubsync._association_sweep_ids(text, bigint, integer) IS
  'API: private. Association sweep: the next mirrored ids of a type';

-- One batch of the association sweep: p_results is the answer of a v4
-- association batch read for p_ids.  Differences with
-- hubspot.associations become associationChange events in the inbox.
CREATE FUNCTION hubsync._ingest_associations(p_from_type text, p_to_type text, p_ids bigint[],
	p_results jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_f record;
	v_t record;
	v_stype text;
	v_now bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
	v_n integer;
BEGIN
	SELECT * INTO v_f FROM hubsync.object_types t WHERE t.object_type = p_from_type;
	SELECT * INTO v_t FROM hubsync.object_types t WHERE t.object_type = p_to_type;
	v_stype := coalesce(v_f.webhook_prefix, 'object') || '.associationChange';
	WITH remote AS (
		SELECT DISTINCT (x -> 'from' ->> 'id')::bigint AS f, (t ->> 'toObjectId')::bigint AS t,
		       (a ->> 'typeId')::integer AS ty, coalesce(a ->> 'category', 'HUBSPOT_DEFINED') AS cat
		FROM jsonb_array_elements(coalesce(p_results, '[]')) x
		CROSS JOIN LATERAL jsonb_array_elements(coalesce(x -> 'to', '[]')) t
		CROSS JOIN LATERAL jsonb_array_elements(coalesce(t -> 'associationTypes', '[]')) a
		WHERE (x -> 'from' ->> 'id')::bigint = ANY (p_ids)
	), local AS (
		SELECT a.from_id AS f, a.to_id AS t, a.type_id AS ty, a.category AS cat
		FROM hubspot.associations a
		WHERE a.from_type = p_from_type AND a.to_type = p_to_type
		  AND a.from_id = ANY (p_ids) AND a.to_id IS NOT NULL
	), diff AS (
		SELECT r.*, false AS removed FROM remote r
		WHERE NOT EXISTS (SELECT 1 FROM local l WHERE l.f = r.f AND l.t = r.t AND l.ty = r.ty)
		UNION ALL
		SELECT l.*, true FROM local l
		WHERE NOT EXISTS (SELECT 1 FROM remote r WHERE l.f = r.f AND l.t = r.t AND l.ty = r.ty)
	)
	INSERT INTO hubsync.inbox (dedupe_key, subscription_type, object_type_id, object_id, occurred_at, event)
	SELECT sha256(convert_to(format('poll:assoc:%s:%s:%s:%s:%s:%s:%s', p_from_type, d.f, p_to_type, d.t, d.ty,
	              CASE WHEN d.removed THEN 'removed' ELSE 'added' END, v_now), 'UTF8')),
	       v_stype, v_f.object_type_id, d.f, v_now,
	       jsonb_build_object('subscriptionType', v_stype, 'objectTypeId', v_f.object_type_id,
	                          'objectId', d.f, 'fromObjectId', d.f, 'toObjectId', d.t,
	                          'toObjectTypeId', v_t.object_type_id, 'associationTypeId', d.ty,
	                          'associationCategory', d.cat, 'associationRemoved', d.removed,
	                          'occurredAt', v_now, 'changeSource', 'HUBSYNC_POLL')
	FROM diff d
	ON CONFLICT (dedupe_key) DO NOTHING;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END
$$;
COMMENT ON FUNCTION hubsync._ingest_associations(text, text, bigint[], jsonb) IS
  'API: private. Association sweep: queues associationChange events for what differs from HubSpot';

-- Poller bookkeeping: the cursors of one object type after a page.
CREATE FUNCTION hubsync._poll_save(p_object_type text, p_trailing boolean, p_ms bigint, p_id bigint,
	p_catching_up boolean, p_finished boolean, p_found integer, p_error text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	INSERT INTO hubsync.poll_state AS s (object_type) VALUES (p_object_type)
	ON CONFLICT ON CONSTRAINT poll_state_pkey DO NOTHING;
	IF p_trailing THEN
		UPDATE hubsync.poll_state s
		SET trail_ms = coalesce(p_ms, s.trail_ms), trail_id = p_id,
		    trailed_at = CASE WHEN p_finished THEN now() ELSE s.trailed_at END,
		    found = s.found + p_found, last_error = p_error
		WHERE s.object_type = p_object_type;
	ELSE
		UPDATE hubsync.poll_state s
		SET cursor_ms = coalesce(p_ms, s.cursor_ms), cursor_id = p_id, catching_up = p_catching_up,
		    polled_at = CASE WHEN p_finished THEN now() ELSE s.polled_at END,
		    found = s.found + p_found, last_error = p_error
		WHERE s.object_type = p_object_type;
	END IF;
END
$$;
COMMENT ON FUNCTION hubsync._poll_save(text, boolean, bigint, bigint, boolean, boolean, integer, text) IS
  'API: private. Poller: saves the cursor of an object type';

-------------------------------------------------------------------------------
-- Backfill
-------------------------------------------------------------------------------

-- Import every HubSpot record of one object type (or of all) in the
-- background, through list paging, with the quota real-time work leaves.
-- Resumes after a restart; a finished backfill can be started again.
CREATE FUNCTION hubsync.backfill(object_type text DEFAULT NULL) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_type text := backfill.object_type;
BEGIN
	PERFORM hubsync._require_owner('start a backfill');
	IF v_type IS NOT NULL AND NOT EXISTS (SELECT 1 FROM hubsync.object_types t WHERE t.object_type = v_type) THEN
		RAISE EXCEPTION 'object type "%" is not tracked by hubsync', v_type
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'See hubsync.object_types, or track it with hubsync.track_object().';
	END IF;
	RETURN QUERY
	INSERT INTO hubsync.backfills AS b (object_type)
	SELECT t.object_type FROM hubsync.object_types t
	WHERE v_type IS NULL OR t.object_type = v_type
	ON CONFLICT ON CONSTRAINT backfills_pkey DO UPDATE
	SET state = 'running', streams = NULL, done = 0, total_estimate = NULL, requests = 0,
	    started_at = now(), updated_at = now(), finished_at = NULL, last_error = NULL
	WHERE b.state <> 'running'
	RETURNING b.object_type;
	PERFORM hubsync._wake_workers();
END
$$;
COMMENT ON FUNCTION hubsync.backfill(text) IS
  'Imports every HubSpot record of an object type (NULL: all) in the background; returns the types started; progress in hubsync.backfill_progress and hubsync.status';
REVOKE ALL ON FUNCTION hubsync.backfill(text) FROM PUBLIC;

-- Backfill: pages read (applied by _ingest_records in the same
-- transaction): new cursors and counts; once finished, the association
-- sweep of the type is due at once (the backfill's associations).
CREATE FUNCTION hubsync._backfill_save(p_object_type text, p_streams jsonb, p_done integer,
	p_requests integer, p_total bigint, p_finished boolean, p_error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	-- records imported: the association sweep reads their associations next
	INSERT INTO hubsync.poll_state AS s (object_type) SELECT p_object_type WHERE p_finished
	ON CONFLICT ON CONSTRAINT poll_state_pkey DO UPDATE SET associations_at = NULL;
	UPDATE hubsync.backfills b
	SET streams = p_streams, done = b.done + p_done, requests = b.requests + p_requests,
	    total_estimate = coalesce(p_total, b.total_estimate), updated_at = now(),
	    state = CASE WHEN p_error IS NOT NULL THEN 'failed' WHEN p_finished THEN 'done' ELSE b.state END,
	    finished_at = CASE WHEN p_finished OR p_error IS NOT NULL THEN now() END,
	    last_error = p_error
	WHERE b.object_type = p_object_type AND b.state = 'running'
$$;
COMMENT ON FUNCTION hubsync._backfill_save(text, jsonb, integer, integer, bigint, boolean, text) IS
  'API: private. Backfill: saves the cursors and counts of an object type';

CREATE VIEW hubsync.backfill_progress AS
SELECT b.object_type, b.state, b.done, b.total_estimate,
       round(b.done / greatest(extract(epoch FROM (coalesce(b.finished_at, b.updated_at) - b.started_at)), 0.001), 1) AS rate,
       CASE WHEN b.state = 'running' AND b.done > 0 AND b.total_estimate > b.done
            THEN make_interval(secs => (b.total_estimate - b.done)
                 / (b.done / greatest(extract(epoch FROM (b.updated_at - b.started_at)), 0.001)))
            WHEN b.state = 'running' THEN NULL ELSE interval '0' END AS eta,
       b.requests, b.started_at, b.updated_at, b.finished_at,
       -- HubSpot's message: only for readers of the type's mirror table
       CASE WHEN hubsync._can_read_mirror(b.object_type) THEN b.last_error END AS last_error
FROM hubsync.backfills b;
COMMENT ON VIEW hubsync.backfill_progress IS
  'Backfills: records done, estimated total, rate (records/s), estimated time left';

-------------------------------------------------------------------------------
-- Reconciliation
-------------------------------------------------------------------------------

-- Reconciliation: keep one page of HubSpot records read by a run.
CREATE FUNCTION hubsync._reconcile_stage(p_run bigint, p_object_type text, p_records jsonb,
	p_archived boolean) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_n integer;
BEGIN
	INSERT INTO hubsync._reconcile_remote (run_id, object_type, id, archived, rec)
	SELECT p_run, p_object_type, (e ->> 'id')::bigint, p_archived, CASE WHEN NOT p_archived THEN e END
	FROM jsonb_array_elements(coalesce(p_records, '[]')) e
	ON CONFLICT ON CONSTRAINT _reconcile_remote_pkey DO NOTHING;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	UPDATE hubsync.reconcile_runs r SET requests = r.requests + 1 WHERE r.id = p_run;
	RETURN v_n;
END
$$;
COMMENT ON FUNCTION hubsync._reconcile_stage(bigint, text, jsonb, boolean) IS
  'API: private. Reconciliation: stores one page of HubSpot records of a run';

-- Reconciliation: compare the staged HubSpot records of one object type
-- with the mirror; record (and with p_repair act on) every drift.
--   missing_local   in HubSpot, not here          repair: pull (insert)
--   archived_remote archived in HubSpot, here      repair: pull (delete)
--   missing_remote  here (not pending), not there  repair: push (create)
--   mismatch        a property differs             repair by owner: hubspot
--                   pulls, postgres pushes, latest takes the newer side
--                   (HubSpot's updatedAt against our last sync of the row)
-- Rows with changes still in the outbox are in transit, not drift.
-- Must run with the capture trigger off (hubsync.reconcile, the worker).
CREATE FUNCTION hubsync._reconcile_compare(p_run bigint, p_object_type text, p_repair boolean)
RETURNS SETOF hubsync.reconcile_drift
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET work_mem = '64MB' AS $$
DECLARE
	v_cols text;
	v_pull jsonb;
	d record;
	r record;
	v_rec jsonb;
	v_props jsonb;
	v_local bigint;
	v_remote bigint;
BEGIN
	EXECUTE format('SELECT count(*) FROM hubspot.%I', p_object_type) INTO v_local;
	SELECT count(*) INTO v_remote FROM hubsync._reconcile_remote x
	WHERE x.run_id = p_run AND x.object_type = p_object_type AND NOT x.archived;

	-- every drift, found set-based
	SELECT string_agg(format('(%L, %L, %L)', m.property, m.column_name,
	                         coalesce(f.owner, 'latest')), ', ')
	INTO v_cols
	FROM hubsync.property_map m
	LEFT JOIN hubsync.field_owners f ON f.object_type = m.object_type AND f.property = m.property
	WHERE m.object_type = p_object_type;

	EXECUTE format($q$
		INSERT INTO hubsync.reconcile_drift (run_id, object_type, hubsync_id, hs_object_id, kind,
		                                     property, local_value, remote_value, action)
		WITH rem AS (
			SELECT x.id, x.archived, x.rec FROM hubsync._reconcile_remote x
			WHERE x.run_id = $1 AND x.object_type = $2
		), loc AS (
			SELECT m.hubsync_id, m.hs_object_id, to_jsonb(m) AS j,
			       EXISTS (SELECT 1 FROM hubsync.outbox o WHERE o.hubsync_id = m.hubsync_id) AS pending
			FROM hubspot.%1$I m
		)
		SELECT $1, $2, NULL::uuid, rem.id, 'missing_local', NULL, NULL, NULL,
		       CASE WHEN $3 THEN 'pull' ELSE 'none' END
		FROM rem WHERE NOT rem.archived
		  AND NOT EXISTS (SELECT 1 FROM hubspot.%1$I m WHERE m.hs_object_id = rem.id)
		UNION ALL
		SELECT $1, $2, loc.hubsync_id, loc.hs_object_id, 'archived_remote', NULL, NULL, NULL,
		       CASE WHEN $3 THEN 'pull' ELSE 'none' END
		FROM loc JOIN rem ON rem.id = loc.hs_object_id AND rem.archived
		UNION ALL
		SELECT $1, $2, loc.hubsync_id, loc.hs_object_id, 'missing_remote', NULL, NULL, NULL,
		       CASE WHEN $3 THEN 'push' ELSE 'none' END
		FROM loc
		WHERE NOT loc.pending
		  AND (loc.hs_object_id IS NULL
		       OR NOT EXISTS (SELECT 1 FROM rem WHERE rem.id = loc.hs_object_id))
		UNION ALL
		SELECT $1, $2, loc.hubsync_id, loc.hs_object_id, 'mismatch', c.prop,
		       loc.j ->> c.col, rv.j ->> c.col,
		       CASE WHEN NOT $3 THEN 'none'
		            WHEN c.owner = 'hubspot' THEN 'pull'
		            WHEN c.owner = 'postgres' THEN 'push'
		            WHEN (rem.rec ->> 'updatedAt')::timestamptz > coalesce(s.synced_at, '-infinity') THEN 'pull'
		            ELSE 'push' END
		FROM loc
		JOIN rem ON rem.id = loc.hs_object_id AND NOT rem.archived
		LEFT JOIN hubsync.sync_state s ON s.hubsync_id = loc.hubsync_id
		CROSS JOIN LATERAL (
			SELECT to_jsonb(x) AS j FROM jsonb_populate_record(NULL::hubspot.%1$I,
				(hubsync._wire_to_row($2, rem.rec -> 'properties')).cols) x
		) rv
		CROSS JOIN (VALUES %2$s) AS c(prop, col, owner)
		WHERE NOT loc.pending
		  AND (rem.rec -> 'properties') ? c.prop
		  AND (loc.j -> c.col) IS DISTINCT FROM (rv.j -> c.col)
		$q$, p_object_type, coalesce(v_cols, '(NULL, NULL, NULL)'))
		USING p_run, p_object_type, p_repair;

	IF p_repair THEN
		-- pull: records missing here, through the same path as a backfill
		SELECT jsonb_agg(x.rec) INTO v_rec
		FROM hubsync.reconcile_drift d2 JOIN hubsync._reconcile_remote x
		  ON x.run_id = p_run AND x.object_type = p_object_type AND x.id = d2.hs_object_id
		WHERE d2.run_id = p_run AND d2.object_type = p_object_type AND d2.kind = 'missing_local';
		IF v_rec IS NOT NULL THEN
			PERFORM hubsync._ingest_records(p_object_type, v_rec, 'reconcile');
		END IF;
		-- pull: records HubSpot archived
		FOR d IN SELECT * FROM hubsync.reconcile_drift d2
		         WHERE d2.run_id = p_run AND d2.object_type = p_object_type AND d2.kind = 'archived_remote'
		LOOP
			PERFORM hubsync._apply_delete(p_object_type, d.hs_object_id, false);
		END LOOP;
		-- push: records HubSpot does not have (created again)
		FOR d IN SELECT * FROM hubsync.reconcile_drift d2
		         WHERE d2.run_id = p_run AND d2.object_type = p_object_type AND d2.kind = 'missing_remote'
		LOOP
			EXECUTE format('UPDATE hubspot.%I SET hs_object_id = NULL WHERE hubsync_id = $1', p_object_type)
				USING d.hubsync_id;
			DELETE FROM hubsync.sync_state s WHERE s.hubsync_id = d.hubsync_id;
			INSERT INTO hubsync.outbox (object_type, hubsync_id, op, origin)
			VALUES (p_object_type, d.hubsync_id, 'create', 'reconcile');
		END LOOP;
		-- mismatches, record by record: pulled properties as a partial
		-- record read from HubSpot, pushed ones as an update
		FOR r IN SELECT d2.hubsync_id, d2.hs_object_id,
		                array_agg(d2.property) FILTER (WHERE d2.action = 'pull') AS pull,
		                array_agg(d2.property) FILTER (WHERE d2.action = 'push') AS push
		         FROM hubsync.reconcile_drift d2
		         WHERE d2.run_id = p_run AND d2.object_type = p_object_type AND d2.kind = 'mismatch'
		         GROUP BY d2.hubsync_id, d2.hs_object_id
		LOOP
			SELECT x.rec INTO v_rec FROM hubsync._reconcile_remote x
			WHERE x.run_id = p_run AND x.object_type = p_object_type AND x.id = r.hs_object_id;
			IF r.pull IS NOT NULL THEN
				SELECT coalesce(jsonb_object_agg(p.key, p.value), '{}') INTO v_props
				FROM jsonb_each(v_rec -> 'properties') p WHERE p.key = ANY (r.pull);
				PERFORM hubsync._apply_record(p_object_type,
					jsonb_set(v_rec, '{properties}', v_props), r.hubsync_id);
			END IF;
			IF r.push IS NOT NULL THEN
				-- what HubSpot holds, so that compare-before-write sends ours
				SELECT coalesce(jsonb_object_agg(p.key, coalesce(p.value #>> '{}', '')), '{}') INTO v_props
				FROM jsonb_each(v_rec -> 'properties') p WHERE p.key = ANY (r.push);
				INSERT INTO hubsync.sync_state AS s (hubsync_id, object_type, hs_object_id, remote)
				VALUES (r.hubsync_id, p_object_type, r.hs_object_id, v_props)
				ON CONFLICT ON CONSTRAINT sync_state_pkey DO UPDATE SET remote = s.remote || EXCLUDED.remote;
				INSERT INTO hubsync.outbox (object_type, hubsync_id, hs_object_id, op, changed, origin)
				VALUES (p_object_type, r.hubsync_id, r.hs_object_id, 'update', r.push, 'reconcile');
			END IF;
		END LOOP;
		PERFORM hubsync._wake_push();
	END IF;

	UPDATE hubsync.reconcile_runs u
	SET records_local = u.records_local + v_local, records_remote = u.records_remote + v_remote,
	    missing_local = u.missing_local + c.ml, missing_remote = u.missing_remote + c.mr,
	    mismatch = u.mismatch + c.mm, archived_remote = u.archived_remote + c.ar,
	    repaired = u.repaired + c.rep
	FROM (SELECT count(*) FILTER (WHERE d2.kind = 'missing_local') AS ml,
	             count(*) FILTER (WHERE d2.kind = 'missing_remote') AS mr,
	             count(*) FILTER (WHERE d2.kind = 'mismatch') AS mm,
	             count(*) FILTER (WHERE d2.kind = 'archived_remote') AS ar,
	             count(*) FILTER (WHERE d2.action IN ('pull', 'push')) AS rep
	      FROM hubsync.reconcile_drift d2
	      WHERE d2.run_id = p_run AND d2.object_type = p_object_type) c
	WHERE u.id = p_run;
	DELETE FROM hubsync._reconcile_remote x WHERE x.run_id = p_run AND x.object_type = p_object_type;
	RETURN QUERY SELECT * FROM hubsync.reconcile_drift d2
	             WHERE d2.run_id = p_run AND d2.object_type = p_object_type;
END
$$;
COMMENT ON FUNCTION hubsync._reconcile_compare(bigint, text, boolean) IS
  'API: private. Reconciliation: compares the staged HubSpot records of a type with the mirror, records and repairs drift';

-- Reconciliation: a run starts / ends.
CREATE FUNCTION hubsync._reconcile_begin(p_trigger text, p_object_type text, p_repair boolean)
RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE hubsync.reconcile_runs SET state = 'abandoned', finished_at = now()
	WHERE state = 'running' AND p_trigger = 'daily' AND trigger = 'daily';
	DELETE FROM hubsync._reconcile_remote x
	WHERE NOT EXISTS (SELECT 1 FROM hubsync.reconcile_runs r WHERE r.id = x.run_id AND r.state = 'running');
	INSERT INTO hubsync.reconcile_runs (trigger, object_type, repair)
	VALUES (p_trigger, p_object_type, p_repair) RETURNING id
$$;
COMMENT ON FUNCTION hubsync._reconcile_begin(text, text, boolean) IS
  'API: private. Reconciliation: records the start of a run';

CREATE FUNCTION hubsync._reconcile_end(p_run bigint, p_error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE hubsync.reconcile_runs
	SET state = CASE WHEN p_error IS NULL THEN 'done' ELSE 'failed' END, error = p_error, finished_at = now()
	WHERE id = p_run;
	DELETE FROM hubsync._reconcile_remote x WHERE x.run_id = p_run
$$;
COMMENT ON FUNCTION hubsync._reconcile_end(bigint, text) IS
  'API: private. Reconciliation: records the end of a run';

-- Compare every local row with HubSpot (one object type, or all) and
-- return one row per drift; with repair, act on it by ownership.  Runs in
-- the caller's session (reads about N/100 + archived/100 HubSpot pages).
CREATE FUNCTION hubsync.reconcile(object_type text DEFAULT NULL, repair boolean DEFAULT false)
RETURNS TABLE (object_type text, hubsync_id uuid, hs_object_id bigint, kind text, property text,
	local_value text, remote_value text, action text)
LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'hubsync_reconcile';
COMMENT ON FUNCTION hubsync.reconcile(text, boolean) IS
  'Compares the mirror with HubSpot; one row per drift (missing_local, missing_remote, mismatch, archived_remote) and the action taken when repair is true';
REVOKE ALL ON FUNCTION hubsync.reconcile(text, boolean) FROM PUBLIC;


SELECT pg_catalog.pg_extension_config_dump('hubsync.poll_state', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.backfills', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.reconcile_runs', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.reconcile_drift', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.reconcile_runs', 'id')::regclass, '');

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
		  AND p.proname NOT IN ('_credentials_status', '_from_wire', '_mirror_table', '_require_owner', '_auth_state', '_set_paused', '_event_object_type', '_trigger_grantees', '_can_read_mirror')
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
-- pg_dump: keep the rows of these tables.  Not hubsync._credentials nor
-- hubsync._enrichment_keys: secrets never reach a dump (after a restore
-- hubsync.credentials_status and enrichment_status show them missing).
-------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('hubsync.object_types', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('hubsync.property_map', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('hubsync.field_owners', '');
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

-------------------------------------------------------------------------------
-- Lead enrichment: providers, rules, real-time and batch lanes (issue 8)
-------------------------------------------------------------------------------
-- The request/response contract hubsync speaks is in docs/enrichment.md.

CREATE TABLE hubsync.enrichment_providers (
	name           text PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
	endpoint       text NOT NULL CHECK (endpoint ~* '^https?://'),
	mapping        jsonb NOT NULL CHECK (jsonb_typeof(mapping) = 'object'),
	score_path     text,
	min_score      numeric NOT NULL DEFAULT 0,
	daily_budget   integer NOT NULL DEFAULT 1000 CHECK (daily_budget >= 0),
	accepts_batch  boolean NOT NULL DEFAULT false,
	batch_size     integer NOT NULL DEFAULT 50 CHECK (batch_size BETWEEN 1 AND 1000),
	timeout_ms     integer NOT NULL DEFAULT 5000 CHECK (timeout_ms BETWEEN 100 AND 600000),
	enabled        boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE hubsync.enrichment_providers IS
  'Enrichment services hubsync calls (request/response contract in docs/enrichment.md); API keys are set with hubsync.set_enrichment_key()';
COMMENT ON COLUMN hubsync.enrichment_providers.endpoint IS 'URL hubsync POSTs to; never put a key in it';
COMMENT ON COLUMN hubsync.enrichment_providers.mapping IS 'HubSpot property => SQL/JSON path into the provider''s answer, e.g. {"jobtitle": "$.person.title"}';
COMMENT ON COLUMN hubsync.enrichment_providers.score_path IS 'SQL/JSON path of the confidence score (a number) in the answer; NULL when the provider gives none';
COMMENT ON COLUMN hubsync.enrichment_providers.min_score IS 'score needed to overwrite a non-empty field';
COMMENT ON COLUMN hubsync.enrichment_providers.daily_budget IS 'most calls per UTC day (a batch call counts once); 0 means no budget';
COMMENT ON COLUMN hubsync.enrichment_providers.accepts_batch IS 'whether the batch lane may send several records in one call';
COMMENT ON COLUMN hubsync.enrichment_providers.batch_size IS 'most records in one batch call';
COMMENT ON COLUMN hubsync.enrichment_providers.timeout_ms IS 'longest a call may take before it counts as failed (and is retried)';

CREATE TABLE hubsync._enrichment_keys (
	provider    text PRIMARY KEY REFERENCES hubsync.enrichment_providers ON DELETE CASCADE ON UPDATE CASCADE,
	api_key     text NOT NULL,
	updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE hubsync._enrichment_keys IS
  'API: private. Enrichment providers'' API keys; readable by the extension owner only';
REVOKE ALL ON hubsync._enrichment_keys FROM PUBLIC;

CREATE TABLE hubsync.enrichment_rules (
	id           integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name         text NOT NULL UNIQUE,
	object_type  text NOT NULL REFERENCES hubsync.object_types ON DELETE CASCADE,
	condition    text NOT NULL,
	lane         text NOT NULL CHECK (lane IN ('realtime', 'batch')),
	provider     text NOT NULL REFERENCES hubsync.enrichment_providers ON UPDATE CASCADE,
	fields       text[],
	enabled      boolean NOT NULL DEFAULT true,
	created_by   name NOT NULL DEFAULT current_user,
	created_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE hubsync.enrichment_rules IS
  'Which records to enrich (a SQL boolean expression over the mirror row), with which provider, in which lane; only the extension owner may change it';
COMMENT ON COLUMN hubsync.enrichment_rules.condition IS 'one SQL boolean expression over the mirror table''s columns; a record is enriched when it becomes true (insert, or an update that makes it true)';
COMMENT ON COLUMN hubsync.enrichment_rules.lane IS 'realtime (within a second of commit) or batch (every hubsync.enrichment_batch_interval)';
COMMENT ON COLUMN hubsync.enrichment_rules.fields IS 'HubSpot properties to fill; NULL means every property the provider maps';

CREATE TABLE hubsync.enrichment_jobs (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	rule_id          integer NOT NULL REFERENCES hubsync.enrichment_rules ON DELETE CASCADE,
	object_type      text NOT NULL,
	hubsync_id       uuid NOT NULL,
	lane             text NOT NULL CHECK (lane IN ('realtime', 'batch')),
	provider         text NOT NULL,
	state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'in_flight', 'done', 'failed')),
	attempts         integer NOT NULL DEFAULT 0,
	next_attempt_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	lease_until      timestamptz,
	created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
	finished_at      timestamptz,
	last_status      integer,
	last_error       text,
	score            numeric,
	applied          jsonb,
	skipped          jsonb,
	UNIQUE (rule_id, hubsync_id)
);
CREATE INDEX enrichment_jobs_pending_idx ON hubsync.enrichment_jobs (lane, provider, next_attempt_at)
	WHERE state = 'pending';
CREATE INDEX enrichment_jobs_in_flight_idx ON hubsync.enrichment_jobs (lease_until)
	WHERE state = 'in_flight';
COMMENT ON TABLE hubsync.enrichment_jobs IS
  'Enrichments queued, in flight and finished: one per record and rule, so a record is never enriched twice for the same rule';
COMMENT ON COLUMN hubsync.enrichment_jobs.state IS 'pending (waiting, retrying or out of budget: see last_error), in_flight, done or failed';
COMMENT ON COLUMN hubsync.enrichment_jobs.applied IS 'properties written to the mirror, with their new values';
COMMENT ON COLUMN hubsync.enrichment_jobs.skipped IS 'properties the provider returned but hubsync kept, with the reason';

CREATE TABLE hubsync.enrichment_usage (
	provider       text PRIMARY KEY REFERENCES hubsync.enrichment_providers ON DELETE CASCADE ON UPDATE CASCADE,
	day            date NOT NULL,
	calls          integer NOT NULL DEFAULT 0,
	failures       integer NOT NULL DEFAULT 0,
	blocked_until  timestamptz,
	last_status    integer,
	last_error     text,
	last_call_at   timestamptz
);
COMMENT ON TABLE hubsync.enrichment_usage IS
  'Per provider: calls made on the current UTC day (the daily budget), consecutive failures and the back-off they imposed';

CREATE TABLE hubsync.enrichment_scores (
	hubsync_id   uuid NOT NULL,
	property     text NOT NULL,
	object_type  text NOT NULL,
	provider     text NOT NULL,
	score        numeric,
	value        text,
	at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (hubsync_id, property)
);
COMMENT ON TABLE hubsync.enrichment_scores IS
  'Score of the value enrichment last wrote to each field, so a value is never replaced by a lower-scored one';

ALTER TABLE hubsync.changes ADD COLUMN provider text;
ALTER TABLE hubsync.changes ADD COLUMN score numeric;
COMMENT ON COLUMN hubsync.changes.provider IS 'enrichment provider that supplied the values (origin enrichment)';
COMMENT ON COLUMN hubsync.changes.score IS 'the enrichment provider''s score for these values';

CREATE FUNCTION hubsync._wake_enrich() RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_wake_enrich';
COMMENT ON FUNCTION hubsync._wake_enrich() IS
  'API: private. Wakes the enrich worker when the calling transaction commits';

CREATE FUNCTION hubsync._enrich_check_condition(cond text) RETURNS void
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'hubsync_enrich_check_condition';
COMMENT ON FUNCTION hubsync._enrich_check_condition(text) IS
  'API: private. Raises an error unless the text is exactly one SQL expression without subqueries';

CREATE FUNCTION hubsync._enrich_check_endpoint(url text) RETURNS void
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'hubsync_enrich_check_endpoint';
COMMENT ON FUNCTION hubsync._enrich_check_endpoint(text) IS
  'API: private. Raises an error when an endpoint is plain http:// to a host that is not loopback and hubsync.allow_insecure_http is off';

-- Providers: valid JSON paths, and only the owner changes them.
CREATE FUNCTION hubsync._enrich_check_provider() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m record;
BEGIN
	PERFORM hubsync._require_owner('change enrichment providers');
	-- the API key travels to the endpoint: never in clear text to another host
	PERFORM hubsync._enrich_check_endpoint(NEW.endpoint);
	FOR m IN SELECT * FROM jsonb_each(NEW.mapping) LOOP
		IF jsonb_typeof(m.value) <> 'string' THEN
			RAISE EXCEPTION 'mapping of property "%" must be a JSON path string', m.key
				USING ERRCODE = 'invalid_parameter_value',
				      HINT = 'Map each HubSpot property to an SQL/JSON path such as "$.person.title".';
		END IF;
		BEGIN
			PERFORM (m.value #>> '{}')::jsonpath;
		EXCEPTION WHEN others THEN
			RAISE EXCEPTION 'mapping of property "%" is not a valid JSON path: %', m.key, m.value #>> '{}'
				USING ERRCODE = 'invalid_parameter_value',
				      HINT = 'Use SQL/JSON path syntax such as "$.person.title".';
		END;
	END LOOP;
	IF NEW.score_path IS NOT NULL THEN
		BEGIN
			PERFORM NEW.score_path::jsonpath;
		EXCEPTION WHEN others THEN
			RAISE EXCEPTION 'score_path is not a valid JSON path: %', NEW.score_path
				USING ERRCODE = 'invalid_parameter_value',
				      HINT = 'Use SQL/JSON path syntax such as "$.confidence".';
		END;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_check_provider() IS
  'API: private. Validates an enrichment provider''s JSON paths; owner only';
CREATE TRIGGER enrichment_providers_check BEFORE INSERT OR UPDATE ON hubsync.enrichment_providers
	FOR EACH ROW EXECUTE FUNCTION hubsync._enrich_check_provider();

-- Stores (or, with NULL, removes) a provider's API key.
CREATE FUNCTION hubsync.set_enrichment_key(provider text, api_key text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hubsync._require_owner('set enrichment API keys');
	IF NOT EXISTS (SELECT 1 FROM hubsync.enrichment_providers p WHERE p.name = set_enrichment_key.provider) THEN
		RAISE EXCEPTION 'enrichment provider "%" does not exist', set_enrichment_key.provider
			USING ERRCODE = 'undefined_object',
			      HINT = 'Insert it into hubsync.enrichment_providers first.';
	END IF;
	IF api_key IS NULL THEN
		DELETE FROM hubsync._enrichment_keys k WHERE k.provider = set_enrichment_key.provider;
	ELSE
		INSERT INTO hubsync._enrichment_keys AS k (provider, api_key)
		VALUES (set_enrichment_key.provider, set_enrichment_key.api_key)
		ON CONFLICT ON CONSTRAINT _enrichment_keys_pkey
		DO UPDATE SET api_key = EXCLUDED.api_key, updated_at = now();
	END IF;
END
$$;
COMMENT ON FUNCTION hubsync.set_enrichment_key(text, text) IS
  'Stores an enrichment provider''s API key (sent as Authorization: Bearer); NULL removes it; owner only';

-- Rules: only the owner; the condition must be one expression that compiles
-- against the mirror table; fields must be mapped by the provider.
CREATE FUNCTION hubsync._enrich_check_rule() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	mapping jsonb;
	f text;
BEGIN
	PERFORM hubsync._require_owner('change enrichment rules');
	IF TG_OP = 'DELETE' THEN
		RETURN OLD;
	END IF;
	PERFORM hubsync._enrich_check_condition(NEW.condition);
	PERFORM hubsync._mirror_table(NEW.object_type);
	BEGIN
		EXECUTE format('SELECT (%s)::boolean FROM (SELECT t.* FROM hubspot.%I AS t LIMIT 0) AS t',
		               NEW.condition, NEW.object_type);
	EXCEPTION WHEN others THEN
		RAISE EXCEPTION 'invalid enrichment rule condition: %', SQLERRM
			USING ERRCODE = 'invalid_parameter_value',
			      DETAIL = format('Condition: %s', NEW.condition),
			      HINT = format('The condition must be a boolean expression over the columns of hubspot.%s.', NEW.object_type);
	END;
	SELECT p.mapping INTO mapping FROM hubsync.enrichment_providers p WHERE p.name = NEW.provider;
	FOREACH f IN ARRAY coalesce(NEW.fields, '{}') LOOP
		IF NOT mapping ? f THEN
			RAISE EXCEPTION 'enrichment provider "%" does not map property "%"', NEW.provider, f
				USING ERRCODE = 'invalid_parameter_value',
				      HINT = 'Add it to the provider''s mapping, or leave it out of the rule''s fields.';
		END IF;
	END LOOP;
	NEW.created_by := current_user;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_check_rule() IS
  'API: private. Validates an enrichment rule (owner only, one boolean expression, mapped fields)';
CREATE TRIGGER enrichment_rules_check BEFORE INSERT OR UPDATE OR DELETE ON hubsync.enrichment_rules
	FOR EACH ROW EXECUTE FUNCTION hubsync._enrich_check_rule();

-- The mirror-table trigger (src/enrich_trigger.c): queues a job for every
-- enabled rule whose condition became true (an insert, or an update that
-- made it true) and, for real-time rules, wakes the enrich worker at
-- commit.  Conditions run as the extension owner (they are the owner's
-- code), prepared once per session.
CREATE FUNCTION hubsync._enrich_enqueue() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_enrich_enqueue';
COMMENT ON FUNCTION hubsync._enrich_enqueue() IS
  'API: private. Mirror-table trigger: queues enrichment jobs for rules whose condition became true';

-- Exactly the mirror tables with enabled rules carry the hubsync_enrich
-- trigger, so tables without rules pay nothing.  Called when rules change
-- and by the enrich worker (a restored dump has rules but no triggers).
CREATE FUNCTION hubsync._enrich_sync_triggers() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t record;
BEGIN
	FOR t IN
		SELECT o.object_type,
		       EXISTS (SELECT 1 FROM hubsync.enrichment_rules r
		               WHERE r.object_type = o.object_type AND r.enabled) AS wanted,
		       EXISTS (SELECT 1 FROM pg_trigger g
		               WHERE g.tgrelid = c.oid AND g.tgname = 'hubsync_enrich') AS present
		FROM hubsync.object_types o
		JOIN pg_class c ON c.relname = o.object_type AND c.relnamespace = 'hubspot'::regnamespace
	LOOP
		IF t.wanted AND NOT t.present THEN
			EXECUTE format('CREATE TRIGGER hubsync_enrich AFTER INSERT OR UPDATE ON hubspot.%I
			                FOR EACH ROW EXECUTE FUNCTION hubsync._enrich_enqueue()', t.object_type);
		ELSIF t.present AND NOT t.wanted THEN
			EXECUTE format('DROP TRIGGER hubsync_enrich ON hubspot.%I', t.object_type);
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_sync_triggers() IS
  'API: private. Adds or drops the hubsync_enrich trigger so exactly the mirror tables with enabled rules have it';

CREATE FUNCTION hubsync._enrich_rules_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hubsync._enrich_sync_triggers();
	-- every session re-reads the rules of the mirror tables
	PERFORM hubsync._invalidate_mirror(c.oid::regclass)
	FROM hubsync.object_types o
	JOIN pg_class c ON c.relname = o.object_type AND c.relnamespace = 'hubspot'::regnamespace;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_rules_changed() IS
  'API: private. After rules change, keeps the mirror tables'' hubsync_enrich triggers in step';
CREATE TRIGGER enrichment_rules_changed AFTER INSERT OR UPDATE OR DELETE ON hubsync.enrichment_rules
	FOR EACH STATEMENT EXECUTE FUNCTION hubsync._enrich_rules_changed();

-- Queues the records that already match a rule (the trigger only sees
-- records as they change).  Returns how many jobs were queued.
CREATE FUNCTION hubsync.enrich_existing(rule text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	n bigint;
BEGIN
	PERFORM hubsync._require_owner('queue enrichments');
	SELECT * INTO r FROM hubsync.enrichment_rules ru WHERE ru.name = enrich_existing.rule;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'enrichment rule "%" does not exist', enrich_existing.rule
			USING ERRCODE = 'undefined_object';
	END IF;
	EXECUTE format(
		'INSERT INTO hubsync.enrichment_jobs (rule_id, object_type, hubsync_id, lane, provider)
		 SELECT $1, $2, t.hubsync_id, $3, $4 FROM hubspot.%I AS t WHERE (%s)::boolean
		 ON CONFLICT (rule_id, hubsync_id) DO NOTHING', r.object_type, r.condition)
	USING r.id, r.object_type, r.lane, r.provider;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 AND r.lane = 'realtime' THEN
		PERFORM hubsync._wake_enrich();
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION hubsync.enrich_existing(text) IS
  'Queues enrichment of the records that already match a rule; returns how many were queued; owner only';

-- A job (or the jobs of one call) ends: done or failed, with the reason.
CREATE FUNCTION hubsync._enrich_finish(p_ids bigint[], p_state text, p_error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE hubsync.enrichment_jobs j
	SET state = p_state, finished_at = now(), lease_until = NULL, last_error = p_error
	WHERE j.id = ANY (p_ids) AND j.state = 'in_flight'
$$;
COMMENT ON FUNCTION hubsync._enrich_finish(bigint[], text, text) IS
  'API: private. Marks in-flight enrichment jobs done or failed with a reason';

-- Enrich worker: claim the next provider calls of a lane.  One row per
-- call: the provider's endpoint, key and timeout, the jobs it carries and
-- the request body.  Counts each call against the provider's daily budget;
-- providers out of budget or backing off are skipped (their jobs wait,
-- with the reason in last_error).
CREATE FUNCTION hubsync._enrich_claim(p_lane text, p_limit integer,
	OUT provider text, OUT endpoint text, OUT api_key text, OUT timeout_ms integer,
	OUT batch boolean, OUT job_ids bigint[], OUT body text)
RETURNS SETOF record
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pv record;
	jr record;
	ids bigint[];
	recs jsonb[];
	i integer;
	today date := (now() AT TIME ZONE 'UTC')::date;
	used integer;
	calls_left integer;
	chunk integer;
	calls integer := 0;
	msg text;
	rec jsonb;
	row_json jsonb;
BEGIN
	-- leases of calls a crashed or restarted worker never finished
	UPDATE hubsync.enrichment_jobs SET state = 'pending', lease_until = NULL
	WHERE state = 'in_flight' AND lease_until < now();

	FOR pv IN
		SELECT p.*, k.api_key AS key, u.blocked_until,
		       CASE WHEN u.day = today THEN u.calls ELSE 0 END AS used_today
		FROM hubsync.enrichment_providers p
		LEFT JOIN hubsync._enrichment_keys k ON k.provider = p.name
		LEFT JOIN hubsync.enrichment_usage u ON u.provider = p.name
		WHERE p.enabled
		  AND EXISTS (SELECT 1 FROM hubsync.enrichment_jobs j
		              WHERE j.provider = p.name AND j.lane = p_lane AND j.state = 'pending'
		                AND j.next_attempt_at <= now())
		ORDER BY p.name
	LOOP
		EXIT WHEN calls >= p_limit;
		CONTINUE WHEN pv.blocked_until > now();
		used := pv.used_today;
		calls_left := CASE WHEN pv.daily_budget = 0 THEN p_limit - calls
		                   ELSE least(pv.daily_budget - used, p_limit - calls) END;
		IF calls_left <= 0 THEN
			IF pv.daily_budget > 0 AND used >= pv.daily_budget THEN
				msg := format('daily budget of provider %s exhausted (%s calls); waiting for the next UTC day',
				              pv.name, pv.daily_budget);
				UPDATE hubsync.enrichment_jobs j SET last_error = msg
				WHERE j.provider = pv.name AND j.lane = p_lane AND j.state = 'pending'
				  AND j.last_error IS DISTINCT FROM msg;
			END IF;
			CONTINUE;
		END IF;
		chunk := CASE WHEN p_lane = 'batch' AND pv.accepts_batch THEN pv.batch_size ELSE 1 END;
		-- this provider will be called: start (or roll over) its day
		INSERT INTO hubsync.enrichment_usage AS u (provider, day) VALUES (pv.name, today)
		ON CONFLICT ON CONSTRAINT enrichment_usage_pkey DO UPDATE
		SET calls = CASE WHEN u.day = today THEN u.calls ELSE 0 END, day = today
		WHERE u.day IS DISTINCT FROM today;

		ids := '{}';
		recs := '{}';
		FOR jr IN
			WITH c AS (
				SELECT j.id FROM hubsync.enrichment_jobs j
				WHERE j.provider = pv.name AND j.lane = p_lane AND j.state = 'pending'
				  AND j.next_attempt_at <= now()
				ORDER BY j.next_attempt_at, j.id
				LIMIT calls_left * chunk
				FOR UPDATE SKIP LOCKED)
			UPDATE hubsync.enrichment_jobs j
			SET state = 'in_flight', attempts = j.attempts + 1,
			    lease_until = now() + make_interval(secs => pv.timeout_ms / 1000.0 + 60)
			FROM c WHERE j.id = c.id
			RETURNING j.id, j.object_type, j.hubsync_id, j.rule_id
		LOOP
			EXECUTE format('SELECT to_jsonb(t) FROM hubspot.%I AS t WHERE t.hubsync_id = $1', jr.object_type)
				INTO row_json USING jr.hubsync_id;
			IF row_json IS NULL THEN
				PERFORM hubsync._enrich_finish(ARRAY[jr.id], 'done', 'record no longer exists');
				CONTINUE;
			END IF;
			SELECT jsonb_build_object(
			         'id', jr.hubsync_id,
			         'object_type', jr.object_type,
			         'properties', (SELECT coalesce(jsonb_object_agg(w.key, w.value), '{}')
			                        FROM jsonb_each(hubsync._wire_row(jr.object_type, row_json)) w
			                        WHERE w.value <> '""'),
			         'fields', to_jsonb(coalesce(r.fields,
			                   ARRAY(SELECT k FROM jsonb_object_keys(pv.mapping) AS k ORDER BY 1))))
			INTO rec
			FROM hubsync.enrichment_rules r WHERE r.id = jr.rule_id;
			ids := ids || jr.id;
			recs := recs || rec;
		END LOOP;

		i := 1;
		WHILE i <= cardinality(ids) LOOP
			provider := pv.name;
			endpoint := pv.endpoint;
			api_key := pv.key;
			timeout_ms := pv.timeout_ms;
			batch := chunk > 1;
			job_ids := ids[i : i + chunk - 1];
			body := CASE WHEN chunk > 1 THEN jsonb_build_object('records', to_jsonb(recs[i : i + chunk - 1]))
			             ELSE jsonb_build_object('record', recs[i]) END::text;
			UPDATE hubsync.enrichment_usage u SET calls = u.calls + 1, last_call_at = now()
			WHERE u.provider = pv.name;
			calls := calls + 1;
			i := i + chunk;
			RETURN NEXT;
		END LOOP;
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_claim(text, integer) IS
  'API: private. Enrich worker: leases the next jobs of a lane and returns the provider calls to make, within budgets and back-off';

-- One job's answer from its provider: check types, apply the data-quality
-- rules, write the mirror with origin 'enrichment' (the capture trigger
-- sends it on to HubSpot), remember the scores, record the change.
CREATE FUNCTION hubsync._enrich_apply(p_job_id bigint, p_result jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	j record;
	pv record;
	f record;
	m record;
	v_score numeric;
	sv jsonb;
	val jsonb;
	txt text;
	conv text;
	bad text[] := '{}';
	vals jsonb := '{}';
	cur jsonb;
	curv text;
	prev record;
	sets jsonb := '{}';
	v_skipped jsonb := '{}';
	cols jsonb := '{}';
	extras jsonb := '{}';
	setlist text;
BEGIN
	SELECT jj.*, r.fields INTO j
	FROM hubsync.enrichment_jobs jj JOIN hubsync.enrichment_rules r ON r.id = jj.rule_id
	WHERE jj.id = p_job_id AND jj.state = 'in_flight';
	IF NOT FOUND THEN
		RETURN;
	END IF;
	SELECT * INTO pv FROM hubsync.enrichment_providers p WHERE p.name = j.provider;

	IF jsonb_typeof(p_result) IS DISTINCT FROM 'object' THEN
		PERFORM hubsync._enrich_finish(ARRAY[p_job_id], 'failed',
			format('provider %s returned a %s where an object was expected',
			       j.provider, coalesce(jsonb_typeof(p_result), 'nothing')));
		RETURN;
	END IF;

	IF pv.score_path IS NOT NULL THEN
		sv := jsonb_path_query_first(p_result, pv.score_path::jsonpath);
		IF sv IS NOT NULL AND jsonb_typeof(sv) <> 'null' THEN
			IF jsonb_typeof(sv) <> 'number' THEN
				bad := bad || format('score (%s, not a number)', jsonb_typeof(sv));
			ELSE
				v_score := (sv #>> '{}')::numeric;
			END IF;
		END IF;
	END IF;

	FOR f IN SELECT e.key, e.value #>> '{}' AS path FROM jsonb_each(pv.mapping) e
	         WHERE j.fields IS NULL OR e.key = ANY (j.fields) ORDER BY e.key
	LOOP
		val := jsonb_path_query_first(p_result, f.path::jsonpath);
		CONTINUE WHEN val IS NULL OR jsonb_typeof(val) = 'null';
		IF jsonb_typeof(val) NOT IN ('string', 'number', 'boolean') THEN
			bad := bad || format('%s (%s)', f.key, jsonb_typeof(val));
			CONTINUE;
		END IF;
		txt := val #>> '{}';
		CONTINUE WHEN txt = '';
		SELECT pm.column_name, pm.sql_type INTO m FROM hubsync.property_map pm
		WHERE pm.object_type = j.object_type AND pm.property = f.key;
		IF FOUND THEN
			conv := hubsync._wire_to_column(txt, m.sql_type);
			IF conv IS NULL THEN
				bad := bad || format('%s (%s, not a %s)', f.key, jsonb_typeof(val), m.sql_type);
				CONTINUE;
			END IF;
			vals := vals || jsonb_build_object(f.key, jsonb_build_object('col', m.column_name, 'v', conv));
		ELSE
			vals := vals || jsonb_build_object(f.key, jsonb_build_object('v', txt));
		END IF;
	END LOOP;

	IF cardinality(bad) > 0 THEN
		PERFORM hubsync._enrich_finish(ARRAY[p_job_id], 'failed',
			format('provider %s returned wrong types: %s; nothing was written',
			       j.provider, array_to_string(bad, ', ')));
		RETURN;
	END IF;

	EXECUTE format('SELECT to_jsonb(t) FROM hubspot.%I AS t WHERE t.hubsync_id = $1 FOR UPDATE', j.object_type)
		INTO cur USING j.hubsync_id;
	IF cur IS NULL THEN
		UPDATE hubsync.enrichment_jobs SET state = 'done', finished_at = now(), lease_until = NULL,
		       score = v_score, last_error = 'record no longer exists'
		WHERE id = p_job_id;
		RETURN;
	END IF;

	FOR f IN SELECT e.key, e.value ->> 'col' AS col, e.value ->> 'v' AS v FROM jsonb_each(vals) e ORDER BY e.key LOOP
		curv := CASE WHEN f.col IS NOT NULL THEN cur ->> f.col ELSE cur -> 'properties' ->> f.key END;
		IF EXISTS (SELECT 1 FROM hubsync.field_owners o
		           WHERE o.object_type = j.object_type AND o.property = f.key AND o.owner = 'hubspot') THEN
			v_skipped := v_skipped || jsonb_build_object(f.key, 'owned by hubspot');
			CONTINUE;
		END IF;
		IF curv IS NOT NULL AND curv <> '' THEN
			IF curv = f.v THEN
				v_skipped := v_skipped || jsonb_build_object(f.key, 'already has this value');
				UPDATE hubsync.enrichment_scores s SET score = v_score, provider = j.provider, at = now()
				WHERE s.hubsync_id = j.hubsync_id AND s.property = f.key AND s.value = f.v
				  AND v_score > coalesce(s.score, '-infinity');
				CONTINUE;
			END IF;
			IF v_score IS NULL OR v_score < pv.min_score THEN
				v_skipped := v_skipped || jsonb_build_object(f.key,
					format('not empty and score %s is below the minimum %s', coalesce(v_score::text, 'missing'), pv.min_score));
				CONTINUE;
			END IF;
			SELECT s.score, s.provider INTO prev FROM hubsync.enrichment_scores s
			WHERE s.hubsync_id = j.hubsync_id AND s.property = f.key AND s.value = curv;
			IF FOUND AND prev.score IS NOT NULL AND v_score <= prev.score THEN
				v_skipped := v_skipped || jsonb_build_object(f.key,
					format('current value has score %s (%s), not lower than %s', prev.score, prev.provider, v_score));
				CONTINUE;
			END IF;
		END IF;
		sets := sets || jsonb_build_object(f.key, f.v);
		IF f.col IS NOT NULL THEN
			cols := cols || jsonb_build_object(f.col, f.v);
		ELSE
			extras := extras || jsonb_build_object(f.key, f.v);
		END IF;
	END LOOP;

	IF sets <> '{}' THEN
		SELECT string_agg(format('%I = r.%I', c.key, c.key), ', ') INTO setlist FROM jsonb_object_keys(cols) AS c(key);
		IF extras <> '{}' THEN
			setlist := concat_ws(', ', setlist, 'properties = t.properties || $3');
		END IF;
		-- the capture trigger tags the outbox rows with this origin
		PERFORM set_config('hubsync.origin', 'enrichment', true);
		EXECUTE format('UPDATE hubspot.%I AS t SET %s FROM jsonb_populate_record(NULL::hubspot.%I, $1) AS r
		                WHERE t.hubsync_id = $2', j.object_type, setlist, j.object_type)
			USING cols, j.hubsync_id, extras;
		INSERT INTO hubsync.enrichment_scores AS s (hubsync_id, property, object_type, provider, score, value)
		SELECT j.hubsync_id, e.key, j.object_type, j.provider, v_score, e.value #>> '{}'
		FROM jsonb_each(sets) e
		ON CONFLICT ON CONSTRAINT enrichment_scores_pkey DO UPDATE
		SET provider = EXCLUDED.provider, score = EXCLUDED.score, value = EXCLUDED.value, at = now();
		INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties, provider, score)
		VALUES ('in', j.object_type, j.hubsync_id, (cur ->> 'hs_object_id')::bigint, 'enrich', 'enrichment',
		        sets, j.provider, v_score);
	END IF;
	UPDATE hubsync.enrichment_jobs SET state = 'done', finished_at = now(), lease_until = NULL,
	       score = v_score, applied = sets, skipped = nullif(v_skipped, '{}'),
	       last_error = NULL
	WHERE id = p_job_id;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_apply(bigint, jsonb) IS
  'API: private. Applies one provider answer to the mirror under the data-quality rules (origin enrichment)';

-- Enrich worker: the outcome of one provider call.  429, 5xx, timeouts and
-- transport errors back the provider off (Retry-After, else 1 s doubling
-- to 60 s) and retry the jobs up to hubsync.enrichment_max_attempts; 404
-- is "no match"; other errors and malformed answers fail the jobs with a
-- clear reason.  Never an error: a bad answer must not stop the worker.
CREATE FUNCTION hubsync._enrich_result(p_job_ids bigint[], p_batch boolean, p_status integer,
	p_body text, p_error text, p_timed_out boolean, p_retry_after integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pv record;
	jr record;
	v jsonb;
	res jsonb;
	by_id jsonb;
	err text;
	nfail integer;
	backoff interval;
	max_attempts integer := current_setting('hubsync.enrichment_max_attempts')::integer;
BEGIN
	SELECT p.* INTO pv FROM hubsync.enrichment_jobs jj
	JOIN hubsync.enrichment_providers p ON p.name = jj.provider
	WHERE jj.id = ANY (p_job_ids) LIMIT 1;
	IF NOT FOUND THEN
		RETURN;					-- jobs or provider removed meanwhile
	END IF;

	IF p_status = 0 OR p_status = 429 OR p_status >= 500 THEN
		err := CASE
			WHEN p_timed_out THEN format('provider %s timed out after %s ms', pv.name, pv.timeout_ms)
			WHEN p_status = 0 THEN format('provider %s unreachable: %s', pv.name, p_error)
			WHEN p_status = 429 THEN format('provider %s is rate limiting (HTTP 429)', pv.name)
			ELSE format('provider %s failed (HTTP %s)', pv.name, p_status) END;
		UPDATE hubsync.enrichment_usage u SET failures = u.failures + 1, last_status = p_status, last_error = err
		WHERE u.provider = pv.name RETURNING u.failures INTO nfail;
		backoff := CASE WHEN p_retry_after > 0 THEN make_interval(secs => least(p_retry_after, 3600))
		                ELSE make_interval(secs => least(2 ^ least(coalesce(nfail, 1) - 1, 6), 60)) END;
		UPDATE hubsync.enrichment_usage u SET blocked_until = now() + backoff WHERE u.provider = pv.name;
		UPDATE hubsync.enrichment_jobs j
		SET state = CASE WHEN j.attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
		    finished_at = CASE WHEN j.attempts >= max_attempts THEN now() END,
		    next_attempt_at = now() + backoff, lease_until = NULL,
		    last_status = p_status,
		    last_error = CASE WHEN j.attempts >= max_attempts
		                      THEN format('%s; gave up after %s attempts', err, j.attempts)
		                      ELSE format('%s; retrying', err) END
		WHERE j.id = ANY (p_job_ids) AND j.state = 'in_flight';
		RETURN;
	END IF;

	UPDATE hubsync.enrichment_usage u SET failures = 0, blocked_until = NULL, last_status = p_status, last_error = NULL
	WHERE u.provider = pv.name;
	UPDATE hubsync.enrichment_jobs j SET last_status = p_status WHERE j.id = ANY (p_job_ids);

	IF p_status = 404 AND NOT p_batch THEN
		PERFORM hubsync._enrich_finish(p_job_ids, 'done', format('provider %s has no match', pv.name));
		RETURN;
	END IF;
	IF p_status < 200 OR p_status >= 300 THEN
		err := format('provider %s refused the request (HTTP %s)', pv.name, p_status);
		UPDATE hubsync.enrichment_usage u SET last_error = err WHERE u.provider = pv.name;
		PERFORM hubsync._enrich_finish(p_job_ids, 'failed', err);
		RETURN;
	END IF;

	BEGIN
		v := p_body::jsonb;
	EXCEPTION WHEN others THEN
		v := NULL;
	END;
	IF v IS NULL OR (p_batch AND jsonb_typeof(v -> 'results') IS DISTINCT FROM 'array') THEN
		err := CASE WHEN v IS NULL
		            THEN format('provider %s returned malformed JSON (%s bytes); nothing was written',
		                        pv.name, coalesce(octet_length(p_body), 0))
		            ELSE format('provider %s returned no "results" array for a batch; nothing was written', pv.name) END;
		UPDATE hubsync.enrichment_usage u SET last_error = err WHERE u.provider = pv.name;
		PERFORM hubsync._enrich_finish(p_job_ids, 'failed', err);
		RETURN;
	END IF;

	IF p_batch THEN
		SELECT jsonb_object_agg(e ->> 'id', e) INTO by_id
		FROM jsonb_array_elements(v -> 'results') e WHERE e ->> 'id' IS NOT NULL;
	END IF;
	FOR jr IN SELECT jj.id, jj.hubsync_id FROM hubsync.enrichment_jobs jj
	         WHERE jj.id = ANY (p_job_ids) AND jj.state = 'in_flight' ORDER BY jj.id
	LOOP
		IF p_batch THEN
			res := by_id -> jr.hubsync_id::text;
			IF res IS NULL THEN
				PERFORM hubsync._enrich_finish(ARRAY[jr.id], 'done', format('provider %s has no match', pv.name));
				CONTINUE;
			END IF;
		ELSE
			res := v;
		END IF;
		BEGIN
			PERFORM hubsync._enrich_apply(jr.id, res);
		EXCEPTION WHEN others THEN
			PERFORM hubsync._enrich_finish(ARRAY[jr.id], 'failed',
				format('could not apply the answer of provider %s: %s', pv.name, SQLERRM));
		END;
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_result(bigint[], boolean, integer, text, text, boolean, integer) IS
  'API: private. Enrich worker: records the outcome of one provider call (retry, back-off, failure or apply)';

-- Sends failed enrichment jobs again (all, or those of one provider).
CREATE FUNCTION hubsync.retry_enrichments(provider text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM hubsync._require_owner('retry enrichments');
	UPDATE hubsync.enrichment_jobs j
	SET state = 'pending', attempts = 0, next_attempt_at = now(), finished_at = NULL, last_error = NULL
	WHERE j.state = 'failed'
	  AND (retry_enrichments.provider IS NULL OR j.provider = retry_enrichments.provider);
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		PERFORM hubsync._wake_enrich();
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION hubsync.retry_enrichments(text) IS
  'Queues failed enrichment jobs again (all, or one provider''s); returns how many; owner only';

CREATE VIEW hubsync.enrichment_status AS
SELECT p.name AS provider,
       CASE WHEN NOT p.enabled THEN 'disabled'
            WHEN p.daily_budget > 0 AND u.day = (now() AT TIME ZONE 'UTC')::date
                 AND u.calls >= p.daily_budget THEN 'budget exhausted'
            WHEN u.blocked_until > now() THEN 'backing off'
            ELSE 'ok' END AS state,
       CASE WHEN u.day = (now() AT TIME ZONE 'UTC')::date THEN u.calls ELSE 0 END AS calls_today,
       p.daily_budget,
       CASE WHEN p.daily_budget > 0
            THEN greatest(p.daily_budget - CASE WHEN u.day = (now() AT TIME ZONE 'UTC')::date THEN u.calls ELSE 0 END, 0)
       END AS budget_left,
       u.blocked_until,
       u.last_status,
       u.last_error,
       (SELECT count(*) FROM hubsync.enrichment_jobs j WHERE j.provider = p.name AND j.state = 'pending' AND j.lane = 'realtime') AS realtime_pending,
       (SELECT count(*) FROM hubsync.enrichment_jobs j WHERE j.provider = p.name AND j.state = 'pending' AND j.lane = 'batch') AS batch_pending,
       (SELECT count(*) FROM hubsync.enrichment_jobs j WHERE j.provider = p.name AND j.state = 'in_flight') AS in_flight,
       (SELECT count(*) FROM hubsync.enrichment_jobs j WHERE j.provider = p.name AND j.state = 'done') AS done,
       (SELECT count(*) FROM hubsync.enrichment_jobs j WHERE j.provider = p.name AND j.state = 'failed') AS failed,
       EXISTS (SELECT 1 FROM hubsync._enrichment_keys k WHERE k.provider = p.name) AS api_key
FROM hubsync.enrichment_providers p
LEFT JOIN hubsync.enrichment_usage u ON u.provider = p.name;
COMMENT ON VIEW hubsync.enrichment_status IS
  'One row per enrichment provider: state (ok, backing off, budget exhausted, disabled), calls today against the daily budget, last error, jobs by state, whether an API key is set (api_key; pg_dump leaves keys out); never a key';
GRANT SELECT ON hubsync.enrichment_status TO PUBLIC;

-- hubsync.status, final form (after the poller's and enrichment's tables
-- exist): poller, backfill, last reconciliation, and the enrichment
-- providers each object type's rules use with their daily budget.
CREATE VIEW hubsync.status AS
SELECT t.object_type,
       t.paused,
       hubsync._auth_state() AS auth,
       coalesce(o.pending, 0)   AS pending,
       coalesce(o.in_flight, 0) AS in_flight,
       o.oldest_pending_age,
       (SELECT count(*) FROM hubsync.dead_letters d WHERE d.object_type = t.object_type) AS dead_letters,
       (SELECT max(c.at) FROM hubsync.changes c
         WHERE c.object_type = t.object_type AND c.direction = 'out') AS last_push,
       (SELECT max(c.at) FROM hubsync.changes c
         WHERE c.object_type = t.object_type AND c.direction = 'in') AS last_pull,
       coalesce(i.inbound_pending, 0) AS inbound_pending,
       coalesce(i.inbound_lag, interval '0') AS inbound_lag,
       (SELECT p.polled_at FROM hubsync.poll_state p WHERE p.object_type = t.object_type) AS polled_at,
       -- HubSpot's message: only for readers of the type's mirror table
       (SELECT p.last_error FROM hubsync.poll_state p
        WHERE p.object_type = t.object_type AND hubsync._can_read_mirror(t.object_type)) AS poll_error,
       (SELECT b.state FROM hubsync.backfill_progress b WHERE b.object_type = t.object_type) AS backfill,
       (SELECT b.done FROM hubsync.backfill_progress b WHERE b.object_type = t.object_type) AS backfill_done,
       (SELECT b.total_estimate FROM hubsync.backfill_progress b WHERE b.object_type = t.object_type) AS backfill_total,
       (SELECT b.rate FROM hubsync.backfill_progress b WHERE b.object_type = t.object_type) AS backfill_rate,
       (SELECT b.eta FROM hubsync.backfill_progress b WHERE b.object_type = t.object_type) AS backfill_eta,
       (SELECT max(r.finished_at) FROM hubsync.reconcile_runs r
        WHERE r.state = 'done' AND (r.object_type IS NULL OR r.object_type = t.object_type)) AS reconciled_at,
       (SELECT string_agg(format('%s: %s, %s/%s calls today', es.provider, es.state, es.calls_today,
                                 coalesce(es.daily_budget::text, 'unlimited')), '; ' ORDER BY es.provider)
        FROM hubsync.enrichment_status es
        WHERE es.provider IN (SELECT r.provider FROM hubsync.enrichment_rules r
                              WHERE r.object_type = t.object_type AND r.enabled)) AS enrichment,
       hubsync._trigger_grantees(t.object_type) AS trigger_grantees,
       (SELECT b.last_error FROM hubsync.backfill_progress b WHERE b.object_type = t.object_type) AS backfill_error
FROM hubsync.object_types t
LEFT JOIN (SELECT ob.object_type,
                  count(*) FILTER (WHERE ob.state = 'pending')   AS pending,
                  count(*) FILTER (WHERE ob.state = 'in_flight') AS in_flight,
                  pg_catalog.now() - min(ob.created_at)          AS oldest_pending_age
           FROM hubsync.outbox ob GROUP BY ob.object_type) o ON o.object_type = t.object_type
LEFT JOIN (SELECT hubsync._event_object_type(ib.subscription_type, ib.object_type_id) AS object_type,
                  count(*) AS inbound_pending,
                  pg_catalog.now() - pg_catalog.to_timestamp(min(ib.occurred_at) / 1000.0) AS inbound_lag
           FROM hubsync.inbox ib WHERE ib.state = 'pending'
           GROUP BY 1) i ON i.object_type = t.object_type;
COMMENT ON VIEW hubsync.status IS
  'One row per object type: paused, HubSpot''s verdict on our credentials (ok, refused or refresh_failed), changes pending and in flight, age of the oldest, dead letters, last successful push and pull, webhook events waiting and inbound lag (age of the oldest HubSpot change not yet applied); last poll and its error, backfill progress (state, done, estimated total, records/s, time left), last finished reconciliation; the enrichment providers its rules use, with their state and calls today against the daily budget; roles other than the owner that may create triggers on its mirror table (their triggers run with the workers'' superuser rights); why the last backfill failed';

DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid FROM pg_catalog.pg_proc p
		WHERE p.pronamespace = 'hubsync'::regnamespace
		  AND (p.proname LIKE '\_enrich%' OR p.proname = '_wake_enrich')
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
	END LOOP;
END
$$;

SELECT pg_catalog.pg_extension_config_dump('hubsync.enrichment_providers', '');
-- hubsync._enrichment_keys is left out on purpose: pg_dump never writes secrets
SELECT pg_catalog.pg_extension_config_dump('hubsync.enrichment_rules', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.enrichment_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.enrichment_usage', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.enrichment_scores', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.enrichment_rules', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.enrichment_jobs', 'id')::regclass, '');

-------------------------------------------------------------------------------
-- Operations (issue 10): the change feed's before values.  Last in the
-- script, so the column comes after the ones added above, as in an
-- upgraded database.
-------------------------------------------------------------------------------

ALTER TABLE hubsync.changes ADD COLUMN before jsonb;
COMMENT ON COLUMN hubsync.changes.properties IS
  'after: the values sent to HubSpot (out) or applied from it (in), as HubSpot wire strings';
COMMENT ON COLUMN hubsync.changes.before IS
  'before: the same properties'' values HubSpot had, as last known to hubsync (NULL when unknown, e.g. a create)';


-------------------------------------------------------------------------------
-- Operations (issue 10): outbound changes announced on NOTIFY hubsync_changes
-------------------------------------------------------------------------------
-- Inbound changes are announced where they are applied, one notification per
-- change; outbound ones (a push or an association change HubSpot accepted)
-- the same way, by a trigger on the change feed, so every code path that
-- records an 'out' row announces it.  The WHEN clause keeps inbound inserts
-- free of the trigger.

CREATE FUNCTION hubsync._notify_out_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	payload text;
BEGIN
	IF NEW.object_type = 'associations' THEN
		payload := jsonb_build_object('object_type', 'associations', 'op', NEW.op, 'direction', 'out',
			'from_type', NEW.properties -> 'from_type', 'from_id', NEW.properties -> 'from_id',
			'to_type', NEW.properties -> 'to_type', 'to_id', NEW.properties -> 'to_id',
			'type_id', NEW.properties -> 'type_id')::text;
	ELSE
		payload := jsonb_build_object('object_type', NEW.object_type, 'hubsync_id', NEW.hubsync_id,
			'hs_object_id', NEW.hs_object_id, 'op', NEW.op, 'direction', 'out',
			'changed', (SELECT coalesce(jsonb_agg(k ORDER BY k), '[]') FROM jsonb_object_keys(NEW.properties) k))::text;
		IF octet_length(payload) > 7900 THEN
			payload := jsonb_build_object('object_type', NEW.object_type, 'hubsync_id', NEW.hubsync_id,
				'hs_object_id', NEW.hs_object_id, 'op', NEW.op, 'direction', 'out',
				'changed', NULL, 'truncated', true)::text;
		END IF;
	END IF;
	PERFORM pg_notify('hubsync_changes', payload);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION hubsync._notify_out_change() IS
  'API: private. Trigger: NOTIFY hubsync_changes for a change HubSpot accepted (direction out)';
REVOKE ALL ON FUNCTION hubsync._notify_out_change() FROM PUBLIC;

CREATE TRIGGER hubsync_notify_out AFTER INSERT ON hubsync.changes
	FOR EACH ROW WHEN (NEW.direction = 'out') EXECUTE FUNCTION hubsync._notify_out_change();
COMMENT ON TRIGGER hubsync_notify_out ON hubsync.changes IS
  'Announces outbound changes on NOTIFY hubsync_changes (inbound ones are announced where they are applied)';
