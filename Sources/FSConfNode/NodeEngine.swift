import FSConfCore
import FSConfRegex
import FSConfStore
import Glibc
import Synchronization

/// What one lookup produced: the XML to hand FreeSWITCH (nil: no answer, so
/// FreeSWITCH tries the next source), an error message for the caller, and the
/// lines to log on the node's console (already rate-limited).
public struct LookupOutcome: Sendable {
    public var xml: String?
    public var error: String?
    public var log: [(level: String, message: String)] = []

    public init(xml: String? = nil, error: String? = nil, log: [(level: String, message: String)] = []) {
        self.xml = xml; self.error = error; self.log = log
    }
}

/// The node's lookup engine: one per process, shared by every lookup thread.
///
/// Every answer goes through the in-node cache (NodeCache): a fresh entry is
/// served without the database; otherwise the answer is read and rendered, kept,
/// and served. When the database cannot answer (down, or slower than the
/// deadline), the last good answer for that key is served and the outage is
/// logged once per interval; with no last good answer the lookup falls through
/// (nil), never "not found".
public final class NodeEngine: @unchecked Sendable {
    public static let shared = NodeEngine()

    private let monitor = Monitor()
    private var backend: Backend?
    /// Bumped (under `monitor`) whenever `backend` is replaced: a `Resolved` whose
    /// generation is still this one names the current backend, read without a lock.
    private let generation = Atomic<UInt64>(0)
    private let limiter = LogLimiter(intervalSeconds: 10)

    /// Monotonic nanoseconds for cache expiry and outage retries; tests inject
    /// their own clock to assert expiry without sleeping.
    let clock: @Sendable () -> UInt64

    public init(clock: @escaping @Sendable () -> UInt64 = MonotonicClock.now) { self.clock = clock }

    /// Pool, cache and listener for one configuration.
    final class Backend: @unchecked Sendable {
        let settings: NodeSettings
        let pool: ConnectionPool
        let cache: NodeCache
        let globals = GlobalsCopy()
        let listener: ChangeListener
        /// Raw requests → the keys they planned to (nil with the cache off).
        let memo: RequestMemo?
        // Outage state (under monitor).
        let monitor = Monitor()
        var downSince: (wall: Int, mono: UInt64)?
        var retryAt: UInt64 = 0
        var staleServed = 0
        var staleTotal = 0
        var staleSinceLog = 0
        /// Lookups the database failed (down, refused, slower than the deadline).
        var databaseErrors = 0

        init(settings: NodeSettings, clock: @escaping @Sendable () -> UInt64) {
            self.settings = settings
            pool = ConnectionPool(settings: settings)
            cache = NodeCache(capacity: settings.cacheBytes, negativeTTLms: settings.negativeTTLms, clock: clock)
            memo = settings.cacheBytes > 0 ? RequestMemo.sized(cacheBytes: settings.cacheBytes) : nil
            listener = ChangeListener(conninfo: settings.effectiveConninfo, pollMs: settings.pollMs, cache: cache)
        }

        func shutdown() {
            listener.stop()
            pool.shutdown()
        }
    }

    /// What a fetch produced, ready to cache.
    struct Answer {
        var xml: String
        var tags: CacheTags
        var negative: Bool
        var seq: Int64?
        var log: [(level: String, message: String)] = []
        /// False for answers FreeSWITCH keeps in its own user cache (a `cacheable`
        /// user): it asks again only after `xml_flush_cache` — i.e. after a change,
        /// possibly before this process has heard of it — so such answers are always
        /// read fresh while the database answers, and kept only for an outage.
        var servable = true
    }

    /// Answers one lookup. Never throws; never blocks past the settings' deadline
    /// for database work. `node` reads a FreeSWITCH global variable; `nodeName`
    /// asks the node its name when the lookup's params do not carry it
    /// (`NodeIdentity.name`): the answer is the one for that node (docs/cluster.md).
    public func handle(_ request: LookupRequest, settings: NodeSettings,
                       node: @escaping (String) -> String?, nodeName: () -> String? = { nil }) -> LookupOutcome {
        handle(request, resolved: resolve(settings), node: node, nodeName: nodeName)
    }

    /// Settings and the backend serving them, as `resolve` found them. A caller may
    /// keep one (the Lua module: one per thread, for the shim text it came from) and
    /// reuse it while `isCurrent`: a lookup then takes no process-wide lock.
    /// A class: a thread keeping one copies a reference, not the settings' strings
    /// (retained on every copy, and shared by every thread).
    public final class Resolved: @unchecked Sendable {
        public let settings: NodeSettings
        let backend: Backend
        let generation: UInt64
        init(settings: NodeSettings, backend: Backend, generation: UInt64) {
            self.settings = settings; self.backend = backend; self.generation = generation
        }
    }

    /// The backend for `settings`, created (replacing another one) when needed.
    public func resolve(_ settings: NodeSettings) -> Resolved {
        let (backend, generation) = currentBackendAndGeneration(settings)
        return Resolved(settings: settings, backend: backend, generation: generation)
    }

    /// True while no other settings replaced `resolved`'s backend (one atomic load).
    public func isCurrent(_ resolved: Resolved) -> Bool {
        generation.load(ordering: .acquiring) == resolved.generation
    }

    /// The cached answer for a request whose raw inputs were seen before (the
    /// RequestMemo), when it is a hit; nil otherwise (then `handle` it, with `raw`).
    public func cachedAnswer(_ raw: RawRequest, resolved: Resolved) -> String? {
        if let shim = resolved.settings.shimSchema, shim != SchemaVersion.current { return nil }
        guard let memo = resolved.backend.memo, let key = memo.key(for: raw.bytes, hash: raw.hash) else { return nil }
        return resolved.backend.cache.hit(key)
    }

    /// `handle` with the backend already resolved. `raw`: the request's raw inputs,
    /// recorded with the key they plan to when planning read nothing else.
    public func handle(_ request: LookupRequest, resolved: Resolved,
                       node: @escaping (String) -> String?, nodeName: () -> String? = { nil },
                       raw: RawRequest? = nil) -> LookupOutcome {
        if let shim = resolved.settings.shimSchema, shim != SchemaVersion.current {
            return failure("schema", """
                fsconf: the shim was generated for schema \(shim) but the library reads schema \(SchemaVersion.current): \
                regenerate it with `fsconf shim`
                """)
        }
        let planned = CacheKey.of(request)
        if let problem = request.headerSource?.readError {
            return LookupOutcome(xml: nil, error: "fsconf: bad arguments: \(problem)")
        }
        guard let key = planned else {
            // Sections fsconf does not serve: no answer, FreeSWITCH uses its files.
            // A served section with nothing fsconf could hold: "not found".
            return LookupOutcome(xml: Section(rawValue: request.section) == nil ? nil : FreeSWITCHDocument.notFound)
        }
        var askedNode = false
        let me = NodeIdentity.name(of: request, fallback: { askedNode = true; return nodeName() })
        if let problem = request.headerSource?.readError {
            return LookupOutcome(xml: nil, error: "fsconf: bad arguments: \(problem)")
        }
        let backend = resolved.backend
        let cacheKey = NodeCache.Key(key, node: me)
        if let raw, let memo = backend.memo, !askedNode, request.headerSource?.readOnlyUsualHeaders == true {
            memo.record(raw.bytes, hash: raw.hash, key: cacheKey)
        }
        let probe = backend.cache.probe(cacheKey)
        if let hit = probe.hit { return LookupOutcome(xml: hit) }

        // A miss: the database is asked (and the listener started, on first use).
        if backend.cache.enabled { backend.listener.startIfNeeded() }
        var log = backend.listener.takeMessages()
        if let lastGood = probe.lastGood, backend.monitor.locked({ clock() < backend.retryAt }) {
            // The database failed a moment ago: do not make every lookup wait for it.
            return stale(lastGood, backend, log: log)
        }
        switch answer(key, asker: me, deadline: MonotonicClock.deadline(afterMilliseconds: resolved.settings.deadlineMs),
                      source: .backend(backend), node: node) {
        case .success(let a):
            backend.cache.insert(key, node: me, xml: a.xml, tags: a.tags, negative: a.negative, seq: a.seq, epoch: probe.epoch,
                                 servable: a.servable)
            if let line = recovered(backend) { log.append(("notice", line)) }
            log += a.log
            return LookupOutcome(xml: a.xml, log: log)
        case .failure(let error):
            backend.monitor.locked {
                backend.databaseErrors += 1
                if error.isConnectionFailure { backend.retryAt = self.clock() &+ 250_000_000 }
            }
            markDown(backend)
            // The probe may predate the answer another thread fetched meanwhile (the
            // first lookups after a start, racing an outage): look again.
            if let lastGood = probe.lastGood ?? backend.cache.lastGood(key, node: me) {
                return stale(lastGood, backend, log: log, error: error)
            }
            var outcome = failure("database", "fsconf: database unavailable, no answer for \(describe(key)): \(error.description)")
            outcome.log = log + outcome.log
            return outcome
        }
    }

    private func describe(_ key: CacheKey) -> String {
        switch key {
        case .directory(let q):
            switch q {
            case .user(let d, let u, _): return "directory \(u)@\(d)"
            case .group(let d, let g): return "directory group \(g)@\(d)"
            case .domain(let d, _): return "directory \(d)"
            case .gateways(let d): return "directory gateways \(d ?? "(all)")"
            case .none: return "directory"
            }
        case .dialplan(let c): return "dialplan \(c)"
        case .chatplan(let c): return "chatplan \(c)"
        case .configuration(let q): return "configuration \(q.document)"
        case .language(let q): return "\(q.phrases ? "phrases" : "languages") \(q.language)"
        }
    }

    // MARK: Outage

    private func markDown(_ backend: Backend) {
        backend.monitor.locked {
            if backend.downSince == nil {
                backend.downSince = (Int(time(nil)), MonotonicClock.now())
                backend.staleSinceLog = 0
            }
        }
    }

    private func stale(_ entry: NodeCache.Entry, _ backend: Backend, log: [(level: String, message: String)],
                       error: PostgresError? = nil) -> LookupOutcome {
        let (since, count): (Int, Int) = backend.monitor.locked {
            if backend.downSince == nil { backend.downSince = (Int(time(nil)), MonotonicClock.now()) }
            backend.staleServed += 1
            backend.staleTotal += 1
            backend.staleSinceLog += 1
            return (backend.downSince!.wall, backend.staleSinceLog)
        }
        var outcome = LookupOutcome(xml: entry.xml, log: log)
        let reason = error.map { ": \($0.description)" } ?? ""
        let message = "fsconf: database unavailable since \(clockTime(since)), serving stale answers (\(count) so far)\(reason)"
        if let line = limiter.admit(key: "stale", message: message) {
            outcome.log.append(("warning", line))
        }
        return outcome
    }

    /// After an outage: one line saying it is over.
    private func recovered(_ backend: Backend) -> String? {
        let ended: (Int, UInt64, Int)? = backend.monitor.locked {
            guard let down = backend.downSince else { return nil }
            backend.downSince = nil
            backend.retryAt = 0
            let served = backend.staleServed
            backend.staleServed = 0
            return (down.wall, down.mono, served)
        }
        guard let (wall, mono, served) = ended else { return nil }
        let seconds = Double((MonotonicClock.now() &- mono) / 1_000_000) / 1000
        return "fsconf: database answering again (unavailable since \(clockTime(wall)), \(seconds) s); served \(served) stale answer(s) meanwhile"
    }

    // MARK: Fetch and render

    /// Renders one lookup on `conn`, inside whatever transaction its caller holds:
    /// the node's planning, statement and renderer, without the cache, the pool,
    /// the globals copy or the outage fallback. What `fsconf apply --dry-run` and
    /// `fsconf import --dry-run` show before and after a change they roll back.
    /// The asking node is named as for any lookup (params, else `nodeName`).
    public func render(_ request: LookupRequest, on conn: PGConnection, deadlineMs: Int = 30_000,
                       node: @escaping (String) -> String?, nodeName: () -> String? = { nil }) -> LookupOutcome {
        guard let key = CacheKey.of(request) else {
            return LookupOutcome(xml: Section(rawValue: request.section) == nil ? nil : FreeSWITCHDocument.notFound)
        }
        let me = NodeIdentity.name(of: request, fallback: nodeName)
        switch answer(key, asker: me, deadline: MonotonicClock.deadline(afterMilliseconds: deadlineMs),
                      source: .connection(conn), node: node) {
        case .success(let a): return LookupOutcome(xml: a.xml, log: a.log)
        case .failure(let error): return LookupOutcome(xml: nil, error: "no answer for \(describe(key)): \(error.description)")
        }
    }

    /// Where a lookup's statement runs: a connection of the node's pool (with its
    /// globals copy), or one connection the caller holds (no retry: its
    /// transaction is the caller's; the globals read with every statement).
    enum RowSource {
        case backend(Backend)
        case connection(PGConnection)
    }

    private func answer(_ key: CacheKey, asker: String?, deadline: UInt64, source: RowSource,
                        node: @escaping (String) -> String?) -> Result<Answer, PostgresError> {
        switch key {
        case .directory(let query):
            guard let (statement, params) = DirectorySQL.bind(query, node: asker) else {
                return .success(Answer(xml: FreeSWITCHDocument.notFound, tags: CacheTags.of(key), negative: true, seq: nil))
            }
            // With the node's cache off nothing keeps the tags: not worked out per lookup.
            var keepsTags = true
            if case .backend(let b) = source { keepsTags = b.cache.enabled }
            // The result itself, kept past the connection's return to the pool: a user
            // lookup is rendered from its bytes (DirectoryUserRenderer), anything that
            // renderer leaves to the general way from decoded rows.
            return fetch(statement, params, asker: asker, source: source, deadline: deadline, decode: { [$0] }).map { f in
                if case .user(let domain, let user, let userKey) = query,
                   let r = withExtendedLifetime(f.rows[0], {
                       DirectoryUserRenderer.render(f.rows[0].directoryRawRows, domain: domain, user: user, key: userKey,
                                                    globals: f.globals, node: node, tags: keepsTags)
                   }) {
                    var answer = Answer(xml: r.answer.xml, tags: r.tags ?? CacheTags(section: Section.directory.rawValue, names: []),
                                        negative: r.answer.notFound || r.answer.noSuchUser, seq: f.seq)
                    answer.servable = !r.answer.heldByFreeSWITCH
                    return answer
                }
                var data = DirectoryData(rows: DirectorySQL.rows(f.rows[0]))
                data.globals = f.globals(data.globals)
                let rendered = DirectoryRenderer.answer(query, data, node: node)
                let tags = keepsTags ? CacheTags.directory(query, data, found: !rendered.notFound)
                    : CacheTags(section: Section.directory.rawValue, names: [])
                var answer = Answer(xml: rendered.xml, tags: tags,
                                    negative: rendered.notFound || rendered.noSuchUser, seq: f.seq)
                answer.servable = !rendered.heldByFreeSWITCH
                return answer
            }
        case .dialplan(let context):
            return dialplan(context, .dialplan, asker: asker, source: source, deadline: deadline, node: node)
        case .chatplan(let context):
            return dialplan(context, .chatplan, asker: asker, source: source, deadline: deadline, node: node)
        case .configuration(let query):
            let (statement, params) = DocumentSQL.bind(query, node: asker)
            return fetch(statement, params, asker: asker, source: source, deadline: deadline, decode: SectionRows.decode).map { f in
                var data = TreeData(rows: f.rows)
                data.globals = f.globals(data.globals)
                let xml = TreeRenderer.render(section: "configuration", data, narrowing: query.narrowing, node: node)
                return Answer(xml: xml, tags: CacheTags.of(key), negative: xml == FreeSWITCHDocument.notFound, seq: f.seq)
            }
        case .language(let query):
            let (statement, params) = DocumentSQL.bind(query, node: asker)
            return fetch(statement, params, asker: asker, source: source, deadline: deadline, decode: SectionRows.decode).map { f in
                var data = TreeData(rows: f.rows)
                data.globals = f.globals(data.globals)
                let xml = query.phrases ? TreeRenderer.renderPhrases(data, node: node) : TreeRenderer.render(section: "languages", data, node: node)
                return Answer(xml: xml, tags: CacheTags.of(key), negative: xml == FreeSWITCHDocument.notFound, seq: f.seq)
            }
        }
    }

    /// Regex verdicts are cached for the process: a large context is compiled once.
    let regexCompiler = CachingRegexCompiler()

    /// Contexts last found without a current stored document.
    let contextHints = ContextHints()

    private func dialplan(_ context: String, _ section: PlanSection, asker: String?, source: RowSource, deadline: UInt64,
                          node: @escaping (String) -> String?) -> Result<Answer, PostgresError> {
        let query = DialplanQuery.context(context)
        let (combined, params) = DialplanSQL.bind(query, section: section, node: asker)!
        // The stored document alone (the usual case), or, for a context last found
        // without one, the statement that returns the document or the rows.
        let readsRows = contextHints.readsRows(section, context)
        let statement = readsRows ? combined : DialplanSQL.stored
        // The result itself, kept past the connection's return to the pool: a stored
        // document (`P` row) is expanded from libpq's bytes straight into the answer.
        return fetch(statement, params, asker: asker, source: source, deadline: deadline, decode: { [$0] }).flatMap { f in
            let fetched = f.rows[0]
            let (rows, storedRow) = SectionRows.decode(fetched, leavingOut: "P")
            var data = DialplanData(rows: rows)
            data.globals = f.globals(data.globals)
            // The hint follows what the database said (only a change is written).
            if data.context != nil && readsRows == (storedRow != nil) {
                contextHints.set(section, context, readsRows: storedRow == nil)
            }
            var unpackFailed = false
            var result = withExtendedLifetime(fetched) { () -> DialplanRenderer.Result in
                func render(_ stored: UnsafeBufferPointer<UInt8>?) -> DialplanRenderer.Result {
                    DialplanRenderer.render(query, data, compiler: regexCompiler, node: node, section: section, stored: stored)
                }
                // No current document: the rows came along (`context`), or are read next.
                guard let row = storedRow else { return readsRows || data.context == nil ? render(nil) : .fromRows }
                // Packed (migration 0010): unpacked into a buffer the answer is expanded
                // from. A block that does not unpack to its length is read as rows.
                if let hex = fetched.bytes(row, 6) {
                    let length = fetched.int(row, 7) ?? -1
                    if let rendered = PackedDocument.unpack(hex: hex, length: length, render) { return rendered }
                    unpackFailed = true
                    return .fromRows
                }
                return render(fetched.bytes(row, 5))
            }
            var seq = f.seq
            if result.needsRows, let id = data.context?.id {
                // No current stored document, or one holding an expression this node's
                // values make invalid (the rows leave that extension out and say so), or
                // one that did not unpack: render the rows.
                let rows = DialplanSQL.contextRows
                switch fetch(rows, [String(id), section.rawValue, asker], asker: asker, source: source, deadline: deadline,
                             decode: SectionRows.decode) {
                case .failure(let error): return .failure(error)
                case .success(let r):
                    var fromRows = DialplanData(rows: r.rows)
                    fromRows.globals = r.globals(fromRows.globals)
                    result = DialplanRenderer.render(query, fromRows, compiler: regexCompiler, node: node, section: section)
                    seq = r.seq.map { min($0, seq ?? $0) } ?? seq
                }
            }
            let found = result.xml != FreeSWITCHDocument.notFound
            let key: CacheKey = section == .chatplan ? .chatplan(context) : .dialplan(context)
            var answer = Answer(xml: result.xml, tags: CacheTags.of(key, found: found), negative: !found, seq: seq)
            if unpackFailed {
                let message = "fsconf: \(section.rawValue) context \(context): its stored document did not unpack; served from its rows (`fsconf prerender --all` stores it again)"
                if let line = limiter.admit(key: "\(section.rawValue)-unpack:\(context)", message: message) {
                    answer.log.append(("warning", line))
                }
            }
            if !result.skipped.isEmpty {
                // One bad row never breaks the context: the extension is left out and said so.
                let list = result.skipped.prefix(5).map { "\($0.name) (position \($0.position)): \($0.problems.joined(separator: "; "))" }
                let more = result.skipped.count > 5 ? " and \(result.skipped.count - 5) more" : ""
                let message = "fsconf: \(section.rawValue) context \(context): skipped \(result.skipped.count) invalid extension(s): \(list.joined(separator: " | "))\(more)"
                if let line = limiter.admit(key: "\(section.rawValue)-skip:\(context)", message: message) {
                    answer.log.append(("warning", line))
                }
            }
            return .success(answer)
        }
    }

    /// The globals version this process holds for a node with no name (nil before
    /// its first lookup), for tests.
    var globalsVersion: String? { currentBackend()?.globals.current(for: nil).version }

    /// Pool statistics, for tests and diagnostics.
    public var poolStats: (open: Int, idle: Int) { currentBackend()?.pool.stats ?? (0, 0) }

    /// Cache, listener and outage counters, for tests and diagnostics (`fsconf.stats()`).
    public var cacheStats: CacheStatistics {
        guard let b = currentBackend() else { return CacheStatistics() }
        let c = b.cache.stats, l = b.listener.stats
        let (stale, down, errors): (Int, Bool, Int) = b.monitor.locked { (b.staleTotal, b.downSince != nil, b.databaseErrors) }
        var out = CacheStatistics(hits: c.hits, misses: c.misses, inserts: c.inserts, rejected: c.rejected,
                                  invalidated: c.invalidated, evictions: c.evictions, entries: c.entries, bytes: c.bytes,
                                  capacity: b.cache.capacity, epoch: Int(c.epoch), heardSeq: Int(c.heardSeq), fresh: c.fresh,
                                  stale: stale, databaseDown: down, listenerConnected: l.connected,
                                  listenerOnStandby: l.onStandby, listenerSeq: Int(l.lastSeq), notices: l.notices,
                                  polls: l.polls, reconnects: l.reconnects)
        let pool = b.pool.stats
        out.databaseErrors = errors
        out.poolOpen = pool.open
        out.poolIdle = pool.idle
        out.poolSize = b.settings.poolSize
        return out
    }

    /// The shim's settings could not be used: nil and the message, logged once per interval.
    public func settingsFailure(_ error: NodeError) -> LookupOutcome {
        failure("settings", error.description)
    }

    private func failure(_ key: String, _ message: String) -> LookupOutcome {
        var outcome = LookupOutcome(xml: nil, error: message)
        if let line = limiter.admit(key: key, message: message) { outcome.log.append(("err", line)) }
        return outcome
    }

    /// The backend in use (nil before the first lookup).
    private func currentBackend() -> Backend? { monitor.locked { self.backend } }

    /// The backend for these settings and its generation; a changed configuration
    /// replaces it (and stops the old listener).
    private func currentBackendAndGeneration(_ settings: NodeSettings) -> (Backend, UInt64) {
        let (backend, current, old): (Backend, UInt64, Backend?) = monitor.locked {
            if let existing = self.backend, existing.settings == settings {
                return (existing, generation.load(ordering: .relaxed), nil)
            }
            let old = self.backend
            let created = Backend(settings: settings, clock: clock)
            self.backend = created
            let next = generation.load(ordering: .relaxed) &+ 1
            generation.store(next, ordering: .releasing)
            return (created, next, old)
        }
        old?.shutdown()
        return (backend, current)
    }

    /// What a statement returned: its rows, the `Q` row's change seq, and the
    /// global variables to render with (`globals`).
    struct Fetched<Row> {
        var rows: [Row]
        var seq: Int64?
        let sent: (version: String?, values: [String: String])
        let returned: String?
        let copy: GlobalsCopy
        /// The asking node: its globals are its own (docs/cluster.md).
        let asker: String?

        /// The globals of this lookup: `fromRows` (the `V` rows, decoded by the
        /// caller) when the statement sent them, else the node's copy.
        func globals(_ fromRows: [String: String]) -> [String: String] {
            copy.resolve(for: asker, sent: sent, returned: returned) { fromRows }
        }
    }

    /// Runs one statement with the asking node's globals version: retries once on a
    /// dead connection (server restarted, idle connection killed) if the deadline allows.
    func fetch<Row>(_ statement: DirectorySQL.Statement, _ keys: [String?], asker: String?, source: RowSource,
                    deadline: UInt64, decode: (PGResult) -> [Row]) -> Result<Fetched<Row>, PostgresError> {
        let backend: Backend
        switch source {
        case .backend(let b):
            backend = b
        case .connection(let conn):
            // No version sent: the statement returns the globals it sees.
            do {
                try conn.prepare(statement.name, statement.sql, deadline: deadline)
                let result = try conn.queryPrepared(statement.name, statement.arguments(keys, globalsVersion: nil), deadline: deadline)
                let q = ChangeSeq.of(result)
                return .success(Fetched(rows: decode(result), seq: q?.seq, sent: (nil, [:]), returned: q?.globalsVersion,
                                        copy: GlobalsCopy(), asker: asker))
            } catch {
                return .failure(error)
            }
        }
        let pool = backend.pool
        let held = backend.globals.current(for: asker)
        let params = statement.arguments(keys, globalsVersion: held.version)
        var attempt = 0
        while true {
            attempt += 1
            let conn: PGConnection
            do {
                conn = try pool.checkout(deadline: deadline)
            } catch {
                return .failure(error)
            }
            do {
                try conn.prepare(statement.name, statement.sql, deadline: deadline)
                let result = try conn.queryPrepared(statement.name, params, deadline: deadline)
                let rows = decode(result)
                let q = ChangeSeq.of(result)
                pool.checkin(conn)
                return .success(Fetched(rows: rows, seq: q?.seq, sent: held, returned: q?.globalsVersion,
                                        copy: backend.globals, asker: asker))
            } catch {
                if error.isConnectionFailure || !conn.isIdle {
                    pool.discard(conn)
                    if attempt == 1 && error.kind != .timeout && MonotonicClock.now() < deadline { continue }
                } else {
                    pool.checkin(conn)
                }
                return .failure(error)
            }
        }
    }
}

/// Lets a message through at most once per interval per key, counting the rest.
final class LogLimiter: @unchecked Sendable {
    private let monitor = Monitor()
    private let interval: UInt64
    private var last: [String: (at: UInt64, suppressed: Int)] = [:]

    init(intervalSeconds: Int) { interval = UInt64(intervalSeconds) * 1_000_000_000 }

    func admit(key: String, message: String) -> String? {
        let now = MonotonicClock.now()
        return monitor.locked {
            if let entry = last[key], now &- entry.at < interval {
                last[key] = (entry.at, entry.suppressed + 1)
                return nil
            }
            let suppressed = last[key]?.suppressed ?? 0
            last[key] = (now, 0)
            return suppressed > 0 ? "\(message) (\(suppressed) similar message(s) suppressed)" : message
        }
    }
}

/// Counters of the in-node cache, its listener and outages.
public struct CacheStatistics: Sendable, Equatable {
    public var hits = 0, misses = 0, inserts = 0, rejected = 0, invalidated = 0, evictions = 0
    public var entries = 0, bytes = 0, capacity = 0, epoch = 0, heardSeq = 0
    public var fresh = false
    public var stale = 0
    public var databaseDown = false
    public var listenerConnected = false, listenerOnStandby = false
    public var listenerSeq = 0, notices = 0, polls = 0, reconnects = 0
    /// Lookups the database failed; connections open and idle, and the pool's bound.
    public var databaseErrors = 0, poolOpen = 0, poolIdle = 0, poolSize = 0

    public init() {}
    init(hits: Int, misses: Int, inserts: Int, rejected: Int, invalidated: Int, evictions: Int, entries: Int, bytes: Int,
         capacity: Int, epoch: Int, heardSeq: Int, fresh: Bool, stale: Int, databaseDown: Bool, listenerConnected: Bool,
         listenerOnStandby: Bool, listenerSeq: Int, notices: Int, polls: Int, reconnects: Int) {
        self.hits = hits; self.misses = misses; self.inserts = inserts; self.rejected = rejected
        self.invalidated = invalidated; self.evictions = evictions; self.entries = entries; self.bytes = bytes
        self.capacity = capacity; self.epoch = epoch; self.heardSeq = heardSeq; self.fresh = fresh; self.stale = stale
        self.databaseDown = databaseDown; self.listenerConnected = listenerConnected
        self.listenerOnStandby = listenerOnStandby; self.listenerSeq = listenerSeq; self.notices = notices
        self.polls = polls; self.reconnects = reconnects
    }

    /// Name/value pairs, in a fixed order (the Lua table of `fsconf.stats()`).
    public var fields: [(String, Int)] {
        [("hits", hits), ("misses", misses), ("inserts", inserts), ("rejected", rejected), ("invalidated", invalidated),
         ("evictions", evictions), ("entries", entries), ("bytes", bytes), ("capacity", capacity), ("epoch", epoch),
         ("heard_seq", heardSeq), ("fresh", fresh ? 1 : 0), ("stale", stale), ("database_down", databaseDown ? 1 : 0),
         ("listener_connected", listenerConnected ? 1 : 0), ("listener_on_standby", listenerOnStandby ? 1 : 0),
         ("listener_seq", listenerSeq), ("notices", notices), ("polls", polls), ("reconnects", reconnects),
         ("database_errors", databaseErrors), ("pool_open", poolOpen), ("pool_idle", poolIdle), ("pool_size", poolSize)]
    }
}

/// "HH:MM:SS" local time of a time_t.
func clockTime(_ t: Int) -> String {
    var value = time_t(t)
    var parts = tm()
    localtime_r(&value, &parts)
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
}
