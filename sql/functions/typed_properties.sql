-------------------------------------------------------------------------------
-- Typed properties and custom objects
-------------------------------------------------------------------------------
-- Reading HubSpot schemas, turning properties into typed columns, and
-- mirroring custom objects.

CREATE OR REPLACE FUNCTION hubsync._hubspot_get(path text) RETURNS jsonb
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_hubspot_get';
COMMENT ON FUNCTION hubsync._hubspot_get(text) IS
  'API: private. One GET from HubSpot in this backend: {"status": N, "body": JSON}; for track_object and map_property';

CREATE OR REPLACE FUNCTION hubsync._api_path(family text, object_type text DEFAULT NULL, suffix text DEFAULT '')
RETURNS text LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hubsync_api_path';
COMMENT ON FUNCTION hubsync._api_path(text, text, text) IS
  'API: private. The HubSpot path of a family (objects, properties, schemas, owners, pipelines) for hubsync.api_version';

CREATE OR REPLACE FUNCTION hubsync._api_path_in(version text, family text, object_type text DEFAULT NULL, suffix text DEFAULT '')
RETURNS text LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hubsync_api_path_in';
COMMENT ON FUNCTION hubsync._api_path_in(text, text, text, text) IS
  'API: private. Like _api_path, for another API version (2026-09, 2026-03, legacy): hubsync.check() tries legacy when the chosen version answers 404';

-- The SQL type for a HubSpot property definition (its type and fieldType).
CREATE OR REPLACE FUNCTION hubsync._sql_type_of(p_def jsonb) RETURNS text
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
CREATE OR REPLACE FUNCTION hubsync._add_typed_column(p_object_type text, p_property text, p_sql_type text)
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
CREATE OR REPLACE FUNCTION hubsync.map_property(object_type text, property text, sql_type text DEFAULT NULL)
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
		r := hubsync._hubspot_get(hubsync._api_path('properties', v_api, '/' || property));
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
CREATE OR REPLACE FUNCTION hubsync.unconverted_values(only_type text DEFAULT NULL)
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

-- The HubSpot-defined object types outside the default set that
-- hubsync.track_object() mirrors (HubSpot's table of object type ids; the
-- objects and properties APIs serve them, the custom-object schemas API
-- does not), with the scopes a token needs to sync them.  The one place
-- hubsync lists them.
CREATE OR REPLACE FUNCTION hubsync._hubspot_defined_types(
	OUT object_type text, OUT object_type_id text, OUT scopes text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE AS $$
	VALUES
		('appointments',         '0-421', 'crm.objects.appointments.read, crm.objects.appointments.write'),
		('calls',                '0-48',  'crm.objects.contacts.read, crm.objects.contacts.write'),
		('carts',                '0-142', 'crm.objects.carts.read, crm.objects.carts.write'),
		('communications',       '0-18',  'crm.objects.contacts.read, crm.objects.contacts.write'),
		('courses',              '0-410', 'crm.objects.courses.read, crm.objects.courses.write'),
		('discounts',            '0-84',  'crm.objects.line_items.read, crm.objects.line_items.write, e-commerce'),
		('emails',               '0-49',  'crm.objects.contacts.read, crm.objects.contacts.write, sales-email-read'),
		('feedback_submissions', '0-19',  'crm.objects.contacts.read, crm.objects.feedback_submissions.read (read only)'),
		('fees',                 '0-85',  'crm.objects.line_items.read, crm.objects.line_items.write, e-commerce'),
		('goal_targets',         '0-74',  'crm.objects.goals.read, crm.objects.goals.write'),
		('leads',                '0-136', 'crm.objects.leads.read, crm.objects.leads.write'),
		('listings',             '0-420', 'crm.objects.listings.read, crm.objects.listings.write'),
		('meetings',             '0-47',  'crm.objects.contacts.read, crm.objects.contacts.write'),
		('notes',                '0-46',  'crm.objects.contacts.read, crm.objects.contacts.write'),
		('orders',               '0-123', 'crm.objects.orders.read, crm.objects.orders.write'),
		('postal_mail',          '0-116', 'crm.objects.contacts.read, crm.objects.contacts.write'),
		('services',             '0-162', 'crm.objects.services.read, crm.objects.services.write'),
		('tasks',                '0-27',  'crm.objects.contacts.read, crm.objects.contacts.write'),
		('taxes',                '0-86',  'crm.objects.line_items.read, crm.objects.line_items.write, e-commerce'),
		('users',                '0-115', 'crm.objects.users.read, crm.objects.users.write')
$$;
COMMENT ON FUNCTION hubsync._hubspot_defined_types() IS
  'API: private. HubSpot-defined object types hubsync.track_object() mirrors through the properties API: name, objectTypeId, scopes';

-- Refuses an object type whose HubSpot property hubsync_id exists but is
-- not unique (hasUniqueValue false): batch upserts key on it, so HubSpot
-- would refuse every push.  p_props: the property definitions HubSpot
-- listed for the type.
CREATE OR REPLACE FUNCTION hubsync._refuse_shared_id_property(p_object_type text, p_object_type_id text, p_props jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_props, '[]')) p
	           WHERE p ->> 'name' = 'hubsync_id'
	             AND p ->> 'hasUniqueValue' = 'false') THEN
		RAISE EXCEPTION 'the HubSpot property hubsync_id of % is not unique', p_object_type
			USING ERRCODE = 'object_not_in_prerequisite_state',
			      DETAIL = format('HubSpot object type %s (%s) has a property hubsync_id with hasUniqueValue false; hubsync writes by upsert on hubsync_id, which HubSpot refuses for a property that is not unique.',
			                      p_object_type, p_object_type_id),
			      HINT = format('A property cannot be made unique afterwards: delete (or rename) the property hubsync_id of %s in HubSpot (Settings, Properties), then run hubsync.track_object(%L) again; hubsync creates it as a unique property on its first push.',
			                    p_object_type, p_object_type);
	END IF;
END
$$;
COMMENT ON FUNCTION hubsync._refuse_shared_id_property(text, text, jsonb) IS
  'API: private. Error (with a hint) when an object type''s HubSpot property hubsync_id exists but is not unique';

-- Mirrors a HubSpot object type outside the default set: a HubSpot-defined
-- one (orders, carts, leads, notes... see _hubspot_defined_types), whose
-- properties come from the properties API, or a custom object, whose
-- schema comes from the custom-object schemas API.  Records the object
-- type (objectTypeId, API name, poller's last-modified property), maps its
-- properties to typed columns and creates hubspot.<name>.
CREATE OR REPLACE FUNCTION hubsync.track_object(object_type text) RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r jsonb;
	s jsonb;
	v_tid text;
	v_name text;
	v_api text;
	v_scopes text;
	v_props jsonb;
	v_defined boolean;
	v_existing text;
	v_known text;
	p jsonb;
BEGIN
	PERFORM hubsync._require_owner('track HubSpot object types');
	SELECT string_agg(d.object_type, ', ' ORDER BY d.object_type) INTO v_known
	FROM hubsync._hubspot_defined_types() d;
	IF object_type IS NULL OR object_type !~ '^([02]-[0-9]+|p[0-9]*_[a-z0-9_]+|[a-z][a-z0-9_]*)$' THEN
		RAISE EXCEPTION 'invalid HubSpot object type "%"', object_type
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'Name a HubSpot-defined object type (' || v_known || ') or its objectTypeId (0-123), or a custom object by its objectTypeId (2-123456), p_{name} or p{portalId}_{name}.';
	END IF;
	SELECT t.object_type INTO v_existing FROM hubsync.object_types t
	WHERE t.object_type_id = track_object.object_type OR t.api_name = track_object.object_type
	   OR t.object_type = track_object.object_type;
	IF v_existing IS NOT NULL THEN
		RETURN hubsync._mirror_table(v_existing);
	END IF;

	SELECT d.object_type, d.object_type_id, d.scopes INTO v_name, v_tid, v_scopes
	FROM hubsync._hubspot_defined_types() d
	WHERE d.object_type = track_object.object_type OR d.object_type_id = track_object.object_type;
	v_defined := v_name IS NOT NULL;
	IF v_defined THEN
		-- HubSpot-defined: its property definitions say what it has
		v_api := v_name;
		r := hubsync._hubspot_get(hubsync._api_path('properties', v_api));
		IF (r ->> 'status')::integer = 403 THEN
			RAISE EXCEPTION 'HubSpot refused to list the properties of % (HTTP 403)', v_name
				USING ERRCODE = 'insufficient_privilege',
				      HINT = format('Give the app the scopes %s (see docs/hubspot-app.md) and try again.', v_scopes);
		ELSIF (r ->> 'status')::integer <> 200 THEN
			RAISE EXCEPTION 'could not read the properties of % from HubSpot (HTTP %)', v_name, r ->> 'status'
				USING ERRCODE = 'connection_failure',
				      HINT = format('Check the credentials (scopes %s) and try again.', v_scopes);
		END IF;
		v_props := r -> 'body' -> 'results';
		IF to_regclass(format('hubspot.%I', v_name)) IS NOT NULL THEN
			RAISE EXCEPTION 'table hubspot.% already exists', v_name
				USING ERRCODE = 'duplicate_table',
				      HINT = 'Rename or drop that table (it is not a hubsync mirror table), then track the object type again.';
		END IF;
	ELSE
		-- a custom object: its schema
		r := hubsync._hubspot_get(hubsync._api_path('schemas', object_type));
		IF (r ->> 'status')::integer = 404 THEN
			RAISE EXCEPTION 'HubSpot has no custom object "%"', object_type
				USING ERRCODE = 'undefined_object',
				      DETAIL = format('"%s" is not one of the HubSpot-defined object types hubsync.track_object() knows (%s), and the custom-object schemas API does not know it.', object_type, v_known),
				      HINT = 'Check the spelling; GET ' || hubsync._api_path('schemas') || ' lists the custom objects of the account (objectTypeId 2-N, name p_{name}).';
		ELSIF (r ->> 'status')::integer <> 200 THEN
			RAISE EXCEPTION 'could not read the schema of "%" from HubSpot (HTTP %)', object_type, r ->> 'status'
				USING ERRCODE = 'connection_failure',
				      HINT = 'Check the credentials (scope crm.schemas.custom.read) and try again.';
		END IF;
		s := r -> 'body';
		v_tid := s ->> 'objectTypeId';
		v_api := v_tid;
		v_props := s -> 'properties';
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
	END IF;

	PERFORM hubsync._refuse_shared_id_property(v_name, v_tid, v_props);
	INSERT INTO hubsync.object_types (object_type, object_type_id, api_name, webhook_prefix, last_modified_property)
	VALUES (v_name, v_tid, v_api, NULL, 'hs_lastmodifieddate');
	-- typed columns: a custom object's own properties; of a HubSpot-defined
	-- type, those a user can write (not hidden, calculated or read-only)
	FOR p IN SELECT * FROM jsonb_array_elements(coalesce(v_props, '[]')) LOOP
		CONTINUE WHEN (NOT v_defined AND coalesce((p ->> 'hubspotDefined')::boolean, false))
		           OR (v_defined AND (coalesce((p ->> 'hidden')::boolean, false)
		                              OR coalesce((p ->> 'calculated')::boolean, false)
		                              OR coalesce((p -> 'modificationMetadata' ->> 'readOnlyValue')::boolean, false)))
		           OR coalesce((p ->> 'archived')::boolean, false)
		           OR p ->> 'name' IN ('hubsync_id', 'hs_object_id', 'createdate', 'hs_createdate',
		                               'hs_lastmodifieddate', 'lastmodifieddate')
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
  'Mirrors a HubSpot object type outside the default set: a HubSpot-defined one (orders, carts, leads, notes, calls, emails, meetings, tasks...; properties from the properties API) or a custom object (2-N, p_{name} or p{portal}_{name}; its schema); creates hubspot.<name> with typed columns; it then syncs both ways like a standard object';
