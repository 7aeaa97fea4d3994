-------------------------------------------------------------------------------
-- Update from 0.1.0 to 0.2.0: after the functions
-------------------------------------------------------------------------------
-- Run after sql/functions/ (and before the views): data changes that
-- call functions of 0.2.0, row security and new policies (CREATE POLICY
-- cannot be re-run, and policies call the functions; the install has
-- them in sql/policies.sql), and privileges only an updated database
-- needs.

-------------------------------------------------------------------------------
-- Revenue data and the object model (issue 7): typed properties
-------------------------------------------------------------------------------

-- More revenue properties in typed columns (HubSpot types per the API
-- notes, section 10).  Added with ALTER TABLE, like map_property, so that
-- a fresh install and an upgraded one have the same column order.
SELECT hubsync._add_typed_column(m.t, m.p, m.ty)
FROM (VALUES
	('invoices', 'hs_amount_paid', 'numeric'), ('invoices', 'hs_subtotal', 'numeric'),
	('subscriptions', 'hs_last_payment_date', 'timestamptz'),
	('commerce_payments', 'hs_net_amount', 'numeric'), ('commerce_payments', 'hs_fees_amount', 'numeric'),
	('line_items', 'discount', 'numeric'), ('line_items', 'tax', 'numeric'),
	('line_items', 'hs_discount_percentage', 'numeric'),
	('line_items', 'hs_line_item_currency_code', 'text'),
	('line_items', 'hs_recurring_billing_start_date', 'date')
) AS m(t, p, ty);
UPDATE hubsync.property_map SET builtin = true
WHERE (object_type, property) IN (('invoices', 'hs_amount_paid'), ('invoices', 'hs_subtotal'),
	('subscriptions', 'hs_last_payment_date'), ('commerce_payments', 'hs_net_amount'),
	('commerce_payments', 'hs_fees_amount'), ('line_items', 'discount'), ('line_items', 'tax'),
	('line_items', 'hs_discount_percentage'), ('line_items', 'hs_line_item_currency_code'),
	('line_items', 'hs_recurring_billing_start_date'));

-- security

-- HubSpot's error messages (last_error, error) and the drift's local and
-- remote values are shown to a role only for the object types whose mirror
-- table it may read (a run over every type: only to a role that may read
-- them all).  The extension owner and superusers, the workers included,
-- are not subject to these policies.
ALTER TABLE hubsync.poll_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE hubsync.backfills ENABLE ROW LEVEL SECURITY;
ALTER TABLE hubsync.reconcile_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE hubsync.reconcile_drift ENABLE ROW LEVEL SECURITY;
CREATE POLICY mirror_readers ON hubsync.poll_state FOR SELECT
	USING (hubsync._can_read_mirror(object_type));
CREATE POLICY mirror_readers ON hubsync.backfills FOR SELECT
	USING (hubsync._can_read_mirror(object_type));
CREATE POLICY mirror_readers ON hubsync.reconcile_runs FOR SELECT
	USING (hubsync._can_read_mirror(object_type));

-- drift can be many rows: the readable types are looked up once
CREATE POLICY mirror_readers ON hubsync.reconcile_drift FOR SELECT
	USING (object_type IN (SELECT t.object_type FROM hubsync.object_types t
	                       WHERE hubsync._can_read_mirror(t.object_type)));

ALTER TABLE hubsync.merges ENABLE ROW LEVEL SECURITY;
CREATE POLICY mirror_readers ON hubsync.merges FOR SELECT
	USING (hubsync._can_read_mirror(object_type));

-- merge fixes: hubsync.status calls _event_object_type, so every role
-- that may read the view may call it (as in a fresh install)
GRANT EXECUTE ON FUNCTION hubsync._event_object_type(text, text) TO PUBLIC;

-------------------------------------------------------------------------------
-- BI model (issue 22)
-------------------------------------------------------------------------------
-- what the mirror holds at the update is where the histories start
INSERT INTO hubspot.deal_stage_history (deal_hubsync_id, deal_id, pipeline, stage, entered_at, source)
SELECT d.hubsync_id, d.hs_object_id, d.pipeline, d.dealstage,
       coalesce(d.updated_at, d.created_at, pg_catalog.now()), 'snapshot'
FROM hubspot.deals d WHERE nullif(d.dealstage, '') IS NOT NULL;
INSERT INTO hubspot.subscription_history (subscription_hubsync_id, subscription_id, valid_from, status,
	recurring_revenue, billing_frequency, currency, start_date, end_date, source)
SELECT s.hubsync_id, s.hs_object_id, coalesce(s.updated_at, s.created_at, pg_catalog.now()), s.hs_status,
       s.hs_recurring_revenue, s.hs_recurring_billing_frequency, s.hs_currency_code,
       s.hs_start_date, s.hs_end_date, 'snapshot'
FROM hubspot.subscriptions s;
