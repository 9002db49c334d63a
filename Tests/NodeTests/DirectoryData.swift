/// Directory data modelled on FreeSWITCH's vanilla tree (domain `$${domain}`,
/// users in group "default", pointers in "sales", a provider user with a gateway,
/// a cidr user) plus a second domain with a direct user, domain-level defaults
/// and other keys, so every lookup shape has something to find.
enum DirectoryData {
    static let sql = """
        INSERT INTO fsconf.global_variables (name, value, position) VALUES
            ('domain', '$${local_ip_v4}', 1), ('default_password', '1234', 2),
            ('default_provider', 'example.com', 3), ('outbound_caller_id', '0000000000', 4);

        INSERT INTO fsconf.domains (name, position) VALUES ('$${domain}', 1);
        INSERT INTO fsconf.domains (name, cacheable, position) VALUES ('example.org', 'true', 2);

        INSERT INTO fsconf.domain_settings (domain_id, kind, name, value, position)
        SELECT d.id, v.kind, v.name, v.value, v.pos FROM fsconf.domains d JOIN (VALUES
            ('$${domain}', 'param', 'dial-string', '{presence_id=${dialed_user}@${dialed_domain}}${sofia_contact(*/${dialed_user}@${dialed_domain})}', 1),
            ('$${domain}', 'param', 'jsonrpc-allowed-methods', 'verto', 2),
            ('$${domain}', 'variable', 'record_stereo', 'true', 3),
            ('$${domain}', 'variable', 'default_gateway', '$${default_provider}', 4),
            ('example.org', 'variable', 'user_context', 'org', 1)
        ) AS v(domain, kind, name, value, pos) ON v.domain = d.name;

        INSERT INTO fsconf.groups (domain_id, name, position)
        SELECT d.id, g.name, g.pos FROM fsconf.domains d, (VALUES ('default', 1), ('sales', 2)) AS g(name, pos)
        WHERE d.name = '$${domain}';
        INSERT INTO fsconf.group_settings (group_id, kind, name, value, position)
        SELECT id, 'variable', 'callgroup', 'sales-team', 1 FROM fsconf.groups WHERE name = 'sales';

        INSERT INTO fsconf.users (domain_id, user_id, number_alias, cacheable, home_group_id, position)
        SELECT d.id, u.uid, u.alias, u.cacheable, g.id, u.pos
        FROM fsconf.domains d JOIN fsconf.groups g ON g.domain_id = d.id AND g.name = 'default',
        (VALUES ('1000', '7000', NULL, 1), ('1001', NULL, NULL, 2), ('1002', NULL, '60000', 3),
                ('brian', NULL, NULL, 4), ('$${default_provider}', NULL, NULL, 5)) AS u(uid, alias, cacheable, pos)
        WHERE d.name = '$${domain}';

        INSERT INTO fsconf.users (domain_id, user_id, number_alias, cacheable, position)
        SELECT d.id, u.uid, u.alias, u.cacheable, u.pos FROM fsconf.domains d,
        (VALUES ('alice', '8000', NULL, 1), ('bob', NULL, 'false', 2)) AS u(uid, alias, cacheable, pos)
        WHERE d.name = 'example.org';

        INSERT INTO fsconf.user_settings (user_id, kind, name, value, position)
        SELECT u.id, s.kind, s.name, s.value, s.pos FROM fsconf.users u JOIN (VALUES
            ('1000', 'param', 'password', '$${default_password}', 1),
            ('1000', 'param', 'vm-password', '1000', 2),
            ('1000', 'variable', 'user_context', 'default', 3),
            ('1000', 'variable', 'effective_caller_id_name', 'Extension 1000', 4),
            ('1000', 'variable', 'outbound_caller_id_number', '$${outbound_caller_id}', 5),
            ('1001', 'param', 'password', '$${default_password}', 1),
            ('1001', 'param', 'esl-password', 'ClueCon', 2),
            ('1001', 'variable', 'user_context', 'default', 3),
            ('1002', 'param', 'password', '$${default_password}', 1),
            ('brian', 'attribute', 'cidr', '192.0.2.0/24', 1),
            ('brian', 'param', 'password', 'brian-pw', 2),
            ('$${default_provider}', 'param', 'password', 'provider-pw', 1),
            ('alice', 'attribute', 'mailbox', '9001', 1),
            ('alice', 'param', 'a1-hash', '0123456789abcdef0123456789abcdef', 2),
            ('alice', 'param', 'reverse-auth-user', 'alice', 3),
            ('alice', 'profile-variable', 'pv', 'x', 4),
            ('bob', 'param', 'password', 'bob-pw', 1)
        ) AS s(uid, kind, name, value, pos) ON s.uid = u.user_id;

        INSERT INTO fsconf.group_members (group_id, user_id, position)
        SELECT g.id, u.id, u.position FROM fsconf.groups g JOIN fsconf.users u ON u.user_id IN ('1000', '1001')
        WHERE g.name = 'sales';

        INSERT INTO fsconf.gateways (domain_id, user_id, name, position)
        SELECT u.domain_id, u.id, '$${default_provider}', 1 FROM fsconf.users u WHERE u.user_id = '$${default_provider}';
        INSERT INTO fsconf.gateways (domain_id, user_id, name, position)
        SELECT id, NULL, 'org-trunk', 1 FROM fsconf.domains WHERE name = 'example.org';
        INSERT INTO fsconf.gateway_settings (gateway_id, kind, name, value, direction, position)
        SELECT g.id, s.kind, s.name, s.value, s.dir, s.pos FROM fsconf.gateways g JOIN (VALUES
            ('$${default_provider}', 'param', 'username', 'joeuser', NULL, 1),
            ('$${default_provider}', 'param', 'password', 'gw-pw', NULL, 2),
            ('$${default_provider}', 'param', 'register', 'false', NULL, 3),
            ('$${default_provider}', 'variable', 'inbound_var', 'in', 'inbound', 4),
            ('org-trunk', 'param', 'proxy', 'sip.example.org', NULL, 1)
        ) AS s(gw, kind, name, value, dir, pos) ON s.gw = g.name;
        """

    /// What FreeSWITCH's node says for the variables the database lacks.
    static let nodeGlobals = ["local_ip_v4": "127.0.0.1"]
}
