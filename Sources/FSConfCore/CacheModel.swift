/// The node cache's pure logic: which lookup an answer belongs to (`CacheKey`),
/// which changes make it stale (`CacheTags`, `ChangeKey`), the change notices the
/// database sends (`ChangeNotice`, docs/changes.md) and a byte-bounded LRU
/// (`LRUCache`). No I/O, no locks: FSConfNode wraps it.

/// What shapes one answer: the planned query, nothing volatile (a `sip_auth`
/// nonce, a call id...). Two requests with the same key get the same XML on one
/// node (FreeSWITCH globals are per node, and the cache is per process).
public enum CacheKey: Hashable, Sendable {
    case directory(DirectoryQuery)
    case dialplan(String)
    case chatplan(String)
    case configuration(ConfigurationQuery)
    case language(LanguageQuery)

    /// The key for a request, or nil when the request needs no database (answered
    /// without a query) or belongs to a section fsconf does not serve.
    public static func of(_ request: LookupRequest) -> CacheKey? {
        switch request.section {
        case Section.directory.rawValue:
            let q = DirectoryQuery.plan(request)
            return q == .none ? nil : .directory(q)
        case Section.dialplan.rawValue:
            if case .context(let name) = DialplanQuery.plan(request) { return .dialplan(name) }
            return nil
        case Section.chatplan.rawValue:
            if case .context(let name) = DialplanQuery.plan(request) { return .chatplan(name) }
            return nil
        case Section.configuration.rawValue:
            return ConfigurationQuery.plan(request).map { .configuration($0) }
        case Section.languages.rawValue, Section.phrases.rawValue:
            return LanguageQuery.plan(request, phrases: request.section == Section.phrases.rawValue).map { .language($0) }
        default:
            return nil
        }
    }

    /// Rough bytes the key itself holds (for the memory cap).
    public var approximateBytes: Int {
        switch self {
        case .directory(let q):
            switch q {
            case .user(let d, let u, let k): return 48 + d.utf8.count + u.utf8.count + k.utf8.count
            case .group(let d, let g): return 48 + d.utf8.count + g.utf8.count
            case .domain(let d, _): return 48 + d.utf8.count
            case .gateways(let d): return 48 + (d?.utf8.count ?? 0)
            case .none: return 48
            }
        case .dialplan(let c), .chatplan(let c): return 32 + c.utf8.count
        case .configuration(let q): return 64 + q.document.utf8.count
        case .language(let q): return 48 + q.language.utf8.count + (q.fallback?.utf8.count ?? 0)
        }
    }
}

/// What an answer depends on, in the terms change keys use. Names are lowercased
/// (FreeSWITCH and the schema compare them without case).
public struct CacheTags: Equatable, Sendable {
    /// `directory`, `dialplan`, `chatplan`, `configuration` or `languages` (phrases too).
    public var section: String
    /// directory: the domain names (as asked and as stored, `$${domain}` included);
    /// dialplan/chatplan: the context; configuration/languages: the document names.
    public var names: [String]
    /// directory user answers: the user ids and aliases (as asked and as stored).
    /// nil: the answer lists several users (group, cidr, all, gateways): any user
    /// change in its domain affects it.
    public var users: [String]?
    /// True when a change to a name holding `$${…}` may affect this answer (no
    /// stored row matched the asked name, or the answer spans every domain).
    public var unresolved: Bool

    public init(section: String, names: [String], users: [String]? = nil, unresolved: Bool = false) {
        self.section = section
        self.names = CacheTags.unique(names.map { $0.asciiLowercased })
        self.users = users.map { CacheTags.unique($0.map { $0.asciiLowercased }) }
        self.unresolved = unresolved
    }

    static func unique(_ list: [String]) -> [String] {
        var out: [String] = []
        for s in list where !out.contains(s) { out.append(s) }
        return out
    }

    public var approximateBytes: Int {
        64 + names.reduce(0) { $0 + 16 + $1.utf8.count } + (users ?? []).reduce(0) { $0 + 16 + $1.utf8.count }
    }

    /// The tags of a directory answer: what was asked, and what the database returned.
    public static func directory(_ query: DirectoryQuery, _ data: DirectoryData, found: Bool) -> CacheTags {
        var names = data.domains.map(\.name)
        var users: [String]?
        var unresolved = !found
        switch query {
        case .user(let d, let u, let key):
            names.append(d)
            if key == "id" || key == "number-alias" {
                var list = [u]
                for user in data.domains.flatMap(\.users) {
                    list.append(user.userID)
                    if let a = user.numberAlias { list.append(a) }
                }
                users = list
            }
        case .domain(let d, .none):
            names.append(d)
            users = []   // the domain's own settings: no user change touches it
        case .group(let d, _), .domain(let d, _):
            names.append(d)
        case .gateways(let d):
            // Every domain's gateways: any directory change may add or drop one.
            if let d { names.append(d) } else { names = []; unresolved = true }
        case .none:
            unresolved = true
        }
        return CacheTags(section: Section.directory.rawValue, names: names, users: users, unresolved: unresolved)
    }

    /// The tags of any answer under `key` (a directory answer's own tags, with
    /// what was found, come from `directory`).
    public static func of(_ key: CacheKey, found: Bool = true) -> CacheTags {
        switch key {
        case .directory(let q):
            return directory(q, DirectoryData(rows: []), found: found)
        case .dialplan(let c):
            return CacheTags(section: Section.dialplan.rawValue, names: [c], unresolved: !found)
        case .chatplan(let c):
            return CacheTags(section: Section.chatplan.rawValue, names: [c], unresolved: !found)
        case .configuration(let q):
            return CacheTags(section: Section.configuration.rawValue, names: [q.document])
        case .language(let q):
            return CacheTags(section: Section.languages.rawValue, names: [q.language] + (q.fallback.map { [$0] } ?? []))
        }
    }

    /// True when a change to `key` may change this answer.
    public func isAffected(by key: ChangeKey) -> Bool {
        switch key {
        case .everything:
            return true
        case .section(let s):
            return s == section
        case .named(let s, let name):
            guard s == section else { return false }
            // A stored name holding $${…} expands per node: it may be what we asked.
            if name.contains("$${") && (unresolved || section == Section.dialplan.rawValue || section == Section.chatplan.rawValue) { return true }
            return names.contains(name)
        case .directory(let domain, let user, let alias):
            guard section == Section.directory.rawValue else { return false }
            let domainMatches = names.contains(domain) || (unresolved && domain.contains("$${"))
                || (unresolved && names.isEmpty)
            if !domainMatches { return false }
            guard let users else { return true }          // a multi-user answer
            guard user != nil || alias != nil else { return true }  // a domain-wide change
            if let user, user.contains("$${") || users.contains(user) { return true }
            if let alias, users.contains(alias) { return true }
            return false
        }
    }
}

/// One key of a change set (docs/changes.md, "Keys"), names lowercased.
public enum ChangeKey: Equatable, Sendable {
    /// A global variable (any answer may hold it), or a key fsconf does not know.
    case everything
    /// `{"s":…,"all":true}`: the whole section.
    case section(String)
    /// dialplan `c`, configuration/languages `n`.
    case named(section: String, name: String)
    /// `{"s":"directory","d":…[,"u":…][,"a":…][,"g":…]}`. A gateway key also names
    /// its owner user (if any); gateway-list answers are multi-user answers.
    case directory(domain: String, user: String?, alias: String?)

    public static func from(_ value: JSONValue) -> ChangeKey {
        guard case .object(let o) = value, case .string(let s)? = o["s"] else { return .everything }
        func text(_ k: String) -> String? {
            if case .string(let v)? = o[k] { return v.asciiLowercased }
            return nil
        }
        if case .bool(true)? = o["all"] {
            return s == "globals" ? .everything : (Section(rawValue: s) == nil ? .everything : .section(s))
        }
        switch s {
        case "globals":
            return .everything
        case "directory":
            guard let d = text("d") else { return .section(s) }
            return .directory(domain: d, user: text("u"), alias: text("a"))
        case "dialplan", "chatplan":
            guard let c = text("c") else { return .section(s) }
            return .named(section: s, name: c)
        case "configuration", "languages":
            guard let n = text("n") else { return .section(s) }
            return .named(section: s, name: n)
        default:
            return .everything
        }
    }
}

/// A change notification: `{"seq":N,"id":ID,"keys":[…]}` or `{"seq":N,"id":ID,"all":true}`.
public struct ChangeNotice: Equatable, Sendable {
    public var seq: Int64
    /// nil: everything changed.
    public var keys: [ChangeKey]?

    public init(seq: Int64, keys: [ChangeKey]?) { self.seq = seq; self.keys = keys }

    /// nil when the payload is not a change notice this version understands
    /// (the listener then forgets everything).
    public static func parse(_ payload: String) -> ChangeNotice? {
        guard let json = JSONValue.parse(payload), case .object(let o) = json,
              case .number(let n)? = o["seq"], let seq = Int64(n) else { return nil }
        if case .bool(true)? = o["all"] { return ChangeNotice(seq: seq, keys: nil) }
        guard case .array(let list)? = o["keys"] else { return nil }
        return ChangeNotice(seq: seq, keys: keys(list))
    }

    /// Keys from a jsonb array's text (the catch-up query); nil when unreadable.
    public static func keys(fromJSON text: String) -> [ChangeKey]? {
        guard let json = JSONValue.parse(text), case .array(let list) = json else { return nil }
        return keys(list)
    }

    static func keys(_ list: [JSONValue]) -> [ChangeKey]? {
        let keys = list.map(ChangeKey.from)
        return keys.contains(.everything) ? nil : keys
    }
}


/// A least-recently-used map bounded in bytes (each value states its size).
/// A hit moves its entry to the front only when it is not already among the most
/// recent half (a move writes three other entries' links, and with many entries
/// each is a cache miss): an entry within the first half cannot reach the tail
/// before it is hit again or half of the entries are inserted or moved ahead of
/// it, so eviction still takes a least recently used one.
/// Not thread-safe: the node wraps each shard in a lock. Inlinable, so the node
/// gets code specialised for its key and value (no generic dispatch per lookup).
public struct LRUCache<Key: Hashable, Value> {
    /// What the index holds per key: the slot, and the value itself, so a hit
    /// reads one table and the recency stamp, nothing else.
    @usableFromInline
    struct Located {
        @usableFromInline var slot: Int
        @usableFromInline var value: Value
        @inlinable init(slot: Int, value: Value) { self.slot = slot; self.value = value }
    }
    @usableFromInline
    struct Slot {
        @usableFromInline var key: Key
        @usableFromInline var bytes: Int
        @inlinable init(key: Key, bytes: Int) { self.key = key; self.bytes = bytes }
    }
    /// The recency list, apart from the entries: plain integers, so moving an
    /// entry never copies (or retains) a key or a value.
    @usableFromInline
    struct Link {
        @usableFromInline var prev = -1, next = -1   // -1: none
        /// `tick` when the entry was last put at the front.
        @usableFromInline var stamp: UInt64 = 0
        @inlinable init() {}
    }
    @usableFromInline var slots: [Slot?] = []
    @usableFromInline var links: [Link] = []
    @usableFromInline var free: [Int] = []
    @usableFromInline var index: [Key: Located] = [:]
    @usableFromInline var head = -1, tail = -1   // head: most recent
    @usableFromInline var _bytes = 0, _evictions = 0
    /// Counts moves to the front.
    @usableFromInline var tick: UInt64 = 0
    public var capacity: Int
    /// Bytes held (as each value stated) and entries evicted so far.
    @inlinable public var bytes: Int { _bytes }
    @inlinable public var evictions: Int { _evictions }

    @inlinable public init(capacity: Int) { self.capacity = capacity }

    @inlinable public var count: Int { index.count }

    /// The value, marked most recently used.
    @inlinable public mutating func get(_ key: Key) -> Value? {
        guard let found = index[key] else { return nil }
        if tick &- links[found.slot].stamp > UInt64(index.count / 2) { touch(found.slot) }
        return found.value
    }

    /// The value without changing the order.
    @inlinable public func peek(_ key: Key) -> Value? { index[key]?.value }

    /// Inserts or replaces; evicts least recently used entries until within the
    /// capacity. A value larger than the whole capacity is not kept.
    @inlinable public mutating func set(_ key: Key, _ value: Value, bytes size: Int) {
        remove(key)
        guard size <= capacity else { return }
        while bytes + size > capacity, tail >= 0 {
            drop(at: tail)
            _evictions += 1
        }
        let slot = Slot(key: key, bytes: size)
        let i: Int
        if let f = free.popLast() {
            slots[f] = slot; links[f] = Link(); i = f
        } else {
            slots.append(slot); links.append(Link()); i = slots.count - 1
        }
        index[key] = Located(slot: i, value: value)
        _bytes += size
        linkFront(i)
    }

    @inlinable @discardableResult public mutating func remove(_ key: Key) -> Value? {
        guard let found = index[key] else { return nil }
        return drop(at: found.slot)
    }

    /// Unlinks slot `i` and frees it; returns its value.
    @inlinable @discardableResult mutating func drop(at i: Int) -> Value {
        unlink(i)
        let slot = slots[i]!
        _bytes -= slot.bytes
        let value = index.removeValue(forKey: slot.key)!.value
        slots[i] = nil
        free.append(i)
        return value
    }

    /// Removes every entry `predicate` selects; returns how many.
    @inlinable @discardableResult public mutating func removeAll(where predicate: (Key, Value) -> Bool) -> Int {
        var doomed: [Key] = []
        for (k, found) in index where predicate(k, found.value) { doomed.append(k) }
        for k in doomed { remove(k) }
        return doomed.count
    }

    @inlinable public mutating func removeAll() {
        slots.removeAll(); links.removeAll(); free.removeAll(); index.removeAll()
        head = -1; tail = -1; _bytes = 0
    }

    /// Keys from most to least recently used (for tests).
    @inlinable public var keysByRecency: [Key] {
        var out: [Key] = []
        var i = head
        while i >= 0 { out.append(slots[i]!.key); i = links[i].next }
        return out
    }

    @inlinable mutating func touch(_ i: Int) {
        guard head != i else { return }
        unlink(i)
        linkFront(i)
    }

    @inlinable mutating func unlink(_ i: Int) {
        let p = links[i].prev, n = links[i].next
        if p >= 0 { links[p].next = n } else { head = n }
        if n >= 0 { links[n].prev = p } else { tail = p }
        links[i].prev = -1
        links[i].next = -1
    }

    @inlinable mutating func linkFront(_ i: Int) {
        links[i].next = head
        links[i].prev = -1
        links[i].stamp = tick
        tick &+= 1
        if head >= 0 { links[head].prev = i }
        head = i
        if tail < 0 { tail = i }
    }
}
