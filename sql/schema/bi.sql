-------------------------------------------------------------------------------
-- BI model: owners, pipelines and stages, deal stage history, subscription
-- history (issue 22)
-------------------------------------------------------------------------------
-- Kept beside the mirror tables in schema hubspot, so that SELECT on the
-- relations of hubspot is all a BI reader needs.  Owners and pipelines
-- are copied from HubSpot's owners and pipelines APIs by the pull worker
-- (src/pull/metadata_sync.c); the two history tables are written by
-- triggers on hubspot.deals and hubspot.subscriptions and, on backfill,
-- from HubSpot's property history.

CREATE TABLE hubspot.owners (
	owner_id    text PRIMARY KEY,
	email       text,
	first_name  text,
	last_name   text,
	user_id     bigint,
	teams       jsonb NOT NULL DEFAULT '[]',
	archived    boolean NOT NULL DEFAULT false,
	created_at  timestamptz,
	updated_at  timestamptz,
	synced_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE hubspot.owners IS
  'HubSpot owners (users who can own records), from the owners API; archived ones are kept and flagged';
COMMENT ON COLUMN hubspot.owners.owner_id IS 'HubSpot owner id (the value of hubspot_owner_id on records)';
COMMENT ON COLUMN hubspot.owners.email IS 'owner''s email';
COMMENT ON COLUMN hubspot.owners.first_name IS 'owner''s first name';
COMMENT ON COLUMN hubspot.owners.last_name IS 'owner''s last name';
COMMENT ON COLUMN hubspot.owners.user_id IS 'HubSpot user id of the owner';
COMMENT ON COLUMN hubspot.owners.teams IS 'teams of the owner as HubSpot sends them (id, name, primary)';
COMMENT ON COLUMN hubspot.owners.archived IS 'archived in HubSpot, or no longer listed';
COMMENT ON COLUMN hubspot.owners.created_at IS 'HubSpot createdAt';
COMMENT ON COLUMN hubspot.owners.updated_at IS 'HubSpot updatedAt';
COMMENT ON COLUMN hubspot.owners.synced_at IS 'when hubsync last read this owner from HubSpot';

CREATE TABLE hubspot.pipelines (
	object_type    text NOT NULL,
	pipeline_id    text NOT NULL,
	label          text,
	display_order  integer,
	archived       boolean NOT NULL DEFAULT false,
	created_at     timestamptz,
	updated_at     timestamptz,
	synced_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (object_type, pipeline_id)
);
COMMENT ON TABLE hubspot.pipelines IS
  'HubSpot pipelines of deals, tickets and every tracked object type that has them, from the pipelines API; archived ones are kept and flagged';
COMMENT ON COLUMN hubspot.pipelines.object_type IS 'object type (mirror table name: deals, tickets...)';
COMMENT ON COLUMN hubspot.pipelines.pipeline_id IS 'HubSpot pipeline id (the value of pipeline / hs_pipeline on records)';
COMMENT ON COLUMN hubspot.pipelines.label IS 'pipeline label';
COMMENT ON COLUMN hubspot.pipelines.display_order IS 'display order in HubSpot';
COMMENT ON COLUMN hubspot.pipelines.archived IS 'archived in HubSpot, or no longer listed';
COMMENT ON COLUMN hubspot.pipelines.created_at IS 'HubSpot createdAt';
COMMENT ON COLUMN hubspot.pipelines.updated_at IS 'HubSpot updatedAt';
COMMENT ON COLUMN hubspot.pipelines.synced_at IS 'when hubsync last read this pipeline from HubSpot';

CREATE TABLE hubspot.pipeline_stages (
	object_type    text NOT NULL,
	pipeline_id    text NOT NULL,
	stage_id       text NOT NULL,
	label          text,
	display_order  integer,
	probability    numeric,
	closed         boolean NOT NULL DEFAULT false,
	won            boolean GENERATED ALWAYS AS (closed AND coalesce(probability = 1, false)) STORED,
	archived       boolean NOT NULL DEFAULT false,
	metadata       jsonb NOT NULL DEFAULT '{}',
	created_at     timestamptz,
	updated_at     timestamptz,
	synced_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (object_type, pipeline_id, stage_id)
);
COMMENT ON TABLE hubspot.pipeline_stages IS
  'Stages of the HubSpot pipelines, with their metadata: a stage is won when it is closed with probability 1';
COMMENT ON COLUMN hubspot.pipeline_stages.object_type IS 'object type (mirror table name)';
COMMENT ON COLUMN hubspot.pipeline_stages.pipeline_id IS 'HubSpot pipeline id';
COMMENT ON COLUMN hubspot.pipeline_stages.stage_id IS 'HubSpot stage id (the value of dealstage / hs_pipeline_stage on records)';
COMMENT ON COLUMN hubspot.pipeline_stages.label IS 'stage label';
COMMENT ON COLUMN hubspot.pipeline_stages.display_order IS 'display order within the pipeline';
COMMENT ON COLUMN hubspot.pipeline_stages.probability IS 'metadata probability (0 to 1; deal stages), NULL if none';
COMMENT ON COLUMN hubspot.pipeline_stages.closed IS 'metadata isClosed is true, or ticketState is CLOSED';
COMMENT ON COLUMN hubspot.pipeline_stages.won IS 'closed with probability 1';
COMMENT ON COLUMN hubspot.pipeline_stages.archived IS 'archived in HubSpot, or no longer listed';
COMMENT ON COLUMN hubspot.pipeline_stages.metadata IS 'the stage metadata as HubSpot sends it';
COMMENT ON COLUMN hubspot.pipeline_stages.created_at IS 'HubSpot createdAt';
COMMENT ON COLUMN hubspot.pipeline_stages.updated_at IS 'HubSpot updatedAt';
COMMENT ON COLUMN hubspot.pipeline_stages.synced_at IS 'when hubsync last read this stage from HubSpot';

CREATE TABLE hubspot.deal_stage_history (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	deal_hubsync_id  uuid NOT NULL,
	deal_id          bigint,
	pipeline         text,
	stage            text NOT NULL,
	entered_at       timestamptz NOT NULL,
	exited_at        timestamptz,
	source           text NOT NULL CHECK (source IN ('history', 'hubspot', 'local', 'snapshot'))
);
CREATE INDEX deal_stage_history_deal ON hubspot.deal_stage_history (deal_hubsync_id, entered_at);
COMMENT ON TABLE hubspot.deal_stage_history IS
  'Every stage a deal has been in: from HubSpot''s property history on backfill, then from each change of dealstage (webhook, poll, local update)';
COMMENT ON COLUMN hubspot.deal_stage_history.id IS 'row id (order of recording)';
COMMENT ON COLUMN hubspot.deal_stage_history.deal_hubsync_id IS 'hubsync_id of the deal in hubspot.deals';
COMMENT ON COLUMN hubspot.deal_stage_history.deal_id IS 'HubSpot id of the deal (NULL until it exists in HubSpot)';
COMMENT ON COLUMN hubspot.deal_stage_history.pipeline IS 'pipeline of the deal while in the stage';
COMMENT ON COLUMN hubspot.deal_stage_history.stage IS 'dealstage';
COMMENT ON COLUMN hubspot.deal_stage_history.entered_at IS 'when the deal entered the stage (HubSpot''s time for changes from HubSpot)';
COMMENT ON COLUMN hubspot.deal_stage_history.exited_at IS 'when it left the stage; NULL for the current stage';
COMMENT ON COLUMN hubspot.deal_stage_history.source IS 'history (HubSpot property history), hubspot (a change applied from HubSpot), local (a write in PostgreSQL), snapshot (the stage at the update to 0.2.0)';

CREATE TABLE hubspot.subscription_history (
	id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	subscription_hubsync_id  uuid NOT NULL,
	subscription_id          bigint,
	valid_from               timestamptz NOT NULL,
	status                   text,
	recurring_revenue        numeric,
	billing_frequency        text,
	currency                 text,
	start_date               date,
	end_date                 date,
	source                   text NOT NULL CHECK (source IN ('history', 'hubspot', 'local', 'snapshot'))
);
CREATE INDEX subscription_history_subscription ON hubspot.subscription_history (subscription_hubsync_id, valid_from);
COMMENT ON TABLE hubspot.subscription_history IS
  'The revenue state of each subscription over time (status, recurring revenue, billing frequency, currency, dates), one row per change; MRR by month is computed from it';
COMMENT ON COLUMN hubspot.subscription_history.id IS 'row id (order of recording)';
COMMENT ON COLUMN hubspot.subscription_history.subscription_hubsync_id IS 'hubsync_id of the subscription in hubspot.subscriptions';
COMMENT ON COLUMN hubspot.subscription_history.subscription_id IS 'HubSpot id of the subscription (NULL until it exists in HubSpot)';
COMMENT ON COLUMN hubspot.subscription_history.valid_from IS 'when this state began (HubSpot''s time for changes from HubSpot)';
COMMENT ON COLUMN hubspot.subscription_history.status IS 'hs_status';
COMMENT ON COLUMN hubspot.subscription_history.recurring_revenue IS 'hs_recurring_revenue';
COMMENT ON COLUMN hubspot.subscription_history.billing_frequency IS 'hs_recurring_billing_frequency';
COMMENT ON COLUMN hubspot.subscription_history.currency IS 'hs_currency_code';
COMMENT ON COLUMN hubspot.subscription_history.start_date IS 'hs_start_date';
COMMENT ON COLUMN hubspot.subscription_history.end_date IS 'hs_end_date';
COMMENT ON COLUMN hubspot.subscription_history.source IS 'history, hubspot, local or snapshot, as in hubspot.deal_stage_history';

-- When the pull worker last copied owners and pipelines from HubSpot, and
-- whether a copy was asked for (hubsync.refresh_metadata()).
CREATE TABLE hubsync.metadata_sync (
	singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	requested_at  timestamptz,
	synced_at     timestamptz,
	owners        integer,
	pipelines     integer,
	stages        integer,
	last_error    text
);
COMMENT ON TABLE hubsync.metadata_sync IS
  'Owners and pipelines copy: last run, what it found, and a pending request (one row)';
COMMENT ON COLUMN hubsync.metadata_sync.requested_at IS 'hubsync.refresh_metadata() asked for a copy at this time (NULL: none pending)';
COMMENT ON COLUMN hubsync.metadata_sync.synced_at IS 'when the last complete copy finished';
COMMENT ON COLUMN hubsync.metadata_sync.owners IS 'owners read by the last copy (archived included)';
COMMENT ON COLUMN hubsync.metadata_sync.pipelines IS 'pipelines read by the last copy';
COMMENT ON COLUMN hubsync.metadata_sync.stages IS 'stages read by the last copy';
COMMENT ON COLUMN hubsync.metadata_sync.last_error IS 'why the last copy failed, NULL if it worked';

-- The property history pass that follows a backfill of deals or
-- subscriptions (HubSpot's propertiesWithHistory, 50 records a request).
CREATE TABLE hubsync.history_backfills (
	object_type           text PRIMARY KEY,
	backfill_finished_at  timestamptz,
	after_id              bigint NOT NULL DEFAULT 0,
	state                 text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
	records               integer NOT NULL DEFAULT 0,
	started_at            timestamptz NOT NULL DEFAULT pg_catalog.now(),
	finished_at           timestamptz,
	last_error            text
);
COMMENT ON TABLE hubsync.history_backfills IS
  'Per object type (deals, subscriptions): the property history pass after its last backfill';
COMMENT ON COLUMN hubsync.history_backfills.backfill_finished_at IS 'finished_at of the backfill the pass follows';
COMMENT ON COLUMN hubsync.history_backfills.after_id IS 'HubSpot id the pass has read up to';
COMMENT ON COLUMN hubsync.history_backfills.state IS 'running, done or failed';
COMMENT ON COLUMN hubsync.history_backfills.records IS 'records whose history was stored';
COMMENT ON COLUMN hubsync.history_backfills.last_error IS 'why the pass failed, NULL if it did not';
