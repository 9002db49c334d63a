-- Per-node scope (issue 14, docs/cluster.md): any entity FreeSWITCH looks up can
-- be limited to named nodes or node groups.
--
--   * `nodes text[]` on global_variables, domains, users, gateways,
--     dialplan_contexts, dialplan_extensions, documents and elements: NULL is every
--     node (as before); else a sorted list of node names (a node's
--     FreeSWITCH-Switchname, lower-cased) and @groups (fsconf.node_groups).
--   * Variants: the identities that were unique (a domain name, a user id in a
--     domain, a gateway name in a domain, a global name, a context or document
--     name) are unique per scope, so a scoped variant can stand beside the
--     unscoped one. Lookups take the most specific visible variant (named node >
--     node group > every node): docs/cluster.md, "Precedence".
--   * global_variables gets an id (a stable row identity for history and undo,
--     now that its name no longer is one); the change log's earlier global rows
--     are given the id their variable has (or a fresh one when it is gone), so
--     undoing an earlier change set still finds its row.
--   * fsconf.node_groups: which nodes each group holds. A change to it can change
--     any node's answers: it is recorded under the section `nodes` with the key
--     {"s":"nodes","all":true}, which nodes read as "forget everything".
-- migrate:up

-- A scope: NULL (every node), or 1 to 64 entries, each a node name or @group
-- (lower case: names compare without case, as host names do), sorted (byte order)
-- without duplicates, so equal scopes are equal arrays. FieldValidation.scopeProblem
-- says the same in Swift.
CREATE FUNCTION fsconf.is_scope(s text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT s IS NULL OR (
        array_ndims(s) = 1 AND cardinality(s) BETWEEN 1 AND 64
        AND NOT EXISTS (SELECT 1 FROM unnest(s) x WHERE x IS NULL OR x !~ '^@?[a-z0-9][a-z0-9_.:-]{0,252}$')
        AND s = ARRAY(SELECT DISTINCT x COLLATE "C" FROM unnest(s) x ORDER BY 1))
$$;

CREATE TABLE fsconf.node_groups (
    node_group text NOT NULL CHECK (node_group ~ '^[a-z0-9][a-z0-9_.:-]{0,252}$'),
    node       text NOT NULL CHECK (node ~ '^[a-z0-9][a-z0-9_.:-]{0,252}$'),
    PRIMARY KEY (node_group, node)
);
-- Every lookup reads the asking node's groups.
CREATE INDEX node_groups_node_idx ON fsconf.node_groups (node);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['global_variables', 'domains', 'users', 'gateways', 'dialplan_contexts',
                             'dialplan_extensions', 'documents', 'elements']
    LOOP
        EXECUTE format('ALTER TABLE fsconf.%I ADD COLUMN nodes text[] CONSTRAINT %I CHECK (fsconf.is_scope(nodes))',
                       t, t || '_nodes_check');
    END LOOP;
END
$$;

-- A document's root is the document: scope the document instead.
ALTER TABLE fsconf.elements ADD CONSTRAINT elements_root_nodes_check CHECK (parent_id IS NOT NULL OR nodes IS NULL);

-- Identities unique per scope ('{}' stands for every node in the keys).
DROP INDEX fsconf.domains_name_idx;
CREATE UNIQUE INDEX domains_name_idx ON fsconf.domains (lower(name), coalesce(nodes, '{}'));
DROP INDEX fsconf.users_id_idx;
CREATE UNIQUE INDEX users_id_idx ON fsconf.users (domain_id, lower(user_id), coalesce(nodes, '{}'));
DROP INDEX fsconf.users_number_alias_idx;
CREATE UNIQUE INDEX users_number_alias_idx ON fsconf.users (domain_id, lower(number_alias), coalesce(nodes, '{}'));
ALTER TABLE fsconf.gateways DROP CONSTRAINT gateways_domain_id_name_key;
CREATE UNIQUE INDEX gateways_name_idx ON fsconf.gateways (domain_id, name, coalesce(nodes, '{}'));
ALTER TABLE fsconf.dialplan_contexts DROP CONSTRAINT dialplan_contexts_section_name_key;
CREATE UNIQUE INDEX dialplan_contexts_name_idx ON fsconf.dialplan_contexts (section, name, coalesce(nodes, '{}'));
ALTER TABLE fsconf.documents DROP CONSTRAINT documents_section_name_key;
CREATE UNIQUE INDEX documents_name_idx ON fsconf.documents (section, name, coalesce(nodes, '{}'));

-- Global variables: an id, and the name unique per scope.
ALTER TABLE fsconf.global_variables ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE fsconf.global_variables DROP CONSTRAINT global_variables_pkey;
ALTER TABLE fsconf.global_variables ADD CONSTRAINT global_variables_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX global_variables_name_idx ON fsconf.global_variables (name, coalesce(nodes, '{}'));

-- The change log's earlier global rows: the id of the variable of that name (a
-- fresh one for a variable that is gone), so undo finds them by id.
CREATE TEMPORARY TABLE global_ids ON COMMIT DROP AS
    SELECT name, id FROM fsconf.global_variables;
INSERT INTO global_ids (name, id)
    SELECT DISTINCT ON (coalesce(new_row, old_row)->>'name') coalesce(new_row, old_row)->>'name',
           nextval(pg_get_serial_sequence('fsconf.global_variables', 'id'))
    FROM fsconf.changes
    WHERE table_name = 'global_variables' AND coalesce(new_row, old_row)->>'name' NOT IN (SELECT name FROM global_ids);
UPDATE fsconf.changes c
SET old_row = CASE WHEN c.old_row IS NULL THEN NULL ELSE c.old_row || jsonb_build_object('id', g.id) END,
    new_row = CASE WHEN c.new_row IS NULL THEN NULL ELSE c.new_row || jsonb_build_object('id', g.id) END,
    row_id = g.id
FROM global_ids g
WHERE c.table_name = 'global_variables' AND coalesce(c.new_row, c.old_row)->>'name' = g.name;
-- Secret values kept apart from the change log (migration 0005), when present.
DO $$
BEGIN
    IF to_regclass('fsconf_private.change_secrets') IS NOT NULL THEN
        EXECUTE $q$
            UPDATE fsconf_private.change_secrets s
            SET old_row = CASE WHEN s.old_row IS NULL THEN NULL ELSE s.old_row || jsonb_build_object('id', c.row_id) END,
                new_row = CASE WHEN s.new_row IS NULL THEN NULL ELSE s.new_row || jsonb_build_object('id', c.row_id) END
            FROM fsconf.changes c
            WHERE c.id = s.change_id AND c.table_name = 'global_variables' AND c.row_id IS NOT NULL
        $q$;
    END IF;
END
$$;

-- Group memberships are recorded like every configuration row; a change forgets
-- every answer (a node's groups decide what it sees anywhere).
CREATE FUNCTION fsconf.record_node_group_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    k jsonb := '[{"s":"nodes","all":true}]';
    r jsonb;
BEGIN
    -- A node's groups decide which global variables it gets: a node keeping a copy
    -- of them by version (fsconf.globals_version, when present) must read them again.
    IF to_regclass('fsconf.globals_version') IS NOT NULL THEN
        EXECUTE 'UPDATE fsconf.globals_version SET value = (random() * 4.6e18)::bigint';
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO fsconf.changes (change_set_id, section, path, table_name, operation, keys)
        VALUES (fsconf.current_change_set(), 'nodes', 'node_groups/*', 'node_groups', 'truncate', k);
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND to_jsonb(OLD) = to_jsonb(NEW) THEN
        RETURN NULL;
    END IF;
    r := CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END;
    INSERT INTO fsconf.changes (change_set_id, section, path, old_value, new_value,
                                table_name, operation, old_row, new_row, keys)
    VALUES (fsconf.current_change_set(), 'nodes', 'node_groups/' || (r->>'node_group') || '/' || (r->>'node'),
            CASE WHEN TG_OP <> 'INSERT' THEN OLD.node END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.node END,
            'node_groups', lower(TG_OP),
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END, CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END, k);
    RETURN NULL;
END;
$$;
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON fsconf.node_groups
    FOR EACH ROW EXECUTE FUNCTION fsconf.record_node_group_change();
CREATE TRIGGER record_truncate AFTER TRUNCATE ON fsconf.node_groups
    FOR EACH STATEMENT EXECUTE FUNCTION fsconf.record_node_group_change();

-- migrate:down

-- Scoped variants have no place in the earlier schema: they are removed (recorded
-- in the change log like any other delete).
DROP TRIGGER record_truncate ON fsconf.node_groups;
DROP TRIGGER record_change ON fsconf.node_groups;
DROP FUNCTION fsconf.record_node_group_change();
DROP TABLE fsconf.node_groups;

DELETE FROM fsconf.global_variables WHERE nodes IS NOT NULL;
DELETE FROM fsconf.domains WHERE nodes IS NOT NULL;
DELETE FROM fsconf.users WHERE nodes IS NOT NULL;
DELETE FROM fsconf.gateways WHERE nodes IS NOT NULL;
DELETE FROM fsconf.dialplan_contexts WHERE nodes IS NOT NULL;
DELETE FROM fsconf.dialplan_extensions WHERE nodes IS NOT NULL;
DELETE FROM fsconf.documents WHERE nodes IS NOT NULL;
DELETE FROM fsconf.elements WHERE nodes IS NOT NULL;

DROP INDEX fsconf.global_variables_name_idx;
ALTER TABLE fsconf.global_variables DROP CONSTRAINT global_variables_pkey;
ALTER TABLE fsconf.global_variables ADD CONSTRAINT global_variables_pkey PRIMARY KEY (name);
ALTER TABLE fsconf.global_variables DROP COLUMN id;

DROP INDEX fsconf.documents_name_idx;
ALTER TABLE fsconf.documents ADD CONSTRAINT documents_section_name_key UNIQUE (section, name);
DROP INDEX fsconf.dialplan_contexts_name_idx;
ALTER TABLE fsconf.dialplan_contexts ADD CONSTRAINT dialplan_contexts_section_name_key UNIQUE (section, name);
DROP INDEX fsconf.gateways_name_idx;
ALTER TABLE fsconf.gateways ADD CONSTRAINT gateways_domain_id_name_key UNIQUE (domain_id, name);
DROP INDEX fsconf.users_number_alias_idx;
CREATE UNIQUE INDEX users_number_alias_idx ON fsconf.users (domain_id, lower(number_alias));
DROP INDEX fsconf.users_id_idx;
CREATE UNIQUE INDEX users_id_idx ON fsconf.users (domain_id, lower(user_id));
DROP INDEX fsconf.domains_name_idx;
CREATE UNIQUE INDEX domains_name_idx ON fsconf.domains (lower(name));

ALTER TABLE fsconf.elements DROP CONSTRAINT elements_root_nodes_check;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['global_variables', 'domains', 'users', 'gateways', 'dialplan_contexts',
                             'dialplan_extensions', 'documents', 'elements']
    LOOP
        EXECUTE format('ALTER TABLE fsconf.%I DROP COLUMN nodes', t);
    END LOOP;
END
$$;
DROP FUNCTION fsconf.is_scope(text[]);
