-------------------------------------------------------------------------------
-- Object model
-------------------------------------------------------------------------------
-- Object types hubsync mirrors, properties kept in typed columns, and
-- which side owns a property.  The mirror tables themselves
-- (hubspot.<object_type>) are made by hubsync._create_mirror_table
-- (sql/data/object_model.sql, hubsync.track_object).

CREATE TABLE hubsync.object_types (
	object_type          text PRIMARY KEY,       -- mirror table name in schema hubspot
	object_type_id       text NOT NULL UNIQUE,   -- HubSpot objectTypeId, e.g. 0-1
	api_name             text NOT NULL,          -- path segment in /crm/v3/objects/{api_name}
	webhook_prefix       text,                   -- e.g. contact in contact.propertyChange; NULL = object.*
	last_modified_property text NOT NULL,        -- property the poller searches on
	builtin              boolean NOT NULL DEFAULT false,
	paused               boolean NOT NULL DEFAULT false,
	CHECK (object_type ~ '^[a-z_][a-z0-9_]{0,62}$')
);
COMMENT ON TABLE hubsync.object_types IS
  'HubSpot object types hubsync mirrors, one table each in schema hubspot';
COMMENT ON COLUMN hubsync.object_types.object_type IS 'mirror table name in schema hubspot';
COMMENT ON COLUMN hubsync.object_types.object_type_id IS 'HubSpot objectTypeId (0-1, 0-3, 2-123...)';
COMMENT ON COLUMN hubsync.object_types.api_name IS 'name used in HubSpot API paths';
COMMENT ON COLUMN hubsync.object_types.webhook_prefix IS 'prefix of webhook subscription types (contact, deal...); NULL for object.* events';
COMMENT ON COLUMN hubsync.object_types.last_modified_property IS 'last-modified property used by the poller';
COMMENT ON COLUMN hubsync.object_types.builtin IS 'installed by CREATE EXTENSION (not dumped)';
COMMENT ON COLUMN hubsync.object_types.paused IS 'true while hubsync.pause() holds this object type';

CREATE TABLE hubsync.property_map (
	object_type   text NOT NULL REFERENCES hubsync.object_types ON DELETE CASCADE,
	property      text NOT NULL,     -- HubSpot property name
	column_name   name NOT NULL,     -- typed column in the mirror table
	sql_type      text NOT NULL CHECK (sql_type IN ('text', 'numeric', 'timestamptz', 'date', 'boolean', 'text[]', 'bigint')),
	builtin       boolean NOT NULL DEFAULT false,
	PRIMARY KEY (object_type, property),
	UNIQUE (object_type, column_name)
);
COMMENT ON TABLE hubsync.property_map IS
  'HubSpot properties kept in typed columns of the mirror tables; all others live in the properties jsonb column';
COMMENT ON COLUMN hubsync.property_map.property IS 'HubSpot property name';
COMMENT ON COLUMN hubsync.property_map.column_name IS 'typed column of the mirror table';
COMMENT ON COLUMN hubsync.property_map.sql_type IS 'SQL type of the column: number is numeric, datetime timestamptz, date date, bool boolean, multi-select text[]';
COMMENT ON COLUMN hubsync.property_map.builtin IS 'installed by CREATE EXTENSION (not dumped)';

CREATE TABLE hubsync.field_owners (
	object_type  text NOT NULL REFERENCES hubsync.object_types ON DELETE CASCADE,
	property     text NOT NULL,
	owner        text NOT NULL CHECK (owner IN ('hubspot', 'postgres', 'latest')),
	PRIMARY KEY (object_type, property)
);
COMMENT ON TABLE hubsync.field_owners IS
  'Which side owns a property: hubspot (app SQL cannot change it), postgres (HubSpot edits are reverted), latest (newest wins, the default)';
COMMENT ON COLUMN hubsync.field_owners.owner IS 'hubspot, postgres or latest';
