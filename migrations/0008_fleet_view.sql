-- Fleet view: each node's agent records its node (name, FreeSWITCH version, agent
-- version), the last change set it applied, when it was last seen and the last
-- command that kept failing (docs/agent.md, "Fleet view"); change sets record
-- when they were committed (commit → applied times).
--
-- Least privilege: agents log in with a node role (a member of fsconf_reader,
-- which writes no table). They record their status only through
-- fsconf.report_node, a SECURITY DEFINER function that writes one row, the one of
-- the node name given, and only if that row was created by the same login role
-- (a node's credentials cannot rewrite another role's nodes). Nobody but the
-- function writes fsconf.nodes; fsconf_writer may delete a row (a node retired).
-- Migrations run as the database's owner, which owns the function.
-- migrate:up

ALTER TABLE fsconf.change_sets ADD COLUMN committed_at timestamptz;

-- The announcement (0003) numbers a change set at commit: stamp that moment.
CREATE FUNCTION fsconf.stamp_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq IS NOT NULL AND OLD.seq IS NULL THEN
        NEW.committed_at := clock_timestamp();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER stamp_commit BEFORE UPDATE OF seq ON fsconf.change_sets
    FOR EACH ROW EXECUTE FUNCTION fsconf.stamp_commit();

CREATE TABLE fsconf.nodes (
    name               text PRIMARY KEY CHECK (name <> '' AND length(name) <= 200),
    db_role            text NOT NULL,                 -- the login role that reports it
    freeswitch_version text,
    agent_version      text,
    applied_seq        bigint,                        -- the last change set applied
    applied_at         timestamptz,                   -- when applied_seq last moved
    seen_at            timestamptz NOT NULL,          -- the last report
    failed_command     text,                          -- the last command given up on
    failed_reply       text,
    failed_at          timestamptz,
    first_seen_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION fsconf.report_node(p_name text, p_freeswitch_version text, p_agent_version text,
                                   p_applied_seq bigint, p_failed_command text, p_failed_reply text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t timestamptz := clock_timestamp();
BEGIN
    IF p_name IS NULL OR p_name = '' OR length(p_name) > 200 THEN
        RAISE EXCEPTION 'a node name is 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO fsconf.nodes AS n (name, db_role, freeswitch_version, agent_version, applied_seq, applied_at, seen_at,
                                   failed_command, failed_reply, failed_at)
    VALUES (p_name, session_user, left(p_freeswitch_version, 200), left(p_agent_version, 50), p_applied_seq,
            CASE WHEN p_applied_seq IS NOT NULL THEN t END, t,
            left(p_failed_command, 500), left(p_failed_reply, 500), CASE WHEN p_failed_command IS NOT NULL THEN t END)
    ON CONFLICT (name) DO UPDATE SET
        freeswitch_version = coalesce(EXCLUDED.freeswitch_version, n.freeswitch_version),
        agent_version = EXCLUDED.agent_version,
        applied_at = CASE WHEN EXCLUDED.applied_seq IS DISTINCT FROM n.applied_seq THEN t ELSE n.applied_at END,
        applied_seq = EXCLUDED.applied_seq,
        seen_at = t,
        -- A failure stays until a different one replaces it; the same one keeps its time.
        failed_at = CASE WHEN EXCLUDED.failed_command IS NULL THEN n.failed_at
                         WHEN EXCLUDED.failed_command IS NOT DISTINCT FROM n.failed_command
                          AND EXCLUDED.failed_reply IS NOT DISTINCT FROM n.failed_reply THEN n.failed_at
                         ELSE t END,
        failed_command = coalesce(EXCLUDED.failed_command, n.failed_command),
        failed_reply = CASE WHEN EXCLUDED.failed_command IS NULL THEN n.failed_reply ELSE EXCLUDED.failed_reply END
    WHERE n.db_role = session_user;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'node % is reported by another database role', p_name USING ERRCODE = 'insufficient_privilege';
    END IF;
END;
$$;

-- Nobody but the owner may call it until granted: `fsconf migrate up` and
-- `fsconf grant` grant EXECUTE to fsconf_reader when the role exists, SELECT on
-- the table to both group roles, and DELETE (never INSERT or UPDATE) to
-- fsconf_writer (Privileges.grantStatement).
REVOKE ALL ON FUNCTION fsconf.report_node(text, text, text, bigint, text, text) FROM PUBLIC;

-- migrate:down

DROP FUNCTION fsconf.report_node(text, text, text, bigint, text, text);
DROP TABLE fsconf.nodes;
DROP TRIGGER stamp_commit ON fsconf.change_sets;
DROP FUNCTION fsconf.stamp_commit();
ALTER TABLE fsconf.change_sets DROP COLUMN committed_at;
