-------------------------------------------------------------------------------
-- Testing
-------------------------------------------------------------------------------
-- Functions for the tests and the fuzzers only (executable by the owner
-- alone): they run the shipped code on made-up input.

CREATE OR REPLACE FUNCTION hubsync._parse_probe(kind text, body bytea, status integer DEFAULT 200)
RETURNS text
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_parse_probe';
COMMENT ON FUNCTION hubsync._parse_probe(text, bytea, integer) IS
  'API: private, for tests/fuzzing. Runs one untrusted body through the very functions the receiver and workers run on it (webhook checks and dedupe key, push results and 207s, pages, batch and association reads, OAuth and enrichment answers) and returns a short summary; writes in the caller''s transaction, to be rolled back';
