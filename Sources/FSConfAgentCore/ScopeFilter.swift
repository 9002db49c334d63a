import FSConfCore

/// What of a change set concerns one node (docs/cluster.md): the agent plans only
/// that. A row of an entity limited to other nodes — before and after the change —
/// is left out, as is a change to another node's group memberships. Rows under a
/// scoped entity (its settings, attributes, child elements) carry no scope of their
/// own and stay: the planner may reload for them, which changes nothing there.
extension ChangeSet {
    public func concerning(_ node: NodeIdentity) -> ChangeSet {
        var out = self
        out.rows = rows.filter { $0.concerns(node) }
        return out
    }
}

extension ChangeRow {
    /// The scope a row version holds (`nodes`: a JSON array; absent or null: every node).
    static func scope(_ row: [String: AgentJSON]) -> Scope? {
        guard case .array(let list)? = row["nodes"] else { return nil }
        guard case .success(let s) = Scope.make(list.compactMap(\.text)) else { return nil }
        return s
    }

    public func concerns(_ node: NodeIdentity) -> Bool {
        if table == "node_groups" {
            guard let name = node.name else { return false }
            return rows.contains { $0["node"]?.text == name }
        }
        if operation == .truncate { return true }
        let versions = rows
        if versions.isEmpty { return true }
        return versions.contains { node.rank(ChangeRow.scope($0)) != nil }
    }
}
