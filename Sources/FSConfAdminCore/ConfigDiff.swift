/// What an import changes, entity by entity: a global variable; a domain's own
/// fields (attributes, params, variables, domain gateways); a group (settings and
/// pointer members); a user (with settings and gateways); a dialplan context; a
/// configuration document; a language. Entities that are equal are left alone, so
/// importing the same tree twice changes nothing. Stored entities missing from the
/// tree stay unless their section is replaced.

import FSConfCore

public struct ConfigDiff: Sendable {
    public enum Section: String, Sendable, CaseIterable {
        case globals, directory, dialplan, chatplan, configuration, languages
    }

    public enum Op: Character, Sendable { case add = "+", change = "~", remove = "-" }

    public struct Entry: Sendable, Equatable, CustomStringConvertible {
        public var op: Op
        public var section: Section
        public var label: String
        public var description: String { "\(op.rawValue) \(section.rawValue) \(label)" }
    }

    public var entries: [Entry] = []

    public var globals: [(op: Op, variable: GlobalVariable, position: Int)] = []
    public var domains: [(op: Op, domain: DomainEntity, position: Int)] = []   // add / remove whole domains
    /// Existing domains whose own fields changed (replace settings and domain gateways).
    public var domainOwn: [DomainEntity] = []
    public var groups: [(op: Op, domain: String, group: GroupEntity, position: Int)] = []
    public var users: [(op: Op, domain: String, user: UserEntity, position: Int)] = []
    public var contexts: [(op: Op, context: ContextEntity, position: Int)] = []
    public var documents: [(op: Op, document: DocumentEntity, position: Int)] = []

    public var isEmpty: Bool { entries.isEmpty }

    /// Counts per section and operation, for the change set's summary.
    public var summary: String {
        var parts: [String] = []
        for section in Section.allCases {
            let list = entries.filter { $0.section == section }
            if list.isEmpty { continue }
            let counts = [Op.add, .change, .remove].compactMap { op -> String? in
                let n = list.filter { $0.op == op }.count
                return n == 0 ? nil : "\(op.rawValue)\(n)"
            }
            parts.append("\(section.rawValue) \(counts.joined(separator: " "))")
        }
        return parts.isEmpty ? "nothing to change" : parts.joined(separator: ", ")
    }

    public init(stored: ConfigTree, imported: ConfigTree, replace: Set<Section> = []) {
        // Globals.
        let storedGlobals = Dictionary(stored.globals.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for (i, g) in imported.globals.enumerated() {
            if let old = storedGlobals[g.name] {
                if old.value != g.value || old.command != g.command { add(.change, .globals, g.name); globals.append((.change, g, i + 1)) }
            } else {
                add(.add, .globals, g.name); globals.append((.add, g, i + 1))
            }
        }
        if replace.contains(.globals) {
            let names = Set(imported.globals.map(\.name))
            for g in stored.globals where !names.contains(g.name) {
                add(.remove, .globals, g.name); globals.append((.remove, g, 0))
            }
        }

        // Directory.
        let storedDomains = Dictionary(stored.domains.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        for (i, d) in imported.domains.enumerated() {
            guard let old = storedDomains[d.key] else {
                add(.add, .directory, "domain \(d.name) (\(d.users.count) users)"); domains.append((.add, d, i + 1))
                continue
            }
            if old.own != d.own { add(.change, .directory, "domain \(d.name)"); domainOwn.append(d) }
            let oldGroups = Dictionary(old.groups.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            for (j, g) in d.groups.enumerated() {
                if let og = oldGroups[g.key] {
                    if og != g { add(.change, .directory, "group \(g.name)@\(d.name)"); groups.append((.change, d.key, g, j + 1)) }
                } else {
                    add(.add, .directory, "group \(g.name)@\(d.name)"); groups.append((.add, d.key, g, j + 1))
                }
            }
            let oldUsers = Dictionary(old.users.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            for (j, u) in d.users.enumerated() {
                if let ou = oldUsers[u.key] {
                    if ou != u { add(.change, .directory, "user \(u.userID)@\(d.name)"); users.append((.change, d.key, u, j + 1)) }
                } else {
                    add(.add, .directory, "user \(u.userID)@\(d.name)"); users.append((.add, d.key, u, j + 1))
                }
            }
            if replace.contains(.directory) {
                let groupKeys = Set(d.groups.map(\.key)), userKeys = Set(d.users.map(\.key))
                for g in old.groups where !groupKeys.contains(g.key) {
                    add(.remove, .directory, "group \(g.name)@\(d.name)"); groups.append((.remove, d.key, g, 0))
                }
                for u in old.users where !userKeys.contains(u.key) {
                    add(.remove, .directory, "user \(u.userID)@\(d.name)"); users.append((.remove, d.key, u, 0))
                }
            }
        }
        if replace.contains(.directory) {
            let keys = Set(imported.domains.map(\.key))
            for d in stored.domains where !keys.contains(d.key) {
                add(.remove, .directory, "domain \(d.name)"); domains.append((.remove, d, 0))
            }
        }

        // Dialplan and chatplan contexts.
        for plan in PlanSection.allCases {
            let diffSection: Section = plan == .dialplan ? .dialplan : .chatplan
            let storedContexts = Dictionary(stored.contexts.filter { $0.section == plan }.map { ($0.name, $0) },
                                            uniquingKeysWith: { a, _ in a })
            let new = imported.contexts.filter { $0.section == plan }
            for (i, c) in new.enumerated() {
                if let old = storedContexts[c.name] {
                    if old != c { add(.change, diffSection, "context \(c.name)"); contexts.append((.change, c, i + 1)) }
                } else {
                    add(.add, diffSection, "context \(c.name) (\(c.extensions.count) extensions)"); contexts.append((.add, c, i + 1))
                }
            }
            if replace.contains(diffSection) {
                let names = Set(new.map(\.name))
                for c in stored.contexts where c.section == plan && !names.contains(c.name) {
                    add(.remove, diffSection, "context \(c.name)"); contexts.append((.remove, c, 0))
                }
            }
        }

        // Configuration documents and languages.
        for (section, diffSection) in [(DocumentEntity.Section.configuration, Section.configuration), (.languages, .languages)] {
            let old = Dictionary(stored.documents.filter { $0.section == section }.map { ($0.name, $0) },
                                 uniquingKeysWith: { a, _ in a })
            let new = imported.documents.filter { $0.section == section }
            for (i, doc) in new.enumerated() {
                if let o = old[doc.name] {
                    if o != doc { add(.change, diffSection, doc.name); documents.append((.change, doc, i + 1)) }
                } else {
                    add(.add, diffSection, doc.name); documents.append((.add, doc, i + 1))
                }
            }
            if replace.contains(diffSection) {
                let names = Set(new.map(\.name))
                for doc in stored.documents where doc.section == section && !names.contains(doc.name) {
                    add(.remove, diffSection, doc.name); documents.append((.remove, doc, 0))
                }
            }
        }
    }

    private mutating func add(_ op: Op, _ section: Section, _ label: String) {
        entries.append(Entry(op: op, section: section, label: label))
    }
}
