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

-- Checks the alert thresholds (called by the housekeeping round of the
-- pull worker): auth refused or OAuth refresh refused, oldest pending
-- change, inbound lag, failed inbound events, a poller failing, a worker down, webhook signature
-- refusals, trigger grants, daily quota.  Dead letters and failed
-- association changes alert where they are made.  What must be remembered
-- between rounds (since when, last counter) is in hubsync.alert_watch.
-- Returns how many alerts were sent.
CREATE OR REPLACE FUNCTION hubsync._check_alerts() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n integer := 0;
	v_age interval := hubsync._setting_interval('hubsync.alert_pending_age', '900s');
	v_lag interval := hubsync._setting_interval('hubsync.alert_inbound_lag', '300s');
	v_pct numeric := coalesce(nullif(current_setting('hubsync.alert_daily_quota', true), '')::numeric, 90);
	v_poll interval := hubsync._setting_interval('hubsync.alert_poll_failing', '900s');
	v_down interval := hubsync._setting_interval('hubsync.alert_worker_down', '60s');
	v_refused_max bigint := coalesce(nullif(current_setting('hubsync.alert_webhook_refused', true), '')::bigint, 10);
	v_refused bigint;
	v_last bigint;
	-- as hubsync.credentials_status says it (a refused refresh survives restarts)
	v_auth text := (SELECT s.auth FROM hubsync._credentials_status() s);
	v_oldest timestamptz;
	v_occurred bigint;
	r record;
	q record;
BEGIN
	IF v_auth = 'refused' THEN
		n := n + hubsync._alert('auth_failed', '', jsonb_build_object(
			'message', 'HubSpot refused hubsync''s credentials (HTTP 401): pushing has stopped',
			'hint', 'Set a valid token with hubsync.set_credentials(access_token => ...).'))::integer;
	ELSIF v_auth = 'refresh_failed' AND NOT (SELECT s.oauth_refresh_token FROM hubsync._credentials_status() s) THEN
		n := n + hubsync._alert('auth_refresh_failed', '', jsonb_build_object(
			'message', 'HubSpot refused the OAuth client credentials (client_credentials grant): sync has stopped until the credentials change',
			'hint', 'Check the app''s client id and client secret, then hubsync.set_credentials(oauth_client_id => ..., oauth_client_secret => ...); hubsync.credentials_status says why.'))::integer;
	ELSIF v_auth = 'refresh_failed' THEN
		n := n + hubsync._alert('auth_refresh_failed', '', jsonb_build_object(
			'message', 'HubSpot refused the OAuth refresh token: sync has stopped until the credentials change',
			'hint', 'Reinstall the app or authorize again, then hubsync.set_credentials(oauth_refresh_token => ...); hubsync.credentials_status says why.'))::integer;
	END IF;

	-- a poller failing round after round: the safety net for missed
	-- webhooks is gone (its error stays in hubsync.poll_state.last_error)
	IF v_poll > interval '0' THEN
		DELETE FROM hubsync.alert_watch w
		WHERE w.watch LIKE 'poll_failing:%'
		  AND NOT EXISTS (SELECT FROM hubsync.poll_state p
		                  WHERE 'poll_failing:' || p.object_type = w.watch AND p.last_error IS NOT NULL);
		INSERT INTO hubsync.alert_watch (watch)
		SELECT 'poll_failing:' || p.object_type FROM hubsync.poll_state p
		JOIN hubsync.object_types t ON t.object_type = p.object_type AND NOT t.paused
		WHERE p.last_error IS NOT NULL
		ON CONFLICT (watch) DO NOTHING;
		FOR r IN
			SELECT p.object_type, p.polled_at, now() - w.since AS failing
			FROM hubsync.alert_watch w
			JOIN hubsync.poll_state p ON 'poll_failing:' || p.object_type = w.watch
			JOIN hubsync.object_types t ON t.object_type = p.object_type AND NOT t.paused
			WHERE w.since < now() - v_poll AND p.last_error IS NOT NULL
			ORDER BY p.object_type
		LOOP
			n := n + hubsync._alert('poll_failing', r.object_type, jsonb_build_object(
				'object_type', r.object_type, 'failing_seconds', round(extract(epoch FROM r.failing)),
				'last_polled_at', r.polled_at,
				'threshold_seconds', extract(epoch FROM v_poll)))::integer;
		END LOOP;
	END IF;

	-- a worker that is not running while hubsync is enabled (this runs in
	-- the pull worker: its own absence cannot be seen from here)
	IF v_down > interval '0' AND coalesce(current_setting('hubsync.enabled', true), 'on') = 'on' THEN
		DELETE FROM hubsync.alert_watch w
		WHERE w.watch LIKE 'worker_down:%'
		  AND NOT EXISTS (SELECT FROM hubsync.worker_status() s
		                  WHERE 'worker_down:' || s.worker = w.watch
		                    AND s.state NOT IN ('running', 'idle: disabled', 'idle: standby'));
		INSERT INTO hubsync.alert_watch (watch)
		SELECT 'worker_down:' || s.worker FROM hubsync.worker_status() s
		WHERE s.state NOT IN ('running', 'idle: disabled', 'idle: standby')
		ON CONFLICT (watch) DO NOTHING;
		FOR r IN
			SELECT s.worker, s.state, now() - w.since AS down
			FROM hubsync.alert_watch w
			JOIN hubsync.worker_status() s ON 'worker_down:' || s.worker = w.watch
			WHERE w.since < now() - v_down
			ORDER BY s.worker
		LOOP
			n := n + hubsync._alert('worker_down', r.worker, jsonb_build_object(
				'worker', r.worker, 'state', r.state,
				'down_seconds', round(extract(epoch FROM r.down)),
				'threshold_seconds', extract(epoch FROM v_down)))::integer;
		END LOOP;
	ELSE
		DELETE FROM hubsync.alert_watch w WHERE w.watch LIKE 'worker_down:%';
	END IF;

	-- webhook deliveries refused for a bad signature since the last round:
	-- a wrong client secret, or someone forging deliveries
	SELECT sum(c.value)::bigint INTO v_refused
	FROM hubsync.webhook_counters() c WHERE c.counter = 'refused_signature';
	IF v_refused IS NOT NULL THEN
		SELECT w.value INTO v_last FROM hubsync.alert_watch w WHERE w.watch = 'webhook_refused';
		-- written only when it changed (no row while nothing was refused)
		IF v_refused IS DISTINCT FROM coalesce(v_last, 0) THEN
			INSERT INTO hubsync.alert_watch AS w (watch, value) VALUES ('webhook_refused', v_refused)
			ON CONFLICT (watch) DO UPDATE SET value = EXCLUDED.value, since = now();
		END IF;
		-- the counters start again at zero with the server
		IF v_last IS NULL OR v_last > v_refused THEN
			v_last := 0;
		END IF;
		IF v_refused_max > 0 AND v_refused - v_last > v_refused_max THEN
			n := n + hubsync._alert('webhook_refused', '', jsonb_build_object(
				'refused_signature', v_refused - v_last,
				'refused_signature_total', v_refused,
				'threshold', v_refused_max))::integer;
		END IF;
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
-- records an 'out' row announces it (in C, src/push/notify_out.c: it fires
-- once per pushed record).  The WHEN clause keeps inbound inserts free of
-- the trigger.

CREATE OR REPLACE FUNCTION hubsync._notify_out_change() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_notify_out_change';
COMMENT ON FUNCTION hubsync._notify_out_change() IS
  'API: private. Trigger: NOTIFY hubsync_changes for a change HubSpot accepted (direction out)';

-- One GET for hubsync.check(): {"status", "body"}, status 0 with the
-- error as body when it could not be sent (no credentials, unreachable).
CREATE OR REPLACE FUNCTION hubsync._check_get(p_path text) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN hubsync._hubspot_get(p_path);
EXCEPTION WHEN OTHERS THEN
	RETURN jsonb_build_object('status', 0, 'body', SQLERRM);
END
$$;
COMMENT ON FUNCTION hubsync._check_get(text) IS
  'API: private. hubsync.check(): one GET from HubSpot, errors as status 0';

-- Verifies the set-up before the first row is written: credentials,
-- HubSpot reachable and the token accepted, the API version family, read
-- access per tracked object type (the token's scopes), the hubsync_id
-- property, the webhook receiver (or polling only) and the workers.  Only GETs: nothing is
-- created in HubSpot.  Owner only (it uses the stored token).
CREATE OR REPLACE FUNCTION hubsync.check(
	OUT item text, OUT ok boolean, OUT detail text, OUT hint text)
RETURNS SETOF record
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	c record;
	r record;
	g jsonb;
	v_status integer;
	v_token_ok boolean := false;
	v_token_status integer;
	v_version text := current_setting('hubsync.api_version');
	v_port integer := coalesce(nullif(current_setting('hubsync.webhook_port', true), '')::integer, 0);
	v_url text := coalesce(current_setting('hubsync.webhook_public_url', true), '');
	v_down text;
	v_scopes text;
BEGIN
	PERFORM hubsync._require_owner('check the hubsync set-up');

	-- credentials
	SELECT * INTO c FROM hubsync._credentials_status();
	item := 'credentials';
	ok := c.auth IS DISTINCT FROM 'missing';
	detail := CASE WHEN c.access_token THEN 'private-app token set'
	               WHEN c.oauth_refresh_token THEN 'OAuth client and refresh token set'
	               WHEN c.oauth_client_id AND c.oauth_client_secret THEN 'OAuth client id and secret set (client credentials grant)'
	               ELSE 'no access token and no complete OAuth client' END
	          || CASE WHEN (c.access_token OR c.oauth_refresh_token) AND c.oauth_client_id AND c.oauth_client_secret
	                  THEN '; OAuth client id and secret set (client credentials for the Webhooks Journal)' ELSE '' END
	          || CASE WHEN c.client_secret THEN '; app client secret set' ELSE '' END;
	hint := CASE WHEN NOT ok THEN 'SELECT hubsync.set_credentials(access_token => ''...'');' END;
	RETURN NEXT;

	-- HubSpot reachable and the token accepted: a read of one record of
	-- the first tracked type
	SELECT t.object_type, t.api_name INTO r FROM hubsync.object_types t
	ORDER BY t.builtin DESC, t.object_type LIMIT 1;
	item := 'token';
	IF NOT ok THEN
		ok := false; detail := 'not checked: no credentials'; hint := NULL;
	ELSE
		g := hubsync._check_get(hubsync._api_path('objects', r.api_name, '?limit=1'));
		v_status := (g->>'status')::integer;
		ok := v_status BETWEEN 200 AND 299 OR v_status = 403;
		v_token_ok := ok;
		v_token_status := v_status;
		detail := CASE WHEN ok THEN 'HubSpot reachable, token accepted'
		               WHEN v_status = 0 THEN 'HubSpot not reached: ' || coalesce(g->>'body', '')
		               WHEN v_status = 401 THEN 'HubSpot refused the token (HTTP 401)'
		               ELSE format('HubSpot answered HTTP %s', v_status) END;
		hint := CASE WHEN ok THEN NULL
		             WHEN v_status = 0 THEN 'Check hubsync.api_base_url, DNS, the firewall and the CA bundle; see the server log.'
		             WHEN v_status = 401 THEN 'The token is wrong, revoked or rotated: copy the private app''s access token again and run hubsync.set_credentials(access_token => ''...'').'
		             WHEN v_status = 404 THEN 'See the api version item.'
		             ELSE 'Try again later; see HubSpot''s status page.' END;
	END IF;
	RETURN NEXT;

	-- the API version family: a 404 where the legacy paths work means this
	-- HubSpot (or a proxy in front of it) does not serve the chosen version
	item := 'api version';
	ok := true;
	detail := 'hubsync.api_version = ' || v_version;
	hint := NULL;
	IF v_token_status = 404 AND v_version <> 'legacy' THEN
		g := hubsync._check_get(hubsync._api_path_in('legacy', 'objects', r.api_name, '?limit=1'));
		IF (g->>'status')::integer BETWEEN 200 AND 299 OR (g->>'status')::integer = 403 THEN
			ok := false;
			detail := detail || format(': HubSpot answered 404 on the %s paths, the legacy paths work', v_version);
			hint := format('HubSpot does not serve API version %s here: ALTER SYSTEM SET hubsync.api_version = ''legacy''; SELECT pg_reload_conf();', v_version);
		END IF;
	END IF;
	RETURN NEXT;

	-- per tracked object type: read access (the token's scopes) and the
	-- hubsync_id property (hubsync creates it on the first push)
	FOR r IN SELECT t.object_type, t.api_name, t.paused FROM hubsync.object_types t ORDER BY t.object_type
	LOOP
		item := 'read ' || r.object_type;
		IF NOT v_token_ok THEN
			ok := false; detail := 'not checked: the token check failed'; hint := NULL;
			RETURN NEXT;
			CONTINUE;
		END IF;
		g := hubsync._check_get(hubsync._api_path('objects', r.api_name, '?limit=1'));
		v_status := (g->>'status')::integer;
		ok := v_status BETWEEN 200 AND 299;
		detail := CASE WHEN ok THEN 'readable'
		               WHEN v_status = 403 THEN 'the token may not read ' || r.api_name || ' (HTTP 403, missing scope)'
		               ELSE format('HubSpot answered HTTP %s', v_status) END
		          || CASE WHEN r.paused THEN ' (paused)' ELSE '' END;
		hint := CASE WHEN ok THEN NULL
		             WHEN v_status = 403 THEN format('Add the read and write scopes of %s to the private app (see docs/hubspot-app.md), or stop tracking it.', r.api_name)
		             ELSE 'Run hubsync.check() again; see the server log.' END;
		RETURN NEXT;

		item := 'property ' || r.object_type || '.hubsync_id';
		IF ok THEN
			g := hubsync._check_get(hubsync._api_path('properties', r.api_name, '/hubsync_id'));
			v_status := (g->>'status')::integer;
			ok := v_status BETWEEN 200 AND 299 OR v_status = 404;
			IF ok AND v_status <> 404 AND g -> 'body' ->> 'hasUniqueValue' = 'false' THEN
				-- HubSpot refuses upserts by a property that is not unique
				ok := false;
				detail := format('present but not unique (hasUniqueValue false): HubSpot refuses every push of %s', r.object_type);
				hint := format('Delete (or rename) the property hubsync_id of %s in HubSpot (Settings, Properties); hubsync creates it as a unique property on its first push.', r.api_name);
				RETURN NEXT;
				CONTINUE;
			END IF;
			detail := CASE WHEN v_status BETWEEN 200 AND 299 THEN 'present'
			               WHEN v_status = 404 THEN 'not yet: hubsync creates it on the first push'
			               WHEN v_status = 403 THEN 'the token may not read the property definitions (HTTP 403)'
			               ELSE format('HubSpot answered HTTP %s', v_status) END;
			hint := CASE WHEN ok THEN NULL
			             WHEN v_status = 403 THEN 'Add the schema read and write scopes of this object type to the private app (hubsync creates its hubsync_id property).'
			             ELSE 'Run hubsync.check() again; see the server log.' END;
		ELSE
			ok := false; detail := 'not checked: the object type is not readable'; hint := NULL;
		END IF;
		RETURN NEXT;
	END LOOP;

	-- webhooks, or polling only
	item := 'webhooks';
	IF v_port = 0 THEN
		ok := true;
		detail := 'receiver off (hubsync.webhook_port = 0): polling only, HubSpot''s changes arrive within hubsync.poll_interval';
		hint := NULL;
	ELSIF NOT c.client_secret THEN
		ok := false;
		detail := format('receiver on port %s, but no app client secret: every delivery is refused', v_port);
		hint := 'SELECT hubsync.set_credentials(client_secret => ''...''); with the client secret of the HubSpot app that sends the webhooks.';
	ELSIF v_url = '' THEN
		ok := false;
		detail := format('receiver on port %s, but hubsync.webhook_public_url is empty: HubSpot cannot call a local address and signatures name the public URL', v_port);
		hint := 'Set hubsync.webhook_public_url to the https:// URL HubSpot calls (the proxy in front of the receiver) and reload.';
	ELSE
		ok := true;
		detail := format('receiver on port %s for %s, client secret set', v_port, v_url);
		hint := NULL;
	END IF;
	RETURN NEXT;

	-- the Webhooks Journal, when it is on: a dated API version, the
	-- account, the app's client id and secret, and a client-credentials
	-- token with the journal scopes that reads the latest entry
	IF hubsync._setting_interval('hubsync.journal_interval', '0') > interval '0' THEN
		item := 'journal';
		ok := false;
		v_scopes := 'developer.webhooks_journal.read, developer.webhooks_journal.subscriptions.read and developer.webhooks_journal.subscriptions.write';
		IF v_version = 'legacy' THEN
			detail := 'hubsync.api_version is legacy: HubSpot publishes the journal only in date-versioned APIs';
			hint := 'ALTER SYSTEM SET hubsync.api_version = ''2026-09''; SELECT pg_reload_conf(); (or set hubsync.journal_interval to 0)';
		ELSIF coalesce(nullif(current_setting('hubsync.portal_id', true), '')::integer, 0) <= 0 THEN
			detail := 'hubsync.portal_id is not set: the journal subscriptions and reads name the HubSpot account';
			hint := 'ALTER SYSTEM SET hubsync.portal_id = <your HubSpot account id>; SELECT pg_reload_conf();';
		ELSIF NOT (c.oauth_client_id AND c.oauth_client_secret) THEN
			detail := 'no OAuth client id and secret: the journal takes only a client-credentials token of the app; an access token (static, private-app or service key) cannot read it';
			hint := 'SELECT hubsync.set_credentials(oauth_client_id => ''...'', oauth_client_secret => ''...''); with the project app''s client id and secret (scopes ' || v_scopes || ').';
		ELSE
			g := hubsync._journal_probe();
			v_status := coalesce((g->>'status')::integer, 0);
			IF g->>'token' = 'refused' THEN
				detail := 'HubSpot refused the client credentials: ' || coalesce(g->>'error', '');
				hint := 'Check the app''s client id and secret and that the app has the scopes ' || v_scopes || '; then hubsync.set_credentials(oauth_client_id => ..., oauth_client_secret => ...).';
			ELSIF g->>'token' <> 'ok' THEN
				detail := 'no client-credentials token: ' || coalesce(g->>'error', '');
				hint := 'Check hubsync.api_base_url, DNS and the firewall; run hubsync.check() again.';
			ELSIF v_status = 200 OR v_status = 404 THEN
				ok := true;
				detail := 'client-credentials token with the journal scopes; the latest entry is readable'
				          || CASE WHEN v_status = 404 THEN ' (the journal is empty yet)' ELSE '' END;
				hint := NULL;
			ELSIF v_status = 403 THEN
				detail := 'the client-credentials token lacks a journal scope (HTTP 403 reading the latest entry)';
				hint := 'Add the scopes ' || v_scopes || ' to the app (docs/hubspot-app.md).';
			ELSIF v_status = 401 THEN
				detail := 'HubSpot refused the client-credentials token reading the latest entry (HTTP 401)';
				hint := 'Check that the client id and secret are those of the app installed in this account.';
			ELSIF v_status = 0 THEN
				detail := 'HubSpot not reached reading the latest entry: ' || coalesce(g->>'error', '');
				hint := 'Check hubsync.api_base_url, DNS, the firewall and the CA bundle; see the server log.';
			ELSE
				detail := format('HubSpot answered HTTP %s reading the latest entry', v_status);
				hint := 'Run hubsync.check() again; see the server log.';
			END IF;
		END IF;
		RETURN NEXT;
	END IF;

	-- workers
	item := 'workers';
	SELECT string_agg(s.worker || ': ' || s.state, ', ' ORDER BY s.worker) INTO v_down
	FROM hubsync.worker_status() s WHERE s.state <> 'running';
	ok := v_down IS NULL;
	detail := coalesce('not running: ' || v_down, 'all running');
	hint := CASE WHEN ok THEN NULL
	             WHEN v_down LIKE '%idle: disabled%' THEN 'hubsync.enabled is off: set it on and reload.'
	             WHEN v_down LIKE '%version mismatch%' THEN 'ALTER EXTENSION hubsync UPDATE;'
	             ELSE 'Is hubsync in shared_preload_libraries and hubsync.database this database? See the server log.' END;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION hubsync.check() IS
  'Verifies the set-up without creating anything in HubSpot: credentials, HubSpot reachable and the token accepted, read access per tracked object type, the hubsync_id property, the webhook receiver or polling only, the Webhooks Journal when it is on, the workers; one row per check with a hint when it fails';
