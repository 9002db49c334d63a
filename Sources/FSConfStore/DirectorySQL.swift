import FSConfCore

/// The SQL behind each directory lookup shape. Each is ONE statement returning
/// rows in `DirectoryRow`'s uniform shape (rec, id, parent, a, b, c, d, e, pos,
/// rank), so a lookup is one round trip. Keys are bind parameters only; the last
/// key is the asking node's name (`ScopeSQL`): rows scoped to other nodes are left
/// out, and domains, users, gateways and globals carry their rank.
///
/// Every statement takes one more parameter after its keys: the globals version
/// the node holds (`GlobalsVersion`); the global variables come along only when it
/// is not the current one.
///
/// Rows of a CTE's entities are selected with `= ANY (ARRAY(SELECT id FROM cte))`,
/// not `IN (SELECT id FROM cte)`, as the dialplan statements do (`DialplanSQL`):
/// the array is worked out once per execution and each table is read through its
/// parent-id index, where `IN` made the generic plan hash, sort or de-duplicate the
/// CTE for every branch, and hash-join whole settings tables once they are large
/// (many domains). docs/performance.md, "The statement".
public enum DirectorySQL {
    public struct Statement: Sendable {
        public var name: String
        public var sql: String
        /// The key parameters ($1…$n); $n+1 is the node's globals version.
        public var parameters: Int

        public init(name: String, sql: String, parameters: Int) {
            self.name = name; self.sql = sql; self.parameters = parameters
        }

        /// The parameter list the statement runs with: the keys, then the version.
        public func arguments(_ keys: [String?], globalsVersion: String?) -> [String?] {
            precondition(keys.count == parameters, "\(name) takes \(parameters) key(s)")
            return keys + [globalsVersion]
        }
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

    /// Users whose id holds a $${var} reference and may expand to `key` (compared
    /// on the node). Left out: an id that is exactly one reference to a stored
    /// global whose value holds no reference and is not `key` (ASCII
    /// case-insensitively) — stored globals come first (VariableExpander), so the
    /// node would expand it to that value: vanilla's `$${default_provider}` user
    /// (with its gateway) is not `1000`. A reference to a name only the node knows,
    /// a value with further references, a node-evaluated global (exec-set,
    /// env-set: its stored value is not what the node uses), a global with variants
    /// limited to some nodes (docs/cluster.md: it may expand otherwise on this
    /// node), text around the reference: kept. Which ids expand the same on every
    /// node is kept by triggers in `fsconf.fixed_user_ids` (migration 0011), each row
    /// used only while the globals version it was worked out from is current: joining
    /// the globals here cost a quarter of the statement's execution on the stock tree.
    static func referenceCandidates(key: String, where condition: String) -> String {
        """
        SELECT \(userColumns) FROM fsconf.users u
        WHERE u.domain_id = ANY (ARRAY(SELECT id FROM dom)) AND u.enabled AND u.user_id LIKE '%$${%' AND \(condition)
            AND \(ScopeSQL.visible("u.nodes"))
            AND NOT EXISTS (SELECT 1 FROM fsconf.fixed_user_ids f WHERE f.user_id = u.id AND f.expands_to <> lower(\(key))
                AND f.globals_version = \(ChangeSeq.globalsVersion))
        """
    }

    static let userColumns = "u.id, u.domain_id, u.user_id, u.number_alias, u.cacheable, u.home_group_id, u.extra_xml, u.position, u.nodes"

    /// The rows every shape returns, from CTEs dom, grp, usr (and optionally mem, gw).
    static func output(domainSettings: Bool, groupSettings: Bool, userSettings: String?, members: Bool,
                       gateways: Bool) -> String {
        var parts = ["SELECT 'D' AS rec, d.id, NULL::bigint AS parent, d.name AS a, d.cacheable AS b, NULL::text AS c, NULL::text AS d, NULL::text AS e, 0 AS pos, \(ScopeSQL.rank("d.nodes")) AS sc FROM dom d"]
        // Domain attributes (rendered on <domain>) always come along.
        parts.append("SELECT 'DS', s.id, s.domain_id, s.kind, s.name, s.value, NULL, NULL, s.position, 0 FROM fsconf.domain_settings s WHERE s.domain_id = ANY (ARRAY(SELECT id FROM dom))"
                     + (domainSettings ? "" : " AND s.kind = 'attribute'"))
        parts.append("SELECT 'G', g.id, g.domain_id, g.name, NULL, NULL, NULL, NULL, g.position, 0 FROM grp g")
        if groupSettings {
            parts.append("SELECT 'GS', s.id, s.group_id, s.kind, s.name, s.value, NULL, NULL, s.position, 0 FROM fsconf.group_settings s WHERE s.group_id = ANY (ARRAY(SELECT id FROM grp))")
        }
        parts.append("SELECT 'U', u.id, u.domain_id, u.user_id, u.number_alias, u.cacheable, u.home_group_id::text, u.extra_xml, u.position, \(ScopeSQL.rank("u.nodes")) FROM usr u")
        if let filter = userSettings {
            parts.append("SELECT 'US', s.id, s.user_id, s.kind, s.name, s.value, NULL, NULL, s.position, 0 FROM fsconf.user_settings s WHERE s.user_id = ANY (ARRAY(SELECT id FROM usr))" + filter)
        }
        if members {
            parts.append("SELECT 'M', m.user_id, m.group_id, u.user_id, NULL, NULL, NULL, NULL, m.position, 0 FROM fsconf.group_members m JOIN fsconf.users u ON u.id = m.user_id WHERE m.group_id = ANY (ARRAY(SELECT id FROM grp)) AND u.enabled AND \(ScopeSQL.visible("u.nodes"))")
        }
        if gateways {
            parts.append("SELECT 'W', w.id, w.user_id, w.name, NULL, NULL, NULL, w.domain_id::text, w.position, \(ScopeSQL.rank("w.nodes")) FROM gw w")
            parts.append("SELECT 'WS', s.id, s.gateway_id, s.kind, s.name, s.value, s.direction, NULL, s.position, 0 FROM fsconf.gateway_settings s WHERE s.gateway_id = ANY (ARRAY(SELECT id FROM gw))")
        }
        return parts.joined(separator: "\n    UNION ALL ")
    }

    /// Wraps CTEs and the output with the node's `me` (the last key, $`parameters`),
    /// the global variables it can see (when the node's version, parameter
    /// `parameters + 1`, is not the current one) and the `Q` row.
    static func statement(_ name: String, parameters: Int, ctes: [String], output: String) -> Statement {
        let sql = """
            WITH
            \(ScopeSQL.me(parameter: parameters)),
            \(ctes.joined(separator: ",\n"))
            \(output)
            UNION ALL
            SELECT 'V', v.id, NULL, v.name, v.value, NULL, NULL, NULL, 0, \(ScopeSQL.rank("v.nodes")) FROM fsconf.global_variables v
            WHERE \(ChangeSeq.globalsStale(parameter: parameters + 1)) AND \(SectionRows.nodeEvaluatedFilter) AND \(ScopeSQL.visible("v.nodes"))
            UNION ALL
            \(ChangeSeq.row(padding: 5, extra: ", 0"))
            """
        return Statement(name: name, sql: sql, parameters: parameters)
    }

    static func users(where condition: String) -> String {
        "SELECT \(userColumns) FROM fsconf.users u WHERE u.domain_id = ANY (ARRAY(SELECT id FROM dom)) AND u.enabled AND \(ScopeSQL.visible("u.nodes")) AND \(condition)"
    }

    static let homeGroups = "grp AS (SELECT g.id, g.domain_id, g.name, g.position FROM fsconf.groups g WHERE g.id = ANY (ARRAY(SELECT home_group_id FROM usr)))"
    static let userGateways = "gw AS (SELECT w.id, w.domain_id, w.user_id, w.name, w.position, w.nodes FROM fsconf.gateways w WHERE w.user_id = ANY (ARRAY(SELECT id FROM usr)) AND \(ScopeSQL.visible("w.nodes")))"

    /// $1 domain, $2 user, $3 node: `key=id` matches the id or the number-alias (as
    /// FreeSWITCH's find_user_in_tag does), plus ids holding $${var} references.
    public static let userByID = statement("fsconf_user_by_id", parameters: 3, ctes: [
        domainByName,
        // Exclusive branches (UNION ALL): the id, else the alias, else a candidate
        // whose id holds a $${var} reference (the partial index users_reference_idx)
        // and could expand to $2 (vanilla's `$${default_provider}` user cannot be 1000).
        "usr AS (\(users(where: "lower(u.user_id) = lower($2)")) UNION ALL \(users(where: "lower(u.number_alias) = lower($2) AND lower(u.user_id) <> lower($2)")) UNION ALL \(referenceCandidates(key: "$2", where: "lower(u.user_id) <> lower($2) AND (u.number_alias IS NULL OR lower(u.number_alias) <> lower($2))")))",
        homeGroups, userGateways,
    ], output: output(domainSettings: true, groupSettings: true, userSettings: "", members: false, gateways: true))

    /// $1 domain, $2 alias, $3 node.
    public static let userByAlias = statement("fsconf_user_by_alias", parameters: 3, ctes: [
        domainByName,
        "usr AS (\(users(where: "lower(u.number_alias) = lower($2)")))",
        homeGroups, userGateways,
    ], output: output(domainSettings: true, groupSettings: true, userSettings: "", members: false, gateways: true))

    /// $1 domain, $2 value, $3 attribute name (key=mailbox, ...), $4 node.
    public static let userByAttribute = statement("fsconf_user_by_attribute", parameters: 4, ctes: [
        domainByName,
        "usr AS (\(users(where: "u.id IN (SELECT s.user_id FROM fsconf.user_settings s WHERE s.kind = 'attribute' AND s.name = $3 AND lower(s.value) = lower($2))")))",
        homeGroups, userGateways,
    ], output: output(domainSettings: true, groupSettings: true, userSettings: "", members: false, gateways: true))

    /// $1 domain, $2 group name, $3 node: the group, the users defined in it and its pointer members.
    public static let group = statement("fsconf_group", parameters: 3, ctes: [
        domainByName,
        "grp AS (SELECT g.id, g.domain_id, g.name, g.position FROM fsconf.groups g WHERE g.domain_id = ANY (ARRAY(SELECT id FROM dom)) AND lower(g.name) = lower($2))",
        "usr AS (SELECT \(userColumns) FROM fsconf.users u WHERE u.home_group_id = ANY (ARRAY(SELECT id FROM grp)) AND u.enabled AND \(ScopeSQL.visible("u.nodes")))",
    ], output: output(domainSettings: true, groupSettings: true, userSettings: "", members: true, gateways: false))

    /// $1 domain, $2 node: the domain, its params and variables.
    public static let domain = statement("fsconf_domain", parameters: 2, ctes: [
        domainByName,
        "usr AS (SELECT \(userColumns) FROM fsconf.users u WHERE false)",
        "grp AS (SELECT g.id, g.domain_id, g.name, g.position FROM fsconf.groups g WHERE false)",
    ], output: output(domainSettings: true, groupSettings: false, userSettings: nil, members: false, gateways: false))

    /// $1 domain, $2 node, purpose=network-list: users carrying a cidr attribute.
    public static let domainCIDR = statement("fsconf_domain_cidr", parameters: 2, ctes: [
        domainByName,
        "usr AS (\(users(where: "u.id IN (SELECT s.user_id FROM fsconf.user_settings s WHERE s.kind = 'attribute' AND s.name = 'cidr')")))",
        homeGroups,
    ], output: output(domainSettings: true, groupSettings: false, userSettings: " AND s.kind = 'attribute'", members: false, gateways: false))

    /// $1 domain, $2 node, purpose=publish-vm: every user with params and variables.
    public static let domainAllUsers = statement("fsconf_domain_all_users", parameters: 2, ctes: [
        domainByName,
        "usr AS (\(users(where: "true")))",
        "grp AS (SELECT g.id, g.domain_id, g.name, g.position FROM fsconf.groups g WHERE false)",
    ], output: output(domainSettings: true, groupSettings: false, userSettings: "", members: false, gateways: false))

    /// purpose=gateways: $1 domain or NULL for every domain, $2 node; the users carrying gateways.
    public static let gateways = statement("fsconf_gateways", parameters: 2, ctes: [
        """
        dom AS (
            SELECT d.id, d.name, d.cacheable, d.nodes FROM fsconf.domains d
            WHERE ($1::text IS NULL OR lower(d.name) = lower($1) OR d.name LIKE '%$${%') AND \(ScopeSQL.visible("d.nodes"))
        )
        """,
        "gw AS (SELECT w.id, w.domain_id, w.user_id, w.name, w.position, w.nodes FROM fsconf.gateways w WHERE w.domain_id = ANY (ARRAY(SELECT id FROM dom)) AND \(ScopeSQL.visible("w.nodes")))",
        "usr AS (SELECT \(userColumns) FROM fsconf.users u WHERE u.id = ANY (ARRAY(SELECT user_id FROM gw)) AND u.enabled AND \(ScopeSQL.visible("u.nodes")))",
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
            guard let kind = result.withBytes(i, 0, DirectoryRow.Kind.init(bytes:)) ?? nil else { continue }
            rows.append(DirectoryRow(kind: kind, id: result.int64(i, 1) ?? 0, parent: result.int64(i, 2),
                                     a: result.string(i, 3), b: result.string(i, 4), c: result.string(i, 5),
                                     d: result.string(i, 6), e: result.string(i, 7),
                                     position: result.int(i, 8) ?? 0, rank: result.int(i, 9) ?? 0))
        }
        return rows
    }
}

/// Every lookup statement ends with one `Q` row: the `seq` of the last change set
/// committed in the statement's own snapshot (fsconf.change_counter), and the
/// current globals version (fsconf.globals_version) in the `parent` column. The
/// node cache stores the seq with the answer, so an answer read from a lagging
/// standby is never cached as newer than a change the node has already heard of.
public enum ChangeSeq {
    /// `SELECT 'Q', seq, globals version, `padding` NULLs, 0 (pos)`, then `extra`
    /// columns: the directory shape.
    static func row(padding: Int, extra: String = "") -> String {
        "SELECT 'Q', c.value, \(globalsVersion)" + String(repeating: ", NULL", count: padding) + ", 0\(extra) FROM fsconf.change_counter c"
    }

    /// The current globals version (fsconf.globals_version holds one row).
    static let globalsVersion = "(SELECT g.value FROM fsconf.globals_version g)"

    /// The condition of the `V` rows: the node's globals version ($`parameter`) is
    /// not the current one (a one-time filter: nothing is scanned when it is).
    static func globalsStale(parameter: Int) -> String {
        "\(globalsVersion) IS DISTINCT FROM $\(parameter)::bigint"
    }

    /// The `Q` row's values (the last row, normally), or nil.
    public static func of(_ result: PGResult) -> (seq: Int64, globalsVersion: String?)? {
        var i = result.rowCount - 1
        while i >= 0 {
            if result.string(i, 0) == "Q" {
                guard let seq = result.string(i, 1).flatMap({ Int64($0) }) else { return nil }
                return (seq, result.string(i, 2))
            }
            i -= 1
        }
        return nil
    }
}

/// A directory statement's result read in place (DirectoryUserRenderer): the
/// values' bytes are libpq's, valid as long as the result.
extension PGResult {
    public var directoryRawRows: [RawDirectoryRow] {
        var rows: [RawDirectoryRow] = []
        rows.reserveCapacity(rowCount)
        for i in 0..<rowCount {
            guard let kind = withBytes(i, 0, DirectoryRow.Kind.init(bytes:)) ?? nil else { continue }
            rows.append(RawDirectoryRow(kind: kind, id: int64(i, 1) ?? 0, parent: int64(i, 2), a: bytes(i, 3), b: bytes(i, 4),
                                        c: bytes(i, 5), d: bytes(i, 6), e: bytes(i, 7), position: int(i, 8) ?? 0,
                                        rank: int(i, 9) ?? 0))
        }
        return rows
    }
}
