-- bi: owners, pipelines and stages, deal stage history, revenue by stage
-- metadata, MRR and its movements from subscription history, against
-- hand-computed results
SET TIME ZONE 'UTC';

-- pipelines as HubSpot's pipelines API answers: the default pipeline and a
-- custom one whose won stage is not called closedwon
SELECT hubsync._metadata_store_pipelines('deals', '[
 {"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "archived": false, "stages": [
   {"id": "appointmentscheduled", "label": "Appointment Scheduled", "displayOrder": 0, "archived": false, "metadata": {"isClosed": "false", "probability": "0.2"}},
   {"id": "closedwon", "label": "Closed Won", "displayOrder": 1, "archived": false, "metadata": {"isClosed": "true", "probability": "1.0"}},
   {"id": "closedlost", "label": "Closed Lost", "displayOrder": 2, "archived": false, "metadata": {"isClosed": "true", "probability": "0.0"}}]},
 {"id": "enterprise", "label": "Enterprise", "displayOrder": 1, "archived": false, "stages": [
   {"id": "ent_pitch", "label": "Pitch", "displayOrder": 0, "archived": false, "metadata": {"isClosed": "false", "probability": "0.1"}},
   {"id": "ent_signed", "label": "Signed", "displayOrder": 1, "archived": false, "metadata": {"isClosed": "true", "probability": "1.0"}},
   {"id": "ent_old", "label": "Old", "displayOrder": 2, "archived": false, "metadata": {"isClosed": "false", "probability": "0.5"}}]}]') AS stages;
-- read again without ent_old: kept, flagged archived
SELECT hubsync._metadata_store_pipelines('deals', '[
 {"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "stages": [
   {"id": "appointmentscheduled", "label": "Appointment Scheduled", "displayOrder": 0, "metadata": {"isClosed": "false", "probability": "0.2"}},
   {"id": "closedwon", "label": "Closed Won", "displayOrder": 1, "metadata": {"isClosed": "true", "probability": "1.0"}},
   {"id": "closedlost", "label": "Closed Lost", "displayOrder": 2, "metadata": {"isClosed": "true", "probability": "0.0"}}]},
 {"id": "enterprise", "label": "Enterprise", "displayOrder": 1, "stages": [
   {"id": "ent_pitch", "label": "Pitch", "displayOrder": 0, "metadata": {"isClosed": "false", "probability": "0.1"}},
   {"id": "ent_signed", "label": "Signed", "displayOrder": 1, "metadata": {"isClosed": "true", "probability": "1.0"}}]}]') AS stages;
SELECT hubsync._metadata_store_pipelines('tickets', '[
 {"id": "0", "label": "Support", "displayOrder": 0, "stages": [
   {"id": "1", "label": "New", "displayOrder": 0, "metadata": {"ticketState": "OPEN"}},
   {"id": "4", "label": "Closed", "displayOrder": 1, "metadata": {"ticketState": "CLOSED"}}]}]') AS stages;
SELECT object_type, pipeline_id, stage_id, label, display_order, probability, closed, won, archived
FROM hubspot.pipeline_stages ORDER BY object_type, pipeline_id, display_order;
SELECT object_type, pipeline_id, label, archived FROM hubspot.pipelines ORDER BY 1, 2;

-- owners: a page of active ones, a page of archived ones
SELECT hubsync._metadata_store_owners('[
 {"id": "11", "email": "ann@example.com", "firstName": "Ann", "lastName": "Lee", "userId": 501, "archived": false,
  "teams": [{"id": "7", "name": "EMEA", "primary": true}], "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-06-01T00:00:00Z"},
 {"id": "12", "email": "bob@example.com", "firstName": "Bob", "lastName": "Ray", "userId": 502, "archived": false}]') AS owners;
SELECT hubsync._metadata_store_owners('[{"id": "13", "email": "cy@example.com", "firstName": "Cy", "archived": true}]') AS owners;
SELECT owner_id, email, first_name, last_name, user_id, teams, archived FROM hubspot.owners ORDER BY owner_id;

-- deals: two currencies, two pipelines, three owners
INSERT INTO hubspot.deals (dealname, amount, dealstage, pipeline, closedate, deal_currency_code, hs_object_id, hubspot_owner_id) VALUES
 ('A', 1000, 'closedwon',   'default',    '2025-01-15Z', 'EUR', 301, '11'),
 ('B',  400, 'closedlost',  'default',    '2025-01-20Z', 'EUR', 302, '11'),
 ('C', 2500, 'ent_signed',  'enterprise', '2025-01-25Z', 'EUR', 303, '12'),  -- custom pipeline won
 ('D',  700, 'ent_signed',  'enterprise', '2025-02-03Z', 'USD', 304, '12'),
 ('E',  900, 'ent_pitch',   'enterprise', NULL,          'USD', 305, '13'),  -- open
 ('F',   50, 'closedwon',   'default',    '2025-02-10Z', 'USD', 306, '13');
-- January EUR: default 1000 (A), enterprise 2500 (C); February USD:
-- default 50 (F), enterprise 700 (D); B lost, E open
SELECT * FROM hubspot.revenue_by_month ORDER BY month, pipeline, currency;

-- pipeline funnel: open and closed deals per stage, with labels
SELECT pipeline_label, stage_label, count(*) AS deals, sum(amount) AS amount, currency
FROM hubspot.deal_stages GROUP BY pipeline_label, stage_order, stage_label, currency
ORDER BY pipeline_label, stage_order, currency;

-- win rate by owner: won / closed (Ann 1 of 2, Bob 2 of 2; Cy 1 of 1)
SELECT coalesce(o.first_name || ' ' || o.last_name, o.first_name, d.owner_id) AS owner, o.archived,
       count(*) FILTER (WHERE d.won) AS won, count(*) FILTER (WHERE d.closed) AS closed,
       round(count(*) FILTER (WHERE d.won)::numeric / nullif(count(*) FILTER (WHERE d.closed), 0), 2) AS win_rate
FROM hubspot.deal_stages d LEFT JOIN hubspot.owners o ON o.owner_id = d.owner_id
GROUP BY 1, 2 ORDER BY 1;

-- the stage history: one open row per deal so far (local inserts)
SELECT d.dealname, h.stage, h.source, h.exited_at IS NULL AS open
FROM hubspot.deal_stage_history h JOIN hubspot.deals d ON d.hubsync_id = h.deal_hubsync_id ORDER BY 1;
-- a local update moves E through two stages: each closes the one before
UPDATE hubspot.deals SET dealstage = 'ent_signed', closedate = '2025-03-01Z' WHERE dealname = 'E';
UPDATE hubspot.deals SET amount = 950 WHERE dealname = 'E';  -- no stage change: no row
SELECT h.stage, h.source, h.exited_at IS NULL AS open,
       h.exited_at IS NOT DISTINCT FROM lead(h.entered_at) OVER (ORDER BY h.entered_at, h.id) AS consistent
FROM hubspot.deal_stage_history h JOIN hubspot.deals d ON d.hubsync_id = h.deal_hubsync_id
WHERE d.dealname = 'E' ORDER BY h.entered_at, h.id;

-- HubSpot's property history replaces it (newest first, as HubSpot lists it)
SELECT hubsync._stage_history_store('[{"id": "301", "propertiesWithHistory": {
  "dealstage": [{"value": "closedwon", "timestamp": "2025-01-15T00:00:00Z"},
                {"value": "qualifiedtobuy", "timestamp": "2025-01-06T12:00:00Z"},
                {"value": "appointmentscheduled", "timestamp": "2025-01-01T00:00:00Z"}],
  "pipeline": [{"value": "default", "timestamp": "2025-01-01T00:00:00Z"}]}},
 {"id": "303", "propertiesWithHistory": {
  "dealstage": [{"value": "ent_signed", "timestamp": "2025-01-25T00:00:00Z"},
                {"value": "ent_pitch", "timestamp": "2025-01-20T00:00:00Z"},
                {"value": "ent_pitch", "timestamp": "2025-01-05T00:00:00Z"}],
  "pipeline": [{"value": "enterprise", "timestamp": "2025-01-05T00:00:00Z"}]}},
 {"id": "999", "propertiesWithHistory": {"dealstage": [{"value": "x", "timestamp": "2025-01-01T00:00:00Z"}]}}]') AS deals;
SELECT h.deal_id, h.pipeline, h.stage, h.entered_at, h.exited_at, h.source
FROM hubspot.deal_stage_history h WHERE h.deal_id IN (301, 303) ORDER BY h.deal_id, h.entered_at;
-- time in stage: days per stage (A: 5.5 days scheduled, 8.5 qualified; C:
-- 20 in pitch, E: moments (its local update above): 10 on average)
SELECT h.pipeline, h.stage, count(*) AS deals,
       round(avg(extract(epoch FROM h.exited_at - h.entered_at) / 86400)::numeric, 1) AS avg_days
FROM hubspot.deal_stage_history h WHERE h.exited_at IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2;

-- subscriptions: S1 upgraded, S2 churned, S3 downgraded (HubSpot property
-- history), S4 local only (no history: its one state counts for every month)
INSERT INTO hubspot.subscriptions (hs_name, hs_status, hs_recurring_revenue, hs_recurring_billing_frequency,
                                   hs_start_date, hs_end_date, hs_currency_code, hs_object_id) VALUES
 ('S1', 'active',   150,  'monthly',   '2025-01-05', NULL,         'EUR', 401),
 ('S2', 'canceled', 1200, 'annually',  '2025-02-01', '2025-04-30', 'EUR', 402),
 ('S3', 'active',   150,  'quarterly', '2025-01-01', NULL,         'USD', 403),
 ('S4', 'expired',  10,   'weekly',    '2025-03-01', '2025-03-31', 'USD', 404);
SELECT hubsync._subscription_history_store('[
 {"id": "401", "propertiesWithHistory": {
   "hs_status": [{"value": "active", "timestamp": "2025-01-05T09:00:00Z"}],
   "hs_recurring_revenue": [{"value": "150", "timestamp": "2025-03-10T00:00:00Z"}, {"value": "100", "timestamp": "2025-01-05T09:00:00Z"}],
   "hs_recurring_billing_frequency": [{"value": "monthly", "timestamp": "2025-01-05T09:00:00Z"}],
   "hs_currency_code": [{"value": "EUR", "timestamp": "2025-01-05T09:00:00Z"}],
   "hs_start_date": [{"value": "2025-01-05", "timestamp": "2025-01-05T09:00:00Z"}]}},
 {"id": "402", "propertiesWithHistory": {
   "hs_status": [{"value": "canceled", "timestamp": "2025-04-15T00:00:00Z"}, {"value": "active", "timestamp": "2025-02-01T00:00:00Z"}],
   "hs_recurring_revenue": [{"value": "1200", "timestamp": "2025-02-01T00:00:00Z"}],
   "hs_recurring_billing_frequency": [{"value": "annually", "timestamp": "2025-02-01T00:00:00Z"}],
   "hs_currency_code": [{"value": "EUR", "timestamp": "2025-02-01T00:00:00Z"}],
   "hs_start_date": [{"value": "2025-02-01", "timestamp": "2025-02-01T00:00:00Z"}],
   "hs_end_date": [{"value": "2025-04-30", "timestamp": "2025-04-15T00:00:00Z"}]}},
 {"id": "403", "propertiesWithHistory": {
   "hs_status": [{"value": "active", "timestamp": "2025-01-01T00:00:00Z"}],
   "hs_recurring_revenue": [{"value": "150", "timestamp": "2025-02-20T00:00:00Z"}, {"value": "300", "timestamp": "2025-01-01T00:00:00Z"}],
   "hs_recurring_billing_frequency": [{"value": "quarterly", "timestamp": "2025-01-01T00:00:00Z"}],
   "hs_currency_code": [{"value": "USD", "timestamp": "2025-01-01T00:00:00Z"}],
   "hs_start_date": [{"value": "2025-01-01", "timestamp": "2025-01-01T00:00:00Z"}]}}]') AS subscriptions;
SELECT s.hs_name, h.valid_from, h.status, h.recurring_revenue, h.billing_frequency, h.currency, h.start_date, h.end_date, h.source
FROM hubspot.subscription_history h JOIN hubspot.subscriptions s ON s.hubsync_id = h.subscription_hubsync_id
WHERE s.hs_name <> 'S4' ORDER BY 1, 2;
-- EUR: Jan 100, Feb 200, Mar 250 (S1 upgraded), Apr 250, May 150 (S2 gone), Jun 150
-- USD: Jan 100, Feb 50 (S3 downgraded), Mar 93.33 (+ S4 10*52/12), Apr 50, May 50, Jun 50
SELECT * FROM hubspot.mrr WHERE month <= '2025-06-01' ORDER BY month, currency;
SELECT * FROM hubspot.mrr_movements WHERE month <= '2025-06-01' ORDER BY month, currency;
-- an upgrade made now does not rewrite the past
UPDATE hubspot.subscriptions SET hs_recurring_revenue = 500 WHERE hs_name = 'S1';
SELECT * FROM hubspot.mrr WHERE month <= '2025-06-01' AND currency = 'EUR' ORDER BY month;

-- invoice aging per currency (never added across currencies)
INSERT INTO hubspot.invoices (hs_invoice_status, hs_balance_due, hs_due_date, hs_currency) VALUES
 ('open', 100, '2025-09-20', 'EUR'), ('open', 40, '2025-06-01', 'EUR'), ('open', 70, '2025-09-01', 'USD');
SELECT * FROM hubsync.invoice_aging('2025-09-30');

-- a deleted deal or subscription takes its history with it
DELETE FROM hubspot.deals WHERE dealname = 'A';
SELECT count(*) FROM hubspot.deal_stage_history WHERE deal_id = 301;

-- raised rights: the history triggers act as the owner of hubsync's
-- tables; an application role's operator first in its search_path is
-- never called by them, it cannot attach them to a table of its own, and
-- it cannot write the history
CREATE ROLE bi_app;
CREATE SCHEMA bi_app_s AUTHORIZATION bi_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON hubspot.deals, hubspot.subscriptions TO bi_app;
SET ROLE bi_app;
CREATE FUNCTION bi_app_s.eq(text, text) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RAISE NOTICE 'application operator called as %', current_user; RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
CREATE OPERATOR bi_app_s.= (LEFTARG = text, RIGHTARG = text, FUNCTION = bi_app_s.eq);
SET search_path = bi_app_s, pg_catalog;
INSERT INTO hubspot.deals (dealname, dealstage, pipeline) VALUES ('App', 'appointmentscheduled', 'default');
UPDATE hubspot.deals SET dealstage = 'closedwon' WHERE dealname OPERATOR(pg_catalog.=) 'App';
INSERT INTO hubspot.subscriptions (hs_name, hs_status, hs_recurring_revenue) VALUES ('App', 'active', 1);
UPDATE hubspot.subscriptions SET hs_status = 'canceled' WHERE hs_name OPERATOR(pg_catalog.=) 'App';
RESET search_path;
CREATE TABLE bi_app_s.mine (LIKE hubspot.deals);
CREATE TRIGGER mine AFTER INSERT ON bi_app_s.mine FOR EACH ROW EXECUTE FUNCTION hubsync._track_deal_stage();
INSERT INTO hubspot.deal_stage_history (deal_hubsync_id, stage, entered_at, source)
VALUES ('00000000-0000-0000-0000-000000000001', 'closedwon', now(), 'local');
RESET ROLE;
SELECT h.stage, h.source FROM hubspot.deal_stage_history h JOIN hubspot.deals d ON d.hubsync_id = h.deal_hubsync_id
WHERE d.dealname = 'App' ORDER BY h.entered_at;
SELECT count(*) AS subscription_states FROM hubspot.subscription_history h
JOIN hubspot.subscriptions s ON s.hubsync_id = h.subscription_hubsync_id WHERE s.hs_name = 'App';
-- (even the owner cannot put them on another table)
CREATE TABLE public.deals_lookalike (LIKE hubspot.deals);
CREATE TRIGGER lookalike AFTER INSERT ON public.deals_lookalike FOR EACH ROW EXECUTE FUNCTION hubsync._track_deal_stage();
INSERT INTO public.deals_lookalike (hubsync_id, dealstage, properties) VALUES (gen_random_uuid(), 'closedwon', '{}');
DROP TABLE public.deals_lookalike;

DELETE FROM hubspot.deals;
DELETE FROM hubspot.subscriptions;
DELETE FROM hubspot.invoices;
DROP SCHEMA bi_app_s CASCADE;
DROP OWNED BY bi_app;
DROP ROLE bi_app;
SELECT (SELECT count(*) FROM hubspot.deal_stage_history) AS stage_rows,
       (SELECT count(*) FROM hubspot.subscription_history) AS subscription_rows;
DELETE FROM hubspot.pipeline_stages;
DELETE FROM hubspot.pipelines;
DELETE FROM hubspot.owners;
TRUNCATE hubsync.outbox;
RESET TIME ZONE;
