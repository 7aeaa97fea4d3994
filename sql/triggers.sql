-------------------------------------------------------------------------------
-- Triggers
-------------------------------------------------------------------------------
-- On hubsync's own tables and hubspot.associations (the capture
-- triggers of the mirror tables are made by
-- hubsync._create_mirror_table).  CREATE OR REPLACE, so that every
-- update runs this file again.

CREATE OR REPLACE TRIGGER hubsync_association_defaults BEFORE INSERT ON hubspot.associations
	FOR EACH ROW EXECUTE FUNCTION hubsync._association_defaults();
CREATE OR REPLACE TRIGGER hubsync_capture AFTER INSERT OR UPDATE OR DELETE ON hubspot.associations
	FOR EACH ROW EXECUTE FUNCTION hubsync._capture_association();

CREATE OR REPLACE TRIGGER hubsync_paused AFTER UPDATE OF paused ON hubsync.object_types
	FOR EACH ROW EXECUTE FUNCTION hubsync._types_to_paused();
CREATE OR REPLACE TRIGGER hubsync_paused AFTER INSERT OR DELETE ON hubsync.paused_types
	FOR EACH ROW EXECUTE FUNCTION hubsync._paused_to_types();

CREATE OR REPLACE TRIGGER enrichment_providers_check BEFORE INSERT OR UPDATE ON hubsync.enrichment_providers
	FOR EACH ROW EXECUTE FUNCTION hubsync._enrich_check_provider();

CREATE OR REPLACE TRIGGER enrichment_rules_check BEFORE INSERT OR UPDATE OR DELETE ON hubsync.enrichment_rules
	FOR EACH ROW EXECUTE FUNCTION hubsync._enrich_check_rule();

CREATE OR REPLACE TRIGGER enrichment_rules_changed AFTER INSERT OR UPDATE OR DELETE ON hubsync.enrichment_rules
	FOR EACH STATEMENT EXECUTE FUNCTION hubsync._enrich_rules_changed();

CREATE OR REPLACE TRIGGER hubsync_notify_out AFTER INSERT ON hubsync.changes
	FOR EACH ROW WHEN (NEW.direction = 'out') EXECUTE FUNCTION hubsync._notify_out_change();
COMMENT ON TRIGGER hubsync_notify_out ON hubsync.changes IS
  'Announces outbound changes on NOTIFY hubsync_changes (inbound ones are announced where they are applied)';

-- BI model: stage and subscription history (issue 22)
CREATE OR REPLACE TRIGGER hubsync_stage_history AFTER INSERT OR UPDATE OR DELETE ON hubspot.deals
	FOR EACH ROW EXECUTE FUNCTION hubsync._track_deal_stage();
CREATE OR REPLACE TRIGGER hubsync_subscription_history AFTER INSERT OR UPDATE OR DELETE ON hubspot.subscriptions
	FOR EACH ROW EXECUTE FUNCTION hubsync._track_subscription();
