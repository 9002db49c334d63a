import FSConfAdminCore
import FSConfCore
import FSConfStore

/// What a dry run reads to know which lookups a change touches: a change set's
/// keys, a domain's groups and users, what references a global. Reads only, on
/// the caller's connection and transaction (so an uncommitted change set is seen).
public final class LookupFactsStore: LookupFacts {
    let conn: PGConnection
    /// The first error a fact query hit (`LookupFacts` cannot throw): the caller
    /// checks it after deriving, and fails rather than show a partial review.
    public private(set) var error: PostgresError?

    public init(_ conn: PGConnection) { self.conn = conn }

    /// The keys the change set's rows recorded (docs/changes.md), each once.
    public func keys(changeSet id: String) throws(PostgresError) -> [LookupKey] {
        let r = try conn.query("""
            SELECT DISTINCT k::text FROM fsconf.changes c, jsonb_array_elements(c.keys) k
            WHERE c.change_set_id = $1::bigint ORDER BY 1
            """, [id])
        return (0..<r.rowCount).compactMap { r.string($0, 0).flatMap(JSONValue.parse).flatMap(LookupKey.from) }
    }

    /// The nodes some entity is limited to, by name or through a group they are in
    /// (docs/cluster.md): the nodes whose answers may differ from every other node's.
    public func scopedNodes() throws(PostgresError) -> [String] {
        let scoped = FieldStore.scopedTables.sorted().map { "SELECT unnest(nodes) FROM fsconf.\($0) WHERE nodes IS NOT NULL" }
        let r = try conn.query("""
            WITH named(n) AS (\(scoped.joined(separator: " UNION ")))
            SELECT n FROM named WHERE n NOT LIKE '@%'
            UNION SELECT g.node FROM fsconf.node_groups g JOIN named ON named.n = '@' || g.node_group
            ORDER BY 1
            """)
        return (0..<r.rowCount).compactMap { r.string($0, 0) }
    }

    /// How many rows the change set changed.
    public func rowCount(changeSet id: String) throws(PostgresError) -> Int {
        try conn.query("SELECT count(*) FROM fsconf.changes WHERE change_set_id = $1::bigint", [id]).int(0, 0) ?? 0
    }

    private func rows(_ sql: String, _ params: [String?]) -> PGResult? {
        do { return try conn.query(sql, params) } catch {
            if self.error == nil { self.error = error }
            return nil
        }
    }

    public func members(ofDomain domain: String) -> (groups: [String], users: [String])? {
        guard let d = rows("SELECT id FROM fsconf.domains WHERE lower(name) = lower($1) ORDER BY (name = $1) DESC, id LIMIT 1", [domain]),
              let id = d.string(0, 0) else { return nil }
        guard let r = rows("""
            SELECT 'g', name FROM (SELECT name, position, id FROM fsconf.groups WHERE domain_id = $1::bigint ORDER BY position, id) g
            UNION ALL
            SELECT 'u', user_id FROM (SELECT user_id, position, id FROM fsconf.users WHERE domain_id = $1::bigint ORDER BY position, id) u
            """, [id]) else { return nil }
        var groups: [String] = [], users: [String] = []
        for i in 0..<r.rowCount {
            guard let name = r.string(i, 1) else { continue }
            if r.string(i, 0) == "g" { groups.append(name) } else { users.append(name) }
        }
        return (groups, users)
    }

    /// Every stored value or name holding `$${name}`, as the key of the lookup
    /// that renders it (a user, a domain, a context, a document) or of the global
    /// that holds it. A row's text form holds each value verbatim (a global's name
    /// is letters, digits and `_ . : -`, nothing the text form quotes).
    public func references(global name: String) -> [LookupKey] {
        guard let r = rows("""
            SELECT 'globals', name, NULL, NULL FROM fsconf.global_variables WHERE strpos(value, $1) > 0
            UNION
            SELECT 'directory', d.name, NULL, NULL FROM fsconf.domains d
            WHERE strpos(d.name, $1) > 0
               OR EXISTS (SELECT 1 FROM fsconf.domain_settings s WHERE s.domain_id = d.id AND strpos(s.value, $1) > 0)
               OR EXISTS (SELECT 1 FROM fsconf.groups g WHERE g.domain_id = d.id AND (strpos(g.name, $1) > 0
                          OR EXISTS (SELECT 1 FROM fsconf.group_settings s WHERE s.group_id = g.id AND strpos(s.value, $1) > 0)))
            UNION
            SELECT 'directory', d.name, u.user_id, NULL FROM fsconf.users u JOIN fsconf.domains d ON d.id = u.domain_id
            WHERE strpos(u::text, $1) > 0
               OR EXISTS (SELECT 1 FROM fsconf.user_settings s WHERE s.user_id = u.id AND strpos(s.value, $1) > 0)
            UNION
            SELECT 'directory', d.name, u.user_id, g.name FROM fsconf.gateways g JOIN fsconf.domains d ON d.id = g.domain_id
            LEFT JOIN fsconf.users u ON u.id = g.user_id
            WHERE strpos(g.name, $1) > 0
               OR EXISTS (SELECT 1 FROM fsconf.gateway_settings s WHERE s.gateway_id = g.id AND strpos(s.value, $1) > 0)
            UNION
            SELECT c.section, c.name, NULL, NULL FROM fsconf.dialplan_contexts c
            WHERE strpos(c.name, $1) > 0
               OR EXISTS (SELECT 1 FROM fsconf.dialplan_extensions e LEFT JOIN fsconf.dialplan_conditions x ON x.extension_id = e.id
                          WHERE e.context_id = c.id AND (strpos(e::text, $1) > 0 OR strpos(x::text, $1) > 0
                             OR EXISTS (SELECT 1 FROM fsconf.dialplan_actions a WHERE a.condition_id = x.id AND strpos(a::text, $1) > 0)
                             OR EXISTS (SELECT 1 FROM fsconf.dialplan_regexes g WHERE g.condition_id = x.id AND strpos(g::text, $1) > 0)))
            UNION
            SELECT d.section, d.name, NULL, NULL FROM fsconf.documents d
            WHERE strpos(d.name, $1) > 0
               OR EXISTS (SELECT 1 FROM fsconf.elements e WHERE e.document_id = d.id AND (strpos(e.text, $1) > 0
                          OR EXISTS (SELECT 1 FROM fsconf.attributes a WHERE a.element_id = e.id AND strpos(a.value, $1) > 0)))
            ORDER BY 1, 2, 3, 4
            """, ["$${" + name + "}"]) else { return [] }
        return (0..<r.rowCount).compactMap { i in
            guard let section = r.string(i, 0), let key = r.string(i, 1) else { return nil }
            switch section {
            case "globals": return key == name ? nil : LookupKey(section: "globals", name: key)
            case "directory": return LookupKey(section: section, domain: key, user: r.string(i, 2), gateway: r.string(i, 3))
            case "dialplan", "chatplan": return LookupKey(section: section, name: key)
            default: return LookupKey(section: section, name: key)
            }
        }
    }
}
