-------------------------------------------------------------------------------
-- BI views in hubspot
-------------------------------------------------------------------------------
-- Revenue views over the mirror tables.

-- Months are calendar months in UTC; amounts are summed per currency and
-- never converted; records HubSpot merged away (hubsync.merges) never
-- count.  The exact definitions are in docs/bi.md.

-- Closed-won deal amount by close month and pipeline.
CREATE OR REPLACE VIEW hubspot.revenue_by_month AS
SELECT date_trunc('month', d.closedate AT TIME ZONE 'UTC')::date AS month,
       d.pipeline,
       d.deal_currency_code AS currency,
       count(*) AS deals,
       coalesce(sum(d.amount), 0) AS amount
FROM hubspot.deals d
WHERE (d.dealstage = 'closedwon' OR d.properties ->> 'hs_is_closed_won' = 'true')
  AND d.closedate IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM hubsync.merges m
                  WHERE m.object_type = 'deals' AND m.merged_id = d.hs_object_id)
GROUP BY 1, 2, 3;
COMMENT ON VIEW hubspot.revenue_by_month IS
  'Closed-won deals (dealstage closedwon or hs_is_closed_won) by UTC close month, pipeline and currency: count and sum of amount';

-- Monthly recurring revenue of the subscriptions active in each month.
CREATE OR REPLACE VIEW hubspot.mrr AS
WITH s AS (
	SELECT s.hs_currency_code AS currency,
	       s.hs_recurring_revenue * hubsync.billing_periods_per_year(s.hs_recurring_billing_frequency) AS yearly,
	       date_trunc('month', s.hs_start_date)::date AS first_month,
	       date_trunc('month', coalesce(s.hs_end_date, current_date))::date AS last_month
	FROM hubspot.subscriptions s
	WHERE s.hs_start_date IS NOT NULL AND s.hs_recurring_revenue IS NOT NULL
	  AND (s.hs_status IN ('active', 'past_due')
	       OR (s.hs_status IN ('canceled', 'expired') AND s.hs_end_date IS NOT NULL))
	  AND NOT EXISTS (SELECT 1 FROM hubsync.merges m
	                  WHERE m.object_type = 'subscriptions' AND m.merged_id = s.hs_object_id)
)
SELECT g.month::date AS month, s.currency, count(*) AS subscriptions,
       round(sum(s.yearly) / 12, 2) AS mrr
FROM s, generate_series(s.first_month, s.last_month, interval '1 month') g(month)
GROUP BY 1, 2;
COMMENT ON VIEW hubspot.mrr IS
  'Monthly recurring revenue by month and currency: subscriptions active in the month, hs_recurring_revenue normalised to a month (x periods per year / 12), rounded to cents';

CREATE OR REPLACE VIEW hubspot.invoice_aging AS SELECT * FROM hubsync.invoice_aging(current_date);
COMMENT ON VIEW hubspot.invoice_aging IS
  'Open invoice balance (hs_balance_due of invoices with hs_invoice_status open) in 0-30 / 31-60 / 61-90 / 90+ days past hs_due_date, today, per currency';

-- Succeeded payments minus refunds, by month.
CREATE OR REPLACE VIEW hubspot.payments_by_month AS
SELECT date_trunc('month', p.hs_initiated_date AT TIME ZONE 'UTC')::date AS month,
       p.hs_currency_code AS currency,
       count(*) AS payments,
       sum(p.hs_initial_amount) AS gross,
       sum(coalesce(p.hs_refunds_amount, 0)) AS refunds,
       sum(p.hs_initial_amount) - sum(coalesce(p.hs_refunds_amount, 0)) AS net
FROM hubspot.commerce_payments p
WHERE p.hs_latest_status IN ('succeeded', 'partially_refunded', 'refunded')
  AND p.hs_initiated_date IS NOT NULL AND p.hs_initial_amount IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM hubsync.merges m
                  WHERE m.object_type = 'commerce_payments' AND m.merged_id = p.hs_object_id)
GROUP BY 1, 2;
COMMENT ON VIEW hubspot.payments_by_month IS
  'Payments that succeeded (hs_latest_status succeeded, partially_refunded or refunded) by UTC month of hs_initiated_date and currency: gross, refunds (hs_refunds_amount) and net';
