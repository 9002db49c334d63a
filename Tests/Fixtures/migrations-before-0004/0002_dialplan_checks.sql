-- dialplan checks: what the database can refuse of a dialplan row on write
-- (the PCRE2 check of expressions lives in fsconf's validator: PostgreSQL
-- cannot compile with FreeSWITCH's regex engine). NOT VALID: rows already
-- stored are not rechecked; the node skips such extensions at render time.
-- migrate:up

-- A condition with a field needs an expression and the reverse, unless it is a
-- regex="all|any|xor" condition (mod_dialplan_xml reads its <regex> children then).
ALTER TABLE fsconf.dialplan_conditions
    ADD CONSTRAINT dialplan_conditions_field_expression_check
    CHECK (regex IS NOT NULL OR (field IS NULL) = (expression IS NULL)) NOT VALID;
ALTER TABLE fsconf.dialplan_conditions
    ADD CONSTRAINT dialplan_conditions_field_check
    CHECK (field IS NULL OR field <> '') NOT VALID;
ALTER TABLE fsconf.dialplan_regexes
    ADD CONSTRAINT dialplan_regexes_field_check CHECK (field <> '') NOT VALID;

-- A nested condition belongs to the extension of its parent.
CREATE FUNCTION fsconf.dialplan_condition_parent_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.parent_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM fsconf.dialplan_conditions p
        WHERE p.id = NEW.parent_id AND p.extension_id = NEW.extension_id
    ) THEN
        RAISE EXCEPTION 'condition % is nested in condition % of another extension', NEW.id, NEW.parent_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER dialplan_conditions_parent_check
    BEFORE INSERT OR UPDATE OF parent_id, extension_id ON fsconf.dialplan_conditions
    FOR EACH ROW EXECUTE FUNCTION fsconf.dialplan_condition_parent_check();

-- migrate:down

DROP TRIGGER dialplan_conditions_parent_check ON fsconf.dialplan_conditions;
DROP FUNCTION fsconf.dialplan_condition_parent_check();
ALTER TABLE fsconf.dialplan_regexes DROP CONSTRAINT dialplan_regexes_field_check;
ALTER TABLE fsconf.dialplan_conditions DROP CONSTRAINT dialplan_conditions_field_check;
ALTER TABLE fsconf.dialplan_conditions DROP CONSTRAINT dialplan_conditions_field_expression_check;
