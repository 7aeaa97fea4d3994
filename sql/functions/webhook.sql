-------------------------------------------------------------------------------
-- Webhook receiver
-------------------------------------------------------------------------------
-- Storing signed HubSpot webhook deliveries, and the receiver's counters.

CREATE OR REPLACE FUNCTION hubsync.ingest_webhook(method text, uri text, body text,
	signature_v3 text, request_timestamp text)
RETURNS integer
LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'hubsync_ingest_webhook';
COMMENT ON FUNCTION hubsync.ingest_webhook(text, text, text, text, text) IS
  'Checks a HubSpot webhook delivery (v3 signature, timestamp, size, JSON) exactly as the embedded receiver does and stores its events in hubsync.inbox; returns the number of new events';

CREATE OR REPLACE FUNCTION hubsync._webhook_signature(version integer, secret text, method text,
	uri text, body text, request_timestamp text DEFAULT NULL)
RETURNS text
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_webhook_signature';
COMMENT ON FUNCTION hubsync._webhook_signature(integer, text, text, text, text, text) IS
  'API: private. HubSpot request signature v1, v2 or v3 (the receiver''s code), for tests and tools';

CREATE OR REPLACE FUNCTION hubsync.webhook_counters(OUT counter text, OUT value bigint)
RETURNS SETOF record
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_webhook_counters';
COMMENT ON FUNCTION hubsync.webhook_counters() IS
  'Counters of the webhook receiver and the inbox processor since server start: deliveries, events stored, duplicates, refusals by reason, events applied, skipped and failed';
