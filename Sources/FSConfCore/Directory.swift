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

/// Rows → domains, with everything in stored order. Of the variants of a domain,
/// user, gateway or global variable (docs/cluster.md), only the one the asking node
/// gets is kept (`Precedence`, from the rows' ranks).
public struct DirectoryData: Sendable {
    public var domains: [DirectoryDomain]
    public var globals: [String: String]

    public init(rows: [DirectoryRow]) {
        let dropped = DirectoryData.shadowed(rows)
        var domains: [Int64: DirectoryDomain] = [:]
        var groups: [Int64: DirectoryGroup] = [:]
        var users: [Int64: DirectoryUser] = [:]
        var gateways: [Int64: (owner: Int64?, gateway: Gateway)] = [:]
        var globals: [String: String] = [:]
        var domainSettings: [Int64: [Setting]] = [:], groupSettings: [Int64: [Setting]] = [:]
        var userSettings: [Int64: [Setting]] = [:], gatewaySettings: [Int64: [Setting]] = [:]
        var pointers: [Int64: [(String, Int)]] = [:]
        var groupDomain: [Int64: Int64] = [:], userDomain: [Int64: Int64] = [:]
        var gatewayDomain: [Int64: Int64] = [:]

        func setting(_ row: DirectoryRow) -> Setting? {
            guard let kind = Setting.Kind(rawValue: row.a ?? ""), let name = row.b else { return nil }
            return Setting(kind: kind, name: name, value: row.c ?? "", direction: row.d, position: row.position)
        }
        for row in rows {
            if !dropped.isEmpty, dropped.contains(DirectoryData.RowKey(kind: row.kind, id: row.id)) { continue }
            switch row.kind {
            case .domain:
                domains[row.id] = DirectoryDomain(id: row.id, name: row.a ?? "", cacheable: row.b)
            case .group:
                groups[row.id] = DirectoryGroup(id: row.id, name: row.a ?? "", position: row.position)
                groupDomain[row.id] = row.parent ?? 0
            case .user:
                users[row.id] = DirectoryUser(id: row.id, userID: row.a ?? "", numberAlias: row.b, cacheable: row.c,
                                              homeGroup: row.d.flatMap { Int64($0) }, extraXML: row.e, position: row.position)
                userDomain[row.id] = row.parent ?? 0
            case .gateway:
                // parent: the owning user (nil for a domain gateway); e: the domain id.
                gateways[row.id] = (row.parent, Gateway(id: row.id, name: row.a ?? "", position: row.position))
                gatewayDomain[row.id] = row.e.flatMap { Int64($0) } ?? 0
            case .domainSetting: if let s = setting(row), let p = row.parent { domainSettings[p, default: []].append(s) }
            case .groupSetting: if let s = setting(row), let p = row.parent { groupSettings[p, default: []].append(s) }
            case .userSetting: if let s = setting(row), let p = row.parent { userSettings[p, default: []].append(s) }
            case .gatewaySetting: if let s = setting(row), let p = row.parent { gatewaySettings[p, default: []].append(s) }
            case .member: if let p = row.parent { pointers[p, default: []].append((row.a ?? "", row.position)) }
            case .globalVariable: if let name = row.a { globals[name] = row.b ?? "" }
            }
        }
        func ordered(_ list: [Setting]) -> [Setting] { list.sorted { ($0.position, $0.name) < ($1.position, $1.name) } }
        for (id, entry) in gateways {
            var gw = entry.gateway
            gw.settings = ordered(gatewaySettings[id] ?? [])
            if let owner = entry.owner {
                users[owner]?.gateways.append(gw)
            } else if let d = gatewayDomain[id] {
                domains[d]?.gateways.append(gw)
            }
        }
        for (id, var user) in users {
            user.settings = ordered(userSettings[id] ?? [])
            user.gateways.sort { ($0.position, $0.id) < ($1.position, $1.id) }
            users[id] = user
        }
        for (id, var group) in groups {
            group.settings = ordered(groupSettings[id] ?? [])
            group.pointers = (pointers[id] ?? []).sorted { ($0.1, $0.0) < ($1.1, $1.0) }
            if let d = groupDomain[id] { domains[d]?.groups.append(group) }
        }
        for (id, user) in users { if let d = userDomain[id] { domains[d]?.users.append(user) } }
        for (id, var domain) in domains {
            domain.settings = ordered(domainSettings[id] ?? [])
            domain.groups.sort { ($0.position, $0.id) < ($1.position, $1.id) }
            domain.users.sort { ($0.position, $0.id) < ($1.position, $1.id) }
            domain.gateways.sort { ($0.position, $0.id) < ($1.position, $1.id) }
            domains[id] = domain
        }
        self.domains = domains.values.sorted { $0.id < $1.id }
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
