-- ops: status and summary columns, dead letter reasons, alert rate limit,
-- housekeeping functions.
SELECT attname FROM pg_attribute WHERE attrelid = 'hubsync.status'::regclass AND attnum > 0 ORDER BY attnum;
SELECT attname FROM pg_attribute WHERE attrelid = 'hubsync.summary'::regclass AND attnum > 0 ORDER BY attnum;
SELECT count(*) FROM hubsync.status;
SELECT push_worker IS NOT NULL AS has_workers, auth, window_limit, daily_limit, search_limit,
       window_used + window_left = window_limit AS window_adds_up
FROM hubsync.summary;
-- (events the webhook test left waiting for a HubSpot this test cannot reach)
DELETE FROM hubsync.inbox WHERE state = 'pending';
SELECT object_type, pending, in_flight, dead_letters, last_push, last_pull, inbound_pending, inbound_lag
FROM hubsync.status WHERE object_type = 'deals';

-- dead letters grouped by reason
INSERT INTO hubsync.dead_letters (object_type, hubsync_id, op, properties, origin, attempts, status, category, message, created_at)
VALUES ('contacts', gen_random_uuid(), 'update', '{}', 'app', 1, 400, 'VALIDATION_ERROR', 'bad phone', now()),
       ('contacts', gen_random_uuid(), 'update', '{}', 'app', 1, 400, 'VALIDATION_ERROR', 'bad email', now()),
       ('deals', gen_random_uuid(), 'update', '{}', 'app', 1, 404, 'OBJECT_NOT_FOUND', 'gone', now());
SELECT object_type, category, status, dead_letters FROM hubsync.dead_letter_reasons ORDER BY 1, 2;
SELECT hubsync.discard_dead_letters(category => 'VALIDATION_ERROR');
SELECT object_type, category, dead_letters FROM hubsync.dead_letter_reasons;
SELECT hubsync.discard_dead_letters();

-- an alert is sent once per hubsync.alert_interval, repeats are counted
SELECT hubsync._alert('regress', 'k', '{"n": 1}');
SELECT hubsync._alert('regress', 'k', '{"n": 2}');
SELECT hubsync._alert('regress', 'other', '{"n": 3}');
SELECT alert, key, sent, suppressed, payload->>'n' AS n, payload->>'alert' AS payload_alert,
       (payload->>'suppressed')::int AS payload_suppressed
FROM hubsync.alerts WHERE alert = 'regress' ORDER BY key;
-- once the interval has passed, the next one goes with the count
UPDATE hubsync.alerts SET last_sent_at = now() - interval '1 day' WHERE alert = 'regress' AND key = 'k';
SELECT hubsync._alert('regress', 'k', '{"n": 4}');
SELECT sent, suppressed, payload->>'n' AS n, (payload->>'suppressed')::int AS payload_suppressed
FROM hubsync.alerts WHERE alert = 'regress' AND key = 'k';
DELETE FROM hubsync.alerts WHERE alert = 'regress';

-- settings as intervals, with a default when unset
SELECT hubsync._setting_interval('hubsync.changes_retention', '1s') AS changes_retention,
       hubsync._setting_interval('hubsync.no_such_setting', '42s') AS fallback;

-- nothing to prune in a fresh database; an outbox under the size is left alone
SELECT hubsync._prune(10);
SELECT hubsync._shrink_outbox(1024 * 1024 * 1024) AS shrunk_below_1gb;

-- private functions are not for PUBLIC
SELECT p.proname FROM pg_proc p
WHERE p.pronamespace = 'hubsync'::regnamespace
  AND p.proname IN ('_alert', '_check_alerts', '_prune', '_shrink_outbox', '_setting_interval')
  AND has_function_privilege('public', p.oid, 'EXECUTE')
ORDER BY 1;
