import CLibPQ

/// A failure talking to PostgreSQL.
///
/// `description` is safe to log anywhere: it never contains a password or the
/// connection string. `debugDescription` adds the SQL, detail and hint.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public enum Kind: String, Sendable {
        /// Could not connect (server down, wrong host, authentication failed...).
        case connection
        /// The server rejected a statement.
        case query
        /// The deadline passed before the server answered.
        case timeout
        /// The connection broke while a statement ran.
        case connectionLost
    }
    public var kind: Kind
    /// The server's primary message (or libpq's, for connection failures), one line.
    public var message: String
    /// SQLSTATE, when the server sent one.
    public var sqlState: String?
    public var detail: String?
    public var hint: String?
    /// The statement that failed, when there was one.
    public var sql: String?
    /// The constraint a write violated (PG_DIAG_CONSTRAINT_NAME), when it was one.
    public var constraint: String?

    public init(kind: Kind, message: String, sqlState: String? = nil, detail: String? = nil,
                hint: String? = nil, sql: String? = nil) {
        self.kind = kind
        self.message = PostgresError.firstLine(message)
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.sql = sql
    }

    public var description: String {
        switch kind {
        case .connection: return "cannot connect to PostgreSQL: \(message)"
        case .timeout: return "PostgreSQL did not answer in time: \(message)"
        case .connectionLost: return "connection to PostgreSQL lost: \(message)"
        case .query:
            if let sqlState { return "\(message) (SQLSTATE \(sqlState))" }
            return message
        }
    }

    public var debugDescription: String {
        var out = description
        if let detail { out += "\nDETAIL: \(detail)" }
        if let hint { out += "\nHINT: \(hint)" }
        if let sql { out += "\nSQL: \(sql)" }
        return out
    }

    /// True when the connection itself is unusable (as opposed to a bad statement).
    public var isConnectionFailure: Bool {
        kind != .query || (sqlState?.hasPrefix("08") ?? false) || sqlState == "57P01" || sqlState == "57P02" || sqlState == "57P03"
    }

    static func firstLine(_ text: String) -> String {
        var line = text
        if let nl = line.firstIndex(of: "\n") { line = String(line[..<nl]) }
        for prefix in ["ERROR:  ", "FATAL:  "] where line.hasPrefix(prefix) { line = String(line.dropFirst(prefix.count)) }
        return line.isEmpty ? "unknown error" : line
    }

    /// Builds the error from a failed result.
    static func from(result: OpaquePointer?, connection: OpaquePointer?, sql: String?) -> PostgresError {
        func field(_ code: Int32) -> String? {
            guard let result, let p = PQresultErrorField(result, code) else { return nil }
            return String(cString: p)
        }
        let primary = field(Int32(UInt8(ascii: "M"))) // PG_DIAG_MESSAGE_PRIMARY
        let state = field(Int32(UInt8(ascii: "C")))   // PG_DIAG_SQLSTATE
        if let primary {
            var e = PostgresError(kind: .query, message: primary, sqlState: state,
                                  detail: field(Int32(UInt8(ascii: "D"))), hint: field(Int32(UInt8(ascii: "H"))), sql: sql)
            e.constraint = field(Int32(UInt8(ascii: "n")))
            return e
        }
        let lost = connection.map { PQstatus($0) != CONNECTION_OK } ?? true
        let text = connection.flatMap { PQerrorMessage($0) }.map { String(cString: $0) } ?? "no result"
        return PostgresError(kind: lost ? .connectionLost : .query, message: text, sql: sql)
    }
}
