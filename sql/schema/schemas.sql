-------------------------------------------------------------------------------
-- Schemas
-------------------------------------------------------------------------------
-- The two schemas of the extension.

-- "hubsync" holds the machinery and the SQL API; "hubspot" holds the mirror
-- users read and write.  Both belong to the extension, so DROP EXTENSION
-- removes them.

CREATE SCHEMA hubsync;
CREATE SCHEMA hubspot;
COMMENT ON SCHEMA hubspot IS
  'hubsync mirror of HubSpot CRM objects: read and write these tables; changes sync both ways';
COMMENT ON SCHEMA hubsync IS
  'hubsync machinery and SQL API: outbox, inbox, settings tables, functions and status views';
