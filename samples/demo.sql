-- A small configuration written for fsconf's demo: one domain with users, a
-- group and a gateway, a dialplan context, a SIP profile. Loaded in one
-- transaction by scripts/demo, replacing what was there, (after `fsconf migrate up`).
BEGIN;

-- The demo owns the database it loads into: start from empty.
TRUNCATE fsconf.domains, fsconf.dialplan_contexts, fsconf.documents, fsconf.global_variables CASCADE;

INSERT INTO fsconf.global_variables (name, value, position) VALUES
    ('default_password', 'change-me-1234', 1),
    ('domain', 'pbx.example.test', 2),
    ('internal_sip_port', '5060', 3);

INSERT INTO fsconf.domains (name) VALUES ('pbx.example.test');

WITH d AS (SELECT id FROM fsconf.domains WHERE name = 'pbx.example.test')
INSERT INTO fsconf.domain_settings (domain_id, kind, name, value, position)
SELECT d.id, v.kind, v.name, v.value, v.position FROM d, (VALUES
    ('param', 'dial-string', '{^^:sip_invite_domain=${dialed_domain}:presence_id=${dialed_user}@${dialed_domain}}${sofia_contact(*/${dialed_user}@${dialed_domain})}', 1),
    ('variable', 'record_stereo', 'true', 2),
    ('variable', 'user_context', 'default', 3)
) AS v(kind, name, value, position);

WITH d AS (SELECT id FROM fsconf.domains WHERE name = 'pbx.example.test')
INSERT INTO fsconf.groups (domain_id, name, position)
SELECT d.id, g.name, g.position FROM d, (VALUES ('default', 1), ('sales', 2)) AS g(name, position);

WITH d AS (SELECT id FROM fsconf.domains WHERE name = 'pbx.example.test'),
     g AS (SELECT id FROM fsconf.groups WHERE name = 'default')
INSERT INTO fsconf.users (domain_id, user_id, number_alias, home_group_id, position)
SELECT d.id, u.user_id, u.alias, g.id, u.position FROM d, g, (VALUES
    ('1000', '7000', 1), ('1001', NULL, 2), ('1002', NULL, 3), ('alice', '7003', 4)
) AS u(user_id, alias, position);

INSERT INTO fsconf.user_settings (user_id, kind, name, value, position)
SELECT u.id, s.kind, s.name, s.value, s.position
FROM fsconf.users u JOIN (VALUES
    ('1000', 'param', 'password', '$${default_password}', 1),
    ('1000', 'variable', 'effective_caller_id_name', 'Extension 1000', 2),
    ('1000', 'variable', 'effective_caller_id_number', '1000', 3),
    ('1001', 'param', 'password', '$${default_password}', 1),
    ('1001', 'variable', 'effective_caller_id_name', 'Extension 1001', 2),
    ('1002', 'param', 'password', '$${default_password}', 1),
    ('1002', 'variable', 'user_context', 'public', 2),
    ('alice', 'param', 'a1-hash', 'c3e8b2f5a37c3d0e2c5b9a2f0f6c1d4e', 1),
    ('alice', 'attribute', 'cidr', '192.0.2.0/24', 2)
) AS s(user_id, kind, name, value, position) ON s.user_id = u.user_id;

INSERT INTO fsconf.group_members (group_id, user_id, position)
SELECT g.id, u.id, u.position
FROM fsconf.groups g JOIN fsconf.users u ON u.user_id IN ('1000', '1001')
WHERE g.name = 'sales';

WITH u AS (SELECT id, domain_id FROM fsconf.users WHERE user_id = 'alice')
INSERT INTO fsconf.gateways (domain_id, user_id, name, position) SELECT u.domain_id, u.id, 'carrier-a', 1 FROM u;

INSERT INTO fsconf.gateway_settings (gateway_id, kind, name, value, position)
SELECT g.id, s.kind, s.name, s.value, s.position
FROM fsconf.gateways g, (VALUES
    ('param', 'username', 'acct-42', 1),
    ('param', 'password', 'gw-secret', 2),
    ('param', 'proxy', 'sip.carrier-a.example', 3),
    ('param', 'register', 'true', 4)
) AS s(kind, name, value, position)
WHERE g.name = 'carrier-a';

-- Dialplan: context "default".
INSERT INTO fsconf.dialplan_contexts (name) VALUES ('default');

INSERT INTO fsconf.dialplan_extensions (context_id, name, continue, position)
SELECT c.id, e.name, e.continue, e.position
FROM fsconf.dialplan_contexts c, (VALUES
    ('unloop', NULL, 1), ('local_extension', NULL, 2), ('business_hours', 'true', 3)
) AS e(name, continue, position)
WHERE c.name = 'default';

INSERT INTO fsconf.dialplan_conditions (extension_id, position, field, expression, break, wday, hour)
SELECT e.id, c.position, c.field, c.expression, c.brk, c.wday, c.hour
FROM fsconf.dialplan_extensions e JOIN (VALUES
    ('unloop', 1, '${unroll_loops}', '^true$', NULL, NULL, NULL),
    ('unloop', 2, '${sip_looped_call}', '^true$', NULL, NULL, NULL),
    ('local_extension', 1, 'destination_number', '^(10[01][0-9])$', NULL, NULL, NULL),
    ('business_hours', 1, NULL, NULL, 'never', '2-6', '9-17')
) AS c(ext, position, field, expression, brk, wday, hour) ON c.ext = e.name;

INSERT INTO fsconf.dialplan_actions (condition_id, kind, position, application, data, inline)
SELECT c.id, a.kind, a.position, a.application, a.data, a.inline
FROM fsconf.dialplan_conditions c
JOIN fsconf.dialplan_extensions e ON e.id = c.extension_id
JOIN (VALUES
    ('unloop', 2, 'action', 1, 'deflect', '${destination_number}', NULL),
    ('local_extension', 1, 'action', 1, 'export', 'dialed_extension=$1', NULL),
    ('local_extension', 1, 'action', 2, 'bridge', 'user/${dialed_extension}@${domain_name}', NULL),
    ('business_hours', 1, 'action', 1, 'set', 'open=true', 'true'),
    ('business_hours', 1, 'anti-action', 1, 'set', 'open=false', 'true')
) AS a(ext, cond, kind, position, application, data, inline)
  ON a.ext = e.name AND a.cond = c.position;

-- Configuration: sofia.conf with one profile.
INSERT INTO fsconf.documents (section, name) VALUES ('configuration', 'sofia.conf');
DO $body$
DECLARE doc bigint; root bigint; gs bigint; profiles bigint; profile bigint; settings bigint; el bigint;
BEGIN
    SELECT id INTO doc FROM fsconf.documents WHERE section = 'configuration' AND name = 'sofia.conf';
    INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (doc, NULL, 1, 'configuration') RETURNING id INTO root;
    INSERT INTO fsconf.attributes VALUES (root, 'name', 'sofia.conf', 1), (root, 'description', 'sofia Endpoint', 2);
    INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (doc, root, 1, 'global_settings') RETURNING id INTO gs;
    INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (doc, gs, 1, 'param') RETURNING id INTO el;
    INSERT INTO fsconf.attributes VALUES (el, 'name', 'log-level', 1), (el, 'value', '0', 2);
    INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (doc, root, 2, 'profiles') RETURNING id INTO profiles;
    INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (doc, profiles, 1, 'profile') RETURNING id INTO profile;
    INSERT INTO fsconf.attributes VALUES (profile, 'name', 'internal', 1);
    INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (doc, profile, 1, 'settings') RETURNING id INTO settings;
    INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (doc, settings, 1, 'param') RETURNING id INTO el;
    INSERT INTO fsconf.attributes VALUES (el, 'name', 'sip-port', 1), (el, 'value', '$${internal_sip_port}', 2);
    INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (doc, settings, 2, 'param') RETURNING id INTO el;
    INSERT INTO fsconf.attributes VALUES (el, 'name', 'context', 1), (el, 'value', 'default', 2);
    INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (doc, settings, 3, 'param') RETURNING id INTO el;
    INSERT INTO fsconf.attributes VALUES (el, 'name', 'auth-calls', 1), (el, 'value', 'true', 2);
END
$body$;

COMMIT;
