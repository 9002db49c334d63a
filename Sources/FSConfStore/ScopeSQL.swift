import FSConfCore

/// Per-node scope in the lookup statements (docs/cluster.md). Every statement takes
/// the asking node's name (lower-cased, or NULL) as its last key parameter; the CTE
/// `me` holds that name and the node's `@group`s (fsconf.node_groups), read in the
/// statement's own snapshot. Rows another node's scope holds are left out
/// (`visible`); domains, users, gateways, extensions, elements and globals come with
/// their `rank` (0 every node, 1 a group, 2 by name), from which the node picks
/// among variants (FSConfCore `Precedence`, the same rule as `NodeIdentity.rank`).
public enum ScopeSQL {
    /// The CTE `me(ids)`: the node's name, then its groups as `@group`.
    static func me(parameter n: Int) -> String {
        "me(ids) AS (SELECT ARRAY[$\(n)::text] || ARRAY(SELECT '@' || g.node_group FROM fsconf.node_groups g WHERE g.node = $\(n)::text))"
    }

    /// True when the row whose scope is `column` is for the asking node.
    static func visible(_ column: String) -> String {
        "(\(column) IS NULL OR \(column) && (SELECT ids FROM me))"
    }

    /// How specifically the scope `column` names the asking node (-1: not at all).
    static func rank(_ column: String) -> String {
        "CASE WHEN \(column) IS NULL THEN 0 WHEN (SELECT ids[1] FROM me) = ANY (\(column)) THEN 2 WHEN \(column) && (SELECT ids FROM me) THEN 1 ELSE -1 END"
    }
}
