/// Per-node scope (docs/cluster.md): which nodes an entity exists for, which node
/// asks, and which of an entity's variants that node gets. Pure: the node's
/// lookups (rows carry their rank), `fsconf export --node` and the field paths all
/// use these rules.

/// The nodes an entity is limited to: node names and `@group`s, lower-cased,
/// sorted (byte order) and unique — the form the `nodes` column holds
/// (fsconf.is_scope). An unscoped entity (every node) has no `Scope` (nil).
public struct Scope: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Sorted entries: `name` or `@group`.
    public let entries: [String]

    /// Longest node or group name (a host name's limit).
    public static let maximumNameLength = 253
    /// Most entries in one scope.
    public static let maximumEntries = 64

    /// Entries as given (any case, any order, repeats allowed); nil with the reason
    /// when one is not a node name or `@group`.
    public static func make(_ list: [String]) -> Result<Scope, ScopeError> {
        if list.isEmpty { return .failure(ScopeError("a scope names at least one node or @group")) }
        var out: [String] = []
        for raw in list {
            let entry = raw.asciiLowercased
            let isGroup = entry.hasPrefix("@")
            let name = isGroup ? String(entry.dropFirst()) : entry
            if let problem = Scope.nameProblem(name) {
                return .failure(ScopeError("\(isGroup ? "group" : "node") \(raw.isEmpty ? "\"\"" : raw): \(problem)"))
            }
            if !out.contains(entry) { out.append(entry) }
        }
        if out.count > maximumEntries { return .failure(ScopeError("a scope names at most \(maximumEntries) nodes and groups")) }
        return .success(Scope(sorted: out))
    }

    /// Entries already checked (sorted here).
    init(sorted entries: [String]) {
        self.entries = entries.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// The comma-separated form (`sitea,@eu`), as paths and the CLI print it; nil
    /// with the reason when it is not a scope.
    public static func parse(_ text: String) -> Result<Scope, ScopeError> {
        make(text.split(separator: ",", omittingEmptySubsequences: false).map {
            String($0).trimmingASCIISpaces
        })
    }

    /// Why `name` cannot be a node or group name (nil: it can): 1 to 253 characters
    /// of a-z, 0-9, `_ . : -`, starting with a letter or digit (host names and
    /// FreeSWITCH switchnames; upper case is folded).
    public static func nameProblem(_ name: String) -> String? {
        let bytes = Array(name.asciiLowercased.utf8)
        if bytes.isEmpty { return "an empty name" }
        if bytes.count > maximumNameLength { return "longer than \(maximumNameLength) characters" }
        for (i, b) in bytes.enumerated() {
            let alnum = (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
            if alnum { continue }
            if i > 0 && (b == 0x5F || b == 0x2E || b == 0x3A || b == 0x2D) { continue }
            return i == 0 ? "must start with a letter or a digit" : "may hold only letters, digits and _ . : -"
        }
        return nil
    }

    public var nodes: [String] { entries.filter { !$0.hasPrefix("@") } }
    public var groups: [String] { entries.filter { $0.hasPrefix("@") }.map { String($0.dropFirst()) } }

    /// `sitea,@eu`
    public var description: String { entries.joined(separator: ",") }

    /// The `nodes` column's text form: a PostgreSQL array literal (entries need no quoting).
    public var sqlArray: String { "{" + entries.joined(separator: ",") + "}" }

    /// From the `nodes` column read as text: `{sitea,@eu}` (or `array_to_string`'s
    /// `sitea,@eu`); nil for NULL or anything else.
    public static func fromColumn(_ text: String?) -> Scope? {
        guard var t = text else { return nil }
        if t.hasPrefix("{") && t.hasSuffix("}") { t = String(t.dropFirst().dropLast()) }
        guard case .success(let s) = parse(t) else { return nil }
        return s
    }

    /// From the `nodes` column as jsonb text (`["sitea", "@eu"]`, the change log's
    /// rows); nil for null, a missing key or anything else.
    public static func fromJSON(_ text: String?) -> Scope? {
        guard let t = text, t.hasPrefix("["), t.hasSuffix("]") else { return nil }
        let inner = t.dropFirst().dropLast()
        let list = inner.split(separator: ",").map { part -> String in
            var p = Substring(String(part).trimmingASCIISpaces)
            if p.hasPrefix("\"") { p = p.dropFirst() }
            if p.hasSuffix("\"") { p = p.dropLast() }
            return String(p)
        }
        guard case .success(let s) = make(list) else { return nil }
        return s
    }

    public static func < (a: Scope, b: Scope) -> Bool {
        a.entries.lexicographicallyPrecedes(b.entries) { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }
}

public struct ScopeError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension String {
    var trimmingASCIISpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}

/// The node asking: its name (FreeSWITCH-Switchname, lower-cased) and the groups it
/// belongs to. A node with no name sees only unscoped entities.
public struct NodeIdentity: Hashable, Sendable {
    public var name: String?
    public var groups: [String]

    public init(name: String?, groups: [String] = []) {
        self.name = name.map { $0.asciiLowercased }
        self.groups = groups.map { $0.asciiLowercased }
    }

    /// How specifically `scope` names this node: 2 by name, 1 through a group, 0
    /// unscoped (every node); nil when the entity is not for this node.
    public func rank(_ scope: Scope?) -> Int? {
        guard let scope else { return 0 }
        if let name, scope.entries.contains(name) { return 2 }
        for g in groups where scope.entries.contains("@" + g) { return 1 }
        return nil
    }

    /// The params headers that name the node, in the order they are read: every
    /// event FreeSWITCH creates carries both (switch_event_prep_for_delivery_detailed,
    /// src/switch_event.c), the switchname being the hostname unless switch.conf sets one.
    public static let headers = ["FreeSWITCH-Switchname", "FreeSWITCH-Hostname"]

    /// The node's name from a lookup's own params, else from `fallback` (the node
    /// itself: a fresh event's FreeSWITCH-Switchname, else its `hostname` global);
    /// lower-cased. Implausible names (too long, NUL) are no name.
    public static func name(of request: LookupRequest, fallback: () -> String?) -> String? {
        var found: String?
        if request.hasParams {
            for h in headers { if let v = request.header(h) { found = v; break } }
        }
        if found == nil { found = fallback() }
        guard let name = found, !name.isEmpty, LookupRequest.isPlausibleKey(name) else { return nil }
        return name.asciiLowercased
    }
}

/// Which variants of one entity a node gets. Variants share an identity (the same
/// user id in a domain, gateway name, global name, extension name in a context,
/// sibling elements with the same tag and `name`); among those the node can see,
/// the most specific wins: named node (2) > node group (1) > every node (0).
/// Entities whose identity the schema keeps unique keep one winner (ties: the
/// earliest created, lowest id); extensions and elements keep every variant of the
/// winning rank (duplicates, as FreeSWITCH's own files may hold). The winners stand
/// where the first variant of their identity stands, so a variant added at the end
/// of a context or a profile replaces the unscoped one in place.
public enum Precedence {
    /// `items` in order, each with its identity (nil: it is no one's variant), rank
    /// (nil: not visible) and id. Returns the items the node gets, in order.
    public static func resolve<T>(_ items: [T], unique: Bool, identity: (T) -> String?, rank: (T) -> Int?,
                                  id: (T) -> Int64) -> [T] {
        // Fast path: nothing scoped (every rank 0 or invisible) changes nothing but visibility.
        var anyScoped = false
        for item in items { if let r = rank(item), r > 0 { anyScoped = true; break } }
        if !anyScoped && !unique { return items.filter { rank($0) != nil } }
        var best: [String: (rank: Int, id: Int64)] = [:]
        for item in items {
            guard let r = rank(item), let key = identity(item) else { continue }
            let i = id(item)
            if let b = best[key] {
                if r > b.rank || (unique && r == b.rank && i < b.id) { best[key] = (r, i) }
            } else {
                best[key] = (r, i)
            }
        }
        var winners: [String: [T]] = [:]
        for item in items {
            guard let r = rank(item), let key = identity(item), let b = best[key] else { continue }
            if r == b.rank && (!unique || id(item) == b.id) { winners[key, default: []].append(item) }
        }
        var out: [T] = []
        out.reserveCapacity(items.count)
        var placed: Set<String> = []
        for item in items {
            guard rank(item) != nil else { continue }
            guard let key = identity(item) else { out.append(item); continue }
            if placed.insert(key).inserted { out += winners[key] ?? [] }
        }
        return out
    }
}
