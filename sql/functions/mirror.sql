-------------------------------------------------------------------------------
-- Mirror tables
-------------------------------------------------------------------------------
-- Creating a mirror table, its capture trigger, the cache of what
-- sessions know about it, and whether the calling role may read it (the
-- check behind the views and row security policies that show CRM values
-- or HubSpot's messages only to the readers of the mirror table).

CREATE OR REPLACE FUNCTION hubsync._capture() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_capture';
COMMENT ON FUNCTION hubsync._capture() IS
  'API: private. Row trigger on mirror tables: writes changed properties to the outbox';

-- What hubsync means to write to a mirror row while it applies HubSpot's
-- changes, given from within its own INSERT or UPDATE (the WHERE clause or
-- the SET list), so that the capture trigger pushes only what the
-- application's BEFORE triggers changed in that row (push/capture.c).
CREATE OR REPLACE FUNCTION hubsync._intend(anyelement) RETURNS boolean
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'hubsync_intend';
COMMENT ON FUNCTION hubsync._intend(anyelement) IS
  'API: private. Registers a mirror row as what the applying worker writes to it';

CREATE OR REPLACE FUNCTION hubsync._intend_properties(anyelement) RETURNS jsonb
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'hubsync_intend_properties';
COMMENT ON FUNCTION hubsync._intend_properties(anyelement) IS
  'API: private. As hubsync._intend(), for an UPDATE''s SET list: returns the row''s properties';

CREATE OR REPLACE FUNCTION hubsync._invalidate_mirror(regclass) RETURNS void
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'hubsync_invalidate_mirror';
COMMENT ON FUNCTION hubsync._invalidate_mirror(regclass) IS
  'API: private. Makes every session reload what it cached about a mirror table';

-- Creates hubspot.<object_type> from hubsync.property_map, with its
-- capture trigger and its place in pg_dump.
CREATE OR REPLACE FUNCTION hubsync._create_mirror_table(p_object_type text) RETURNS void
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

-- The mirror table of an object type, or a clear error.
CREATE OR REPLACE FUNCTION hubsync._mirror_table(p_object_type text) RETURNS regclass
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
CREATE OR REPLACE FUNCTION hubsync._can_read_mirror(p_object_type text) RETURNS boolean
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
