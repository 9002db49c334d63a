import CLibPQ
import Glibc

/// One libpq connection. Owns its `PGconn` and frees it in `deinit`.
/// Not thread-safe: one thread uses it at a time (the pool hands it out).
public final class PGConnection {
    let handle: OpaquePointer
    private var prepared: Set<String> = []

    /// Connects, blocking. `conninfo` may be empty: libpq then uses PGHOST,
    /// PGDATABASE, PGSERVICE, ~/.pgpass... as every PostgreSQL tool does.
    public init(conninfo: String) throws(PostgresError) {
        guard let conn = PQconnectdb(conninfo) else {
            throw PostgresError(kind: .connection, message: "out of memory")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn))
            PQfinish(conn)
            throw PostgresError(kind: .connection, message: message)
        }
        fsconf_pq_silence_notices(conn)
        handle = conn
    }

    /// Connects without blocking past `deadline` (a MonotonicClock value): libpq's
    /// own connect_timeout cannot go below 2 s, far too long for a SIP thread.
    /// `settings` are libpq keywords applied over `conninfo` (e.g. application_name).
    public init(conninfo: String, settings: [(String, String)] = [], deadline: UInt64) throws(PostgresError) {
        let keywords = ["dbname"] + settings.map(\.0)
        let values = [conninfo] + settings.map(\.1)
        let started: OpaquePointer? = PGConnection.withCStrings(keywords.map { $0 }) { k in
            PGConnection.withCStrings(values.map { $0 }) { v in
                var kk = k + [nil], vv = v + [nil]
                return PQconnectStartParams(&kk, &vv, 1)
            }
        }
        guard let conn = started else { throw PostgresError(kind: .connection, message: "out of memory") }
        if PQstatus(conn) == CONNECTION_BAD {
            let message = String(cString: PQerrorMessage(conn))
            PQfinish(conn)
            throw PostgresError(kind: .connection, message: message)
        }
        var state = PGRES_POLLING_WRITING
        while true {
            if state == PGRES_POLLING_OK { break }
            if state == PGRES_POLLING_FAILED {
                let message = String(cString: PQerrorMessage(conn))
                PQfinish(conn)
                throw PostgresError(kind: .connection, message: message)
            }
            let events = Int16(state == PGRES_POLLING_READING ? POLLIN : POLLOUT)
            let ready = PGConnection.wait(socket: PQsocket(conn), events: events, deadline: deadline)
            if !ready {
                PQfinish(conn)
                throw PostgresError(kind: .timeout, message: "connecting took longer than the deadline")
            }
            state = PQconnectPoll(conn)
        }
        fsconf_pq_silence_notices(conn)
        handle = conn
    }

    deinit { PQfinish(handle) }

    public var isOK: Bool { PQstatus(handle) == CONNECTION_OK }
    /// Idle and connected: safe to hand to the next user.
    public var isIdle: Bool { isOK && PQtransactionStatus(handle) == PQTRANS_IDLE }
    private var socket: Int32 { PQsocket(handle) }

    // MARK: Blocking calls (the CLI)

    /// Runs one statement with text parameters ($1, $2...). Values never enter the SQL text.
    @discardableResult
    public func query(_ sql: String, _ params: [String?] = []) throws(PostgresError) -> PGResult {
        let result = PGConnection.withCStrings(params) { values in
            PQexecParams(handle, sql, Int32(params.count), nil, values, nil, nil, 0)
        }
        return try check(result, sql: sql)
    }

    /// Runs a script of statements with no parameters (the simple query protocol).
    @discardableResult
    public func execute(_ sql: String) throws(PostgresError) -> PGResult {
        try check(PQexec(handle, sql), sql: sql)
    }

    /// Prepares `sql` once per connection under `name`.
    public func prepare(_ name: String, _ sql: String) throws(PostgresError) {
        if prepared.contains(name) { return }
        _ = try check(PQprepare(handle, name, sql, 0, nil), sql: sql)
        prepared.insert(name)
    }


    // MARK: Calls with a deadline (the node)

    /// Runs prepared statement `name` and waits at most until `deadline`.
    /// On timeout the connection is left in an unknown state: drop it.
    public func queryPrepared(_ name: String, _ params: [String?], deadline: UInt64) throws(PostgresError) -> PGResult {
        let sent = PGConnection.withCStrings(params) { values in
            PQsendQueryPrepared(handle, name, Int32(params.count), values, nil, nil, 0)
        }
        guard sent == 1 else { throw PostgresError.from(result: nil, connection: handle, sql: name) }
        return try awaitResult(deadline: deadline, label: name)
    }

    /// Prepares `sql` as `name` on this connection, waiting at most until `deadline`.
    public func prepare(_ name: String, _ sql: String, deadline: UInt64) throws(PostgresError) {
        if prepared.contains(name) { return }
        guard PQsendPrepare(handle, name, sql, 0, nil) == 1 else {
            throw PostgresError.from(result: nil, connection: handle, sql: sql)
        }
        _ = try awaitResult(deadline: deadline, label: name)
        prepared.insert(name)
    }

    /// Runs one statement with text parameters ($1, $2...), waiting at most until
    /// `deadline`. Values never enter the SQL text.
    @discardableResult
    public func query(_ sql: String, _ params: [String?], deadline: UInt64) throws(PostgresError) -> PGResult {
        let sent = PGConnection.withCStrings(params) { values in
            PQsendQueryParams(handle, sql, Int32(params.count), nil, values, nil, nil, 0)
        }
        guard sent == 1 else { throw PostgresError.from(result: nil, connection: handle, sql: sql) }
        return try awaitResult(deadline: deadline, label: sql)
    }

    /// Runs `sql` (no parameters) waiting at most until `deadline`.
    @discardableResult
    public func execute(_ sql: String, deadline: UInt64) throws(PostgresError) -> PGResult {
        guard PQsendQuery(handle, sql) == 1 else { throw PostgresError.from(result: nil, connection: handle, sql: sql) }
        return try awaitResult(deadline: deadline, label: sql)
    }

    /// Flushes the request and collects the last result, never waiting past `deadline`.
    private func awaitResult(deadline: UInt64, label: String) throws(PostgresError) -> PGResult {
        while true {
            let flushed = PQflush(handle)
            if flushed == 0 { break }
            if flushed < 0 { throw PostgresError.from(result: nil, connection: handle, sql: label) }
            guard PGConnection.wait(socket: socket, events: Int16(POLLOUT | POLLIN), deadline: deadline) else {
                throw PostgresError(kind: .timeout, message: "no answer within the deadline", sql: label)
            }
            if PQconsumeInput(handle) == 0 { throw PostgresError.from(result: nil, connection: handle, sql: label) }
        }
        var last: OpaquePointer?
        while true {
            while PQisBusy(handle) == 1 {
                guard PGConnection.wait(socket: socket, events: Int16(POLLIN), deadline: deadline) else {
                    if let last { PQclear(last) }
                    throw PostgresError(kind: .timeout, message: "no answer within the deadline", sql: label)
                }
                if PQconsumeInput(handle) == 0 {
                    if let last { PQclear(last) }
                    throw PostgresError.from(result: nil, connection: handle, sql: label)
                }
            }
            guard let next = PQgetResult(handle) else { break }
            if let last {
                // Keep the first error if several results came back.
                if PQresultStatus(last) == PGRES_FATAL_ERROR { PQclear(next); continue }
                PQclear(last)
            }
            last = next
        }
        return try check(last, sql: label)
    }

    // MARK: Notifications

    /// Reads pending input and returns the notifications received so far.
    public func drainNotifications() throws(PostgresError) -> [(channel: String, payload: String)] {
        if PQconsumeInput(handle) == 0 { throw PostgresError.from(result: nil, connection: handle, sql: nil) }
        var out: [(String, String)] = []
        while let n = PQnotifies(handle) {
            out.append((String(cString: n.pointee.relname), String(cString: n.pointee.extra)))
            PQfreemem(n)
        }
        return out
    }

    /// Waits until the socket is readable or `deadline` passes. True when readable.
    public func waitReadable(deadline: UInt64) -> Bool {
        PGConnection.wait(socket: socket, events: Int16(POLLIN), deadline: deadline)
    }

    // MARK: Helpers

    private func check(_ result: OpaquePointer?, sql: String) throws(PostgresError) -> PGResult {
        guard let result else { throw PostgresError.from(result: nil, connection: handle, sql: sql) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return PGResult(result)
        default:
            let error = PostgresError.from(result: result, connection: handle, sql: sql)
            PQclear(result)
            throw error
        }
    }

    /// Escapes an identifier for the rare SQL that cannot take a parameter
    /// (GRANT ... TO role, LISTEN channel).
    public func quoteIdentifier(_ name: String) -> String {
        guard let p = PQescapeIdentifier(handle, name, name.utf8.count) else { return "\"\"" }
        defer { PQfreemem(p) }
        return String(cString: p)
    }

    static func wait(socket: Int32, events: Int16, deadline: UInt64) -> Bool {
        if socket < 0 { return false }
        var fd = pollfd(fd: socket, events: events, revents: 0)
        while true {
            let timeout = MonotonicClock.remainingMilliseconds(deadline)
            let n = poll(&fd, 1, timeout)
            if n > 0 { return true }
            if n == 0 { return false }
            if errno != EINTR { return false }
        }
    }

    static func withCStrings<R>(_ values: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        var owned: [UnsafeMutablePointer<CChar>?] = values.map { v in v.map { strdup($0) } }
        defer { for p in owned { free(p) } }
        return owned.withUnsafeMutableBufferPointer { buffer in
            body(buffer.map { UnsafePointer($0) })
        }
    }
}

/// A query result. Owns its `PGresult` and frees it in `deinit`.
public final class PGResult {
    let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { PQclear(handle) }

    public var rowCount: Int { Int(PQntuples(handle)) }
    public var columnCount: Int { Int(PQnfields(handle)) }
    public var affectedRows: Int { Int(String(cString: PQcmdTuples(handle))) ?? 0 }

    public func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(handle, Int32(row), Int32(column)) == 1 }

    /// A NULL has length 0: only an empty value asks libpq whether it is NULL.
    public func string(_ row: Int, _ column: Int) -> String? {
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        if length == 0 { return isNull(row, column) ? nil : "" }
        guard let p = PQgetvalue(handle, Int32(row), Int32(column)) else { return nil }
        return p.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
    }

    public func int(_ row: Int, _ column: Int) -> Int? { int64(row, column).map { Int($0) } }

    /// A decimal integer value read from the result's bytes (no string made), or nil
    /// when NULL or not an integer.
    public func int64(_ row: Int, _ column: Int) -> Int64? {
        // A NULL has length 0, refused below with any other empty value.
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        guard length > 0, length <= 20, let p = PQgetvalue(handle, Int32(row), Int32(column)) else { return nil }
        var i = 0
        let negative = p[0] == 0x2D   // "-"
        if negative { i = 1; guard length > 1 else { return nil } }
        var value: Int64 = 0
        while i < length {
            let digit = Int64(p[i]) - 0x30
            guard digit >= 0 && digit <= 9 else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
            if o1 || o2 { return nil }
            value = sum
            i += 1
        }
        return value
    }

    /// The value's bytes, for decoders that do not need a String (nil when NULL).
    public func withBytes<T>(_ row: Int, _ column: Int, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T? {
        bytes(row, column).map(body)
    }

    /// The value's bytes in the result's own memory (valid while the result lives), nil when NULL.
    public func bytes(_ row: Int, _ column: Int) -> UnsafeBufferPointer<UInt8>? {
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        if length == 0 && isNull(row, column) { return nil }
        guard let p = PQgetvalue(handle, Int32(row), Int32(column)) else { return nil }
        return UnsafeRawPointer(p).withMemoryRebound(to: UInt8.self, capacity: length) { UnsafeBufferPointer(start: $0, count: length) }
    }

    public func bool(_ row: Int, _ column: Int) -> Bool? {
        string(row, column).map { $0 == "t" || $0 == "true" }
    }
}
