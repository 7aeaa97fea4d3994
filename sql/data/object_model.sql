-------------------------------------------------------------------------------
-- Built-in object types and the mirror tables
-------------------------------------------------------------------------------
-- Rows CREATE EXTENSION installs (builtin = true, not dumped) and the
-- mirror tables made from them.  Install only: an update changes these
-- rows in its modfile (sql/updates/).

INSERT INTO hubsync.object_types
	(object_type, object_type_id, api_name, webhook_prefix, last_modified_property, builtin)
VALUES
	('contacts',          '0-1',   'contacts',          'contact',   'lastmodifieddate',    true),
	('companies',         '0-2',   'companies',         'company',   'hs_lastmodifieddate', true),
	('deals',             '0-3',   'deals',             'deal',      'hs_lastmodifieddate', true),
	('tickets',           '0-5',   'tickets',           'ticket',    'hs_lastmodifieddate', true),
	('products',          '0-7',   'products',          'product',   'hs_lastmodifieddate', true),
	('line_items',        '0-8',   'line_items',        'line_item', 'hs_lastmodifieddate', true),
	('quotes',            '0-14',  'quotes',            NULL,        'hs_lastmodifieddate', true),
	('invoices',          '0-53',  'invoices',          NULL,        'hs_lastmodifieddate', true),
	('subscriptions',     '0-69',  'subscriptions',     NULL,        'hs_lastmodifieddate', true),
	('commerce_payments', '0-101', 'commerce_payments', NULL,        'hs_lastmodifieddate', true);

INSERT INTO hubsync.property_map (object_type, property, column_name, sql_type, builtin)
SELECT m.t, m.p, m.p, m.ty, true
FROM (VALUES
	('contacts', 'email', 'text'), ('contacts', 'firstname', 'text'),
	('contacts', 'lastname', 'text'), ('contacts', 'phone', 'text'),
	('contacts', 'mobilephone', 'text'), ('contacts', 'company', 'text'),
	('contacts', 'jobtitle', 'text'), ('contacts', 'website', 'text'),
	('contacts', 'city', 'text'), ('contacts', 'country', 'text'),
	('contacts', 'lifecyclestage', 'text'), ('contacts', 'hs_lead_status', 'text'),
	('contacts', 'hubspot_owner_id', 'text'),

	('companies', 'name', 'text'), ('companies', 'domain', 'text'),
	('companies', 'industry', 'text'), ('companies', 'phone', 'text'),
	('companies', 'city', 'text'), ('companies', 'country', 'text'),
	('companies', 'numberofemployees', 'numeric'), ('companies', 'annualrevenue', 'numeric'),
	('companies', 'lifecyclestage', 'text'), ('companies', 'hubspot_owner_id', 'text'),

	('deals', 'dealname', 'text'), ('deals', 'amount', 'numeric'),
	('deals', 'dealstage', 'text'), ('deals', 'pipeline', 'text'),
	('deals', 'closedate', 'timestamptz'), ('deals', 'dealtype', 'text'),
	('deals', 'deal_currency_code', 'text'), ('deals', 'hubspot_owner_id', 'text'),

	('tickets', 'subject', 'text'), ('tickets', 'content', 'text'),
	('tickets', 'hs_pipeline', 'text'), ('tickets', 'hs_pipeline_stage', 'text'),
	('tickets', 'hs_ticket_priority', 'text'), ('tickets', 'hubspot_owner_id', 'text'),

	('products', 'name', 'text'), ('products', 'description', 'text'),
	('products', 'price', 'numeric'), ('products', 'hs_sku', 'text'),
	('products', 'hs_cost_of_goods_sold', 'numeric'),
	('products', 'recurringbillingfrequency', 'text'),

	('line_items', 'name', 'text'), ('line_items', 'quantity', 'numeric'),
	('line_items', 'price', 'numeric'), ('line_items', 'amount', 'numeric'),
	('line_items', 'hs_product_id', 'text'), ('line_items', 'hs_sku', 'text'),
	('line_items', 'recurringbillingfrequency', 'text'),
	('line_items', 'hs_recurring_billing_period', 'text'),

	('quotes', 'hs_title', 'text'), ('quotes', 'hs_expiration_date', 'date'),
	('quotes', 'hs_status', 'text'), ('quotes', 'hs_quote_amount', 'numeric'),
	('quotes', 'hs_currency', 'text'),

	('invoices', 'hs_invoice_status', 'text'), ('invoices', 'hs_amount_billed', 'numeric'),
	('invoices', 'hs_balance_due', 'numeric'), ('invoices', 'hs_due_date', 'date'),
	('invoices', 'hs_invoice_date', 'date'), ('invoices', 'hs_number', 'text'),
	('invoices', 'hs_currency', 'text'),

	('subscriptions', 'hs_name', 'text'), ('subscriptions', 'hs_status', 'text'),
	('subscriptions', 'hs_recurring_revenue', 'numeric'),
	('subscriptions', 'hs_recurring_billing_frequency', 'text'),
	('subscriptions', 'hs_start_date', 'date'), ('subscriptions', 'hs_end_date', 'date'),
	('subscriptions', 'hs_next_payment_due_date', 'date'),
	('subscriptions', 'hs_currency_code', 'text'),

	('commerce_payments', 'hs_initial_amount', 'numeric'),
	('commerce_payments', 'hs_initiated_date', 'timestamptz'),
	('commerce_payments', 'hs_latest_status', 'text'),
	('commerce_payments', 'hs_payment_method_type', 'text'),
	('commerce_payments', 'hs_processor_type', 'text'),
	('commerce_payments', 'hs_currency_code', 'text'),
	('commerce_payments', 'hs_refunds_amount', 'numeric')
) AS m(t, p, ty);

SELECT hubsync._create_mirror_table(object_type) FROM hubsync.object_types ORDER BY object_type;
