import FSConfCore

/// A lookup a node can make, named as `fsconf render` names it: the section, the
/// key (domain, context, document, language), the directory user, request
/// headers (`purpose=gateways`, `group_name=…`, `key=number-alias`) and the node
/// asking (nil: a node with no name, which gets what is every node's).
public struct RenderTarget: Hashable, Sendable {
    public var section: String
    public var key: String
    public var user: String?
    public var headers: [String: String]
    public var node: String?

    public init(section: String, key: String, user: String? = nil, headers: [String: String] = [:], node: String? = nil) {
        self.section = section; self.key = key; self.user = user; self.headers = headers; self.node = node
    }

    /// The same lookup asked by `node`.
    public func asked(by node: String?) -> RenderTarget {
        var t = self
        t.node = node
        return t
    }

    public enum Problem: Error, CustomStringConvertible {
        case unknownSection(String)
        public var description: String {
            switch self {
            case .unknownSection(let s): return "unknown section \(s): directory, dialplan, chatplan, configuration, languages or phrases"
            }
        }
    }

    /// The request a node would get for it (what `fsconf render` builds).
    public func request(action: String? = nil, profile: String? = nil) throws(Problem) -> LookupRequest {
        var headers = self.headers
        if let node {
            // What every lookup carries (switch_event_prep_for_delivery_detailed).
            headers["FreeSWITCH-Switchname"] = node
            headers["FreeSWITCH-Hostname"] = headers["FreeSWITCH-Hostname"] ?? node
        }
        switch section {
        case "directory":
            headers["domain"] = headers["domain"] ?? key
            if let user {
                headers["user"] = user
                headers["action"] = headers["action"] ?? action ?? "sip_auth"
            } else if let action { headers["action"] = action }
            return LookupRequest(section: "directory", tagName: "domain", keyName: "name", keyValue: key, headers: headers)
        case "dialplan":
            headers["Hunt-Context"] = key
            return LookupRequest(section: "dialplan", headers: headers)
        case "chatplan":
            // mod_sms: the message event's "context" header names the context.
            headers["context"] = key
            return LookupRequest(section: "chatplan", headers: headers)
        case "configuration":
            if let profile { headers["profile"] = profile; headers["profile_name"] = profile }
            return LookupRequest(section: "configuration", tagName: "configuration", keyName: "name", keyValue: key,
                                 headers: headers, hasParams: !headers.isEmpty)
        case "languages", "phrases":
            headers["lang"] = key
            return LookupRequest(section: section, headers: headers)
        default:
            throw .unknownSection(section)
        }
    }

    /// `fsconf render`'s arguments for it, e.g. `directory example.com 1000` or
    /// `directory example.com --param purpose=gateways`.
    public var arguments: [String] {
        [section, key] + (user.map { [$0] } ?? []) + headers.keys.sorted().flatMap { ["--param", "\($0)=\(headers[$0]!)"] }
            + (node.map { ["--node", $0] } ?? [])
    }

    /// The arguments as one line, each quoted when a shell would need it.
    public var label: String { arguments.map(RenderTarget.quoted).joined(separator: " ") }

    static func quoted(_ word: String) -> String {
        let plain = !word.isEmpty && word.unicodeScalars.allSatisfy {
            ($0.value >= 0x30 && $0.value <= 0x39) || ($0.value >= 0x41 && $0.value <= 0x5A) || ($0.value >= 0x61 && $0.value <= 0x7A)
                || "@%+=:,./_-".unicodeScalars.contains($0)
        }
        return plain ? word : "'" + word.replacing("'", with: "'\\''") + "'"
    }
}

/// One change key as the change log records it (docs/changes.md, "Keys"), names
/// as stored (the node's `ChangeKey` lowercases them; a render needs them as is).
public struct LookupKey: Hashable, Sendable {
    public var section: String
    public var domain: String?, user: String?, alias: String?, gateway: String?
    /// dialplan/chatplan context, configuration/languages document, global name.
    public var name: String?
    /// `"all": true`: the whole section.
    public var all: Bool

    public init(section: String, domain: String? = nil, user: String? = nil, alias: String? = nil, gateway: String? = nil,
                name: String? = nil, all: Bool = false) {
        self.section = section; self.domain = domain; self.user = user; self.alias = alias; self.gateway = gateway
        self.name = name; self.all = all
    }

    /// nil when the value is not a key this version knows.
    public static func from(_ value: JSONValue) -> LookupKey? {
        guard case .object(let o) = value, case .string(let s)? = o["s"] else { return nil }
        func text(_ k: String) -> String? { if case .string(let v)? = o[k] { return v }; return nil }
        if case .bool(true)? = o["all"] { return LookupKey(section: s, all: true) }
        switch s {
        case "directory":
            guard let d = text("d") else { return LookupKey(section: s, all: true) }
            return LookupKey(section: s, domain: d, user: text("u"), alias: text("a"), gateway: text("g"))
        case "dialplan", "chatplan":
            guard let c = text("c") else { return LookupKey(section: s, all: true) }
            return LookupKey(section: s, name: c)
        case "configuration", "languages", "globals":
            guard let n = text("n") else { return LookupKey(section: s, all: true) }
            return LookupKey(section: s, name: n)
        case "nodes":
            return LookupKey(section: s, all: true)
        default:
            return nil
        }
    }
}

/// What the database holds, asked while deriving lookups (in one state: before
/// or after a change; the caller merges both).
public protocol LookupFacts {
    /// The stored groups and users (ids, in stored order) of a domain; nil when
    /// no such domain is stored.
    func members(ofDomain domain: String) -> (groups: [String], users: [String])?
    /// The keys of what references `$${name}` in a stored value or name: users,
    /// domains, contexts, documents, and other globals (`section == "globals"`).
    func references(global name: String) -> [LookupKey]
}

/// The lookups whose answers a change set may change, derived from its change
/// keys — the keys the node cache drops answers by (docs/changes.md):
///
/// - a user key: that user by id; by number-alias too when the keys show its
///   alias changing (an alias added, removed or renamed);
/// - a gateway key: also the domain's gateway list (`purpose=gateways`);
/// - a domain-wide key (domain settings, groups, members, the domain row): the
///   domain, each of its groups, and its users by id, at most `usersPerDomain`
///   of them (users named by their own keys come first);
/// - a context, document or language key: that context, document or language;
/// - a global: whatever references `$${name}` (through other globals too);
/// - a whole-section key (`all`: a row whose parent went in the same change)
///   adds nothing when the section has named keys (the parent's key covers it;
///   configuration and languages count as one, dialplan and chatplan too: the
///   trigger names both), else it is reported in `notes`.
public enum AffectedLookups {
    public static func derive(_ keys: [LookupKey], facts: LookupFacts, usersPerDomain: Int = 100)
        -> (targets: [RenderTarget], notes: [String]) {
        var targets: [RenderTarget] = []
        var seen: Set<String> = []
        var notes: [String] = []
        func add(_ t: RenderTarget) {
            if seen.insert(t.label.asciiLowercased).inserted { targets.append(t) }
        }
        // Globals first: they expand into the keys of what references them.
        var all = keys
        var visited: Set<String> = []
        var queue = keys.filter { $0.section == "globals" && !$0.all }.compactMap(\.name)
        while let g = queue.popLast() {
            guard visited.insert(g).inserted else { continue }
            for k in facts.references(global: g) {
                if k.section == "globals" { if let n = k.name { queue.append(n) } } else { all.append(k) }
            }
        }
        if keys.contains(where: { $0.section == "nodes" }) {
            notes.append("node groups changed: what their nodes get may differ anywhere; those lookups are not derived from it (fsconf render --node NAME)")
        }
        if keys.contains(where: { $0.section == "globals" && $0.all }) {
            notes.append("every global variable changed (a whole-table change): any lookup may differ; none rendered for it")
        }
        // A cascaded row whose parent is gone records its section whole — both
        // tree sections for an element, both plan sections for a dialplan row (the
        // trigger cannot tell which) —, and its parent's own key is in the change set.
        let named = Set(all.filter { !$0.all && $0.section != "globals" }.map(\.section))
        all.removeAll { $0.section == "nodes" }
        func covered(_ section: String) -> Bool {
            for pair in [["configuration", "languages"], ["dialplan", "chatplan"]] where pair.contains(section) {
                return pair.contains(where: named.contains)
            }
            return named.contains(section)
        }
        for k in all where k.all && k.section != "globals" && !covered(k.section) {
            let note = "the whole \(k.section) section changed: its lookups are not rendered"
            if !notes.contains(note) { notes.append(note) }
        }

        // Directory: explicit users first, then domain-wide expansions.
        let directory = all.filter { $0.section == "directory" && !$0.all }
        var aliases: [String: Set<String?>] = [:]   // "domain\0user" → aliases seen in the keys
        for k in directory {
            guard let d = k.domain, let u = k.user else { continue }
            aliases["\(d.asciiLowercased)\0\(u.asciiLowercased)", default: []].insert(k.alias)
        }
        for k in directory {
            guard let d = k.domain else { continue }
            if let u = k.user {
                add(RenderTarget(section: "directory", key: d, user: u))
                if let a = k.alias, (aliases["\(d.asciiLowercased)\0\(u.asciiLowercased)"]?.count ?? 0) > 1 {
                    add(RenderTarget(section: "directory", key: d, user: a, headers: ["key": "number-alias"]))
                }
            }
            if k.gateway != nil { add(RenderTarget(section: "directory", key: d, headers: ["purpose": "gateways"])) }
        }
        var expanded: Set<String> = []
        for k in directory where k.user == nil && k.gateway == nil {
            guard let d = k.domain, expanded.insert(d.asciiLowercased).inserted else { continue }
            add(RenderTarget(section: "directory", key: d))
            guard let members = facts.members(ofDomain: d) else { continue }
            for g in members.groups { add(RenderTarget(section: "directory", key: d, headers: ["group_name": g])) }
            let fresh = members.users.filter { !seen.contains(RenderTarget(section: "directory", key: d, user: $0).label.asciiLowercased) }
            for u in fresh.prefix(usersPerDomain) { add(RenderTarget(section: "directory", key: d, user: u)) }
            if fresh.count > usersPerDomain {
                notes.append("\(fresh.count - usersPerDomain) more user lookup(s) of \(d) not rendered (at most \(usersPerDomain) per domain: --max-users)")
            }
        }

        for k in all where !k.all {
            guard let n = k.name else { continue }
            switch k.section {
            case "dialplan", "chatplan", "configuration", "languages": add(RenderTarget(section: k.section, key: n))
            default: break
            }
        }
        return (targets, notes)
    }
}
