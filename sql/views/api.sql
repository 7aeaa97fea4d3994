-------------------------------------------------------------------------------
-- SQL API views
-------------------------------------------------------------------------------
-- Where each record stands, and the records the calling transaction
-- changed and has not committed (hubsync.await_synced refuses to wait
-- for those).

-- Where a record stands: pending (in the outbox), paused (in the outbox
-- while hubsync.pause() holds its type), failed (dead letter) or synced.
-- Only records hubsync knows are listed (in the outbox, the dead letters
-- or hubsync.sync_state): an id it lists under no type is unknown to it
-- (hubsync.await_synced raises for it).  Readable by everyone, but a
-- role sees only the records of the object types whose mirror table it
-- may SELECT (last_error is HubSpot's message about the record, which may
-- quote its values).
CREATE OR REPLACE VIEW hubsync.record_status AS
SELECT k.object_type,
       k.hubsync_id,
       s.hs_object_id,
       CASE WHEN o.pending IS NOT NULL
                 AND EXISTS (SELECT 1 FROM hubsync.object_types p
                             WHERE p.object_type = k.object_type AND p.paused) THEN 'paused'
            WHEN o.pending IS NOT NULL THEN 'pending'
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
LEFT JOIN hubsync.sync_state s ON s.hubsync_id = k.hubsync_id
WHERE k.object_type IN (SELECT t.object_type FROM hubsync.object_types t
                        WHERE hubsync._can_read_mirror(t.object_type));
COMMENT ON VIEW hubsync.record_status IS
  'Per record hubsync knows (outbox, dead letters, sync state): pending (changes waiting), paused (changes held by hubsync.pause()), failed (in dead letters) or synced; attempts and last error; only the object types whose mirror table the reader may SELECT';

-- The records whose changes the calling transaction queued and has not
-- committed yet (only of the object types the caller may read), so that
-- hubsync.await_synced, which runs with the caller's rights, can refuse
-- to wait for them.
CREATE OR REPLACE VIEW hubsync._uncommitted_changes AS
SELECT DISTINCT ob.object_type, ob.hubsync_id
FROM hubsync.outbox ob
WHERE pg_catalog.txid_current_if_assigned() IS NOT NULL
  AND ob.xmin::text::bigint = pg_catalog.txid_current_if_assigned() % 4294967296
  AND hubsync._can_read_mirror(ob.object_type);
COMMENT ON VIEW hubsync._uncommitted_changes IS
  'API: private. Records with changes queued by the calling transaction (not committed yet)';
