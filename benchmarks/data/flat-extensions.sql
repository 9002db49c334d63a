-- Baseline D's data: a FusionPBX-style flat table (v_extensions: one row per extension,
-- every setting a column) holding the users of the fsconf tables in the domain named
-- $${domain}, with the values a node renders for them ($${…} references to stored globals
-- replaced by their values, the domain by the node's address :'domain').
--   psql -v domain=192.0.2.10 -f benchmarks/data/flat-extensions.sql
SET client_min_messages = warning;
BEGIN;
CREATE SCHEMA IF NOT EXISTS bench_flat;
DROP TABLE IF EXISTS bench_flat.v_extensions;
CREATE TABLE bench_flat.v_extensions (
    extension_uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    domain_name text NOT NULL,
    extension text NOT NULL,
    number_alias text,
    password text,
    vm_password text,
    accountcode text,
    user_context text,
    effective_caller_id_name text,
    effective_caller_id_number text,
    outbound_caller_id_name text,
    outbound_caller_id_number text,
    toll_allow text,
    call_group text,
    enabled text NOT NULL DEFAULT 'true'
);
INSERT INTO bench_flat.v_extensions (domain_name, extension, number_alias, password, vm_password, accountcode,
    user_context, effective_caller_id_name, effective_caller_id_number, outbound_caller_id_name,
    outbound_caller_id_number, toll_allow, call_group)
SELECT :'domain', u.user_id, u.number_alias,
    coalesce(max(v.value) FILTER (WHERE v.name = 'password'), ''), coalesce(max(v.value) FILTER (WHERE v.name = 'vm-password'), ''),
    coalesce(max(v.value) FILTER (WHERE v.name = 'accountcode'), ''), coalesce(max(v.value) FILTER (WHERE v.name = 'user_context'), ''),
    coalesce(max(v.value) FILTER (WHERE v.name = 'effective_caller_id_name'), ''),
    coalesce(max(v.value) FILTER (WHERE v.name = 'effective_caller_id_number'), ''),
    coalesce(max(v.value) FILTER (WHERE v.name = 'outbound_caller_id_name'), ''),
    coalesce(max(v.value) FILTER (WHERE v.name = 'outbound_caller_id_number'), ''),
    coalesce(max(v.value) FILTER (WHERE v.name = 'toll_allow'), ''), coalesce(max(v.value) FILTER (WHERE v.name = 'callgroup'), '')
FROM fsconf.users u
JOIN fsconf.domains d ON d.id = u.domain_id AND d.name = '$${domain}'
JOIN LATERAL (
    SELECT s.name, coalesce(g.value, s.value) AS value
    FROM fsconf.user_settings s
    LEFT JOIN fsconf.global_variables g ON s.value = '$${' || g.name || '}' AND g.nodes IS NULL
    WHERE s.user_id = u.id
) v ON true
WHERE u.user_id !~ '\$'
GROUP BY u.id, u.user_id, u.number_alias;
CREATE INDEX ON bench_flat.v_extensions (domain_name, extension);
CREATE INDEX ON bench_flat.v_extensions (domain_name, number_alias);
COMMIT;
ANALYZE bench_flat.v_extensions;
