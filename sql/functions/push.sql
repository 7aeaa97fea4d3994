-------------------------------------------------------------------------------
-- Push machinery (called by the push worker)
-------------------------------------------------------------------------------
-- The wire form of a mirror row, claiming outbox entries, and recording
-- what HubSpot answered.

-- Every property of a mirror row (given as to_jsonb(row)) as HubSpot wire
-- strings: numeric as its decimal text, timestamptz as ISO 8601 UTC with
-- ms, date as YYYY-MM-DD, boolean as true/false, text[] joined with ';',
-- NULL as ''.  In C (src/wire.c): it runs for every pushed record.
CREATE OR REPLACE FUNCTION hubsync._wire_row(p_object_type text, r jsonb) RETURNS jsonb
LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'hubsync_wire_row';
COMMENT ON FUNCTION hubsync._wire_row(text, jsonb) IS
  'API: private. All properties of a mirror row as HubSpot wire strings';

-- The current mirror row of a record, as (hs_object_id, wire properties);
-- both NULL when there is no such row.
CREATE OR REPLACE FUNCTION hubsync._mirror_wire(p_object_type text, p_hubsync_id uuid,
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
CREATE OR REPLACE FUNCTION hubsync._props_to_send(wire jsonb, changed text[], remote jsonb,
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
-- Real-time changes (outbox.priority 1: those of a transaction that
-- captured few rows) go before bulk ones, then the oldest first; each type
-- and priority is an ordered range of the (object_type, priority, id)
-- index, so a bulk backlog never delays the real-time lane's claim.
-- Paused object types are left out before the oldest changes are picked,
-- so a paused type's backlog, however large, never holds up the others:
-- step 1 takes the oldest changes of each type that is not paused (the
-- (object_type, priority, id) index), then the oldest of those.  Every step is
-- driven by an index (that one, the primary key or the hubsync_id index),
-- so a claim costs the same with ten or ten million changes queued.
-- Right after a bulk load the outbox's statistics still say it is nearly
-- empty and the planner would sort the whole table to find the oldest
-- rows; step 1 is planned with enable_seqscan (and enable_bitmapscan)
-- off to keep it on ordered index scans, and without JIT compilation,
-- whose start-up (hundreds of ms) the planner's cost for a big outbox
-- would otherwise pay on every claim.  The same stale statistics would
-- have the mirror and sync_state read whole in step 3: it too runs with
-- enable_seqscan off (every lookup there is by hubsync_id).
CREATE OR REPLACE FUNCTION hubsync._claim(p_limit integer, p_lease_seconds integer)
RETURNS TABLE (hubsync_id uuid, object_type text, api_name text, kind text,
               hs_object_id bigint, props jsonb, outbox_ids bigint[],
               attempts integer, first_created timestamptz, solo boolean,
               realtime boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
	cand uuid[];
	cand_types text[];
	ot record;
	r record;
	known_id bigint;
	sent jsonb;
	finished bigint[] := '{}';
BEGIN
	-- 1. the records of the oldest pending changes of the types not paused:
	-- the oldest of each such type (an ordered scan of the (object_type, priority, id)
	-- index -- bounded by a row comparison, not an equality, so that no
	-- plan walks the primary key through other types' rows), then the
	-- oldest of those, grouped by record; a record with a push in flight
	-- or in back-off waits (read, not locked: only this worker changes
	-- that, and only the records taken are looked at)
	PERFORM set_config('enable_seqscan', 'off', true);
	PERFORM set_config('enable_bitmapscan', 'off', true);
	SELECT array_agg(g.hubsync_id ORDER BY g.priority DESC, g.first_id) INTO cand
	FROM (SELECT g.*
	      FROM (SELECT h.hubsync_id, min(h.id) AS first_id, max(h.priority) AS priority
	            FROM (SELECT h.*
	                  FROM hubsync.object_types t
	                  CROSS JOIN LATERAL (
	                        (SELECT i.id, i.hubsync_id, i.priority FROM hubsync.outbox i
	                         WHERE (i.object_type, i.priority) > (t.object_type, 0) AND i.object_type <= t.object_type
	                           AND i.state = 'pending' AND i.next_attempt_at <= now()
	                         ORDER BY i.object_type, i.priority, i.id
	                         LIMIT p_limit * 4)
	                        UNION ALL
	                        (SELECT i.id, i.hubsync_id, i.priority FROM hubsync.outbox i
	                         WHERE (i.object_type, i.priority, i.id) > (t.object_type, 0, 0)
	                           AND (i.object_type, i.priority) <= (t.object_type, 0)
	                           AND i.state = 'pending' AND i.next_attempt_at <= now()
	                         ORDER BY i.object_type, i.priority, i.id
	                         LIMIT p_limit * 4)) h
	                  WHERE NOT t.paused
	                  ORDER BY h.priority DESC, h.id
	                  LIMIT p_limit * 4) h
	            GROUP BY h.hubsync_id
	            ORDER BY max(h.priority) DESC, min(h.id)) g
	      WHERE NOT EXISTS (
	              SELECT 1 FROM hubsync.outbox i
	              WHERE i.hubsync_id = g.hubsync_id
	                AND (i.state = 'in_flight' OR i.next_attempt_at > now()))
	      LIMIT p_limit) g;
	PERFORM set_config('enable_bitmapscan', 'on', true);
	IF cand IS NULL THEN
		RETURN;
	END IF;
	-- ... and every pending change of theirs locked; a record whose changes
	-- another transaction holds (an inbound change being applied to it) is
	-- left for a later claim
	SELECT array_agg(x.id ORDER BY x.ord), array_agg(l.object_type ORDER BY x.ord)
	INTO cand, cand_types
	FROM unnest(cand) WITH ORDINALITY AS x(id, ord)
	JOIN (SELECT DISTINCT o.hubsync_id, o.object_type
	      FROM (SELECT o.hubsync_id, o.object_type FROM hubsync.outbox o
	            WHERE o.hubsync_id = ANY (cand) AND o.state = 'pending'
	            ORDER BY o.id
	            FOR UPDATE SKIP LOCKED) o) l ON l.hubsync_id = x.id;
	IF cand IS NULL THEN
		RETURN;
	END IF;

	-- 3. per object type: lease every pending change of those records, one
	-- summary each, with the current mirror row and what HubSpot has
	FOR ot IN
		SELECT t.object_type, t.api_name,
		       ARRAY(SELECT x.id FROM unnest(cand, cand_types) AS x(id, object_type)
		             WHERE x.object_type = t.object_type) AS records
		FROM hubsync.object_types t
		WHERE t.object_type = ANY (cand_types) ORDER BY t.object_type
	LOOP
		FOR r IN EXECUTE format(
			'WITH claimed AS (
			     UPDATE hubsync.outbox o
			     SET state = ''in_flight'', lease_until = now() + make_interval(secs => $2),
			         attempts = o.attempts + 1
			     WHERE o.hubsync_id = ANY ($1) AND o.state = ''pending''
			     RETURNING o.*),
			 c AS (
			     SELECT c.hubsync_id,
			            array_agg(c.id ORDER BY c.id) AS ids,
			            array_agg(c.id ORDER BY c.id) FILTER (WHERE c.op = ''archive'') AS archive_ids,
			            bool_or(c.op = ''create'') AS has_create,
			            bool_or(c.op = ''create'' AND c.attempts > 1) AS create_tried,
			            bool_or(c.op = ''archive'') AS has_archive,
			            max(c.hs_object_id) AS hs_object_id,
			            array_remove(array_agg(DISTINCT x), NULL) AS changed,
			            max(c.attempts) AS attempts,
			            min(c.created_at) AS first_created,
			            bool_or(c.solo) AS solo,
			            bool_or(c.priority > 0) AS realtime
			     FROM claimed c LEFT JOIN LATERAL unnest(c.changed) x ON true
			     GROUP BY c.hubsync_id)
			 SELECT c.*, t.hubsync_id IS NOT NULL AS row_found, k.known_id,
			        CASE WHEN t.hubsync_id IS NOT NULL AND NOT c.has_archive
			             THEN hubsync._props_to_send(hubsync._wire_row(%1$L, to_jsonb(t)),
			                                         coalesce(c.changed, ''{}''),
			                                         coalesce(s.remote, ''{}''),
			                                         c.has_create OR k.known_id IS NULL)
			        END AS sent
			 FROM c
			 LEFT JOIN hubspot.%2$I t ON t.hubsync_id = c.hubsync_id
			 LEFT JOIN hubsync.sync_state s ON s.hubsync_id = c.hubsync_id
			 CROSS JOIN LATERAL (SELECT coalesce(t.hs_object_id, s.hs_object_id, c.hs_object_id) AS known_id) k
			 ORDER BY c.realtime DESC, c.ids[1]', ot.object_type, ot.object_type)
			USING ot.records, p_lease_seconds
		LOOP
			hubsync_id := r.hubsync_id;
			object_type := ot.object_type;
			api_name := ot.api_name;
			outbox_ids := r.ids;
			attempts := r.attempts;
			first_created := r.first_created;
			solo := coalesce(r.solo, false);
			realtime := coalesce(r.realtime, false);
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
	PERFORM set_config('enable_seqscan', 'on', true);
END
$$;
COMMENT ON FUNCTION hubsync._claim(integer, integer) IS
  'API: private. Push worker: claims pending changes, coalesced per record, with what to send';

-- Leases of a crashed or restarted worker run out: back to pending.
CREATE OR REPLACE FUNCTION hubsync._release_expired_leases(p_all boolean DEFAULT false) RETURNS bigint
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
CREATE OR REPLACE FUNCTION hubsync._adopt_pushed(p_object_type text, p_hubsync_id uuid,
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
	EXECUTE format('UPDATE hubspot.%1$I t SET %2$s properties = hubsync._intend_properties(jsonb_populate_record(t,
	                    $1 || jsonb_build_object(''properties'', (t.properties - $2) || $3)))
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
CREATE OR REPLACE FUNCTION hubsync._push_done(p_hubsync_id uuid, p_object_type text, p_kind text,
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

-- A whole batch of plain successes in one call (issue 21): the same
-- bookkeeping as hubsync._push_done, set-based, for records of one object
-- type and kind.  Records that need more than the common path -- an update
-- HubSpot answered for another record of ours (a merge), a record with
-- something from HubSpot applied since its change was queued (adopt), or
-- properties a rep changed again after our write landed -- are left
-- untouched and returned, for hubsync._push_done one by one.  Arrays are
-- parallel (one entry per record); p_outbox_ids holds every record's
-- outbox ids.  Every table is read by its index, never scanned whole:
-- sequential scans are off, as right after a bulk load the statistics
-- still say the tables are nearly empty.
CREATE OR REPLACE FUNCTION hubsync._push_done_batch(p_object_type text, p_kind text,
	p_hubsync_ids uuid[], p_hs_object_ids bigint[], p_sent jsonb[], p_updated_at timestamptz[],
	p_outbox_ids bigint[]) RETURNS uuid[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_seqscan = off SET jit = off AS $$
DECLARE
	v_odd uuid[];
	v_fast uuid[];
	v_merged uuid[];
BEGIN
	-- the records' queued changes locked first, as hubsync._push_done does
	-- by deleting them: an inbound change being applied to one of them
	-- (it locks them too, and never waits) commits before we look, so the
	-- next statement sees it and sends that record the adopt path
	PERFORM 1 FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids) ORDER BY o.id FOR UPDATE;
	-- records that need the per-record path: something from HubSpot
	-- reached the row since its change was queued (adopt), or a sent
	-- property a rep changed again after our write landed
	SELECT coalesce(array_agg(r.hubsync_id) FILTER (WHERE r.odd), '{}'),
	       coalesce(array_agg(r.hubsync_id) FILTER (WHERE NOT r.odd), '{}')
	INTO v_odd, v_fast
	FROM (SELECT r.hubsync_id,
	             coalesce(s.synced_at > ob.created - interval '5 minutes'
	                      OR (r.updated_at IS NOT NULL AND r.sent IS NOT NULL AND EXISTS (
	                          SELECT 1 FROM jsonb_object_keys(r.sent) k
	                          WHERE k <> 'hubsync_id'
	                            AND (s.versions ->> k)::bigint > (extract(epoch FROM r.updated_at) * 1000)::bigint)),
	                      false) AS odd
	      FROM unnest(p_hubsync_ids, p_sent, p_updated_at) AS r(hubsync_id, sent, updated_at)
	      LEFT JOIN hubsync.sync_state s ON s.hubsync_id = r.hubsync_id
	      LEFT JOIN (SELECT o.hubsync_id, min(o.created_at) AS created
	                 FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids)
	                 GROUP BY o.hubsync_id) ob ON ob.hubsync_id = r.hubsync_id) r;
	-- ... or an update HubSpot answered for another record of ours (a merge)
	IF p_kind = 'update' THEN
		EXECUTE format('SELECT coalesce(array_agg(r.hubsync_id), ''{}'')
		                FROM unnest($1, $2) AS r(hubsync_id, hs_object_id)
		                WHERE r.hubsync_id = ANY ($3) AND EXISTS (
		                      SELECT 1 FROM hubspot.%I m
		                      WHERE m.hs_object_id = r.hs_object_id AND m.hubsync_id <> r.hubsync_id)',
		               p_object_type)
			INTO v_merged USING p_hubsync_ids, p_hs_object_ids, v_fast;
		v_odd := v_odd || v_merged;
		v_fast := ARRAY(SELECT x FROM unnest(v_fast) x WHERE x <> ALL (v_merged));
	END IF;
	IF v_fast = '{}' THEN
		RETURN v_odd;
	END IF;

	-- the change feed (before values: what HubSpot had, as last known),
	-- with the outbox rows it replaces
	WITH r AS (
		SELECT r.* FROM unnest(p_hubsync_ids, p_hs_object_ids, p_sent)
		         AS r(hubsync_id, hs_object_id, sent)
		WHERE r.hubsync_id = ANY (v_fast)),
	gone AS (
		DELETE FROM hubsync.outbox o
		WHERE o.id = ANY (p_outbox_ids) AND o.hubsync_id = ANY (v_fast)
		RETURNING o.hubsync_id, o.origin),
	og AS (SELECT g.hubsync_id, string_agg(DISTINCT g.origin, ',') AS origin
	       FROM gone g GROUP BY g.hubsync_id)
	INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties, before)
	SELECT 'out', p_object_type, r.hubsync_id, r.hs_object_id, p_kind, coalesce(og.origin, 'app'),
	       coalesce(r.sent, '{}'),
	       CASE WHEN p_kind = 'archive' THEN s.remote
	            ELSE (SELECT jsonb_object_agg(k, s.remote -> k)
	                  FROM jsonb_object_keys(coalesce(r.sent, '{}') - 'hubsync_id') k) END
	FROM r
	LEFT JOIN og ON og.hubsync_id = r.hubsync_id
	LEFT JOIN hubsync.sync_state s ON s.hubsync_id = r.hubsync_id;

	IF p_kind = 'archive' THEN
		DELETE FROM hubsync.sync_state s WHERE s.hubsync_id = ANY (v_fast);
		RETURN v_odd;
	END IF;
	INSERT INTO hubsync.sync_state AS s (hubsync_id, object_type, hs_object_id, remote, versions, synced_at)
	SELECT r.hubsync_id, p_object_type, r.hs_object_id, coalesce(r.sent, '{}') - 'hubsync_id',
	       CASE WHEN r.updated_at IS NOT NULL AND r.sent IS NOT NULL
	            THEN (SELECT coalesce(jsonb_object_agg(k, (extract(epoch FROM r.updated_at) * 1000)::bigint), '{}')
	                  FROM jsonb_object_keys(r.sent) k WHERE k <> 'hubsync_id')
	            ELSE '{}' END,
	       now()
	FROM unnest(p_hubsync_ids, p_hs_object_ids, p_sent, p_updated_at)
	     AS r(hubsync_id, hs_object_id, sent, updated_at)
	WHERE r.hubsync_id = ANY (v_fast)
	ON CONFLICT ON CONSTRAINT sync_state_pkey DO UPDATE
	SET remote = s.remote || EXCLUDED.remote,
	    versions = s.versions || (SELECT coalesce(jsonb_object_agg(v.key,
	                                  greatest(v.value::bigint, coalesce((s.versions ->> v.key)::bigint, -1))), '{}')
	                              FROM jsonb_each_text(EXCLUDED.versions) v),
	    hs_object_id = coalesce(EXCLUDED.hs_object_id, s.hs_object_id),
	    synced_at = now();
	-- not a property change: the capture trigger enqueues nothing
	EXECUTE format('UPDATE hubspot.%I t SET hs_object_id = r.hs_object_id
	                FROM unnest($1, $2) AS r(hubsync_id, hs_object_id)
	                WHERE t.hubsync_id = r.hubsync_id AND r.hs_object_id IS NOT NULL
	                  AND r.hubsync_id = ANY ($3)
	                  AND t.hs_object_id IS DISTINCT FROM r.hs_object_id', p_object_type)
		USING p_hubsync_ids, p_hs_object_ids, v_fast;
	RETURN v_odd;
END
$$;
COMMENT ON FUNCTION hubsync._push_done_batch(text, text, uuid[], bigint[], jsonb[], timestamptz[], bigint[]) IS
  'API: private. Records a batch of pushes HubSpot accepted; returns the records that need hubsync._push_done';

-- A push to try again later.  p_count_attempt false for 429/401: waiting
-- for quota or credentials is not a failed attempt.  p_solo: send the
-- record in a batch of its own from now on.
CREATE OR REPLACE FUNCTION hubsync._push_retry(p_outbox_ids bigint[], p_status integer, p_error text,
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
CREATE OR REPLACE FUNCTION hubsync._push_dead(p_outbox_ids bigint[], p_status integer, p_category text,
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
CREATE OR REPLACE FUNCTION hubsync._push_gone(p_outbox_ids bigint[]) RETURNS void
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
CREATE OR REPLACE FUNCTION hubsync._push_link(p_hubsync_id uuid, p_object_type text, p_hs_object_id bigint,
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

CREATE OR REPLACE FUNCTION hubsync._wake_push() RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_wake_push';
COMMENT ON FUNCTION hubsync._wake_push() IS
  'API: private. Wakes the push worker when the calling transaction commits';
