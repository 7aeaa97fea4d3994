-------------------------------------------------------------------------------
-- SQL API views
-------------------------------------------------------------------------------
-- Where each record stands.

-- Where a record stands: pending (in the outbox), failed (dead letter) or
-- synced.
CREATE OR REPLACE VIEW hubsync.record_status AS
SELECT k.object_type,
       k.hubsync_id,
       s.hs_object_id,
       CASE WHEN o.pending IS NOT NULL THEN 'pending'
            WHEN d.hubsync_id IS NOT NULL THEN 'failed'
            ELSE 'synced' END AS status,
       coalesce(o.attempts, d.attempts, 0) AS attempts,
       coalesce(o.last_error, d.message) AS last_error,
       o.next_attempt_at,
       s.synced_at
FROM (SELECT ob.object_type, ob.hubsync_id FROM hubsync.outbox ob
      UNION SELECT dl.object_type, dl.hubsync_id FROM hubsync.dead_letters dl
      UNION SELECT ss.object_type, ss.hubsync_id FROM hubsync.sync_state ss) k
LEFT JOIN LATERAL (
	SELECT count(*) AS pending, max(ob.attempts) AS attempts,
	       (array_agg(ob.last_error ORDER BY ob.id DESC))[1] AS last_error,
	       min(ob.next_attempt_at) AS next_attempt_at
	FROM hubsync.outbox ob WHERE ob.hubsync_id = k.hubsync_id
	HAVING count(*) > 0) o ON true
LEFT JOIN LATERAL (
	SELECT dl.hubsync_id, dl.attempts, dl.category || ': ' || dl.message AS message
	FROM hubsync.dead_letters dl WHERE dl.hubsync_id = k.hubsync_id
	ORDER BY dl.id DESC LIMIT 1) d ON true
LEFT JOIN hubsync.sync_state s ON s.hubsync_id = k.hubsync_id;
COMMENT ON VIEW hubsync.record_status IS
  'Per record: pending (changes waiting), failed (in dead letters) or synced; attempts and last error';
