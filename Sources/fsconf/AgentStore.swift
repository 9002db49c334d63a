import FSConfAgentCore
import FSConfCore
import FSConfAdminStore
import FSConfStore

/// The agent's reads from PostgreSQL: the change counter, change sets with their
/// rows, the configuration documents and globals, and directory facts. Every call
/// is bounded by a deadline; standby-safe (reads only).
final class AgentStore: DirectoryFacts {
    let conn: PGConnection
    let timeoutMs: Int
    /// The first error a fact query hit (the planner's protocol cannot throw).
    private(set) var factError: PostgresError?

    init(conninfo: String, timeoutMs: Int = 5_000) throws(PostgresError) {
        self.timeoutMs = timeoutMs
        conn = try PGConnection(conninfo: conninfo, settings: [("application_name", "fsconf-agent")],
                                deadline: MonotonicClock.deadline(afterMilliseconds: timeoutMs))
        try run("SELECT set_config('statement_timeout', $1, false), set_config('jit', 'off', false)", String(timeoutMs))
    }

    /// On the caller's connection and transaction (a dry run plans a change set it
    /// has not committed): no settings changed, reads only.
    init(connection: PGConnection, timeoutMs: Int = 30_000) {
        self.timeoutMs = timeoutMs
        conn = connection
    }

    /// Runs one statement; every value is a bind parameter.
    @discardableResult
    func run(_ sql: String, _ params: String?...) throws(PostgresError) -> PGResult {
        try conn.query(sql, params, deadline: MonotonicClock.deadline(afterMilliseconds: timeoutMs))
    }

    /// The latest committed seq, and whether this server is a standby.
    func counter() throws(PostgresError) -> (seq: Int64, standby: Bool) {
        let r = try run("SELECT value, pg_is_in_recovery() FROM fsconf.change_counter")
        return (Int64(r.string(0, 0) ?? "") ?? 0, r.bool(0, 1) ?? false)
    }

    func listen() throws(PostgresError) { try conn.execute("LISTEN fsconf_changes", deadline: MonotonicClock.deadline(afterMilliseconds: timeoutMs)) }

    /// Change sets with seq in (after, upTo], in commit order, with their rows.
    func changeSets(after: Int64, upTo: Int64, limit: Int = 500) throws(PostgresError) -> [ChangeSet] {
        // Each set's age when read (the database's clock on both ends): commit → applied.
        // committed_at comes with migration 0008; before it, the set's start time.
        let sets = try run("""
            SELECT seq, id, (extract(epoch FROM clock_timestamp()
                   - coalesce((to_jsonb(cs) ->> 'committed_at')::timestamptz, created_at)) * 1000)::bigint
            FROM fsconf.change_sets cs WHERE seq > $1::bigint AND seq <= $2::bigint ORDER BY seq LIMIT $3::int
            """, String(after), String(upTo), String(limit))
        var out: [ChangeSet] = []
        var index: [Int64: Int] = [:]
        for i in 0..<sets.rowCount {
            guard let seq = Int64(sets.string(i, 0) ?? ""), let id = Int64(sets.string(i, 1) ?? "") else { continue }
            index[id] = out.count
            out.append(ChangeSet(seq: seq, id: id, rows: [], ageMs: Int64(sets.string(i, 2) ?? "")))
        }
        if out.isEmpty { return out }
        let ids = "{" + out.map { String($0.id) }.joined(separator: ",") + "}"
        let rows = try run("""
            SELECT change_set_id, table_name, operation, old_row::text, new_row::text, keys::text
            FROM fsconf.changes WHERE change_set_id = ANY ($1::bigint[]) AND table_name IS NOT NULL ORDER BY id
            """, ids)
        for i in 0..<rows.rowCount {
            guard let set = Int64(rows.string(i, 0) ?? ""), let at = index[set],
                  let row = ChangeRow(table: rows.string(i, 1) ?? "", operation: rows.string(i, 2) ?? "",
                                      oldRow: rows.string(i, 3), newRow: rows.string(i, 4), keys: rows.string(i, 5)) else { continue }
            out[at].rows.append(row)
        }
        return out
    }

    /// The configuration documents and globals, and the seq they are current at,
    /// read in one snapshot.
    func configState() throws(PostgresError) -> (state: ConfigState, seq: Int64) {
        try run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        do {
            let seq = try counter().seq
            let s = try readConfigState()
            try run("COMMIT")
            return (s, seq)
        } catch {
            _ = try? run("ROLLBACK")
            throw error
        }
    }

    /// The configuration documents and globals, in the caller's transaction.
    func readConfigState() throws(PostgresError) -> ConfigState {
        var s = ConfigState()
        let docs = try run("SELECT id, section, name, array_to_string(nodes, ',') FROM fsconf.documents WHERE section = 'configuration'")
        for i in 0..<docs.rowCount {
            s.addDocument(id: Int64(docs.string(i, 0)!)!, section: docs.string(i, 1) ?? "", name: docs.string(i, 2) ?? "",
                          scope: Scope.fromColumn(docs.string(i, 3)))
        }
        let els = try run("""
            SELECT e.id, e.document_id, e.parent_id, e.position, e.tag, e.text, array_to_string(e.nodes, ',') FROM fsconf.elements e
            JOIN fsconf.documents d ON d.id = e.document_id WHERE d.section = 'configuration'
            """)
        for i in 0..<els.rowCount {
            s.addElement(id: Int64(els.string(i, 0)!)!, document: Int64(els.string(i, 1)!)!,
                         parent: els.string(i, 2).flatMap { Int64($0) }, position: Int64(els.string(i, 3) ?? "0") ?? 0,
                         tag: els.string(i, 4) ?? "", text: els.string(i, 5), scope: Scope.fromColumn(els.string(i, 6)))
        }
        let attrs = try run("""
            SELECT a.element_id, a.name, a.value, a.position FROM fsconf.attributes a
            JOIN fsconf.elements e ON e.id = a.element_id JOIN fsconf.documents d ON d.id = e.document_id
            WHERE d.section = 'configuration'
            """)
        for i in 0..<attrs.rowCount {
            s.addAttribute(element: Int64(attrs.string(i, 0)!)!, name: attrs.string(i, 1) ?? "",
                           value: attrs.string(i, 2) ?? "", position: Int64(attrs.string(i, 3) ?? "0") ?? 0)
        }
        let globals = try run("""
            SELECT id, name, value, array_to_string(nodes, ',') FROM fsconf.global_variables WHERE command NOT IN ('exec-set', 'env-set')
            """)
        for i in 0..<globals.rowCount {
            s.addGlobal(id: Int64(globals.string(i, 0) ?? "") ?? 0, name: globals.string(i, 1) ?? "", value: globals.string(i, 2) ?? "",
                        scope: Scope.fromColumn(globals.string(i, 3)))
        }
        return s
    }

    /// The rows of one change set, committed or not (the caller's own, in its transaction).
    func changeRows(changeSet id: Int64) throws(PostgresError) -> [ChangeRow] {
        let rows = try run("""
            SELECT table_name, operation, old_row::text, new_row::text, keys::text
            FROM fsconf.changes WHERE change_set_id = $1::bigint AND table_name IS NOT NULL ORDER BY id
            """, String(id))
        return (0..<rows.rowCount).compactMap {
            ChangeRow(table: rows.string($0, 0) ?? "", operation: rows.string($0, 1) ?? "",
                      oldRow: rows.string($0, 2), newRow: rows.string($0, 3), keys: rows.string($0, 4))
        }
    }

    /// Records this node's status (fsconf.report_node, migration 0008): the only
    /// write an agent makes, through a function that touches only its own row.
    func report(node: String, freeswitchVersion: String?, agentVersion: String, status: AgentStatus) throws(PostgresError) {
        try run("SELECT fsconf.report_node($1, $2, $3, $4::bigint, $5, $6)", node, freeswitchVersion, agentVersion,
                status.appliedSeq.map { String($0) }, status.lastFailure?.command, status.lastFailure?.reply)
    }

    /// The groups `node` is in (docs/cluster.md).
    func identity(of node: String) throws(PostgresError) -> NodeIdentity {
        let r = try run("SELECT node_group FROM fsconf.node_groups WHERE node = $1 ORDER BY 1", node.asciiLowercased)
        return NodeIdentity(name: node, groups: (0..<r.rowCount).compactMap { r.string($0, 0) })
    }

    /// Every stored gateway with its domain's name (stored form), for reconcile:
    /// those `node` can see (its variants and every node's; docs/cluster.md).
    func allGateways(for node: NodeIdentity) throws(PostgresError) -> [(domain: String, name: String)] {
        let me = "{" + ([node.name ?? ""] + node.groups.map { "@" + $0 }).joined(separator: ",") + "}"
        let r = try run("""
            SELECT d.name, g.name FROM fsconf.gateways g JOIN fsconf.domains d ON d.id = g.domain_id
            LEFT JOIN fsconf.users u ON u.id = g.user_id
            WHERE (u.id IS NULL OR u.enabled) AND (g.nodes IS NULL OR g.nodes && $1::text[])
              AND (u.nodes IS NULL OR u.nodes && $1::text[]) AND (d.nodes IS NULL OR d.nodes && $1::text[])
            """, me)
        return (0..<r.rowCount).map { (r.string($0, 0) ?? "", r.string($0, 1) ?? "") }
    }

    // MARK: DirectoryFacts

    private func facts(_ sql: String, _ params: String?...) -> PGResult? {
        do { return try conn.query(sql, params, deadline: MonotonicClock.deadline(afterMilliseconds: timeoutMs)) } catch {
            if factError == nil { factError = error }
            return nil
        }
    }

    func resetFactError() { factError = nil }

    func domain(_ id: Int64) -> DomainFact? {
        guard let r = facts("SELECT id, name, cacheable FROM fsconf.domains WHERE id = $1::bigint", String(id)), r.rowCount == 1 else { return nil }
        return DomainFact(id: id, name: r.string(0, 1) ?? "", cacheable: r.string(0, 2))
    }

    static let userColumns = "u.id, u.domain_id, u.user_id, u.number_alias, u.cacheable, u.home_group_id, u.enabled"

    private func users(_ r: PGResult?) -> [UserFact] {
        guard let r else { return [] }
        return (0..<r.rowCount).compactMap { i in
            guard let id = Int64(r.string(i, 0) ?? ""), let d = Int64(r.string(i, 1) ?? "") else { return nil }
            return UserFact(id: id, domain: d, userID: r.string(i, 2) ?? "", alias: r.string(i, 3), cacheable: r.string(i, 4),
                            homeGroup: r.string(i, 5).flatMap { Int64($0) }, enabled: r.bool(i, 6) ?? true)
        }
    }

    func user(_ id: Int64) -> UserFact? {
        users(facts("SELECT \(AgentStore.userColumns) FROM fsconf.users u WHERE u.id = $1::bigint", String(id))).first
    }

    func users(inDomain id: Int64) -> [UserFact] {
        users(facts("SELECT \(AgentStore.userColumns) FROM fsconf.users u WHERE u.domain_id = $1::bigint ORDER BY u.position, u.id", String(id)))
    }

    func users(inGroup id: Int64) -> [UserFact] {
        users(facts("""
            SELECT \(AgentStore.userColumns) FROM fsconf.users u WHERE u.home_group_id = $1::bigint
            UNION SELECT \(AgentStore.userColumns) FROM fsconf.users u JOIN fsconf.group_members m ON m.user_id = u.id
            WHERE m.group_id = $1::bigint ORDER BY 1
            """, String(id)))
    }

    func gateway(_ id: Int64) -> GatewayFact? {
        guard let r = facts("SELECT id, domain_id, user_id, name FROM fsconf.gateways WHERE id = $1::bigint", String(id)), r.rowCount == 1 else { return nil }
        return GatewayFact(id: id, domain: Int64(r.string(0, 1) ?? "") ?? 0, user: r.string(0, 2).flatMap { Int64($0) },
                           name: r.string(0, 3) ?? "")
    }

    func hasCIDR(user id: Int64) -> Bool {
        (facts("SELECT 1 FROM fsconf.user_settings WHERE user_id = $1::bigint AND kind = 'attribute' AND lower(name) = 'cidr'", String(id))?.rowCount ?? 0) > 0
    }

    func directoryReferences(global name: String) -> Bool {
        // strpos: the reference is matched as plain text (no LIKE wildcards to escape).
        let r = facts("""
            SELECT EXISTS (SELECT 1 FROM fsconf.domains WHERE strpos(name, $1) > 0)
                OR EXISTS (SELECT 1 FROM fsconf.users WHERE strpos(user_id, $1) > 0 OR strpos(number_alias, $1) > 0 OR strpos(extra_xml, $1) > 0)
                OR EXISTS (SELECT 1 FROM fsconf.domain_settings WHERE strpos(value, $1) > 0)
                OR EXISTS (SELECT 1 FROM fsconf.group_settings WHERE strpos(value, $1) > 0)
                OR EXISTS (SELECT 1 FROM fsconf.user_settings WHERE strpos(value, $1) > 0)
            """, "$${" + name + "}")
        return r?.bool(0, 0) ?? true
    }
}
