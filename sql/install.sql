-- install: the objects CREATE EXTENSION makes, their comments, and a clean
-- DROP EXTENSION / CREATE EXTENSION cycle.

SELECT extname, extversion, extrelocatable, n.nspname AS schema
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE extname = 'hubsync';

-- the mirror tables and their columns
SELECT c.relname, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) AS columns
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = 'hubspot'::regnamespace AND c.relkind = 'r'
GROUP BY c.relname ORDER BY c.relname;

-- every mirror table: hubsync_id primary key, hs_object_id unique, capture trigger
SELECT c.relname,
       pg_get_constraintdef(pk.oid) AS primary_key,
       EXISTS (SELECT 1 FROM pg_constraint u WHERE u.conrelid = c.oid AND u.contype = 'u'
               AND pg_get_constraintdef(u.oid) = 'UNIQUE (hs_object_id)') AS hs_object_id_unique,
       EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'hubsync_capture') AS has_trigger
FROM pg_class c
LEFT JOIN pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
WHERE c.relnamespace = 'hubspot'::regnamespace AND c.relkind = 'r'
ORDER BY c.relname;

-- every member object has a comment (expect no rows)
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS uncommented
FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'hubsync')
  AND d.deptype = 'e'
  AND d.classid IN ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_namespace'::regclass)
  AND NOT (d.classid = 'pg_class'::regclass AND
           (SELECT relkind FROM pg_class WHERE oid = d.objid) IN ('S', 'i'))
  AND obj_description(d.objid, (SELECT relname FROM pg_class WHERE oid = d.classid)) IS NULL
ORDER BY 1;

-- every column of the mirror tables has a comment (expect no rows)
SELECT c.relname, a.attname
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = 'hubspot'::regnamespace AND c.relkind = 'r'
  AND col_description(c.oid, a.attnum) IS NULL
ORDER BY 1, 2;

-- tables whose rows pg_dump keeps
SELECT unnest(extconfig)::regclass::text AS dumped FROM pg_extension WHERE extname = 'hubsync' ORDER BY 1;

-- DROP EXTENSION leaves nothing behind
DROP EXTENSION hubsync;
SELECT nspname FROM pg_namespace WHERE nspname IN ('hubsync', 'hubspot');
SELECT count(*) AS leftover_functions FROM pg_proc WHERE proname LIKE 'hubsync%' OR prosrc LIKE 'hubsync%';
SELECT count(*) AS leftover_types FROM pg_type WHERE typnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) AND typname IN ('contacts', 'outbox', 'status');

-- and it comes back
CREATE EXTENSION hubsync;
SELECT count(*) AS mirror_tables FROM pg_tables WHERE schemaname = 'hubspot';

-- installing twice is refused; the control file asks for a superuser
CREATE EXTENSION hubsync;
