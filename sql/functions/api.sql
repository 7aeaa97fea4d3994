-------------------------------------------------------------------------------
-- SQL API
-------------------------------------------------------------------------------
-- Ownership of properties, idempotent upsert, read-after-write, dead
-- letters, pause and resume.

CREATE OR REPLACE FUNCTION hubsync.set_owner(object_type text, property text, owner text)
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

-- Insert or update the mirror row whose key_property equals key_value.
-- Idempotent: the same call twice leaves one row and enqueues at most one
-- push (the second changes nothing, so the capture trigger sends nothing).
CREATE OR REPLACE FUNCTION hubsync.upsert(object_type text, key_property text, key_value text,
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
CREATE OR REPLACE FUNCTION hubsync._from_wire(v text, sql_type text) RETURNS text
LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'hubsync_from_wire';
COMMENT ON FUNCTION hubsync._from_wire(text, text) IS
  'API: private. Text input of a typed column from a HubSpot wire string; an error when it cannot convert';

-- Wait until a record's committed changes reached HubSpot (read-after-write).
-- Returns 'synced', 'failed', or when the timeout passed first 'pending'
-- (or 'paused' while hubsync.pause() holds its type).  Runs with the
-- caller's rights: the caller must be able to read the record (SELECT on
-- its mirror table), and may wait an hour at most, so that no role can
-- probe records it cannot read or hold a backend polling without end.
-- It never answers for what it cannot know or wait for: an id with no
-- mirror row of that type that hubsync does not know (no change queued,
-- no dead letter, no sync state) is an error, and so is waiting while
-- no push worker can send (library not preloaded, hubsync.enabled off,
-- the workers serving another database, or the push worker not running
-- for 10 s or at the deadline).
CREATE OR REPLACE FUNCTION hubsync.await_synced(object_type text, hubsync_id uuid,
	timeout interval DEFAULT '10s') RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	mirror regclass := hubsync._mirror_table(object_type);
	deadline timestamptz;
	pause float8 := 0.005;
	st text;
	known boolean;
	other text;
	worker text;
	down_since timestamptz;
	checked_at timestamptz;
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
	-- a record of this type: its mirror row, or what hubsync knows of it
	EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s m WHERE m.hubsync_id = $1)', mirror)
		INTO known USING hubsync_id;
	IF NOT known AND NOT EXISTS (
			SELECT 1 FROM hubsync.record_status r
			WHERE r.hubsync_id = await_synced.hubsync_id AND r.object_type = await_synced.object_type) THEN
		SELECT min(r.object_type) INTO other FROM hubsync.record_status r
		WHERE r.hubsync_id = await_synced.hubsync_id;
		RAISE EXCEPTION 'hubsync knows no % record with hubsync_id %', object_type, hubsync_id
			USING ERRCODE = 'no_data_found',
			      DETAIL = 'No row of the mirror table and no change, dead letter or sync state of that type has this id.',
			      HINT = CASE WHEN other IS NOT NULL
			                  THEN format('It is a %s record: call hubsync.await_synced(%L, %L).',
			                              other, other, hubsync_id)
			                  ELSE 'Check the object type and the id; hubsync.record_status lists the records hubsync knows (a record whose deletion already reached HubSpot is no longer one of them).' END;
	END IF;
	deadline := clock_timestamp() + timeout;
	LOOP
		SELECT r.status INTO st FROM hubsync.record_status r
		WHERE r.hubsync_id = await_synced.hubsync_id AND r.object_type = await_synced.object_type;
		st := coalesce(st, 'synced');
		IF st NOT IN ('pending', 'paused') THEN
			RETURN st;
		END IF;
		-- can a push worker send it?  Asked at once, then every second
		IF checked_at IS NULL OR clock_timestamp() >= checked_at + interval '1 second'
		   OR clock_timestamp() >= deadline THEN
			checked_at := clock_timestamp();
			-- raises, with a hint, when the library is not preloaded
			SELECT w.state INTO worker FROM hubsync.worker_status() w WHERE w.worker = 'hubsync push';
			IF NOT coalesce(current_setting('hubsync.enabled', true)::boolean, true) THEN
				RAISE EXCEPTION 'hubsync cannot sync % record %: hubsync.enabled is off', object_type, hubsync_id
					USING ERRCODE = 'object_not_in_prerequisite_state',
					      DETAIL = format('Its changes stay queued (status %s).', st),
					      HINT = 'Set hubsync.enabled = on and reload the configuration.';
			END IF;
			IF current_setting('hubsync.database', true) IS DISTINCT FROM current_database() THEN
				RAISE EXCEPTION 'hubsync cannot sync % record %: its workers serve database "%", not "%"',
					object_type, hubsync_id, current_setting('hubsync.database', true), current_database()
					USING ERRCODE = 'object_not_in_prerequisite_state',
					      DETAIL = format('Its changes stay queued (status %s).', st),
					      HINT = 'Set hubsync.database to this database and restart the server.';
			END IF;
			IF worker IN ('running', 'starting') THEN
				down_since := NULL;
			ELSE
				down_since := coalesce(down_since, clock_timestamp());
				-- a crashed worker is restarted within 5 s and one that just
				-- saw the extension created or updated starts within 5 s
				IF clock_timestamp() >= down_since + interval '10 seconds'
				   OR clock_timestamp() >= deadline THEN
					RAISE EXCEPTION 'hubsync cannot sync % record %: the push worker is %',
						object_type, hubsync_id, coalesce(worker, 'not registered')
						USING ERRCODE = 'object_not_in_prerequisite_state',
						      DETAIL = format('Its changes stay queued (status %s).', st),
						      HINT = 'See hubsync.worker_status() and the server log.';
				END IF;
			END IF;
		END IF;
		IF clock_timestamp() >= deadline THEN
			RETURN st;
		END IF;
		-- 5 ms at first (read-after-write is usually quick), then up to 50 ms
		PERFORM pg_sleep(pause);
		pause := least(pause * 2, 0.05);
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync.await_synced(text, uuid, interval) IS
  'Waits (at most 1 hour) until a record''s committed changes are in HubSpot; returns synced, failed, or on timeout pending (paused while its type is paused); an unknown record, or no push worker able to send, is an error; needs SELECT on the mirror table';

-- Send dead letters again (all, or those of one object type / category).
CREATE OR REPLACE FUNCTION hubsync.retry_dead_letters(object_type text DEFAULT NULL,
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
CREATE OR REPLACE FUNCTION hubsync.discard_dead_letters(object_type text DEFAULT NULL,
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

-- Hold or release sync of one object type, or of all.
CREATE OR REPLACE FUNCTION hubsync._set_paused(p_object_type text, p_paused boolean) RETURNS void
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

CREATE OR REPLACE FUNCTION hubsync.pause(object_type text DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$ SELECT hubsync._set_paused(object_type, true) $$;
COMMENT ON FUNCTION hubsync.pause(text) IS
  'Holds sync of one object type (or all): changes keep queueing and leave on resume';

CREATE OR REPLACE FUNCTION hubsync.resume(object_type text DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$ SELECT hubsync._set_paused(object_type, false) $$;
COMMENT ON FUNCTION hubsync.resume(text) IS
  'Resumes sync held by hubsync.pause()';
