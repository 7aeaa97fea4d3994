-------------------------------------------------------------------------------
-- Backfill progress
-------------------------------------------------------------------------------
-- Where each background import stands.

CREATE OR REPLACE VIEW hubsync.backfill_progress AS
SELECT b.object_type, b.state, b.done, b.total_estimate,
       round(b.done / greatest(extract(epoch FROM (coalesce(b.finished_at, b.updated_at) - b.started_at)), 0.001), 1) AS rate,
       CASE WHEN b.state = 'running' AND b.done > 0 AND b.total_estimate > b.done
            THEN make_interval(secs => (b.total_estimate - b.done)
                 / (b.done / greatest(extract(epoch FROM (b.updated_at - b.started_at)), 0.001)))
            WHEN b.state = 'running' THEN NULL ELSE interval '0' END AS eta,
       b.requests, b.started_at, b.updated_at, b.finished_at,
       -- HubSpot's message: only for readers of the type's mirror table
       CASE WHEN hubsync._can_read_mirror(b.object_type) THEN b.last_error END AS last_error
FROM hubsync.backfills b;
COMMENT ON VIEW hubsync.backfill_progress IS
  'Backfills: records done, estimated total, rate (records/s), estimated time left';

-------------------------------------------------------------------------------
-- Reconciliation progress
-------------------------------------------------------------------------------
-- Where each reconciliation run stands (background ones above all); row
-- security of hubsync.reconcile_runs applies to the reader.

CREATE OR REPLACE VIEW hubsync.reconcile_progress WITH (security_invoker = true) AS
SELECT r.id, r.trigger, r.object_type, r.repair, r.state, r.records_read, r.records_estimate,
       r.requests, r.missing_local + r.missing_remote + r.mismatch + r.archived_remote AS drift,
       r.repaired,
       round(r.records_read / greatest(extract(epoch FROM (coalesce(r.finished_at, pg_catalog.now()) - r.started_at)), 0.001), 1) AS rate,
       r.started_at, r.finished_at, r.error
FROM hubsync.reconcile_runs r;
COMMENT ON VIEW hubsync.reconcile_progress IS
  'Reconciliation runs: state, HubSpot records read against the estimate, requests, drift found and repaired so far, rate (records/s)';
