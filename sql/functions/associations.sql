-------------------------------------------------------------------------------
-- Associations both ways
-------------------------------------------------------------------------------
-- Association types and labels, capturing application changes, and the
-- association outbox the push worker sends.

-- Push worker: store the labels endpoint's answer for one pair.
CREATE OR REPLACE FUNCTION hubsync._assoc_types_store(p_from_type text, p_to_type text, p_results jsonb)
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
CREATE OR REPLACE FUNCTION hubsync.association_type(from_type text, to_type text, label text DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION hubsync._applying_remote() RETURNS boolean
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hubsync_applying_remote_fn';
COMMENT ON FUNCTION hubsync._applying_remote() IS
  'API: private. In a trigger of a mirror table or hubspot.associations: true when the row is hubsync''s own write of HubSpot''s changes (not captured); false for the application''s writes, and for what its triggers write meanwhile';

CREATE OR REPLACE FUNCTION hubsync._capture_origin() RETURNS text
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hubsync_capture_origin_fn';
COMMENT ON FUNCTION hubsync._capture_origin() IS
  'API: private. In a capture trigger: the origin to record, ''trigger'' for a trigger''s write while hubsync applies HubSpot''s changes, else hubsync.origin';

-- BEFORE trigger: fill a missing type id from a cached label, and a
-- missing label from a cached type id, so both directions keep labels;
-- an association already in the table is not inserted twice.
CREATE OR REPLACE FUNCTION hubsync._association_defaults() RETURNS trigger
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
-- HubSpot's changes, nor a pg_restore).  What a user trigger writes while
-- hubsync applies HubSpot's changes goes too, with origin 'trigger'.
CREATE OR REPLACE FUNCTION hubsync._capture_association() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_origin text := hubsync._capture_origin();
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

-- HubSpot id of a record by its hubsync_id, or NULL.
CREATE OR REPLACE FUNCTION hubsync._hs_id(p_object_type text, p_hubsync_id uuid) RETURNS bigint
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
CREATE OR REPLACE FUNCTION hubsync._row_exists(p_object_type text, p_hubsync_id uuid) RETURNS boolean
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
-- An entry with an end of a paused object type waits for its resume and
-- is left out before the oldest entries are picked: a paused type's
-- backlog (entries waiting for creates that cannot leave) never keeps
-- the other types' entries from their turn.
-- The oldest entries are read in order from the pending index, never by
-- a bitmap of every pending entry sorted afterwards (which made each
-- round cost as much as the whole queue: issue 21's 40,000 associations).
CREATE OR REPLACE FUNCTION hubsync._assoc_claim(p_limit integer, p_lease_seconds integer)
RETURNS TABLE (kind text, id bigint, from_api text, to_api text, from_type text, to_type text,
               from_id bigint, to_id bigint, type_id integer, category text, attempts integer,
               first_created timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_bitmapscan = off SET jit = off AS $$
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
		  AND NOT EXISTS (SELECT 1 FROM hubsync.object_types t
		                  WHERE t.paused AND t.object_type IN (o.from_type, o.to_type))
		ORDER BY o.id LIMIT p_limit * 4
		FOR UPDATE OF o SKIP LOCKED
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
			-- the mirror learns the ids and type it was waiting for; the
			-- rows are found by from_hubsync_id (the comparison of
			-- from_type in collation "C", the same equality, keeps the
			-- planner from walking every row of the type in the unique
			-- index when a bulk load left the statistics stale: issue 21)
			IF e.from_hubsync_id IS NOT NULL THEN
				UPDATE hubspot.associations a
				SET from_id = coalesce(a.from_id, v_from), to_id = coalesce(a.to_id, v_to),
				    type_id = coalesce(a.type_id, v_type)
				WHERE a.from_hubsync_id = e.from_hubsync_id
				  AND a.from_type COLLATE "C" = e.from_type AND a.to_type = e.to_type
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
CREATE OR REPLACE FUNCTION hubsync._assoc_done(p_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	-- Archiving a pair's unlabeled type removes its labeled types too, both
	-- ways (HubSpot's published OpenAPI documents say so of
	-- batch/labels/archive): the mirror drops them as well.  The worker
	-- runs this as HubSpot's change, so nothing is queued back.
	WITH d AS (
		DELETE FROM hubsync.association_outbox o WHERE o.id = ANY (p_ids) RETURNING o.*
	), feed AS (
		INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties)
		SELECT 'out', 'associations', d.from_hubsync_id, d.from_id,
		       CASE d.op WHEN 'create' THEN 'insert' ELSE 'delete' END, d.origin,
		       jsonb_build_object('from_type', d.from_type, 'from_id', d.from_id, 'to_type', d.to_type,
		                          'to_id', d.to_id, 'type_id', d.type_id, 'category', d.category, 'label', d.label)
		FROM d ORDER BY d.id
		RETURNING 1
	)
	DELETE FROM hubspot.associations a
	USING d
	WHERE d.op = 'archive'
	  AND d.type_id = hubsync.association_type(d.from_type, d.to_type)
	  AND ((a.from_type = d.from_type AND a.from_id = d.from_id
	        AND a.to_type = d.to_type AND a.to_id = d.to_id)
	    OR (a.from_type = d.to_type AND a.from_id = d.to_id
	        AND a.to_type = d.from_type AND a.to_id = d.from_id));
END
$$;
COMMENT ON FUNCTION hubsync._assoc_done(bigint[]) IS
  'API: private. Push worker: records association changes HubSpot accepted (an archived unlabeled type takes the pair''s labeled types out of hubspot.associations)';

-- Push worker: association changes to try again later, or failed for good.
-- The alert (through hubsync._alert: stored in hubsync.alerts, once per
-- hubsync.alert_interval) names the changes and the status; HubSpot's
-- message stays in hubsync.association_outbox.last_error (anyone may LISTEN).
CREATE OR REPLACE FUNCTION hubsync._assoc_retry(p_ids bigint[], p_status integer, p_error text,
	p_delay_ms bigint, p_count_attempt boolean, p_failed boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	UPDATE hubsync.association_outbox o
	SET state = CASE WHEN p_failed THEN 'failed' ELSE 'pending' END, lease_until = NULL,
	    next_attempt_at = now() + make_interval(secs => p_delay_ms / 1000.0),
	    attempts = CASE WHEN p_count_attempt THEN o.attempts ELSE greatest(o.attempts - 1, 0) END,
	    last_status = p_status, last_error = p_error
	WHERE o.id = ANY (p_ids);
	IF p_failed THEN
		PERFORM hubsync._alert('association_failed', '', jsonb_build_object(
			'ids', to_jsonb(p_ids), 'status', p_status));
	END IF;
END
$$;
COMMENT ON FUNCTION hubsync._assoc_retry(bigint[], integer, text, bigint, boolean, boolean) IS
  'API: private. Push worker: schedules association changes again, or marks them failed';

-- Send failed association changes again.
CREATE OR REPLACE FUNCTION hubsync.retry_failed_associations() RETURNS bigint
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
