import FSConfCore

/// The SQL behind each directory lookup shape. Each is ONE statement returning
/// rows in `DirectoryRow`'s uniform shape (rec, id, parent, a, b, c, d, e, pos,
/// rank), including the global variables that the returned values reference
/// (recursively), so a lookup is one round trip. Keys are bind parameters only; the
/// last one is the asking node's name (`ScopeSQL`): rows scoped to other nodes are
/// left out, and domains, users, gateways and globals carry their rank.
public enum DirectorySQL {
    public struct Statement: Sendable {
        public var name: String
        public var sql: String
    }

    /// Domains named $1, plus those whose name holds a $${var} reference (expanded
    /// and compared on the node). The branches exclude each other, so UNION ALL
    /// needs no de-duplication (whose hash table PostgreSQL would size from estimates).
    static let domainByName = """
        dom AS (
            SELECT d.id, d.name, d.cacheable, d.nodes FROM fsconf.domains d WHERE lower(d.name) = lower($1)
                AND \(ScopeSQL.visible("d.nodes"))
            UNION ALL
            SELECT d.id, d.name, d.cacheable, d.nodes FROM fsconf.domains d
            WHERE d.name LIKE '%$${%' AND lower(d.name) <> lower($1) AND \(ScopeSQL.visible("d.nodes"))
        )
        """

    static let userColumns = "u.id, u.domain_id, u.user_id, u.number_alias, u.cacheable, u.home_group_id, u.extra_xml, u.position, u.nodes"

    /// The rows every shape returns, from CTEs dom, grp, usr (and optionally mem, gw).
    static func output(domainSettings: Bool, groupSettings: Bool, userSettings: String?, members: Bool,
                       gateways: Bool) -> String {
        var parts = ["SELECT 'D' AS rec, d.id, NULL::bigint AS parent, d.name AS a, d.cacheable AS b, NULL::text AS c, NULL::text AS d, NULL::text AS e, 0 AS pos, \(ScopeSQL.rank("d.nodes")) AS sc FROM dom d"]
        // Domain attributes (rendered on <domain>) always come along.
        parts.append("SELECT 'DS', s.id, s.domain_id, s.kind, s.name, s.value, NULL, NULL, s.position, 0 FROM fsconf.domain_settings s WHERE s.domain_id IN (SELECT id FROM dom)"
                     + (domainSettings ? "" : " AND s.kind = 'attribute'"))
        parts.append("SELECT 'G', g.id, g.domain_id, g.name, NULL, NULL, NULL, NULL, g.position, 0 FROM grp g")
        if groupSettings {
            parts.append("SELECT 'GS', s.id, s.group_id, s.kind, s.name, s.value, NULL, NULL, s.position, 0 FROM fsconf.group_settings s WHERE s.group_id IN (SELECT id FROM grp)")
        }
        parts.append("SELECT 'U', u.id, u.domain_id, u.user_id, u.number_alias, u.cacheable, u.home_group_id::text, u.extra_xml, u.position, \(ScopeSQL.rank("u.nodes")) FROM usr u")
        if let filter = userSettings {
            parts.append("SELECT 'US', s.id, s.user_id, s.kind, s.name, s.value, NULL, NULL, s.position, 0 FROM fsconf.user_settings s WHERE s.user_id IN (SELECT id FROM usr)" + filter)
        }
        if members {
            parts.append("SELECT 'M', m.user_id, m.group_id, u.user_id, NULL, NULL, NULL, NULL, m.position, 0 FROM fsconf.group_members m JOIN fsconf.users u ON u.id = m.user_id WHERE m.group_id IN (SELECT id FROM grp) AND u.enabled AND \(ScopeSQL.visible("u.nodes"))")
        }
        if gateways {
            parts.append("SELECT 'W', w.id, w.user_id, w.name, NULL, NULL, NULL, w.domain_id::text, w.position, \(ScopeSQL.rank("w.nodes")) FROM gw w")
            parts.append("SELECT 'WS', s.id, s.gateway_id, s.kind, s.name, s.value, s.direction, NULL, s.position, 0 FROM fsconf.gateway_settings s WHERE s.gateway_id IN (SELECT id FROM gw)")
        }
        return parts.joined(separator: "\n    UNION ALL ")
    }

    /// Wraps CTEs and the output with the node's `me` ($`node`, the last key
    /// parameter) and the recursive global-variable references.
    static func statement(_ name: String, node: Int, ctes: [String], output: String) -> Statement {
        let sql = """
            WITH RECURSIVE
            \(ScopeSQL.me(parameter: node)),
            \(ctes.joined(separator: ",\n"))
            , out AS (
                \(output)
            )
            , \(SectionRows.references(scanning: "concat_ws(' ', out.a, out.b, out.c)"))
            SELECT rec, id, parent, a, b, c, d, e, pos, sc FROM out
            UNION ALL
            SELECT 'V', v.id, NULL, v.name, v.value, NULL, NULL, NULL, 0, \(ScopeSQL.rank("v.nodes"))
            FROM fsconf.global_variables v WHERE v.name IN (SELECT name FROM refs) AND \(SectionRows.nodeEvaluatedFilter)
                AND \(ScopeSQL.visible("v.nodes"))
            UNION ALL
            \(ChangeSeq.row(padding: 5)), 0 FROM fsconf.change_counter c
            """
        return Statement(name: name, sql: sql)
    }

    static func users(where condition: String) -> String {
        "SELECT \(userColumns) FROM fsconf.users u WHERE u.domain_id IN (SELECT id FROM dom) AND u.enabled AND \(ScopeSQL.visible("u.nodes")) AND \(condition)"
    }

    static let homeGroups = "grp AS (SELECT g.id, g.domain_id, g.name, g.position FROM fsconf.groups g WHERE g.id IN (SELECT home_group_id FROM usr))"
    static let userGateways = "gw AS (SELECT w.id, w.domain_id, w.user_id, w.name, w.position, w.nodes FROM fsconf.gateways w WHERE w.user_id IN (SELECT id FROM usr) AND \(ScopeSQL.visible("w.nodes")))"

    /// $1 domain, $2 user, $3 node: `key=id` matches the id or the number-alias (as
    /// FreeSWITCH's find_user_in_tag does), plus ids holding $${var} references.
    public static let userByID = statement("fsconf_user_by_id", node: 3, ctes: [
        domainByName,
        // Exclusive branches (UNION ALL): the id, else the alias, else a candidate
        // whose id holds a $${var} reference (the partial index users_reference_idx).
        "usr AS (\(users(where: "lower(u.user_id) = lower($2)")) UNION ALL \(users(where: "lower(u.number_alias) = lower($2) AND lower(u.user_id) <> lower($2)")) UNION ALL \(users(where: "u.user_id LIKE '%$${%' AND lower(u.user_id) <> lower($2) AND (u.number_alias IS NULL OR lower(u.number_alias) <> lower($2))")))",
        homeGroups, userGateways,
    ], output: output(domainSettings: true, groupSettings: true, userSettings: "", members: false, gateways: true))

    /// $1 domain, $2 alias, $3 node.
    public static let userByAlias = statement("fsconf_user_by_alias", node: 3, ctes: [
        domainByName,
        "usr AS (\(users(where: "lower(u.number_alias) = lower($2)")))",
        homeGroups, userGateways,
    ], output: output(domainSettings: true, groupSettings: true, userSettings: "", members: false, gateways: true))

    /// $1 domain, $2 value, $3 attribute name (key=mailbox, ...), $4 node.
    public static let userByAttribute = statement("fsconf_user_by_attribute", node: 4, ctes: [
        domainByName,
        "usr AS (\(users(where: "u.id IN (SELECT s.user_id FROM fsconf.user_settings s WHERE s.kind = 'attribute' AND s.name = $3 AND lower(s.value) = lower($2))")))",
        homeGroups, userGateways,
    ], output: output(domainSettings: true, groupSettings: true, userSettings: "", members: false, gateways: true))

    /// $1 domain, $2 group name, $3 node: the group, the users defined in it and its pointer members.
    public static let group = statement("fsconf_group", node: 3, ctes: [
        domainByName,
        "grp AS (SELECT g.id, g.domain_id, g.name, g.position FROM fsconf.groups g WHERE g.domain_id IN (SELECT id FROM dom) AND lower(g.name) = lower($2))",
        "usr AS (SELECT \(userColumns) FROM fsconf.users u WHERE u.home_group_id IN (SELECT id FROM grp) AND u.enabled AND \(ScopeSQL.visible("u.nodes")))",
    ], output: output(domainSettings: true, groupSettings: true, userSettings: "", members: true, gateways: false))

    /// $1 domain, $2 node: the domain, its params and variables.
    public static let domain = statement("fsconf_domain", node: 2, ctes: [
        domainByName,
        "usr AS (SELECT \(userColumns) FROM fsconf.users u WHERE false)",
        "grp AS (SELECT g.id, g.domain_id, g.name, g.position FROM fsconf.groups g WHERE false)",
    ], output: output(domainSettings: true, groupSettings: false, userSettings: nil, members: false, gateways: false))

    /// $1 domain, $2 node, purpose=network-list: users carrying a cidr attribute.
    public static let domainCIDR = statement("fsconf_domain_cidr", node: 2, ctes: [
        domainByName,
        "usr AS (\(users(where: "u.id IN (SELECT s.user_id FROM fsconf.user_settings s WHERE s.kind = 'attribute' AND s.name = 'cidr')")))",
        homeGroups,
    ], output: output(domainSettings: true, groupSettings: false, userSettings: " AND s.kind = 'attribute'", members: false, gateways: false))

    /// $1 domain, $2 node, purpose=publish-vm: every user with params and variables.
    public static let domainAllUsers = statement("fsconf_domain_all_users", node: 2, ctes: [
        domainByName,
        "usr AS (\(users(where: "true")))",
        "grp AS (SELECT g.id, g.domain_id, g.name, g.position FROM fsconf.groups g WHERE false)",
    ], output: output(domainSettings: true, groupSettings: false, userSettings: "", members: false, gateways: false))

    /// purpose=gateways: $1 domain or NULL for every domain, $2 node; the users carrying gateways.
    public static let gateways = statement("fsconf_gateways", node: 2, ctes: [
        """
        dom AS (
            SELECT d.id, d.name, d.cacheable, d.nodes FROM fsconf.domains d
            WHERE ($1::text IS NULL OR lower(d.name) = lower($1) OR d.name LIKE '%$${%') AND \(ScopeSQL.visible("d.nodes"))
        )
        """,
        "gw AS (SELECT w.id, w.domain_id, w.user_id, w.name, w.position, w.nodes FROM fsconf.gateways w WHERE w.domain_id IN (SELECT id FROM dom) AND \(ScopeSQL.visible("w.nodes")))",
        "usr AS (SELECT \(userColumns) FROM fsconf.users u WHERE u.id IN (SELECT user_id FROM gw) AND u.enabled AND \(ScopeSQL.visible("u.nodes")))",
        homeGroups,
    ], output: output(domainSettings: false, groupSettings: false, userSettings: nil, members: false, gateways: true))

    public static let all: [Statement] = [userByID, userByAlias, userByAttribute, group, domain, domainCIDR, domainAllUsers, gateways]

    /// The statement and parameters for a planned query asked by `node` (its
    /// lower-cased name, nil when unknown: only unscoped rows); nil: nothing to ask.
    public static func bind(_ query: DirectoryQuery, node: String?) -> (Statement, [String?])? {
        switch query {
        case .none: return nil
        case .user(let domain, let user, let key):
            switch key {
            case "id": return (userByID, [domain, user, node])
            case "number-alias": return (userByAlias, [domain, user, node])
            default: return (userByAttribute, [domain, user, key, node])
            }
        case .group(let domain, let group): return (self.group, [domain, group, node])
        case .domain(let domain, .none): return (self.domain, [domain, node])
        case .domain(let domain, .cidr): return (domainCIDR, [domain, node])
        case .domain(let domain, .all): return (domainAllUsers, [domain, node])
        case .gateways(let domain): return (gateways, [domain, node])
        }
    }

    /// Decodes a result into rows.
    public static func rows(_ result: PGResult) -> [DirectoryRow] {
        var rows: [DirectoryRow] = []
        rows.reserveCapacity(result.rowCount)
        for i in 0..<result.rowCount {
            guard let kind = DirectoryRow.Kind(rawValue: result.string(i, 0) ?? "") else { continue }
            rows.append(DirectoryRow(kind: kind, id: Int64(result.string(i, 1) ?? "") ?? 0,
                                     parent: result.string(i, 2).flatMap { Int64($0) },
                                     a: result.string(i, 3), b: result.string(i, 4), c: result.string(i, 5),
                                     d: result.string(i, 6), e: result.string(i, 7),
                                     position: result.int(i, 8) ?? 0, rank: result.int(i, 9) ?? 0))
        }
        return rows
    }
}

/// Every lookup statement ends with one `Q` row: the `seq` of the last change set
/// committed in the statement's own snapshot (fsconf.change_counter). The node
/// cache stores it with the answer, so an answer read from a lagging standby is
/// never cached as newer than a change the node has already heard of.
public enum ChangeSeq {
    /// `SELECT 'Q', value, NULL (parent), `padding` NULLs, 0 (pos)` (the caller
    /// adds what follows, then `FROM fsconf.change_counter c`): the directory shape.
    static func row(padding: Int) -> String {
        "SELECT 'Q', c.value, NULL" + String(repeating: ", NULL", count: padding) + ", 0"
    }

    /// The `Q` row's value (the last row, normally), or nil.
    public static func of(_ result: PGResult) -> Int64? {
        var i = result.rowCount - 1
        while i >= 0 {
            if result.string(i, 0) == "Q" { return result.string(i, 1).flatMap { Int64($0) } }
            i -= 1
        }
        return nil
    }
}
