# hubsync SQL sources, in the order they run.  The Makefile builds from them
#   sql/$(EXTENSION)--$(EXTVERSION).sql          install: header, SQL_INSTALL
#   sql/$(EXTENSION)--FROM--$(EXTVERSION).sql    update, for each FROM in SQL_UPDATE_FROM:
#       header, sql/updates/FROM--$(EXTVERSION).sql (the modfile), SQL_FUNCTIONS,
#       sql/updates/FROM--$(EXTVERSION).post.sql (if any), SQL_RERUN
# Functions, views and triggers are CREATE OR REPLACE: each is defined once,
# here, for the install and every update.  A new table, column or index goes
# in sql/schema/ AND in the modfile; data the install makes goes in sql/data/
# and, for an upgraded database, in the modfile.

SQL_SCHEMA = \
	sql/schema/schemas.sql \
	sql/schema/object_model.sql \
	sql/schema/secrets.sql \
	sql/schema/outbox.sql \
	sql/schema/inbox.sql \
	sql/schema/change_feed.sql \
	sql/schema/associations.sql \
	sql/schema/operations.sql \
	sql/schema/polling.sql \
	sql/schema/journal.sql \
	sql/schema/enrichment.sql \
	sql/schema/bi.sql

SQL_FUNCTIONS = \
	sql/functions/credentials.sql \
	sql/functions/mirror.sql \
	sql/functions/push.sql \
	sql/functions/api.sql \
	sql/functions/webhook.sql \
	sql/functions/inbound.sql \
	sql/functions/associations.sql \
	sql/functions/typed_properties.sql \
	sql/functions/revenue.sql \
	sql/functions/bi.sql \
	sql/functions/operations.sql \
	sql/functions/polling.sql \
	sql/functions/journal.sql \
	sql/functions/enrichment.sql \
	sql/functions/testing.sql

# install only: row security (an update makes its own in its .post.sql part)
SQL_POLICIES = \
	sql/policies.sql

# install only
SQL_DATA = \
	sql/data/object_model.sql \
	sql/data/typed_properties.sql

# install and every update (idempotent)
SQL_DATA_RERUN = \
	sql/data/wake_workers.sql

SQL_VIEWS = \
	sql/views/api.sql \
	sql/views/webhook.sql \
	sql/views/bi.sql \
	sql/views/revenue.sql \
	sql/views/credentials.sql \
	sql/views/polling.sql \
	sql/views/enrichment.sql \
	sql/views/operations.sql

SQL_TAIL = \
	sql/triggers.sql \
	sql/privileges.sql \
	sql/dump.sql

SQL_INSTALL = $(SQL_SCHEMA) $(SQL_FUNCTIONS) $(SQL_POLICIES) $(SQL_DATA) $(SQL_DATA_RERUN) $(SQL_VIEWS) $(SQL_TAIL)
SQL_RERUN = $(SQL_DATA_RERUN) $(SQL_VIEWS) $(SQL_TAIL)

# versions an update script is built from (their modfiles are in sql/updates/)
SQL_UPDATE_FROM = 0.1.0

# schema files wholly new since a version: its update script runs them right
# after its modfile, so their tables are defined once
SQL_NEW_SINCE_0.1.0 = \
	sql/schema/polling.sql \
	sql/schema/journal.sql \
	sql/schema/enrichment.sql \
	sql/schema/bi.sql
