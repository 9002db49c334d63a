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
        if underlying.sqlState == "55P03" {
            return "\(filename):\(line): statement \(statementNumber) of the \(direction) section waited longer than the lock timeout for a "
                + "table another session is using (a long transaction: a node login, a pg_dump…); nothing from this file was "
                + "applied: run it again, or give a longer --lock-timeout"
        }
        return "\(filename):\(line): statement \(statementNumber) of the \(direction) section failed: \(underlying.description); nothing from this file was applied"
    }
    public var debugDescription: String { description + "\n" + underlying.debugDescription }
}

/// Runs migration plans against one connection. A table lock held on a second
/// connection makes concurrent runs (two admins, many nodes starting) queue
/// instead of interleave; it is a lock on `fsconf.migration_lock`, which only the
/// schema's owner and writers may take (a node's reader login can take any advisory
/// lock, and would stall every migration while holding it).
public final class Migrator {
    public static let table = "fsconf.schema_migrations"
    /// The table whose EXCLUSIVE lock is the migration lock (bookkeeping, like
    /// `schema_migrations`: created by the CLI, not by a migration).
    public static let lockTable = "fsconf.migration_lock"

    public let connection: PGConnection
    public let files: [MigrationFile]
    private var lockConnection: PGConnection?
    /// How long a statement may wait for a table lock (0: forever). A migration's
    /// ALTER waiting behind a long reader transaction would hold every lookup queued
    /// behind it, and a reader could keep it waiting for ever: it fails instead.
    public var lockTimeoutMs = Migrator.defaultLockTimeoutMs
    public static let defaultLockTimeoutMs = 10_000

    public init(connection: PGConnection, files: [MigrationFile]) {
        self.connection = connection
        self.files = files
    }

    /// Creates the bookkeeping tables if needed. Harmless when they exist; a
    /// concurrent first run that creates them at the same moment is retried.
    public func ensureTable() throws(PostgresError) {
        let sql = """
            CREATE SCHEMA IF NOT EXISTS fsconf;
            CREATE TABLE IF NOT EXISTS \(Migrator.table) (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                applied_by text NOT NULL DEFAULT current_user
            );
            CREATE TABLE IF NOT EXISTS \(Migrator.lockTable) ();
            """
        do {
            try connection.execute(sql)
        } catch where ["23505", "42P06", "42P07", "42710"].contains(error.sqlState ?? "") {
            try connection.execute(sql)
        }
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

    /// Takes the migration lock on `lock`, a second connection to the same
    /// database kept for the run (the lock lives as long as its transaction). If
    /// another run holds it, calls `waiting` once with a human message, then blocks
    /// until it is free.
    public func lock(on lock: PGConnection, waiting: (String) -> Void) throws(PostgresError) {
        try ensureTable()
        try lock.execute("BEGIN")
        do {
            try lock.execute("LOCK TABLE \(Migrator.lockTable) IN EXCLUSIVE MODE NOWAIT")
        } catch where error.sqlState == "55P03" {
            try lock.execute("ROLLBACK")
            let holder = try connection.query("""
                SELECT string_agg(pid::text, ', ') FROM pg_locks
                WHERE locktype = 'relation' AND granted AND mode = 'ExclusiveLock' AND relation = $1::regclass
                """, [Migrator.lockTable])
            let who = holder.string(0, 0).map { " (held by backend pid \($0))" } ?? ""
            waiting("waiting for another fsconf migration to finish\(who)…")
            try lock.execute("BEGIN")
            try lock.execute("LOCK TABLE \(Migrator.lockTable) IN EXCLUSIVE MODE")
        }
        lockConnection = lock
    }

    public func unlock() {
        _ = try? lockConnection?.execute("ROLLBACK")
        lockConnection = nil
    }

    /// The SQL a plan would run, exactly as `apply` runs it (for `--sql`).
    public static func script(for file: MigrationFile, direction: Direction, lockTimeoutMs: Int = defaultLockTimeoutMs) -> String {
        let statements = direction == .up ? file.upStatements : file.downStatements
        var out = "-- \(file.filename) (\(direction.rawValue))\nBEGIN;\nSET LOCAL lock_timeout = \(lockTimeoutMs);\n"
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
            try connection.execute("SET LOCAL lock_timeout = \(max(0, lockTimeoutMs))")
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
