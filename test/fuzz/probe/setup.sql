-- probe/setup.sql -- the database the probe fuzzer and its replay
-- (test/t/096_fuzz_regress.pl) run against: three mirrored contacts
-- (HubSpot ids 101-103, the records probe_push and probe_assoc name), a
-- company and a local association to find changed, and an enrichment
-- provider whose jobs for the three contacts are in flight.  Every probe
-- call is rolled back, so this stays as it is.
CREATE EXTENSION IF NOT EXISTS hubsync;
SELECT hubsync.set_credentials(access_token => 'fuzz-token', client_secret => 'hubsync-fuzz-secret');
INSERT INTO hubspot.contacts (hubsync_id, email, hs_object_id, jobtitle) VALUES
	('00000000-0000-0000-0000-000000000001', 'one@example.com', 101, NULL),
	('00000000-0000-0000-0000-000000000002', 'two@example.com', 102, 'CEO'),
	('00000000-0000-0000-0000-000000000003', 'three@example.com', 103, NULL);
INSERT INTO hubspot.companies (name, hs_object_id) VALUES ('Acme', 9001);
INSERT INTO hubspot.associations (from_type, from_id, to_type, to_id, type_id)
	VALUES ('contacts', 102, 'companies', 9002, 1);
INSERT INTO hubsync.enrichment_providers
	(name, endpoint, mapping, score_path, min_score, accepts_batch, batch_size)
	VALUES ('fuzzco', 'http://127.0.0.1:9/enrich',
	        '{"jobtitle": "$.person.title", "company": "$.person.employer.name", "website": "$.person.employer.domain", "hs_linkedin_url": "$.person.linkedin"}',
	        '$.confidence', 0.5, true, 10);
INSERT INTO hubsync.enrichment_rules (name, object_type, condition, lane, provider)
	VALUES ('fuzz', 'contacts', 'false', 'batch', 'fuzzco');
INSERT INTO hubsync.enrichment_jobs (rule_id, object_type, hubsync_id, lane, provider, state, attempts)
	SELECT r.id, 'contacts', c.hubsync_id, 'batch', 'fuzzco', 'in_flight', 1
	FROM hubsync.enrichment_rules r, hubspot.contacts c;
