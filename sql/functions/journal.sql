-------------------------------------------------------------------------------
-- Webhooks Journal
-------------------------------------------------------------------------------
-- The pull worker reads HubSpot's Webhooks Journal (src/pull/journal.c):
-- the events of each downloaded entry are turned into the webhook events
-- hubsync.inbox holds, stored in the transaction that moves the offset,
-- and applied by the same rules as webhooks.

-- The webhook-shaped events (what the receiver stores) of downloaded
-- journal entries.  p_entries is an array of entry bodies; a body is an
-- array of events (or an object with an "events" array).  A journal event
-- names its kind as subscriptionType OBJECT or ASSOCIATION plus an action;
-- it becomes {prefix}.{kind} (contact.propertyChange...), or
-- object.{kind} with its objectTypeId for types without a webhook prefix,
-- exactly what a webhook delivery of the same change carries, so the
-- inbox's dedupe key finds a change that came both ways.  An UPDATE with a
-- "properties" object instead of propertyName/propertyValue gives one
-- propertyChange per property.  Malformed events are left out.
CREATE OR REPLACE FUNCTION hubsync._journal_events(p_entries jsonb) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	WITH body AS (
		SELECT CASE WHEN jsonb_typeof(b) = 'array' THEN b
		            WHEN jsonb_typeof(b) = 'object' AND jsonb_typeof(b -> 'events') = 'array' THEN b -> 'events'
		            ELSE '[]'::jsonb END AS evs, ord
		FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_entries) = 'array' THEN p_entries ELSE '[]' END)
		     WITH ORDINALITY AS x(b, ord)
	), ev AS (
		SELECT e, body.ord, n
		FROM body, jsonb_array_elements(body.evs) WITH ORDINALITY AS y(e, n)
		WHERE jsonb_typeof(e) = 'object'
		  AND e ->> 'subscriptionType' IN ('OBJECT', 'ASSOCIATION')
		  AND e ->> 'action' IN ('CREATE', 'UPDATE', 'DELETE', 'MERGE', 'RESTORE',
		                         'ASSOCIATION_ADDED', 'ASSOCIATION_REMOVED', 'GDPR_DELETE')
		  AND jsonb_typeof(e -> 'occurredAt') = 'number' AND (e ->> 'occurredAt') ~ '^[0-9]{1,18}$'
		  AND (e -> 'objectId' IS NULL OR (e ->> 'objectId') ~ '^[0-9]{1,18}$')
		  AND (e -> 'eventId' IS NULL OR (e ->> 'eventId') ~ '^[0-9]{1,18}$')
		  AND (e -> 'subscriptionId' IS NULL OR (e ->> 'subscriptionId') ~ '^[0-9]{1,18}$')
		  AND (e -> 'fromObjectId' IS NULL OR (e ->> 'fromObjectId') ~ '^[0-9]{1,18}$')
	), props AS (
		-- one row per property change (an UPDATE may list several)
		SELECT ev.e - 'properties' || jsonb_build_object('propertyName', p.key, 'propertyValue', p.value) AS e,
		       ev.ord, ev.n, p.key AS k
		FROM ev, jsonb_each(ev.e -> 'properties') p
		WHERE ev.e ->> 'action' = 'UPDATE' AND jsonb_typeof(ev.e -> 'properties') = 'object'
		  AND ev.e -> 'propertyName' IS NULL
		UNION ALL
		SELECT ev.e, ev.ord, ev.n, NULL
		FROM ev
		WHERE NOT (ev.e ->> 'action' = 'UPDATE' AND jsonb_typeof(ev.e -> 'properties') = 'object'
		           AND ev.e -> 'propertyName' IS NULL)
	)
	SELECT coalesce(jsonb_agg(w ORDER BY ord, n, k), '[]')
	FROM (
		SELECT p.ord, p.n, p.k,
		       (p.e - 'subscriptionType' - 'action' - 'objectTypeId' - 'objectId' - 'eventId'
		            - 'subscriptionId' - 'fromObjectId' - 'occurredAt')
		       || jsonb_build_object('subscriptionType',
		              coalesce(t.webhook_prefix, 'object') || '.' ||
		              CASE p.e ->> 'action'
		                  WHEN 'CREATE' THEN 'creation'
		                  WHEN 'UPDATE' THEN 'propertyChange'
		                  WHEN 'DELETE' THEN 'deletion'
		                  WHEN 'MERGE' THEN 'merge'
		                  WHEN 'RESTORE' THEN 'restore'
		                  WHEN 'GDPR_DELETE' THEN
		                      CASE WHEN t.webhook_prefix = 'contact' THEN 'privacyDeletion' ELSE 'deletion' END
		                  ELSE 'associationChange' END,
		              'occurredAt', (p.e ->> 'occurredAt')::bigint)
		       || CASE WHEN t.webhook_prefix IS NULL AND p.e ? 'objectTypeId'
		               THEN jsonb_build_object('objectTypeId', p.e ->> 'objectTypeId') ELSE '{}' END
		       || CASE WHEN p.e ? 'objectId' THEN jsonb_build_object('objectId', (p.e ->> 'objectId')::bigint) ELSE '{}' END
		       || CASE WHEN p.e ? 'eventId' THEN jsonb_build_object('eventId', (p.e ->> 'eventId')::bigint) ELSE '{}' END
		       || CASE WHEN p.e ? 'subscriptionId' THEN jsonb_build_object('subscriptionId', (p.e ->> 'subscriptionId')::bigint) ELSE '{}' END
		       || CASE WHEN p.e ? 'fromObjectId' THEN jsonb_build_object('fromObjectId', (p.e ->> 'fromObjectId')::bigint) ELSE '{}' END
		       || CASE WHEN p.e ->> 'action' LIKE 'ASSOCIATION_%' AND NOT p.e ? 'associationRemoved'
		               THEN jsonb_build_object('associationRemoved', p.e ->> 'action' = 'ASSOCIATION_REMOVED') ELSE '{}' END
		       || '{"hubsyncSource": "journal"}' AS w
		FROM props p
		LEFT JOIN hubsync.object_types t ON t.object_type_id = p.e ->> 'objectTypeId'
	) s
$$;
COMMENT ON FUNCTION hubsync._journal_events(jsonb) IS
  'API: private. Webhooks Journal: the webhook-shaped events (as hubsync.inbox stores them) of downloaded journal entries';

CREATE OR REPLACE FUNCTION hubsync._journal_inbox_store(p_events jsonb) RETURNS integer
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'hubsync_journal_inbox_store';
COMMENT ON FUNCTION hubsync._journal_inbox_store(jsonb) IS
  'API: private. Webhooks Journal: stores webhook-shaped events in hubsync.inbox exactly as the receiver does (same dedupe key); returns how many were new';

-- The first read: the journal's latest entry (or none, p_offset NULL: the
-- journal is empty, read from its earliest entry) is where reading starts;
-- what happened before is the backfill's and the poller's.
CREATE OR REPLACE FUNCTION hubsync._journal_start(p_offset text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	INSERT INTO hubsync.journal_state AS s (id, started, current_offset)
	VALUES (true, true, p_offset)
	ON CONFLICT (id) DO UPDATE SET started = true, current_offset = EXCLUDED.current_offset,
	                               last_error = NULL
	WHERE NOT s.started;
$$;
COMMENT ON FUNCTION hubsync._journal_start(text) IS
  'API: private. Webhooks Journal: the first read sets the starting offset (the latest entry)';

-- Stores the events of the entries read after offset p_from, and moves
-- the offset to p_to, the last of them: one transaction, so a crash
-- before the commit reads the same entries again and one after it never
-- does.  Refuses when the offset moved meanwhile.  Returns the events new
-- to the inbox.
CREATE OR REPLACE FUNCTION hubsync._journal_save(p_from text, p_to text, p_entries jsonb)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_state record;
	v_n integer;
BEGIN
	SELECT s.started, s.current_offset INTO v_state
	FROM hubsync.journal_state s WHERE s.id FOR UPDATE;
	IF NOT FOUND OR NOT v_state.started OR v_state.current_offset IS DISTINCT FROM p_from THEN
		RAISE EXCEPTION 'the Webhooks Journal offset moved while entries were read'
		      USING ERRCODE = 'serialization_failure',
		            DETAIL = format('expected %s, found %s', coalesce(p_from, 'none'),
		                            coalesce(v_state.current_offset, 'none'));
	END IF;
	v_n := hubsync._journal_inbox_store(hubsync._journal_events(p_entries));
	UPDATE hubsync.journal_state s
	SET current_offset = p_to, read_at = now(),
	    entries = s.entries + jsonb_array_length(p_entries), events = s.events + v_n,
	    last_error = NULL
	WHERE s.id;
	RETURN v_n;
END
$$;
COMMENT ON FUNCTION hubsync._journal_save(text, text, jsonb) IS
  'API: private. Webhooks Journal: stores the events of entries read and moves the offset, in one transaction';

-- HubSpot no longer knows offset p_from (404: older than the journal's
-- three days, or never issued): what happened since is lost to the
-- journal, so the poller catches up every type from its cursor, reading
-- goes on from p_latest (the latest entry now; NULL: the journal is
-- empty), and a journal_expired alert goes out.
CREATE OR REPLACE FUNCTION hubsync._journal_expired(p_from text, p_latest text, p_status integer)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	UPDATE hubsync.poll_state p SET catching_up = true;
	UPDATE hubsync.journal_state s
	SET current_offset = p_latest, started = true, expired = s.expired + 1, expired_at = now(),
	    last_error = format('offset %s expired or unknown (HTTP %s); the poller caught up', p_from, p_status)
	WHERE s.id AND s.current_offset IS NOT DISTINCT FROM p_from;
	PERFORM hubsync._alert('journal_expired', 'journal',
		jsonb_build_object('offset', p_from, 'status', p_status, 'restart_offset', p_latest));
END
$$;
COMMENT ON FUNCTION hubsync._journal_expired(text, text, integer) IS
  'API: private. Webhooks Journal: an expired or unknown offset starts a poller catch-up, restarts from the latest entry and alerts';

CREATE OR REPLACE FUNCTION hubsync._journal_error(p_error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	INSERT INTO hubsync.journal_state AS s (id, last_error) VALUES (true, p_error)
	ON CONFLICT (id) DO UPDATE SET last_error = EXCLUDED.last_error;
$$;
COMMENT ON FUNCTION hubsync._journal_error(text) IS
  'API: private. Webhooks Journal: records the last error reading it';

-- The journal cannot authenticate (no OAuth client id and secret, or
-- HubSpot refused them): the error in journal_state and a journal_auth
-- alert with the hint.  No secret is in either.
CREATE OR REPLACE FUNCTION hubsync._journal_auth_error(p_error text, p_hint text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hubsync._journal_error(p_error);
	PERFORM hubsync._alert('journal_auth', 'journal',
		jsonb_build_object('error', p_error, 'hint', p_hint));
END
$$;
COMMENT ON FUNCTION hubsync._journal_auth_error(text, text) IS
  'API: private. Webhooks Journal: records an authentication problem and alerts (journal_auth)';

-- For hubsync.check(): a client-credentials token with the journal's
-- scopes and one GET of the latest entry (src/pull/journal.c).
CREATE OR REPLACE FUNCTION hubsync._journal_probe() RETURNS jsonb
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_journal_probe';
COMMENT ON FUNCTION hubsync._journal_probe() IS
  'API: private. hubsync.check(): the journal''s client-credentials token and a GET of its latest entry';

-- The subscriptions the mirrored types need: an OBJECT and an ASSOCIATION
-- subscription for each, added as pending (the pull worker creates them in
-- HubSpot); those of types no longer mirrored are to be removed.  Rows the
-- owner changed (actions, or state off) are left as they are.  Returns how
-- many rows changed.
CREATE OR REPLACE FUNCTION hubsync._journal_plan_subscriptions() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_n integer;
	v_m integer;
BEGIN
	INSERT INTO hubsync.journal_subscriptions (object_type, subscription_type, actions)
	SELECT t.object_type, k.st, k.actions
	FROM hubsync.object_types t
	CROSS JOIN (VALUES ('OBJECT', ARRAY['CREATE', 'UPDATE', 'DELETE', 'MERGE', 'RESTORE']),
	                   ('ASSOCIATION', ARRAY['ASSOCIATION_ADDED', 'ASSOCIATION_REMOVED'])) AS k(st, actions)
	ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	UPDATE hubsync.journal_subscriptions j SET state = 'removing'
	WHERE j.state IN ('pending', 'active', 'failed')
	  AND NOT EXISTS (SELECT 1 FROM hubsync.object_types t WHERE t.object_type = j.object_type);
	GET DIAGNOSTICS v_m = ROW_COUNT;
	RETURN v_n + v_m;
END
$$;
COMMENT ON FUNCTION hubsync._journal_plan_subscriptions() IS
  'API: private. Webhooks Journal: adds the subscriptions mirrored types need, marks those of types gone for removal';

-- What the pull worker did in HubSpot for one subscription row: created
-- (p_hubspot_id), deleted (p_hubspot_id NULL, no error) or refused (p_error).
CREATE OR REPLACE FUNCTION hubsync._journal_subscription_done(p_object_type text,
	p_subscription_type text, p_hubspot_id bigint, p_error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE hubsync.journal_subscriptions j
	SET state = CASE WHEN p_error IS NOT NULL THEN 'failed'
	                 WHEN j.state = 'removing' THEN 'off' ELSE 'active' END,
	    hubspot_id = CASE WHEN p_error IS NOT NULL AND j.state <> 'removing' THEN NULL
	                      WHEN p_error IS NOT NULL THEN j.hubspot_id ELSE p_hubspot_id END,
	    synced_at = now(), last_error = p_error
	WHERE j.object_type = p_object_type AND j.subscription_type = p_subscription_type;
	DELETE FROM hubsync.journal_subscriptions j
	WHERE j.object_type = p_object_type AND j.subscription_type = p_subscription_type
	  AND j.state = 'off'
	  AND NOT EXISTS (SELECT 1 FROM hubsync.object_types t WHERE t.object_type = j.object_type);
$$;
COMMENT ON FUNCTION hubsync._journal_subscription_done(text, text, bigint, text) IS
  'API: private. Webhooks Journal: records what the pull worker did in HubSpot for a subscription';

-- (Re)sync the journal subscriptions: add those mirrored types need, queue
-- failed ones again, and wake the pull worker to create or delete them in
-- HubSpot (it does, while hubsync.journal_interval is on).
CREATE OR REPLACE FUNCTION hubsync.sync_journal_subscriptions()
RETURNS SETOF hubsync.journal_subscriptions
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hubsync._journal_plan_subscriptions();
	UPDATE hubsync.journal_subscriptions j SET state = 'pending', last_error = NULL
	WHERE j.state = 'failed';
	PERFORM hubsync._wake_workers();
	RETURN QUERY SELECT * FROM hubsync.journal_subscriptions j ORDER BY j.object_type, j.subscription_type;
END
$$;
COMMENT ON FUNCTION hubsync.sync_journal_subscriptions() IS
  'Adds the Webhooks Journal subscriptions the mirrored object types need, queues failed ones again, and wakes the pull worker to make them in HubSpot; returns them all';
