-------------------------------------------------------------------------------
-- Operations: alerts, pauses
-------------------------------------------------------------------------------
-- The alerts sent on NOTIFY hubsync_alerts, and the pauses pg_dump keeps.

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
COMMENT ON COLUMN hubsync.alerts.alert IS 'dead_letter, auth_failed, auth_refresh_failed, pending_age, inbound_lag, inbound_failed, backfill_failed, poll_failing, worker_down, webhook_refused, daily_quota, trigger_grant or association_failed';
COMMENT ON COLUMN hubsync.alerts.key IS 'subject: object type (dead_letter, pending_age, inbound_failed, backfill_failed, poll_failing), worker (worker_down), UTC day (daily_quota), mirror table (trigger_grant) or empty';
COMMENT ON COLUMN hubsync.alerts.last_sent_at IS 'when the last NOTIFY was sent';
COMMENT ON COLUMN hubsync.alerts.last_seen_at IS 'when the condition was last seen, sent or not';
COMMENT ON COLUMN hubsync.alerts.sent IS 'notifications sent for this kind and subject';
COMMENT ON COLUMN hubsync.alerts.suppressed IS 'occurrences held back by the rate limit since the last notification';
COMMENT ON COLUMN hubsync.alerts.payload IS 'JSON payload of the last notification';

-- What the alert checks must remember between housekeeping rounds: since
-- when a condition holds (a worker down, a poll failing) and the last
-- value of a counter (webhook signature refusals).
CREATE TABLE hubsync.alert_watch (
	watch            text PRIMARY KEY,
	since            timestamptz NOT NULL DEFAULT pg_catalog.now(),
	value            bigint
);
COMMENT ON TABLE hubsync.alert_watch IS
  'Alert checks: since when a condition holds (worker_down, poll_failing) and the last counter value seen (webhook_refused)';

-- Pauses survive pg_dump: the rows of the built-in object types are not
-- dumped (CREATE EXTENSION makes them), so their paused flag is mirrored
-- in a table that is.  Triggers keep the two in step both ways; a restore
-- of hubsync.paused_types pauses the types again.
CREATE TABLE hubsync.paused_types (
	object_type      text PRIMARY KEY
);
COMMENT ON TABLE hubsync.paused_types IS
  'Object types held by hubsync.pause(), kept in step with hubsync.object_types.paused so that pg_dump carries pauses';
