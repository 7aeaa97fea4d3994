-- hubsync.ingest_webhook: every refusal is a clear error (SQLSTATE, HTTP
-- status in the detail, a hint) and stores nothing.  Signatures are made
-- with hubsync._webhook_signature (the receiver's own code); the first TAP
-- tests check that code against HubSpot's published vectors.

SELECT hubsync.set_credentials(client_secret => 'regress-webhook-secret');
SET hubsync.webhook_max_age = 300;

-- try -- call ingest_webhook; the outcome, or the error's parts
CREATE FUNCTION pg_temp.try(p_method text, p_uri text, p_body text, p_sig text, p_ts text)
RETURNS TABLE (outcome text, detail text, hint text)
LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
BEGIN
	outcome := 'stored ' || hubsync.ingest_webhook(p_method, p_uri, p_body, p_sig, p_ts);
	RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	outcome := st || ': ' || msg;
	RETURN NEXT;
END
$$;

-- sign -- the v3 signature of a POST of p_body to p_uri at p_ts
CREATE FUNCTION pg_temp.sign(p_uri text, p_body text, p_ts text) RETURNS text
LANGUAGE sql AS $$
	SELECT hubsync._webhook_signature(3, 'regress-webhook-secret', 'POST', p_uri, p_body, p_ts)
$$;

\set url 'https://example.com/hubspot/webhooks'
\set good '[{"eventId":1,"subscriptionId":7,"portalId":62515,"occurredAt":1735689600000,"subscriptionType":"conversation.newMessage","objectId":5}]'
SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint::text AS now_ms,
       ((extract(epoch FROM clock_timestamp()) - 600) * 1000)::bigint::text AS stale_ms,
       ((extract(epoch FROM clock_timestamp()) + 600) * 1000)::bigint::text AS future_ms
\gset

\x on
-- NULL arguments
SELECT * FROM pg_temp.try('POST', NULL, :'good', pg_temp.sign(:'url', :'good', :'now_ms'), :'now_ms');
SELECT * FROM pg_temp.try('POST', :'url', NULL, pg_temp.sign(:'url', :'good', :'now_ms'), :'now_ms');
SELECT * FROM pg_temp.try(NULL, :'url', :'good', pg_temp.sign(:'url', :'good', :'now_ms'), :'now_ms');
SELECT * FROM pg_temp.try('POST', :'url', :'good', NULL, :'now_ms');
SELECT * FROM pg_temp.try('POST', :'url', :'good', pg_temp.sign(:'url', :'good', :'now_ms'), NULL);

-- wrong method
SELECT * FROM pg_temp.try('GET', :'url', :'good', pg_temp.sign(:'url', :'good', :'now_ms'), :'now_ms');

-- wrong path: not a URL at all, or a path other than the one signed
SELECT * FROM pg_temp.try('POST', '/hubspot/webhooks', :'good', pg_temp.sign(:'url', :'good', :'now_ms'), :'now_ms');
SELECT * FROM pg_temp.try('POST', 'https://example.com/other/path', :'good', pg_temp.sign(:'url', :'good', :'now_ms'), :'now_ms');

-- bad signature: tampered body, another secret, garbage
SELECT * FROM pg_temp.try('POST', :'url', replace(:'good', '"objectId":5', '"objectId":6'), pg_temp.sign(:'url', :'good', :'now_ms'), :'now_ms');
SELECT * FROM pg_temp.try('POST', :'url', :'good', hubsync._webhook_signature(3, 'another-secret', 'POST', :'url', :'good', :'now_ms'), :'now_ms');
SELECT * FROM pg_temp.try('POST', :'url', :'good', 'not-base64!', :'now_ms');

-- stale and future timestamps, a malformed one
SELECT * FROM pg_temp.try('POST', :'url', :'good', pg_temp.sign(:'url', :'good', :'stale_ms'), :'stale_ms');
SELECT * FROM pg_temp.try('POST', :'url', :'good', pg_temp.sign(:'url', :'good', :'future_ms'), :'future_ms');
SELECT * FROM pg_temp.try('POST', :'url', :'good', pg_temp.sign(:'url', :'good', 'yesterday'), 'yesterday');

-- malformed JSON, JSON that is not an array, an event missing its fields
SELECT * FROM pg_temp.try('POST', :'url', '[{"eventId":1,', pg_temp.sign(:'url', '[{"eventId":1,', :'now_ms'), :'now_ms');
SELECT * FROM pg_temp.try('POST', :'url', '{"eventId":1}', pg_temp.sign(:'url', '{"eventId":1}', :'now_ms'), :'now_ms');
SELECT * FROM pg_temp.try('POST', :'url', '[{"objectId":5}]', pg_temp.sign(:'url', '[{"objectId":5}]', :'now_ms'), :'now_ms');
SELECT * FROM pg_temp.try('POST', :'url', '[{"subscriptionType":"deal.creation","occurredAt":1,"objectId":"five"}]',
	pg_temp.sign(:'url', '[{"subscriptionType":"deal.creation","occurredAt":1,"objectId":"five"}]', :'now_ms'), :'now_ms');
\x off

-- nothing of the above was stored
SELECT count(*) AS stored FROM hubsync.inbox;

-- the same harness accepts a good delivery, once
SELECT * FROM pg_temp.try('POST', :'url', :'good', pg_temp.sign(:'url', :'good', :'now_ms'), :'now_ms');
SELECT * FROM pg_temp.try('POST', :'url', :'good', pg_temp.sign(:'url', :'good', :'now_ms'), :'now_ms');
SELECT count(*) AS stored FROM hubsync.inbox;
