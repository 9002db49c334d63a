import FSConfCore
import FSConfAdminCore
import FSConfStore

/// Reads the change log (fsconf.change_sets / fsconf.changes, docs/changes.md)
/// as field changes with canonical paths, and undoes change sets.
public struct ChangeLog {
    let conn: PGConnection
    let paths: RowPaths

    public init(_ conn: PGConnection) {
        self.conn = conn
        paths = RowPaths(conn)
    }

    public struct FieldChange: Sendable {
        public var operation: String         // insert, update, delete, truncate
        public var path: FieldPath?
        public var pathText: String
        public var old: String?
        public var new: String?
    }

    public struct Entry: Sendable {
        public var id: String
        public var seq: String?
        public var actor: String
        public var source: String
        public var summary: String
        public var undoOf: String?
        public var createdAt: String
        public var changes: [FieldChange] = []
        public var rowChanges = 0
        /// Row changes not looked at (beyond `maxChanges`).
        public var omittedRows = 0
    }

    /// Tables whose row is one value (the field itself).
    static let valueTables: Set<String> = ["global_variables", "domain_settings", "group_settings", "user_settings",
                                           "gateway_settings", "attributes"]

    /// Values never shown: secrets (FieldValidation.isSecretName; the change log
    /// keeps their values where nodes cannot read them, migration 0005).
    public static func isSecret(_ path: FieldPath) -> Bool {
        guard let last = path.steps.last else { return false }
        switch path.section {
        case "globals":
            return path.steps.count == 2 && FieldValidation.isSecretName(last.name)
        case "directory":
            guard path.leaf == nil, path.steps.count >= 2 else { return false }
            return DirectoryAddress.kinds[path.steps[path.steps.count - 2].name] != nil && FieldValidation.isSecretName(last.name)
        default:
            guard case .attribute(let name)? = path.leaf else { return false }
            if FieldValidation.isSecretName(name) { return true }
            if name == "value", case .match("name", let v)? = last.selectors.first { return FieldValidation.isSecretName(v) }
            return false
        }
    }

    /// Whether `text` is a timestamp PostgreSQL reads (for `--since`).
    public func isTimestamp(_ text: String) -> Bool {
        (try? conn.query("SELECT $1::timestamptz", [text])) != nil
    }

    /// Whether change set `id` exists.
    public func exists(_ id: String) throws -> Bool {
        try conn.query("SELECT 1 FROM fsconf.change_sets WHERE id = $1::bigint", [id]).rowCount > 0
    }

    /// Change sets, newest first. `under`: only field changes at or below that path.
    /// `maxChanges`: per change set, stop after this many field changes (the rest
    /// are counted in `omittedRows`), so the work follows what is shown.
    public func history(under: FieldPath?, since: String?, changeSet: String?, limit: Int, maxChanges: Int? = nil) throws -> [Entry] {
        var sql = """
            SELECT cs.id, cs.seq, cs.actor, cs.source, cs.summary, cs.undo_of,
                   to_char(cs.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
            FROM fsconf.change_sets cs WHERE cs.seq IS NOT NULL
            """
        var params: [String?] = []
        if let since { params.append(since); sql += " AND cs.created_at >= $\(params.count)::timestamptz" }
        if let changeSet { params.append(changeSet); sql += " AND cs.id = $\(params.count)::bigint" }
        if let under {
            params.append(under.section)
            sql += " AND EXISTS (SELECT 1 FROM fsconf.changes ch WHERE ch.change_set_id = cs.id AND (ch.section = $\(params.count) OR ch.operation = 'truncate'))"
        }
        sql += " ORDER BY cs.seq DESC"
        if under == nil { params.append(String(limit)); sql += " LIMIT $\(params.count)::int" }
        let r = try conn.query(sql, params)
        var out: [Entry] = []
        for i in 0..<r.rowCount {
            var e = Entry(id: r.string(i, 0)!, seq: r.string(i, 1), actor: r.string(i, 2) ?? "", source: r.string(i, 3) ?? "",
                          summary: r.string(i, 4) ?? "", undoOf: r.string(i, 5), createdAt: r.string(i, 6) ?? "")
            let all = try fieldChanges(e.id, under: under, maxChanges: maxChanges)
            e.rowChanges = all.rows
            e.omittedRows = all.omitted
            e.changes = all.changes
            if under != nil && e.changes.isEmpty { continue }
            out.append(e)
            if out.count >= limit { break }
        }
        return out
    }

    /// The field changes of one change set, in order: those at or under `under`,
    /// at most about `maxChanges` of them (the row changes not looked at are `omitted`).
    public func fieldChanges(_ id: String, under: FieldPath? = nil, maxChanges: Int? = nil) throws -> (changes: [FieldChange], rows: Int, omitted: Int) {
        let total = Int(try conn.query("SELECT count(*) FROM fsconf.changes WHERE change_set_id = $1::bigint", [id]).string(0, 0) ?? "") ?? 0
        var out: [FieldChange] = []
        func add(_ c: FieldChange) {
            if let under, !(c.path?.isUnder(under) ?? false) { return }
            out.append(c)
        }
        // Read in pages (by change id), so that showing the first changes of a huge
        // change set reads about as many rows as it shows.
        let page = max(64, (maxChanges ?? total) * 2)
        var after = "0", seen = 0
        while seen < total {
            let r = try conn.query("""
                SELECT ch.id, ch.table_name, ch.operation, ch.old_value, ch.new_value, ch.path,
                       \(RowPaths.keys.map { "x.j->>'\($0)'" }.joined(separator: ", "))
                FROM fsconf.changes ch, LATERAL (SELECT coalesce(ch.new_row, ch.old_row) AS j) x
                WHERE ch.change_set_id = $1::bigint AND ch.id > $2::bigint ORDER BY ch.id LIMIT $3::int
                """, [id, after, String(page)])
            if r.rowCount == 0 { break }
            after = r.string(r.rowCount - 1, 0)!
            // The changed columns of the page's updated rows, in one query.
            var updated: [String: [(column: String, old: String?, new: String?)]] = [:]
            if (0..<r.rowCount).contains(where: { r.string($0, 2) == "update" }) {
                let u = try conn.query("""
                    SELECT ch.id, k, ch.old_row->>k, ch.new_row->>k
                    FROM fsconf.changes ch, jsonb_object_keys(ch.new_row) k
                    WHERE ch.change_set_id = $1::bigint AND ch.operation = 'update' AND k <> 'updated_at'
                      AND ch.id >= $2::bigint AND ch.id <= $3::bigint
                      AND ch.new_row->k IS DISTINCT FROM ch.old_row->k
                    ORDER BY ch.id
                    """, [id, r.string(0, 0), after])
                for k in 0..<u.rowCount { updated[u.string(k, 0)!, default: []].append((u.string(k, 1)!, u.string(k, 2), u.string(k, 3))) }
            }
            for i in 0..<r.rowCount {
                if let maxChanges, out.count >= maxChanges { return (out, total, total - seen) }
                seen += 1
                let table = r.string(i, 1) ?? "", op = r.string(i, 2) ?? ""
                if op == "truncate" || !RowPaths.tables.contains(table) {
                    add(FieldChange(operation: op, path: nil, pathText: "\(table) (every row)", old: nil, new: nil))
                    continue
                }
                let row = RowPaths.decode(r, i, offset: 6)
                let path = try paths.path(table, row)
                let columns = op == "update" ? updated[r.string(i, 0)!] ?? [] : []
                if let change = columns.first(where: { $0.column == "nodes" }) {
                    // A variant limited to other nodes (docs/cluster.md): `PATH/@scope`, where
                    // PATH names the variant as it is now.
                    let p = path.with(leaf: .attribute("scope"))
                    func text(_ json: String?) -> String { Scope.fromJSON(json)?.description ?? "(every node)" }
                    add(FieldChange(operation: op, path: p, pathText: p.description, old: text(change.old), new: text(change.new)))
                    if ChangeLog.valueTables.contains(table) && r.string(i, 3) == r.string(i, 4) { continue }
                }
                if op == "update" && !ChangeLog.valueTables.contains(table) {
                    for (column, old, new) in columns {
                        if ["position", "id", "nodes"].contains(column) || column.hasSuffix("_id") && column != "user_id" && column != "home_group_id" { continue }
                        let p = path.with(leaf: .attribute(FieldStore.pathColumn(table, column)))
                        add(FieldChange(operation: op, path: p, pathText: p.description, old: old, new: new))
                    }
                    continue
                }
                var old: String? = nil, new: String? = nil
                if ChangeLog.valueTables.contains(table) {
                    old = r.string(i, 3); new = r.string(i, 4)
                } else if table == "group_members" || table == "node_groups" {
                    let member = path.steps.last?.name
                    old = op == "insert" ? nil : member; new = op == "delete" ? nil : member
                }
                if ChangeLog.isSecret(path) {
                    old = old.map { _ in "(hidden)" }; new = new.map { _ in "(hidden)" }
                }
                add(FieldChange(operation: op, path: path, pathText: path.description, old: old, new: new))
            }
        }
        return (out, total, 0)
    }

    // MARK: Undo

    public struct UndoPlan: Sendable {
        public var changeSet: String
        /// Rows another change set changed since: (path, the change sets that did).
        public var conflicts: [(path: String, by: [String])] = []
        public var rows = 0
    }

    /// The columns that identify a row of `table` (bigint ones compared as numbers).
    static func keyColumns(_ table: String) -> [(name: String, bigint: Bool)] {
        switch table {
        // Globals have an id since migration 0007 (which gave the change log's
        // earlier global rows theirs).
        case "node_groups": return [("node_group", false), ("node", false)]
        case "attributes": return [("element_id", true), ("name", false)]
        case "group_members": return [("group_id", true), ("user_id", true)]
        default: return [("id", true)]
        }
    }

    /// The WHERE clause that finds a table's row from its jsonb ($1).
    static func keyMatch(_ table: String, alias: String = "t") -> String {
        keyColumns(table).map { "\(alias).\($0.name) = ($1::jsonb->>'\($0.name)')\($0.bigint ? "::bigint" : "")" }
            .joined(separator: " AND ")
    }

    struct RowState {
        var table: String
        var key: String          // jsonb text that identifies the row
        var before: String?      // the row before the change set (nil: absent)
        var after: String?       // the row after it (nil: absent)
        var firstChange: String
        var rowID: Int64
    }

    /// Reads what a change set did per row and checks whether each row still is
    /// as the change set left it.
    func states(_ id: String) throws -> (rows: [RowState], conflicts: [(path: String, by: [String])]) {
        let set = try conn.query("SELECT seq FROM fsconf.change_sets WHERE id = $1::bigint", [id])
        guard set.rowCount == 1 else { throw FieldStoreError.notFound("no change set \(id)") }
        guard set.string(0, 0) != nil else { throw FieldStoreError.invalid("change set \(id) changed nothing (or is not committed)") }
        // Secret values as captured come from fsconf_private (readers see "(hidden)").
        let r = try conn.query("""
            SELECT id, table_name, operation, old_row::text, new_row::text, coalesce(new_row, old_row)::text,
                   coalesce(new_row, old_row)->>'id', \(ChangeLog.identityByTable(source: "coalesce(new_row, old_row)"))
            FROM (SELECT ch.id, ch.table_name, ch.operation, coalesce(s.old_row, ch.old_row) AS old_row,
                         coalesce(s.new_row, ch.new_row) AS new_row
                  FROM fsconf.changes ch LEFT JOIN fsconf_private.change_secrets s ON s.change_id = ch.id
                  WHERE ch.change_set_id = $1::bigint) x
            ORDER BY id
            """, [id])
        var byKey: [String: Int] = [:]
        var rows: [RowState] = []
        for i in 0..<r.rowCount {
            let table = r.string(i, 1) ?? ""
            if r.string(i, 2) == "truncate" {
                throw FieldStoreError.invalid("change set \(id) truncated \(table): the removed rows were not kept, so it cannot be undone")
            }
            guard RowPaths.tables.contains(table) else { continue }
            let key = r.string(i, 5)!
            let mapKey = table + "|" + (r.string(i, 7) ?? "")
            if let k = byKey[mapKey] {
                rows[k].after = r.string(i, 4)
            } else {
                byKey[mapKey] = rows.count
                rows.append(RowState(table: table, key: key, before: r.string(i, 3), after: r.string(i, 4), firstChange: r.string(i, 0)!,
                                     rowID: Int64(r.string(i, 6) ?? "") ?? 0))
            }
        }
        var conflicts: [(String, [String])] = []
        for row in rows {
            // The row as recorded, with the columns added since it was (scopes, 0007) as NULL.
            let same = try conn.query("""
                SELECT (SELECT to_jsonb(t) FROM fsconf.\(row.table) t WHERE \(ChangeLog.keyMatch(row.table)))
                    IS NOT DISTINCT FROM (SELECT to_jsonb(r) FROM jsonb_populate_record(NULL::fsconf.\(row.table), $2::jsonb) r
                                          WHERE $2::jsonb IS NOT NULL)
                """, [row.key, row.after]).bool(0, 0) ?? false
            if same { continue }
            let later = try conn.query("""
                SELECT DISTINCT ch.change_set_id FROM fsconf.changes ch, LATERAL (SELECT coalesce(ch.new_row, ch.old_row) AS j) x
                WHERE ch.table_name = $2 AND ch.change_set_id <> $3::bigint AND ch.id > $4::bigint
                  AND \(ChangeLog.identity(row.table, source: "x.j")) = \(ChangeLog.identity(row.table))
                ORDER BY 1
                """, [row.key, row.table, id, row.firstChange])
            let by = (0..<later.rowCount).compactMap { later.string($0, 0) }
            let path: String
            if let values = try rowValues(row.key) { path = (try? paths.path(row.table, values).description) ?? row.table }
            else { path = row.table }
            conflicts.append((path, by))
        }
        return (rows, conflicts)
    }

    /// `identity` for whichever table the row of `fsconf.changes` belongs to.
    static func identityByTable(source: String) -> String {
        let special = ["node_groups", "attributes", "group_members"]
        return "CASE table_name " + special.map { "WHEN '\($0)' THEN \(identity($0, source: source)) " }.joined()
            + "ELSE \(identity("", source: source)) END"
    }

    /// A text identity of the row in jsonb `source` (default $1).
    static func identity(_ table: String, source: String = "$1::jsonb") -> String {
        "(" + keyColumns(table).map { "(\(source)->>'\($0.name)')" }.joined(separator: " || '/' || ") + ")"
    }

    func rowValues(_ json: String) throws -> RowValues? {
        let r = try conn.query("SELECT \(RowPaths.keyList) FROM (SELECT $1::jsonb AS j) x", [json])
        return r.rowCount == 0 ? nil : RowPaths.decode(r, 0)
    }

    /// What undoing would clobber (empty: nothing).
    public func plan(_ id: String) throws -> UndoPlan {
        let (rows, conflicts) = try states(id)
        return UndoPlan(changeSet: id, conflicts: conflicts, rows: rows.count)
    }

    /// Restores every row the change set touched to its state before it, in the
    /// caller's transaction (which has opened the undo's change set). Refuses
    /// when a later change set changed one of those rows, unless `force`.
    @discardableResult
    public func undo(_ id: String, force: Bool) throws -> UndoPlan {
        let (rows, conflicts) = try states(id)
        if !conflicts.isEmpty && !force {
            let list = conflicts.map { c in "  \(c.path)" + (c.by.isEmpty ? " (changed outside the change log)" : " (changed by change set \(c.by.joined(separator: ", ")))") }
            throw FieldStoreError.conflict("change set \(id) was partly overwritten later; undoing it would clobber:\n"
                                           + list.joined(separator: "\n") + "\nuse --force to undo anyway")
        }
        try conn.execute("SET CONSTRAINTS ALL DEFERRED")
        func rank(_ t: String) -> Int { RowPaths.order.firstIndex(of: t) ?? 99 }
        // Rows that did not exist before: delete, children first.
        let deletes = rows.filter { $0.before == nil }.sorted { (rank($0.table), $0.rowID) > (rank($1.table), $1.rowID) }
        for row in deletes {
            try conn.query("DELETE FROM fsconf.\(row.table) t WHERE \(ChangeLog.keyMatch(row.table))", [row.key])
        }
        // Rows that existed: put back, parents first (ids ascending: a parent element
        // or condition has a smaller id than its children).
        var columns: [String: [String]] = [:]
        let restores = rows.filter { $0.before != nil }.sorted { (rank($0.table), $0.rowID) < (rank($1.table), $1.rowID) }
        for row in restores {
            if columns[row.table] == nil {
                let c = try conn.query("""
                    SELECT attname FROM pg_attribute WHERE attrelid = ('fsconf.' || $1)::regclass AND attnum > 0 AND NOT attisdropped
                    AND attidentity = '' ORDER BY attnum
                    """, [row.table])
                columns[row.table] = (0..<c.rowCount).map { c.string($0, 0)! }
            }
            let cols = columns[row.table]!
            let quoted = cols.map { conn.quoteIdentifier($0) }
            let exists = try conn.query("SELECT 1 FROM fsconf.\(row.table) t WHERE \(ChangeLog.keyMatch(row.table))", [row.before]).rowCount > 0
            if exists {
                try conn.query("""
                    UPDATE fsconf.\(row.table) t SET (\(quoted.joined(separator: ", "))) = (\(quoted.map { "r." + $0 }.joined(separator: ", ")))
                    FROM jsonb_populate_record(NULL::fsconf.\(row.table), $1::jsonb) r WHERE \(ChangeLog.keyMatch(row.table))
                    """, [row.before])
            } else {
                try conn.query("""
                    INSERT INTO fsconf.\(row.table) OVERRIDING SYSTEM VALUE
                    SELECT * FROM jsonb_populate_record(NULL::fsconf.\(row.table), $1::jsonb)
                    """, [row.before])
            }
        }
        try conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        return UndoPlan(changeSet: id, conflicts: conflicts, rows: rows.count)
    }
}
