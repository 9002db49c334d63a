import FSConfStore
import Foundation

/// Where tests find things. Everything is overridable through the environment,
/// and `scripts/test` sets what matters; see docs/testing.md.
public enum TestEnvironment {
    /// The repository root (from this file's location).
    public static let repoRoot: URL = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }()

    /// The shared corpus folder: FSCONF_SHARED, default `../shared` beside the repo.
    public static let sharedDirectory: URL = {
        if let path = ProcessInfo.processInfo.environment["FSCONF_SHARED"] { return URL(fileURLWithPath: path) }
        return repoRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }()

    /// The folder holding the built products (the test bundle sits beside them).
    public static let productsDirectory: URL = {
        if let path = ProcessInfo.processInfo.environment["FSCONF_PRODUCTS"] { return URL(fileURLWithPath: path) }
        for candidate in [Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0])] {
            var dir = candidate
            for _ in 0..<3 {
                dir = dir.deletingLastPathComponent()
                if FileManager.default.fileExists(atPath: dir.appendingPathComponent("fsconf").path) { return dir }
            }
        }
        return repoRoot.appendingPathComponent(".build/debug")
    }()

    /// The built `fsconf` CLI.
    public static var fsconfBinary: URL { productsDirectory.appendingPathComponent("fsconf") }

    /// The built node library (`libfsconf-lua.so`; installed on nodes as `fsconf.so`).
    public static var nodeLibrary: URL { productsDirectory.appendingPathComponent("libfsconf-lua.so") }

    /// Fails clearly when no PostgreSQL was configured, instead of skipping.
    public static func requirePostgres() throws {
        let env = ProcessInfo.processInfo.environment
        if env["PGHOST"] == nil && env["PGSERVICE"] == nil && env["FSCONF_TEST_ADMIN_DB"] == nil {
            throw TestSetupError("no PostgreSQL configured: run the tests with scripts/test, or set PGHOST/PGPORT/PGUSER")
        }
    }
}

public struct TestSetupError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A fresh, empty database for one test, dropped when the object goes away.
public final class TestDatabase {
    public let name: String
    private static let counter = Counter()

    /// `encoding`: the database's own (e.g. LATIN1; default: the cluster's, UTF8).
    public init(prefix: String = "t", encoding: String? = nil) throws {
        try TestEnvironment.requirePostgres()
        name = "fsconf_\(prefix)_\(getpid())_\(TestDatabase.counter.next())"
        let admin = try TestDatabase.admin()
        try admin.execute("DROP DATABASE IF EXISTS \(name)")
        if let encoding {
            try admin.execute("CREATE DATABASE \(name) ENCODING '\(encoding)' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'")
        } else {
            try admin.execute("CREATE DATABASE \(name)")
        }
    }

    deinit {
        if let admin = try? TestDatabase.admin() {
            _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        }
    }

    /// The conninfo of this database; host, port and user come from libpq's environment.
    public var conninfo: String { "dbname=\(name)" }

    public func connect() throws -> PGConnection { try PGConnection(conninfo: conninfo) }

    /// A connection to the maintenance database, for CREATE/DROP DATABASE and roles.
    public static func admin() throws -> PGConnection {
        try PGConnection(conninfo: ProcessInfo.processInfo.environment["FSCONF_TEST_ADMIN_DB"] ?? "dbname=postgres")
    }

    /// Environment for child processes (CLI, lua, host) that should use this database.
    public var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["PGDATABASE"] = name
        return env
    }

    /// Runs a query and returns the first column of every row.
    public func column(_ sql: String, _ params: [String?] = []) throws -> [String?] {
        let conn = try connect()
        let r = try conn.query(sql, params)
        return (0..<r.rowCount).map { r.string($0, 0) }
    }
}

extension TestDatabase {
    /// A new database migrated by the built CLI, with `sql` run in one transaction.
    public static func migrated(prefix: String, loading sql: String = "") throws -> TestDatabase {
        let db = try TestDatabase(prefix: prefix)
        let up = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up"], environment: db.environment)
        guard up.status == 0 else { throw TestSetupError("migrate up failed: \(up)") }
        if !sql.isEmpty { try db.connect().execute("BEGIN; \(sql); COMMIT;") }
        return db
    }
}

final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}
