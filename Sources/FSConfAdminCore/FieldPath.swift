/// Field paths: one syntax that addresses any stored field in any section
/// (docs/cli.md). Parsing and printing are pure; FSConfStore maps an address to rows.
///
///     globals/default_password
///     directory/example.com/user/1000/param/password
///     directory/example.com/user/1000/gateway/gw1/variable/caller[direction=inbound]
///     dialplan/default/extension[name=hold_music]/condition[1]/@expression
///     configuration/sofia.conf/profiles/profile[name=internal]/settings/param[name=sip-port]/@value
///
/// A path is steps separated by `/`. A step is a name followed by selectors:
/// `[N]` (the N-th, 1-based) or `[key=value]`, then optionally a scope block
/// `{node,…,@group}` naming the variant of an entity limited to those nodes and
/// node groups (docs/cluster.md): `gateway/gw1{sitea}`,
/// `param[name=sip-ip]{sitea,@eu}`. A step without a block names the unscoped
/// entity (every node). The last step may be `@name` (an attribute or column) or
/// `text()` (an element's character data). A name, key or value holding
/// `/ [ ] = @ "` `\`, a brace that is not part of a `${…}` reference, whitespace or
/// a control character, or an empty one, is written in double quotes with `\"` and
/// `\\` escapes: `directory/"my domain"/user/"a/b"`; `$${domain}` needs none.

import FSConfCore

public struct FieldPath: Equatable, Hashable, Sendable, CustomStringConvertible {
    public struct Step: Equatable, Hashable, Sendable {
        public var name: String
        public var selectors: [Selector]
        /// The variant's nodes and groups (`{…}`); nil: the unscoped entity.
        public var scope: Scope?
        public init(_ name: String, _ selectors: [Selector] = [], scope: Scope? = nil) {
            self.name = name; self.selectors = selectors; self.scope = scope
        }
    }

    public enum Selector: Equatable, Hashable, Sendable {
        case index(Int)
        case match(String, String)
    }

    public enum Leaf: Equatable, Hashable, Sendable {
        case attribute(String)
        case text
    }

    public var steps: [Step]
    public var leaf: Leaf?

    public init(_ steps: [Step], leaf: Leaf? = nil) { self.steps = steps; self.leaf = leaf }

    public var section: String { steps.first?.name ?? "" }

    /// Appends a step (returns a copy).
    public func appending(_ name: String, _ selectors: [Selector] = [], scope: Scope? = nil) -> FieldPath {
        var p = self
        p.steps.append(Step(name, selectors, scope: scope))
        return p
    }

    public func with(leaf: Leaf?) -> FieldPath {
        var p = self
        p.leaf = leaf
        return p
    }

    /// True when `self` is `other` or lies under it (step by step; a prefix with a
    /// leaf matches only that leaf).
    public func isUnder(_ prefix: FieldPath) -> Bool {
        guard prefix.steps.count <= steps.count, Array(steps.prefix(prefix.steps.count)) == prefix.steps else { return false }
        if let leaf = prefix.leaf { return prefix.steps.count == steps.count && self.leaf == leaf }
        return true
    }

    // MARK: Printing

    public var description: String {
        var out = steps.map { step -> String in
            var s = FieldPath.quote(step.name)
            for sel in step.selectors {
                switch sel {
                case .index(let n): s += "[\(n)]"
                case .match(let k, let v): s += "[\(FieldPath.quote(k))=\(FieldPath.quote(v))]"
                }
            }
            if let scope = step.scope { s += "{" + scope.description + "}" }
            return s
        }.joined(separator: "/")
        switch leaf {
        case .attribute(let a)?: out += (out.isEmpty ? "" : "/") + "@" + FieldPath.quote(a)
        case .text?: out += (out.isEmpty ? "" : "/") + "text()"
        case nil: break
        }
        return out
    }

    static func needsQuotes(_ s: String) -> Bool {
        if s.isEmpty || s == "text()" { return true }
        var previous: Unicode.Scalar?
        var inReference = false
        for u in s.unicodeScalars {
            switch u {
            case "/", "[", "]", "=", "@", "\"", "\\", " ": return true
            // Braces open a scope block, except `${…}` references.
            case "{":
                if previous != "$" || inReference { return true }
                inReference = true
            case "}":
                if !inReference { return true }
                inReference = false
            default: if u.value < 0x20 || u.value == 0x7F || u.properties.isWhitespace { return true }
            }
            previous = u
        }
        return inReference
    }

    public static func quote(_ s: String) -> String {
        guard needsQuotes(s) else { return s }
        var out = "\""
        for ch in s {
            if ch == "\"" || ch == "\\" { out.append("\\") }
            out.append(ch)
        }
        return out + "\""
    }

    // MARK: Parsing

    public static func parse(_ text: String) throws(FieldPathError) -> FieldPath {
        var p = Parser(Array(text.unicodeScalars))
        return try p.path()
    }

    struct Parser {
        let s: [Unicode.Scalar]
        var i = 0
        init(_ s: [Unicode.Scalar]) { self.s = s }

        var atEnd: Bool { i >= s.count }
        func peek() -> Unicode.Scalar? { i < s.count ? s[i] : nil }

        func fail(_ message: String) -> FieldPathError { FieldPathError(message: message, offset: i) }

        mutating func path() throws(FieldPathError) -> FieldPath {
            var steps: [Step] = []
            var leaf: Leaf?
            if atEnd { throw fail("empty path") }
            while true {
                if peek() == "@" {
                    i += 1
                    let name = try word(stopAtEquals: false)
                    if name.isEmpty { throw fail("expected an attribute name after @") }
                    leaf = .attribute(name)
                    if !atEnd { throw fail("@\(name) must be the last step") }
                    break
                }
                if peek() != "\"" && hasPrefix("text()") && (i + 6 == s.count) {
                    i += 6
                    leaf = .text
                    break
                }
                let start = i
                let name = try word(stopAtEquals: false)
                if i == start { throw fail(atEnd ? "path ends with /" : "empty step") }
                var selectors: [Selector] = []
                while peek() == "[" {
                    i += 1
                    let key = try word(stopAtEquals: true)
                    if peek() == "=" {
                        i += 1
                        let value = try word(stopAtEquals: false)
                        if key.isEmpty { throw fail("empty selector key") }
                        selectors.append(.match(key, value))
                    } else {
                        guard let n = Int(key), n >= 1, !key.hasPrefix("+") else {
                            throw fail("selector [\(key)] is neither a position (1, 2...) nor key=value")
                        }
                        selectors.append(.index(n))
                    }
                    guard peek() == "]" else { throw fail("expected ]") }
                    i += 1
                }
                var scope: Scope?
                if peek() == "{" {
                    i += 1
                    var text = String.UnicodeScalarView()
                    while let c = peek(), c != "}" {
                        if c == "/" || c == "[" || c == "{" || c == "\"" { throw fail("expected } to close the scope") }
                        text.append(c)
                        i += 1
                    }
                    guard peek() == "}" else { throw fail("expected } to close the scope") }
                    switch Scope.parse(String(text)) {
                    case .success(let s): scope = s
                    case .failure(let e): throw fail("bad scope {\(String(text))}: \(e.message)")
                    }
                    i += 1
                }
                steps.append(Step(name, selectors, scope: scope))
                if atEnd { break }
                guard peek() == "/" else { throw fail("expected / after \(FieldPath.quote(name))") }
                i += 1
                if atEnd { throw fail("path ends with /") }
            }
            if steps.isEmpty { throw fail("a path starts with a section: globals, directory, dialplan, chatplan, configuration or languages") }
            return FieldPath(steps, leaf: leaf)
        }

        func hasPrefix(_ t: String) -> Bool {
            let u = Array(t.unicodeScalars)
            guard i + u.count <= s.count else { return false }
            return Array(s[i..<(i + u.count)]) == u
        }

        /// A bare or quoted word. Bare words stop at / [ ] = (when asked), at a `{`
        /// that opens a scope block and at the end; `${…}` references are part of them.
        mutating func word(stopAtEquals: Bool) throws(FieldPathError) -> String {
            var out = String.UnicodeScalarView()
            if peek() == "\"" {
                i += 1
                while true {
                    guard let c = peek() else { throw fail("unterminated quote") }
                    i += 1
                    if c == "\"" { break }
                    if c == "\\" {
                        guard let n = peek() else { throw fail("unterminated quote") }
                        guard n == "\"" || n == "\\" else { throw fail("unknown escape \\\(n) (only \\\" and \\\\)") }
                        out.append(n)
                        i += 1
                    } else {
                        out.append(c)
                    }
                }
                return String(out)
            }
            while let c = peek() {
                if c == "/" || c == "[" || c == "]" { break }
                if c == "{" {
                    guard out.last == "$" else { break }
                    // A `${name}` / `$${name}` reference: kept whole.
                    while let r = peek() {
                        out.append(r)
                        i += 1
                        if r == "}" { break }
                        if r == "/" || r == "[" || r == "]" { throw fail("unterminated ${…} reference") }
                    }
                    if out.last != "}" { throw fail("unterminated ${…} reference") }
                    continue
                }
                if c == "}" { throw fail("} without a scope block or ${…} reference (quote the name)") }
                if c == "=" { if stopAtEquals { break }; throw fail("= must be quoted outside a selector") }
                if c == "\"" { throw fail("a quote may only open a name") }
                if c == "\\" { throw fail("\\ must be inside quotes") }
                if c.value < 0x20 || c.value == 0x7F || c.properties.isWhitespace { throw fail("whitespace or control characters must be inside quotes") }
                out.append(c)
                i += 1
            }
            return String(out)
        }
    }
}

public struct FieldPathError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public init(message: String, offset: Int) { self.message = message; self.offset = offset }
    public var description: String { "bad path (at character \(offset + 1)): \(message)" }
}

// MARK: - Typed addresses

/// What a path names, per section, before any database lookup.
public enum FieldAddress: Equatable, Sendable {
    case globals(name: String?, scope: Scope? = nil)
    case directory(DirectoryAddress)
    case dialplan(DialplanAddress)
    case tree(TreeAddress)

    public static let sections = ["globals", "directory", "dialplan", "chatplan", "configuration", "languages"]

    /// A step selects the only one, the N-th, or the one whose key matches.
    public enum Pick: Equatable, Hashable, Sendable {
        case only
        case index(Int)
        case match(String, String)
    }

    public static func resolve(_ path: FieldPath) throws(FieldPathError) -> FieldAddress {
        let bad = { (m: String) in FieldPathError(message: m, offset: 0) }
        guard let first = path.steps.first else { throw bad("empty path") }
        guard first.selectors.isEmpty else { throw bad("the section takes no selector") }
        try unscoped(first, "the section")
        let rest = Array(path.steps.dropFirst())
        switch first.name {
        case "globals":
            if path.leaf != nil { throw bad("globals/NAME is the field (no @ or text())") }
            guard rest.count <= 1 else { throw bad("globals takes one name: globals/NAME") }
            if let s = rest.first, !s.selectors.isEmpty { throw bad("globals/NAME takes no selector") }
            return .globals(name: rest.first?.name, scope: rest.first?.scope)
        case "directory":
            return .directory(try DirectoryAddress.resolve(rest, leaf: path.leaf))
        case "dialplan", "chatplan":
            var address = try DialplanAddress.resolve(rest, leaf: path.leaf)
            address.section = first.name == "chatplan" ? .chatplan : .dialplan
            return .dialplan(address)
        case "configuration", "languages":
            return .tree(try TreeAddress.resolve(first.name == "languages" ? .languages : .configuration, rest, leaf: path.leaf))
        default:
            throw bad("unknown section \"\(first.name)\": globals, directory, dialplan, chatplan, configuration or languages")
        }
    }

    /// Steps that name no scoped entity take no `{…}` block.
    static func unscoped(_ step: FieldPath.Step, _ what: String? = nil) throws(FieldPathError) {
        guard step.scope != nil else { return }
        throw FieldPathError(message: "\(what ?? step.name) takes no scope: only globals, domains, users, gateways, contexts, extensions, documents and elements are limited to nodes", offset: 0)
    }

    static func pick(_ step: FieldPath.Step, allowMatch: Bool) throws(FieldPathError) -> Pick {
        guard step.selectors.count <= 1 else {
            throw FieldPathError(message: "\(step.name) takes one selector", offset: 0)
        }
        switch step.selectors.first {
        case nil: return .only
        case .index(let n)?: return .index(n)
        case .match(let k, let v)?:
            guard allowMatch else { throw FieldPathError(message: "\(step.name) is selected by position: \(step.name)[N]", offset: 0) }
            return .match(k, v)
        }
    }
}

/// `directory/DOMAIN[/group/G | /user/U][/gateway/GW][/KIND/NAME | /member/U | /@column]`.
public struct DirectoryAddress: Equatable, Sendable {
    public enum Owner: Equatable, Sendable {
        case domain
        case group(String)
        case user(String)
    }

    public enum Field: Equatable, Sendable {
        /// A `*_settings` / `gateway_settings` row; `direction` only for gateway variables.
        case setting(kind: Setting.Kind, name: String, direction: String?)
        /// A column of the addressed entity (`@cacheable`, `@number-alias`...).
        case column(String)
        /// A `group_members` row.
        case member(String)
    }

    public var domain: String?
    public var owner: Owner = .domain
    public var gateway: String?
    public var field: Field?
    /// The variants named (`{…}`; nil: the unscoped one) of the domain, the user and the gateway.
    public var domainScope: Scope?
    public var userScope: Scope?
    public var gatewayScope: Scope?

    public init(domain: String?, owner: Owner = .domain, gateway: String? = nil, field: Field? = nil,
                domainScope: Scope? = nil, userScope: Scope? = nil, gatewayScope: Scope? = nil) {
        self.domain = domain; self.owner = owner; self.gateway = gateway; self.field = field
        self.domainScope = domainScope; self.userScope = userScope; self.gatewayScope = gatewayScope
    }

    /// Columns per entity: path name → SQL column.
    public static let domainColumns = ["name": "name", "cacheable": "cacheable"]
    public static let groupColumns = ["name": "name"]
    public static let userColumns = ["id": "user_id", "number-alias": "number_alias", "cacheable": "cacheable",
                                     "enabled": "enabled", "group": "home_group_id", "extra-xml": "extra_xml"]
    public static let gatewayColumns = ["name": "name"]
    public static let kinds: [String: Setting.Kind] = ["param": .param, "variable": .variable,
                                                       "profile-variable": .profileVariable, "attribute": .attribute]

    static func resolve(_ steps: [FieldPath.Step], leaf: FieldPath.Leaf?) throws(FieldPathError) -> DirectoryAddress {
        func bad(_ m: String) -> FieldPathError { FieldPathError(message: m, offset: 0) }
        if leaf == .text { throw bad("directory fields have no text()") }
        guard let d = steps.first else {
            if leaf != nil { throw bad("directory/DOMAIN/@column") }
            return DirectoryAddress(domain: nil)
        }
        guard d.selectors.isEmpty else { throw bad("a domain takes no selector") }
        var a = DirectoryAddress(domain: d.name, domainScope: d.scope)
        var i = 1
        func plain(_ s: FieldPath.Step) throws(FieldPathError) -> String {
            guard s.selectors.isEmpty else { throw bad("\(s.name) takes no selector") }
            try FieldAddress.unscoped(s)
            return s.name
        }
        if i < steps.count, steps[i].name == "group" || steps[i].name == "user" {
            guard i + 1 < steps.count else { throw bad("\(steps[i].name) needs a name: \(steps[i].name)/NAME") }
            try FieldAddress.unscoped(steps[i])
            var nameStep = steps[i + 1]
            if steps[i].name == "group" {
                if nameStep.scope != nil { throw bad("groups take no scope: scope their users") }
            } else {
                a.userScope = nameStep.scope
                nameStep.scope = nil
            }
            let n = try plain(nameStep)
            a.owner = steps[i].name == "group" ? .group(n) : .user(n)
            i += 2
        }
        if i < steps.count, steps[i].name == "gateway" {
            if case .group = a.owner { throw bad("groups have no gateways") }
            guard i + 1 < steps.count else { throw bad("gateway needs a name: gateway/NAME") }
            try FieldAddress.unscoped(steps[i])
            var nameStep = steps[i + 1]
            a.gatewayScope = nameStep.scope
            nameStep.scope = nil
            a.gateway = try plain(nameStep)
            i += 2
        }
        if i < steps.count {
            let s = steps[i]
            guard s.selectors.isEmpty else { throw bad("\(s.name) takes no selector") }
            try FieldAddress.unscoped(s)
            if s.name == "member" {
                guard case .group = a.owner, a.gateway == nil else { throw bad("member/USER belongs to a group") }
                guard i + 2 == steps.count, leaf == nil else { throw bad("member/USER is the end of the path") }
                a.field = .member(try plain(steps[i + 1]))
                return a
            }
            guard let kind = kinds[s.name] else {
                throw bad("expected param, variable, profile-variable, attribute\(a.gateway == nil ? ", group, user, gateway" : "")\(a.owner.isGroup ? ", member" : "") or @column; got \(s.name)")
            }
            if a.gateway != nil, kind != .param && kind != .variable { throw bad("gateways hold param and variable") }
            guard i + 2 == steps.count, leaf == nil else { throw bad("\(s.name)/NAME is the end of the path") }
            let nameStep = steps[i + 1]
            try FieldAddress.unscoped(nameStep, "\(s.name)/\(nameStep.name)")
            var direction: String?
            for sel in nameStep.selectors {
                guard case .match("direction", let v) = sel, a.gateway != nil, kind == .variable,
                      v == "inbound" || v == "outbound" else {
                    throw bad("only gateway variables take a selector: variable/NAME[direction=inbound|outbound]")
                }
                direction = v
            }
            a.field = .setting(kind: kind, name: nameStep.name, direction: direction)
            return a
        }
        if case .attribute(let column)? = leaf {
            let allowed: [String: String]
            if a.gateway != nil { allowed = gatewayColumns } else {
                switch a.owner {
                case .domain: allowed = domainColumns
                case .group: allowed = groupColumns
                case .user: allowed = userColumns
                }
            }
            guard allowed[column] != nil else {
                throw bad("@\(column) is not a column here; known: \(allowed.keys.sorted().map { "@" + $0 }.joined(separator: ", "))")
            }
            a.field = .column(column)
        }
        return a
    }

}

extension DirectoryAddress.Owner {
    var isGroup: Bool { if case .group = self { return true }; return false }
}

/// `dialplan/CONTEXT[/extension[…]][/condition[N]…][/action[N] | /anti-action[N] | /regex[N]][/@column]`;
/// `chatplan/CONTEXT/…` alike.
public struct DialplanAddress: Equatable, Sendable {
    public enum Item: Equatable, Sendable {
        case action(FieldAddress.Pick)
        case antiAction(FieldAddress.Pick)
        case regex(FieldAddress.Pick)
    }

    public var section: PlanSection = .dialplan
    public var context: String?
    /// The variants named (`{…}`; nil: the unscoped one) of the context and the extension.
    public var contextScope: Scope?
    public var extensionScope: Scope?
    public var extensionPick: FieldAddress.Pick?
    /// Condition picks from the extension down (nested conditions).
    public var conditions: [FieldAddress.Pick] = []
    public var item: Item?
    public var column: String?

    public init(context: String?) { self.context = context }

    public static let extensionColumns = ["name": "name", "continue": "continue", "enabled": "enabled"]
    public static let conditionColumns: [String: String] = Dictionary(uniqueKeysWithValues: ConditionEntity.columns.map { ($0.xml, $0.column) })
    public static let actionColumns = ["application": "application", "data": "data", "inline": "inline", "loop": "loop"]
    public static let regexColumns: [String: String] = ["field": "field", "expression": "expression"]
        .merging(ConditionEntity.timeColumns.map { ($0.xml, $0.column) }, uniquingKeysWith: { a, _ in a })
    public static let contextColumns = ["name": "name"]

    static func resolve(_ steps: [FieldPath.Step], leaf: FieldPath.Leaf?) throws(FieldPathError) -> DialplanAddress {
        func bad(_ m: String) -> FieldPathError { FieldPathError(message: m, offset: 0) }
        if leaf == .text { throw bad("dialplan fields have no text()") }
        guard let c = steps.first else {
            if leaf != nil { throw bad("dialplan/CONTEXT/@name") }
            return DialplanAddress(context: nil)
        }
        guard c.selectors.isEmpty else { throw bad("a context takes no selector") }
        var a = DialplanAddress(context: c.name)
        a.contextScope = c.scope
        var i = 1
        if i < steps.count {
            guard steps[i].name == "extension" else { throw bad("expected extension[name=…] or extension[N], got \(steps[i].name)") }
            let pick = try FieldAddress.pick(steps[i], allowMatch: true)
            if case .match(let k, _) = pick, k != "name" { throw bad("extensions are selected by [name=…] or [N]") }
            a.extensionPick = pick
            a.extensionScope = steps[i].scope
            i += 1
        }
        while i < steps.count, steps[i].name == "condition" {
            try FieldAddress.unscoped(steps[i])
            a.conditions.append(try FieldAddress.pick(steps[i], allowMatch: false))
            i += 1
        }
        if i < steps.count {
            let s = steps[i]
            try FieldAddress.unscoped(s)
            guard !a.conditions.isEmpty else { throw bad("\(s.name) belongs to a condition: …/condition[N]/\(s.name)[N]") }
            let pick = try FieldAddress.pick(s, allowMatch: false)
            switch s.name {
            case "action": a.item = .action(pick)
            case "anti-action": a.item = .antiAction(pick)
            case "regex": a.item = .regex(pick)
            default: throw bad("expected condition, action, anti-action or regex; got \(s.name)")
            }
            i += 1
        }
        if i < steps.count { throw bad("unexpected \(steps[i].name) after \(steps[i - 1].name)") }
        if case .attribute(let column)? = leaf {
            let allowed: [String: String]
            switch a.item {
            case .action?, .antiAction?: allowed = actionColumns
            case .regex?: allowed = regexColumns
            case nil:
                allowed = !a.conditions.isEmpty ? conditionColumns : a.extensionPick != nil ? extensionColumns : contextColumns
            }
            guard allowed[column] != nil else {
                throw bad("@\(column) is not an attribute here; known: \(allowed.keys.sorted().map { "@" + $0 }.joined(separator: ", "))")
            }
            a.column = column
        }
        return a
    }
}

/// `configuration|languages/DOCUMENT[/tag[…]…][/@attribute | /text()]`: element steps
/// start under the document's root element.
public struct TreeAddress: Equatable, Sendable {
    public var section: DocumentEntity.Section
    public var document: String?
    /// The document variant named (`{…}`; nil: the unscoped one).
    public var documentScope: Scope?
    /// Element steps; `scope`: the variant of that element (nil: the unscoped one).
    public var elements: [(tag: String, pick: FieldAddress.Pick, scope: Scope?)]
    public var leaf: FieldPath.Leaf?

    public init(section: DocumentEntity.Section, document: String?, documentScope: Scope? = nil,
                elements: [(tag: String, pick: FieldAddress.Pick, scope: Scope?)], leaf: FieldPath.Leaf?) {
        self.section = section; self.document = document; self.documentScope = documentScope
        self.elements = elements; self.leaf = leaf
    }

    public static func == (l: Self, r: Self) -> Bool {
        l.section == r.section && l.document == r.document && l.documentScope == r.documentScope && l.leaf == r.leaf
            && l.elements.map(\.tag) == r.elements.map(\.tag) && l.elements.map(\.pick) == r.elements.map(\.pick)
            && l.elements.map(\.scope) == r.elements.map(\.scope)
    }

    static func resolve(_ section: DocumentEntity.Section, _ steps: [FieldPath.Step], leaf: FieldPath.Leaf?) throws(FieldPathError) -> TreeAddress {
        func bad(_ m: String) -> FieldPathError { FieldPathError(message: m, offset: 0) }
        guard let d = steps.first else {
            if leaf != nil { throw bad("\(section.rawValue)/DOCUMENT/@attribute") }
            return TreeAddress(section: section, document: nil, elements: [], leaf: nil)
        }
        guard d.selectors.isEmpty else { throw bad("a document takes no selector") }
        var elements: [(tag: String, pick: FieldAddress.Pick, scope: Scope?)] = []
        for s in steps.dropFirst() { elements.append((s.name, try FieldAddress.pick(s, allowMatch: true), s.scope)) }
        return TreeAddress(section: section, document: d.name, documentScope: d.scope, elements: elements, leaf: leaf)
    }
}

// MARK: - Canonical steps

/// How a path names an item among its siblings. `fsconf list`, `history` and the
/// resolver all print paths with these rules, so a printed path always reads back.
public enum CanonicalStep {
    /// An extension: `[name=X]` when the name is unique in its context, else `[N]`.
    /// Names and ordinals count the extensions of the same scope (the variants
    /// `{…}` of one name are told apart by their blocks).
    public static func extensionStep(name: String, sameName: Int, ordinal: Int, scope: Scope? = nil) -> FieldPath.Step {
        sameName == 1 ? FieldPath.Step("extension", [.match("name", name)], scope: scope)
            : FieldPath.Step("extension", [.index(ordinal)], scope: scope)
    }

    /// An element: `tag[name=X]` when its name attribute is unique among same-tag
    /// siblings; `tag` when it is the only one with its tag; else `tag[N]` — counting
    /// the siblings of the same scope.
    public static func elementStep(tag: String, name: String?, sameTag: Int, sameTagSameName: Int, ordinal: Int,
                                   scope: Scope? = nil) -> FieldPath.Step {
        if let name, sameTagSameName == 1 { return FieldPath.Step(tag, [.match("name", name)], scope: scope) }
        if sameTag == 1 { return FieldPath.Step(tag, scope: scope) }
        return FieldPath.Step(tag, [.index(ordinal)], scope: scope)
    }
}
