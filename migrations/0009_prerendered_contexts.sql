-- Prerendered dialplan and chatplan contexts (docs/performance.md, "Big contexts").
--
-- A context's answer is the same on every node except for its $${name}
-- references (each node expands them with its own globals). fsconf's writers
-- (every CLI write, import, `migrate up`, `fsconf prerender`) render each changed
-- context once, with its references left in place, and store the document here;
-- a lookup then reads one value instead of one row per extension, condition,
-- regex and action (43,500 rows for 10,000 extensions), and the node only
-- expands the references. A context is stored only when that is exactly what the
-- node would have rendered from the rows (no extension scoped to nodes, none
-- invalid, no reference the stored text cannot carry); otherwise
-- `xml` is NULL and `reason` says why, and nodes read the rows as before.
--
-- Freshness: statement-level triggers give a context a new `version` (from a
-- sequence: never reused) whenever a statement writes the context, its
-- extensions, conditions, regexes or actions; a stored document is served only
-- while its `rendered_version` is the current `version` and its `format` is the
-- node library's. A raw SQL write therefore makes the context's lookups read the
-- rows (still correct, slower) until the next fsconf write or `fsconf prerender`.
-- Writes with triggers disabled (session_replication_role = replica) bypass the
-- versions, as they bypass change capture: run `fsconf prerender --all` after one.
-- Derived data: no change capture, no history, no undo of its own.
-- migrate:up

CREATE SEQUENCE fsconf.context_version_seq;

CREATE TABLE fsconf.prerendered_contexts (
    context_id       bigint PRIMARY KEY REFERENCES fsconf.dialplan_contexts ON DELETE CASCADE,
    version          bigint NOT NULL DEFAULT nextval('fsconf.context_version_seq'),
    rendered_version bigint,
    format           integer,
    xml              text,
    -- Expressions holding $${…} references: each node checks them with its own
    -- values before serving the document (an invalid one: it reads the rows).
    checks           text[] NOT NULL DEFAULT '{}',
    reason           text,
    rendered_at      timestamptz
);
-- Served as stored: a multi-megabyte document is not worth compressing and
-- decompressing on every lookup.
ALTER TABLE fsconf.prerendered_contexts ALTER COLUMN xml SET STORAGE EXTERNAL;

INSERT INTO fsconf.prerendered_contexts (context_id) SELECT id FROM fsconf.dialplan_contexts;

-- One new version per statement and context written (transition tables: one
-- trigger per event; an UPDATE fires with its old rows and with its new rows, so a
-- row moved to another parent changes both contexts). Rows whose parents are gone
-- find no context: the parent's own delete (or the context's cascade) counts then.
-- Each branch names its own table's columns (a statement is planned when it runs).
CREATE FUNCTION fsconf.bump_context_version() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched bigint[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE fsconf.prerendered_contexts SET version = nextval('fsconf.context_version_seq');
        RETURN NULL;
    ELSIF TG_TABLE_NAME = 'dialplan_contexts' THEN
        touched := ARRAY(SELECT ch.id FROM changed ch);
    ELSIF TG_TABLE_NAME = 'dialplan_extensions' THEN
        touched := ARRAY(SELECT ch.context_id FROM changed ch);
    ELSIF TG_TABLE_NAME = 'dialplan_conditions' THEN
        touched := ARRAY(SELECT e.context_id FROM changed ch JOIN fsconf.dialplan_extensions e ON e.id = ch.extension_id);
    ELSE
        touched := ARRAY(SELECT e.context_id FROM changed ch JOIN fsconf.dialplan_conditions d ON d.id = ch.condition_id
                         JOIN fsconf.dialplan_extensions e ON e.id = d.extension_id);
    END IF;
    INSERT INTO fsconf.prerendered_contexts (context_id)
    SELECT c.id FROM fsconf.dialplan_contexts c WHERE c.id = ANY (touched)
    ON CONFLICT (context_id) DO UPDATE SET version = nextval('fsconf.context_version_seq');
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['dialplan_contexts', 'dialplan_extensions', 'dialplan_conditions',
                             'dialplan_regexes', 'dialplan_actions'] LOOP
        EXECUTE format('CREATE TRIGGER bump_context_version_insert AFTER INSERT ON fsconf.%I
            REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION fsconf.bump_context_version()', t);
        EXECUTE format('CREATE TRIGGER bump_context_version_update_old AFTER UPDATE ON fsconf.%I
            REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION fsconf.bump_context_version()', t);
        EXECUTE format('CREATE TRIGGER bump_context_version_update_new AFTER UPDATE ON fsconf.%I
            REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION fsconf.bump_context_version()', t);
        EXECUTE format('CREATE TRIGGER bump_context_version_delete AFTER DELETE ON fsconf.%I
            REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION fsconf.bump_context_version()', t);
        EXECUTE format('CREATE TRIGGER bump_context_version_truncate AFTER TRUNCATE ON fsconf.%I
            FOR EACH STATEMENT EXECUTE FUNCTION fsconf.bump_context_version()', t);
    END LOOP;
END
$$;

-- Readers (nodes) read the documents; writers' statements bump versions and store
-- documents (the triggers run as the writer). The group roles may not exist yet
-- (`fsconf grant` and every `migrate up` apply the same).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsconf_reader') THEN
        GRANT SELECT ON fsconf.prerendered_contexts TO fsconf_reader;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsconf_writer') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON fsconf.prerendered_contexts TO fsconf_writer;
        GRANT USAGE, SELECT ON SEQUENCE fsconf.context_version_seq TO fsconf_writer;
    END IF;
END
$$;

-- migrate:down

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['dialplan_contexts', 'dialplan_extensions', 'dialplan_conditions',
                             'dialplan_regexes', 'dialplan_actions'] LOOP
        EXECUTE format('DROP TRIGGER bump_context_version_truncate ON fsconf.%I', t);
        EXECUTE format('DROP TRIGGER bump_context_version_delete ON fsconf.%I', t);
        EXECUTE format('DROP TRIGGER bump_context_version_update_new ON fsconf.%I', t);
        EXECUTE format('DROP TRIGGER bump_context_version_update_old ON fsconf.%I', t);
        EXECUTE format('DROP TRIGGER bump_context_version_insert ON fsconf.%I', t);
    END LOOP;
END
$$;
DROP FUNCTION fsconf.bump_context_version();
DROP TABLE fsconf.prerendered_contexts;
DROP SEQUENCE fsconf.context_version_seq;
