-- wire: mirror values as HubSpot wire strings (what the push sends)

INSERT INTO hubspot.deals (hubsync_id, dealname, amount, closedate, properties)
VALUES ('00000000-0000-0000-0000-0000000000d1', 'Acme', 1234.50,
        '2025-06-30 14:00:00.123+02',
        '{"n": 12.50, "flag": true, "obj": {"a": 1}, "nul": null, "s": "x", "dealname": "shadowed"}');
INSERT INTO hubspot.invoices (hubsync_id, hs_due_date, hs_amount_billed)
VALUES ('00000000-0000-0000-0000-0000000000e1', '2025-07-01', -0.000001);

-- numeric as its decimal text, timestamptz as ISO 8601 UTC with ms, date
-- as YYYY-MM-DD, NULL as '', typed columns win over a properties key
SELECT jsonb_pretty(hubsync._wire_row('deals', to_jsonb(d))) FROM hubspot.deals d;
SELECT hubsync._wire_row('invoices', to_jsonb(i)) ->> 'hs_due_date' AS due,
       hubsync._wire_row('invoices', to_jsonb(i)) ->> 'hs_amount_billed' AS billed
FROM hubspot.invoices i;

-- the same in another session time zone
SET TIME ZONE 'America/New_York';
SELECT hubsync._wire_row('deals', to_jsonb(d)) ->> 'closedate' AS closedate FROM hubspot.deals d;
RESET TIME ZONE;

-- the typed-column cache follows schema changes
ALTER TABLE hubspot.deals ADD COLUMN scratch int;
SELECT hubsync._wire_row('deals', to_jsonb(d)) ->> 'amount' AS amount FROM hubspot.deals d;
ALTER TABLE hubspot.deals DROP COLUMN scratch;

-- what a push sends: changed properties only, without values HubSpot has
SELECT hubsync._props_to_send('{"a": "1", "b": "", "c": "3"}', '{b,c,gone}', '{"c": "3"}', false);
-- a create: every non-empty value, and the changed ones even when empty
SELECT hubsync._props_to_send('{"a": "1", "b": "", "c": "3"}', '{b}', '{}', true);
-- nothing left to send
SELECT hubsync._props_to_send('{"a": "1"}', '{a}', '{"a": "1"}', false);
-- properties HubSpot maintains itself (read back into the row) are never sent
SELECT hubsync._props_to_send('{"firstname": "Ann", "lastmodifieddate": "2026-01-01T00:00:00.000Z", "hs_object_id": "5"}',
	'{lastmodifieddate,hs_merged_object_ids}', '{}', true);

DELETE FROM hubspot.deals;
DELETE FROM hubspot.invoices;
TRUNCATE hubsync.outbox;
