-------------------------------------------------------------------------------
-- Polling safety net, backfill, reconciliation
-------------------------------------------------------------------------------
-- What the poller, backfill and reconciliation read from HubSpot and how
-- they store it.

-- The HubSpot properties the poller, backfill and reconciliation read.
CREATE OR REPLACE FUNCTION hubsync._read_properties(p_object_type text) RETURNS text[]
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
CREATE OR REPLACE FUNCTION hubsync._ingest_records(p_object_type text, p_records jsonb, p_source text,
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
				WHERE hubsync._intend(r)
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
CREATE OR REPLACE FUNCTION hubsync._ingest_archived(p_object_type text, p_records jsonb) RETURNS integer
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
CREATE OR REPLACE FUNCTION hubsync._association_pairs(OUT from_type text, OUT to_type text,
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
CREATE OR REPLACE FUNCTION hubsync._association_sweep_ids(p_object_type text, p_after bigint, p_limit integer)
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
CREATE OR REPLACE FUNCTION hubsync._ingest_associations(p_from_type text, p_to_type text, p_ids bigint[],
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
CREATE OR REPLACE FUNCTION hubsync._poll_save(p_object_type text, p_trailing boolean, p_ms bigint, p_id bigint,
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

-- Import every HubSpot record of one object type (or of all) in the
-- background, through list paging, with the quota real-time work leaves.
-- Resumes after a restart; a finished backfill can be started again.  A
-- failed one that kept its cursors (it gave up after transient errors)
-- resumes from them, with its counts; one that did not (HubSpot refused a
-- request or its answer was unusable: the cursor itself may be the cause)
-- starts over.
CREATE OR REPLACE FUNCTION hubsync.backfill(object_type text DEFAULT NULL) RETURNS SETOF text
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
	SET state = 'running', updated_at = now(), finished_at = NULL, last_error = NULL,
	    streams = CASE WHEN b.state = 'failed' THEN b.streams END,
	    done = CASE WHEN b.state = 'failed' AND b.streams IS NOT NULL THEN b.done ELSE 0 END,
	    total_estimate = CASE WHEN b.state = 'failed' AND b.streams IS NOT NULL THEN b.total_estimate END,
	    requests = CASE WHEN b.state = 'failed' AND b.streams IS NOT NULL THEN b.requests ELSE 0 END,
	    started_at = CASE WHEN b.state = 'failed' AND b.streams IS NOT NULL THEN b.started_at ELSE now() END
	WHERE b.state <> 'running'
	RETURNING b.object_type;
	PERFORM hubsync._wake_workers();
END
$$;
COMMENT ON FUNCTION hubsync.backfill(text) IS
  'Imports every HubSpot record of an object type (NULL: all) in the background (a failed one resumes from its cursors when it kept them); returns the types started; progress in hubsync.backfill_progress and hubsync.status';

-- Backfill: pages read (applied by _ingest_records in the same
-- transaction): new cursors and counts; once finished, the association
-- sweep of the type is due at once (the backfill's associations).  With
-- p_error the backfill failed: p_streams are the cursors to resume from
-- (NULL: start over), and the backfill_failed alert goes out (the error,
-- which may be HubSpot's text, stays in hubsync.backfills).
CREATE OR REPLACE FUNCTION hubsync._backfill_save(p_object_type text, p_streams jsonb, p_done integer,
	p_requests integer, p_total bigint, p_finished boolean, p_error text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_done bigint;
BEGIN
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
	RETURNING b.done INTO v_done;
	IF FOUND AND p_error IS NOT NULL THEN
		PERFORM hubsync._alert('backfill_failed', p_object_type, jsonb_build_object(
			'object_type', p_object_type, 'done', v_done, 'resumable', p_streams IS NOT NULL,
			'message', 'the backfill failed; why is in hubsync.status.backfill_error',
			'hint', format('Fix the cause, then SELECT hubsync.backfill(%L);', p_object_type)));
	END IF;
END
$$;
COMMENT ON FUNCTION hubsync._backfill_save(text, jsonb, integer, integer, bigint, boolean, text) IS
  'API: private. Backfill: saves the cursors and counts of an object type';

-- Reconciliation: keep one page of HubSpot records read by a run.
CREATE OR REPLACE FUNCTION hubsync._reconcile_stage(p_run bigint, p_object_type text, p_records jsonb,
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
	UPDATE hubsync.reconcile_runs r
	SET requests = r.requests + 1, records_read = r.records_read + jsonb_array_length(coalesce(p_records, '[]'))
	WHERE r.id = p_run;
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
CREATE OR REPLACE FUNCTION hubsync._reconcile_compare(p_run bigint, p_object_type text, p_repair boolean)
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
CREATE OR REPLACE FUNCTION hubsync._reconcile_begin(p_trigger text, p_object_type text, p_repair boolean)
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

CREATE OR REPLACE FUNCTION hubsync._reconcile_end(p_run bigint, p_error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE hubsync.reconcile_runs
	SET state = CASE WHEN p_error IS NULL THEN 'done' ELSE 'failed' END, error = p_error, finished_at = now()
	WHERE id = p_run;
	DELETE FROM hubsync._reconcile_remote x WHERE x.run_id = p_run
$$;
COMMENT ON FUNCTION hubsync._reconcile_end(bigint, text) IS
  'API: private. Reconciliation: records the end of a run';

-- Queue a whole-type reconciliation (one object type, or all) for the
-- pull worker, which reads and compares it a slice at a time in short
-- transactions (so no long transaction holds back vacuum); returns the
-- run's id at once.  The same run already queued or running is returned.
CREATE OR REPLACE FUNCTION hubsync.reconcile_start(object_type text DEFAULT NULL, repair boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_type text := reconcile_start.object_type;
	v_repair boolean := coalesce(reconcile_start.repair, false);
	v_id bigint;
BEGIN
	IF v_type IS NOT NULL AND NOT EXISTS (SELECT 1 FROM hubsync.object_types t WHERE t.object_type = v_type) THEN
		RAISE EXCEPTION 'object type "%" is not tracked by hubsync', v_type
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'See hubsync.object_types, or track it with hubsync.track_object().';
	END IF;
	SELECT r.id INTO v_id FROM hubsync.reconcile_runs r
	WHERE r.trigger = 'background' AND r.state IN ('queued', 'running')
	  AND r.object_type IS NOT DISTINCT FROM v_type AND r.repair = v_repair
	ORDER BY r.id LIMIT 1;
	IF v_id IS NOT NULL THEN
		RETURN v_id;
	END IF;
	INSERT INTO hubsync.reconcile_runs (trigger, object_type, repair, state, records_estimate)
	SELECT 'background', v_type, v_repair, 'queued', coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint
	FROM hubsync.object_types t
	LEFT JOIN pg_catalog.pg_class c
	  ON c.oid = pg_catalog.to_regclass(pg_catalog.format('hubspot.%I', t.object_type))
	WHERE v_type IS NULL OR t.object_type = v_type
	RETURNING id INTO v_id;
	PERFORM hubsync._wake_workers();
	RETURN v_id;
END
$$;
COMMENT ON FUNCTION hubsync.reconcile_start(text, boolean) IS
  'Queues a reconciliation of an object type (NULL: all) that the pull worker runs in short transactions; returns the run id at once; progress in hubsync.reconcile_progress, drift in hubsync.reconcile_drift';

-- Reconciliation: the pull worker takes the oldest queued background run
-- (a background run still marked running has lost its worker: abandoned).
CREATE OR REPLACE FUNCTION hubsync._reconcile_next()
RETURNS TABLE (id bigint, object_type text, repair boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	UPDATE hubsync.reconcile_runs r SET state = 'abandoned', finished_at = now(),
	       error = 'the pull worker stopped during the run'
	WHERE r.trigger = 'background' AND r.state = 'running';
	DELETE FROM hubsync._reconcile_remote x
	WHERE NOT EXISTS (SELECT 1 FROM hubsync.reconcile_runs r WHERE r.id = x.run_id AND r.state = 'running');
	RETURN QUERY
	UPDATE hubsync.reconcile_runs r SET state = 'running', started_at = now()
	WHERE r.id = (SELECT q.id FROM hubsync.reconcile_runs q
	              WHERE q.trigger = 'background' AND q.state = 'queued' ORDER BY q.id LIMIT 1)
	RETURNING r.id, r.object_type, r.repair;
END
$$;
COMMENT ON FUNCTION hubsync._reconcile_next() IS
  'API: private. Reconciliation: the pull worker starts the next queued background run';

-- Compare every local row with HubSpot (one object type, or all) and
-- return one row per drift; with repair, act on it by ownership.  Runs in
-- the caller's session (reads about N/100 + archived/100 HubSpot pages).
CREATE OR REPLACE FUNCTION hubsync.reconcile(object_type text DEFAULT NULL, repair boolean DEFAULT false)
RETURNS TABLE (object_type text, hubsync_id uuid, hs_object_id bigint, kind text, property text,
	local_value text, remote_value text, action text)
LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'hubsync_reconcile';
COMMENT ON FUNCTION hubsync.reconcile(text, boolean) IS
  'Compares the mirror with HubSpot; one row per drift (missing_local, missing_remote, mismatch, archived_remote) and the action taken when repair is true';
