/* hubsync--0.1.0--0.2.0.sql -- upgrade hubsync from 0.1.0 to 0.2.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION hubsync UPDATE TO '0.2.0'" to load this file. \quit

-- Each change to hubsync--0.2.0.sql since 0.1.0 has its counterpart here,
-- grouped by capability.  test/t/040_upgrade.pl checks that an upgraded
-- database matches a fresh install object for object.
