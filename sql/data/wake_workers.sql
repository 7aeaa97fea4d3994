-------------------------------------------------------------------------------
-- Wake the workers
-------------------------------------------------------------------------------
-- Idle workers notice the new or updated extension at once (at commit).
-- Run by the install and by every update.

-- idle workers notice the new extension at once
SELECT hubsync._wake_workers();
