import FSConfAdminCore
import FSConfCore
import FSConfStore

/// Transactions on the caller's connection.
public enum Transactions {
    /// Runs `body` between BEGIN and COMMIT; rolls back when it throws.
    public static func run<T>(_ conn: PGConnection, _ body: () throws -> T) throws -> T {
        try conn.execute("BEGIN")
        var done = false
        defer { if !done { _ = try? conn.execute("ROLLBACK") } }
        let result = try body()
        try conn.execute("COMMIT")
        done = true
        return result
    }

    /// Runs `body` in one read-only snapshot of every table.
    public static func snapshot<T>(_ conn: PGConnection, _ body: () throws -> T) throws -> T {
        try conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        defer { _ = try? conn.execute("COMMIT") }
        return try body()
    }
}

extension ChangeSets {
    /// Runs `body` in one transaction under one change set; returns the change set id
    /// when something changed (nil: nothing did, and nothing is announced).
    public static func write<T>(_ conn: PGConnection, actor: String, source: String = "cli", summary: String, undoOf: String? = nil,
                                _ body: (PGConnection) throws -> T) throws -> (T, String?) {
        try Transactions.run(conn) {
            let id = try open(conn, actor: actor, source: source, summary: summary, undoOf: undoOf)
            let result = try body(conn)
            let changed = try conn.query("SELECT EXISTS (SELECT 1 FROM fsconf.changes WHERE change_set_id = $1::bigint)", [id]).bool(0, 0) ?? false
            return (result, changed ? id : nil)
        }
    }
}

extension ConfigStore {
    /// Takes the import lock for the caller's transaction: an EXCLUSIVE lock on
    /// `fsconf.import_lock`, which writers may take and readers (nodes) cannot — a
    /// reader can only take ACCESS SHARE, which does not conflict (migration 0005).
    public func lockImports() throws(PostgresError) {
        try conn.execute("LOCK TABLE fsconf.import_lock IN EXCLUSIVE MODE")
    }
}

/// The typed conveniences' writes (`fsconf domain|user|gateway|extension add`), in
/// the caller's transaction and change set. Each creator locks the row it adds
/// under (the domain, the context) or lets a unique index decide, so of concurrent
/// creators of one name exactly one wins and the others get `.conflict`.
public struct AdminStore {
    let conn: PGConnection
    public init(_ conn: PGConnection) { self.conn = conn }

    /// A domain's id, its row locked against concurrent creators under it: the
    /// unscoped domain of that name, else its first variant (docs/cluster.md).
    func lockDomain(_ domain: String) throws -> String {
        let r = try conn.query("""
            SELECT id FROM fsconf.domains WHERE lower(name) = lower($1) ORDER BY nodes IS NOT NULL, id LIMIT 1 FOR NO KEY UPDATE
            """, [domain])
        guard r.rowCount == 1 else { throw FieldStoreError.notFound("no domain \(domain)") }
        return r.string(0, 0)!
    }

    /// "{scope}" for messages, "" for every node.
    static func label(_ scope: Scope?) -> String { scope.map { "{\($0)}" } ?? "" }

    /// `scope`: the variant (docs/cluster.md); nil: every node's.
    public func addDomain(_ name: String, cacheable: String?, scope: Scope? = nil) throws {
        let r = try conn.query("""
            INSERT INTO fsconf.domains (name, cacheable, position, nodes)
            SELECT $1, $2, coalesce(max(position), 0) + 1, $3::text[] FROM fsconf.domains
            ON CONFLICT DO NOTHING RETURNING id
            """, [name, cacheable, scope?.sqlArray])
        if r.rowCount == 0 { throw FieldStoreError.conflict("domain \(name)\(AdminStore.label(scope)) already exists") }
    }

    public func addUser(domain: String, user: String, group: String?, alias: String?,
                        params: [(String, String)], variables: [(String, String)], scope: Scope? = nil) throws {
        let d = try lockDomain(domain)
        let nodes = scope?.sqlArray
        if let taken = try conn.query("""
            SELECT user_id FROM fsconf.users WHERE domain_id = $1::bigint AND lower(user_id) = lower($2) AND nodes IS NOT DISTINCT FROM $3::text[]
            """, [d, user, nodes]).string(0, 0) {
            throw FieldStoreError.conflict("user \(taken)\(AdminStore.label(scope)) already exists in \(domain)")
        }
        if let alias, let owner = try conn.query("""
            SELECT user_id FROM fsconf.users WHERE domain_id = $1::bigint AND lower(number_alias) = lower($2) AND nodes IS NOT DISTINCT FROM $3::text[]
            """, [d, alias, nodes]).string(0, 0) {
            throw FieldStoreError.conflict("number-alias \(alias) belongs to user \(owner)\(AdminStore.label(scope)) of \(domain)")
        }
        var groupID: String?
        if let group {
            groupID = try conn.query("SELECT id FROM fsconf.groups WHERE domain_id = $1::bigint AND lower(name) = lower($2)", [d, group]).string(0, 0)
            if groupID == nil {
                groupID = try conn.query("""
                    INSERT INTO fsconf.groups (domain_id, name, position)
                    SELECT $1::bigint, $2, coalesce(max(position), 0) + 1 FROM fsconf.groups WHERE domain_id = $1::bigint RETURNING id
                    """, [d, group]).string(0, 0)
            }
        }
        let u = try conn.query("""
            INSERT INTO fsconf.users (domain_id, user_id, number_alias, home_group_id, position, nodes)
            SELECT $1::bigint, $2, $3, $4::bigint, coalesce(max(position), 0) + 1, $5::text[] FROM fsconf.users WHERE domain_id = $1::bigint
            RETURNING id
            """, [d, user, alias, groupID, nodes]).string(0, 0)!
        for (k, (kind, list)) in [("param", params), ("variable", variables)].enumerated() {
            for (n, (name, value)) in list.enumerated() {
                try conn.query("INSERT INTO fsconf.user_settings (user_id, kind, name, value, position) VALUES ($1::bigint, $2, $3, $4, $5::int)",
                               [u, kind, name, value, String(k * 1000 + n + 1)])
            }
        }
    }

    /// The gateway goes to the user's unscoped variant (else its first one).
    public func addGateway(domain: String, name: String, user: String?, params: [(String, String)], variables: [(String, String)],
                           scope: Scope? = nil) throws {
        let d = try lockDomain(domain)
        var u: String?
        if let user {
            u = try conn.query("""
                SELECT id FROM fsconf.users WHERE domain_id = $1::bigint AND lower(user_id) = lower($2) ORDER BY nodes IS NOT NULL, id LIMIT 1
                """, [d, user]).string(0, 0)
            if u == nil { throw FieldStoreError.notFound("no user \(user) in domain \(domain)") }
        }
        if try conn.query("SELECT 1 FROM fsconf.gateways WHERE domain_id = $1::bigint AND name = $2 AND nodes IS NOT DISTINCT FROM $3::text[]",
                          [d, name, scope?.sqlArray]).rowCount > 0 {
            throw FieldStoreError.conflict("gateway \(name)\(AdminStore.label(scope)) already exists in \(domain)")
        }
        let g = try conn.query("""
            INSERT INTO fsconf.gateways (domain_id, user_id, name, position, nodes)
            SELECT $1::bigint, $2::bigint, $3, coalesce(max(position), 0) + 1, $4::text[] FROM fsconf.gateways WHERE domain_id = $1::bigint
            RETURNING id
            """, [d, u, name, scope?.sqlArray]).string(0, 0)!
        var position = 0
        for (kind, list) in [("param", params), ("variable", variables)] {
            for (n, v) in list {
                position += 1
                try conn.query("INSERT INTO fsconf.gateway_settings (gateway_id, kind, name, value, position) VALUES ($1::bigint, $2, $3, $4, $5::int)",
                               [g, kind, n, v, String(position)])
            }
        }
    }

    /// `<gateway name>` with `<param>`s and `<variables>` in the profile's
    /// `<gateways>` (created when missing) of the stored sofia.conf. The profile
    /// element is locked first: of concurrent adders of one name, one wins.
    public func addProfileGateway(profile: String, name: String, params: [(String, String)], variables: [(String, String)],
                                  scope: Scope? = nil) throws {
        let doc = try conn.query("SELECT id FROM fsconf.documents WHERE section = 'configuration' AND name = 'sofia.conf' AND nodes IS NULL")
        guard let d = doc.string(0, 0) else { throw FieldStoreError.notFound("no sofia.conf is stored (fsconf import it first)") }
        let p = try conn.query("""
            SELECT e.id FROM fsconf.elements e JOIN fsconf.elements ps ON ps.id = e.parent_id
            JOIN fsconf.attributes a ON a.element_id = e.id AND a.name = 'name'
            WHERE e.document_id = $1::bigint AND e.tag = 'profile' AND ps.tag = 'profiles' AND lower(a.value) = lower($2)
            ORDER BY (a.value = $2) DESC, e.nodes IS NOT NULL, e.position LIMIT 1 FOR UPDATE OF e
            """, [d, profile])
        guard let pid = p.string(0, 0) else { throw FieldStoreError.notFound("sofia.conf has no profile \(profile)") }
        let container = try conn.query("SELECT id FROM fsconf.elements WHERE parent_id = $1::bigint AND tag = 'gateways' ORDER BY position LIMIT 1", [pid])
        let gateways = try container.string(0, 0) ?? appendElement(d, pid, "gateways", [])
        let taken = try conn.query("""
            SELECT 1 FROM fsconf.elements g JOIN fsconf.attributes a ON a.element_id = g.id AND a.name = 'name'
            WHERE g.parent_id = $1::bigint AND g.tag = 'gateway' AND a.value = $2 AND g.nodes IS NOT DISTINCT FROM $3::text[]
            """, [gateways, name, scope?.sqlArray])
        if taken.rowCount > 0 { throw FieldStoreError.conflict("gateway \(name)\(AdminStore.label(scope)) already exists in profile \(profile)") }
        let g = try appendElement(d, gateways, "gateway", [("name", name)], scope: scope)
        for (n, v) in params { _ = try appendElement(d, g, "param", [("name", n), ("value", v)]) }
        if !variables.isEmpty {
            let vs = try appendElement(d, g, "variables", [])
            for (n, v) in variables { _ = try appendElement(d, vs, "variable", [("name", n), ("value", v)]) }
        }
    }

    /// A new last child of `parent` with its attributes in order; returns its id.
    func appendElement(_ document: String, _ parent: String, _ tag: String, _ attributes: [(String, String)],
                       scope: Scope? = nil) throws -> String {
        let e = try conn.query("""
            INSERT INTO fsconf.elements (document_id, parent_id, position, tag, nodes)
            SELECT $1::bigint, $2::bigint, coalesce(max(position), 0) + 1, $3, $4::text[] FROM fsconf.elements WHERE parent_id = $2::bigint
            RETURNING id
            """, [document, parent, tag, scope?.sqlArray]).string(0, 0)!
        for (k, (n, v)) in attributes.enumerated() {
            try conn.query("INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES ($1::bigint, $2, $3, $4::int)",
                           [e, n, v, String(k + 1)])
        }
        return e
    }

    /// Appends an extension to `context` (created if missing: returns true then).
    /// One condition per (field, expression); the actions go to the last condition.
    @discardableResult
    public func addExtension(context: String, name: String, continue continueOn: Bool, conditions: [(String, String)],
                             actions: [(String, String?)], antiActions: [(String, String?)], scope: Scope? = nil) throws -> Bool {
        let created = try conn.query("""
            INSERT INTO fsconf.dialplan_contexts (section, name, position)
            SELECT 'dialplan', $1, coalesce(max(position), 0) + 1 FROM fsconf.dialplan_contexts WHERE section = 'dialplan'
            ON CONFLICT DO NOTHING RETURNING id
            """, [context]).rowCount == 1
        let c = try conn.query("SELECT id FROM fsconf.dialplan_contexts WHERE section = 'dialplan' AND name = $1 AND nodes IS NULL FOR NO KEY UPDATE",
                               [context]).string(0, 0)!
        if try conn.query("SELECT 1 FROM fsconf.dialplan_extensions WHERE context_id = $1::bigint AND name = $2 AND nodes IS NOT DISTINCT FROM $3::text[]",
                          [c, name, scope?.sqlArray]).rowCount > 0 {
            throw FieldStoreError.conflict("extension \(name)\(AdminStore.label(scope)) already exists in context \(context)")
        }
        let x = try conn.query("""
            INSERT INTO fsconf.dialplan_extensions (context_id, name, continue, position, nodes)
            SELECT $1::bigint, $2, $3, coalesce(max(position), 0) + 1, $4::text[] FROM fsconf.dialplan_extensions WHERE context_id = $1::bigint
            RETURNING id
            """, [c, name, continueOn ? "true" : nil, scope?.sqlArray]).string(0, 0)!
        var last: String?
        for (n, (field, expression)) in conditions.enumerated() {
            last = try conn.query("""
                INSERT INTO fsconf.dialplan_conditions (extension_id, position, field, expression) VALUES ($1::bigint, $2::int, $3, $4) RETURNING id
                """, [x, String(n + 1), field, expression]).string(0, 0)
        }
        if let last {
            for (kind, list) in [("action", actions), ("anti-action", antiActions)] {
                for (n, (app, data)) in list.enumerated() {
                    try conn.query("INSERT INTO fsconf.dialplan_actions (condition_id, kind, position, application, data) VALUES ($1::bigint, $2, $3::int, $4, $5)",
                                   [last, kind, String(n + 1), app, data])
                }
            }
        }
        return created
    }

    /// A user's stored domain name and id (as spelled in the database).
    public func user(domain: String, user: String) throws -> (domain: String, user: String) {
        let r = try conn.query("""
            SELECT d.name, u.user_id FROM fsconf.users u JOIN fsconf.domains d ON d.id = u.domain_id
            WHERE lower(d.name) = lower($1) AND lower(u.user_id) = lower($2)
            """, [domain, user])
        guard r.rowCount == 1 else { throw FieldStoreError.notFound("no user \(user) in domain \(domain)") }
        return (r.string(0, 0)!, r.string(0, 1)!)
    }
}

/// The group roles and their members (docs/schema.md, Roles; Privileges holds the SQL text).
public enum Roles {
    public static func exists(_ conn: PGConnection, _ role: String) throws -> Bool {
        try conn.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]).rowCount == 1
    }

    /// The group roles (fsconf_reader, fsconf_writer) that do not exist yet.
    public static func missingGroupRoles(_ conn: PGConnection) throws -> [String] {
        try Privileges.roles.filter { try !exists(conn, $0) }
    }

    /// Whether the session's role may create roles.
    public static func mayCreateRoles(_ conn: PGConnection) throws -> Bool {
        try conn.query("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").bool(0, 0) == true
    }

    public static func session(_ conn: PGConnection) throws -> (user: String, database: String) {
        let r = try conn.query("SELECT current_user, current_database()")
        return (r.string(0, 0) ?? "", r.string(0, 1) ?? "")
    }

    /// Creates a group role; one created meanwhile by a concurrent run is fine.
    public static func create(_ conn: PGConnection, _ name: String) throws {
        do {
            try conn.execute(Privileges.createRole(name))
        } catch {
            if error.sqlState != "42710" { throw error }
        }
    }

    /// Makes `role` a member of `group`. Returns the statement and the reason when
    /// this session may not (a DBA runs it instead).
    public static func grantMembership(_ conn: PGConnection, _ group: String, to role: String) throws -> (statement: String, reason: String)? {
        // Role names cannot be bind parameters; they are quoted by libpq.
        let statement = "GRANT \(group) TO \(conn.quoteIdentifier(role))"
        do {
            try conn.execute(statement)
        } catch {
            if error.sqlState != "42501" { throw error }
            return (statement, error.message)
        }
        return nil
    }

    /// What the group roles are granted (tables added by later migrations included).
    public static func grantTables(_ conn: PGConnection) throws {
        if try conn.query("SELECT 1 FROM pg_namespace WHERE nspname = 'fsconf'").rowCount == 1 {
            try conn.execute(Privileges.grantStatement)
        }
    }
}

/// PostgreSQL's refusals in the user's terms: one line saying what is wrong,
/// without constraint names (those stay in `debugDescription`).
public enum SchemaMessages {
    /// Unique indexes and keys → what is taken.
    static let unique: [String: String] = [
        "domains_name_idx": "a domain of that name already exists (names compare without regard to case)",
        "groups_name_idx": "a group of that name already exists in the domain",
        "users_id_idx": "a user with that id already exists in the domain",
        "users_number_alias_idx": "that number-alias belongs to another user of the domain",
        "gateways_domain_id_name_key": "a gateway of that name already exists in the domain",
        "dialplan_contexts_name_key": "a dialplan context of that name already exists",
        "documents_section_name_key": "a document of that name already exists",
        "global_variables_pkey": "that global variable already exists",
        "attributes_pkey": "that attribute already exists",
        "group_members_pkey": "the user is already a member of that group",
        "elements_one_root_idx": "the document already has a root element",
    ]

    /// CHECK constraints of migrations 0001/0002 → what the value must be.
    static let checks: [String: String] = [
        "dialplan_conditions_field_expression_check": "a condition with a field needs an expression and the reverse (unless it has regex=all|any|xor)",
        "dialplan_conditions_field_check": "a condition's field cannot be empty",
        "dialplan_regexes_field_check": "a regex's field cannot be empty",
        "domains_cacheable_check": "a domain's cacheable takes true or milliseconds",
        "users_cacheable_check": "cacheable takes true, false or milliseconds",
        "domains_cacheable_range_check": "cacheable is above \(FieldValidation.maximumCacheableMilliseconds) ms, which FreeSWITCH cannot read; use true or less",
        "users_cacheable_range_check": "cacheable is above \(FieldValidation.maximumCacheableMilliseconds) ms, which FreeSWITCH cannot read; use true or less",
        "global_variables_name_check": "a global variable's name is letters, digits and _ . : -",
        "elements_tag_check": "not a valid XML element name",
        "attributes_name_check": "not a valid XML attribute name",
        "dialplan_extensions_continue_check": "continue takes true or false",
        "dialplan_actions_inline_check": "inline takes true or false",
        "dialplan_conditions_break_check": "break takes on-true, on-false, always or never",
        "dialplan_conditions_require_nested_check": "require-nested takes true or false",
        "dialplan_conditions_regex_check": "regex takes all, any or xor",
        "dialplan_actions_application_check": "application cannot be empty",
        "gateway_settings_direction_check": "direction takes inbound or outbound",
    ]

    /// The user-terms message for a refused statement, or nil to show PostgreSQL's.
    public static func explain(_ e: PostgresError) -> String? {
        guard e.kind == .query, let state = e.sqlState else { return nil }
        let constraint = e.constraint ?? ""
        switch state {
        case "23505":
            return unique[constraint] ?? (constraint.hasSuffix("position_key") || constraint.hasSuffix("position_key1")
                ? "another writer changed the same list at the same time; try again"
                : "that name is already taken (\(constraint.isEmpty ? "a unique key" : "unique key \(constraint)"))")
        case "23514":
            if let m = checks[constraint] { return m }
            if constraint.hasSuffix("_name_check") || constraint == "users_user_id_check" || constraint == "users_number_alias_check" {
                return "a name cannot be empty or hold control characters (tab and newline included)"
            }
            if constraint.hasSuffix("_text_check") { return "the value holds a control character, which XML cannot carry" }
            if constraint.hasSuffix("_kind_check") { return "unknown kind of setting" }
            return e.message
        case "23503":
            return "it refers to something that does not exist (or is still referred to)"
        case "23502":
            return "a required value is missing"
        case "42P01", "3F000", "42883", "42703":
            return e.message.contains("fsconf") || state == "42703"
                ? "the database is not migrated for this fsconf (\(e.message)): run `fsconf migrate up`" : nil
        case "42501":
            return "permission denied: \(e.message) (is this login a member of fsconf_writer? `fsconf grant writer ROLE`)"
        default:
            return nil
        }
    }
}
