-------------------------------------------------------------------------------
-- Webhook receiver views
-------------------------------------------------------------------------------
-- The receiver's counters.

CREATE OR REPLACE VIEW hubsync.webhook_stats AS SELECT * FROM hubsync.webhook_counters();
COMMENT ON VIEW hubsync.webhook_stats IS
  'Webhook receiver and inbox counters since server start (refusals leave no other trace)';
