-- Everything FreeSWITCH reads, stored as written (issue 12):
--   * the chatplan (mod_sms): contexts like the dialplan's, told apart by `section`;
--   * <action>/<anti-action> data given as element text (mod_dialplan_xml takes
--     `txt` before `data`) and the `loop` attribute;
--   * <regex> children with time attributes only (switch_xml_std_datetime_check on
--     each <regex>), and <expression> children of conditions and regexes, so render
--     and export give back the operator's form;
--   * exec-set / env-set globals: evaluated by each node at its start, never by the
--     admin host: `command` says which directive set the variable, and lookups leave
--     node-evaluated ones to the node's own global.
-- migrate:up

ALTER TABLE fsconf.dialplan_contexts
    ADD COLUMN section text NOT NULL DEFAULT 'dialplan' CHECK (section IN ('dialplan', 'chatplan'));
ALTER TABLE fsconf.dialplan_contexts DROP CONSTRAINT dialplan_contexts_name_key;
ALTER TABLE fsconf.dialplan_contexts ADD CONSTRAINT dialplan_contexts_section_name_key UNIQUE (section, name);

-- true: <expression>…</expression> child instead of the expression attribute.
ALTER TABLE fsconf.dialplan_conditions ADD COLUMN expression_element boolean NOT NULL DEFAULT false;

ALTER TABLE fsconf.dialplan_regexes
    ALTER COLUMN field DROP NOT NULL,
    ALTER COLUMN expression DROP NOT NULL,
    ADD COLUMN expression_element boolean NOT NULL DEFAULT false,
    ADD COLUMN year text,
    ADD COLUMN yday text,
    ADD COLUMN mon text,
    ADD COLUMN mday text,
    ADD COLUMN week text,
    ADD COLUMN mweek text,
    ADD COLUMN wday text,
    ADD COLUMN hour text,
    ADD COLUMN minute text,
    ADD COLUMN minute_of_day text,
    ADD COLUMN time_of_day text,
    ADD COLUMN date_time text,
    ADD COLUMN tz text;

-- data_element true: the data is the element's text (<action application="x">data</action>).
ALTER TABLE fsconf.dialplan_actions
    ADD COLUMN data_element boolean NOT NULL DEFAULT false,
    ADD COLUMN loop text CHECK (loop IS NULL OR loop <> '');

ALTER TABLE fsconf.global_variables
    ADD COLUMN command text NOT NULL DEFAULT 'set' CHECK (command IN ('set', 'stun-set', 'exec-set', 'env-set'));

-- Change keys name the context's section (dialplan or chatplan).
CREATE OR REPLACE FUNCTION fsconf.change_keys(tbl text, r jsonb) RETURNS jsonb
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
        k := jsonb_build_object('s', coalesce(r->>'section', 'dialplan'), 'c', r->>'name');
    WHEN 'dialplan_extensions' THEN
        SELECT jsonb_build_object('s', c.section, 'c', c.name) INTO k
        FROM fsconf.dialplan_contexts c WHERE c.id = (r->>'context_id')::bigint;
    WHEN 'dialplan_conditions' THEN
        SELECT jsonb_build_object('s', c.section, 'c', c.name) INTO k
        FROM fsconf.dialplan_extensions e JOIN fsconf.dialplan_contexts c ON c.id = e.context_id
        WHERE e.id = (r->>'extension_id')::bigint;
    WHEN 'dialplan_regexes', 'dialplan_actions' THEN
        SELECT jsonb_build_object('s', c.section, 'c', c.name) INTO k
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
        IF tbl LIKE 'dialplan%' THEN
            RETURN jsonb_build_array(k, jsonb_build_object('s', 'chatplan', 'all', true));
        END IF;
    END IF;
    RETURN jsonb_build_array(k);
END;
$$;

CREATE OR REPLACE FUNCTION fsconf.record_truncate() RETURNS trigger
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
    IF s = 'dialplan' THEN k := k || jsonb_build_array(jsonb_build_object('s', 'chatplan', 'all', true)); END IF;
    INSERT INTO fsconf.changes (change_set_id, section, path, table_name, operation, keys)
    VALUES (fsconf.current_change_set(), s, TG_TABLE_NAME || '/*', TG_TABLE_NAME, 'truncate', k);
    RETURN NULL;
END;
$$;

-- migrate:down

CREATE OR REPLACE FUNCTION fsconf.change_keys(tbl text, r jsonb) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION fsconf.record_truncate() RETURNS trigger
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

ALTER TABLE fsconf.global_variables DROP COLUMN command;
ALTER TABLE fsconf.dialplan_actions DROP COLUMN loop, DROP COLUMN data_element;
DELETE FROM fsconf.dialplan_regexes WHERE field IS NULL OR expression IS NULL;
ALTER TABLE fsconf.dialplan_regexes
    DROP COLUMN tz,
    DROP COLUMN date_time,
    DROP COLUMN time_of_day,
    DROP COLUMN minute_of_day,
    DROP COLUMN minute,
    DROP COLUMN hour,
    DROP COLUMN wday,
    DROP COLUMN mweek,
    DROP COLUMN week,
    DROP COLUMN mday,
    DROP COLUMN mon,
    DROP COLUMN yday,
    DROP COLUMN year,
    DROP COLUMN expression_element,
    ALTER COLUMN expression SET NOT NULL,
    ALTER COLUMN field SET NOT NULL;
ALTER TABLE fsconf.dialplan_conditions DROP COLUMN expression_element;
DELETE FROM fsconf.dialplan_contexts WHERE section = 'chatplan';
ALTER TABLE fsconf.dialplan_contexts DROP CONSTRAINT dialplan_contexts_section_name_key;
ALTER TABLE fsconf.dialplan_contexts ADD CONSTRAINT dialplan_contexts_name_key UNIQUE (name);
ALTER TABLE fsconf.dialplan_contexts DROP COLUMN section;
