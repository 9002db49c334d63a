-- Change capture: every write to a configuration table — by fsconf, by an import,
-- or by hand in psql — is recorded row by row under a change set, and each
-- committed change set is announced once, with the keys it touched.
--
-- The contract (docs/changes.md):
--   * A writer may open its own change set:
--       INSERT INTO fsconf.change_sets (actor, source, summary) VALUES (...) RETURNING id;
--       SELECT set_config('fsconf.change_set_id', <id>, true);
--     Without one, the first row change in a transaction opens a change set with
--     source 'sql' and actor session_user.
--   * fsconf.changes gets one row per row change: table, row id, operation, the old
--     and new row (jsonb, for undo) and the lookup keys it affects.
--   * At commit, the change set gets the next value of a commit-ordered counter
--     (fsconf.change_sets.seq; fsconf.change_counter holds the latest) and
--     NOTIFY fsconf_changes '{"seq":N,"id":ID,"keys":[...]}' is sent (or
--     '{"seq":N,"id":ID,"all":true}' when the keys do not fit a notification).
--     Nodes reading a standby (which gets no NOTIFY) poll change_counter.
-- migrate:up

ALTER TABLE fsconf.change_sets ADD COLUMN seq bigint UNIQUE;
ALTER TABLE fsconf.changes
    ADD COLUMN table_name text,
    ADD COLUMN row_id     bigint,
    ADD COLUMN operation  text CHECK (operation IN ('insert', 'update', 'delete', 'truncate')),
    ADD COLUMN old_row    jsonb,
    ADD COLUMN new_row    jsonb,
    ADD COLUMN keys       jsonb NOT NULL DEFAULT '[]';

-- One row: the sequence number of the last committed change set. Updating it at
-- commit serialises committers, so seq order is commit order.
CREATE TABLE fsconf.change_counter (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    value    bigint NOT NULL DEFAULT 0
);
INSERT INTO fsconf.change_counter DEFAULT VALUES;

-- The change set of the current transaction, opened on first use.
CREATE FUNCTION fsconf.current_change_set() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    id bigint := nullif(current_setting('fsconf.change_set_id', true), '')::bigint;
BEGIN
    IF id IS NULL THEN
        INSERT INTO fsconf.change_sets (actor, source, summary)
        VALUES (session_user, 'sql', 'changed outside fsconf') RETURNING change_sets.id INTO id;
        PERFORM set_config('fsconf.change_set_id', id::text, true);
    END IF;
    RETURN id;
END;
$$;

-- The lookup keys a row touches: what a node must forget when it changes.
--   {"s":"directory","d":DOMAIN[,"u":USER][,"a":ALIAS][,"g":GATEWAY]}  (no "d": the whole section)
--   {"s":"dialplan","c":CONTEXT}   {"s":"configuration"|"languages","n":NAME}
--   {"s":"globals","n":NAME}       (a global can appear in any answer)
CREATE FUNCTION fsconf.change_keys(tbl text, r jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k jsonb;
BEGIN
    CASE tbl
    WHEN 'global_variables' THEN
        k := jsonb_build_object('s', 'globals', 'n', r->>'name');
    WHEN 'domains' THEN
        k := jsonb_build_object('s', 'directory', 'd', r->>'name');
    WHEN 'groups', 'domain_settings' THEN
        SELECT jsonb_build_object('s', 'directory', 'd', d.name) INTO k
        FROM fsconf.domains d WHERE d.id = (r->>'domain_id')::bigint;
    WHEN 'group_settings', 'group_members' THEN
        SELECT jsonb_build_object('s', 'directory', 'd', d.name) INTO k
        FROM fsconf.groups g JOIN fsconf.domains d ON d.id = g.domain_id WHERE g.id = (r->>'group_id')::bigint;
    WHEN 'users' THEN
        SELECT jsonb_strip_nulls(jsonb_build_object('s', 'directory', 'd', d.name, 'u', r->>'user_id', 'a', r->>'number_alias')) INTO k
        FROM fsconf.domains d WHERE d.id = (r->>'domain_id')::bigint;
    WHEN 'user_settings' THEN
        SELECT jsonb_strip_nulls(jsonb_build_object('s', 'directory', 'd', d.name, 'u', u.user_id, 'a', u.number_alias)) INTO k
        FROM fsconf.users u JOIN fsconf.domains d ON d.id = u.domain_id WHERE u.id = (r->>'user_id')::bigint;
    WHEN 'gateways' THEN
        SELECT jsonb_strip_nulls(jsonb_build_object('s', 'directory', 'd', d.name, 'u', u.user_id, 'a', u.number_alias, 'g', r->>'name')) INTO k
        FROM fsconf.domains d LEFT JOIN fsconf.users u ON u.id = (r->>'user_id')::bigint
        WHERE d.id = (r->>'domain_id')::bigint;
    WHEN 'gateway_settings' THEN
        SELECT jsonb_strip_nulls(jsonb_build_object('s', 'directory', 'd', d.name, 'u', u.user_id, 'a', u.number_alias, 'g', g.name)) INTO k
        FROM fsconf.gateways g JOIN fsconf.domains d ON d.id = g.domain_id LEFT JOIN fsconf.users u ON u.id = g.user_id
        WHERE g.id = (r->>'gateway_id')::bigint;
    WHEN 'dialplan_contexts' THEN
        k := jsonb_build_object('s', 'dialplan', 'c', r->>'name');
    WHEN 'dialplan_extensions' THEN
        SELECT jsonb_build_object('s', 'dialplan', 'c', c.name) INTO k
        FROM fsconf.dialplan_contexts c WHERE c.id = (r->>'context_id')::bigint;
    WHEN 'dialplan_conditions' THEN
        SELECT jsonb_build_object('s', 'dialplan', 'c', c.name) INTO k
        FROM fsconf.dialplan_extensions e JOIN fsconf.dialplan_contexts c ON c.id = e.context_id
        WHERE e.id = (r->>'extension_id')::bigint;
    WHEN 'dialplan_regexes', 'dialplan_actions' THEN
        SELECT jsonb_build_object('s', 'dialplan', 'c', c.name) INTO k
        FROM fsconf.dialplan_conditions x JOIN fsconf.dialplan_extensions e ON e.id = x.extension_id
        JOIN fsconf.dialplan_contexts c ON c.id = e.context_id WHERE x.id = (r->>'condition_id')::bigint;
    WHEN 'documents' THEN
        k := jsonb_build_object('s', r->>'section', 'n', r->>'name');
    WHEN 'elements' THEN
        SELECT jsonb_build_object('s', d.section, 'n', d.name) INTO k
        FROM fsconf.documents d WHERE d.id = (r->>'document_id')::bigint;
    WHEN 'attributes' THEN
        SELECT jsonb_build_object('s', d.section, 'n', d.name) INTO k
        FROM fsconf.elements e JOIN fsconf.documents d ON d.id = e.document_id WHERE e.id = (r->>'element_id')::bigint;
    ELSE
        k := NULL;
    END CASE;
    -- The parent is already gone (a cascading delete): forget the whole section.
    IF k IS NULL THEN
        k := jsonb_build_object('s', CASE
            WHEN tbl LIKE 'dialplan%' THEN 'dialplan'
            WHEN tbl IN ('documents', 'elements', 'attributes') THEN 'configuration'
            ELSE 'directory' END, 'all', true);
        IF tbl IN ('elements', 'attributes') THEN
            k := jsonb_build_array(k, jsonb_build_object('s', 'languages', 'all', true));
            RETURN k;
        END IF;
    END IF;
    RETURN jsonb_build_array(k);
END;
$$;

-- A short human path for history; `fsconf history` renders richer ones.
CREATE FUNCTION fsconf.change_path(tbl text, r jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT tbl || '/' || coalesce(r->>'id', r->>'name', r->>'element_id', '?')
$$;

CREATE FUNCTION fsconf.record_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    old_r jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_r jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    k jsonb;
    old_v text;
    new_v text;
BEGIN
    IF TG_OP = 'UPDATE' AND old_r = new_r THEN
        RETURN NULL;  -- nothing changed
    END IF;
    k := fsconf.change_keys(TG_TABLE_NAME, coalesce(new_r, old_r));
    IF TG_OP = 'UPDATE' THEN
        -- A rename or a move touches the old keys as well.
        k := k || fsconf.change_keys(TG_TABLE_NAME, old_r);
    END IF;
    -- The field's value, for rows that hold one value (settings, attributes, globals).
    old_v := coalesce(old_r->>'value', old_r->>'data');
    new_v := coalesce(new_r->>'value', new_r->>'data');
    INSERT INTO fsconf.changes (change_set_id, section, path, old_value, new_value,
                                table_name, row_id, operation, old_row, new_row, keys)
    VALUES (fsconf.current_change_set(), coalesce(k->0->>'s', 'directory'),
            fsconf.change_path(TG_TABLE_NAME, coalesce(new_r, old_r)), old_v, new_v,
            TG_TABLE_NAME, (coalesce(new_r, old_r)->>'id')::bigint, lower(TG_OP), old_r, new_r, k);
    RETURN NULL;
END;
$$;

-- TRUNCATE fires no row triggers: record it as one change that forgets the section
-- (it cannot be undone: the rows are not kept).
CREATE FUNCTION fsconf.record_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    s text := CASE
        WHEN TG_TABLE_NAME LIKE 'dialplan%' THEN 'dialplan'
        WHEN TG_TABLE_NAME = 'global_variables' THEN 'globals'
        WHEN TG_TABLE_NAME IN ('documents', 'elements', 'attributes') THEN 'configuration'
        ELSE 'directory' END;
    k jsonb := jsonb_build_array(jsonb_build_object('s', s, 'all', true));
BEGIN
    IF s = 'configuration' THEN k := k || jsonb_build_array(jsonb_build_object('s', 'languages', 'all', true)); END IF;
    INSERT INTO fsconf.changes (change_set_id, section, path, table_name, operation, keys)
    VALUES (fsconf.current_change_set(), s, TG_TABLE_NAME || '/*', TG_TABLE_NAME, 'truncate', k);
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['global_variables', 'domains', 'groups', 'users', 'group_members',
        'domain_settings', 'group_settings', 'user_settings', 'gateways', 'gateway_settings',
        'dialplan_contexts', 'dialplan_extensions', 'dialplan_conditions', 'dialplan_regexes',
        'dialplan_actions', 'documents', 'elements', 'attributes']
    LOOP
        EXECUTE format('CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON fsconf.%I
                        FOR EACH ROW EXECUTE FUNCTION fsconf.record_change()', t);
        EXECUTE format('CREATE TRIGGER record_truncate AFTER TRUNCATE ON fsconf.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION fsconf.record_truncate()', t);
    END LOOP;
END
$$;

-- At commit: number the change set in commit order and announce it.
CREATE FUNCTION fsconf.announce_change_set() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    keys jsonb;
    payload text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM fsconf.changes WHERE change_set_id = NEW.id) THEN
        RETURN NULL;  -- opened but nothing changed: no number, no announcement
    END IF;
    UPDATE fsconf.change_counter SET value = value + 1 RETURNING value INTO n;
    UPDATE fsconf.change_sets SET seq = n WHERE id = NEW.id;
    SELECT coalesce(jsonb_agg(DISTINCT k), '[]') INTO keys
    FROM fsconf.changes c, jsonb_array_elements(c.keys) AS k WHERE c.change_set_id = NEW.id;
    payload := jsonb_build_object('seq', n, 'id', NEW.id, 'keys', keys)::text;
    IF octet_length(payload) > 7900 THEN
        payload := jsonb_build_object('seq', n, 'id', NEW.id, 'all', true)::text;
    END IF;
    PERFORM pg_notify('fsconf_changes', payload);
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER announce_change_set AFTER INSERT ON fsconf.change_sets
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fsconf.announce_change_set();

CREATE INDEX changes_table_row_idx ON fsconf.changes (table_name, row_id);

-- migrate:down

DROP TRIGGER announce_change_set ON fsconf.change_sets;
DROP FUNCTION fsconf.announce_change_set();
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['global_variables', 'domains', 'groups', 'users', 'group_members',
        'domain_settings', 'group_settings', 'user_settings', 'gateways', 'gateway_settings',
        'dialplan_contexts', 'dialplan_extensions', 'dialplan_conditions', 'dialplan_regexes',
        'dialplan_actions', 'documents', 'elements', 'attributes']
    LOOP
        EXECUTE format('DROP TRIGGER record_change ON fsconf.%I', t);
        EXECUTE format('DROP TRIGGER record_truncate ON fsconf.%I', t);
    END LOOP;
END
$$;
DROP FUNCTION fsconf.record_truncate();
DROP FUNCTION fsconf.record_change();
DROP FUNCTION fsconf.change_path(text, jsonb);
DROP FUNCTION fsconf.change_keys(text, jsonb);
DROP FUNCTION fsconf.current_change_set();
DROP TABLE fsconf.change_counter;
DROP INDEX fsconf.changes_table_row_idx;
ALTER TABLE fsconf.changes
    DROP COLUMN keys, DROP COLUMN new_row, DROP COLUMN old_row,
    DROP COLUMN operation, DROP COLUMN row_id, DROP COLUMN table_name;
ALTER TABLE fsconf.change_sets DROP COLUMN seq;
