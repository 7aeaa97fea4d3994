-------------------------------------------------------------------------------
-- Lead enrichment
-------------------------------------------------------------------------------
-- Provider and rule checks, the enrichment triggers, claiming jobs and
-- applying providers' answers.  The request/response contract is in
-- docs/enrichment.md.

CREATE OR REPLACE FUNCTION hubsync._wake_enrich() RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_wake_enrich';
COMMENT ON FUNCTION hubsync._wake_enrich() IS
  'API: private. Wakes the enrich worker when the calling transaction commits';

CREATE OR REPLACE FUNCTION hubsync._enrich_check_condition(cond text) RETURNS void
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'hubsync_enrich_check_condition';
COMMENT ON FUNCTION hubsync._enrich_check_condition(text) IS
  'API: private. Raises an error unless the text is exactly one SQL expression without subqueries';

CREATE OR REPLACE FUNCTION hubsync._enrich_check_endpoint(url text) RETURNS void
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'hubsync_enrich_check_endpoint';
COMMENT ON FUNCTION hubsync._enrich_check_endpoint(text) IS
  'API: private. Raises an error when an endpoint is plain http:// to a host that is not loopback and hubsync.allow_insecure_http is off';

-- Providers: valid JSON paths, and only the owner changes them.
CREATE OR REPLACE FUNCTION hubsync._enrich_check_provider() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	m record;
BEGIN
	PERFORM hubsync._require_owner('change enrichment providers');
	-- the API key travels to the endpoint: never in clear text to another host
	PERFORM hubsync._enrich_check_endpoint(NEW.endpoint);
	FOR m IN SELECT * FROM jsonb_each(NEW.mapping) LOOP
		IF jsonb_typeof(m.value) <> 'string' THEN
			RAISE EXCEPTION 'mapping of property "%" must be a JSON path string', m.key
				USING ERRCODE = 'invalid_parameter_value',
				      HINT = 'Map each HubSpot property to an SQL/JSON path such as "$.person.title".';
		END IF;
		BEGIN
			PERFORM (m.value #>> '{}')::jsonpath;
		EXCEPTION WHEN others THEN
			RAISE EXCEPTION 'mapping of property "%" is not a valid JSON path: %', m.key, m.value #>> '{}'
				USING ERRCODE = 'invalid_parameter_value',
				      HINT = 'Use SQL/JSON path syntax such as "$.person.title".';
		END;
	END LOOP;
	IF NEW.score_path IS NOT NULL THEN
		BEGIN
			PERFORM NEW.score_path::jsonpath;
		EXCEPTION WHEN others THEN
			RAISE EXCEPTION 'score_path is not a valid JSON path: %', NEW.score_path
				USING ERRCODE = 'invalid_parameter_value',
				      HINT = 'Use SQL/JSON path syntax such as "$.confidence".';
		END;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_check_provider() IS
  'API: private. Validates an enrichment provider''s JSON paths; owner only';

-- Stores (or, with NULL, removes) a provider's API key.
CREATE OR REPLACE FUNCTION hubsync.set_enrichment_key(provider text, api_key text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hubsync._require_owner('set enrichment API keys');
	IF NOT EXISTS (SELECT 1 FROM hubsync.enrichment_providers p WHERE p.name = set_enrichment_key.provider) THEN
		RAISE EXCEPTION 'enrichment provider "%" does not exist', set_enrichment_key.provider
			USING ERRCODE = 'undefined_object',
			      HINT = 'Insert it into hubsync.enrichment_providers first.';
	END IF;
	IF api_key IS NULL THEN
		DELETE FROM hubsync._enrichment_keys k WHERE k.provider = set_enrichment_key.provider;
	ELSE
		INSERT INTO hubsync._enrichment_keys AS k (provider, api_key)
		VALUES (set_enrichment_key.provider, set_enrichment_key.api_key)
		ON CONFLICT ON CONSTRAINT _enrichment_keys_pkey
		DO UPDATE SET api_key = EXCLUDED.api_key, updated_at = now();
	END IF;
END
$$;
COMMENT ON FUNCTION hubsync.set_enrichment_key(text, text) IS
  'Stores an enrichment provider''s API key (sent as Authorization: Bearer); NULL removes it; owner only';

-- Rules: only the owner; the condition must be one expression that compiles
-- against the mirror table; fields must be mapped by the provider.
CREATE OR REPLACE FUNCTION hubsync._enrich_check_rule() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	mapping jsonb;
	f text;
BEGIN
	PERFORM hubsync._require_owner('change enrichment rules');
	IF TG_OP = 'DELETE' THEN
		RETURN OLD;
	END IF;
	PERFORM hubsync._enrich_check_condition(NEW.condition);
	PERFORM hubsync._mirror_table(NEW.object_type);
	BEGIN
		EXECUTE format('SELECT (%s)::boolean FROM (SELECT t.* FROM hubspot.%I AS t LIMIT 0) AS t',
		               NEW.condition, NEW.object_type);
	EXCEPTION WHEN others THEN
		RAISE EXCEPTION 'invalid enrichment rule condition: %', SQLERRM
			USING ERRCODE = 'invalid_parameter_value',
			      DETAIL = format('Condition: %s', NEW.condition),
			      HINT = format('The condition must be a boolean expression over the columns of hubspot.%s.', NEW.object_type);
	END;
	SELECT p.mapping INTO mapping FROM hubsync.enrichment_providers p WHERE p.name = NEW.provider;
	FOREACH f IN ARRAY coalesce(NEW.fields, '{}') LOOP
		IF NOT mapping ? f THEN
			RAISE EXCEPTION 'enrichment provider "%" does not map property "%"', NEW.provider, f
				USING ERRCODE = 'invalid_parameter_value',
				      HINT = 'Add it to the provider''s mapping, or leave it out of the rule''s fields.';
		END IF;
	END LOOP;
	NEW.created_by := current_user;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_check_rule() IS
  'API: private. Validates an enrichment rule (owner only, one boolean expression, mapped fields)';

-- The mirror-table trigger (src/enrich_trigger.c): queues a job for every
-- enabled rule whose condition became true (an insert, or an update that
-- made it true) and, for real-time rules, wakes the enrich worker at
-- commit.  Conditions run as the extension owner (they are the owner's
-- code), prepared once per session.
CREATE OR REPLACE FUNCTION hubsync._enrich_enqueue() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'hubsync_enrich_enqueue';
COMMENT ON FUNCTION hubsync._enrich_enqueue() IS
  'API: private. Mirror-table trigger: queues enrichment jobs for rules whose condition became true';

-- Exactly the mirror tables with enabled rules carry the hubsync_enrich
-- trigger, so tables without rules pay nothing.  Called when rules change
-- and by the enrich worker (a restored dump has rules but no triggers).
CREATE OR REPLACE FUNCTION hubsync._enrich_sync_triggers() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t record;
BEGIN
	FOR t IN
		SELECT o.object_type,
		       EXISTS (SELECT 1 FROM hubsync.enrichment_rules r
		               WHERE r.object_type = o.object_type AND r.enabled) AS wanted,
		       EXISTS (SELECT 1 FROM pg_trigger g
		               WHERE g.tgrelid = c.oid AND g.tgname = 'hubsync_enrich') AS present
		FROM hubsync.object_types o
		JOIN pg_class c ON c.relname = o.object_type AND c.relnamespace = 'hubspot'::regnamespace
	LOOP
		IF t.wanted AND NOT t.present THEN
			EXECUTE format('CREATE TRIGGER hubsync_enrich AFTER INSERT OR UPDATE ON hubspot.%I
			                FOR EACH ROW EXECUTE FUNCTION hubsync._enrich_enqueue()', t.object_type);
		ELSIF t.present AND NOT t.wanted THEN
			EXECUTE format('DROP TRIGGER hubsync_enrich ON hubspot.%I', t.object_type);
		END IF;
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_sync_triggers() IS
  'API: private. Adds or drops the hubsync_enrich trigger so exactly the mirror tables with enabled rules have it';

CREATE OR REPLACE FUNCTION hubsync._enrich_rules_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hubsync._enrich_sync_triggers();
	-- every session re-reads the rules of the mirror tables
	PERFORM hubsync._invalidate_mirror(c.oid::regclass)
	FROM hubsync.object_types o
	JOIN pg_class c ON c.relname = o.object_type AND c.relnamespace = 'hubspot'::regnamespace;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_rules_changed() IS
  'API: private. After rules change, keeps the mirror tables'' hubsync_enrich triggers in step';

-- Queues the records that already match a rule (the trigger only sees
-- records as they change).  Returns how many jobs were queued.
CREATE OR REPLACE FUNCTION hubsync.enrich_existing(rule text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	n bigint;
BEGIN
	PERFORM hubsync._require_owner('queue enrichments');
	SELECT * INTO r FROM hubsync.enrichment_rules ru WHERE ru.name = enrich_existing.rule;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'enrichment rule "%" does not exist', enrich_existing.rule
			USING ERRCODE = 'undefined_object';
	END IF;
	EXECUTE format(
		'INSERT INTO hubsync.enrichment_jobs (rule_id, object_type, hubsync_id, lane, provider)
		 SELECT $1, $2, t.hubsync_id, $3, $4 FROM hubspot.%I AS t WHERE (%s)::boolean
		 ON CONFLICT (rule_id, hubsync_id) DO NOTHING', r.object_type, r.condition)
	USING r.id, r.object_type, r.lane, r.provider;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 AND r.lane = 'realtime' THEN
		PERFORM hubsync._wake_enrich();
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION hubsync.enrich_existing(text) IS
  'Queues enrichment of the records that already match a rule; returns how many were queued; owner only';

-- A job (or the jobs of one call) ends: done or failed, with the reason.
CREATE OR REPLACE FUNCTION hubsync._enrich_finish(p_ids bigint[], p_state text, p_error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE hubsync.enrichment_jobs j
	SET state = p_state, finished_at = now(), lease_until = NULL, last_error = p_error
	WHERE j.id = ANY (p_ids) AND j.state = 'in_flight'
$$;
COMMENT ON FUNCTION hubsync._enrich_finish(bigint[], text, text) IS
  'API: private. Marks in-flight enrichment jobs done or failed with a reason';

-- Enrich worker: claim the next provider calls of a lane.  One row per
-- call: the provider's endpoint, key and timeout, the jobs it carries and
-- the request body.  Counts each call against the provider's daily budget;
-- providers out of budget or backing off are skipped (their jobs wait,
-- with the reason in last_error).
CREATE OR REPLACE FUNCTION hubsync._enrich_claim(p_lane text, p_limit integer,
	OUT provider text, OUT endpoint text, OUT api_key text, OUT timeout_ms integer,
	OUT batch boolean, OUT job_ids bigint[], OUT body text)
RETURNS SETOF record
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pv record;
	jr record;
	ids bigint[];
	recs jsonb[];
	i integer;
	today date := (now() AT TIME ZONE 'UTC')::date;
	used integer;
	calls_left integer;
	chunk integer;
	calls integer := 0;
	msg text;
	rec jsonb;
	row_json jsonb;
BEGIN
	-- leases of calls a crashed or restarted worker never finished
	UPDATE hubsync.enrichment_jobs SET state = 'pending', lease_until = NULL
	WHERE state = 'in_flight' AND lease_until < now();

	FOR pv IN
		SELECT p.*, k.api_key AS key, u.blocked_until,
		       CASE WHEN u.day = today THEN u.calls ELSE 0 END AS used_today
		FROM hubsync.enrichment_providers p
		LEFT JOIN hubsync._enrichment_keys k ON k.provider = p.name
		LEFT JOIN hubsync.enrichment_usage u ON u.provider = p.name
		WHERE p.enabled
		  AND EXISTS (SELECT 1 FROM hubsync.enrichment_jobs j
		              WHERE j.provider = p.name AND j.lane = p_lane AND j.state = 'pending'
		                AND j.next_attempt_at <= now())
		ORDER BY p.name
	LOOP
		EXIT WHEN calls >= p_limit;
		CONTINUE WHEN pv.blocked_until > now();
		used := pv.used_today;
		calls_left := CASE WHEN pv.daily_budget = 0 THEN p_limit - calls
		                   ELSE least(pv.daily_budget - used, p_limit - calls) END;
		IF calls_left <= 0 THEN
			IF pv.daily_budget > 0 AND used >= pv.daily_budget THEN
				msg := format('daily budget of provider %s exhausted (%s calls); waiting for the next UTC day',
				              pv.name, pv.daily_budget);
				UPDATE hubsync.enrichment_jobs j SET last_error = msg
				WHERE j.provider = pv.name AND j.lane = p_lane AND j.state = 'pending'
				  AND j.last_error IS DISTINCT FROM msg;
			END IF;
			CONTINUE;
		END IF;
		chunk := CASE WHEN p_lane = 'batch' AND pv.accepts_batch THEN pv.batch_size ELSE 1 END;
		-- this provider will be called: start (or roll over) its day
		INSERT INTO hubsync.enrichment_usage AS u (provider, day) VALUES (pv.name, today)
		ON CONFLICT ON CONSTRAINT enrichment_usage_pkey DO UPDATE
		SET calls = CASE WHEN u.day = today THEN u.calls ELSE 0 END, day = today
		WHERE u.day IS DISTINCT FROM today;

		ids := '{}';
		recs := '{}';
		FOR jr IN
			WITH c AS (
				SELECT j.id FROM hubsync.enrichment_jobs j
				WHERE j.provider = pv.name AND j.lane = p_lane AND j.state = 'pending'
				  AND j.next_attempt_at <= now()
				ORDER BY j.next_attempt_at, j.id
				LIMIT calls_left * chunk
				FOR UPDATE SKIP LOCKED)
			UPDATE hubsync.enrichment_jobs j
			SET state = 'in_flight', attempts = j.attempts + 1,
			    lease_until = now() + make_interval(secs => pv.timeout_ms / 1000.0 + 60)
			FROM c WHERE j.id = c.id
			RETURNING j.id, j.object_type, j.hubsync_id, j.rule_id
		LOOP
			EXECUTE format('SELECT to_jsonb(t) FROM hubspot.%I AS t WHERE t.hubsync_id = $1', jr.object_type)
				INTO row_json USING jr.hubsync_id;
			IF row_json IS NULL THEN
				PERFORM hubsync._enrich_finish(ARRAY[jr.id], 'done', 'record no longer exists');
				CONTINUE;
			END IF;
			SELECT jsonb_build_object(
			         'id', jr.hubsync_id,
			         'object_type', jr.object_type,
			         'properties', (SELECT coalesce(jsonb_object_agg(w.key, w.value), '{}')
			                        FROM jsonb_each(hubsync._wire_row(jr.object_type, row_json)) w
			                        WHERE w.value <> '""'),
			         'fields', to_jsonb(coalesce(r.fields,
			                   ARRAY(SELECT k FROM jsonb_object_keys(pv.mapping) AS k ORDER BY 1))))
			INTO rec
			FROM hubsync.enrichment_rules r WHERE r.id = jr.rule_id;
			ids := ids || jr.id;
			recs := recs || rec;
		END LOOP;

		i := 1;
		WHILE i <= cardinality(ids) LOOP
			provider := pv.name;
			endpoint := pv.endpoint;
			api_key := pv.key;
			timeout_ms := pv.timeout_ms;
			batch := chunk > 1;
			job_ids := ids[i : i + chunk - 1];
			body := CASE WHEN chunk > 1 THEN jsonb_build_object('records', to_jsonb(recs[i : i + chunk - 1]))
			             ELSE jsonb_build_object('record', recs[i]) END::text;
			UPDATE hubsync.enrichment_usage u SET calls = u.calls + 1, last_call_at = now()
			WHERE u.provider = pv.name;
			calls := calls + 1;
			i := i + chunk;
			RETURN NEXT;
		END LOOP;
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_claim(text, integer) IS
  'API: private. Enrich worker: leases the next jobs of a lane and returns the provider calls to make, within budgets and back-off';

-- One job's answer from its provider: check types, apply the data-quality
-- rules, write the mirror with origin 'enrichment' (the capture trigger
-- sends it on to HubSpot), remember the scores, record the change.
CREATE OR REPLACE FUNCTION hubsync._enrich_apply(p_job_id bigint, p_result jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	j record;
	pv record;
	f record;
	m record;
	v_score numeric;
	sv jsonb;
	val jsonb;
	txt text;
	conv text;
	bad text[] := '{}';
	vals jsonb := '{}';
	cur jsonb;
	curv text;
	prev record;
	sets jsonb := '{}';
	v_skipped jsonb := '{}';
	cols jsonb := '{}';
	extras jsonb := '{}';
	setlist text;
BEGIN
	SELECT jj.*, r.fields INTO j
	FROM hubsync.enrichment_jobs jj JOIN hubsync.enrichment_rules r ON r.id = jj.rule_id
	WHERE jj.id = p_job_id AND jj.state = 'in_flight';
	IF NOT FOUND THEN
		RETURN;
	END IF;
	SELECT * INTO pv FROM hubsync.enrichment_providers p WHERE p.name = j.provider;

	IF jsonb_typeof(p_result) IS DISTINCT FROM 'object' THEN
		PERFORM hubsync._enrich_finish(ARRAY[p_job_id], 'failed',
			format('provider %s returned a %s where an object was expected',
			       j.provider, coalesce(jsonb_typeof(p_result), 'nothing')));
		RETURN;
	END IF;

	IF pv.score_path IS NOT NULL THEN
		sv := jsonb_path_query_first(p_result, pv.score_path::jsonpath);
		IF sv IS NOT NULL AND jsonb_typeof(sv) <> 'null' THEN
			IF jsonb_typeof(sv) <> 'number' THEN
				bad := bad || format('score (%s, not a number)', jsonb_typeof(sv));
			ELSE
				v_score := (sv #>> '{}')::numeric;
			END IF;
		END IF;
	END IF;

	FOR f IN SELECT e.key, e.value #>> '{}' AS path FROM jsonb_each(pv.mapping) e
	         WHERE j.fields IS NULL OR e.key = ANY (j.fields) ORDER BY e.key
	LOOP
		val := jsonb_path_query_first(p_result, f.path::jsonpath);
		CONTINUE WHEN val IS NULL OR jsonb_typeof(val) = 'null';
		IF jsonb_typeof(val) NOT IN ('string', 'number', 'boolean') THEN
			bad := bad || format('%s (%s)', f.key, jsonb_typeof(val));
			CONTINUE;
		END IF;
		txt := val #>> '{}';
		CONTINUE WHEN txt = '';
		SELECT pm.column_name, pm.sql_type INTO m FROM hubsync.property_map pm
		WHERE pm.object_type = j.object_type AND pm.property = f.key;
		IF FOUND THEN
			conv := hubsync._wire_to_column(txt, m.sql_type);
			IF conv IS NULL THEN
				bad := bad || format('%s (%s, not a %s)', f.key, jsonb_typeof(val), m.sql_type);
				CONTINUE;
			END IF;
			vals := vals || jsonb_build_object(f.key, jsonb_build_object('col', m.column_name, 'v', conv));
		ELSE
			vals := vals || jsonb_build_object(f.key, jsonb_build_object('v', txt));
		END IF;
	END LOOP;

	IF cardinality(bad) > 0 THEN
		PERFORM hubsync._enrich_finish(ARRAY[p_job_id], 'failed',
			format('provider %s returned wrong types: %s; nothing was written',
			       j.provider, array_to_string(bad, ', ')));
		RETURN;
	END IF;

	EXECUTE format('SELECT to_jsonb(t) FROM hubspot.%I AS t WHERE t.hubsync_id = $1 FOR UPDATE', j.object_type)
		INTO cur USING j.hubsync_id;
	IF cur IS NULL THEN
		UPDATE hubsync.enrichment_jobs SET state = 'done', finished_at = now(), lease_until = NULL,
		       score = v_score, last_error = 'record no longer exists'
		WHERE id = p_job_id;
		RETURN;
	END IF;

	FOR f IN SELECT e.key, e.value ->> 'col' AS col, e.value ->> 'v' AS v FROM jsonb_each(vals) e ORDER BY e.key LOOP
		curv := CASE WHEN f.col IS NOT NULL THEN cur ->> f.col ELSE cur -> 'properties' ->> f.key END;
		IF EXISTS (SELECT 1 FROM hubsync.field_owners o
		           WHERE o.object_type = j.object_type AND o.property = f.key AND o.owner = 'hubspot') THEN
			v_skipped := v_skipped || jsonb_build_object(f.key, 'owned by hubspot');
			CONTINUE;
		END IF;
		IF curv IS NOT NULL AND curv <> '' THEN
			IF curv = f.v THEN
				v_skipped := v_skipped || jsonb_build_object(f.key, 'already has this value');
				UPDATE hubsync.enrichment_scores s SET score = v_score, provider = j.provider, at = now()
				WHERE s.hubsync_id = j.hubsync_id AND s.property = f.key AND s.value = f.v
				  AND v_score > coalesce(s.score, '-infinity');
				CONTINUE;
			END IF;
			IF v_score IS NULL OR v_score < pv.min_score THEN
				v_skipped := v_skipped || jsonb_build_object(f.key,
					format('not empty and score %s is below the minimum %s', coalesce(v_score::text, 'missing'), pv.min_score));
				CONTINUE;
			END IF;
			SELECT s.score, s.provider INTO prev FROM hubsync.enrichment_scores s
			WHERE s.hubsync_id = j.hubsync_id AND s.property = f.key AND s.value = curv;
			IF FOUND AND prev.score IS NOT NULL AND v_score <= prev.score THEN
				v_skipped := v_skipped || jsonb_build_object(f.key,
					format('current value has score %s (%s), not lower than %s', prev.score, prev.provider, v_score));
				CONTINUE;
			END IF;
		END IF;
		sets := sets || jsonb_build_object(f.key, f.v);
		IF f.col IS NOT NULL THEN
			cols := cols || jsonb_build_object(f.col, f.v);
		ELSE
			extras := extras || jsonb_build_object(f.key, f.v);
		END IF;
	END LOOP;

	IF sets <> '{}' THEN
		SELECT string_agg(format('%I = r.%I', c.key, c.key), ', ') INTO setlist FROM jsonb_object_keys(cols) AS c(key);
		IF extras <> '{}' THEN
			setlist := concat_ws(', ', setlist, 'properties = t.properties || $3');
		END IF;
		-- the capture trigger tags the outbox rows with this origin
		PERFORM set_config('hubsync.origin', 'enrichment', true);
		EXECUTE format('UPDATE hubspot.%I AS t SET %s FROM jsonb_populate_record(NULL::hubspot.%I, $1) AS r
		                WHERE t.hubsync_id = $2', j.object_type, setlist, j.object_type)
			USING cols, j.hubsync_id, extras;
		INSERT INTO hubsync.enrichment_scores AS s (hubsync_id, property, object_type, provider, score, value)
		SELECT j.hubsync_id, e.key, j.object_type, j.provider, v_score, e.value #>> '{}'
		FROM jsonb_each(sets) e
		ON CONFLICT ON CONSTRAINT enrichment_scores_pkey DO UPDATE
		SET provider = EXCLUDED.provider, score = EXCLUDED.score, value = EXCLUDED.value, at = now();
		INSERT INTO hubsync.changes (direction, object_type, hubsync_id, hs_object_id, op, origin, properties, provider, score)
		VALUES ('in', j.object_type, j.hubsync_id, (cur ->> 'hs_object_id')::bigint, 'enrich', 'enrichment',
		        sets, j.provider, v_score);
	END IF;
	UPDATE hubsync.enrichment_jobs SET state = 'done', finished_at = now(), lease_until = NULL,
	       score = v_score, applied = sets, skipped = nullif(v_skipped, '{}'),
	       last_error = NULL
	WHERE id = p_job_id;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_apply(bigint, jsonb) IS
  'API: private. Applies one provider answer to the mirror under the data-quality rules (origin enrichment)';

-- Enrich worker: the outcome of one provider call.  429, 5xx, timeouts and
-- transport errors back the provider off (Retry-After, else 1 s doubling
-- to 60 s) and retry the jobs up to hubsync.enrichment_max_attempts; 404
-- is "no match"; other errors and malformed answers fail the jobs with a
-- clear reason.  Never an error: a bad answer must not stop the worker.
CREATE OR REPLACE FUNCTION hubsync._enrich_result(p_job_ids bigint[], p_batch boolean, p_status integer,
	p_body text, p_error text, p_timed_out boolean, p_retry_after integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pv record;
	jr record;
	v jsonb;
	res jsonb;
	by_id jsonb;
	err text;
	nfail integer;
	backoff interval;
	max_attempts integer := current_setting('hubsync.enrichment_max_attempts')::integer;
BEGIN
	SELECT p.* INTO pv FROM hubsync.enrichment_jobs jj
	JOIN hubsync.enrichment_providers p ON p.name = jj.provider
	WHERE jj.id = ANY (p_job_ids) LIMIT 1;
	IF NOT FOUND THEN
		RETURN;					-- jobs or provider removed meanwhile
	END IF;

	IF p_status = 0 OR p_status = 429 OR p_status >= 500 THEN
		err := CASE
			WHEN p_timed_out THEN format('provider %s timed out after %s ms', pv.name, pv.timeout_ms)
			WHEN p_status = 0 THEN format('provider %s unreachable: %s', pv.name, p_error)
			WHEN p_status = 429 THEN format('provider %s is rate limiting (HTTP 429)', pv.name)
			ELSE format('provider %s failed (HTTP %s)', pv.name, p_status) END;
		UPDATE hubsync.enrichment_usage u SET failures = u.failures + 1, last_status = p_status, last_error = err
		WHERE u.provider = pv.name RETURNING u.failures INTO nfail;
		backoff := CASE WHEN p_retry_after > 0 THEN make_interval(secs => least(p_retry_after, 3600))
		                ELSE make_interval(secs => least(2 ^ least(coalesce(nfail, 1) - 1, 6), 60)) END;
		UPDATE hubsync.enrichment_usage u SET blocked_until = now() + backoff WHERE u.provider = pv.name;
		UPDATE hubsync.enrichment_jobs j
		SET state = CASE WHEN j.attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
		    finished_at = CASE WHEN j.attempts >= max_attempts THEN now() END,
		    next_attempt_at = now() + backoff, lease_until = NULL,
		    last_status = p_status,
		    last_error = CASE WHEN j.attempts >= max_attempts
		                      THEN format('%s; gave up after %s attempts', err, j.attempts)
		                      ELSE format('%s; retrying', err) END
		WHERE j.id = ANY (p_job_ids) AND j.state = 'in_flight';
		RETURN;
	END IF;

	UPDATE hubsync.enrichment_usage u SET failures = 0, blocked_until = NULL, last_status = p_status, last_error = NULL
	WHERE u.provider = pv.name;
	UPDATE hubsync.enrichment_jobs j SET last_status = p_status WHERE j.id = ANY (p_job_ids);

	IF p_status = 404 AND NOT p_batch THEN
		PERFORM hubsync._enrich_finish(p_job_ids, 'done', format('provider %s has no match', pv.name));
		RETURN;
	END IF;
	IF p_status < 200 OR p_status >= 300 THEN
		err := format('provider %s refused the request (HTTP %s)', pv.name, p_status);
		UPDATE hubsync.enrichment_usage u SET last_error = err WHERE u.provider = pv.name;
		PERFORM hubsync._enrich_finish(p_job_ids, 'failed', err);
		RETURN;
	END IF;

	BEGIN
		v := p_body::jsonb;
	EXCEPTION WHEN others THEN
		v := NULL;
	END;
	IF v IS NULL OR (p_batch AND jsonb_typeof(v -> 'results') IS DISTINCT FROM 'array') THEN
		err := CASE WHEN v IS NULL
		            THEN format('provider %s returned malformed JSON (%s bytes); nothing was written',
		                        pv.name, coalesce(octet_length(p_body), 0))
		            ELSE format('provider %s returned no "results" array for a batch; nothing was written', pv.name) END;
		UPDATE hubsync.enrichment_usage u SET last_error = err WHERE u.provider = pv.name;
		PERFORM hubsync._enrich_finish(p_job_ids, 'failed', err);
		RETURN;
	END IF;

	IF p_batch THEN
		SELECT jsonb_object_agg(e ->> 'id', e) INTO by_id
		FROM jsonb_array_elements(v -> 'results') e WHERE e ->> 'id' IS NOT NULL;
	END IF;
	FOR jr IN SELECT jj.id, jj.hubsync_id FROM hubsync.enrichment_jobs jj
	         WHERE jj.id = ANY (p_job_ids) AND jj.state = 'in_flight' ORDER BY jj.id
	LOOP
		IF p_batch THEN
			res := by_id -> jr.hubsync_id::text;
			IF res IS NULL THEN
				PERFORM hubsync._enrich_finish(ARRAY[jr.id], 'done', format('provider %s has no match', pv.name));
				CONTINUE;
			END IF;
		ELSE
			res := v;
		END IF;
		BEGIN
			PERFORM hubsync._enrich_apply(jr.id, res);
		EXCEPTION WHEN others THEN
			PERFORM hubsync._enrich_finish(ARRAY[jr.id], 'failed',
				format('could not apply the answer of provider %s: %s', pv.name, SQLERRM));
		END;
	END LOOP;
END
$$;
COMMENT ON FUNCTION hubsync._enrich_result(bigint[], boolean, integer, text, text, boolean, integer) IS
  'API: private. Enrich worker: records the outcome of one provider call (retry, back-off, failure or apply)';

-- Sends failed enrichment jobs again (all, or those of one provider).
CREATE OR REPLACE FUNCTION hubsync.retry_enrichments(provider text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM hubsync._require_owner('retry enrichments');
	UPDATE hubsync.enrichment_jobs j
	SET state = 'pending', attempts = 0, next_attempt_at = now(), finished_at = NULL, last_error = NULL
	WHERE j.state = 'failed'
	  AND (retry_enrichments.provider IS NULL OR j.provider = retry_enrichments.provider);
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		PERFORM hubsync._wake_enrich();
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION hubsync.retry_enrichments(text) IS
  'Queues failed enrichment jobs again (all, or one provider''s); returns how many; owner only';
