-- :n users shaped like vanilla's directory/default/1000.xml (2 params, 8 variables,
-- three of them $${...} references), in the group "default" of the domain named
-- $${domain}: what an operator has after importing the stock tree and adding users.
-- ids 100001..100000+:n. Run after `fsconf import` of the vanilla tree:
--   psql -v n=1000 -f benchmarks/data/vanilla-users.sql
-- Bulk data: change capture is off for the load (session_replication_role = replica).
BEGIN;
SET LOCAL session_replication_role = replica;
INSERT INTO fsconf.users (domain_id, user_id, home_group_id, position)
SELECT d.id, (100000 + i)::text, g.id, 1000 + i
FROM fsconf.domains d JOIN fsconf.groups g ON g.domain_id = d.id AND g.name = 'default', generate_series(1, :n) i
WHERE d.name = '$${domain}';
INSERT INTO fsconf.user_settings (user_id, kind, name, value, position)
SELECT u.id, s.kind, s.name, replace(s.value, '#', u.user_id), s.pos
FROM fsconf.users u JOIN fsconf.domains d ON d.id = u.domain_id AND d.name = '$${domain}',
(VALUES ('param', 'password', '$${default_password}', 1), ('param', 'vm-password', '#', 2),
        ('variable', 'toll_allow', 'domestic,international,local', 3), ('variable', 'accountcode', '#', 4),
        ('variable', 'user_context', 'default', 5), ('variable', 'effective_caller_id_name', 'Extension #', 6),
        ('variable', 'effective_caller_id_number', '#', 7),
        ('variable', 'outbound_caller_id_name', '$${outbound_caller_name}', 8),
        ('variable', 'outbound_caller_id_number', '$${outbound_caller_id}', 9),
        ('variable', 'callgroup', 'techsupport', 10)) AS s(kind, name, value, pos)
WHERE u.user_id ~ '^1[0-9]{5,}$' AND u.position > 1000;
COMMIT;
ANALYZE;
