import FSConfAdminCore
import FSConfCore

/// The stored configuration documents (fsconf.documents/elements/attributes) as
/// flat rows, and the global variables: the state the agent compares before and
/// after a change set. Reverting a change set's rows gives the state before it,
/// exactly, from the jsonb rows the triggers recorded.
public struct ConfigState: Equatable, Sendable {
    public struct Document: Equatable, Sendable {
        public var section: String; public var name: String
        /// The nodes this variant is for (docs/cluster.md); nil: every node.
        public var scope: Scope? = nil
    }
    public struct Element: Equatable, Sendable {
        public var document: Int64; public var parent: Int64?; public var position: Int64
        public var tag: String; public var text: String?
        public var scope: Scope? = nil
    }
    public struct GlobalVariant: Equatable, Sendable { public var name: String; public var value: String; public var scope: Scope }
    public struct Attribute: Equatable, Sendable { public var value: String; public var position: Int64 }
    public struct AttributeKey: Hashable, Sendable { public var element: Int64; public var name: String }

    public var documents: [Int64: Document] = [:]
    public var elements: [Int64: Element] = [:]
    public var attributes: [AttributeKey: Attribute] = [:]
    /// Every node's global variables.
    public var globals: [String: String] = [:]
    /// Global variables limited to some nodes, by row id.
    public var scopedGlobals: [Int64: GlobalVariant] = [:]
    /// The node the agent runs for: `tree` and `nodeGlobals` are what it gets.
    public var node = NodeIdentity(name: nil)

    public init() {}

    public mutating func addDocument(id: Int64, section: String, name: String, scope: Scope? = nil) {
        documents[id] = Document(section: section, name: name, scope: scope)
    }
    public mutating func addElement(id: Int64, document: Int64, parent: Int64?, position: Int64, tag: String, text: String?,
                                    scope: Scope? = nil) {
        elements[id] = Element(document: document, parent: parent, position: position, tag: tag, text: text, scope: scope)
    }
    public mutating func addGlobal(id: Int64, name: String, value: String, scope: Scope?) {
        if let scope { scopedGlobals[id] = GlobalVariant(name: name, value: value, scope: scope) } else { globals[name] = value }
    }

    /// The global variables the node gets: every node's, overridden by the most
    /// specific variant it can see (`Precedence`; ties: the lowest id).
    public var nodeGlobals: [String: String] {
        guard !scopedGlobals.isEmpty else { return globals }
        var out = globals
        var best: [String: (rank: Int, id: Int64)] = [:]
        for (id, g) in scopedGlobals {
            guard let r = node.rank(g.scope) else { continue }
            if let b = best[g.name], b.rank > r || (b.rank == r && b.id < id) { continue }
            best[g.name] = (r, id)
            out[g.name] = g.value
        }
        return out
    }
    public mutating func addAttribute(element: Int64, name: String, value: String, position: Int64) {
        attributes[AttributeKey(element: element, name: name)] = Attribute(value: value, position: position)
    }

    /// Undoes one row change (the state before it).
    public mutating func revert(_ change: ChangeRow) {
        set(change.table, remove: change.new, put: change.old)
    }

    /// Redoes one row change (the state after it).
    public mutating func apply(_ change: ChangeRow) {
        set(change.table, remove: change.old, put: change.new)
    }

    /// The state before `set`, given the state after it.
    public func before(_ set: ChangeSet) -> ConfigState {
        var s = self
        for row in set.rows.reversed() { s.revert(row) }
        return s
    }

    private mutating func set(_ table: String, remove: [String: AgentJSON]?, put: [String: AgentJSON]?) {
        switch table {
        case "documents":
            if let r = remove, let id = r["id"]?.int { documents[id] = nil }
            if let r = put, let id = r["id"]?.int {
                documents[id] = Document(section: r["section"]?.text ?? "", name: r["name"]?.text ?? "", scope: ChangeRow.scope(r))
            }
        case "elements":
            if let r = remove, let id = r["id"]?.int { elements[id] = nil }
            if let r = put, let id = r["id"]?.int, let doc = r["document_id"]?.int {
                elements[id] = Element(document: doc, parent: r["parent_id"]?.int, position: r["position"]?.int ?? 0,
                                       tag: r["tag"]?.text ?? "", text: r["text"]?.text, scope: ChangeRow.scope(r))
            }
        case "attributes":
            if let r = remove, let e = r["element_id"]?.int, let n = r["name"]?.text {
                attributes[AttributeKey(element: e, name: n)] = nil
            }
            if let r = put, let e = r["element_id"]?.int, let n = r["name"]?.text {
                attributes[AttributeKey(element: e, name: n)] = Attribute(value: r["value"]?.text ?? "", position: r["position"]?.int ?? 0)
            }
        case "global_variables":
            if let r = remove, let n = r["name"]?.text {
                if ChangeRow.scope(r) == nil { globals[n] = nil } else if let id = r["id"]?.int { scopedGlobals[id] = nil }
            }
            if let r = put, let n = r["name"]?.text {
                addGlobal(id: r["id"]?.int ?? 0, name: n, value: r["value"]?.text ?? "", scope: ChangeRow.scope(r))
            }
        default:
            break
        }
    }

    /// The document `name` of `section` as a tree, or nil when it is not stored:
    /// what `node` gets of it (the most specific variant of the document and of
    /// each element, docs/cluster.md).
    public func tree(_ name: String, section: String = "configuration") -> TreeNode? {
        let variants = documents.filter { $0.value.section == section && $0.value.name == name }.sorted { $0.key < $1.key }
        guard let docID = Precedence.resolve(variants, unique: true, identity: { _ in name }, rank: { node.rank($0.value.scope) },
                                             id: { $0.key }).first?.key else { return nil }
        var children: [Int64?: [(Int64, Element)]] = [:]
        for (id, e) in elements where e.document == docID { children[e.parent, default: []].append((id, e)) }
        var attrs: [Int64: [(String, Attribute)]] = [:]
        for (k, a) in attributes where elements[k.element]?.document == docID { attrs[k.element, default: []].append((k.name, a)) }
        func build(_ id: Int64, _ e: Element, depth: Int) -> TreeNode {
            let list = (attrs[id] ?? []).sorted { ($0.1.position, $0.0) < ($1.1.position, $1.0) }.map { ($0.0, $0.1.value) }
            let sorted = depth > 64 ? [] : (children[id] ?? []).sorted { ($0.1.position, $0.0) < ($1.1.position, $1.0) }
            let kids = Precedence.resolve(sorted, unique: false, identity: { c in
                attrs[c.0]?.first { $0.0 == "name" }.map { c.1.tag + "\u{0}" + $0.1.value }
            }, rank: { node.rank($0.1.scope) }, id: { $0.0 }).map { build($0.0, $0.1, depth: depth + 1) }
            return TreeNode(tag: e.tag, attributes: list, text: e.text, children: kids)
        }
        guard let root = (children[nil] ?? []).min(by: { $0.0 < $1.0 }) else { return nil }
        return build(root.0, root.1, depth: 0)
    }

    /// Names of the stored documents of a section.
    public func documentNames(section: String = "configuration") -> Set<String> {
        Set(documents.values.filter { $0.section == section }.map(\.name))
    }
}

/// One element of a stored document.
public struct TreeNode: Equatable, Sendable {
    public var tag: String
    public var attributes: [(String, String)]
    public var text: String?
    public var children: [TreeNode]

    public init(tag: String, attributes: [(String, String)] = [], text: String? = nil, children: [TreeNode] = []) {
        self.tag = tag; self.attributes = attributes; self.text = text; self.children = children
    }

    public static func == (a: TreeNode, b: TreeNode) -> Bool { a.signature == b.signature }

    public func attribute(_ name: String) -> String? { attributes.first { $0.0 == name }?.1 }
    public func children(_ tag: String) -> [TreeNode] { children.filter { $0.tag == tag } }
    public func child(_ tag: String) -> TreeNode? { children.first { $0.tag == tag } }

    /// A canonical text of the subtree: equal signatures, equal subtrees.
    public var signature: String {
        var out = "<" + tag
        for (n, v) in attributes { out += " \(n)=\(v.debugDescription)" }
        out += ">"
        if let text { out += text.debugDescription }
        for c in children { out += c.signature }
        return out + "</\(tag)>"
    }
}

/// What the agent needs to know of sofia.conf: per profile, its settings (all
/// that only a restart applies), the domains it serves or parses, its gateways.
public struct SofiaModel: Equatable, Sendable {
    public struct Domain: Equatable, Sendable {
        public var name: String; public var parse: Bool; public var alias: Bool
    }
    public struct Profile: Equatable, Sendable {
        public var name: String
        /// Everything but `<gateways>` (settings, aliases, domains...), canonical.
        public var settings: String
        public var domains: [Domain]
        /// Gateway name → canonical subtree.
        public var gateways: [String: String]
    }
    public var globalSettings: String
    /// Keyed by lower-cased name (FreeSWITCH compares profile names without case).
    public var profiles: [String: Profile]

    public init(_ root: TreeNode, expand: (String) -> String) {
        globalSettings = root.children("global_settings").map(\.signature).joined()
        var profiles: [String: Profile] = [:]
        for container in root.children("profiles") {
            for p in container.children("profile") {
                let name = expand(p.attribute("name") ?? "")
                if name.isEmpty { continue }
                var gateways: [String: String] = [:]
                for g in p.children("gateways").flatMap({ $0.children("gateway") }) {
                    let gname = expand(g.attribute("name") ?? "")
                    if !gname.isEmpty { gateways[gname] = g.signature }
                }
                let domains = p.children("domains").flatMap { $0.children("domain") }.map {
                    Domain(name: expand($0.attribute("name") ?? ""),
                           parse: SofiaModel.isTrue(expand($0.attribute("parse") ?? "")),
                           alias: SofiaModel.isTrue(expand($0.attribute("alias") ?? "")))
                }
                var rest = p
                rest.children.removeAll { $0.tag == "gateways" }
                // Expanded: a changed $${global} used in a setting is a changed setting.
                rest.attributes = rest.attributes.map { ($0.0, expand($0.1)) }
                profiles[name.lowercased()] = Profile(name: name, settings: SofiaModel.expanded(rest, expand).signature,
                                                      domains: domains, gateways: gateways)
            }
        }
        self.profiles = profiles
    }

    /// FreeSWITCH's switch_true.
    static func isTrue(_ v: String) -> Bool {
        ["yes", "on", "true", "t", "enabled", "active", "allow", "1"].contains(v.lowercased())
    }

    static func expanded(_ node: TreeNode, _ expand: (String) -> String) -> TreeNode {
        TreeNode(tag: node.tag, attributes: node.attributes.map { ($0.0, expand($0.1)) }, text: node.text.map(expand),
                 children: node.children.map { expanded($0, expand) })
    }

    /// Profiles that load the gateways of directory domain `domain` (parse="true"
    /// on `all` or on that domain), in name order.
    public func profilesParsing(_ domain: String) -> [String] {
        profiles.values.filter { p in
            p.domains.contains { $0.parse && ($0.name.lowercased() == "all" || $0.name.lowercased() == domain.lowercased()) }
        }.map(\.name).sorted()
    }

    /// Profiles that alias directory domains (alias="true" on `all` or on `domain`).
    public func profilesAliasing(_ domain: String) -> [String] {
        profiles.values.filter { p in
            p.domains.contains { $0.alias && ($0.name.lowercased() == "all" || $0.name.lowercased() == domain.lowercased()) }
        }.map(\.name).sorted()
    }
}
