-------------------------------------------------------------------------------
-- Operations views
-------------------------------------------------------------------------------
-- Dead letters by reason, the one-row summary, and hubsync.status (one
-- row per object type; last, as it reads the tables of every area).

-- Dead letters grouped by reason, for a first look before retrying or
-- discarding them by object type and category.
CREATE OR REPLACE VIEW hubsync.dead_letter_reasons AS
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
CREATE OR REPLACE VIEW hubsync.summary AS
SELECT q.window_used, q.window_left, q.window_limit,
       q.daily_used, q.daily_left, q.daily_limit,
       q.search_used, q.search_left, q.search_limit,
       q.blocked_until,
       q.requests, q.responses_2xx, q.responses_4xx, q.responses_5xx,
       q.transport_errors, q.throttled_429, q.retries,
       w.webhook_deliveries, w.webhook_events, w.webhook_duplicates, w.webhook_refused,
       ws.push_worker, ws.pull_worker, ws.webhook_worker, ws.enrich_worker,
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
             max(s.state) FILTER (WHERE s.worker = 'hubsync webhook') AS webhook_worker,
             max(s.state) FILTER (WHERE s.worker = 'hubsync enrich') AS enrich_worker
      FROM hubsync.worker_status() s) ws;
COMMENT ON VIEW hubsync.summary IS
  'One row: HubSpot budget used and left (10-second window, day, search), requests by status class, 429s, retries, webhook deliveries, duplicates and refusals, worker states, credentials verdict, outbox and dead letters';

-- One row per object type.  To add columns (poll cursor, backfill
-- progress...), add a LEFT JOIN LATERAL keyed on t.object_type and append
-- its columns at the end (CREATE OR REPLACE VIEW keeps existing columns
-- in place).
--
-- hubsync.status, final form (after the poller's and enrichment's tables
-- exist): poller, backfill, last reconciliation, and the enrichment
-- providers each object type's rules use with their daily budget.
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
       coalesce(i.inbound_lag, interval '0') AS inbound_lag,
       (SELECT p.polled_at FROM hubsync.poll_state p WHERE p.object_type = t.object_type) AS polled_at,
       -- HubSpot's message: only for readers of the type's mirror table
       (SELECT p.last_error FROM hubsync.poll_state p
        WHERE p.object_type = t.object_type AND hubsync._can_read_mirror(t.object_type)) AS poll_error,
       (SELECT b.state FROM hubsync.backfill_progress b WHERE b.object_type = t.object_type) AS backfill,
       (SELECT b.done FROM hubsync.backfill_progress b WHERE b.object_type = t.object_type) AS backfill_done,
       (SELECT b.total_estimate FROM hubsync.backfill_progress b WHERE b.object_type = t.object_type) AS backfill_total,
       (SELECT b.rate FROM hubsync.backfill_progress b WHERE b.object_type = t.object_type) AS backfill_rate,
       (SELECT b.eta FROM hubsync.backfill_progress b WHERE b.object_type = t.object_type) AS backfill_eta,
       (SELECT max(r.finished_at) FROM hubsync.reconcile_runs r
        WHERE r.state = 'done' AND (r.object_type IS NULL OR r.object_type = t.object_type)) AS reconciled_at,
       (SELECT string_agg(format('%s: %s, %s/%s calls today', es.provider, es.state, es.calls_today,
                                 coalesce(es.daily_budget::text, 'unlimited')), '; ' ORDER BY es.provider)
        FROM hubsync.enrichment_status es
        WHERE es.provider IN (SELECT r.provider FROM hubsync.enrichment_rules r
                              WHERE r.object_type = t.object_type AND r.enabled)) AS enrichment,
       hubsync._trigger_grantees(t.object_type) AS trigger_grantees,
       (SELECT b.last_error FROM hubsync.backfill_progress b WHERE b.object_type = t.object_type) AS backfill_error,
       coalesce(f.inbound_failed, 0) AS inbound_failed
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
           GROUP BY 1) i ON i.object_type = t.object_type
LEFT JOIN (SELECT hubsync._event_object_type(ib.subscription_type, ib.object_type_id) AS object_type,
                  count(*) AS inbound_failed
           FROM hubsync.inbox ib WHERE ib.state = 'failed'
           GROUP BY 1) f ON f.object_type = t.object_type;
COMMENT ON VIEW hubsync.status IS
  'One row per object type: paused, HubSpot''s verdict on our credentials (ok, refused or refresh_failed), changes pending and in flight, age of the oldest, dead letters, last successful push and pull, webhook events waiting and inbound lag (age of the oldest HubSpot change not yet applied); last poll and its error, backfill progress (state, done, estimated total, records/s, time left), last finished reconciliation; the enrichment providers its rules use, with their state and calls today against the daily budget; roles other than the owner that may create triggers on its mirror table (their triggers run with the workers'' superuser rights); why the last backfill failed; inbound events that failed to apply (hubsync.retry_inbox)';
