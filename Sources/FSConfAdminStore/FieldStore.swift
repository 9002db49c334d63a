import FSConfCore
import FSConfAdminCore
import FSConfStore

/// Why a field operation did not happen. The CLI maps these to exit codes
/// (not found 4, invalid 2, conflict 5).
public enum FieldStoreError: Error, Equatable, CustomStringConvertible {
    case notFound(String)
    case invalid(String)
    case conflict(String)

    public var description: String {
        switch self {
        case .notFound(let m), .invalid(let m), .conflict(let m): return m
        }
    }
}

/// Opens the change set of the current transaction (docs/changes.md): the row
/// triggers record every write under it and NOTIFY fsconf_changes at commit.
public enum ChangeSets {
    @discardableResult
    public static func open(_ conn: PGConnection, actor: String, source: String, summary: String,
                            undoOf: String? = nil) throws(PostgresError) -> String {
        let r = try conn.query("INSERT INTO fsconf.change_sets (actor, source, summary, undo_of) VALUES ($1, $2, $3, $4::bigint) RETURNING id",
                               [actor, source, summary, undoOf])
        let id = r.string(0, 0)!
        try conn.query("SELECT set_config('fsconf.change_set_id', $1, true)", [id])
        return id
    }
}

/// One addressed field (or entity) as found in the database.
public struct FieldValue: Sendable {
    /// The canonical path (docs/cli.md).
    public var path: FieldPath
    /// The current value; nil when the field is absent or NULL.
    public var value: String?
    public var exists: Bool
    /// True when the path names an entity (a user, an extension, an element) rather than a field.
    public var isEntity: Bool
}

/// get / set / unset of one field, by address. Every call runs on the caller's
/// connection; `set` and `unset` expect the caller's transaction (and change set).
public final class FieldStore {
    let conn: PGConnection
    public let paths: RowPaths

    public init(_ conn: PGConnection) {
        self.conn = conn
        paths = RowPaths(conn)
    }

    enum Located {
        case column(table: String, id: String, column: String, nullable: Bool, value: String?)
        case setting(table: String, ownerColumn: String, ownerID: String, kind: String, name: String, direction: String?,
                     id: String?, value: String?, ownerTable: String)
        case global(id: String?, name: String, scope: Scope?, value: String?)
        case attribute(elementID: String, name: String, value: String?, exists: Bool)
        case text(elementID: String, value: String?)
        case member(groupID: String, userID: String, userName: String, exists: Bool)
        case entity(table: String, id: String)
        case newElement(documentID: String, parentID: String, tag: String, key: String, keyValue: String, leaf: FieldPath.Leaf?,
                        parentPath: FieldPath, scope: Scope?)
    }

    static let nullable: Set<String> = Set(["domains.cacheable", "users.number_alias", "users.cacheable", "users.home_group_id",
        "users.extra_xml", "dialplan_extensions.continue", "dialplan_actions.data", "dialplan_actions.inline",
        "dialplan_actions.loop", "dialplan_regexes.field", "dialplan_regexes.expression"])
        .union(ConditionEntity.columns.map { "dialplan_conditions.\($0.column)" })
        .union(ConditionEntity.timeColumns.map { "dialplan_regexes.\($0.column)" })
    static let hasUpdatedAt: Set<String> = ["domains", "users", "dialplan_contexts", "dialplan_extensions", "documents", "global_variables"]

    // MARK: Reading

    public func get(_ address: FieldAddress) throws -> FieldValue {
        let at = try locate(address, lock: false)
        return try describe(at)
    }

    func describe(_ at: Located) throws -> FieldValue {
        switch at {
        case .column(let table, let id, let column, _, let value):
            let base = try rowPath(table, id)
            return FieldValue(path: base.with(leaf: .attribute(FieldStore.pathColumn(table, column))), value: value, exists: true, isEntity: false)
        case .setting(_, _, let ownerID, let kind, let name, let direction, let id, let value, let ownerTable):
            let owner = try rowPath(ownerTable, ownerID)
            return FieldValue(path: owner.appending(kind).appending(name, direction.map { [.match("direction", $0)] } ?? []),
                              value: value, exists: id != nil, isEntity: false)
        case .global(_, let name, let scope, let value):
            return FieldValue(path: FieldPath([FieldPath.Step("globals"), FieldPath.Step(name, scope: scope)]), value: value,
                              exists: value != nil, isEntity: false)
        case .attribute(let elementID, let name, let value, let exists):
            return FieldValue(path: try rowPath("elements", elementID).with(leaf: .attribute(name)), value: value, exists: exists, isEntity: false)
        case .text(let elementID, let value):
            return FieldValue(path: try rowPath("elements", elementID).with(leaf: .text), value: value, exists: true, isEntity: false)
        case .member(let groupID, _, let userName, let exists):
            return FieldValue(path: try rowPath("groups", groupID).appending("member").appending(userName),
                              value: exists ? userName : nil, exists: exists, isEntity: false)
        case .entity(let table, let id):
            return FieldValue(path: try rowPath(table, id), value: nil, exists: true, isEntity: true)
        case .newElement(_, _, let tag, let key, let keyValue, let leaf, let parentPath, let scope):
            return FieldValue(path: parentPath.appending(tag, [.match(key, keyValue)], scope: scope).with(leaf: leaf), value: nil,
                              exists: false, isEntity: false)
        }
    }

    func rowPath(_ table: String, _ id: String) throws -> FieldPath {
        guard let row = try paths.row(table, id) else { throw FieldStoreError.notFound("\(table) row \(id) is gone") }
        return try paths.path(table, row)
    }

    /// SQL column → the name a path uses.
    static func pathColumn(_ table: String, _ column: String) -> String {
        switch (table, column) {
        case ("users", "user_id"): return "id"
        case ("users", "number_alias"): return "number-alias"
        case ("users", "home_group_id"): return "group"
        case ("users", "extra_xml"): return "extra-xml"
        case ("dialplan_conditions", _), ("dialplan_regexes", _):
            return ConditionEntity.columns.first { $0.column == column }?.xml ?? column
        default: return column
        }
    }

    // MARK: Writing

    public struct Written: Sendable {
        public var path: FieldPath
        public var old: String?
        public var new: String?
    }

    /// Sets a field; creates a setting, global, attribute, member or a `[key=value]`
    /// element that does not exist yet. `expect`: check-and-set against the current
    /// value (`.some(nil)`: the field must not exist).
    ///
    /// Concurrent writers of one new field are serialised on the row that owns it
    /// (the domain, group, user, gateway or parent element, locked first); a writer
    /// that still finds the field created under it (by a write that does not take
    /// those locks) starts over and updates it, or fails `expect`.
    public func set(_ address: FieldAddress, value: String, expect: String??) throws -> Written {
        var attempts = 0
        while true {
            do {
                return try setOnce(address, value: value, expect: expect)
            } catch is LostRace where attempts < 3 {
                attempts += 1
                paths.reset()
            }
        }
    }

    /// Another writer created the row first (an INSERT … ON CONFLICT DO NOTHING
    /// that inserted nothing): locate again.
    struct LostRace: Error {}

    func setOnce(_ address: FieldAddress, value: String, expect: String??) throws -> Written {
        let at = try locate(address, lock: true)
        let current = try describe(at)
        if current.isEntity {
            throw FieldStoreError.invalid("\(current.path) names a whole \(FieldStore.entityName(at)), not a field: use `fsconf list \(current.path)`")
        }
        try check(expect, current)
        switch at {
        case .column(let table, let id, let column, _, let old):
            if table == "dialplan_conditions" { try checkCondition(id, column, value, current.path) }
            var newValue: String? = value
            if table == "users" && column == "home_group_id" {
                let r = try conn.query("""
                    SELECT g.id FROM fsconf.groups g JOIN fsconf.users u ON u.domain_id = g.domain_id
                    WHERE u.id = $1::bigint AND lower(g.name) = lower($2)
                    """, [id, value])
                guard r.rowCount == 1 else { throw FieldStoreError.notFound("no group \(value) in the user's domain") }
                newValue = r.string(0, 0)
            }
            let stamp = FieldStore.hasUpdatedAt.contains(table) ? ", updated_at = now()" : ""
            let r = try conn.query("""
                UPDATE fsconf.\(table) SET \(column) = $2\(stamp) WHERE id = $1::bigint AND \(column)::text IS NOT DISTINCT FROM $3
                """, [id, newValue, table == "users" && column == "home_group_id" ? try rawColumn(table, id, column) : old])
            if r.affectedRows != 1 { throw FieldStoreError.conflict("\(current.path) changed while it was being set") }
        case .setting(let table, let ownerColumn, let ownerID, let kind, let name, let direction, let id, let old, _):
            if let id {
                let r = try conn.query("UPDATE fsconf.\(table) SET value = $2 WHERE id = $1::bigint AND value = $3", [id, value, old])
                if r.affectedRows != 1 { throw FieldStoreError.conflict("\(current.path) changed while it was being set") }
            } else if table == "gateway_settings" {
                try inserted(conn.query("""
                    INSERT INTO fsconf.gateway_settings (gateway_id, kind, name, value, direction, position)
                    SELECT $1::bigint, $2, $3, $4, $5, coalesce(max(position), 0) + 1 FROM fsconf.gateway_settings WHERE gateway_id = $1::bigint
                    ON CONFLICT DO NOTHING
                    """, [ownerID, kind, name, value, direction]))
            } else {
                try inserted(conn.query("""
                    INSERT INTO fsconf.\(table) (\(ownerColumn), kind, name, value, position)
                    SELECT $1::bigint, $2, $3, $4, coalesce(max(position), 0) + 1 FROM fsconf.\(table) WHERE \(ownerColumn) = $1::bigint
                    ON CONFLICT DO NOTHING
                    """, [ownerID, kind, name, value]))
            }
        case .global(let id, let name, let scope, _):
            try checkGlobals(name, value, current.path)
            if let id {
                try conn.query("UPDATE fsconf.global_variables SET value = $2, updated_at = now() WHERE id = $1::bigint", [id, value])
            } else {
                try inserted(conn.query("""
                    INSERT INTO fsconf.global_variables (name, value, position, nodes)
                    SELECT $1, $2, coalesce(max(position), 0) + 1, $3::text[] FROM fsconf.global_variables
                    ON CONFLICT DO NOTHING
                    """, [name, value, scope?.sqlArray]))
            }
        case .attribute(let elementID, let name, _, let exists):
            if exists {
                try conn.query("UPDATE fsconf.attributes SET value = $3 WHERE element_id = $1::bigint AND name = $2", [elementID, name, value])
            } else {
                try insertAttribute(elementID, name, value)
            }
        case .text(let elementID, _):
            try conn.query("UPDATE fsconf.elements SET text = $2 WHERE id = $1::bigint", [elementID, value])
        case .member(let groupID, let userID, let userName, let exists):
            guard value.asciiLowercased == userName.asciiLowercased else {
                throw FieldStoreError.invalid("a member's value is its user id (\(userName)), got \(value)")
            }
            if !exists {
                try inserted(conn.query("""
                    INSERT INTO fsconf.group_members (group_id, user_id, position)
                    SELECT $1::bigint, $2::bigint, coalesce(max(position), 0) + 1 FROM fsconf.group_members WHERE group_id = $1::bigint
                    ON CONFLICT DO NOTHING
                    """, [groupID, userID]))
            }
        case .entity:
            break
        case .newElement(let documentID, let parentID, let tag, let key, let keyValue, let leaf, _, let scope):
            let r = try conn.query("""
                INSERT INTO fsconf.elements (document_id, parent_id, position, tag, nodes)
                SELECT $1::bigint, $2::bigint, coalesce(max(position), 0) + 1, $3, $4::text[] FROM fsconf.elements WHERE parent_id = $2::bigint
                RETURNING id
                """, [documentID, parentID, tag, scope?.sqlArray])
            let id = r.string(0, 0)!
            try insertAttribute(id, key, keyValue)
            switch leaf {
            case .attribute(let name)? where name != key: try insertAttribute(id, name, value)
            case .attribute?:
                try conn.query("UPDATE fsconf.attributes SET value = $3 WHERE element_id = $1::bigint AND name = $2", [id, key, value])
            case .text?: try conn.query("UPDATE fsconf.elements SET text = $2 WHERE id = $1::bigint", [id, value])
            case nil: break
            }
        }
        paths.reset()
        return Written(path: current.path, old: current.value, new: value)
    }

    /// Removes a field (deletes the row or sets the column NULL), or a whole entity.
    public func unset(_ address: FieldAddress, expect: String??) throws -> Written {
        let at = try locate(address, lock: true)
        let current = try describe(at)
        guard current.exists else { throw FieldStoreError.notFound("\(current.path) does not exist") }
        try check(expect, current)
        switch at {
        case .column(let table, let id, let column, let nullable, _):
            guard nullable else {
                throw FieldStoreError.invalid("\(current.path) cannot be removed (it is required); set it instead")
            }
            if table == "dialplan_conditions" { try checkCondition(id, column, nil, current.path) }
            let stamp = FieldStore.hasUpdatedAt.contains(table) ? ", updated_at = now()" : ""
            try conn.query("UPDATE fsconf.\(table) SET \(column) = NULL\(stamp) WHERE id = $1::bigint", [id])
        case .setting(let table, _, _, _, _, _, let id, _, _):
            try conn.query("DELETE FROM fsconf.\(table) WHERE id = $1::bigint", [id])
        case .global(let id, _, _, _):
            try conn.query("DELETE FROM fsconf.global_variables WHERE id = $1::bigint", [id])
        case .attribute(let elementID, let name, _, _):
            try conn.query("DELETE FROM fsconf.attributes WHERE element_id = $1::bigint AND name = $2", [elementID, name])
        case .text(let elementID, _):
            try conn.query("UPDATE fsconf.elements SET text = NULL WHERE id = $1::bigint", [elementID])
        case .member(let groupID, let userID, _, _):
            try conn.query("DELETE FROM fsconf.group_members WHERE group_id = $1::bigint AND user_id = $2::bigint", [groupID, userID])
        case .entity(let table, let id):
            try conn.query("DELETE FROM fsconf.\(table) WHERE id = $1::bigint", [id])
        case .newElement:
            break
        }
        paths.reset()
        return Written(path: current.path, old: current.isEntity ? nil : current.value, new: nil)
    }

    /// The tables whose rows can be limited to nodes (docs/cluster.md).
    public static let scopedTables: Set<String> = ["global_variables", "domains", "users", "gateways", "dialplan_contexts",
                                                   "dialplan_extensions", "documents", "elements"]

    /// Limits the entity `address` names (a global, domain, user, gateway,
    /// context, extension, document or element variant) to `scope`, or makes it
    /// every node's (nil). Refused when that variant exists already.
    public func setScope(_ address: FieldAddress, to scope: Scope?) throws -> Written {
        let at = try locate(address, lock: true)
        let current = try describe(at)
        let table: String, id: String
        switch at {
        case .entity(let t, let i) where FieldStore.scopedTables.contains(t):
            table = t; id = i
        case .global(let i?, _, _, _):
            table = "global_variables"; id = i
        case .global(nil, _, _, _):
            throw FieldStoreError.notFound("\(current.path) does not exist")
        default:
            throw FieldStoreError.invalid("\(current.path) is not something a scope limits: name a global, domain, user, gateway, "
                                          + "context, extension, document or element (no @attribute)")
        }
        let row = try conn.query("SELECT array_to_string(nodes, ','), \(table == "elements" ? "parent_id IS NULL" : "false") FROM fsconf.\(table) WHERE id = $1::bigint",
                                 [id])
        if row.bool(0, 1) == true {
            throw FieldStoreError.invalid("\(current.path) is a document's root element: scope the document (\(current.path.steps.prefix(2).map { FieldPath.quote($0.name) }.joined(separator: "/")))")
        }
        let old = row.string(0, 0)
        if old == scope?.description { return Written(path: current.path, old: old, new: old) }
        let stamp = FieldStore.hasUpdatedAt.contains(table) ? ", updated_at = now()" : ""
        let taken: Bool
        do {
            try conn.query("SAVEPOINT fsconf_scope")
            try conn.query("UPDATE fsconf.\(table) SET nodes = $2::text[]\(stamp) WHERE id = $1::bigint", [id, scope?.sqlArray])
            try conn.query("RELEASE SAVEPOINT fsconf_scope")
            taken = false
        } catch {
            guard error.sqlState == "23505" else { throw error }
            try conn.query("ROLLBACK TO SAVEPOINT fsconf_scope")
            taken = true
        }
        if taken {
            throw FieldStoreError.conflict("\(current.path): a variant for \(scope.map { "{\($0)}" } ?? "every node") exists already; nothing written")
        }
        paths.reset()
        return Written(path: try rowPath(table, id), old: old, new: scope?.description)
    }

    func check(_ expect: String??, _ current: FieldValue) throws {
        guard let expected = expect else { return }
        switch (expected, current.exists ? current.value : nil) {
        case (nil, nil): return
        case (nil, let now?):
            throw FieldStoreError.conflict("\(current.path) already exists (value \(FieldDiff.show(now))); expected it absent")
        case (let want?, nil):
            throw FieldStoreError.conflict("\(current.path) \(current.exists ? "is empty" : "does not exist"); expected \(FieldDiff.show(want))")
        case (let want?, let now?):
            if want != now {
                throw FieldStoreError.conflict("\(current.path) is \(FieldDiff.show(now)), not the expected \(FieldDiff.show(want)): someone changed it first; nothing written")
            }
        }
    }

    func insertAttribute(_ elementID: String, _ name: String, _ value: String) throws {
        try inserted(conn.query("""
            INSERT INTO fsconf.attributes (element_id, name, value, position)
            SELECT $1::bigint, $2, $3, coalesce(max(position), 0) + 1 FROM fsconf.attributes WHERE element_id = $1::bigint
            ON CONFLICT DO NOTHING
            """, [elementID, name, value]))
    }

    /// An INSERT … ON CONFLICT DO NOTHING that inserted nothing lost a race.
    func inserted(_ r: PGResult) throws {
        if r.affectedRows == 0 { throw LostRace() }
    }

    /// Locks a row against concurrent writers of what it owns (FOR NO KEY UPDATE:
    /// children may still be inserted under it by this transaction's foreign keys).
    func lockOwner(_ table: String, _ id: String) throws {
        try conn.query("SELECT 1 FROM fsconf.\(table) WHERE id = $1::bigint FOR NO KEY UPDATE", [id])
    }

    /// The condition after `column` becomes `value` (nil: unset) must still pair
    /// field and expression (FieldValidation.conditionProblem, the schema's CHECK).
    func checkCondition(_ id: String, _ column: String, _ value: String?, _ path: FieldPath) throws {
        guard ["field", "expression", "regex"].contains(column) else { return }
        let r = try conn.query("SELECT field, expression, regex FROM fsconf.dialplan_conditions WHERE id = $1::bigint", [id])
        var row = ["field": r.string(0, 0), "expression": r.string(0, 1), "regex": r.string(0, 2)]
        row[column] = .some(value)
        if let problem = FieldValidation.conditionProblem(field: row["field"]!, expression: row["expression"]!, regex: row["regex"]!) {
            throw FieldStoreError.invalid("\(path): \(problem); nothing written")
        }
    }

    /// Global `name` set to `value` must not make a `$${}` reference cycle.
    func checkGlobals(_ name: String, _ value: String, _ path: FieldPath) throws {
        guard VariableExpander.hasReference(value) else { return }
        let r = try conn.query("SELECT name, value FROM fsconf.global_variables")
        var globals: [String: String] = [:]
        for i in 0..<r.rowCount { globals[r.string(i, 0)!] = r.string(i, 1) ?? "" }
        globals[name] = value
        if let cycle = VariableExpander.cycle(from: name, globals: globals) {
            throw FieldStoreError.invalid("\(path): \(VariableExpander.describe(cycle: cycle)); nothing written")
        }
    }

    func rawColumn(_ table: String, _ id: String, _ column: String) throws -> String? {
        try conn.query("SELECT \(column)::text FROM fsconf.\(table) WHERE id = $1::bigint", [id]).string(0, 0)
    }

    static func entityName(_ at: Located) -> String {
        guard case .entity(let table, _) = at else { return "entity" }
        switch table {
        case "domains": return "domain"
        case "groups": return "group"
        case "users": return "user"
        case "gateways": return "gateway"
        case "dialplan_contexts": return "context"
        case "dialplan_extensions": return "extension"
        case "dialplan_conditions": return "condition"
        case "dialplan_actions": return "action"
        case "dialplan_regexes": return "regex"
        case "documents": return "document"
        case "elements": return "element"
        default: return table
        }
    }

    // MARK: Locating

    func one(_ sql: String, _ params: [String?], _ missing: @autoclosure () -> String) throws -> PGResult {
        let r = try conn.query(sql, params)
        if r.rowCount == 0 { throw FieldStoreError.notFound(missing()) }
        return r
    }

    /// One row of `table` found by `sql` (an unscoped identity) in the variant
    /// `scope`; when there is none, the error lists the identity's variants.
    func scoped(_ sql: String, _ params: [String?], _ scope: Scope?, _ missing: @autoclosure () -> String,
                table: String) throws -> PGResult {
        let n = params.count + 1
        let r = try conn.query("SELECT * FROM (\(sql) AND nodes IS NOT DISTINCT FROM $\(n)::text[]) x", params + [scope?.sqlArray])
        if r.rowCount > 0 { return r }
        precondition(sql.hasPrefix("SELECT id FROM"))
        let withNodes = "SELECT id, nodes" + sql.dropFirst("SELECT id".count)
        let others = try conn.query("SELECT coalesce('{' || array_to_string(nodes, ',') || '}', '(every node)') FROM (\(withNodes)) x ORDER BY 1", params)
        let list = (0..<others.rowCount).compactMap { others.string($0, 0) }
        throw FieldStoreError.notFound(missing() + (list.isEmpty ? "" : "; its variants: " + list.joined(separator: ", ")))
    }

    /// " (its variants: {a}, {b})" for an identity with scoped variants, else "".
    func variantHint(_ table: String, _ condition: String, _ params: [String?], _ name: String) throws -> String {
        let r = try conn.query("SELECT '{' || array_to_string(nodes, ',') || '}' FROM fsconf.\(table) WHERE \(condition) AND nodes IS NOT NULL ORDER BY 1", params)
        let list = (0..<r.rowCount).compactMap { r.string($0, 0) }
        return list.isEmpty ? "" : "; its variants: " + list.map { name + $0 }.joined(separator: ", ")
    }

    func locate(_ address: FieldAddress, lock: Bool) throws -> Located {
        let forUpdate = lock ? " FOR UPDATE" : ""
        switch address {
        case .globals(let name, let scope):
            guard let name else { throw FieldStoreError.invalid("globals names the whole section: use `fsconf list globals`") }
            let r = try conn.query("SELECT id, value FROM fsconf.global_variables WHERE name = $1 AND nodes IS NOT DISTINCT FROM $2::text[]\(forUpdate)",
                                   [name, scope?.sqlArray])
            return .global(id: r.rowCount == 0 ? nil : r.string(0, 0), name: name, scope: scope, value: r.rowCount == 0 ? nil : r.string(0, 1))
        case .directory(let a):
            return try locateDirectory(a, forUpdate)
        case .dialplan(let a):
            return try locateDialplan(a, forUpdate)
        case .tree(let a):
            return try locateTree(a, forUpdate)
        }
    }

    func locateDirectory(_ a: DirectoryAddress, _ forUpdate: String) throws -> Located {
        guard let domain = a.domain else { throw FieldStoreError.invalid("directory names the whole section: use `fsconf list directory`") }
        let d = try scoped("SELECT id FROM fsconf.domains WHERE lower(name) = lower($1)", [domain], a.domainScope,
                           "no domain \(domain)\(a.domainScope.map { "{\($0)}" } ?? "")", table: "domains").string(0, 0)!
        var table = "domains", id = d, ownerColumn = "domain_id", settingsTable = "domain_settings"
        switch a.owner {
        case .domain: break
        case .group(let g):
            id = try one("SELECT id FROM fsconf.groups WHERE domain_id = $1::bigint AND lower(name) = lower($2)", [d, g],
                         "no group \(g) in domain \(domain)").string(0, 0)!
            table = "groups"; ownerColumn = "group_id"; settingsTable = "group_settings"
        case .user(let u):
            id = try scoped("SELECT id FROM fsconf.users WHERE domain_id = $1::bigint AND lower(user_id) = lower($2)", [d, u], a.userScope,
                            "no user \(u)\(a.userScope.map { "{\($0)}" } ?? "") in domain \(domain)", table: "users").string(0, 0)!
            table = "users"; ownerColumn = "user_id"; settingsTable = "user_settings"
        }
        if let gw = a.gateway {
            let userID: String? = table == "users" ? id : nil
            id = try scoped("SELECT id FROM fsconf.gateways WHERE domain_id = $1::bigint AND name = $2 AND user_id IS NOT DISTINCT FROM $3::bigint",
                            [d, gw, userID], a.gatewayScope, "no gateway \(gw)\(a.gatewayScope.map { "{\($0)}" } ?? "") there",
                            table: "gateways").string(0, 0)!
            table = "gateways"; ownerColumn = "gateway_id"; settingsTable = "gateway_settings"
        }
        // A writer holds the owner first: of two creators of one setting or member,
        // the second waits, then finds the first's row.
        if !forUpdate.isEmpty { try lockOwner(table, id) }
        switch a.field {
        case nil:
            return .entity(table: table, id: id)
        case .column(let name)?:
            let columns = table == "gateways" ? DirectoryAddress.gatewayColumns : table == "users" ? DirectoryAddress.userColumns
                : table == "groups" ? DirectoryAddress.groupColumns : DirectoryAddress.domainColumns
            let column = columns[name]!
            let select = table == "users" && column == "home_group_id"
                ? "SELECT (SELECT g.name FROM fsconf.groups g WHERE g.id = t.home_group_id) FROM fsconf.users t WHERE id = $1::bigint\(forUpdate)"
                : "SELECT \(column)::text FROM fsconf.\(table) WHERE id = $1::bigint\(forUpdate)"
            let r = try conn.query(select, [id])
            return .column(table: table, id: id, column: column, nullable: FieldStore.nullable.contains("\(table).\(column)"), value: r.string(0, 0))
        case .setting(let kind, let name, let direction)?:
            let sql = table == "gateways"
                ? "SELECT id, value FROM fsconf.gateway_settings WHERE gateway_id = $1::bigint AND kind = $2 AND name = $3 AND direction IS NOT DISTINCT FROM $4\(forUpdate)"
                : "SELECT id, value FROM fsconf.\(settingsTable) WHERE \(ownerColumn) = $1::bigint AND kind = $2 AND name = $3\(forUpdate)"
            let r = try conn.query(sql, table == "gateways" ? [id, kind.rawValue, name, direction] : [id, kind.rawValue, name])
            return .setting(table: settingsTable, ownerColumn: ownerColumn, ownerID: id, kind: kind.rawValue, name: name,
                            direction: direction, id: r.rowCount == 0 ? nil : r.string(0, 0), value: r.rowCount == 0 ? nil : r.string(0, 1),
                            ownerTable: table)
        case .member(let user)?:
            // A member names the user by id, whatever its variants: the unscoped one, else the first.
            let u = try one("SELECT id, user_id FROM fsconf.users WHERE domain_id = $1::bigint AND lower(user_id) = lower($2) ORDER BY nodes IS NOT NULL, id LIMIT 1",
                            [d, user], "no user \(user) in domain \(domain)")
            let r = try conn.query("SELECT 1 FROM fsconf.group_members WHERE group_id = $1::bigint AND user_id = $2::bigint\(forUpdate)",
                                   [id, u.string(0, 0)])
            return .member(groupID: id, userID: u.string(0, 0)!, userName: u.string(0, 1)!, exists: r.rowCount > 0)
        }
    }

    /// Picks one row among ordered candidates (id, label).
    func pick(_ list: [(id: String, name: String?)], _ pick: FieldAddress.Pick, what: String, key: (String) -> String) throws -> String {
        switch pick {
        case .only:
            if list.count == 1 { return list[0].id }
            if list.isEmpty { throw FieldStoreError.notFound("no \(what)") }
            throw FieldStoreError.invalid("there are \(list.count) \(what)s here: say which, e.g. \(key("1"))")
        case .index(let n):
            guard n <= list.count else { throw FieldStoreError.notFound("no \(what) [\(n)] (there are \(list.count))") }
            return list[n - 1].id
        case .match(let k, let v):
            let hits = list.enumerated().filter { $0.element.name == v }
            if hits.count == 1 { return hits[0].element.id }
            if hits.isEmpty { throw FieldStoreError.notFound("no \(what) [\(k)=\(v)]") }
            throw FieldStoreError.invalid("\(hits.count) \(what)s have \(k)=\(v) (at \(hits.map { String($0.offset + 1) }.joined(separator: ", "))): use \(key(String(hits[0].offset + 1)))")
        }
    }

    func rows(_ sql: String, _ params: [String?]) throws -> [(id: String, name: String?)] {
        let r = try conn.query(sql, params)
        return (0..<r.rowCount).map { (r.string($0, 0)!, r.columnCount > 1 ? r.string($0, 1) : nil) }
    }

    func locateDialplan(_ a: DialplanAddress, _ forUpdate: String) throws -> Located {
        let section = a.section.rawValue
        guard let context = a.context else { throw FieldStoreError.invalid("\(section) names the whole section: use `fsconf list \(section)`") }
        let scope = a.contextScope?.sqlArray
        var r = try conn.query("SELECT id FROM fsconf.dialplan_contexts WHERE section = $2 AND name = $1 AND nodes IS NOT DISTINCT FROM $3::text[]",
                               [context, section, scope])
        if r.rowCount == 0 {
            r = try conn.query("SELECT id FROM fsconf.dialplan_contexts WHERE section = $2 AND lower(name) = lower($1) AND nodes IS NOT DISTINCT FROM $3::text[]",
                               [context, section, scope])
        }
        guard r.rowCount == 1 else {
            throw FieldStoreError.notFound("no \(section) context \(context)\(a.contextScope.map { "{\($0)}" } ?? "")"
                + (try variantHint("dialplan_contexts", "section = $1 AND lower(name) = lower($2)", [section, context], context)))
        }
        let c = r.string(0, 0)!
        guard let xpick = a.extensionPick else {
            if let column = a.column {
                let v = try conn.query("SELECT \(column) FROM fsconf.dialplan_contexts WHERE id = $1::bigint\(forUpdate)", [c]).string(0, 0)
                return .column(table: "dialplan_contexts", id: c, column: column, nullable: false, value: v)
            }
            return .entity(table: "dialplan_contexts", id: c)
        }
        let x = try pick(rows("SELECT id, name FROM fsconf.dialplan_extensions WHERE context_id = $1::bigint AND nodes IS NOT DISTINCT FROM $2::text[] ORDER BY position, id",
                              [c, a.extensionScope?.sqlArray]),
                         xpick, what: "extension\(a.extensionScope.map { " scoped {\($0)}" } ?? "")", key: { "extension[\($0)]" })
        var table = "dialplan_extensions", id = x
        var parent: String?
        for p in a.conditions {
            let list = try rows("""
                SELECT id FROM fsconf.dialplan_conditions WHERE extension_id = $1::bigint AND parent_id IS NOT DISTINCT FROM $2::bigint ORDER BY position, id
                """, [x, parent])
            id = try pick(list, p, what: "condition", key: { "condition[\($0)]" })
            table = "dialplan_conditions"
            parent = id
        }
        switch a.item {
        case .action(let p)?, .antiAction(let p)?:
            let kind: String
            if case .action? = a.item { kind = "action" } else { kind = "anti-action" }
            id = try pick(rows("SELECT id FROM fsconf.dialplan_actions WHERE condition_id = $1::bigint AND kind = $2 ORDER BY position, id", [id, kind]),
                          p, what: kind, key: { "\(kind)[\($0)]" })
            table = "dialplan_actions"
        case .regex(let p)?:
            id = try pick(rows("SELECT id FROM fsconf.dialplan_regexes WHERE condition_id = $1::bigint ORDER BY position, id", [id]),
                          p, what: "regex", key: { "regex[\($0)]" })
            table = "dialplan_regexes"
        case nil: break
        }
        guard let name = a.column else { return .entity(table: table, id: id) }
        let column: String
        switch table {
        case "dialplan_extensions": column = DialplanAddress.extensionColumns[name]!
        case "dialplan_conditions": column = DialplanAddress.conditionColumns[name]!
        case "dialplan_actions": column = DialplanAddress.actionColumns[name]!
        default: column = DialplanAddress.regexColumns[name]!
        }
        let v = try conn.query("SELECT \(column)::text FROM fsconf.\(table) WHERE id = $1::bigint\(forUpdate)", [id]).string(0, 0)
        return .column(table: table, id: id, column: column, nullable: FieldStore.nullable.contains("\(table).\(column)"), value: v)
    }

    func locateTree(_ a: TreeAddress, _ forUpdate: String) throws -> Located {
        guard let name = a.document else {
            throw FieldStoreError.invalid("\(a.section.rawValue) names the whole section: use `fsconf list \(a.section.rawValue)`")
        }
        let doc = try scoped("SELECT id FROM fsconf.documents WHERE section = $1 AND name = $2", [a.section.rawValue, name], a.documentScope,
                             "no \(a.section == .configuration ? "configuration document" : "language") \(name)\(a.documentScope.map { "{\($0)}" } ?? "")",
                             table: "documents").string(0, 0)!
        let root = try conn.query("SELECT id FROM fsconf.elements WHERE document_id = $1::bigint AND parent_id IS NULL", [doc])
        guard root.rowCount == 1 else {
            if a.elements.isEmpty && a.leaf == nil { return .entity(table: "documents", id: doc) }
            throw FieldStoreError.notFound("document \(name) has no root element")
        }
        var element = root.string(0, 0)!
        for (k, step) in a.elements.enumerated() {
            // The last step may create a [key=value] element: hold its parent first, so
            // that of two creators the second waits, then finds the first's element.
            if !forUpdate.isEmpty, k == a.elements.count - 1, case .match = step.pick, a.leaf != nil {
                try lockOwner("elements", element)
            }
            // The siblings of the variant asked for (`{…}`; none: the unscoped ones).
            let list: [(id: String, name: String?)]
            if case .match(let key, _) = step.pick {
                list = try rows("""
                    SELECT e.id, (SELECT value FROM fsconf.attributes a WHERE a.element_id = e.id AND a.name = $3)
                    FROM fsconf.elements e WHERE e.parent_id = $1::bigint AND e.tag = $2 AND e.nodes IS NOT DISTINCT FROM $4::text[]
                    ORDER BY e.position, e.id
                    """, [element, step.tag, key, step.scope?.sqlArray])
            } else {
                list = try rows("SELECT id FROM fsconf.elements WHERE parent_id = $1::bigint AND tag = $2 AND nodes IS NOT DISTINCT FROM $3::text[] ORDER BY position, id",
                                [element, step.tag, step.scope?.sqlArray])
            }
            if case .match(let key, let value) = step.pick, k == a.elements.count - 1, a.leaf != nil,
               !list.contains(where: { $0.name == value }) {
                return .newElement(documentID: doc, parentID: element, tag: step.tag, key: key, keyValue: value, leaf: a.leaf,
                                   parentPath: try rowPath("elements", element), scope: step.scope)
            }
            element = try pick(list, step.pick, what: "<\(step.tag)>\(step.scope.map { " scoped {\($0)}" } ?? "")", key: { "\(step.tag)[\($0)]" })
        }
        switch a.leaf {
        case nil:
            return a.elements.isEmpty ? .entity(table: "documents", id: doc) : .entity(table: "elements", id: element)
        case .text?:
            let v = try conn.query("SELECT text FROM fsconf.elements WHERE id = $1::bigint\(forUpdate)", [element]).string(0, 0)
            return .text(elementID: element, value: v)
        case .attribute(let attr)?:
            if !forUpdate.isEmpty { try lockOwner("elements", element) }
            let r = try conn.query("SELECT value FROM fsconf.attributes WHERE element_id = $1::bigint AND name = $2\(forUpdate)", [element, attr])
            return .attribute(elementID: element, name: attr, value: r.rowCount == 0 ? nil : r.string(0, 0), exists: r.rowCount > 0)
        }
    }

}
