/// Per-node views of a stored tree (docs/cluster.md): what `export --node` writes
/// and `diff --node` compares — the same choice among variants as the node's own
/// lookups make (FSConfCore `Precedence`, `NodeIdentity.rank`).

import FSConfCore

extension ConfigTree {
    /// What `node` gets: every entity it can see, of each identity the most
    /// specific variant, without scopes (a plain FreeSWITCH tree). A node with no
    /// name sees the unscoped entities only.
    public func view(for node: NodeIdentity) -> ConfigTree {
        var out = ConfigTree()
        func pick<T>(_ list: [T], unique: Bool, identity: (T) -> String?, scope: (T) -> Scope?, row: (T) -> RowID) -> [T] {
            Precedence.resolve(list, unique: unique, identity: identity, rank: { node.rank(scope($0)) },
                               id: { row($0).value ?? 0 })
        }
        out.globals = pick(globals, unique: true, identity: { $0.name }, scope: \.scope, row: \.row).map {
            var g = $0
            g.scope = nil
            return g
        }
        out.domains = pick(domains, unique: true, identity: { $0.key }, scope: \.scope, row: \.row).map { domain in
            var d = domain
            d.scope = nil
            d.users = pick(d.users, unique: true, identity: { $0.key }, scope: \.scope, row: \.row)
            // One gateway per name in a domain, whether the domain's or a user's.
            var all: [(owner: Int?, gateway: GatewayEntity)] = d.gateways.map { (nil, $0) }
            for (i, u) in d.users.enumerated() { all += u.gateways.map { (i, $0) } }
            let kept = pick(Array(all.enumerated()), unique: true, identity: { $0.element.gateway.name },
                            scope: { $0.element.gateway.scope }, row: { $0.element.gateway.row })
            let keep = Set(kept.map(\.offset))
            var n = 0
            func filter(_ list: [GatewayEntity]) -> [GatewayEntity] {
                var out: [GatewayEntity] = []
                for var g in list {
                    if keep.contains(n) { g.scope = nil; out.append(g) }
                    n += 1
                }
                return out
            }
            d.gateways = filter(d.gateways)
            for i in d.users.indices {
                d.users[i].gateways = filter(d.users[i].gateways)
                d.users[i].scope = nil
            }
            // Pointer members to users this node does not have are left out.
            let present = Set(d.users.map(\.key))
            for i in d.groups.indices { d.groups[i].members.removeAll { !present.contains($0.asciiLowercased) } }
            return d
        }
        out.contexts = pick(contexts, unique: true, identity: { $0.key }, scope: \.scope, row: \.row).map { context in
            var c = context
            c.scope = nil
            c.extensions = Precedence.resolve(c.extensions, unique: false, identity: { $0.name.isEmpty ? nil : $0.name },
                                              rank: { node.rank($0.scope) }, id: { _ in 0 }).map {
                var x = $0
                x.scope = nil
                return x
            }
            return c
        }
        out.documents = pick(documents, unique: true, identity: { "\($0.section.rawValue)/\($0.name)" }, scope: \.scope,
                             row: \.row).map { document in
            var doc = document
            doc.scope = nil
            doc.root = ConfigTree.view(doc.root, for: node)
            return doc
        }
        return out
    }

    static func view(_ element: ParsedElement, for node: NodeIdentity) -> ParsedElement {
        var e = element
        e.scope = nil
        e.children = Precedence.resolve(element.children, unique: false, identity: { c in
            c.attribute("name").map { c.name + "\u{0}" + $0 }
        }, rank: { node.rank($0.scope) }, id: { _ in 0 }).map { view($0, for: node) }
        return e
    }

    /// The same tree with its globals, domains, contexts and documents limited to
    /// `scope`: what an import into that scope stores (their contents stay unscoped).
    public func scoped(_ scope: Scope?) -> ConfigTree {
        var t = self
        for i in t.globals.indices { t.globals[i].scope = scope }
        for i in t.domains.indices { t.domains[i].scope = scope }
        for i in t.contexts.indices { t.contexts[i].scope = scope }
        for i in t.documents.indices { t.documents[i].scope = scope }
        return t
    }

    /// How many variants limited to some nodes the tree holds (at any depth).
    public var scopedCount: Int {
        func elements(_ e: ParsedElement) -> Int { e.children.reduce(e.scope == nil ? 0 : 1) { $0 + elements($1) } }
        var n = globals.filter { $0.scope != nil }.count + contexts.filter { $0.scope != nil }.count
        for d in domains {
            n += (d.scope == nil ? 0 : 1) + d.gateways.filter { $0.scope != nil }.count
            for u in d.users { n += (u.scope == nil ? 0 : 1) + u.gateways.filter { $0.scope != nil }.count }
        }
        for c in contexts { n += c.extensions.filter { $0.scope != nil }.count }
        for doc in documents { n += (doc.scope == nil ? 0 : 1) + elements(doc.root) }
        return n
    }
}

extension ConfigTree {
    public var isEmpty: Bool { globals.isEmpty && domains.isEmpty && contexts.isEmpty && documents.isEmpty }

    /// This tree's globals, domains, contexts and documents equal to those of
    /// `base` (what every node gets) apart from the others: a site's import need
    /// not store again what it shares with every node.
    public func splittingShared(with base: ConfigTree) -> (rest: ConfigTree, shared: ConfigTree) {
        var rest = ConfigTree(), shared = ConfigTree()
        let globals = Dictionary(base.globals.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for g in self.globals { if globals[g.name] == g { shared.globals.append(g) } else { rest.globals.append(g) } }
        let domains = Dictionary(base.domains.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        for d in self.domains {
            if let b = domains[d.key], b.settingsGroupedByKind == d.settingsGroupedByKind { shared.domains.append(d) } else { rest.domains.append(d) }
        }
        let contexts = Dictionary(base.contexts.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        for c in self.contexts { if contexts[c.key] == c { shared.contexts.append(c) } else { rest.contexts.append(c) } }
        func key(_ d: DocumentEntity) -> String { "\(d.section.rawValue)/\(d.name)" }
        let documents = Dictionary(base.documents.map { (key($0), $0) }, uniquingKeysWith: { a, _ in a })
        for d in self.documents { if documents[key(d)] == d { shared.documents.append(d) } else { rest.documents.append(d) } }
        return (rest, shared)
    }
}

extension DomainEntity {
    /// The domain with its settings grouped by kind, as an XML tree holds them.
    var settingsGroupedByKind: DomainEntity {
        var t = ConfigTree()
        t.domains = [self]
        return t.settingsGroupedByKind.domains[0]
    }
}

extension ConfigDiff {
    /// Removes the entities of `shared` that `stored` holds (an import's entities
    /// now equal to every node's: the slice's own copies go).
    public mutating func removeStored(_ shared: ConfigTree, from stored: ConfigTree) {
        let globals = Set(stored.globals.map(\.name))
        for g in shared.globals where globals.contains(g.name) {
            entries.append(Entry(op: .remove, section: .globals, label: "\(g.name) (every node's)"))
            self.globals.append((.remove, g, 0))
        }
        let domainKeys = Set(stored.domains.map(\.key))
        for d in shared.domains where domainKeys.contains(d.key) {
            entries.append(Entry(op: .remove, section: .directory, label: "domain \(d.name) (every node's)"))
            domains.append((.remove, d, 0))
        }
        let contextKeys = Set(stored.contexts.map(\.key))
        for c in shared.contexts where contextKeys.contains(c.key) {
            entries.append(Entry(op: .remove, section: c.section == .chatplan ? .chatplan : .dialplan, label: "context \(c.name) (every node's)"))
            contexts.append((.remove, c, 0))
        }
        let documentKeys = Set(stored.documents.map { "\($0.section.rawValue)/\($0.name)" })
        for d in shared.documents where documentKeys.contains("\(d.section.rawValue)/\(d.name)") {
            entries.append(Entry(op: .remove, section: d.section == .configuration ? .configuration : .languages, label: "\(d.name) (every node's)"))
            documents.append((.remove, d, 0))
        }
    }
}
