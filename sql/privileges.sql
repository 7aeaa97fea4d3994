-------------------------------------------------------------------------------
-- Privileges
-------------------------------------------------------------------------------
-- Every GRANT and REVOKE, run after all objects exist (install and
-- every update).  Private functions are for the workers and the owner
-- only, except the few that public functions and views call as the
-- caller: the loop below revokes every hubsync._* function but those;
-- a new private function that must stay callable by PUBLIC goes in its
-- NOT IN list.

-- schemas
GRANT USAGE ON SCHEMA hubspot TO PUBLIC;
GRANT USAGE ON SCHEMA hubsync TO PUBLIC;

-- tables and views
GRANT SELECT ON hubsync.object_types, hubsync.property_map, hubsync.field_owners TO PUBLIC;
REVOKE ALL ON hubsync._credentials FROM PUBLIC;
REVOKE ALL ON hubsync.inbox FROM PUBLIC;
GRANT SELECT ON hubsync.record_status TO PUBLIC;
GRANT SELECT ON hubsync._uncommitted_changes TO PUBLIC;
GRANT SELECT ON hubsync.webhook_stats TO PUBLIC;
GRANT SELECT ON hubsync.association_types TO PUBLIC;
GRANT SELECT ON hubsync.credentials_status TO PUBLIC;
REVOKE ALL ON hubsync.poll_state, hubsync.backfills, hubsync.reconcile_runs,
	hubsync.reconcile_drift, hubsync._reconcile_remote FROM PUBLIC;
GRANT SELECT ON hubsync.poll_state, hubsync.backfills, hubsync.reconcile_runs,
	hubsync.reconcile_drift TO PUBLIC;
-- the Webhooks Journal: where reading stands and the subscriptions, for
-- everyone to see (no CRM value, no secret); changed by the owner only
REVOKE ALL ON hubsync.journal_state, hubsync.journal_subscriptions FROM PUBLIC;
GRANT SELECT ON hubsync.journal_state, hubsync.journal_subscriptions TO PUBLIC;

-- Merge lineage (ids only), for the readers of the type's mirror table:
-- hubsync.invoice_aging(), behind the view hubspot.invoice_aging, runs
-- with the reader's rights and leaves merged-away invoices out.
GRANT SELECT ON hubsync.merges TO PUBLIC;
REVOKE ALL ON hubsync._enrichment_keys FROM PUBLIC;
GRANT SELECT ON hubsync.enrichment_status TO PUBLIC;
-- BI model: the state of the owners and pipelines copy (no CRM values);
-- the property history pass may hold HubSpot's messages: owner only
GRANT SELECT ON hubsync.metadata_sync TO PUBLIC;
REVOKE ALL ON hubsync.history_backfills FROM PUBLIC;

-- functions
REVOKE ALL ON FUNCTION hubsync._credentials_changed() FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync._api_path(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync._api_path_in(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync._invalidate_mirror(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync.ingest_webhook(text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync._webhook_signature(integer, text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync._parse_probe(text, bytea, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync._request_refresh(text, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync._merged_away(text, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync.backfill(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync.reconcile(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync.check() FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync.reconcile_start(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync.refresh_metadata() FROM PUBLIC;
REVOKE ALL ON FUNCTION hubsync.sync_journal_subscriptions() FROM PUBLIC;

DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid FROM pg_catalog.pg_proc p
		WHERE p.pronamespace = 'hubsync'::regnamespace
		  AND p.proname LIKE '\_%'
		  AND p.proname NOT IN ('_credentials_status', '_from_wire', '_mirror_table', '_require_owner', '_auth_state', '_set_paused', '_event_object_type', '_trigger_grantees', '_can_read_mirror')
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
	END LOOP;
END
$$;

REVOKE ALL ON FUNCTION hubsync._wake_workers() FROM PUBLIC;

DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid FROM pg_catalog.pg_proc p
		WHERE p.pronamespace = 'hubsync'::regnamespace
		  AND (p.proname LIKE '\_enrich%' OR p.proname = '_wake_enrich')
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
	END LOOP;
END
$$;

REVOKE ALL ON FUNCTION hubsync._notify_out_change() FROM PUBLIC;
