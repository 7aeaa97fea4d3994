-------------------------------------------------------------------------------
-- Lead enrichment status
-------------------------------------------------------------------------------
-- One row per enrichment provider.

CREATE OR REPLACE VIEW hubsync.enrichment_status AS
SELECT p.name AS provider,
       CASE WHEN NOT p.enabled THEN 'disabled'
            WHEN p.daily_budget > 0 AND u.day = (now() AT TIME ZONE 'UTC')::date
                 AND u.calls >= p.daily_budget THEN 'budget exhausted'
            WHEN u.blocked_until > now() THEN 'backing off'
            ELSE 'ok' END AS state,
       CASE WHEN u.day = (now() AT TIME ZONE 'UTC')::date THEN u.calls ELSE 0 END AS calls_today,
       p.daily_budget,
       CASE WHEN p.daily_budget > 0
            THEN greatest(p.daily_budget - CASE WHEN u.day = (now() AT TIME ZONE 'UTC')::date THEN u.calls ELSE 0 END, 0)
       END AS budget_left,
       u.blocked_until,
       u.last_status,
       u.last_error,
       (SELECT count(*) FROM hubsync.enrichment_jobs j WHERE j.provider = p.name AND j.state = 'pending' AND j.lane = 'realtime') AS realtime_pending,
       (SELECT count(*) FROM hubsync.enrichment_jobs j WHERE j.provider = p.name AND j.state = 'pending' AND j.lane = 'batch') AS batch_pending,
       (SELECT count(*) FROM hubsync.enrichment_jobs j WHERE j.provider = p.name AND j.state = 'in_flight') AS in_flight,
       (SELECT count(*) FROM hubsync.enrichment_jobs j WHERE j.provider = p.name AND j.state = 'done') AS done,
       (SELECT count(*) FROM hubsync.enrichment_jobs j WHERE j.provider = p.name AND j.state = 'failed') AS failed,
       EXISTS (SELECT 1 FROM hubsync._enrichment_keys k WHERE k.provider = p.name) AS api_key
FROM hubsync.enrichment_providers p
LEFT JOIN hubsync.enrichment_usage u ON u.provider = p.name;
COMMENT ON VIEW hubsync.enrichment_status IS
  'One row per enrichment provider: state (ok, backing off, budget exhausted, disabled), calls today against the daily budget, last error, jobs by state, whether an API key is set (api_key; pg_dump leaves keys out); never a key';
