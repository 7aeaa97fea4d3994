-------------------------------------------------------------------------------
-- More built-in typed properties
-------------------------------------------------------------------------------
-- Install only: an update adds its own in its modfile (sql/updates/).

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
