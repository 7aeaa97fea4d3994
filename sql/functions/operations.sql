-------------------------------------------------------------------------------
-- Operations: status, alerts, housekeeping
-------------------------------------------------------------------------------
-- Worker and quota status, alerts, pruning, pauses kept for pg_dump,
-- waking the workers, and the change notifications.

CREATE OR REPLACE FUNCTION hubsync.worker_status(
	OUT worker text, OUT pid integer, OUT state text, OUT started_at timestamptz)
RETURNS SETOF record
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_worker_status';
COMMENT ON FUNCTION hubsync.worker_status() IS
  'The hubsync background workers: pid, state and start time';

CREATE OR REPLACE FUNCTION hubsync._types_to_paused() RETURNS trigger
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

CREATE OR REPLACE FUNCTION hubsync._paused_to_types() RETURNS trigger
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

-- A duration setting as an interval; p_default when the library is not
-- loaded (the setting does not exist then).
CREATE OR REPLACE FUNCTION hubsync._setting_interval(p_name text, p_default interval) RETURNS interval
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(nullif(current_setting(p_name, true), '')::interval, p_default)
$$;
COMMENT ON FUNCTION hubsync._setting_interval(text, interval) IS
  'API: private. A hubsync duration setting as an interval';

-- Sends an alert on NOTIFY hubsync_alerts (at commit) unless one of the
-- same kind and subject was sent within hubsync.alert_interval; then it
-- is only counted, and the count goes with the next one sent.  Returns
-- whether it was sent.
CREATE OR REPLACE FUNCTION hubsync._alert(p_alert text, p_key text, p_payload jsonb) RETURNS boolean
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
CREATE OR REPLACE FUNCTION hubsync.quota_status(
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
CREATE OR REPLACE FUNCTION hubsync._trigger_grantees(p_table text) RETURNS text[]
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
-- refused, oldest pending change, inbound lag, failed inbound events,
-- trigger grants, daily quota.  Dead letters
-- alert where they are made (hubsync._push_dead).  Returns how many
-- alerts were sent.
CREATE OR REPLACE FUNCTION hubsync._check_alerts() RETURNS integer
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

	-- inbound events that failed stay failed until hubsync.retry_inbox():
	-- one alert per object type, with the count (their errors, which may
	-- quote HubSpot's values, stay in hubsync.inbox)
	FOR r IN
		SELECT coalesce(hubsync._event_object_type(i.subscription_type, i.object_type_id), '') AS object_type,
		       count(*) AS failed
		FROM hubsync.inbox i WHERE i.state = 'failed'
		GROUP BY 1 ORDER BY 1
	LOOP
		n := n + hubsync._alert('inbound_failed', r.object_type, jsonb_build_object(
			'object_type', nullif(r.object_type, ''), 'failed_events', r.failed,
			'message', 'inbound events failed to apply and are kept as failed in hubsync.inbox (see its error column)',
			'hint', CASE WHEN r.object_type = '' THEN 'Fix the cause, then SELECT hubsync.retry_inbox();'
			             ELSE format('Fix the cause, then SELECT hubsync.retry_inbox(object_type => %L);', r.object_type) END
			))::integer;
	END LOOP;

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
CREATE OR REPLACE FUNCTION hubsync._prune(p_batch integer) RETURNS bigint
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
CREATE OR REPLACE FUNCTION hubsync._shrink_outbox(p_min_bytes bigint) RETURNS boolean
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

CREATE OR REPLACE FUNCTION hubsync._wake_workers() RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_wake_workers';
COMMENT ON FUNCTION hubsync._wake_workers() IS
  'API: private. Wakes every hubsync worker when the calling transaction commits';

-- Inbound changes are announced where they are applied, one notification per
-- change; outbound ones (a push or an association change HubSpot accepted)
-- the same way, by a trigger on the change feed, so every code path that
-- records an 'out' row announces it.  The WHEN clause keeps inbound inserts
-- free of the trigger.

CREATE OR REPLACE FUNCTION hubsync._notify_out_change() RETURNS trigger
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
