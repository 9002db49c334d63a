import FSConfStore
import Foundation

/// A test database with the schema applied and a generated shim pointing at it:
/// lookups then run through the real built library, driven the way mod_lua does.
public final class NodeSetup {
    public let db: TestDatabase
    public let dir: TemporaryDirectory
    public let shim: URL

    /// `shimArguments` are added to `fsconf shim` (e.g. ["--deadline-ms", "200"]);
    /// `conninfo` overrides the test database's.
    public init(bindings: String = "directory,dialplan,chatplan,configuration,languages",
                conninfo: String? = nil, shimArguments: [String] = [], prefix: String = "node") throws {
        db = try TestDatabase(prefix: prefix)
        dir = try TemporaryDirectory()
        let up = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up"], environment: db.environment)
        guard up.status == 0 else { throw TestSetupError("migrate up failed: \(up)") }
        let out = try runProcess(TestEnvironment.fsconfBinary,
                                 ["shim", "--out", dir.url.path, "--library", TestEnvironment.nodeLibrary.path,
                                  "--conninfo", conninfo ?? db.conninfo, "--bindings", bindings] + shimArguments,
                                 environment: db.environment)
        guard out.status == 0 else { throw TestSetupError("fsconf shim failed: \(out)") }
        shim = dir.url.appendingPathComponent("fsconf.lua")
    }

    /// The section tests' setup: a generous deadline, so a loaded machine never turns
    /// a slow lookup into a missing answer.
    public convenience init(prefix: String) throws {
        try self.init(shimArguments: ["--deadline-ms", "5000"], prefix: prefix)
    }

    /// Runs a SQL script as it is (its own transactions, if any).
    public func sql(_ text: String) throws {
        try db.connect().execute(text)
    }

    /// Lookup INDEX (1-based) of a captured fixture file, replayed as FreeSWITCH sent it.
    public func replay(_ fixture: String, _ index: Int, globals: [String: String] = [:]) throws -> ProcessOutput {
        let file = TestEnvironment.sharedDirectory.appendingPathComponent("fixtures/fs-requests/\(fixture)")
        return try runProcess(tool("lua5.3"), [NodeSetup.harness.path, shim.path, file.path, String(index)],
                              environment: environment(globals))
    }

    /// Runs SQL (several statements allowed) in one transaction.
    public func load(_ sql: String) throws {
        let conn = try db.connect()
        try conn.execute("BEGIN; SET client_min_messages = warning;\n\(sql)\n;COMMIT;")
    }

    /// One lookup through the shim, with `lua5.3` and the harness (a fresh
    /// environment per lookup, as mod_lua does). `globals` are the node's
    /// FreeSWITCH global variables (freeswitch.getGlobalVariable).
    public func lookup(section: String, tag: String = "", keyName: String = "", keyValue: String = "",
                       params: [(String, String)]? = [], globals: [String: String] = [:]) throws -> ProcessOutput {
        var args = [NodeSetup.harness.path, shim.path, "--section", section, "--tag", tag,
                    "--key-name", keyName, "--key-value", keyValue]
        if let params {
            for (name, value) in params { args += ["--param", "\(name)=\(value)"] }
        } else {
            args.append("--no-params")
        }
        return try runProcess(tool("lua5.3"), args, environment: environment(globals))
    }

    /// Runs every lookup of a JSON file (fixture format) in ONE harness process,
    /// so the library stays loaded between them.
    public func lookups(file: URL, globals: [String: String] = [:]) throws -> ProcessOutput {
        try runProcess(tool("lua5.3"), [NodeSetup.harness.path, shim.path, file.path], environment: environment(globals))
    }

    public func environment(_ globals: [String: String]) -> [String: String] {
        var env = db.environment
        for (name, value) in globals { env["FSCONF_HARNESS_GLOBAL_\(name)"] = value }
        return env
    }

    public static var harness: URL { TestEnvironment.repoRoot.appendingPathComponent("lua/harness/fsharness.lua") }
    public static var host: URL { TestEnvironment.repoRoot.appendingPathComponent("benchmarks/host/fshost") }

    /// Splits multi-lookup harness output into the answers, in order.
    public static func answers(_ output: String) -> [String] {
        var answers: [String] = []
        var current: [Substring]?
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("----- lookup ") {
                if let current { answers.append(current.joined(separator: "\n")) }
                current = []
            } else {
                current?.append(line)
            }
        }
        if let current { answers.append(current.joined(separator: "\n")) }
        if answers.isEmpty { answers = [output] }  // a single lookup prints no separator
        return answers.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }
}

/// The name the section tests use.
public typealias SectionNode = NodeSetup

/// A PostgreSQL cluster of the test's own (initdb in a temporary folder, its own
/// port), for tests that stop and restart the server.
public final class TemporaryCluster {
    public let directory: URL
    public let port: Int
    let bin: URL
    private static let counter = Counter()

    public init() throws {
        let pg = try FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql").sorted().last ?? "15"
        bin = URL(fileURLWithPath: "/usr/lib/postgresql/\(pg)/bin")
        directory = URL(fileURLWithPath: "/tmp/fsconf-cluster-\(getpid())-\(TemporaryCluster.counter.next())")
        port = 30000 + Int(getpid() % 2000) * 4 + TemporaryCluster.counter.next() % 4
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("socket"), withIntermediateDirectories: true)
        if getuid() == 0 {
            _ = try runProcess(URL(fileURLWithPath: "/bin/chown"), ["-R", "postgres:", directory.path])
        }
        let initdb = try asOwner(bin.appendingPathComponent("initdb").path,
                                 ["-D", directory.appendingPathComponent("data").path, "-U", "postgres",
                                  "--auth=trust", "-E", "UTF8", "--no-locale"])
        guard initdb.status == 0 else { throw TestSetupError("initdb failed: \(initdb)") }
        try start()
    }

    /// A streaming standby of `primary` (pg_basebackup -R -X stream), on its own
    /// port and socket folder, started. The primary's default pg_hba already lets
    /// local replication connections in (initdb --auth=trust).
    public init(standbyOf primary: TemporaryCluster) throws {
        bin = primary.bin
        directory = URL(fileURLWithPath: "/tmp/fsconf-cluster-\(getpid())-\(TemporaryCluster.counter.next())")
        port = primary.port + 1 + TemporaryCluster.counter.next() % 2
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("socket"), withIntermediateDirectories: true)
        if getuid() == 0 {
            _ = try runProcess(URL(fileURLWithPath: "/bin/chown"), ["-R", "postgres:", directory.path])
        }
        let backup = try asOwner(bin.appendingPathComponent("pg_basebackup").path,
                                 ["-h", primary.directory.path + "/socket", "-p", String(primary.port), "-U", "postgres",
                                  "-D", directory.appendingPathComponent("data").path, "-R", "-X", "stream", "-c", "fast"])
        guard backup.status == 0 else { throw TestSetupError("pg_basebackup failed: \(backup)") }
        try start()
    }

    deinit {
        _ = try? stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Environment for libpq clients of this cluster.
    public var conninfo: String { "host=\(directory.path)/socket port=\(port) user=postgres" }

    /// The environment for child processes that must reach only this cluster
    /// (libpq's PG* variables of the shared cluster removed).
    public static var isolatedEnvironment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["PGHOST"] = nil; env["PGPORT"] = nil; env["PGDATABASE"] = nil
        return env
    }

    /// Creates database `fsconf`, applies the schema with the built CLI and loads
    /// `sql` in one transaction. Returns the database's conninfo.
    public func migratedDatabase(loading sql: String) throws -> String {
        try PGConnection(conninfo: conninfo + " dbname=postgres").execute("CREATE DATABASE fsconf")
        let database = conninfo + " dbname=fsconf"
        let up = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up", "--db", database],
                                environment: TemporaryCluster.isolatedEnvironment)
        guard up.status == 0 else { throw TestSetupError("migrate up failed: \(up)") }
        try PGConnection(conninfo: database).execute("BEGIN; SET client_min_messages = warning;\n\(sql)\n;COMMIT;")
        return database
    }

    public func start() throws {
        let out = try asOwner(bin.appendingPathComponent("pg_ctl").path,
                              ["-D", directory.appendingPathComponent("data").path, "-l",
                               directory.appendingPathComponent("server.log").path, "-w", "-t", "60",
                               "-o", "-p \(port) -k \(directory.path)/socket -c listen_addresses=127.0.0.1 -c fsync=off",
                               "start"])
        guard out.status == 0 else { throw TestSetupError("pg_ctl start failed: \(out)") }
    }

    public func stop() throws {
        let out = try asOwner(bin.appendingPathComponent("pg_ctl").path,
                              ["-D", directory.appendingPathComponent("data").path, "-m", "fast", "-w", "stop"])
        guard out.status == 0 else { throw TestSetupError("pg_ctl stop failed: \(out)") }
    }

    /// Runs a server tool as the cluster's owner. Its output goes to a file, not a
    /// pipe: the server pg_ctl starts would inherit a pipe and keep it open forever.
    private func asOwner(_ program: String, _ args: [String]) throws -> ProcessOutput {
        let process = Process()
        // Close every inherited descriptor above stderr before exec: Foundation keeps
        // one open to learn of the child's exit, and a server started from here must
        // not hold it (the wait would never end).
        let closeAndExec = #"for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null; done; exec "$@""#
        let command = getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--", program] + args : [program] + args
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", closeAndExec, "bash"] + command
        let log = directory.appendingPathComponent("tool-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try? handle.close()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: log)
        return ProcessOutput(status: process.terminationStatus, stdout: text, stderr: "")
    }
}
