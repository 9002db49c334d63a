-- fsconf initial schema: field-level storage of FreeSWITCH's run-time configuration.
-- One row per field, so one field can be read, changed and audited on its own.
-- See docs/schema.md for the reference.

-- migrate:up

-- Roles are cluster-wide: create them once, never drop them in a down step.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsconf_reader') THEN
        CREATE ROLE fsconf_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsconf_writer') THEN
        CREATE ROLE fsconf_writer NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created by a concurrent run in another database
END
$$;

-- ---------------------------------------------------------------- global variables
-- The $${name} values vars.xml sets with X-PRE-PROCESS. Values may themselves hold
-- $${other} references; names missing here are read from the node at fetch time.
CREATE TABLE fsconf.global_variables (
    name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.:-]+$'),
    value      text NOT NULL,
    position   integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- directory
CREATE TABLE fsconf.domains (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL CHECK (name <> ''),
    -- NULL: users are not cacheable unless they say so; else the default
    -- `cacheable` attribute for this domain's users ("true" or milliseconds).
    cacheable  text CHECK (cacheable IS NULL OR cacheable ~ '^(true|[0-9]+)$'),
    position   integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- FreeSWITCH matches domain names, user ids, aliases and group names without
-- regard to case (strcasecmp), so uniqueness and lookups use lower().
CREATE UNIQUE INDEX domains_name_idx ON fsconf.domains (lower(name));
-- Names holding $${var} references are expanded per node at fetch time; lookups
-- fetch them as candidates through this (tiny) partial index.
CREATE INDEX domains_reference_idx ON fsconf.domains (id) WHERE name LIKE '%$${%';

CREATE TABLE fsconf.groups (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain_id bigint NOT NULL REFERENCES fsconf.domains ON DELETE CASCADE,
    name      text NOT NULL CHECK (name <> ''),
    position  integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX groups_name_idx ON fsconf.groups (domain_id, lower(name));

CREATE TABLE fsconf.users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain_id     bigint NOT NULL REFERENCES fsconf.domains ON DELETE CASCADE,
    user_id       text NOT NULL CHECK (user_id <> ''),          -- <user id="...">
    number_alias  text CHECK (number_alias <> ''),              -- <user number-alias="...">
    cacheable     text CHECK (cacheable IS NULL OR cacheable ~ '^(true|false|[0-9]+)$'),
    -- The group whose <users> holds this user's definition (NULL: the domain's own
    -- <users>). Other groups reach the user through group_members (type="pointer").
    home_group_id bigint REFERENCES fsconf.groups ON DELETE SET NULL,
    enabled       boolean NOT NULL DEFAULT true,
    position      integer NOT NULL DEFAULT 0,
    -- Child elements FreeSWITCH modules read that fsconf stores verbatim
    -- (e.g. mod_skinny's <skinny>): well-formed XML, rendered as is.
    extra_xml     text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_id_idx ON fsconf.users (domain_id, lower(user_id));
CREATE UNIQUE INDEX users_number_alias_idx ON fsconf.users (domain_id, lower(number_alias));
-- (LIKE, not strpos: the planner estimates LIKE from column statistics, so the
-- candidate branch is costed at ~0 rows instead of a third of the table.)
CREATE INDEX users_reference_idx ON fsconf.users (domain_id) WHERE user_id LIKE '%$${%';
CREATE INDEX users_home_group_idx ON fsconf.users (home_group_id) WHERE home_group_id IS NOT NULL;

CREATE TABLE fsconf.group_members (
    group_id bigint NOT NULL REFERENCES fsconf.groups ON DELETE CASCADE,
    user_id  bigint NOT NULL REFERENCES fsconf.users ON DELETE CASCADE,
    position integer NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON fsconf.group_members (user_id);

-- Params, variables, profile-variables and extra attributes (e.g. cidr, mailbox)
-- at domain, group and user level: one row per field.
CREATE TABLE fsconf.domain_settings (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain_id bigint NOT NULL REFERENCES fsconf.domains ON DELETE CASCADE,
    kind      text NOT NULL CHECK (kind IN ('param', 'variable', 'profile-variable', 'attribute')),
    name      text NOT NULL CHECK (name <> ''),
    value     text NOT NULL,
    position  integer NOT NULL DEFAULT 0,
    UNIQUE (domain_id, kind, name)
);

CREATE TABLE fsconf.group_settings (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id bigint NOT NULL REFERENCES fsconf.groups ON DELETE CASCADE,
    kind     text NOT NULL CHECK (kind IN ('param', 'variable', 'profile-variable', 'attribute')),
    name     text NOT NULL CHECK (name <> ''),
    value    text NOT NULL,
    position integer NOT NULL DEFAULT 0,
    UNIQUE (group_id, kind, name)
);

CREATE TABLE fsconf.user_settings (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id  bigint NOT NULL REFERENCES fsconf.users ON DELETE CASCADE,
    kind     text NOT NULL CHECK (kind IN ('param', 'variable', 'profile-variable', 'attribute')),
    name     text NOT NULL CHECK (name <> ''),
    value    text NOT NULL,
    position integer NOT NULL DEFAULT 0,
    UNIQUE (user_id, kind, name)
);
-- purpose=network-list: the users of a domain that carry a cidr attribute.
CREATE INDEX user_settings_cidr_idx ON fsconf.user_settings (user_id)
    WHERE kind = 'attribute' AND name = 'cidr';
-- Lookups by another attribute (key=mailbox...).
CREATE INDEX user_settings_attribute_idx ON fsconf.user_settings (name, lower(value))
    WHERE kind = 'attribute';

-- Gateways: per user (<user><gateways>) or per domain (<domain><gateways>).
CREATE TABLE fsconf.gateways (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain_id bigint NOT NULL REFERENCES fsconf.domains ON DELETE CASCADE,
    user_id   bigint REFERENCES fsconf.users ON DELETE CASCADE,
    name      text NOT NULL CHECK (name <> ''),
    position  integer NOT NULL DEFAULT 0,
    UNIQUE (domain_id, name)
);
CREATE INDEX gateways_user_idx ON fsconf.gateways (user_id) WHERE user_id IS NOT NULL;

CREATE TABLE fsconf.gateway_settings (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway_id bigint NOT NULL REFERENCES fsconf.gateways ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('param', 'variable')),
    name       text NOT NULL CHECK (name <> ''),
    value      text NOT NULL,
    -- <variable direction="inbound|outbound"> on gateway variables.
    direction  text CHECK (direction IS NULL OR direction IN ('inbound', 'outbound')),
    position   integer NOT NULL DEFAULT 0,
    UNIQUE NULLS NOT DISTINCT (gateway_id, kind, name, direction)
);

-- ---------------------------------------------------------------- dialplan
CREATE TABLE fsconf.dialplan_contexts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (name <> ''),
    position   integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE fsconf.dialplan_extensions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    context_id  bigint NOT NULL REFERENCES fsconf.dialplan_contexts ON DELETE CASCADE,
    name        text NOT NULL,
    continue    text CHECK (continue IS NULL OR continue IN ('true', 'false')),
    enabled     boolean NOT NULL DEFAULT true,
    position    integer NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (context_id, position) DEFERRABLE INITIALLY IMMEDIATE
);
CREATE INDEX dialplan_extensions_name_idx ON fsconf.dialplan_extensions (context_id, name);

-- Conditions nest (a condition inside a condition): parent_id.
CREATE TABLE fsconf.dialplan_conditions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    extension_id   bigint NOT NULL REFERENCES fsconf.dialplan_extensions ON DELETE CASCADE,
    parent_id      bigint REFERENCES fsconf.dialplan_conditions ON DELETE CASCADE,
    position       integer NOT NULL,
    field          text,
    expression     text,
    break          text CHECK (break IS NULL OR break IN ('on-true', 'on-false', 'always', 'never')),
    require_nested text CHECK (require_nested IS NULL OR require_nested IN ('true', 'false')),
    regex          text CHECK (regex IS NULL OR regex IN ('all', 'any', 'xor')),
    -- Time-of-day style attributes (switch_xml_std_datetime_check).
    year           text,
    yday           text,
    mon            text,
    mday           text,
    week           text,
    mweek          text,
    wday           text,
    hour           text,
    minute         text,
    minute_of_day  text,
    time_of_day    text,
    date_time      text,
    tz             text,
    UNIQUE NULLS NOT DISTINCT (extension_id, parent_id, position) DEFERRABLE INITIALLY IMMEDIATE
);
CREATE INDEX dialplan_conditions_parent_idx ON fsconf.dialplan_conditions (parent_id) WHERE parent_id IS NOT NULL;

-- <regex field="..." expression="..."/> children of a regex="all|any|xor" condition.
CREATE TABLE fsconf.dialplan_regexes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    condition_id bigint NOT NULL REFERENCES fsconf.dialplan_conditions ON DELETE CASCADE,
    position     integer NOT NULL,
    field        text NOT NULL,
    expression   text NOT NULL,
    UNIQUE (condition_id, position) DEFERRABLE INITIALLY IMMEDIATE
);

CREATE TABLE fsconf.dialplan_actions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    condition_id bigint NOT NULL REFERENCES fsconf.dialplan_conditions ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('action', 'anti-action')),
    position     integer NOT NULL,
    application  text NOT NULL CHECK (application <> ''),
    data         text,
    inline       text CHECK (inline IS NULL OR inline IN ('true', 'false')),
    UNIQUE (condition_id, kind, position) DEFERRABLE INITIALLY IMMEDIATE
);

-- ---------------------------------------------------------------- configuration & languages
-- Any *.conf document (section "configuration") or language (section "languages")
-- as an ordered element tree; every attribute is a row, so each is addressable.
CREATE TABLE fsconf.documents (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    section    text NOT NULL CHECK (section IN ('configuration', 'languages')),
    name       text NOT NULL CHECK (name <> ''),   -- "sofia.conf", "en"
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (section, name)
);

CREATE TABLE fsconf.elements (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id bigint NOT NULL REFERENCES fsconf.documents ON DELETE CASCADE,
    parent_id   bigint REFERENCES fsconf.elements ON DELETE CASCADE,   -- NULL: the root
    position    integer NOT NULL,
    tag         text NOT NULL CHECK (tag ~ '^[A-Za-z_][A-Za-z0-9_.:-]*$'),
    text        text,                                                  -- character data, if any
    UNIQUE NULLS NOT DISTINCT (document_id, parent_id, position) DEFERRABLE INITIALLY IMMEDIATE
);
CREATE INDEX elements_parent_idx ON fsconf.elements (parent_id, position);
CREATE UNIQUE INDEX elements_one_root_idx ON fsconf.elements (document_id) WHERE parent_id IS NULL;

CREATE TABLE fsconf.attributes (
    element_id bigint NOT NULL REFERENCES fsconf.elements ON DELETE CASCADE,
    name       text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.:-]*$'),
    value      text NOT NULL,
    position   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (element_id, name)
);
-- Narrowed lookups (sofia profile, ivr menu, callcenter queue...) find elements
-- by their name attribute.
CREATE INDEX attributes_name_value_idx ON fsconf.attributes (name, value);

-- ---------------------------------------------------------------- change log
-- One change set per committed change (a CLI command, an import, an undo).
CREATE TABLE fsconf.change_sets (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor      text NOT NULL,
    source     text NOT NULL,                    -- 'cli', 'import', 'undo', 'sql'...
    summary    text NOT NULL DEFAULT '',
    undo_of    bigint REFERENCES fsconf.change_sets,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX change_sets_created_idx ON fsconf.change_sets (created_at);

CREATE TABLE fsconf.changes (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    change_set_id bigint NOT NULL REFERENCES fsconf.change_sets ON DELETE CASCADE,
    section       text NOT NULL,                 -- directory, dialplan, configuration, languages, globals
    path          text NOT NULL,                 -- the field path (docs/cli.md)
    old_value     text,                          -- NULL: the field did not exist
    new_value     text,                          -- NULL: the field was removed
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_set_idx ON fsconf.changes (change_set_id);
CREATE INDEX changes_path_idx ON fsconf.changes (path text_pattern_ops);

-- ---------------------------------------------------------------- privileges
-- Nodes read; admins write. `fsconf grant reader|writer ROLE` adds members.
GRANT USAGE ON SCHEMA fsconf TO fsconf_reader, fsconf_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA fsconf TO fsconf_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA fsconf TO fsconf_writer;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA fsconf TO fsconf_writer;
-- Only `fsconf migrate` (the schema owner) records migrations.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON fsconf.schema_migrations FROM fsconf_writer;

-- migrate:down

REVOKE ALL ON ALL SEQUENCES IN SCHEMA fsconf FROM fsconf_writer;
REVOKE ALL ON ALL TABLES IN SCHEMA fsconf FROM fsconf_reader, fsconf_writer;
REVOKE ALL ON SCHEMA fsconf FROM fsconf_reader, fsconf_writer;
DROP TABLE fsconf.changes;
DROP TABLE fsconf.change_sets;
DROP TABLE fsconf.attributes;
DROP TABLE fsconf.elements;
DROP TABLE fsconf.documents;
DROP TABLE fsconf.dialplan_actions;
DROP TABLE fsconf.dialplan_regexes;
DROP TABLE fsconf.dialplan_conditions;
DROP TABLE fsconf.dialplan_extensions;
DROP TABLE fsconf.dialplan_contexts;
DROP TABLE fsconf.gateway_settings;
DROP TABLE fsconf.gateways;
DROP TABLE fsconf.user_settings;
DROP TABLE fsconf.group_settings;
DROP TABLE fsconf.domain_settings;
DROP TABLE fsconf.group_members;
DROP TABLE fsconf.users;
DROP TABLE fsconf.groups;
DROP TABLE fsconf.domains;
DROP TABLE fsconf.global_variables;
