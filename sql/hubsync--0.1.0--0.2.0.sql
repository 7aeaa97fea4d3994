/* hubsync--0.1.0--0.2.0.sql -- upgrade hubsync from 0.1.0 to 0.2.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION hubsync UPDATE TO '0.2.0'" to load this file. \quit

-- Each change to hubsync--0.2.0.sql since 0.1.0 has its counterpart here,
-- grouped by capability.  test/t/040_upgrade.pl checks that an upgraded
-- database matches a fresh install object for object.

-------------------------------------------------------------------------------
-- operations: status, alerts, housekeeping (issue 10)
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

-- The change feed's before values (properties holds the after values).
ALTER TABLE hubsync.changes ADD COLUMN before jsonb;
COMMENT ON COLUMN hubsync.changes.properties IS
  'after: the values sent to HubSpot (out) or applied from it (in), as HubSpot wire strings';
COMMENT ON COLUMN hubsync.changes.before IS
  'before: the same properties'' values HubSpot had, as last known to hubsync (NULL when unknown, e.g. a create)';

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
COMMENT ON COLUMN hubsync.alerts.alert IS 'dead_letter, auth_failed, pending_age, inbound_lag or daily_quota';
COMMENT ON COLUMN hubsync.alerts.key IS 'subject: object type (dead_letter, pending_age), UTC day (daily_quota) or empty';
COMMENT ON COLUMN hubsync.alerts.last_sent_at IS 'when the last NOTIFY was sent';
COMMENT ON COLUMN hubsync.alerts.last_seen_at IS 'when the condition was last seen, sent or not';
COMMENT ON COLUMN hubsync.alerts.sent IS 'notifications sent for this kind and subject';
COMMENT ON COLUMN hubsync.alerts.suppressed IS 'occurrences held back by the rate limit since the last notification';
COMMENT ON COLUMN hubsync.alerts.payload IS 'JSON payload of the last notification';

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
  'The shared HubSpot budget now (rolling 10-second window, UTC day, search second: used, limit, left; blocked_until after a 429) and request counters since server start';

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

	IF v_pct > 0 THEN
		SELECT * INTO q FROM hubsync.quota_status();
		IF q.daily_limit > 0 AND q.daily_used >= q.daily_limit * v_pct / 100 THEN
			n := n + hubsync._alert('daily_quota', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
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
CREATE OR REPLACE VIEW hubsync.status AS
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
       coalesce(i.inbound_lag, interval '0') AS inbound_lag
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
  'One row per object type: paused, HubSpot''s verdict on our credentials (ok or refused), changes pending and in flight, age of the oldest, dead letters, last successful push and pull, webhook events waiting and inbound lag (age of the oldest HubSpot change not yet applied)';

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
       ws.push_worker, ws.pull_worker, ws.webhook_worker,
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
             max(s.state) FILTER (WHERE s.worker = 'hubsync webhook') AS webhook_worker
      FROM hubsync.worker_status() s) ws;
COMMENT ON VIEW hubsync.summary IS
  'One row: HubSpot budget used and left (10-second window, day, search), requests by status class, 429s, retries, webhook deliveries, duplicates and refusals, worker states, credentials verdict, outbox and dead letters';

-- dead letters alert through the rate limit
CREATE OR REPLACE FUNCTION hubsync._push_dead(p_outbox_ids bigint[], p_status integer, p_category text,
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
	PERFORM hubsync._alert('dead_letter', d.object_type, jsonb_build_object(
		'object_type', d.object_type, 'hubsync_id', d.hubsync_id,
		'status', p_status, 'category', p_category, 'message', left(p_message, 200)));
END
$$;
COMMENT ON FUNCTION hubsync._push_dead(bigint[], integer, text, text, jsonb, jsonb) IS
  'API: private. Moves a push HubSpot refused for good to hubsync.dead_letters';


-- the change feed's before values
CREATE OR REPLACE FUNCTION hubsync._push_done(p_hubsync_id uuid, p_object_type text, p_kind text,
	p_hs_object_id bigint, p_sent jsonb, p_outbox_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_origin text;
	v_before jsonb;
BEGIN
	SELECT string_agg(DISTINCT o.origin, ',') INTO v_origin
	FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids);
	DELETE FROM hubsync.outbox o WHERE o.id = ANY (p_outbox_ids);
	-- the change feed's before values: what HubSpot had, as last known
	SELECT CASE WHEN p_kind = 'archive' THEN s.remote
	            ELSE (SELECT jsonb_object_agg(k, s.remote -> k)
	                  FROM jsonb_object_keys(coalesce(p_sent, '{}') - 'hubsync_id') k) END
	INTO v_before
	FROM hubsync.sync_state s WHERE s.hubsync_id = p_hubsync_id;
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
	INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties, before)
	VALUES ('out', p_object_type, p_hubsync_id, p_hs_object_id, p_kind, coalesce(v_origin, 'app'),
	        coalesce(p_sent, '{}'), v_before);
END
$$;
COMMENT ON FUNCTION hubsync._push_done(uuid, text, text, bigint, jsonb, bigint[]) IS
  'API: private. Records a push HubSpot accepted';

CREATE OR REPLACE FUNCTION hubsync._record_in_change(p_object_type text, p_hubsync_id uuid,
	p_hs_object_id bigint, p_op text, p_props jsonb, p_versions jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	payload text;
	wire jsonb;
	v_before jsonb;
BEGIN
	SELECT coalesce(jsonb_object_agg(p.key, coalesce(p.value #>> '{}', '')), '{}') INTO wire
	FROM jsonb_each(coalesce(p_props, '{}')) p;
	-- the change feed's before values: what HubSpot had, as last known
	SELECT CASE WHEN p_op = 'delete' THEN s.remote
	            ELSE (SELECT jsonb_object_agg(k, s.remote -> k) FROM jsonb_object_keys(wire) k) END
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
	INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties, before)
	VALUES ('in', p_object_type, p_hubsync_id, p_hs_object_id, p_op, 'hubspot', coalesce(p_props, '{}'), v_before);
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

CREATE OR REPLACE FUNCTION hubsync._apply_fast(p_ids bigint[], OUT applied integer, OUT skipped integer)
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
				       coalesce((s.versions ->> e.prop)::bigint, -1) AS ver,
				       s.remote -> e.prop AS before_value
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
				       jsonb_object_agg(conv.prop, conv.before_value) AS before,
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
				INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties, before)
				SELECT 'in', $3, u.hid, u.object_id, 'update', 'hubspot', u.wire, u.before
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


REVOKE ALL ON FUNCTION hubsync._setting_interval(text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync._alert(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync._check_alerts() FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync._prune(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync._shrink_outbox(bigint) FROM PUBLIC;

-- idle workers notice the new version at once
SELECT hubsync._wake_workers();
