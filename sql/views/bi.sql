-------------------------------------------------------------------------------
-- BI model views in hubspot (issue 22)
-------------------------------------------------------------------------------
-- MRR from subscription history: months are calendar months in UTC, each
-- subscription's month uses its state at the end of that month (its
-- first recorded state for months before it), amounts per currency,
-- never converted.  The exact definitions are in docs/bi.md.

-- Each subscription's MRR in each month, from its first start month to
-- the month after its last end (or this month).
CREATE OR REPLACE VIEW hubspot.subscription_mrr AS
WITH subs AS (
	SELECT s.hubsync_id, s.hs_object_id,
	       min(date_trunc('month', h.start_date))::date AS first_month,
	       greatest(date_trunc('month', current_date),
	                max(date_trunc('month', h.end_date)) + interval '1 month')::date AS last_month
	FROM hubspot.subscriptions s
	JOIN hubspot.subscription_history h ON h.subscription_hubsync_id = s.hubsync_id
	WHERE NOT EXISTS (SELECT 1 FROM hubsync.merges m
	                  WHERE m.object_type = 'subscriptions' AND m.merged_id = s.hs_object_id)
	GROUP BY s.hubsync_id, s.hs_object_id
	HAVING min(h.start_date) IS NOT NULL
), months AS (
	SELECT subs.hubsync_id, subs.hs_object_id, g.month::date AS month,
	       ((g.month + interval '1 month')::timestamp AT TIME ZONE 'UTC') AS month_end
	FROM subs, generate_series(subs.first_month, subs.last_month, interval '1 month') g(month)
)
SELECT m.hubsync_id AS subscription_hubsync_id, m.hs_object_id AS subscription_id, m.month,
       st.currency, st.status, st.recurring_revenue, st.billing_frequency,
       c.counted,
       CASE WHEN c.counted
            THEN st.recurring_revenue * hubsync.billing_periods_per_year(st.billing_frequency) / 12
            ELSE 0 END AS mrr
FROM months m
CROSS JOIN LATERAL (
	SELECT h.* FROM hubspot.subscription_history h
	WHERE h.subscription_hubsync_id = m.hubsync_id
	ORDER BY h.valid_from < m.month_end DESC,
	         CASE WHEN h.valid_from < m.month_end THEN h.valid_from END DESC NULLS LAST,
	         h.valid_from, h.id DESC
	LIMIT 1) st
CROSS JOIN LATERAL (
	SELECT coalesce(st.start_date IS NOT NULL AND st.recurring_revenue IS NOT NULL
	       AND m.month >= date_trunc('month', st.start_date)
	       AND m.month <= date_trunc('month', coalesce(st.end_date, current_date))
	       AND (st.status IN ('active', 'past_due')
	            OR (st.status IN ('canceled', 'expired') AND st.end_date IS NOT NULL)), false) AS counted) c;
COMMENT ON VIEW hubspot.subscription_mrr IS
  'Each subscription''s monthly recurring revenue in each month, from its state (hubspot.subscription_history) at the end of the month: counted when active or past_due, or canceled/expired with an end date, between its start and end months';

-- Monthly recurring revenue of the subscriptions counted in each month.
CREATE OR REPLACE VIEW hubspot.mrr AS
SELECT s.month, s.currency, count(*) AS subscriptions, round(sum(s.mrr), 2) AS mrr
FROM hubspot.subscription_mrr s
WHERE s.counted
GROUP BY 1, 2;
COMMENT ON VIEW hubspot.mrr IS
  'Monthly recurring revenue by month and currency, from subscription history (hubspot.subscription_mrr): hs_recurring_revenue normalised to a month (x periods per year / 12), rounded to cents';

-- New, expansion, contraction and churned MRR by month and currency.
CREATE OR REPLACE VIEW hubspot.mrr_movements AS
WITH s AS (
	SELECT x.subscription_hubsync_id, x.month, x.currency, x.mrr,
	       lag(x.currency) OVER w AS prev_currency,
	       coalesce(lag(x.mrr) OVER w, 0) AS prev_mrr
	FROM hubspot.subscription_mrr x
	WINDOW w AS (PARTITION BY x.subscription_hubsync_id ORDER BY x.month)
), moves AS (
	-- in the subscription's currency of the month
	SELECT s.month, s.currency,
	       CASE WHEN s.mrr > 0 AND (s.prev_mrr = 0 OR s.prev_currency IS DISTINCT FROM s.currency) THEN s.mrr ELSE 0 END AS new_mrr,
	       CASE WHEN s.prev_currency = s.currency AND s.prev_mrr > 0 AND s.mrr > s.prev_mrr THEN s.mrr - s.prev_mrr ELSE 0 END AS expansion_mrr,
	       CASE WHEN s.prev_currency = s.currency AND s.mrr > 0 AND s.mrr < s.prev_mrr THEN s.prev_mrr - s.mrr ELSE 0 END AS contraction_mrr,
	       CASE WHEN s.prev_currency = s.currency AND s.prev_mrr > 0 AND s.mrr = 0 THEN s.prev_mrr ELSE 0 END AS churned_mrr,
	       s.mrr
	FROM s
	UNION ALL
	-- a subscription whose currency changed left its old currency
	SELECT s.month, s.prev_currency, 0, 0, 0, s.prev_mrr, 0
	FROM s
	WHERE s.prev_currency IS DISTINCT FROM s.currency AND s.prev_mrr > 0
)
SELECT m.month, m.currency,
       round(sum(m.new_mrr), 2) AS new_mrr,
       round(sum(m.expansion_mrr), 2) AS expansion_mrr,
       round(sum(m.contraction_mrr), 2) AS contraction_mrr,
       round(sum(m.churned_mrr), 2) AS churned_mrr,
       round(sum(m.new_mrr) + sum(m.expansion_mrr) - sum(m.contraction_mrr) - sum(m.churned_mrr), 2) AS net_new_mrr,
       round(sum(m.mrr), 2) AS mrr
FROM moves m
WHERE m.currency IS NOT NULL
GROUP BY 1, 2
HAVING sum(m.mrr) <> 0 OR sum(m.new_mrr) <> 0 OR sum(m.expansion_mrr) <> 0
    OR sum(m.contraction_mrr) <> 0 OR sum(m.churned_mrr) <> 0;
COMMENT ON VIEW hubspot.mrr_movements IS
  'MRR movements by month and currency against the month before, per subscription: new (from 0), expansion, contraction, churned (to 0), net new, and the month''s MRR';

-- Deals with the labels and won/closed flags of their pipeline and stage.
CREATE OR REPLACE VIEW hubspot.deal_stages AS
SELECT d.hubsync_id AS deal_hubsync_id, d.hs_object_id AS deal_id, d.dealname,
       d.pipeline, p.label AS pipeline_label, d.dealstage AS stage, st.label AS stage_label,
       st.display_order AS stage_order, st.probability,
       coalesce(st.closed, d.dealstage IN ('closedwon', 'closedlost')) AS closed,
       coalesce(st.won, d.dealstage = 'closedwon') AS won,
       d.hubspot_owner_id AS owner_id, d.amount, d.deal_currency_code AS currency, d.closedate
FROM hubspot.deals d
LEFT JOIN hubspot.pipelines p ON p.object_type = 'deals' AND p.pipeline_id = d.pipeline
LEFT JOIN hubspot.pipeline_stages st ON st.object_type = 'deals' AND st.pipeline_id = d.pipeline
                                      AND st.stage_id = d.dealstage
WHERE NOT EXISTS (SELECT 1 FROM hubsync.merges m
                  WHERE m.object_type = 'deals' AND m.merged_id = d.hs_object_id);
COMMENT ON VIEW hubspot.deal_stages IS
  'Deals with their pipeline and stage labels and whether the stage is closed and won (stage metadata; before the first copy of the pipelines: closedwon / closedlost)';
