import FSConfCore
import FSConfStore

/// The process-wide pool of connections a node uses for lookups: created lazily,
/// bounded, health-checked on return, and connected outside the lock.
final class ConnectionPool: @unchecked Sendable {
    let settings: NodeSettings
    private let monitor = Monitor()
    private var idle: [PGConnection] = []
    private var open = 0          // idle + checked out + being connected
    private var closed = false

    init(settings: NodeSettings) { self.settings = settings }

    /// An initialised connection, or an error once `deadline` passes.
    func checkout(deadline: UInt64) throws(PostgresError) -> PGConnection {
        enum Next { case reuse(PGConnection), connect }
        var next: Next?
        monitor.locked {
            while next == nil {
                if let conn = idle.popLast() { next = .reuse(conn); break }
                if open < settings.poolSize { open += 1; next = .connect; break }
                if !monitor.wait(until: deadline) && MonotonicClock.now() >= deadline { break }
            }
        }
        switch next {
        case .reuse(let conn)?:
            return conn
        case .connect?:
            do {
                return try connect(deadline: deadline)
            } catch {
                release()
                throw error
            }
        case nil:
            throw PostgresError(kind: .timeout, message: "all \(settings.poolSize) connections busy until the deadline")
        }
    }

    /// Returns a connection; an unhealthy one is closed and its slot freed.
    func checkin(_ conn: PGConnection) {
        let keep = conn.isIdle
        let extra: PGConnection? = monitor.locked {
            if keep && !closed { idle.append(conn); monitor.signal(); return nil }
            open -= 1
            monitor.signal()
            return conn
        }
        _ = extra  // closed here, outside the lock (PQfinish may touch the network)
    }

    /// Closes a connection that failed; frees its slot.
    func discard(_ conn: PGConnection) {
        release()
        _ = conn
    }

    /// Closes every idle connection (configuration changed); busy ones close on return.
    func shutdown() {
        let dropped: [PGConnection] = monitor.locked {
            closed = true
            let list = idle
            open -= list.count
            idle.removeAll()
            monitor.broadcast()
            return list
        }
        _ = dropped
    }

    var stats: (open: Int, idle: Int) { monitor.locked { (open, idle.count) } }

    private func release() {
        monitor.locked {
            open -= 1
            monitor.signal()
        }
    }

    private func connect(deadline: UInt64) throws(PostgresError) -> PGConnection {
        // Values arrive as UTF-8 whatever the database's encoding (the server converts):
        // answers are rendered from the result's bytes (DirectoryUserRenderer).
        let conn = try PGConnection(conninfo: settings.effectiveConninfo,
                                    settings: [("application_name", "fsconf-node"), ("client_encoding", "UTF8")],
                                    deadline: deadline)
        // A server-side limit too, so a query the node gave up on does not run on.
        // Generic plans always: the lookup statements are written for them (one
        // plan per statement whatever the keys), and planning one (~0.5 ms) costs
        // several times its execution; PostgreSQL's own choice could flip to
        // custom plans after any number of executions (docs/performance.md).
        let version = try conn.execute("""
            SET statement_timeout = \(settings.statementTimeoutMs); SET jit = off; SET plan_cache_mode = force_generic_plan;
            SELECT coalesce(max(version), 0) FROM fsconf.schema_migrations
            """, deadline: deadline)
        let found = version.int(0, 0) ?? 0
        if found != SchemaVersion.current {
            throw PostgresError(kind: .query, message: """
                database schema is at version \(found) but this fsconf library reads version \(SchemaVersion.current): \
                run `fsconf migrate up` or install the matching library
                """)
        }
        return conn
    }
}
