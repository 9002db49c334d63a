import FSConfCore
import FSConfAdminCore
import FSConfStore

/// A migration that failed: which file, which statement, and PostgreSQL's reason.
/// The file's transaction was rolled back, so the schema is as it was before.
public struct MigrationRunError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public var filename: String
    public var direction: String
    public var statementNumber: Int
    public var line: Int
    public var underlying: PostgresError

    public var description: String {
        "\(filename):\(line): statement \(statementNumber) of the \(direction) section failed: \(underlying.description); nothing from this file was applied"
    }
    public var debugDescription: String { description + "\n" + underlying.debugDescription }
}

/// Runs migration plans against one connection. The advisory lock makes
/// concurrent runs (two admins, many nodes starting) queue instead of interleave.
public final class Migrator {
    /// `pg_advisory_lock` key: "fsconf" as ASCII, so it is recognisable in pg_locks.
    public static let lockKey: Int64 = 0x6673_636f_6e66
    public static let table = "fsconf.schema_migrations"

    public let connection: PGConnection
    public let files: [MigrationFile]

    public init(connection: PGConnection, files: [MigrationFile]) {
        self.connection = connection
        self.files = files
    }

    /// Creates the bookkeeping table if needed. Harmless when it exists.
    public func ensureTable() throws(PostgresError) {
        // A concurrent first run can race on CREATE ... IF NOT EXISTS; take the lock first.
        try connection.execute("""
            CREATE SCHEMA IF NOT EXISTS fsconf;
            CREATE TABLE IF NOT EXISTS \(Migrator.table) (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                applied_by text NOT NULL DEFAULT current_user
            );
            """)
    }

    /// Whether the bookkeeping table exists (read-only check for `status`).
    public func tableExists() throws(PostgresError) -> Bool {
        let r = try connection.query("SELECT to_regclass($1) IS NOT NULL", [Migrator.table])
        return r.bool(0, 0) ?? false
    }

    public func applied() throws(PostgresError) -> [AppliedMigration] {
        guard try tableExists() else { return [] }
        let r = try connection.query("""
            SELECT version, name, checksum, to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS TZ')
            FROM \(Migrator.table) ORDER BY version
            """)
        return (0..<r.rowCount).map { i in
            AppliedMigration(version: r.int(i, 0) ?? 0, name: r.string(i, 1) ?? "",
                             checksum: r.string(i, 2) ?? "", appliedAt: r.string(i, 3) ?? "")
        }
    }

    public func planner() throws -> MigrationPlanner {
        try MigrationPlanner(files: files, applied: try applied())
    }

    /// Takes the session advisory lock. If another session holds it, calls
    /// `waiting` once with a human message, then blocks until it is free.
    public func lock(waiting: (String) -> Void) throws(PostgresError) {
        let got = try connection.query("SELECT pg_try_advisory_lock($1)", [String(Migrator.lockKey)])
        if got.bool(0, 0) == true { return }
        let holder = try connection.query("""
            SELECT string_agg(pid::text, ', ') FROM pg_locks
            WHERE locktype = 'advisory' AND granted
              AND ((classid::bigint << 32) | objid::bigint) = $1
            """, [String(Migrator.lockKey)])
        let who = holder.string(0, 0).map { " (held by backend pid \($0))" } ?? ""
        waiting("waiting for another fsconf migration to finish\(who)…")
        try connection.query("SELECT pg_advisory_lock($1)", [String(Migrator.lockKey)])
    }

    public func unlock() {
        _ = try? connection.query("SELECT pg_advisory_unlock($1)", [String(Migrator.lockKey)])
    }

    /// The SQL a plan would run, exactly as `apply` runs it (for `--sql`).
    public static func script(for file: MigrationFile, direction: Direction) -> String {
        let statements = direction == .up ? file.upStatements : file.downStatements
        var out = "-- \(file.filename) (\(direction.rawValue))\nBEGIN;\n"
        for s in statements { out += s.text + ";\n" }
        switch direction {
        case .up:
            out += "INSERT INTO \(table) (version, name, checksum) VALUES (\(file.version), '\(file.name)', '\(file.checksum)');\n"
        case .down:
            out += "DELETE FROM \(table) WHERE version = \(file.version);\n"
        }
        return out + "COMMIT;\n"
    }

    public enum Direction: String, Sendable { case up, down }

    /// Applies one file in its own transaction. On failure rolls back and throws
    /// a `MigrationRunError` naming the statement.
    public func run(_ file: MigrationFile, _ direction: Direction) throws {
        let statements = direction == .up ? file.upStatements : file.downStatements
        try connection.execute("BEGIN")
        do {
            for (index, statement) in statements.enumerated() {
                do {
                    try connection.execute(statement.text)
                } catch {
                    throw MigrationRunError(filename: file.filename, direction: direction.rawValue,
                                            statementNumber: index + 1, line: statement.line, underlying: error)
                }
            }
            switch direction {
            case .up:
                try connection.query("INSERT INTO \(Migrator.table) (version, name, checksum) VALUES ($1, $2, $3)",
                                     [String(file.version), file.name, file.checksum])
            case .down:
                try connection.query("DELETE FROM \(Migrator.table) WHERE version = $1", [String(file.version)])
            }
            try connection.execute("COMMIT")
        } catch {
            _ = try? connection.execute("ROLLBACK")
            throw error
        }
    }
}
