-- Reference-named users whose id every node expands the same way
-- (docs/performance.md, "Run 8").
--
-- A user lookup considers, besides the user asked for, every user of the domain
-- whose id holds a $${name} reference (the node expands it and compares). One
-- whose id is exactly one reference to a stored global that is the same on every
-- node (not exec-set or env-set, no variants for some nodes) and whose value holds
-- no reference expands to that value on every node: vanilla's
-- `$${default_provider}` user is `example.com`, never `1000`, so the statement
-- leaves it out. Until now the statement worked that out on every lookup by
-- joining the global variables, which on the stock tree cost a quarter of its
-- execution (~300,000 of ~1,060,000 instructions per lookup in the backend).
--
-- fsconf.fixed_user_ids holds the answer: one row per such user, with the value
-- its id expands to, lower-cased (the statement compares with lower($2), as
-- before), and the globals version (migration 0006) it was worked out from. The
-- statement uses a row only while that version is the current one; no row, or a
-- row of another version: the node decides, as before (a row left unused can only
-- cost a few more rows in an answer, never a wrong one). Statement-level triggers
-- keep it current: a statement writing users recomputes the rows of the users it
-- wrote, one writing global_variables recomputes them all (a handful: only ids
-- that are one whole reference). The version makes concurrent writers safe
-- without a lock: a row and its version are read in one snapshot, so a user
-- written while another transaction changes the globals carries the version from
-- before that change, which is not current once it commits. Writes with triggers
-- disabled (session_replication_role = replica) bypass it, as they bypass change
-- capture and the globals version: run `fsconf prerender --all` after one.
-- Derived data: no change capture, no undo.
-- migrate:up

CREATE TABLE fsconf.fixed_user_ids (
    user_id         bigint PRIMARY KEY REFERENCES fsconf.users ON DELETE CASCADE,
    expands_to      text NOT NULL,
    globals_version bigint NOT NULL
);

-- What the table should hold: the condition the statement evaluated per lookup
-- before (also what `fsconf doctor` compares the table with).
CREATE VIEW fsconf.fixed_user_ids_due AS
SELECT u.id AS user_id, lower(v.value) AS expands_to, (SELECT g.value FROM fsconf.globals_version g) AS globals_version
FROM fsconf.users u JOIN fsconf.global_variables v
    ON v.name = substr(u.user_id, 4, length(u.user_id) - 4) AND v.nodes IS NULL
    AND v.command NOT IN ('exec-set', 'env-set')
WHERE u.user_id LIKE '$${%}' AND v.value NOT LIKE '%$${%'
  AND NOT EXISTS (SELECT 1 FROM fsconf.global_variables x WHERE x.name = v.name AND x.nodes IS NOT NULL);

-- The rows for `ids` (NULL: every user), in user order (two refreshes touch rows
-- in the same order).
CREATE FUNCTION fsconf.refresh_fixed_user_ids(ids bigint[]) RETURNS void
LANGUAGE sql AS $body$
    DELETE FROM fsconf.fixed_user_ids f
    WHERE (ids IS NULL OR f.user_id = ANY (ids))
      AND NOT EXISTS (SELECT 1 FROM fsconf.fixed_user_ids_due d WHERE d.user_id = f.user_id);
    INSERT INTO fsconf.fixed_user_ids (user_id, expands_to, globals_version)
    SELECT d.user_id, d.expands_to, d.globals_version FROM fsconf.fixed_user_ids_due d
    WHERE ids IS NULL OR d.user_id = ANY (ids) ORDER BY d.user_id
    ON CONFLICT (user_id) DO UPDATE SET expands_to = EXCLUDED.expands_to, globals_version = EXCLUDED.globals_version
        WHERE (fsconf.fixed_user_ids.expands_to, fsconf.fixed_user_ids.globals_version)
              IS DISTINCT FROM (EXCLUDED.expands_to, EXCLUDED.globals_version);
$body$;

-- The globals triggers are named so that they fire after renew_globals_version_*
-- (PostgreSQL fires the triggers of one event in the order of their names): the
-- rows then carry the version the statement's own write produced.
CREATE FUNCTION fsconf.fixed_user_ids_after_users() RETURNS trigger
LANGUAGE plpgsql AS $body$
BEGIN
    -- Only ids that are one whole reference can have a row.
    IF EXISTS (SELECT 1 FROM changed ch WHERE ch.user_id LIKE '$${%}') THEN
        PERFORM fsconf.refresh_fixed_user_ids(ARRAY(SELECT ch.id FROM changed ch WHERE ch.user_id LIKE '$${%}'));
    END IF;
    -- An id renamed away from a reference: its row goes.
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM fsconf.fixed_user_ids f USING changed ch
        WHERE f.user_id = ch.id AND ch.user_id NOT LIKE '$${%}';
    END IF;
    RETURN NULL;
END;
$body$;

CREATE FUNCTION fsconf.fixed_user_ids_after_globals() RETURNS trigger
LANGUAGE plpgsql AS $body$
BEGIN
    PERFORM fsconf.refresh_fixed_user_ids(NULL);
    RETURN NULL;
END;
$body$;

CREATE TRIGGER sync_fixed_user_ids_insert AFTER INSERT ON fsconf.users
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION fsconf.fixed_user_ids_after_users();
CREATE TRIGGER sync_fixed_user_ids_update AFTER UPDATE ON fsconf.users
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION fsconf.fixed_user_ids_after_users();
CREATE TRIGGER sync_fixed_user_ids_insert AFTER INSERT ON fsconf.global_variables
    FOR EACH STATEMENT EXECUTE FUNCTION fsconf.fixed_user_ids_after_globals();
CREATE TRIGGER sync_fixed_user_ids_update AFTER UPDATE ON fsconf.global_variables
    FOR EACH STATEMENT EXECUTE FUNCTION fsconf.fixed_user_ids_after_globals();
CREATE TRIGGER sync_fixed_user_ids_delete AFTER DELETE ON fsconf.global_variables
    FOR EACH STATEMENT EXECUTE FUNCTION fsconf.fixed_user_ids_after_globals();
CREATE TRIGGER sync_fixed_user_ids_truncate AFTER TRUNCATE ON fsconf.global_variables
    FOR EACH STATEMENT EXECUTE FUNCTION fsconf.fixed_user_ids_after_globals();

SELECT fsconf.refresh_fixed_user_ids(NULL);

-- Readers read it; writers' statements maintain it (the triggers run as the
-- writer). The group roles may not exist yet (`fsconf grant` and every
-- `migrate up` apply the same).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsconf_reader') THEN
        GRANT SELECT ON fsconf.fixed_user_ids, fsconf.fixed_user_ids_due TO fsconf_reader;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsconf_writer') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON fsconf.fixed_user_ids TO fsconf_writer;
        GRANT SELECT ON fsconf.fixed_user_ids_due TO fsconf_writer;
    END IF;
END
$$;

-- migrate:down

DROP TRIGGER sync_fixed_user_ids_truncate ON fsconf.global_variables;
DROP TRIGGER sync_fixed_user_ids_delete ON fsconf.global_variables;
DROP TRIGGER sync_fixed_user_ids_update ON fsconf.global_variables;
DROP TRIGGER sync_fixed_user_ids_insert ON fsconf.global_variables;
DROP TRIGGER sync_fixed_user_ids_update ON fsconf.users;
DROP TRIGGER sync_fixed_user_ids_insert ON fsconf.users;
DROP FUNCTION fsconf.fixed_user_ids_after_globals();
DROP FUNCTION fsconf.fixed_user_ids_after_users();
DROP FUNCTION fsconf.refresh_fixed_user_ids(bigint[]);
DROP VIEW fsconf.fixed_user_ids_due;
DROP TABLE fsconf.fixed_user_ids;
