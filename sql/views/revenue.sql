-------------------------------------------------------------------------------
-- BI views in hubspot
-------------------------------------------------------------------------------
-- Revenue views over the mirror tables.

-- Months are calendar months in UTC; amounts are summed per currency and
-- never converted; records HubSpot merged away (hubsync.merges) never
-- count.  The exact definitions are in docs/bi.md.

-- Closed-won deal amount by close month and pipeline: a deal is won when
-- its stage is closed with probability 1 (hubspot.pipeline_stages), in
-- any pipeline.
CREATE OR REPLACE VIEW hubspot.revenue_by_month AS
SELECT date_trunc('month', d.closedate AT TIME ZONE 'UTC')::date AS month,
       d.pipeline,
       d.currency,
       count(*) AS deals,
       coalesce(sum(d.amount), 0) AS amount
FROM hubspot.deal_stages d
WHERE d.won AND d.closedate IS NOT NULL
GROUP BY 1, 2, 3;
COMMENT ON VIEW hubspot.revenue_by_month IS
  'Closed-won deals (stage closed with probability 1 in hubspot.pipeline_stages; closedwon before the first copy of the pipelines) by UTC close month, pipeline and currency: count and sum of amount';

-- (hubspot.mrr is computed from subscription history: sql/views/bi.sql)

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
