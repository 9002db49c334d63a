import FSConfCore
import FSConfAdminCore
import FSConfStore

/// A row of a configuration table as text values by column name (a subset of the
/// columns: those that paths and history need).
public typealias RowValues = [String: String]

/// Canonical field paths (docs/cli.md) for stored rows, built by walking up their
/// parents. Rows that are gone (deleted later, or in the same change set) are read
/// from the change log, so history can name what was removed.
public final class RowPaths {
    let conn: PGConnection
    private var rows: [String: RowValues?] = [:]
    private var siblings: [String: [RowValues]] = [:]
    /// Paths already built, by table/id: a child's path is its parent's plus a step.
    private var built: [String: FieldPath] = [:]

    public init(_ conn: PGConnection) { self.conn = conn }

    /// Columns read for every row (`->>` on the row's jsonb).
    static let keys = ["id", "name", "kind", "value", "direction", "domain_id", "group_id", "user_id", "gateway_id",
                       "context_id", "extension_id", "parent_id", "condition_id", "document_id", "element_id",
                       "section", "tag", "position", "application", "data", "field", "expression", "nodes", "node_group", "node"]
    static let keyList = keys.map { "j->>'\($0)'" }.joined(separator: ", ")

    /// The configuration tables, parents before children (the order rows are written in).
    public static let order = ["global_variables", "domains", "groups", "users", "domain_settings", "group_settings", "user_settings",
                               "gateways", "gateway_settings", "group_members", "dialplan_contexts", "dialplan_extensions",
                               "dialplan_conditions", "dialplan_regexes", "dialplan_actions", "documents", "elements", "attributes",
                               "node_groups"]
    public static let tables = Set(order)

    static func decode(_ r: PGResult, _ i: Int, offset: Int = 0) -> RowValues {
        var out: RowValues = [:]
        for (k, key) in keys.enumerated() { if let v = r.string(i, offset + k) { out[key] = v } }
        return out
    }

    /// A row by id: the current one, else its last recorded state.
    public func row(_ table: String, _ id: String) throws(PostgresError) -> RowValues? {
        precondition(RowPaths.tables.contains(table))
        let cacheKey = table + "/" + id
        if let cached = rows[cacheKey] { return cached }
        var r = try conn.query("SELECT \(RowPaths.keyList) FROM (SELECT to_jsonb(t) AS j FROM fsconf.\(table) t WHERE id = $1::bigint) x", [id])
        if r.rowCount == 0 {
            r = try conn.query("""
                SELECT \(RowPaths.keyList) FROM (SELECT coalesce(old_row, new_row) AS j FROM fsconf.changes
                WHERE table_name = $1 AND row_id = $2::bigint ORDER BY id DESC LIMIT 1) x
                """, [table, id])
        }
        let value: RowValues? = r.rowCount == 0 ? nil : RowPaths.decode(r, 0)
        rows[cacheKey] = value
        return value
    }

    private func siblingRows(_ key: String, _ sql: String, _ params: [String?]) throws(PostgresError) -> [RowValues] {
        if let cached = siblings[key] { return cached }
        let r = try conn.query("SELECT \(RowPaths.keyList) FROM (\(sql)) x", params)
        let list = (0..<r.rowCount).map { RowPaths.decode(r, $0) }
        siblings[key] = list
        return list
    }

    /// Forgets cached rows (after a write).
    public func reset() { rows = [:]; siblings = [:]; built = [:] }

    /// The 1-based ordinal of `row` among `list` (by id, else by position).
    static func ordinal(_ row: RowValues, in list: [RowValues]) -> Int {
        if let id = row["id"], let i = list.firstIndex(where: { $0["id"] == id }) { return i + 1 }
        let p = Int(row["position"] ?? "") ?? 0
        return list.filter { (Int($0["position"] ?? "") ?? 0) <= p }.count + 1
    }

    static func unknown(_ section: String, _ what: String) -> FieldPath {
        FieldPath([FieldPath.Step(section), FieldPath.Step("?\(what)")])
    }

    /// The canonical path of a row of `table`. Elements and conditions nest: their
    /// ancestors are read upwards in a loop and built downwards, so a tree of any
    /// depth never recurses, and each row is built once.
    public func path(_ table: String, _ row: RowValues) throws(PostgresError) -> FieldPath {
        if let id = row["id"], let done = built[table + "/" + id] { return done }
        if table == "elements" || table == "dialplan_conditions" {
            var chain: [RowValues] = []
            var seen: Set<String> = []
            var current = row
            while let parentID = current["parent_id"], built[table + "/" + parentID] == nil, seen.insert(parentID).inserted,
                  let parentRow = try self.row(table, parentID) {
                chain.append(parentRow)
                current = parentRow
            }
            for ancestor in chain.reversed() { _ = try build(table, ancestor) }
        }
        return try build(table, row)
    }

    private var building: Set<String> = []

    private func build(_ table: String, _ row: RowValues) throws(PostgresError) -> FieldPath {
        guard let id = row["id"] else { return try compute(table, row) }
        let key = table + "/" + id
        if let done = built[key] { return done }
        // A parent_id cycle (only SQL can make one) ends here instead of recursing.
        guard building.insert(key).inserted else { return RowPaths.unknown(table.hasPrefix("dialplan") ? "dialplan" : "configuration", "cycle") }
        defer { building.remove(key) }
        let p = try compute(table, row)
        built[key] = p
        return p
    }

    private func compute(_ table: String, _ row: RowValues) throws(PostgresError) -> FieldPath {
        func parent(_ t: String, _ id: String?) throws(PostgresError) -> FieldPath? {
            guard let id, let r = try self.row(t, id) else { return nil }
            return try path(t, r)
        }
        let name = row["name"] ?? "?"
        // The variant's nodes (docs/cluster.md): the `{…}` block of its step.
        let scope = Scope.fromJSON(row["nodes"])
        switch table {
        case "global_variables":
            return FieldPath([FieldPath.Step("globals"), FieldPath.Step(name, scope: scope)])
        case "domains":
            return FieldPath([FieldPath.Step("directory"), FieldPath.Step(name, scope: scope)])
        case "node_groups":
            // Not a field path: what `fsconf scope group` changes (history shows it).
            return FieldPath([FieldPath.Step("nodes"), FieldPath.Step("@" + (row["node_group"] ?? "?")), FieldPath.Step(row["node"] ?? "?")])
        case "domain_settings", "group_settings", "user_settings":
            let owner: FieldPath?
            switch table {
            case "domain_settings": owner = try parent("domains", row["domain_id"])
            case "group_settings": owner = try parent("groups", row["group_id"])
            default: owner = try parent("users", row["user_id"])
            }
            return (owner ?? RowPaths.unknown("directory", "owner-of-\(table)")).appending(row["kind"] ?? "param").appending(name)
        case "groups":
            return (try parent("domains", row["domain_id"]) ?? RowPaths.unknown("directory", "domain")).appending("group").appending(name)
        case "group_members":
            let g = try parent("groups", row["group_id"]) ?? RowPaths.unknown("directory", "group")
            var u = "?"
            if let id = row["user_id"], let r = try self.row("users", id), let v = r["user_id"] { u = v }
            return g.appending("member").appending(u)
        case "users":
            return (try parent("domains", row["domain_id"]) ?? RowPaths.unknown("directory", "domain")).appending("user").appending(row["user_id"] ?? "?", scope: scope)
        case "gateways":
            let owner = row["user_id"] != nil ? try parent("users", row["user_id"]) : try parent("domains", row["domain_id"])
            return (owner ?? RowPaths.unknown("directory", "owner")).appending("gateway").appending(name, scope: scope)
        case "gateway_settings":
            let g = try parent("gateways", row["gateway_id"]) ?? RowPaths.unknown("directory", "gateway")
            return g.appending(row["kind"] ?? "param").appending(name, row["direction"].map { [.match("direction", $0)] } ?? [])
        case "dialplan_contexts":
            return FieldPath([FieldPath.Step(row["section"] ?? "dialplan"), FieldPath.Step(name, scope: scope)])
        case "dialplan_extensions":
            let c = try parent("dialplan_contexts", row["context_id"]) ?? RowPaths.unknown("dialplan", "context")
            // Names and ordinals count the extensions of the same scope.
            let list = try siblingRows("x/\(row["context_id"] ?? "")",
                "SELECT to_jsonb(t) AS j FROM fsconf.dialplan_extensions t WHERE context_id = $1::bigint ORDER BY position, id", [row["context_id"]])
                .filter { Scope.fromJSON($0["nodes"]) == scope }
            let same = list.filter { $0["name"] == name }.count + (list.contains { $0["id"] == row["id"] } ? 0 : 1)
            var p = c
            p.steps.append(CanonicalStep.extensionStep(name: name, sameName: same, ordinal: RowPaths.ordinal(row, in: list), scope: scope))
            return p
        case "dialplan_conditions":
            let owner: FieldPath?
            let list: [RowValues]
            if let parentID = row["parent_id"] {
                owner = try parent("dialplan_conditions", parentID)
                list = try siblingRows("c/\(parentID)",
                    "SELECT to_jsonb(t) AS j FROM fsconf.dialplan_conditions t WHERE parent_id = $1::bigint ORDER BY position, id", [parentID])
            } else {
                owner = try parent("dialplan_extensions", row["extension_id"])
                list = try siblingRows("e/\(row["extension_id"] ?? "")",
                    "SELECT to_jsonb(t) AS j FROM fsconf.dialplan_conditions t WHERE extension_id = $1::bigint AND parent_id IS NULL ORDER BY position, id",
                    [row["extension_id"]])
            }
            return (owner ?? RowPaths.unknown("dialplan", "extension")).appending("condition", [.index(RowPaths.ordinal(row, in: list))])
        case "dialplan_regexes", "dialplan_actions":
            let c = try parent("dialplan_conditions", row["condition_id"]) ?? RowPaths.unknown("dialplan", "condition")
            let kind = table == "dialplan_regexes" ? "regex" : (row["kind"] ?? "action")
            let list = try siblingRows("\(kind)/\(row["condition_id"] ?? "")", table == "dialplan_regexes"
                ? "SELECT to_jsonb(t) AS j FROM fsconf.dialplan_regexes t WHERE condition_id = $1::bigint ORDER BY position, id"
                : "SELECT to_jsonb(t) AS j FROM fsconf.dialplan_actions t WHERE condition_id = $1::bigint AND kind = $2 ORDER BY position, id",
                table == "dialplan_regexes" ? [row["condition_id"]] : [row["condition_id"], kind])
            return c.appending(kind, [.index(RowPaths.ordinal(row, in: list))])
        case "documents":
            return FieldPath([FieldPath.Step(row["section"] ?? "configuration"), FieldPath.Step(name, scope: scope)])
        case "elements":
            guard let parentID = row["parent_id"] else {
                return try parent("documents", row["document_id"]) ?? RowPaths.unknown("configuration", "document")
            }
            let owner = try parent("elements", parentID) ?? RowPaths.unknown("configuration", "element")
            let list = try siblingRows("el/\(parentID)", """
                SELECT to_jsonb(t) || jsonb_build_object('name', (SELECT value FROM fsconf.attributes a WHERE a.element_id = t.id AND a.name = 'name')) AS j
                FROM fsconf.elements t WHERE parent_id = $1::bigint ORDER BY position, id
                """, [parentID])
            var me = row
            if me["name"] == nil, let id = me["id"] {
                me["name"] = list.first { $0["id"] == id }?["name"]
                if me["name"] == nil && !list.contains(where: { $0["id"] == id }) {
                    // Gone: its name attribute is in the change log.
                    let r = try conn.query("""
                        SELECT coalesce(new_row, old_row)->>'value' FROM fsconf.changes
                        WHERE table_name = 'attributes' AND coalesce(new_row, old_row)->>'element_id' = $1
                          AND coalesce(new_row, old_row)->>'name' = 'name'
                        ORDER BY id DESC LIMIT 1
                        """, [id])
                    if r.rowCount == 1 { me["name"] = r.string(0, 0) }
                }
            }
            var all = list
            if !list.contains(where: { $0["id"] == me["id"] }) { all.append(me) }
            let steps = FieldListing.childSteps(all.map { ($0["tag"] ?? "?", $0["name"], Scope.fromJSON($0["nodes"])) })
            let index = all.firstIndex { $0["id"] == me["id"] } ?? (all.count - 1)
            var p = owner
            p.steps.append(steps[index])
            return p
        case "attributes":
            let e = try parent("elements", row["element_id"]) ?? RowPaths.unknown("configuration", "element")
            return e.with(leaf: .attribute(name))
        default:
            return RowPaths.unknown("?", table)
        }
    }
}
