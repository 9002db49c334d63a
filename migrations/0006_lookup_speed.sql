-- lookup speed (docs/performance.md): what every node lookup would otherwise pay for
-- on stock trees, whose values hold $${...} references.
--
-- fsconf.globals_version: a token that changes whenever fsconf.global_variables
-- does. A node keeps one copy of the global variables and sends this token with
-- each lookup; the statement returns the globals only when the node's token is not
-- the current one. Lookups no longer scan their rows for $${name} references and
-- walk the globals recursively (on the vanilla tree that walk was most of the
-- statement's time; on a 10,000-extension context it scanned 43,000 rows).
-- A random 62-bit value, not a counter: a database restored or recreated under the
-- same name never hands a node a token it already holds for other contents.
-- migrate:up

CREATE TABLE fsconf.globals_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    value    bigint NOT NULL DEFAULT (random() * 4.6e18)::bigint
);
INSERT INTO fsconf.globals_version DEFAULT VALUES;

-- Statement level: one new token per statement that writes globals (an import of
-- 1,000 globals changes it once), none for a statement that wrote no row (transition
-- tables: one trigger per event). Writes with triggers disabled
-- (session_replication_role = replica) bypass it, as they bypass change capture.
CREATE FUNCTION fsconf.renew_globals_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE fsconf.globals_version SET value = (random() * 4.6e18)::bigint;
    ELSIF EXISTS (SELECT 1 FROM changed) THEN
        UPDATE fsconf.globals_version SET value = (random() * 4.6e18)::bigint;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER renew_globals_version_insert AFTER INSERT ON fsconf.global_variables
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION fsconf.renew_globals_version();
CREATE TRIGGER renew_globals_version_update AFTER UPDATE ON fsconf.global_variables
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION fsconf.renew_globals_version();
CREATE TRIGGER renew_globals_version_delete AFTER DELETE ON fsconf.global_variables
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION fsconf.renew_globals_version();
CREATE TRIGGER renew_globals_version_truncate AFTER TRUNCATE ON fsconf.global_variables
    FOR EACH STATEMENT EXECUTE FUNCTION fsconf.renew_globals_version();

-- Readers read it, writers renew it (the trigger runs as the writer). The group
-- roles may not exist yet (`fsconf grant` and every `migrate up` apply the same).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsconf_reader') THEN
        GRANT SELECT ON fsconf.globals_version TO fsconf_reader;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsconf_writer') THEN
        GRANT SELECT, UPDATE ON fsconf.globals_version TO fsconf_writer;
    END IF;
END
$$;

-- migrate:down

DROP TRIGGER renew_globals_version_truncate ON fsconf.global_variables;
DROP TRIGGER renew_globals_version_delete ON fsconf.global_variables;
DROP TRIGGER renew_globals_version_update ON fsconf.global_variables;
DROP TRIGGER renew_globals_version_insert ON fsconf.global_variables;
DROP FUNCTION fsconf.renew_globals_version();
DROP TABLE fsconf.globals_version;
