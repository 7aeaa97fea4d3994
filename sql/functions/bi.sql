-------------------------------------------------------------------------------
-- BI model (issue 22)
-------------------------------------------------------------------------------
-- Storing what the pull worker reads from HubSpot's owners and pipelines
-- APIs (src/pull/metadata_sync.c) and from property history after a
-- backfill (src/pull/stage_history.c), and the triggers that keep
-- hubspot.deal_stage_history and hubspot.subscription_history current.

-- Asks the pull worker to copy owners and pipelines from HubSpot now.
CREATE OR REPLACE FUNCTION hubsync.refresh_metadata() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM hubsync._require_owner('refresh owners and pipelines');
	INSERT INTO hubsync.metadata_sync AS m (singleton, requested_at) VALUES (true, pg_catalog.now())
	ON CONFLICT (singleton) DO UPDATE SET requested_at = pg_catalog.now();
	PERFORM hubsync._wake_workers();
END
$$;
COMMENT ON FUNCTION hubsync.refresh_metadata() IS
  'Asks the pull worker to copy owners, pipelines and stages from HubSpot now (it also does on start and every hubsync.metadata_refresh_interval); the result is in hubsync.metadata_sync';

-- The object types whose pipelines are copied: deals, tickets and every
-- object type tracked with hubsync.track_object() (a type without
-- pipelines gets an error answer, which is skipped).
CREATE OR REPLACE FUNCTION hubsync._metadata_types() RETURNS TABLE (object_type text, api_name text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT t.object_type, t.api_name FROM hubsync.object_types t
	WHERE t.object_type IN ('deals', 'tickets') OR NOT t.builtin
	ORDER BY t.object_type
$$;
COMMENT ON FUNCTION hubsync._metadata_types() IS
  'API: private. Object types whose pipelines the pull worker copies (deals, tickets and tracked types)';

-- Whether a copy is due: asked for, never done, or older than the
-- interval (seconds; 0 = only on start and on request).
CREATE OR REPLACE FUNCTION hubsync._metadata_due(p_interval integer, p_first boolean) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT p_first
	    OR NOT EXISTS (SELECT 1 FROM hubsync.metadata_sync m WHERE m.synced_at IS NOT NULL)
	    OR EXISTS (SELECT 1 FROM hubsync.metadata_sync m
	               WHERE m.requested_at IS NOT NULL
	                  OR (p_interval > 0 AND m.synced_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_interval)))
$$;
COMMENT ON FUNCTION hubsync._metadata_due(integer, boolean) IS
  'API: private. Whether the pull worker should copy owners and pipelines now';

-- One page of owners (the results array of GET owners).
CREATE OR REPLACE FUNCTION hubsync._metadata_store_owners(p_results jsonb) RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	WITH ins AS (
		INSERT INTO hubspot.owners AS o (owner_id, email, first_name, last_name, user_id, teams,
		                                 archived, created_at, updated_at, synced_at)
		SELECT r ->> 'id', r ->> 'email', r ->> 'firstName', r ->> 'lastName', (r ->> 'userId')::bigint,
		       coalesce(r -> 'teams', '[]'), coalesce((r ->> 'archived')::boolean, false),
		       (r ->> 'createdAt')::timestamptz, (r ->> 'updatedAt')::timestamptz, pg_catalog.now()
		FROM jsonb_array_elements(coalesce(p_results, '[]')) r
		WHERE r ->> 'id' IS NOT NULL
		ON CONFLICT (owner_id) DO UPDATE
		SET email = EXCLUDED.email, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
		    user_id = EXCLUDED.user_id, teams = EXCLUDED.teams, archived = EXCLUDED.archived,
		    created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, synced_at = EXCLUDED.synced_at
		RETURNING 1)
	SELECT count(*)::integer FROM ins
$$;
COMMENT ON FUNCTION hubsync._metadata_store_owners(jsonb) IS
  'API: private. Stores one page of HubSpot owners';

-- The whole pipelines answer of one object type: pipelines and stages
-- upserted; those no longer listed are kept and flagged archived.
-- Returns the number of stages read.
CREATE OR REPLACE FUNCTION hubsync._metadata_store_pipelines(p_object_type text, p_results jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_stages integer;
BEGIN
	INSERT INTO hubspot.pipelines AS p (object_type, pipeline_id, label, display_order, archived,
	                                    created_at, updated_at, synced_at)
	SELECT p_object_type, r ->> 'id', r ->> 'label', (r ->> 'displayOrder')::integer,
	       coalesce((r ->> 'archived')::boolean, false),
	       (r ->> 'createdAt')::timestamptz, (r ->> 'updatedAt')::timestamptz, pg_catalog.now()
	FROM jsonb_array_elements(coalesce(p_results, '[]')) r
	WHERE r ->> 'id' IS NOT NULL
	ON CONFLICT (object_type, pipeline_id) DO UPDATE
	SET label = EXCLUDED.label, display_order = EXCLUDED.display_order, archived = EXCLUDED.archived,
	    created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, synced_at = EXCLUDED.synced_at;

	WITH ins AS (
		INSERT INTO hubspot.pipeline_stages AS s (object_type, pipeline_id, stage_id, label, display_order,
		                                          probability, closed, archived, metadata,
		                                          created_at, updated_at, synced_at)
		SELECT p_object_type, r ->> 'id', st ->> 'id', st ->> 'label', (st ->> 'displayOrder')::integer,
		       CASE WHEN (st -> 'metadata' ->> 'probability') ~ '^\s*[0-9]*\.?[0-9]+\s*$'
		            THEN (st -> 'metadata' ->> 'probability')::numeric END,
		       coalesce(lower(st -> 'metadata' ->> 'isClosed') = 'true'
		                OR upper(st -> 'metadata' ->> 'ticketState') = 'CLOSED', false),
		       coalesce((r ->> 'archived')::boolean, false) OR coalesce((st ->> 'archived')::boolean, false),
		       coalesce(st -> 'metadata', '{}'),
		       (st ->> 'createdAt')::timestamptz, (st ->> 'updatedAt')::timestamptz, pg_catalog.now()
		FROM jsonb_array_elements(coalesce(p_results, '[]')) r,
		     jsonb_array_elements(coalesce(r -> 'stages', '[]')) st
		WHERE r ->> 'id' IS NOT NULL AND st ->> 'id' IS NOT NULL
		ON CONFLICT (object_type, pipeline_id, stage_id) DO UPDATE
		SET label = EXCLUDED.label, display_order = EXCLUDED.display_order,
		    probability = EXCLUDED.probability, closed = EXCLUDED.closed, archived = EXCLUDED.archived,
		    metadata = EXCLUDED.metadata, created_at = EXCLUDED.created_at,
		    updated_at = EXCLUDED.updated_at, synced_at = EXCLUDED.synced_at
		RETURNING 1)
	SELECT count(*)::integer INTO v_stages FROM ins;

	-- no longer listed: archived (kept, so that history still has labels)
	UPDATE hubspot.pipelines p SET archived = true
	WHERE p.object_type = p_object_type AND NOT p.archived
	  AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_results, '[]')) r
	                  WHERE r ->> 'id' = p.pipeline_id);
	UPDATE hubspot.pipeline_stages s SET archived = true
	WHERE s.object_type = p_object_type AND NOT s.archived
	  AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(p_results, '[]')) r,
	                                jsonb_array_elements(coalesce(r -> 'stages', '[]')) st
	                  WHERE r ->> 'id' = s.pipeline_id AND st ->> 'id' = s.stage_id);
	RETURN v_stages;
END
$$;
COMMENT ON FUNCTION hubsync._metadata_store_pipelines(text, jsonb) IS
  'API: private. Stores the pipelines and stages of one object type; those no longer listed are flagged archived';

-- The end of a copy: owners not listed by a complete copy are flagged
-- archived; the request it answered is cleared.
CREATE OR REPLACE FUNCTION hubsync._metadata_finish(p_started timestamptz, p_owners integer,
	p_pipelines integer, p_stages integer, p_error text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF p_error IS NULL THEN
		UPDATE hubspot.owners o SET archived = true WHERE o.synced_at < p_started AND NOT o.archived;
	END IF;
	INSERT INTO hubsync.metadata_sync AS m (singleton, synced_at, owners, pipelines, stages, last_error)
	VALUES (true, CASE WHEN p_error IS NULL THEN pg_catalog.now() END, p_owners, p_pipelines, p_stages, p_error)
	ON CONFLICT (singleton) DO UPDATE
	SET synced_at = CASE WHEN p_error IS NULL THEN pg_catalog.now() ELSE m.synced_at END,
	    owners = CASE WHEN p_error IS NULL THEN p_owners ELSE m.owners END,
	    pipelines = CASE WHEN p_error IS NULL THEN p_pipelines ELSE m.pipelines END,
	    stages = CASE WHEN p_error IS NULL THEN p_stages ELSE m.stages END,
	    last_error = p_error,
	    requested_at = CASE WHEN m.requested_at <= p_started THEN NULL ELSE m.requested_at END;
END
$$;
COMMENT ON FUNCTION hubsync._metadata_finish(timestamptz, integer, integer, integer, text) IS
  'API: private. Records the end of an owners and pipelines copy';

-------------------------------------------------------------------------------
-- Stage and subscription history
-------------------------------------------------------------------------------

-- When a change recorded now happened.  From HubSpot: the event's
-- occurredAt (a property change applied alone sets it for the duration of
-- its UPDATE), else the record's new updatedAt (a whole record applied),
-- else the version hubsync.sync_state holds for the property when it
-- holds HubSpot's new value (property changes applied together: that
-- UPDATE is in the statement that updates sync_state), else now.  A
-- local change: now (clock time, so that changes in one transaction keep
-- their order).
CREATE OR REPLACE FUNCTION hubsync._history_time(p_remote boolean, p_hid uuid, p_props text[],
	p_values text[], p_new_updated timestamptz, p_old_updated timestamptz, p_insert boolean)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_ms text := nullif(pg_catalog.current_setting('hubsync_apply.occurred_ms', true), '');
	v_at timestamptz;
BEGIN
	IF NOT p_remote THEN
		RETURN pg_catalog.clock_timestamp();
	END IF;
	IF v_ms ~ '^[0-9]{1,15}$' THEN
		RETURN pg_catalog.to_timestamp(v_ms::numeric / 1000);
	END IF;
	IF p_new_updated IS NOT NULL AND (p_insert OR p_new_updated IS DISTINCT FROM p_old_updated) THEN
		RETURN p_new_updated;
	END IF;
	SELECT pg_catalog.to_timestamp(max((s.versions ->> k.name)::numeric) / 1000) INTO v_at
	FROM hubsync.sync_state s, unnest(p_props, p_values) k(name, value)
	WHERE s.hubsync_id = p_hid AND (s.versions ->> k.name) ~ '^[0-9]{1,15}$'
	  AND (k.value IS NULL OR s.remote ->> k.name = k.value);
	RETURN coalesce(v_at, pg_catalog.clock_timestamp());
END
$$;
COMMENT ON FUNCTION hubsync._history_time(boolean, uuid, text[], text[], timestamptz, timestamptz, boolean) IS
  'API: private. The time a stage or subscription change is recorded with';

-- Whether a history trigger should stay out: a pg_restore by a role that
-- owns the table brings the history tables back with their rows.
CREATE OR REPLACE FUNCTION hubsync._history_restoring(p_rel oid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT pg_catalog.current_setting('application_name') = 'pg_restore'
	   AND pg_catalog.pg_has_role(session_user, (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = p_rel), 'USAGE')
$$;
COMMENT ON FUNCTION hubsync._history_restoring(oid) IS
  'API: private. Whether a pg_restore by the table''s owner is writing the table';

-- AFTER trigger of hubspot.deals: each new dealstage closes the open row
-- of hubspot.deal_stage_history and opens one.  SECURITY DEFINER (the
-- application may write deals, not the history); accepts hubspot.deals only.
CREATE OR REPLACE FUNCTION hubsync._track_deal_stage() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_remote boolean;
	v_at timestamptz;
	v_open record;
	v_found boolean;
BEGIN
	IF TG_RELID OPERATOR(pg_catalog.<>) 'hubspot.deals'::regclass::oid THEN
		RAISE EXCEPTION 'hubsync._track_deal_stage() is the trigger of hubspot.deals only'
			USING ERRCODE = 'feature_not_supported';
	END IF;
	-- most updates change neither the stage nor the id: nothing to do
	IF TG_OP = 'UPDATE' AND NEW.dealstage IS NOT DISTINCT FROM OLD.dealstage
	   AND NEW.pipeline IS NOT DISTINCT FROM OLD.pipeline
	   AND NEW.hs_object_id IS NOT DISTINCT FROM OLD.hs_object_id THEN
		RETURN NULL;
	END IF;
	IF hubsync._history_restoring(TG_RELID) THEN
		RETURN NULL;
	END IF;
	v_remote := hubsync._applying_remote();
	IF TG_OP = 'DELETE' THEN
		DELETE FROM hubspot.deal_stage_history h WHERE h.deal_hubsync_id = OLD.hubsync_id;
		RETURN NULL;
	END IF;
	IF TG_OP = 'UPDATE' AND NEW.hs_object_id IS DISTINCT FROM OLD.hs_object_id THEN
		UPDATE hubspot.deal_stage_history h SET deal_id = NEW.hs_object_id
		WHERE h.deal_hubsync_id = NEW.hubsync_id;
	END IF;
	IF NEW.dealstage IS NULL OR NEW.dealstage = ''
	   OR (TG_OP = 'UPDATE' AND NEW.dealstage IS NOT DISTINCT FROM OLD.dealstage
	       AND NEW.pipeline IS NOT DISTINCT FROM OLD.pipeline) THEN
		RETURN NULL;
	END IF;
	SELECT h.id, h.stage, h.pipeline, h.entered_at INTO v_open
	FROM hubspot.deal_stage_history h
	WHERE h.deal_hubsync_id = NEW.hubsync_id AND h.exited_at IS NULL
	ORDER BY h.entered_at DESC, h.id DESC LIMIT 1;
	IF FOUND AND v_open.stage = NEW.dealstage THEN
		-- the same stage (a pipeline change alone, or a record read again)
		IF v_open.pipeline IS DISTINCT FROM NEW.pipeline THEN
			UPDATE hubspot.deal_stage_history h SET pipeline = NEW.pipeline WHERE h.id = v_open.id;
		END IF;
		RETURN NULL;
	END IF;
	v_found := FOUND;
	v_at := hubsync._history_time(v_remote, NEW.hubsync_id, ARRAY['dealstage'], ARRAY[NEW.dealstage], NEW.updated_at,
	                              CASE WHEN TG_OP = 'UPDATE' THEN OLD.updated_at END, TG_OP = 'INSERT');
	IF v_found THEN
		v_at := greatest(v_at, v_open.entered_at);
		UPDATE hubspot.deal_stage_history h SET exited_at = v_at
		WHERE h.deal_hubsync_id = NEW.hubsync_id AND h.exited_at IS NULL;
	END IF;
	INSERT INTO hubspot.deal_stage_history (deal_hubsync_id, deal_id, pipeline, stage, entered_at, source)
	VALUES (NEW.hubsync_id, NEW.hs_object_id, NEW.pipeline, NEW.dealstage, v_at,
	        CASE WHEN v_remote THEN 'hubspot' ELSE 'local' END);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION hubsync._track_deal_stage() IS
  'API: private. Trigger of hubspot.deals: records each change of dealstage in hubspot.deal_stage_history';

-- AFTER trigger of hubspot.subscriptions: a row of
-- hubspot.subscription_history for each change of the revenue state.
CREATE OR REPLACE FUNCTION hubsync._track_subscription() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_remote boolean;
	v_at timestamptz;
	v_last timestamptz;
BEGIN
	IF TG_RELID OPERATOR(pg_catalog.<>) 'hubspot.subscriptions'::regclass::oid THEN
		RAISE EXCEPTION 'hubsync._track_subscription() is the trigger of hubspot.subscriptions only'
			USING ERRCODE = 'feature_not_supported';
	END IF;
	IF hubsync._history_restoring(TG_RELID) THEN
		RETURN NULL;
	END IF;
	v_remote := hubsync._applying_remote();
	IF TG_OP = 'DELETE' THEN
		DELETE FROM hubspot.subscription_history h WHERE h.subscription_hubsync_id = OLD.hubsync_id;
		RETURN NULL;
	END IF;
	IF TG_OP = 'UPDATE' AND NEW.hs_object_id IS DISTINCT FROM OLD.hs_object_id THEN
		UPDATE hubspot.subscription_history h SET subscription_id = NEW.hs_object_id
		WHERE h.subscription_hubsync_id = NEW.hubsync_id;
	END IF;
	IF TG_OP = 'UPDATE'
	   AND NEW.hs_status IS NOT DISTINCT FROM OLD.hs_status
	   AND NEW.hs_recurring_revenue IS NOT DISTINCT FROM OLD.hs_recurring_revenue
	   AND NEW.hs_recurring_billing_frequency IS NOT DISTINCT FROM OLD.hs_recurring_billing_frequency
	   AND NEW.hs_currency_code IS NOT DISTINCT FROM OLD.hs_currency_code
	   AND NEW.hs_start_date IS NOT DISTINCT FROM OLD.hs_start_date
	   AND NEW.hs_end_date IS NOT DISTINCT FROM OLD.hs_end_date THEN
		RETURN NULL;
	END IF;
	-- (the properties that changed; their values are typed here, so
	-- sync_state's wire values are not compared)
	v_at := hubsync._history_time(v_remote, NEW.hubsync_id,
		ARRAY(SELECT p FROM unnest(ARRAY['hs_status', 'hs_recurring_revenue', 'hs_recurring_billing_frequency',
		                                 'hs_currency_code', 'hs_start_date', 'hs_end_date'],
		                           ARRAY[TG_OP = 'INSERT' OR NEW.hs_status IS DISTINCT FROM OLD.hs_status,
		                                 TG_OP = 'INSERT' OR NEW.hs_recurring_revenue IS DISTINCT FROM OLD.hs_recurring_revenue,
		                                 TG_OP = 'INSERT' OR NEW.hs_recurring_billing_frequency IS DISTINCT FROM OLD.hs_recurring_billing_frequency,
		                                 TG_OP = 'INSERT' OR NEW.hs_currency_code IS DISTINCT FROM OLD.hs_currency_code,
		                                 TG_OP = 'INSERT' OR NEW.hs_start_date IS DISTINCT FROM OLD.hs_start_date,
		                                 TG_OP = 'INSERT' OR NEW.hs_end_date IS DISTINCT FROM OLD.hs_end_date]) c(p, changed)
		      WHERE c.changed),
		NULL, NEW.updated_at, CASE WHEN TG_OP = 'UPDATE' THEN OLD.updated_at END, TG_OP = 'INSERT');
	SELECT max(h.valid_from) INTO v_last FROM hubspot.subscription_history h
	WHERE h.subscription_hubsync_id = NEW.hubsync_id;
	INSERT INTO hubspot.subscription_history (subscription_hubsync_id, subscription_id, valid_from, status,
		recurring_revenue, billing_frequency, currency, start_date, end_date, source)
	VALUES (NEW.hubsync_id, NEW.hs_object_id, greatest(v_at, v_last), NEW.hs_status, NEW.hs_recurring_revenue,
	        NEW.hs_recurring_billing_frequency, NEW.hs_currency_code, NEW.hs_start_date, NEW.hs_end_date,
	        CASE WHEN v_remote THEN 'hubspot' ELSE 'local' END);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION hubsync._track_subscription() IS
  'API: private. Trigger of hubspot.subscriptions: records each change of its revenue state in hubspot.subscription_history';

-- The ascending (timestamp, value) changes of one property in a record's
-- propertiesWithHistory (HubSpot lists them newest first).
CREATE OR REPLACE FUNCTION hubsync._property_history(p_record jsonb, p_property text)
RETURNS TABLE (at timestamptz, value text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT hubsync._from_wire(e ->> 'timestamp', 'timestamptz')::timestamptz, e ->> 'value'
	FROM jsonb_array_elements(coalesce(p_record -> 'propertiesWithHistory' -> p_property, '[]')) e
	WHERE e ->> 'timestamp' IS NOT NULL
	ORDER BY 1
$$;
COMMENT ON FUNCTION hubsync._property_history(jsonb, text) IS
  'API: private. The changes of one property in a record read with propertiesWithHistory, oldest first';

-- Deals read with propertiesWithHistory=dealstage,pipeline (a batch read
-- answer's results): their stage history is replaced by HubSpot's.
CREATE OR REPLACE FUNCTION hubsync._stage_history_store(p_results jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r jsonb;
	v_deal record;
	v_n integer := 0;
BEGIN
	FOR r IN SELECT e FROM jsonb_array_elements(coalesce(p_results, '[]')) e LOOP
		SELECT d.hubsync_id, d.hs_object_id, d.pipeline INTO v_deal FROM hubspot.deals d
		WHERE d.hs_object_id = (r ->> 'id')::bigint;
		IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM hubsync._property_history(r, 'dealstage') h
		                            WHERE nullif(h.value, '') IS NOT NULL) THEN
			CONTINUE;
		END IF;
		DELETE FROM hubspot.deal_stage_history h WHERE h.deal_hubsync_id = v_deal.hubsync_id;
		INSERT INTO hubspot.deal_stage_history (deal_hubsync_id, deal_id, pipeline, stage, entered_at, exited_at, source)
		SELECT v_deal.hubsync_id, v_deal.hs_object_id,
		       coalesce((SELECT p.value FROM hubsync._property_history(r, 'pipeline') p
		                 WHERE p.at <= c.at ORDER BY p.at DESC LIMIT 1),
		                (SELECT p.value FROM hubsync._property_history(r, 'pipeline') p ORDER BY p.at LIMIT 1),
		                v_deal.pipeline),
		       c.value, c.at, lead(c.at) OVER (ORDER BY c.at), 'history'
		FROM (SELECT h.at, h.value, lag(h.value) OVER (ORDER BY h.at) AS prev
		      FROM hubsync._property_history(r, 'dealstage') h
		      WHERE nullif(h.value, '') IS NOT NULL) c
		WHERE c.prev IS DISTINCT FROM c.value;
		v_n := v_n + 1;
	END LOOP;
	RETURN v_n;
END
$$;
COMMENT ON FUNCTION hubsync._stage_history_store(jsonb) IS
  'API: private. Replaces the stage history of the deals read with propertiesWithHistory by HubSpot''s';

-- Subscriptions read with propertiesWithHistory of their revenue
-- properties: their history is replaced by one row per moment any of
-- them changed, holding every value as of that moment.
CREATE OR REPLACE FUNCTION hubsync._subscription_history_store(p_results jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r jsonb;
	v_sub record;
	v_n integer := 0;
BEGIN
	FOR r IN SELECT e FROM jsonb_array_elements(coalesce(p_results, '[]')) e LOOP
		SELECT s.hubsync_id, s.hs_object_id INTO v_sub FROM hubspot.subscriptions s
		WHERE s.hs_object_id = (r ->> 'id')::bigint;
		IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM jsonb_object_keys(coalesce(r -> 'propertiesWithHistory', '{}'))) THEN
			CONTINUE;
		END IF;
		DELETE FROM hubspot.subscription_history h WHERE h.subscription_hubsync_id = v_sub.hubsync_id;
		INSERT INTO hubspot.subscription_history (subscription_hubsync_id, subscription_id, valid_from, status,
			recurring_revenue, billing_frequency, currency, start_date, end_date, source)
		SELECT v_sub.hubsync_id, v_sub.hs_object_id, t.at,
		       (SELECT nullif(h.value, '') FROM hubsync._property_history(r, 'hs_status') h WHERE h.at <= t.at ORDER BY h.at DESC LIMIT 1),
		       hubsync._from_wire((SELECT nullif(h.value, '') FROM hubsync._property_history(r, 'hs_recurring_revenue') h WHERE h.at <= t.at ORDER BY h.at DESC LIMIT 1), 'numeric')::numeric,
		       (SELECT nullif(h.value, '') FROM hubsync._property_history(r, 'hs_recurring_billing_frequency') h WHERE h.at <= t.at ORDER BY h.at DESC LIMIT 1),
		       (SELECT nullif(h.value, '') FROM hubsync._property_history(r, 'hs_currency_code') h WHERE h.at <= t.at ORDER BY h.at DESC LIMIT 1),
		       hubsync._from_wire((SELECT nullif(h.value, '') FROM hubsync._property_history(r, 'hs_start_date') h WHERE h.at <= t.at ORDER BY h.at DESC LIMIT 1), 'date')::date,
		       hubsync._from_wire((SELECT nullif(h.value, '') FROM hubsync._property_history(r, 'hs_end_date') h WHERE h.at <= t.at ORDER BY h.at DESC LIMIT 1), 'date')::date,
		       'history'
		FROM (SELECT DISTINCT h.at
		      FROM unnest(ARRAY['hs_status', 'hs_recurring_revenue', 'hs_recurring_billing_frequency',
		                        'hs_currency_code', 'hs_start_date', 'hs_end_date']) p(name),
		           hubsync._property_history(r, p.name) h) t;
		v_n := v_n + 1;
	END LOOP;
	RETURN v_n;
END
$$;
COMMENT ON FUNCTION hubsync._subscription_history_store(jsonb) IS
  'API: private. Replaces the history of the subscriptions read with propertiesWithHistory by HubSpot''s';

-- The property history pass after a backfill of deals or subscriptions:
-- the next batch of HubSpot ids to read (NULL when the pass is not due or
-- done), and saving where it stands.
CREATE OR REPLACE FUNCTION hubsync._history_next(p_object_type text, p_limit integer) RETURNS bigint[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_done timestamptz;
	v_after bigint;
	v_ids bigint[];
BEGIN
	SELECT b.finished_at INTO v_done FROM hubsync.backfills b
	WHERE b.object_type = p_object_type AND b.state = 'done';
	IF v_done IS NULL THEN
		RETURN NULL;
	END IF;
	INSERT INTO hubsync.history_backfills AS h (object_type, backfill_finished_at)
	VALUES (p_object_type, v_done)
	ON CONFLICT (object_type) DO UPDATE
	SET backfill_finished_at = v_done, after_id = 0, state = 'running', records = 0,
	    started_at = pg_catalog.now(), finished_at = NULL, last_error = NULL
	WHERE h.backfill_finished_at IS DISTINCT FROM v_done;
	SELECT h.after_id INTO v_after FROM hubsync.history_backfills h
	WHERE h.object_type = p_object_type AND h.state = 'running';
	IF v_after IS NULL THEN
		RETURN NULL;
	END IF;
	EXECUTE pg_catalog.format('SELECT array_agg(id ORDER BY id) FROM (SELECT hs_object_id AS id FROM hubspot.%I
	                           WHERE hs_object_id > $1 ORDER BY hs_object_id LIMIT $2) s', p_object_type)
		INTO v_ids USING v_after, p_limit;
	IF v_ids IS NULL THEN
		UPDATE hubsync.history_backfills h SET state = 'done', finished_at = pg_catalog.now()
		WHERE h.object_type = p_object_type;
	END IF;
	RETURN v_ids;
END
$$;
COMMENT ON FUNCTION hubsync._history_next(text, integer) IS
  'API: private. Next HubSpot ids the property history pass after a backfill reads (NULL: nothing to do)';

CREATE OR REPLACE FUNCTION hubsync._history_save(p_object_type text, p_last bigint, p_results jsonb, p_error text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v_n integer := 0;
BEGIN
	IF p_error IS NOT NULL THEN
		UPDATE hubsync.history_backfills h SET state = 'failed', last_error = p_error, finished_at = pg_catalog.now()
		WHERE h.object_type = p_object_type;
		RETURN;
	END IF;
	IF p_object_type = 'deals' THEN
		v_n := hubsync._stage_history_store(p_results);
	ELSIF p_object_type = 'subscriptions' THEN
		v_n := hubsync._subscription_history_store(p_results);
	END IF;
	UPDATE hubsync.history_backfills h SET after_id = p_last, records = h.records + v_n
	WHERE h.object_type = p_object_type;
END
$$;
COMMENT ON FUNCTION hubsync._history_save(text, bigint, jsonb, text) IS
  'API: private. Stores one batch of the property history pass and where it stands';
