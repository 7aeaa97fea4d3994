-------------------------------------------------------------------------------
-- Revenue
-------------------------------------------------------------------------------
-- Helpers of the BI views in schema hubspot (sql/views/revenue.sql).

-- Periods per year of a billing frequency (NULL: monthly).
CREATE OR REPLACE FUNCTION hubsync.billing_periods_per_year(frequency text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE coalesce(frequency, 'monthly')
		WHEN 'weekly' THEN 52 WHEN 'biweekly' THEN 26 WHEN 'monthly' THEN 12
		WHEN 'quarterly' THEN 4 WHEN 'per_six_months' THEN 2 WHEN 'annually' THEN 1
		WHEN 'per_two_years' THEN 0.5 WHEN 'per_three_years' THEN 1 / 3.0
		WHEN 'per_four_years' THEN 0.25 WHEN 'per_five_years' THEN 0.2
	END::numeric
$$;
COMMENT ON FUNCTION hubsync.billing_periods_per_year(text) IS
  'Billing periods per year of a HubSpot recurring billing frequency (weekly 52 ... per_five_years 0.2; NULL is monthly)';

-- Open invoice balance by days past due, as of a given day.
CREATE OR REPLACE FUNCTION hubsync.invoice_aging(as_of date DEFAULT current_date)
RETURNS TABLE (bucket text, currency text, invoices bigint, balance numeric)
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN a.days <= 30 THEN '0-30' WHEN a.days <= 60 THEN '31-60'
	            WHEN a.days <= 90 THEN '61-90' ELSE '90+' END,
	       a.hs_currency, count(*), sum(a.hs_balance_due)
	FROM (SELECT i.hs_currency, i.hs_balance_due,
	             greatest(coalesce(invoice_aging.as_of - i.hs_due_date, 0), 0) AS days
	      FROM hubspot.invoices i
	      WHERE i.hs_invoice_status = 'open' AND i.hs_balance_due > 0
	        AND NOT EXISTS (SELECT 1 FROM hubsync.merges m
	                        WHERE m.object_type = 'invoices' AND m.merged_id = i.hs_object_id)) a
	GROUP BY 1, 2
	ORDER BY min(a.days), 2
$$;
COMMENT ON FUNCTION hubsync.invoice_aging(date) IS
  'Open invoices with a balance due, by days past due on a given day (0-30 includes not yet due), per currency';
