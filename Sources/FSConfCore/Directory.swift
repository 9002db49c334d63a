/// What a directory lookup asks for, decided from the request alone.
public enum DirectoryQuery: Hashable, Sendable {
    /// A user (sip_auth, user_call, type=var, event_socket_auth, voicemail...):
    /// the domain, the user's home group, the user. `key` is `id`,
    /// `number-alias` or another user attribute.
    case user(domain: String, user: String, key: String)
    /// group_call: the domain and one group with its members.
    case group(domain: String, group: String)
    /// The domain itself; `users` says which users come with it.
    case domain(domain: String, users: DomainUsers)
    /// purpose=gateways: every domain (or one) with the users that carry gateways.
    case gateways(domain: String?)
    /// Nothing fsconf could hold (no domain named, or an implausible key).
    case none

    public enum DomainUsers: String, Hashable, Sendable { case none, cidr, all }

    public static func plan(_ request: LookupRequest) -> DirectoryQuery {
        let purpose = request.header("purpose")
        var domain = request.tagName == "domain" && request.keyName == "name" ? request.keyValue : ""
        if domain.isEmpty { domain = request.header("domain") ?? "" }
        if purpose == "gateways" {
            if domain.isEmpty { return .gateways(domain: nil) }
            return LookupRequest.isPlausibleKey(domain) ? .gateways(domain: domain) : .none
        }
        guard !domain.isEmpty, LookupRequest.isPlausibleKey(domain) else { return .none }
        if purpose == "network-list" { return .domain(domain: domain, users: .cidr) }
        if purpose == "publish-vm" { return .domain(domain: domain, users: .all) }
        if let user = request.header("user") {
            guard LookupRequest.isPlausibleKey(user) else { return .none }
            let key = request.header("key") ?? "id"
            guard LookupRequest.isPlausibleKey(key) else { return .none }
            return .user(domain: domain, user: user, key: key)
        }
        if let group = request.header("group_name") {
            guard LookupRequest.isPlausibleKey(group) else { return .none }
            return .group(domain: domain, group: group)
        }
        return .domain(domain: domain, users: .none)
    }
}

/// One row of a directory query, in the uniform shape every query returns:
/// a record type, the row's id, its parent's id, up to five values and, for
/// domains, users, gateways and global variables, how specifically the row's scope
/// names the asking node (`rank`: 0 every node, 1 a group, 2 by name; docs/cluster.md).
public struct DirectoryRow: Equatable, Sendable {
    public enum Kind: String, Sendable {
        case domain = "D", domainSetting = "DS", group = "G", groupSetting = "GS"
        case user = "U", userSetting = "US", member = "M", gateway = "W", gatewaySetting = "WS"
        case globalVariable = "V"

        /// The record type from its bytes (the statement's `rec` column), without a String.
        public init?(bytes: UnsafeBufferPointer<UInt8>) {
            let settings = bytes.count == 2 && bytes[1] == UInt8(ascii: "S")
            guard bytes.count == 1 || settings else { return nil }
            switch (bytes[0], settings) {
            case (UInt8(ascii: "D"), false): self = .domain
            case (UInt8(ascii: "D"), true): self = .domainSetting
            case (UInt8(ascii: "G"), false): self = .group
            case (UInt8(ascii: "G"), true): self = .groupSetting
            case (UInt8(ascii: "U"), false): self = .user
            case (UInt8(ascii: "U"), true): self = .userSetting
            case (UInt8(ascii: "M"), false): self = .member
            case (UInt8(ascii: "W"), false): self = .gateway
            case (UInt8(ascii: "W"), true): self = .gatewaySetting
            case (UInt8(ascii: "V"), false): self = .globalVariable
            default: return nil
            }
        }
    }
    public var kind: Kind
    public var id: Int64
    public var parent: Int64?
    public var a: String?, b: String?, c: String?, d: String?, e: String?
    public var position: Int
    public var rank: Int

    public init(kind: Kind, id: Int64, parent: Int64? = nil, a: String? = nil, b: String? = nil,
                c: String? = nil, d: String? = nil, e: String? = nil, position: Int = 0, rank: Int = 0) {
        self.kind = kind; self.id = id; self.parent = parent
        self.a = a; self.b = b; self.c = c; self.d = d; self.e = e; self.position = position; self.rank = rank
    }
}

public struct Setting: Equatable, Sendable {
    public enum Kind: String, Sendable { case param, variable, profileVariable = "profile-variable", attribute }
    public var kind: Kind
    public var name: String
    public var value: String
    public var direction: String?
    public var position: Int
}

public struct Gateway: Equatable, Sendable {
    public var id: Int64
    public var name: String
    public var settings: [Setting] = []
    public var position: Int
}

public struct DirectoryUser: Equatable, Sendable {
    public var id: Int64
    public var userID: String
    public var numberAlias: String?
    public var cacheable: String?
    public var homeGroup: Int64?
    public var extraXML: String?
    public var settings: [Setting] = []
    public var gateways: [Gateway] = []
    public var position: Int
}

public struct DirectoryGroup: Equatable, Sendable {
    public var id: Int64
    public var name: String
    public var settings: [Setting] = []
    /// Members reached through a pointer: (user id attribute, position).
    public var pointers: [(String, Int)] = []
    public var position: Int

    public static func == (l: Self, r: Self) -> Bool {
        l.id == r.id && l.name == r.name && l.settings == r.settings && l.position == r.position
            && l.pointers.map(\.0) == r.pointers.map(\.0)
    }
}

public struct DirectoryDomain: Equatable, Sendable {
    public var id: Int64
    public var name: String
    public var cacheable: String?
    public var settings: [Setting] = []
    public var groups: [DirectoryGroup] = []
    public var users: [DirectoryUser] = []
    public var gateways: [Gateway] = []   // domain-level gateways
}

/// Rows → domains, with everything in stored order.
public struct DirectoryData: Sendable {
    public var domains: [DirectoryDomain]
    public var globals: [String: String]

    /// One pass over flat arrays: the statements return parents before their
    /// settings (domains, groups, users, gateways, then theirs), so a setting is
    /// appended to its entity in place; lists are sorted only when out of order.
    /// A user lookup is some twenty rows: no dictionary of arrays per kind. Of the
    /// variants of a domain, user, gateway or global variable (docs/cluster.md),
    /// only the one the asking node gets is kept (`Precedence`, from the rows' ranks).
    public init(rows: [DirectoryRow]) {
        let dropped = DirectoryData.shadowed(rows)
        var domains: [DirectoryDomain] = [], domainAt = IndexMap()
        var groups: [(domain: Int64, group: DirectoryGroup)] = [], groupAt = IndexMap()
        var users: [(domain: Int64, user: DirectoryUser)] = [], userAt = IndexMap()
        var gateways: [(owner: Int64?, domain: Int64, gateway: Gateway)] = [], gatewayAt = IndexMap()
        var globals: [String: String] = [:]
        var pending: [DirectoryRow] = []   // settings and members whose entity came later

        func setting(_ row: DirectoryRow) -> Setting? {
            guard let kind = Setting.Kind(rawValue: row.a ?? ""), let name = row.b else { return nil }
            return Setting(kind: kind, name: name, value: row.c ?? "", direction: row.d, position: row.position)
        }
        /// Attaches a setting or a member to its entity; false when that entity is not (yet) there.
        func attach(_ row: DirectoryRow) -> Bool {
            guard let p = row.parent else { return true }
            switch row.kind {
            case .domainSetting:
                guard let i = domainAt[p] else { return false }
                if let s = setting(row) { domains[i].settings.append(s) }
            case .groupSetting:
                guard let i = groupAt[p] else { return false }
                if let s = setting(row) { groups[i].group.settings.append(s) }
            case .userSetting:
                guard let i = userAt[p] else { return false }
                if let s = setting(row) { users[i].user.settings.append(s) }
            case .gatewaySetting:
                guard let i = gatewayAt[p] else { return false }
                if let s = setting(row) { gateways[i].gateway.settings.append(s) }
            case .member:
                guard let i = groupAt[p] else { return false }
                groups[i].group.pointers.append((row.a ?? "", row.position))
            default:
                break
            }
            return true
        }
        for row in rows {
            if !dropped.isEmpty, dropped.contains(DirectoryData.RowKey(kind: row.kind, id: row.id)) { continue }
            switch row.kind {
            case .domain:
                let domain = DirectoryDomain(id: row.id, name: row.a ?? "", cacheable: row.b)
                if let i = domainAt[row.id] { domains[i] = domain } else { domainAt[row.id] = domains.count; domains.append(domain) }
            case .group:
                let group = (row.parent ?? 0, DirectoryGroup(id: row.id, name: row.a ?? "", position: row.position))
                if let i = groupAt[row.id] { groups[i] = group } else { groupAt[row.id] = groups.count; groups.append(group) }
            case .user:
                let user = (row.parent ?? 0, DirectoryUser(id: row.id, userID: row.a ?? "", numberAlias: row.b, cacheable: row.c,
                                                          homeGroup: row.d.flatMap { Int64($0) }, extraXML: row.e,
                                                          position: row.position))
                if let i = userAt[row.id] { users[i] = user } else { userAt[row.id] = users.count; users.append(user) }
            case .gateway:
                // parent: the owning user (nil for a domain gateway); e: the domain id.
                let gateway = (row.parent, row.e.flatMap { Int64($0) } ?? 0,
                               Gateway(id: row.id, name: row.a ?? "", position: row.position))
                if let i = gatewayAt[row.id] { gateways[i] = gateway } else { gatewayAt[row.id] = gateways.count; gateways.append(gateway) }
            case .domainSetting, .groupSetting, .userSetting, .gatewaySetting, .member:
                if !attach(row) { pending.append(row) }
            case .globalVariable:
                if let name = row.a { globals[name] = row.b ?? "" }
            }
        }
        for row in pending { _ = attach(row) }

        func settingOrder(_ a: Setting, _ b: Setting) -> Bool { (a.position, a.name) < (b.position, b.name) }
        for i in gateways.indices {
            gateways[i].gateway.settings.sortIfNeeded(by: settingOrder)
            if let owner = gateways[i].owner {
                if let u = userAt[owner] { users[u].user.gateways.append(gateways[i].gateway) }
            } else if let d = domainAt[gateways[i].domain] {
                domains[d].gateways.append(gateways[i].gateway)
            }
        }
        for i in users.indices {
            users[i].user.settings.sortIfNeeded(by: settingOrder)
            users[i].user.gateways.sortIfNeeded { ($0.position, $0.id) < ($1.position, $1.id) }
        }
        for (domain, var group) in groups {
            group.settings.sortIfNeeded(by: settingOrder)
            group.pointers.sortIfNeeded { ($0.1, $0.0) < ($1.1, $1.0) }
            if let d = domainAt[domain] { domains[d].groups.append(group) }
        }
        for (domain, user) in users { if let d = domainAt[domain] { domains[d].users.append(user) } }
        for i in domains.indices {
            domains[i].settings.sortIfNeeded(by: settingOrder)
            domains[i].groups.sortIfNeeded { ($0.position, $0.id) < ($1.position, $1.id) }
            domains[i].users.sortIfNeeded { ($0.position, $0.id) < ($1.position, $1.id) }
            domains[i].gateways.sortIfNeeded { ($0.position, $0.id) < ($1.position, $1.id) }
        }
        domains.sortIfNeeded { $0.id < $1.id }
        self.domains = domains
        self.globals = globals
    }

    struct RowKey: Hashable {
        var kind: DirectoryRow.Kind
        var id: Int64
    }

    /// The domain, user, gateway and global rows another variant wins over (their
    /// settings, groups and members go with them: nothing refers to a dropped id).
    static func shadowed(_ rows: [DirectoryRow]) -> Set<RowKey> {
        guard rows.contains(where: { $0.rank > 0 }) else { return [] }
        func losers(_ list: [DirectoryRow], identity: (DirectoryRow) -> String?) -> [RowKey] {
            let kept = Set(Precedence.resolve(list, unique: true, identity: identity, rank: { $0.rank }, id: { $0.id }).map(\.id))
            return list.filter { !kept.contains($0.id) }.map { RowKey(kind: $0.kind, id: $0.id) }
        }
        var out: Set<RowKey> = []
        let byID = { (k: DirectoryRow.Kind) in rows.filter { $0.kind == k }.sorted { $0.id < $1.id } }
        out.formUnion(losers(byID(.domain)) { $0.a?.asciiLowercased })
        let keptDomain = { (id: Int64?) in id.map { !out.contains(RowKey(kind: .domain, id: $0)) } ?? false }
        let users = byID(.user).filter { keptDomain($0.parent) }
        out.formUnion(byID(.user).filter { !keptDomain($0.parent) }.map { RowKey(kind: .user, id: $0.id) })
        out.formUnion(losers(users) { u in u.a.map { "\(u.parent ?? 0)\u{0}\($0.asciiLowercased)" } })
        // Gateways of a kept owner (a user, else the domain), one per name in a domain.
        let gateways = byID(.gateway).filter { w in
            let domain = w.e.flatMap { Int64($0) }
            guard keptDomain(domain) else { return false }
            return w.parent.map { !out.contains(RowKey(kind: .user, id: $0)) } ?? true
        }
        let candidates = Set(gateways.map(\.id))
        out.formUnion(byID(.gateway).filter { !candidates.contains($0.id) }.map { RowKey(kind: .gateway, id: $0.id) })
        out.formUnion(losers(gateways) { w in w.a.map { "\(w.e ?? "")\u{0}\($0)" } })
        // Global variables: the V rows carry their own id.
        let globals = rows.filter { $0.kind == .globalVariable }
        if globals.contains(where: { $0.rank > 0 }) {
            out.formUnion(losers(globals.sorted { $0.id < $1.id }) { $0.a })
        }
        return out
    }
}

/// Row id → array index: a linear search while there are a few (a user lookup's
/// handful of rows needs no hash table), a dictionary past that.
struct IndexMap {
    private var small: [(Int64, Int)] = []
    private var large: [Int64: Int]?

    subscript(id: Int64) -> Int? {
        get {
            if let large { return large[id] }
            for (key, index) in small where key == id { return index }
            return nil
        }
        set {
            if large != nil { large![id] = newValue; return }
            if let i = small.firstIndex(where: { $0.0 == id }) {
                if let newValue { small[i].1 = newValue } else { small.remove(at: i) }
                return
            }
            guard let newValue else { return }
            small.append((id, newValue))
            if small.count > 16 { large = Dictionary(uniqueKeysWithValues: small); small = [] }
        }
    }
}
