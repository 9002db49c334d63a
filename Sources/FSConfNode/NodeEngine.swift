import FSConfCore
import FSConfRegex
import FSConfStore

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
public final class NodeEngine: @unchecked Sendable {
    public static let shared = NodeEngine()

    private let monitor = Monitor()
    private var pool: ConnectionPool?
    private let limiter = LogLimiter(intervalSeconds: 10)

    public init() {}

    /// Answers one lookup. Never throws; never blocks past the settings' deadline
    /// for database work. `node` reads a FreeSWITCH global variable.
    public func handle(_ request: LookupRequest, settings: NodeSettings,
                       node: @escaping (String) -> String?) -> LookupOutcome {
        if let shim = settings.shimSchema, shim != SchemaVersion.current {
            return failure("schema", """
                fsconf: the shim was generated for schema \(shim) but the library reads schema \(SchemaVersion.current): \
                regenerate it with `fsconf shim`
                """)
        }
        switch request.section {
        case Section.directory.rawValue:
            let query = DirectoryQuery.plan(request)
            guard let (statement, params) = DirectorySQL.bind(query) else {
                return LookupOutcome(xml: FreeSWITCHDocument.notFound)
            }
            let deadline = MonotonicClock.deadline(afterMilliseconds: settings.deadlineMs)
            switch fetch(statement, params, settings: settings, deadline: deadline, decode: DirectorySQL.rows) {
            case .success(let rows):
                let xml = DirectoryRenderer.render(query, DirectoryData(rows: rows), node: node)
                return LookupOutcome(xml: xml)
            case .failure(let error):
                return failure("database", "fsconf: database unavailable, no answer for directory \(request.keyValue): \(error.description)")
            }
        case Section.dialplan.rawValue:
            return dialplan(request, settings: settings, node: node)
        case Section.configuration.rawValue:
            guard let query = ConfigurationQuery.plan(request) else { return LookupOutcome(xml: FreeSWITCHDocument.notFound) }
            let (statement, params) = DocumentSQL.bind(query)
            return tree(statement, params, settings: settings, what: "configuration \(query.document)") { data in
                TreeRenderer.render(section: "configuration", data, narrowing: query.narrowing, node: node)
            }
        case Section.languages.rawValue, Section.phrases.rawValue:
            let phrases = request.section == Section.phrases.rawValue
            guard let query = LanguageQuery.plan(request, phrases: phrases) else {
                return LookupOutcome(xml: FreeSWITCHDocument.notFound)
            }
            let (statement, params) = DocumentSQL.bind(query)
            return tree(statement, params, settings: settings, what: "\(request.section) \(query.language)") { data in
                phrases ? TreeRenderer.renderPhrases(data, node: node) : TreeRenderer.render(section: "languages", data, node: node)
            }
        default:
            // Sections fsconf does not serve: no answer, FreeSWITCH uses its files.
            return LookupOutcome(xml: nil)
        }
    }

    /// Regex verdicts are cached for the process: a large context is compiled once.
    let regexCompiler = CachingRegexCompiler()

    private func dialplan(_ request: LookupRequest, settings: NodeSettings,
                          node: @escaping (String) -> String?) -> LookupOutcome {
        let query = DialplanQuery.plan(request)
        guard let (statement, params) = DialplanSQL.bind(query) else {
            return LookupOutcome(xml: FreeSWITCHDocument.notFound)
        }
        let deadline = MonotonicClock.deadline(afterMilliseconds: settings.deadlineMs)
        switch fetch(statement, params, settings: settings, deadline: deadline, decode: SectionRows.decode) {
        case .success(let rows):
            let result = DialplanRenderer.render(query, DialplanData(rows: rows), compiler: regexCompiler, node: node)
            var outcome = LookupOutcome(xml: result.xml)
            if !result.skipped.isEmpty, case .context(let context) = query {
                // One bad row never breaks the context: the extension is left out and said so.
                let list = result.skipped.prefix(5).map { "\($0.name) (position \($0.position)): \($0.problems.joined(separator: "; "))" }
                let more = result.skipped.count > 5 ? " and \(result.skipped.count - 5) more" : ""
                let message = "fsconf: dialplan context \(context): skipped \(result.skipped.count) invalid extension(s): \(list.joined(separator: " | "))\(more)"
                if let line = limiter.admit(key: "dialplan-skip:\(context)", message: message) {
                    outcome.log.append(("warning", line))
                }
            }
            return outcome
        case .failure(let error):
            return failure("database", "fsconf: database unavailable, no answer for dialplan: \(error.description)")
        }
    }

    private func tree(_ statement: DirectorySQL.Statement, _ params: [String?], settings: NodeSettings, what: String,
                      render: (TreeData) -> String) -> LookupOutcome {
        let deadline = MonotonicClock.deadline(afterMilliseconds: settings.deadlineMs)
        switch fetch(statement, params, settings: settings, deadline: deadline, decode: SectionRows.decode) {
        case .success(let rows):
            return LookupOutcome(xml: render(TreeData(rows: rows)))
        case .failure(let error):
            return failure("database", "fsconf: database unavailable, no answer for \(what): \(error.description)")
        }
    }

    /// Pool statistics, for tests and diagnostics.
    public var poolStats: (open: Int, idle: Int) { currentPool(nil)?.stats ?? (0, 0) }

    private func failure(_ key: String, _ message: String) -> LookupOutcome {
        var outcome = LookupOutcome(xml: nil, error: message)
        if let line = limiter.admit(key: key, message: message) { outcome.log.append(("err", line)) }
        return outcome
    }

    /// The pool for these settings; a changed configuration replaces the pool.
    private func currentPool(_ settings: NodeSettings?) -> ConnectionPool? {
        let (pool, old): (ConnectionPool?, ConnectionPool?) = monitor.locked {
            guard let settings else { return (self.pool, nil) }
            if let existing = self.pool, existing.settings == settings { return (existing, nil) }
            let old = self.pool
            self.pool = ConnectionPool(settings: settings)
            return (self.pool, old)
        }
        old?.shutdown()
        return pool
    }

    /// Runs one statement: retries once on a dead connection (server restarted,
    /// idle connection killed) if the deadline allows.
    func fetch<Row>(_ statement: DirectorySQL.Statement, _ params: [String?], settings: NodeSettings,
                    deadline: UInt64, decode: (PGResult) -> [Row]) -> Result<[Row], PostgresError> {
        let pool = currentPool(settings)!
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
                pool.checkin(conn)
                return .success(rows)
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
