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

-- bodies that pass JSON syntax but cannot become jsonb (a number beyond
-- numeric's range, nesting deeper than the stack allows, a \u0000 escape)
-- are refused as malformed, never an internal error, and store nothing
SELECT repeat('[', 200000) || repeat(']', 200000) AS deep \gset
SELECT outcome, detail FROM pg_temp.try('POST', :'url', '[{"subscriptionType":"deal.creation","occurredAt":1e999999}]',
	pg_temp.sign(:'url', '[{"subscriptionType":"deal.creation","occurredAt":1e999999}]', :'now_ms'), :'now_ms');
SELECT outcome, detail FROM pg_temp.try('POST', :'url', :'deep', pg_temp.sign(:'url', :'deep', :'now_ms'), :'now_ms');
SELECT outcome, detail FROM pg_temp.try('POST', :'url', '[{"subscriptionType":"deal.creation","occurredAt":1,"x":"a\u0000b"}]',
	pg_temp.sign(:'url', '[{"subscriptionType":"deal.creation","occurredAt":1,"x":"a\u0000b"}]', :'now_ms'), :'now_ms');
SELECT count(*) AS stored FROM hubsync.inbox;

-- the receiver fills the typed columns from each event; the dedupe key is
-- the sha256 of the composite key that 0.1.0 computed in SQL, so a
-- duplicate of an event stored before an upgrade is still recognised
SELECT '[{"eventId":11,"subscriptionId":8,"portalId":62515,"appId":54321,"occurredAt":1735689600001,"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":512,"propertyName":"dealname","propertyValue":"José \"Big\" deal","changeSource":"CRM_UI","sourceId":"userId:7"},{"eventId":12,"subscriptionId":9,"portalId":62515,"occurredAt":1735689600002,"subscriptionType":"object.propertyChange","objectTypeId":"0-3","objectId":513,"propertyName":"amount","propertyValue":"","changeSource":"API","sourceId":"54321","isSensitive":false},{"eventId":13,"subscriptionId":10,"portalId":62515,"occurredAt":1735689600003,"subscriptionType":"contact.associationChange","fromObjectId":77,"toObjectId":78,"associationType":"CONTACT_TO_COMPANY","associationRemoved":true,"isPrimaryAssociation":false,"objectId":null,"extra":{"a":[1,2]}}]' AS mixed \gset
SELECT * FROM pg_temp.try('POST', :'url', :'mixed', pg_temp.sign(:'url', :'mixed', :'now_ms'), :'now_ms');
SELECT subscription_type, object_type_id, object_id, occurred_at, property_name,
       property_value, change_source, source_id
FROM hubsync.inbox WHERE (event ->> 'eventId')::int > 10 ORDER BY occurred_at;
SELECT event ->> 'eventId' AS event_id,
       dedupe_key = sha256(convert_to(concat_ws(chr(31),
           event->>'subscriptionId', event->>'objectId', event->>'occurredAt', event->>'propertyName',
           event->>'propertyValue', event->>'eventId', event->>'fromObjectId', event->>'toObjectId',
           event->>'associationType', event->>'associationRemoved', event->>'subscriptionType',
           event->>'objectTypeId'), 'UTF8')) AS key_as_in_0_1_0,
       octet_length(dedupe_key) AS key_bytes
FROM hubsync.inbox WHERE (event ->> 'eventId')::int > 10 ORDER BY occurred_at;
-- the same events again, reordered inside the delivery: all duplicates
SELECT jsonb_agg(e ORDER BY e ->> 'eventId' DESC)::text AS again FROM jsonb_array_elements(:'mixed'::jsonb) e \gset
SELECT * FROM pg_temp.try('POST', :'url', :'again', pg_temp.sign(:'url', :'again', :'now_ms'), :'now_ms');
