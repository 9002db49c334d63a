-- Hardening (docs/security.md): what nodes (fsconf_reader) can read and do.
--
--   * Secret values leave the change log at commit: the value of a secret field
--     (a name holding password, secret, passphrase, a1-hash, ... : fsconf.is_secret_name)
--     is moved to fsconf_private.change_secrets, which readers cannot reach, and
--     fsconf.changes keeps "(hidden H)" in its place, H a salted hash (the salt is
--     private too): equal values hide alike, so the agent still sees what changed.
--     Undo reads the values back from there.
--   * The import lock is a table lock that only writers can take (a reader can take
--     any advisory lock, and would stall every import).
--   * Names and values every way in (set, the typed commands, import, SQL) must be
--     what fsconf can render: no control characters, names not empty, cacheable a
--     number FreeSWITCH reads as such. FieldValidation (FSConfCore) says the same.
--     NOT VALID: rows stored before this migration are not rechecked.
-- migrate:up

-- ---------------------------------------------------------------- secrets
-- One definition of a secret field name; FieldValidation.isSecretName agrees (tested).
CREATE FUNCTION fsconf.is_secret_name(n text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(lower(n) ~ '(password|passwd|passphrase|secret|credential|token|a1-hash|(^|[-_])pass$|(^|[-_])pin$|dsn$)', false)
$$;

CREATE SCHEMA fsconf_private;
REVOKE ALL ON SCHEMA fsconf_private FROM PUBLIC;

-- The change rows' secret values as captured (what undo restores).
CREATE TABLE fsconf_private.change_secrets (
    change_id bigint PRIMARY KEY REFERENCES fsconf.changes ON DELETE CASCADE,
    old_row   jsonb,
    new_row   jsonb,
    old_value text,
    new_value text
);

-- A random salt, so that a hidden value cannot be guessed from its mark.
CREATE TABLE fsconf_private.secret_salt (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    salt     text NOT NULL
);
INSERT INTO fsconf_private.secret_salt (salt) VALUES (gen_random_uuid()::text || gen_random_uuid()::text);

-- "(hidden H)": H tells equal values apart from different ones, nothing more.
CREATE FUNCTION fsconf.hidden(v text, salt text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v IS NOT NULL THEN '(hidden ' || left(encode(sha256(convert_to(salt || v, 'UTF8')), 'hex'), 16) || ')' END
$$;

CREATE FUNCTION fsconf.hide_value(j jsonb, salt text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN j ? 'value' AND j->'value' <> 'null'::jsonb
                THEN jsonb_set(j, '{value}', to_jsonb(fsconf.hidden(j->>'value', salt))) ELSE j END
$$;

-- Moves the secret values of one change set out of fsconf.changes. A value is
-- secret when its row's name is (settings, globals, attributes), or when it is the
-- value attribute of an element whose name attribute is (<param name="password"
-- value="..."/>): that name is read from the table, or from the change set's own
-- rows when the element went away with it.
CREATE FUNCTION fsconf.hide_secrets(set_id bigint) RETURNS void
LANGUAGE sql AS $$
    WITH rows AS (
        SELECT id, table_name, coalesce(new_row, old_row) AS r, old_row, new_row
        FROM fsconf.changes WHERE change_set_id = set_id
    ), secret_elements AS (
        SELECT (r->>'element_id')::bigint AS element_id FROM rows
        WHERE table_name = 'attributes' AND r->>'name' = 'name'
          AND (fsconf.is_secret_name(old_row->>'value') OR fsconf.is_secret_name(new_row->>'value'))
        UNION
        SELECT a.element_id FROM fsconf.attributes a
        WHERE a.name = 'name' AND fsconf.is_secret_name(a.value)
          AND a.element_id IN (SELECT (r->>'element_id')::bigint FROM rows WHERE table_name = 'attributes' AND r->>'name' = 'value')
    ), secret AS (
        SELECT id FROM rows
        WHERE (table_name IN ('global_variables', 'domain_settings', 'group_settings', 'user_settings', 'gateway_settings', 'attributes')
               AND fsconf.is_secret_name(r->>'name'))
           OR (table_name = 'attributes' AND r->>'name' = 'value'
               AND (r->>'element_id')::bigint IN (SELECT element_id FROM secret_elements))
    ), moved AS (
        INSERT INTO fsconf_private.change_secrets (change_id, old_row, new_row, old_value, new_value)
        SELECT c.id, c.old_row, c.new_row, c.old_value, c.new_value FROM fsconf.changes c WHERE c.id IN (SELECT id FROM secret)
        ON CONFLICT (change_id) DO NOTHING
        RETURNING change_id
    )
    UPDATE fsconf.changes c
    SET old_row = fsconf.hide_value(c.old_row, s.salt), new_row = fsconf.hide_value(c.new_row, s.salt),
        old_value = fsconf.hidden(c.old_value, s.salt), new_value = fsconf.hidden(c.new_value, s.salt)
    FROM fsconf_private.secret_salt s
    WHERE c.id IN (SELECT change_id FROM moved)
$$;

CREATE FUNCTION fsconf.hide_change_set_secrets() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fsconf.hide_secrets(NEW.id);
    RETURN NULL;
END;
$$;

-- At commit, with every row of the change set recorded.
CREATE CONSTRAINT TRIGGER hide_secrets AFTER INSERT ON fsconf.change_sets
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fsconf.hide_change_set_secrets();

-- What is already in the log.
SELECT fsconf.hide_secrets(id) FROM fsconf.change_sets;

-- ---------------------------------------------------------------- locks
-- `fsconf import` holds LOCK TABLE fsconf.import_lock IN EXCLUSIVE MODE for its
-- transaction. Readers can only take ACCESS SHARE, which does not conflict.
CREATE TABLE fsconf.import_lock (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row)
);

-- Writers (never readers) reach the private schema: the capture trigger runs as
-- the writer. The group roles may not exist yet (`fsconf grant` applies the same).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsconf_writer') THEN
        GRANT USAGE ON SCHEMA fsconf_private TO fsconf_writer;
        GRANT SELECT, INSERT ON fsconf_private.change_secrets TO fsconf_writer;
        GRANT SELECT ON fsconf_private.secret_salt TO fsconf_writer;
        GRANT SELECT, UPDATE ON fsconf.import_lock TO fsconf_writer;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsconf_reader') THEN
        GRANT SELECT ON fsconf.import_lock TO fsconf_reader;
    END IF;
END
$$;

-- ---------------------------------------------------------------- names and values
-- A name: not empty, no control character (not even tab or newline), nothing an
-- invalid byte decodes to. A value: XML character data (tab, LF, CR allowed).
CREATE FUNCTION fsconf.is_name(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT t <> '' AND t !~ '[\u0001-\u001F\u007F\uFFFD\uFFFE\uFFFF]'
$$;
CREATE FUNCTION fsconf.is_text(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT t !~ '[\u0001-\u0008\u000B\u000C\u000E-\u001F\u007F\uFFFD\uFFFE\uFFFF]'
$$;
-- FreeSWITCH reads cacheable with atol() into an int and multiplies it by 1000 in
-- int arithmetic (switch_xml.c, switch_xml_locate_user_merged): above 2147483 ms
-- the lifetime wraps. "true" caches until xml_flush_cache.
CREATE FUNCTION fsconf.is_cacheable_ms(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT t !~ '^[0-9]+$' OR (length(ltrim(t, '0')) <= 7 AND coalesce(nullif(ltrim(t, '0'), ''), '0')::integer <= 2147483)
$$;

DO $$
DECLARE
    c text[];
BEGIN
    FOREACH c SLICE 1 IN ARRAY ARRAY[
        ['domains', 'name', 'name'], ['groups', 'name', 'name'], ['users', 'user_id', 'name'],
        ['users', 'number_alias', 'name'], ['domain_settings', 'name', 'name'], ['group_settings', 'name', 'name'],
        ['user_settings', 'name', 'name'], ['gateways', 'name', 'name'], ['gateway_settings', 'name', 'name'],
        ['dialplan_contexts', 'name', 'name'], ['documents', 'name', 'name'],
        ['dialplan_extensions', 'name', 'text'], ['users', 'extra_xml', 'text'],
        ['global_variables', 'value', 'text'], ['domain_settings', 'value', 'text'], ['group_settings', 'value', 'text'],
        ['user_settings', 'value', 'text'], ['gateway_settings', 'value', 'text'], ['attributes', 'value', 'text'],
        ['elements', 'text', 'text'], ['dialplan_actions', 'application', 'text'], ['dialplan_actions', 'data', 'text'],
        ['dialplan_conditions', 'field', 'text'], ['dialplan_conditions', 'expression', 'text'],
        ['dialplan_regexes', 'field', 'text'], ['dialplan_regexes', 'expression', 'text']]
    LOOP
        EXECUTE format('ALTER TABLE fsconf.%I ADD CONSTRAINT %I CHECK (%I IS NULL OR fsconf.is_%s(%I)) NOT VALID',
                       c[1], c[1] || '_' || c[2] || '_' || c[3] || '_check', c[2], c[3], c[2]);
    END LOOP;
END
$$;
ALTER TABLE fsconf.dialplan_extensions DROP CONSTRAINT dialplan_extensions_name_text_check;
ALTER TABLE fsconf.dialplan_extensions ADD CONSTRAINT dialplan_extensions_name_text_check
    CHECK (name = '' OR fsconf.is_name(name)) NOT VALID;
ALTER TABLE fsconf.domains ADD CONSTRAINT domains_cacheable_range_check
    CHECK (cacheable IS NULL OR fsconf.is_cacheable_ms(cacheable)) NOT VALID;
ALTER TABLE fsconf.users ADD CONSTRAINT users_cacheable_range_check
    CHECK (cacheable IS NULL OR fsconf.is_cacheable_ms(cacheable)) NOT VALID;

-- migrate:down

ALTER TABLE fsconf.users DROP CONSTRAINT users_cacheable_range_check;
ALTER TABLE fsconf.domains DROP CONSTRAINT domains_cacheable_range_check;
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
             WHERE connamespace = 'fsconf'::regnamespace AND contype = 'c'
               AND (conname LIKE '%\_name\_check' OR conname LIKE '%\_text\_check')
               AND pg_get_constraintdef(oid) LIKE '%fsconf.is\_%'
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.tbl, c.conname);
    END LOOP;
END
$$;
DROP FUNCTION fsconf.is_cacheable_ms(text);
DROP FUNCTION fsconf.is_text(text);
DROP FUNCTION fsconf.is_name(text);
DROP TABLE fsconf.import_lock;
-- The hidden values go back into the change log.
UPDATE fsconf.changes c
SET old_row = s.old_row, new_row = s.new_row, old_value = s.old_value, new_value = s.new_value
FROM fsconf_private.change_secrets s WHERE s.change_id = c.id;
DROP TRIGGER hide_secrets ON fsconf.change_sets;
DROP FUNCTION fsconf.hide_change_set_secrets();
DROP FUNCTION fsconf.hide_secrets(bigint);
DROP FUNCTION fsconf.hide_value(jsonb, text);
DROP FUNCTION fsconf.hidden(text, text);
DROP TABLE fsconf_private.secret_salt;
DROP TABLE fsconf_private.change_secrets;
DROP SCHEMA fsconf_private;
DROP FUNCTION fsconf.is_secret_name(text);
