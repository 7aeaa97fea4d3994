-------------------------------------------------------------------------------
-- Inbound: applying HubSpot's changes
-------------------------------------------------------------------------------
-- Reading the inbox, fetching what events need from HubSpot, and applying
-- property changes, creations, deletions, merges and associations.

-- A HubSpot wire string converted to the text form of a typed column,
-- or NULL when it is empty or cannot convert (never an error).
CREATE OR REPLACE FUNCTION hubsync._wire_to_column(value text, sql_type text) RETURNS text
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'hubsync_wire_to_column';
COMMENT ON FUNCTION hubsync._wire_to_column(text, text) IS
  'API: private. Text form of a HubSpot value for a typed column (number, datetime ISO or epoch ms, date, bool, multi-select), NULL if it cannot convert';

-- The mirror object type an inbox event is about, or NULL.
CREATE OR REPLACE FUNCTION hubsync._event_object_type(p_subscription_type text, p_object_type_id text)
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
CREATE OR REPLACE FUNCTION hubsync._inbox_fetch_plan(p_ids bigint[])
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
CREATE OR REPLACE FUNCTION hubsync._wire_to_row(p_object_type text, p_props jsonb,
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
			-- JSON null (2026-09 sends it for a property without a value):
			-- the key leaves the jsonb, as if HubSpot had never had a value
			IF jsonb_typeof(r.value) = 'null' THEN
				clear := clear || r.key;
			ELSE
				extra := extra || jsonb_build_object(r.key, r.value);
			END IF;
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
CREATE OR REPLACE FUNCTION hubsync._record_in_change(p_object_type text, p_hubsync_id uuid,
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
CREATE OR REPLACE FUNCTION hubsync._changed_props(p_object_type text, p_wire jsonb,
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
CREATE OR REPLACE FUNCTION hubsync._apply_record(p_object_type text, p_record jsonb, p_linked uuid DEFAULT NULL)
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
		-- (hubsync._intend: what a BEFORE trigger changes in it is pushed)
		EXECUTE format('INSERT INTO hubspot.%1$I SELECT r.* FROM jsonb_populate_record(NULL::hubspot.%1$I, $1) r
		                WHERE hubsync._intend(r)',
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
		-- (the SET list registers r as what hubsync writes: what a BEFORE
		-- trigger changes in the row on the way is pushed, nothing else)
		SELECT string_agg(format('%I = r.%I, ', k, k), '') INTO v_set
		FROM jsonb_object_keys(v_after) k WHERE k NOT IN ('hubsync_id', 'properties');
		EXECUTE format('UPDATE hubspot.%1$I t SET %2$s properties = hubsync._intend_properties(r)
		                FROM jsonb_populate_record(NULL::hubspot.%1$I, $1) r WHERE t.hubsync_id = $2',
		               p_object_type, coalesce(v_set, '')) USING v_after, v_hid;
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
CREATE OR REPLACE FUNCTION hubsync._request_refresh(p_object_type text, p_id bigint, p_occurred bigint)
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

-- *.propertyChange: newest wins per property, echoes of our pushes change
-- nothing, properties owned by postgres are pushed back.
CREATE OR REPLACE FUNCTION hubsync._apply_property(p_object_type text, p_event jsonb, p_occurred bigint,
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

	-- HubSpot's time of the change, for the history triggers (sql/functions/bi.sql)
	PERFORM pg_catalog.set_config('hubsync_apply.occurred_ms', p_occurred::text, true);
	IF v_map.column_name IS NULL THEN
		-- (an empty string and no value are the same: no change)
		-- (each UPDATE registers the row it means to write, for the
		-- capture of what a BEFORE trigger changes on the way)
		EXECUTE format('UPDATE hubspot.%I t SET properties = hubsync._intend_properties(jsonb_populate_record(t,
		                    jsonb_build_object(''properties'', t.properties || jsonb_build_object($1::text, $2::text))))
		                WHERE hubsync_id = $3 AND nullif(properties ->> $1, '''') IS DISTINCT FROM nullif($2::text, '''')',
		               p_object_type) USING v_prop, v_value, v_hid;
	ELSE
		v_conv := hubsync._wire_to_column(v_value, v_map.sql_type);
		IF v_conv IS NULL AND v_value <> '' THEN
			-- cannot convert: keep HubSpot's text in properties
			EXECUTE format('UPDATE hubspot.%1$I t SET %2$I = NULL,
			                    properties = hubsync._intend_properties(jsonb_populate_record(t, jsonb_build_object(%2$L, NULL,
			                        ''properties'', t.properties || jsonb_build_object($1::text, $2::text))))
			                WHERE hubsync_id = $3 AND (%2$I IS NOT NULL OR (properties -> $1) IS DISTINCT FROM to_jsonb($2::text))',
			               p_object_type, v_map.column_name)
				USING v_prop, v_value, v_hid;
		ELSE
			EXECUTE format('UPDATE hubspot.%1$I t SET %2$I = $1::%3$s,
			                    properties = hubsync._intend_properties(jsonb_populate_record(t, jsonb_build_object(%2$L, $1::%3$s,
			                        ''properties'', t.properties - $2)))
			                WHERE hubsync_id = $3 AND (%2$I IS DISTINCT FROM $1::%3$s OR properties ? $2)',
			               p_object_type, v_map.column_name, v_map.sql_type)
				USING v_conv, v_prop, v_hid;
		END IF;
	END IF;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	PERFORM pg_catalog.set_config('hubsync_apply.occurred_ms', '', true);
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
CREATE OR REPLACE FUNCTION hubsync._apply_delete(p_object_type text, p_id bigint, p_privacy boolean)
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
CREATE OR REPLACE FUNCTION hubsync._merged_away(p_object_type text, p_gone bigint, p_survivor bigint)
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

-- *.merge: the survivor keeps (or takes over) the primary's local row,
-- merged-away rows go, lineage is kept.
CREATE OR REPLACE FUNCTION hubsync._apply_merge(p_object_type text, p_event jsonb, p_fetched jsonb,
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
CREATE OR REPLACE FUNCTION hubsync._apply_association(p_object_type text, p_event jsonb,
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
CREATE OR REPLACE FUNCTION hubsync._apply_fast(p_ids bigint[], OUT applied integer, OUT skipped integer)
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
				-- (the SET list registers the row as hubsync means to write
				-- it: what a BEFORE trigger changes on the way is pushed)
				SET %2$s properties = hubsync._intend_properties(jsonb_populate_record(t,
				        u.cols || jsonb_build_object('properties', (t.properties - u.clear) || u.extra)))
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
CREATE OR REPLACE FUNCTION hubsync._inbox_still_pending(p_ids bigint[]) RETURNS SETOF bigint
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
CREATE OR REPLACE FUNCTION hubsync._apply_event(p_id bigint, p_fetched jsonb, p_fetch_failed text[])
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
CREATE OR REPLACE FUNCTION hubsync._inbox_next(p_limit integer) RETURNS SETOF bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT i.id FROM hubsync.inbox i WHERE i.state = 'pending'
	ORDER BY i.occurred_at, i.id LIMIT p_limit
$$;
COMMENT ON FUNCTION hubsync._inbox_next(integer) IS
  'API: private. Pull worker: the next pending inbox events in occurredAt order';

-- Pull worker: a poisoned event is dead-lettered with its error.
CREATE OR REPLACE FUNCTION hubsync._inbox_failed(p_id bigint, p_error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE hubsync.inbox SET state = 'failed', applied_at = now(), error = p_error WHERE id = p_id
$$;
COMMENT ON FUNCTION hubsync._inbox_failed(bigint, text) IS
  'API: private. Marks an inbox event failed with its error';

-- Failed events have a way back: once their cause is gone (a trigger of
-- yours that refused the row, a constraint, a bug since fixed), queue them
-- again -- one event, those of one object type, or all.  They are applied
-- by the usual rules (newest wins per property, so a retried old event
-- never overwrites newer data).  Returns how many were queued.
CREATE OR REPLACE FUNCTION hubsync.retry_inbox(event_id bigint DEFAULT NULL,
	object_type text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM hubsync._require_owner('retry inbound events');
	IF retry_inbox.object_type IS NOT NULL AND NOT EXISTS
		(SELECT 1 FROM hubsync.object_types t WHERE t.object_type = retry_inbox.object_type) THEN
		RAISE EXCEPTION 'object type "%" is not tracked by hubsync', retry_inbox.object_type
			USING ERRCODE = 'invalid_parameter_value',
			      HINT = 'See hubsync.object_types.';
	END IF;
	UPDATE hubsync.inbox i SET state = 'pending', applied_at = NULL, error = NULL
	WHERE i.state = 'failed'
	  AND (retry_inbox.event_id IS NULL OR i.id = retry_inbox.event_id)
	  AND (retry_inbox.object_type IS NULL
	       OR hubsync._event_object_type(i.subscription_type, i.object_type_id) = retry_inbox.object_type);
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		PERFORM hubsync._wake_workers();
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION hubsync.retry_inbox(bigint, text) IS
  'Queues failed inbound events again (one event by its hubsync.inbox id, those of one object type, or all); returns how many';
