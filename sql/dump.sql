-------------------------------------------------------------------------------
-- pg_dump: keep the rows of these tables
-------------------------------------------------------------------------------
-- pg_extension_config_dump for every table whose rows pg_dump must keep
-- (and their identity sequences).  Run by the install and every update:
-- a table already registered is registered again with the same filter.

-- object model
SELECT pg_catalog.pg_extension_config_dump('hubsync.object_types', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('hubsync.property_map', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('hubsync.field_owners', '');

-- outbox, dead letters, sync state
SELECT pg_catalog.pg_extension_config_dump('hubsync.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.sync_state', '');

-- identity sequences too, or restored rows would clash with new ids
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.outbox', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.dead_letters', 'id')::regclass, '');

-- inbox
SELECT pg_catalog.pg_extension_config_dump('hubsync.inbox', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.inbox', 'id')::regclass, '');

-- change feed, conflicts, merges
SELECT pg_catalog.pg_extension_config_dump('hubsync.changes', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.conflicts', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.merges', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.changes', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.conflicts', 'id')::regclass, '');

-- associations
SELECT pg_catalog.pg_extension_config_dump('hubsync.association_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.association_types', '');
SELECT pg_catalog.pg_extension_config_dump('hubspot.associations', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.association_outbox', 'id')::regclass, '');

-- operations: alerts, pauses
SELECT pg_catalog.pg_extension_config_dump('hubsync.paused_types', '');

-- polling safety net, backfill, reconciliation
SELECT pg_catalog.pg_extension_config_dump('hubsync.poll_state', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.backfills', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.reconcile_runs', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.reconcile_drift', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.journal_state', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.journal_subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.reconcile_runs', 'id')::regclass, '');

-- lead enrichment
SELECT pg_catalog.pg_extension_config_dump('hubsync.enrichment_providers', '');

-- hubsync._enrichment_keys is left out on purpose: pg_dump never writes secrets
SELECT pg_catalog.pg_extension_config_dump('hubsync.enrichment_rules', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.enrichment_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.enrichment_usage', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.enrichment_scores', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.enrichment_rules', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubsync.enrichment_jobs', 'id')::regclass, '');

-- BI model: owners, pipelines, stages (copied again by the pull worker,
-- but kept so a restored database reports at once) and the histories
-- (which cannot be read again from HubSpot when they came from local writes)
SELECT pg_catalog.pg_extension_config_dump('hubspot.owners', '');
SELECT pg_catalog.pg_extension_config_dump('hubspot.pipelines', '');
SELECT pg_catalog.pg_extension_config_dump('hubspot.pipeline_stages', '');
SELECT pg_catalog.pg_extension_config_dump('hubspot.deal_stage_history', '');
SELECT pg_catalog.pg_extension_config_dump('hubspot.subscription_history', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.metadata_sync', '');
SELECT pg_catalog.pg_extension_config_dump('hubsync.history_backfills', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubspot.deal_stage_history', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('hubspot.subscription_history', 'id')::regclass, '');
