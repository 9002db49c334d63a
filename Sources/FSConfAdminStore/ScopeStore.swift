import FSConfAdminCore
import FSConfCore
import FSConfStore

/// Node groups and the entities limited to nodes (docs/cluster.md). Every call runs
/// on the caller's connection; the writes expect the caller's transaction (and
/// change set).
public struct ScopeStore {
    let conn: PGConnection
    public init(_ conn: PGConnection) { self.conn = conn }

    /// A node as its lookups see it: its name and the groups that hold it.
    public func identity(of name: String?) throws(PostgresError) -> NodeIdentity {
        guard let name else { return NodeIdentity(name: nil) }
        let lower = name.asciiLowercased
        let r = try conn.query("SELECT node_group FROM fsconf.node_groups WHERE node = $1 ORDER BY 1", [lower])
        return NodeIdentity(name: lower, groups: (0..<r.rowCount).compactMap { r.string($0, 0) })
    }

    /// Every group with its nodes, by name.
    public func groups() throws(PostgresError) -> [(group: String, nodes: [String])] {
        let r = try conn.query("SELECT node_group, array_to_string(array_agg(node ORDER BY node), ',') FROM fsconf.node_groups GROUP BY 1 ORDER BY 1")
        return (0..<r.rowCount).map { (r.string($0, 0)!, (r.string($0, 1) ?? "").split(separator: ",").map(String.init)) }
    }

    /// Adds `nodes` to `group` (those already in it stay); returns the nodes added.
    public func add(_ nodes: [String], to group: String) throws(PostgresError) -> [String] {
        var added: [String] = []
        for node in nodes {
            let r = try conn.query("INSERT INTO fsconf.node_groups (node_group, node) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                                   [group.asciiLowercased, node.asciiLowercased])
            if r.affectedRows > 0 { added.append(node.asciiLowercased) }
        }
        return added
    }

    /// Removes `nodes` from `group` (every node when nil); returns the nodes removed.
    public func remove(_ nodes: [String]?, from group: String) throws(PostgresError) -> [String] {
        let r: PGResult
        if let nodes {
            r = try conn.query("DELETE FROM fsconf.node_groups WHERE node_group = $1 AND node = ANY ($2::text[]) RETURNING node",
                               [group.asciiLowercased, "{" + nodes.map { $0.asciiLowercased }.joined(separator: ",") + "}"])
        } else {
            r = try conn.query("DELETE FROM fsconf.node_groups WHERE node_group = $1 RETURNING node", [group.asciiLowercased])
        }
        return (0..<r.rowCount).compactMap { r.string($0, 0) }.sorted()
    }

    /// Every variant limited to some nodes: its path (the scope is its last block) and scope.
    public func scopedEntities() throws -> [(path: FieldPath, scope: Scope)] {
        let paths = RowPaths(conn)
        var out: [(FieldPath, Scope)] = []
        for table in RowPaths.order where FieldStore.scopedTables.contains(table) {
            let r = try conn.query("""
                SELECT \(RowPaths.keyList) FROM (SELECT to_jsonb(t) AS j FROM fsconf.\(table) t WHERE nodes IS NOT NULL ORDER BY id) x
                """)
            for i in 0..<r.rowCount {
                let row = RowPaths.decode(r, i)
                guard let scope = Scope.fromJSON(row["nodes"]) else { continue }
                out.append((try paths.path(table, row), scope))
            }
        }
        return out
    }
}
