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

extension AgentPlanner {
    /// What `set` asks of the node `me` (docs/cluster.md): its part of the change
    /// set (`concerning`), planned against its view of the configuration before and
    /// after; a change of its groups flushes everything and says so. The agent plans
    /// each change set this way, and so does a dry run for each node.
    public func plan(_ set: ChangeSet, before: ConfigState, after: ConfigState, for me: NodeIdentity) -> AgentPlan {
        var before = before, after = after
        before.node = me
        after.node = me
        let mine = set.concerning(me)
        var plan = self.plan(mine, before: before, after: after)
        if mine.rows.contains(where: { $0.table == "node_groups" }) {
            // What this node gets may have changed anywhere.
            if !plan.actions.contains(.api("xml_flush_cache")) { plan.actions.append(.api("xml_flush_cache")) }
            plan.reports.append("the groups of this node (\(me.name ?? "?")) changed: every cached user flushed; gateways and profile settings that differ per group apply after `sofia profile PROFILE rescan` (or restart)")
        }
        return plan
    }
}
