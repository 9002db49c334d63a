/// One row of a directory statement's result, its values left where they are (a
/// `PGresult`'s buffers): what `DirectoryUserRenderer` reads. nil: NULL.
public struct RawDirectoryRow {
    public var kind: DirectoryRow.Kind
    public var id: Int64
    public var parent: Int64?
    public var a, b, c, d, e: UnsafeBufferPointer<UInt8>?
    public var position: Int
    public var rank: Int
    /// A setting row's kind (from `a`; nil: not one fsconf renders, or no name).
    var setting: Setting.Kind?

    public init(kind: DirectoryRow.Kind, id: Int64, parent: Int64?, a: UnsafeBufferPointer<UInt8>?,
                b: UnsafeBufferPointer<UInt8>?, c: UnsafeBufferPointer<UInt8>?, d: UnsafeBufferPointer<UInt8>?,
                e: UnsafeBufferPointer<UInt8>?, position: Int, rank: Int) {
        self.kind = kind; self.id = id; self.parent = parent
        self.a = a; self.b = b; self.c = c; self.d = d; self.e = e
        self.position = position; self.rank = rank
    }
}

/// Renders a user lookup (`DirectoryQuery.user`) straight from the statement's
/// rows: values are escaped from the result's bytes, and no `DirectoryRow`,
/// `DirectoryData` or string per value is made (an uncached lookup spent a third
/// of the library's instructions making and freeing them: docs/performance.md).
/// The answer is `DirectoryRenderer`'s byte for byte; rows this renderer does not
/// take on (variants of an entity for some nodes, two settings at one position,
/// the same id twice) make it return nil, and the caller renders them the general way.
public struct DirectoryUserRenderer {
    /// What `render` produced: the answer, and the cache tags when asked for.
    public struct Rendered {
        public var answer: DirectoryRenderer.Answer
        public var tags: CacheTags?
    }

    /// More rows than a user lookup has: the general way.
    static let maxRows = 256

    private var rows: [RawDirectoryRow]
    private var expander: VariableExpander
    private var w = XMLWriter(capacity: 4096)   // a user answer is ~2.5 KB: no regrowth
    /// Two settings of one entity at one position: the general way orders them by name.
    private var tie = false
    private var held = false

    private init(rows: [RawDirectoryRow], expander: VariableExpander) {
        self.rows = rows; self.expander = expander
    }

    /// `rows`' bytes must stay valid during the call. `globals` gets the `V` rows'
    /// values (empty when the statement sent none) and returns the globals to render
    /// with (the node's copy, or those).
    public static func render(_ rows: [RawDirectoryRow], domain wanted: String, user: String, key: String,
                              globals: ([String: String]) -> [String: String],
                              node: @escaping (String) -> String?, tags wantTags: Bool) -> Rendered? {
        guard rows.count <= maxRows else { return nil }
        var kept: [RawDirectoryRow] = []
        kept.reserveCapacity(rows.count)
        var fromRows: [String: String] = [:]
        for var row in rows {
            // Bytes that are not UTF-8 (a SQL_ASCII database passes them through): the
            // general way decodes them with replacement characters; copied, they would not be XML.
            guard validUTF8(row.a), validUTF8(row.b), validUTF8(row.c), validUTF8(row.d), validUTF8(row.e) else { return nil }
            switch row.kind {
            case .domain, .user, .gateway, .globalVariable:
                // Variants for some nodes: which one wins is the general path's (Precedence).
                if row.rank != 0 { return nil }
            default: break
            }
            switch row.kind {
            case .globalVariable:
                if let name = row.a { fromRows[string(name)] = row.b.map(string) ?? "" }
                continue
            case .domainSetting, .groupSetting, .userSetting, .gatewaySetting:
                row.setting = settingKind(row)
            default: break
            }
            kept.append(row)
        }
        // The same entity twice: the general way keeps the last one.
        for i in kept.indices where kept[i].kind.isEntity {
            for j in (i + 1)..<kept.count where kept[j].id == kept[i].id && kept[j].kind == kept[i].kind { return nil }
        }
        var r = DirectoryUserRenderer(rows: kept, expander: VariableExpander(globals: globals(fromRows), node: node))
        return r.renderUser(domain: wanted, user: user, key: key, tags: wantTags)
    }

    private mutating func renderUser(domain wanted: String, user: String, key: String, tags wantTags: Bool) -> Rendered? {
        let n = rows.count
        var domains: [Int] = [], allUsers: [Int] = []
        for i in 0..<n {
            if rows[i].kind == .domain { domains.append(i) } else if rows[i].kind == .user { allUsers.append(i) }
        }
        sort(&domains) { $0.id < $1.id }

        // The domain: exact names first; a `$${…}` name only as the node expands it.
        var picked: Int?
        for d in domains where !VariableExpander.hasReference(a(d)) && Self.same(a(d), wanted) { picked = d; break }
        if picked == nil {
            for d in domains where VariableExpander.hasReference(a(d)) && same(expanding: a(d), wanted) { picked = d; break }
        }
        guard let domain = picked else {
            return Rendered(answer: DirectoryRenderer.Answer(xml: FreeSWITCHDocument.notFound),
                            tags: wantTags ? tags(domains, allUsers, wanted, user, key, found: false) : nil)
        }
        let domainID = rows[domain].id
        var users: [Int] = []
        for u in usersOf(domainID, allUsers) {
            let match: Bool
            switch key {
            case "id": match = same(expanding: a(u), user) || (rows[u].b.map { same(expanding: $0, user) } ?? false)
            case "number-alias": match = rows[u].b.map { same(expanding: $0, user) } ?? false
            default: match = true
            }
            if match { users.append(u) }
        }

        FreeSWITCHDocument.begin(&w, section: "directory")
        w.start("domain")
        attribute("name", expanding: a(domain))
        let domainSettings = settings(.domainSetting, of: domainID)
        for s in domainSettings where rows[s].setting == .attribute { attribute(name: rows[s].b!, expanding: rows[s].c) }
        w.finish(selfClosing: false)
        renderSettings(domainSettings)

        // Users in their home groups (in group order), then the domain's direct users.
        var groups = children(.group, of: domainID)
        sort(&groups) { ($0.position, $0.id) < ($1.position, $1.id) }
        var anyGrouped = false
        for g in groups where users.contains(where: { homeGroup($0) == rows[g].id }) {
            if !anyGrouped { w.open("groups"); anyGrouped = true }
            w.start("group")
            attribute("name", expanding: a(g))
            w.finish(selfClosing: false)
            renderSettings(settings(.groupSetting, of: rows[g].id))
            w.open("users")
            for u in users where homeGroup(u) == rows[g].id { renderUser(u, domain: domain) }
            w.close("users")
            w.close("group")
        }
        if anyGrouped { w.close("groups") }
        for u in users where !groups.contains(where: { rows[$0].id == homeGroup(u) }) { renderUser(u, domain: domain) }
        w.close("domain")
        FreeSWITCHDocument.end(&w)
        if tie { return nil }
        var facts = DirectoryRenderer.Answer(xml: w.string)
        facts.noSuchUser = users.isEmpty
        facts.heldByFreeSWITCH = held
        return Rendered(answer: facts, tags: wantTags ? tags(domains, allUsers, wanted, user, key, found: true) : nil)
    }

    private mutating func renderUser(_ u: Int, domain: Int) {
        let userSettings = settings(.userSetting, of: rows[u].id)
        var gateways = children(.gateway, of: rows[u].id)
        sort(&gateways) { ($0.position, $0.id) < ($1.position, $1.id) }
        let cacheable = effectiveCacheable(u, domain: domain)
        if cacheable != nil || userSettings.contains(where: { rows[$0].setting == .attribute && Self.equals(rows[$0].b!, "cacheable") }) {
            held = true
        }
        w.start("user")
        attribute("id", expanding: a(u))
        if let alias = rows[u].b { attribute("number-alias", expanding: alias) }
        if let cacheable { w.attribute("cacheable", bytes: cacheable) }
        for s in userSettings where rows[s].setting == .attribute { attribute(name: rows[s].b!, expanding: rows[s].c) }
        let extra = rows[u].e
        guard userSettings.contains(where: { rows[$0].setting != .attribute }) || !gateways.isEmpty || extra != nil else {
            w.finish(selfClosing: true)
            return
        }
        w.finish(selfClosing: false)
        renderSettings(userSettings)
        if !gateways.isEmpty {
            w.open("gateways")
            for g in gateways {
                let gatewaySettings = settings(.gatewaySetting, of: rows[g].id)
                w.start("gateway")
                attribute("name", expanding: a(g))
                w.finish(selfClosing: false)
                for s in gatewaySettings where rows[s].setting == .param {
                    w.start("param")
                    w.attribute("name", bytes: rows[s].b!)
                    attribute("value", expanding: rows[s].c)
                    w.finish(selfClosing: true)
                }
                var opened = false
                for s in gatewaySettings where rows[s].setting == .variable {
                    if !opened { w.open("variables"); opened = true }
                    w.start("variable")
                    w.attribute("name", bytes: rows[s].b!)
                    attribute("value", expanding: rows[s].c)
                    if let direction = rows[s].d { w.attribute("direction", bytes: direction) }
                    w.finish(selfClosing: true)
                }
                if opened { w.close("variables") }
                w.close("gateway")
            }
            w.close("gateways")
        }
        if let extra { w.raw(bytes: extra) }
        w.close("user")
    }

    /// Params, variables and profile variables, each in its container when any.
    private mutating func renderSettings(_ list: [Int]) {
        renderSettings(list, .param, container: "params", tag: "param")
        renderSettings(list, .variable, container: "variables", tag: "variable")
        renderSettings(list, .profileVariable, container: "profile-variables", tag: "variable")
    }

    private mutating func renderSettings(_ list: [Int], _ kind: Setting.Kind, container: String, tag: String) {
        var opened = false
        for s in list where rows[s].setting == kind {
            if !opened { w.open(container); opened = true }
            w.start(tag)
            w.attribute("name", bytes: rows[s].b!)
            attribute("value", expanding: rows[s].c)
            w.finish(selfClosing: true)
        }
        if opened { w.close(container) }
    }

    // MARK: Rows

    private func a(_ i: Int) -> UnsafeBufferPointer<UInt8> { rows[i].a ?? Self.empty }
    private static var empty: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: nil, count: 0) }

    private func children(_ kind: DirectoryRow.Kind, of parent: Int64) -> [Int] {
        var out: [Int] = []
        for i in rows.indices where rows[i].kind == kind && rows[i].parent == parent { out.append(i) }
        return out
    }

    /// The users of a domain in stored order.
    private func usersOf(_ domainID: Int64, _ all: [Int]) -> [Int] {
        var list = all.filter { rows[$0].parent == domainID }
        sort(&list) { ($0.position, $0.id) < ($1.position, $1.id) }
        return list
    }

    /// An entity's settings that fsconf renders, by position (a tie: `tie`).
    private mutating func settings(_ kind: DirectoryRow.Kind, of parent: Int64) -> [Int] {
        var list: [Int] = []
        for i in rows.indices where rows[i].kind == kind && rows[i].parent == parent && rows[i].setting != nil { list.append(i) }
        sort(&list) { $0.position < $1.position }
        for j in list.indices.dropFirst() where rows[list[j]].position == rows[list[j - 1]].position { tie = true }
        return list
    }

    /// Insertion sort of row indexes (a handful each; usually in order already).
    private func sort(_ list: inout [Int], by less: (RawDirectoryRow, RawDirectoryRow) -> Bool) {
        guard list.count > 1 else { return }
        for i in 1..<list.count {
            let x = list[i]
            var j = i
            while j > 0 && less(rows[x], rows[list[j - 1]]) { list[j] = list[j - 1]; j -= 1 }
            list[j] = x
        }
    }

    private func homeGroup(_ u: Int) -> Int64? { rows[u].d.flatMap { Int64(Self.string($0)) } }

    /// The `cacheable` rendered for a user: its own, else its domain's; "false" and "" are not.
    private func effectiveCacheable(_ u: Int, domain: Int) -> UnsafeBufferPointer<UInt8>? {
        guard let v = rows[u].c ?? rows[domain].b, v.count > 0, !Self.equals(v, "false") else { return nil }
        return v
    }

    /// The cache tags `CacheTags.directory` works out from the model, from the rows.
    private func tags(_ domains: [Int], _ allUsers: [Int], _ wanted: String, _ user: String, _ key: String,
                      found: Bool) -> CacheTags {
        var names = domains.map { Self.string(a($0)) }
        names.append(wanted)
        var users: [String]?
        if key == "id" || key == "number-alias" {
            var list = [user]
            for d in domains {
                for u in usersOf(rows[d].id, allUsers) {
                    list.append(Self.string(a(u)))
                    if let alias = rows[u].b { list.append(Self.string(alias)) }
                }
            }
            users = list
        }
        return CacheTags(section: Section.directory.rawValue, names: names, users: users, unresolved: !found)
    }

    // MARK: Values

    /// ` name="value"`, the value as the node expands it (its own bytes when it holds no reference).
    private mutating func attribute(_ name: String, expanding value: UnsafeBufferPointer<UInt8>?) {
        let v = value ?? Self.empty
        if !VariableExpander.hasReference(v) { w.attribute(name, bytes: v); return }
        w.attribute(name, expander.expand(Self.string(v)))
    }

    /// The same for a stored attribute's name.
    private mutating func attribute(name: UnsafeBufferPointer<UInt8>, expanding value: UnsafeBufferPointer<UInt8>?) {
        let v = value ?? Self.empty
        if !VariableExpander.hasReference(v) { w.attribute(bytes: name, v); return }
        var s = expander.expand(Self.string(v))
        s.withUTF8 { w.attribute(bytes: name, $0) }
    }

    /// `value`, as the node expands it, is `name` (ASCII case-insensitively, as FreeSWITCH compares).
    private mutating func same(expanding value: UnsafeBufferPointer<UInt8>, _ name: String) -> Bool {
        if !VariableExpander.hasReference(value) { return Self.same(value, name) }
        return sameIgnoringASCIICase(expander.expand(Self.string(value)), name)
    }

    private static func same(_ bytes: UnsafeBufferPointer<UInt8>, _ name: String) -> Bool {
        var name = name
        return name.withUTF8 { sameIgnoringASCIICase(bytes, $0) }
    }

    private static func settingKind(_ row: RawDirectoryRow) -> Setting.Kind? {
        guard let b = row.a, row.b != nil else { return nil }
        if equals(b, "param") { return .param }
        if equals(b, "variable") { return .variable }
        if equals(b, "attribute") { return .attribute }
        if equals(b, "profile-variable") { return .profileVariable }
        return nil
    }

    static func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

    /// True when the bytes are UTF-8 (NULL is): ASCII eight bytes at a time, the rest validated.
    static func validUTF8(_ bytes: UnsafeBufferPointer<UInt8>?) -> Bool {
        guard let bytes, let base = bytes.baseAddress else { return true }
        let n = bytes.count
        var i = 0
        while i + 8 <= n {
            if UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
            i += 8
        }
        while i < n && base[i] < 0x80 { i += 1 }
        return i == n || String(validating: UnsafeBufferPointer(rebasing: bytes[i...]), as: UTF8.self) != nil
    }

    static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        for i in 0..<bytes.count where bytes[i] != text.utf8Start[i] { return false }
        return true
    }
}

extension DirectoryRow.Kind {
    /// Domains, groups, users and gateways: a repeated one replaces the first.
    var isEntity: Bool { self == .domain || self == .group || self == .user || self == .gateway }
}
