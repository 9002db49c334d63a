import FSConfCore
import FSConfAdminCore
import FSConfStore

/// What is stored, as a `ConfigTree`, plus the ids that the writer needs.
public struct StoredConfig: Sendable {
    public var tree = ConfigTree()
    /// Loading a slice: the scoped extensions of its contexts and the scoped
    /// elements of its documents (variants of other scopes, docs/cluster.md), which
    /// a whole-context or whole-document rewrite keeps ("section/name" → list).
    public var keptExtensions: [String: [(index: Int, extension: ExtensionEntity)]] = [:]
    public var keptElements: [String: [KeptElement]] = [:]
    public var domainIDs: [String: Int64] = [:]                 // domain key → id
    public var groupIDs: [String: [String: Int64]] = [:]        // domain key → group key → id
    public var userIDs: [String: [String: Int64]] = [:]         // domain key → user key → id
    public var contextIDs: [String: Int64] = [:]                // "section/name" → id
    public var documentIDs: [String: Int64] = [:]               // "section/name" → id
}

/// A scoped element inside a slice's document, kept through a rewrite of the
/// document: grafted back under the element its parent path names.
public struct KeptElement: Sendable {
    /// The steps from the root to the parent, among unscoped siblings.
    public var parent: [FieldPath.Step]
    public var index: Int
    public var element: ParsedElement
}

/// Which rows `ConfigStore.load` reads (docs/cluster.md).
public enum LoadScope: Sendable, Equatable {
    /// Every row, each entity with its scope: what `list` shows and a node's view is cut from.
    case all
    /// The globals, domains, contexts and documents of exactly this scope (nil:
    /// the unscoped ones) with what is under them and has no scope of its own:
    /// what an import into that scope compares with and writes.
    case slice(Scope?)
}

/// Reads and writes whole configuration trees (import, export). Every call runs on
/// the caller's connection, inside the caller's transaction.
public struct ConfigStore {
    let conn: PGConnection
    public init(_ conn: PGConnection) { self.conn = conn }

    // MARK: Load

    public func load(_ which: LoadScope = .slice(nil)) throws(PostgresError) -> StoredConfig {
        var out = StoredConfig()
        // Rows of a top-level entity (global, domain, context, document) and of an
        // entity under one (user, gateway, extension, element) that this load keeps.
        func top(_ scope: Scope?) -> Bool {
            if case .slice(let s) = which { return scope == s }
            return true
        }
        func nested(_ scope: Scope?) -> Bool {
            if case .slice = which { return scope == nil }
            return true
        }
        var r = try conn.query("SELECT name, value, command, array_to_string(nodes, ','), id FROM fsconf.global_variables ORDER BY position, name, id")
        for i in 0..<r.rowCount {
            let scope = Scope.fromColumn(r.string(i, 3))
            guard top(scope) else { continue }
            var g = GlobalVariable(name: r.string(i, 0)!, value: r.string(i, 1) ?? "", command: r.string(i, 2) ?? "set")
            g.scope = scope
            g.row = RowID(r.string(i, 4).flatMap { Int64($0) })
            out.tree.globals.append(g)
        }

        // Directory.
        var domains: [Int64: DomainEntity] = [:], domainOrder: [Int64] = []
        r = try conn.query("SELECT id, name, cacheable, array_to_string(nodes, ',') FROM fsconf.domains ORDER BY position, id")
        for i in 0..<r.rowCount {
            let id = Int64(r.string(i, 0)!)!
            let scope = Scope.fromColumn(r.string(i, 3))
            guard top(scope) else { continue }
            var d = DomainEntity(name: r.string(i, 1)!)
            d.cacheable = r.string(i, 2)
            d.scope = scope
            d.row = RowID(id)
            domains[id] = d; domainOrder.append(id)
        }
        func settings(_ table: String, _ owner: String) throws(PostgresError) -> [Int64: [SettingEntity]] {
            let r = try conn.query("SELECT \(owner), kind, name, value FROM fsconf.\(table) ORDER BY \(owner), position, id")
            var out: [Int64: [SettingEntity]] = [:]
            for i in 0..<r.rowCount {
                out[Int64(r.string(i, 0)!)!, default: []].append(
                    SettingEntity(kind: Setting.Kind(rawValue: r.string(i, 1)!) ?? .param, name: r.string(i, 2)!, value: r.string(i, 3) ?? ""))
            }
            return out
        }
        let domainSettings = try settings("domain_settings", "domain_id")
        let groupSettings = try settings("group_settings", "group_id")
        let userSettings = try settings("user_settings", "user_id")

        var groups: [Int64: (domain: Int64, group: GroupEntity)] = [:], groupOrder: [Int64] = []
        r = try conn.query("SELECT id, domain_id, name FROM fsconf.groups ORDER BY position, id")
        for i in 0..<r.rowCount {
            let id = Int64(r.string(i, 0)!)!
            var g = GroupEntity(name: r.string(i, 2)!)
            g.settings = groupSettings[id] ?? []
            groups[id] = (Int64(r.string(i, 1)!)!, g); groupOrder.append(id)
        }
        r = try conn.query("""
            SELECT m.group_id, u.user_id FROM fsconf.group_members m JOIN fsconf.users u ON u.id = m.user_id
            ORDER BY m.position, u.id
            """)
        for i in 0..<r.rowCount { groups[Int64(r.string(i, 0)!)!]?.group.members.append(r.string(i, 1)!) }

        var gatewaySettings: [Int64: [GatewaySettingEntity]] = [:]
        r = try conn.query("SELECT gateway_id, kind, name, value, direction FROM fsconf.gateway_settings ORDER BY gateway_id, position, id")
        for i in 0..<r.rowCount {
            gatewaySettings[Int64(r.string(i, 0)!)!, default: []].append(GatewaySettingEntity(
                kind: Setting.Kind(rawValue: r.string(i, 1)!) ?? .param, name: r.string(i, 2)!, value: r.string(i, 3) ?? "",
                direction: r.string(i, 4)))
        }
        var userGateways: [Int64: [GatewayEntity]] = [:], domainGateways: [Int64: [GatewayEntity]] = [:]
        r = try conn.query("SELECT id, domain_id, user_id, name, array_to_string(nodes, ',') FROM fsconf.gateways ORDER BY position, id")
        for i in 0..<r.rowCount {
            let id = Int64(r.string(i, 0)!)!
            let scope = Scope.fromColumn(r.string(i, 4))
            guard nested(scope) else { continue }
            var g = GatewayEntity(name: r.string(i, 3)!, settings: gatewaySettings[id] ?? [])
            g.scope = scope
            g.row = RowID(id)
            if let user = r.string(i, 2).flatMap({ Int64($0) }) { userGateways[user, default: []].append(g) }
            else { domainGateways[Int64(r.string(i, 1)!)!, default: []].append(g) }
        }
        var users: [Int64: [(Int64, UserEntity)]] = [:]
        r = try conn.query("""
            SELECT id, domain_id, user_id, number_alias, cacheable, home_group_id, enabled, extra_xml, array_to_string(nodes, ',')
            FROM fsconf.users ORDER BY position, id
            """)
        for i in 0..<r.rowCount {
            let id = Int64(r.string(i, 0)!)!
            let scope = Scope.fromColumn(r.string(i, 8))
            guard nested(scope) else { continue }
            var u = UserEntity(userID: r.string(i, 2)!)
            u.scope = scope
            u.row = RowID(id)
            u.numberAlias = r.string(i, 3)
            u.cacheable = r.string(i, 4)
            u.homeGroup = r.string(i, 5).flatMap { Int64($0) }.flatMap { groups[$0]?.group.name }
            u.enabled = r.bool(i, 6) ?? true
            u.extraXML = r.string(i, 7)
            u.settings = userSettings[id] ?? []
            u.gateways = userGateways[id] ?? []
            users[Int64(r.string(i, 1)!)!, default: []].append((id, u))
        }
        for id in domainOrder {
            var d = domains[id]!
            d.settings = domainSettings[id] ?? []
            d.gateways = domainGateways[id] ?? []
            let key = d.key
            out.domainIDs[key] = id
            for gid in groupOrder where groups[gid]!.domain == id {
                d.groups.append(groups[gid]!.group)
                out.groupIDs[key, default: [:]][groups[gid]!.group.key] = gid
            }
            for (uid, u) in users[id] ?? [] {
                d.users.append(u)
                out.userIDs[key, default: [:]][u.key] = uid
            }
            out.tree.domains.append(d)
        }

        // Dialplan.
        var regexes: [Int64: [RegexEntity]] = [:]
        let timeColumns = ConditionEntity.timeColumns.map { "\($0.column)" }.joined(separator: ", ")
        r = try conn.query("""
            SELECT condition_id, field, expression, expression_element, \(timeColumns)
            FROM fsconf.dialplan_regexes ORDER BY condition_id, position
            """)
        for i in 0..<r.rowCount {
            var regex = RegexEntity(field: r.string(i, 1), expression: r.string(i, 2), expressionElement: r.bool(i, 3) ?? false)
            for (k, t) in ConditionEntity.timeColumns.enumerated() { if let v = r.string(i, 4 + k) { regex.time[t.xml] = v } }
            regexes[Int64(r.string(i, 0)!)!, default: []].append(regex)
        }
        var actions: [Int64: [ActionEntity]] = [:], antiActions: [Int64: [ActionEntity]] = [:]
        r = try conn.query("""
            SELECT condition_id, kind, application, data, inline, loop, data_element
            FROM fsconf.dialplan_actions ORDER BY condition_id, kind, position
            """)
        for i in 0..<r.rowCount {
            let a = ActionEntity(application: r.string(i, 2)!, data: r.string(i, 3), inline: r.string(i, 4),
                                 loop: r.string(i, 5), dataElement: r.bool(i, 6) ?? false)
            if r.string(i, 1) == "action" { actions[Int64(r.string(i, 0)!)!, default: []].append(a) }
            else { antiActions[Int64(r.string(i, 0)!)!, default: []].append(a) }
        }
        let columns = ConditionEntity.columns.map { "c.\($0.column)" }.joined(separator: ", ")
        r = try conn.query("""
            SELECT c.id, c.extension_id, c.parent_id, c.expression_element, \(columns)
            FROM fsconf.dialplan_conditions c ORDER BY c.position, c.id
            """)
        var conditionRows: [(id: Int64, ext: Int64, parent: Int64?, entity: ConditionEntity)] = []
        for i in 0..<r.rowCount {
            var c = ConditionEntity()
            c.expressionElement = r.bool(i, 3) ?? false
            for (k, col) in ConditionEntity.columns.enumerated() { if let v = r.string(i, 4 + k) { c.attributes[col.xml] = v } }
            let id = Int64(r.string(i, 0)!)!
            c.regexes = regexes[id] ?? []
            c.actions = actions[id] ?? []
            c.antiActions = antiActions[id] ?? []
            conditionRows.append((id, Int64(r.string(i, 1)!)!, r.string(i, 2).flatMap { Int64($0) }, c))
        }
        var childrenOf: [Int64: [Int64]] = [:], topOf: [Int64: [Int64]] = [:], conditionByID: [Int64: ConditionEntity] = [:]
        for row in conditionRows {
            conditionByID[row.id] = row.entity
            if let p = row.parent { childrenOf[p, default: []].append(row.id) } else { topOf[row.ext, default: []].append(row.id) }
        }
        func build(_ id: Int64, depth: Int) -> ConditionEntity {
            var c = conditionByID[id]!
            if depth < 64 { c.children = (childrenOf[id] ?? []).map { build($0, depth: depth + 1) } }
            return c
        }
        var extensions: [Int64: [ExtensionEntity]] = [:]
        var keptExtensions: [Int64: [(Int, ExtensionEntity)]] = [:]
        r = try conn.query("SELECT id, context_id, name, continue, enabled, array_to_string(nodes, ',') FROM fsconf.dialplan_extensions ORDER BY context_id, position, id")
        for i in 0..<r.rowCount {
            let id = Int64(r.string(i, 0)!)!
            var x = ExtensionEntity(name: r.string(i, 2) ?? "")
            x.continue = r.string(i, 3)
            x.enabled = r.bool(i, 4) ?? true
            x.scope = Scope.fromColumn(r.string(i, 5))
            x.conditions = (topOf[id] ?? []).map { build($0, depth: 0) }
            let context = Int64(r.string(i, 1)!)!
            if nested(x.scope) {
                extensions[context, default: []].append(x)
            } else {
                keptExtensions[context, default: []].append((extensions[context]?.count ?? 0, x))
            }
        }
        r = try conn.query("SELECT id, name, section, array_to_string(nodes, ',') FROM fsconf.dialplan_contexts ORDER BY section, position, id")
        for i in 0..<r.rowCount {
            let id = Int64(r.string(i, 0)!)!
            let scope = Scope.fromColumn(r.string(i, 3))
            guard top(scope) else { continue }
            var c = ContextEntity(name: r.string(i, 1)!, section: PlanSection(rawValue: r.string(i, 2) ?? "") ?? .dialplan)
            c.scope = scope
            c.row = RowID(id)
            c.extensions = extensions[id] ?? []
            out.contextIDs[c.key] = id
            if let kept = keptExtensions[id] { out.keptExtensions[c.key] = kept.map { (index: $0.0, extension: $0.1) } }
            out.tree.contexts.append(c)
        }

        // Documents.
        var attributes: [Int64: [(name: String, value: String)]] = [:]
        r = try conn.query("SELECT element_id, name, value FROM fsconf.attributes ORDER BY element_id, position, name")
        for i in 0..<r.rowCount { attributes[Int64(r.string(i, 0)!)!, default: []].append((r.string(i, 1)!, r.string(i, 2) ?? "")) }
        var elements: [Int64: ParsedElement] = [:], elementChildren: [Int64: [Int64]] = [:], roots: [Int64: Int64] = [:]
        r = try conn.query("""
            SELECT id, document_id, parent_id, tag, text, array_to_string(nodes, ',') FROM fsconf.elements
            ORDER BY document_id, parent_id NULLS FIRST, position, id
            """)
        for i in 0..<r.rowCount {
            let id = Int64(r.string(i, 0)!)!
            var e = ParsedElement(name: r.string(i, 3)!, attributes: attributes[id] ?? [], text: r.string(i, 4))
            e.scope = Scope.fromColumn(r.string(i, 5))
            elements[id] = e
            if let p = r.string(i, 2).flatMap({ Int64($0) }) { elementChildren[p, default: []].append(id) }
            else { roots[Int64(r.string(i, 1)!)!] = id }
        }
        // A slice keeps the unscoped elements; the scoped ones (the topmost of each
        // subtree) are set apart with their parent's path, to be kept by a rewrite.
        // Elements below FieldValidation.maximumDepth levels are left out, as the node
        // leaves them out of its answers (TreeDocument) and import refuses them:
        // rows written by SQL cannot make the CLI recurse without bound.
        var kept: [KeptElement] = []
        func tree(_ id: Int64, path: [FieldPath.Step], depth: Int) -> ParsedElement {
            var e = elements[id]!
            guard depth < FieldValidation.maximumDepth else { return e }
            let children = elementChildren[id] ?? []
            var unscoped: [Int64] = []
            for c in children {
                if nested(elements[c]!.scope) { unscoped.append(c) } else {
                    kept.append(KeptElement(parent: path, index: unscoped.count, element: whole(c, depth: depth + 1)))
                }
            }
            let steps = FieldListing.childSteps(unscoped.map { (elements[$0]!.name, elements[$0]!.attribute("name"), elements[$0]!.scope) })
            e.children = zip(unscoped, steps).map { tree($0.0, path: path + [$0.1], depth: depth + 1) }
            return e
        }
        func whole(_ id: Int64, depth: Int) -> ParsedElement {
            var e = elements[id]!
            if depth < FieldValidation.maximumDepth { e.children = (elementChildren[id] ?? []).map { whole($0, depth: depth + 1) } }
            return e
        }
        r = try conn.query("SELECT id, section, name, array_to_string(nodes, ',') FROM fsconf.documents ORDER BY section, id")
        var docs: [DocumentEntity] = []
        for i in 0..<r.rowCount {
            let id = Int64(r.string(i, 0)!)!
            guard let section = DocumentEntity.Section(rawValue: r.string(i, 1)!) else { continue }
            let scope = Scope.fromColumn(r.string(i, 3))
            guard top(scope) else { continue }
            let name = r.string(i, 2)!
            kept = []
            let root = roots[id].map { tree($0, path: [], depth: 1) } ?? ParsedElement(name: section == .configuration ? "configuration" : "language",
                                                                                      attributes: [("name", name)])
            var doc = DocumentEntity(section: section, name: name, root: root)
            doc.scope = scope
            doc.row = RowID(id)
            out.documentIDs["\(section.rawValue)/\(name)"] = id
            if !kept.isEmpty { out.keptElements["\(section.rawValue)/\(name)"] = kept }
            docs.append(doc)
        }
        out.tree.documents = docs.filter { $0.section == .configuration } + docs.filter { $0.section == .languages }
        return out
    }

    // MARK: Apply

    /// Applies `diff` (computed against `stored`, a slice loaded with
    /// `.slice(scope)`): the globals, domains, contexts and documents it writes
    /// are that scope's. Returns the number of rows written.
    @discardableResult
    public func apply(_ diff: ConfigDiff, stored: StoredConfig, scope: Scope? = nil) throws(PostgresError) -> Int {
        let nodes = scope?.sqlArray
        var w = BatchWriter(conn)
        var groupIDs = stored.groupIDs
        var userIDs = stored.userIDs
        var domainIDs = stored.domainIDs
        var membersToWrite: [(domainKey: String, groupID: Int64, members: [String])] = []

        // Globals.
        for (op, g, position) in diff.globals {
            switch op {
            case .add: w.add("global_variables", ["name", "value", "command", "position", "nodes"], [g.name, g.value, g.command, String(position), nodes])
            case .change:
                try w.run("""
                    UPDATE fsconf.global_variables SET value = $2, position = $3, command = $4, updated_at = now()
                    WHERE name = $1 AND nodes IS NOT DISTINCT FROM $5::text[]
                    """, [g.name, g.value, String(position), g.command, nodes])
            case .remove: try w.run("DELETE FROM fsconf.global_variables WHERE name = $1 AND nodes IS NOT DISTINCT FROM $2::text[]", [g.name, nodes])
            }
        }
        try w.flush("global_variables")

        // Removals and the children of changed entities go first.
        for (op, d, _) in diff.domains where op == .remove {
            if let id = stored.domainIDs[d.key] { try w.run("DELETE FROM fsconf.domains WHERE id = $1", [String(id)]) }
        }
        for d in diff.domainOwn {
            guard let id = stored.domainIDs[d.key] else { continue }
            try w.run("UPDATE fsconf.domains SET name = $2, updated_at = now() WHERE id = $1", [String(id), d.name])
            try w.run("DELETE FROM fsconf.domain_settings WHERE domain_id = $1", [String(id)])
            // Scoped gateways are variants of their own (docs/cluster.md): kept.
            try w.run("DELETE FROM fsconf.gateways WHERE domain_id = $1 AND user_id IS NULL AND nodes IS NULL", [String(id)])
        }
        for (op, domainKey, u, _) in diff.users where op == .remove {
            if let id = stored.userIDs[domainKey]?[u.key] { try w.run("DELETE FROM fsconf.users WHERE id = $1", [String(id)]) }
        }
        for (op, domainKey, g, _) in diff.groups where op == .remove {
            if let id = stored.groupIDs[domainKey]?[g.key] { try w.run("DELETE FROM fsconf.groups WHERE id = $1", [String(id)]) }
        }
        for (op, c, _) in diff.contexts where op != .add {
            if let id = stored.contextIDs[c.key] { try w.run("DELETE FROM fsconf.dialplan_contexts WHERE id = $1", [String(id)]) }
        }
        for (op, doc, _) in diff.documents where op != .add {
            if let id = stored.documentIDs["\(doc.section.rawValue)/\(doc.name)"] {
                try w.run("DELETE FROM fsconf.documents WHERE id = $1", [String(id)])
            }
        }

        // New domains, with everything inside.
        let newDomains = diff.domains.filter { $0.op == .add }
        let domainIDList = try w.allocate("domains", newDomains.count)
        for ((_, d, position), id) in zip(newDomains, domainIDList) {
            domainIDs[d.key] = id
            w.add("domains", ["id", "name", "cacheable", "position", "nodes"], [String(id), d.name, d.cacheable, String(position), nodes])
        }
        try w.flush("domains")
        for d in diff.domainOwn {
            guard let id = domainIDs[d.key] else { continue }
            w.settings("domain_settings", "domain_id", id, d.settings)
            try w.gateways(d.gateways, domain: id, user: nil)
        }

        // Groups.
        var groupRows: [(domainKey: String, group: GroupEntity, position: Int, changed: Bool)] = []
        for (_, d, _) in newDomains {
            for (j, g) in d.groups.enumerated() { groupRows.append((d.key, g, j + 1, false)) }
        }
        for (op, domainKey, g, position) in diff.groups where op != .remove {
            groupRows.append((domainKey, g, position, op == .change))
        }
        let newGroupCount = groupRows.filter { !$0.changed }.count
        var groupIDPool = try w.allocate("groups", newGroupCount)[...]
        for row in groupRows {
            guard let domainID = domainIDs[row.domainKey] else { continue }
            let id: Int64
            if row.changed, let existing = stored.groupIDs[row.domainKey]?[row.group.key] {
                id = existing
                try w.run("UPDATE fsconf.groups SET name = $2, position = $3 WHERE id = $1", [String(id), row.group.name, String(row.position)])
                try w.run("DELETE FROM fsconf.group_settings WHERE group_id = $1", [String(id)])
                try w.run("DELETE FROM fsconf.group_members WHERE group_id = $1", [String(id)])
            } else {
                id = groupIDPool.removeFirst()
                w.add("groups", ["id", "domain_id", "name", "position"], [String(id), String(domainID), row.group.name, String(row.position)])
            }
            groupIDs[row.domainKey, default: [:]][row.group.key] = id
            w.settings("group_settings", "group_id", id, row.group.settings)
            membersToWrite.append((row.domainKey, id, row.group.members))
        }
        try w.flush("groups")

        // Users.
        var userRows: [(domainKey: String, user: UserEntity, position: Int, changed: Bool)] = []
        for (_, d, _) in newDomains {
            for (j, u) in d.users.enumerated() { userRows.append((d.key, u, j + 1, false)) }
        }
        for (op, domainKey, u, position) in diff.users where op != .remove {
            userRows.append((domainKey, u, position, op == .change))
        }
        var userIDPool = try w.allocate("users", userRows.filter { !$0.changed }.count)[...]
        var gatewayOwners: [(domain: Int64, user: Int64, gateways: [GatewayEntity])] = []
        for row in userRows {
            guard let domainID = domainIDs[row.domainKey] else { continue }
            let u = row.user
            let home = u.homeGroup.flatMap { groupIDs[row.domainKey]?[$0.asciiLowercased] }.map { String($0) }
            let fields: [String?] = [u.userID, u.numberAlias, u.cacheable, home, u.enabled ? "true" : "false", String(row.position), u.extraXML,
                                     u.scope?.sqlArray]
            let id: Int64
            if row.changed, let existing = stored.userIDs[row.domainKey]?[u.key] {
                id = existing
                try w.run("""
                    UPDATE fsconf.users SET user_id = $2, number_alias = $3, cacheable = $4, home_group_id = $5,
                        enabled = $6, position = $7, extra_xml = $8, nodes = $9::text[], updated_at = now()
                    WHERE id = $1
                    """, [String(id)] + fields)
                try w.run("DELETE FROM fsconf.user_settings WHERE user_id = $1", [String(id)])
                try w.run("DELETE FROM fsconf.gateways WHERE user_id = $1 AND nodes IS NULL", [String(id)])
            } else {
                id = userIDPool.removeFirst()
                w.add("users", ["id", "domain_id", "user_id", "number_alias", "cacheable", "home_group_id", "enabled", "position", "extra_xml",
                                "nodes"],
                      [String(id), String(domainID)] + fields)
            }
            userIDs[row.domainKey, default: [:]][u.key] = id
            w.settings("user_settings", "user_id", id, u.settings)
            if !u.gateways.isEmpty { gatewayOwners.append((domainID, id, u.gateways)) }
        }
        try w.flush("users")
        for (_, d, _) in newDomains {
            guard let id = domainIDs[d.key] else { continue }
            w.settings("domain_settings", "domain_id", id, d.settings)
            try w.gateways(d.gateways, domain: id, user: nil)
        }
        for owner in gatewayOwners { try w.gateways(owner.gateways, domain: owner.domain, user: owner.user) }
        for m in membersToWrite {
            for (k, member) in m.members.enumerated() {
                guard let uid = userIDs[m.domainKey]?[member.asciiLowercased] else { continue }
                w.add("group_members", ["group_id", "user_id", "position"], [String(m.groupID), String(uid), String(k + 1)])
            }
        }

        // Dialplan contexts (whole).
        let contexts = diff.contexts.filter { $0.op != .remove }
        let contextIDList = try w.allocate("dialplan_contexts", contexts.count)
        var extensionCount = 0, conditionCount = 0
        func countConditions(_ list: [ConditionEntity]) -> Int { list.reduce(0) { $0 + 1 + countConditions($1.children) } }
        for (_, c, _) in contexts {
            extensionCount += c.extensions.count
            for x in c.extensions { conditionCount += countConditions(x.conditions) }
        }
        var extensionIDs = try w.allocate("dialplan_extensions", extensionCount)[...]
        var conditionIDs = try w.allocate("dialplan_conditions", conditionCount)[...]
        for ((_, c, position), id) in zip(contexts, contextIDList) {
            w.add("dialplan_contexts", ["id", "section", "name", "position", "nodes"], [String(id), c.section.rawValue, c.name, String(position), nodes])
            for (k, x) in c.extensions.enumerated() {
                let xid = extensionIDs.removeFirst()
                w.add("dialplan_extensions", ["id", "context_id", "name", "continue", "enabled", "position", "nodes"],
                      [String(xid), String(id), x.name, x.continue, x.enabled ? "true" : "false", String(k + 1), x.scope?.sqlArray])
                func condition(_ c: ConditionEntity, position: Int, parent: Int64?) {
                    let cid = conditionIDs.removeFirst()
                    w.add("dialplan_conditions", ["id", "extension_id", "parent_id", "position", "expression_element"]
                            + ConditionEntity.columns.map(\.column),
                          [String(cid), String(xid), parent.map { String($0) }, String(position), String(c.expressionElement)]
                            + ConditionEntity.columns.map { c.attributes[$0.xml] })
                    for (n, r) in c.regexes.enumerated() {
                        w.add("dialplan_regexes", ["condition_id", "position", "field", "expression", "expression_element"]
                                + ConditionEntity.timeColumns.map(\.column),
                              [String(cid), String(n + 1), r.field, r.expression, String(r.expressionElement)]
                                + ConditionEntity.timeColumns.map { r.time[$0.xml] })
                    }
                    for (kind, list) in [("action", c.actions), ("anti-action", c.antiActions)] {
                        for (n, a) in list.enumerated() {
                            w.add("dialplan_actions", ["condition_id", "kind", "position", "application", "data", "inline", "loop", "data_element"],
                                  [String(cid), kind, String(n + 1), a.application, a.data, a.inline, a.loop, String(a.dataElement)])
                        }
                    }
                    for (n, child) in c.children.enumerated() { condition(child, position: n + 1, parent: cid) }
                }
                for (n, cond) in x.conditions.enumerated() { condition(cond, position: n + 1, parent: nil) }
            }
        }

        // Documents (whole).
        let documents = diff.documents.filter { $0.op != .remove }
        let documentIDList = try w.allocate("documents", documents.count)
        func countElements(_ e: ParsedElement) -> Int { e.children.reduce(1) { $0 + countElements($1) } }
        var elementIDs = try w.allocate("elements", documents.reduce(0) { $0 + countElements($1.document.root) })[...]
        for ((_, doc, _), id) in zip(documents, documentIDList) {
            w.add("documents", ["id", "section", "name", "nodes"], [String(id), doc.section.rawValue, doc.name, nodes])
            func element(_ e: ParsedElement, position: Int, parent: Int64?) {
                let eid = elementIDs.removeFirst()
                w.add("elements", ["id", "document_id", "parent_id", "position", "tag", "text", "nodes"],
                      [String(eid), String(id), parent.map { String($0) }, String(position), e.name, e.text, e.scope?.sqlArray])
                for (n, a) in e.attributes.enumerated() {
                    w.add("attributes", ["element_id", "name", "value", "position"], [String(eid), a.name, a.value, String(n + 1)])
                }
                for (n, c) in e.children.enumerated() { element(c, position: n + 1, parent: eid) }
            }
            element(doc.root, position: 1, parent: nil)
        }
        try w.flushAll()
        return w.rowsWritten
    }
}

/// Multi-row INSERTs with parameters, per table in FK order, plus single statements.
struct BatchWriter {
    let conn: PGConnection
    private var pending: [String: (columns: [String], rows: [[String?]])] = [:]
    private(set) var rowsWritten = 0

    init(_ conn: PGConnection) { self.conn = conn }

    mutating func add(_ table: String, _ columns: [String], _ row: [String?]) {
        if pending[table] == nil { pending[table] = (columns, []) }
        pending[table]!.rows.append(row)
    }

    mutating func run(_ sql: String, _ params: [String?]) throws(PostgresError) {
        let r = try conn.query(sql, params)
        rowsWritten += r.affectedRows
    }

    /// Ids from the table's identity sequence, so parents and children go in bulk.
    func allocate(_ table: String, _ count: Int) throws(PostgresError) -> [Int64] {
        guard count > 0 else { return [] }
        let r = try conn.query("SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2::int)",
                               ["fsconf.\(table)", String(count)])
        return (0..<r.rowCount).map { Int64(r.string($0, 0)!)! }
    }

    mutating func settings(_ table: String, _ owner: String, _ id: Int64, _ list: [SettingEntity]) {
        for (n, s) in list.enumerated() {
            add(table, [owner, "kind", "name", "value", "position"], [String(id), s.kind.rawValue, s.name, s.value, String(n + 1)])
        }
    }

    mutating func gateways(_ list: [GatewayEntity], domain: Int64, user: Int64?) throws(PostgresError) {
        let ids = try allocate("gateways", list.count)
        for ((n, g), id) in zip(list.enumerated(), ids) {
            add("gateways", ["id", "domain_id", "user_id", "name", "position", "nodes"],
                [String(id), String(domain), user.map { String($0) }, g.name, String(n + 1), g.scope?.sqlArray])
            for (k, s) in g.settings.enumerated() {
                add("gateway_settings", ["gateway_id", "kind", "name", "value", "direction", "position"],
                    [String(id), s.kind.rawValue, s.name, s.value, s.direction, String(k + 1)])
            }
        }
    }

    mutating func flush(_ table: String) throws(PostgresError) {
        guard let batch = pending.removeValue(forKey: table), !batch.rows.isEmpty else { return }
        let width = batch.columns.count
        let perStatement = max(1, 30000 / width)
        // Rows that bring their own id go to IDENTITY tables (every "id" column is one).
        let overriding = batch.columns.first == "id" ? " OVERRIDING SYSTEM VALUE" : ""
        var start = 0
        while start < batch.rows.count {
            let chunk = batch.rows[start..<min(start + perStatement, batch.rows.count)]
            var sql = "INSERT INTO fsconf.\(table) (\(batch.columns.joined(separator: ", ")))\(overriding) VALUES "
            var params: [String?] = []
            params.reserveCapacity(chunk.count * width)
            var first = true
            for row in chunk {
                sql += first ? "(" : ", ("
                first = false
                for k in 0..<width {
                    params.append(row[k])
                    sql += (k == 0 ? "$" : ", $") + String(params.count)
                }
                sql += ")"
            }
            try conn.query(sql, params)
            rowsWritten += chunk.count
            start += perStatement
        }
    }

    mutating func flushAll() throws(PostgresError) {
        for table in RowPaths.order { try flush(table) }
    }
}


extension StoredConfig {
    /// `diff` with this slice's scoped variants put back into each context and
    /// document it rewrites whole (a slice's import replaces those), each where it
    /// stood; `lost`: variants whose parent element is not in the new document
    /// (the import refuses rather than drop them).
    public func keepingVariants(_ diff: ConfigDiff) -> (diff: ConfigDiff, lost: [String]) {
        var out = diff
        var lost: [String] = []
        for i in out.contexts.indices where out.contexts[i].op == .change {
            guard let kept = keptExtensions[out.contexts[i].context.key] else { continue }
            var list = out.contexts[i].context.extensions
            for (k, entry) in kept.enumerated() { list.insert(entry.extension, at: min(entry.index + k, list.count)) }
            out.contexts[i].context.extensions = list
        }
        for i in out.documents.indices where out.documents[i].op == .change {
            let doc = out.documents[i].document
            guard let kept = keptElements["\(doc.section.rawValue)/\(doc.name)"] else { continue }
            var root = doc.root
            for entry in kept {
                if !StoredConfig.graft(entry.element, under: entry.parent[...], at: entry.index, into: &root) {
                    var p = FieldPath([FieldPath.Step(doc.section.rawValue), FieldPath.Step(doc.name, scope: doc.scope)])
                    p.steps += entry.parent
                    lost.append("\(p.description)/\(entry.element.name)\(entry.element.attribute("name").map { "[name=\($0)]" } ?? "")"
                                + (entry.element.scope.map { "{\($0)}" } ?? ""))
                }
            }
            out.documents[i].document.root = root
        }
        return (out, lost)
    }

    /// Inserts `element` under the element `path` names (steps among unscoped
    /// siblings) below `parent`, before the unscoped child it stood before.
    static func graft(_ element: ParsedElement, under path: ArraySlice<FieldPath.Step>, at index: Int,
                      into parent: inout ParsedElement) -> Bool {
        let unscoped = parent.children.indices.filter { parent.children[$0].scope == nil }
        guard let next = path.first else {
            let at = index < unscoped.count ? unscoped[index] : parent.children.count
            parent.children.insert(element, at: at)
            return true
        }
        let steps = FieldListing.childSteps(unscoped.map { (parent.children[$0].name, parent.children[$0].attribute("name"), nil) })
        guard let k = steps.firstIndex(of: next) else { return false }
        return graft(element, under: path.dropFirst(), at: index, into: &parent.children[unscoped[k]])
    }
}
