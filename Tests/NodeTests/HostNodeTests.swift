import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// The library inside a multi-threaded, mod_lua-like C host: a new lua_State per
/// lookup (luaL_newstate → load the shim from disk → run → lua_close).
final class HostNodeTests: XCTestCase {
    func hostArguments(_ node: NodeSetup, user: String = "1000") -> [String] {
        ["--shim", node.shim.path, "--section", "directory", "--tag", "domain", "--key-name", "name",
         "--key-value", "127.0.0.1", "--param", "action=sip_auth", "--param", "key=id", "--param", "user=\(user)",
         "--param", "domain=127.0.0.1", "--global", "local_ip_v4=127.0.0.1", "--expect", "<user id=\"\(user)\""]
    }

    func parse(_ line: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for pair in line.split(separator: " ") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2, let v = Double(kv[1]) { out[String(kv[0])] = v }
        }
        return out
    }

    /// 10,000 state cycles on 8 threads: the library is loaded once per process
    /// (-z nodelete), so one bounded pool serves them all. The node logs in as a
    /// role PostgreSQL lets open at most pool size + 1 (the change listener)
    /// connections: a library that opened more than its pool would see refused
    /// connections, i.e. failed lookups — an outcome, not a sampled count.
    func testTenThousandStatesShareOneBoundedPool() throws {
        let node = try NodeSetup()
        try node.load(DirectoryData.sql)
        let role = "\(node.db.name)_node"
        let admin = try node.db.connect()
        // The group roles are the cluster's: created here, not left to another suite run first.
        let roles = try runProcess(TestEnvironment.fsconfBinary, ["grant", "roles"], environment: node.db.environment)
        XCTAssertEqual(roles.status, 0, roles.description)
        try admin.execute("CREATE ROLE \(role) LOGIN CONNECTION LIMIT 4; GRANT fsconf_reader TO \(role)")
        defer { _ = try? admin.execute("DROP OWNED BY \(role); DROP ROLE \(role)") }
        let dir = try TemporaryDirectory()
        let shim = try runProcess(TestEnvironment.fsconfBinary,
                                  ["shim", "--out", dir.url.path, "--library", TestEnvironment.nodeLibrary.path,
                                   "--conninfo", "\(node.db.conninfo) user=\(role)", "--pool-size", "3"],
                                  environment: node.db.environment)
        XCTAssertEqual(shim.status, 0, shim.description)
        var args = hostArguments(node) + ["--threads", "8", "--requests", "10000", "--quiet"]
        args[1] = dir.url.appendingPathComponent("fsconf.lua").path
        let out = try runProcess(NodeSetup.host, args, environment: node.db.environment)
        XCTAssertEqual(out.status, 0, out.description)
        let result = parse(out.stdout)
        XCTAssertEqual(result["ok"], 10000, out.stdout)
        XCTAssertEqual(result["failed"], 0, out.stdout)
        // With no connection allowed the same host answers nothing: the limit is
        // enforced, so the first run's success says something.
        try admin.execute("ALTER ROLE \(role) CONNECTION LIMIT 0")
        let refused = try runProcess(NodeSetup.host, args.map { $0 == "10000" ? "50" : $0 }, environment: node.db.environment)
        XCTAssertEqual(parse(refused.stdout)["failed"], 50, "a role with no connections left answers nothing: \(refused)")
        print("10000 lookups, 8 threads, at most 4 connections: \(out.stdout.trimmingCharacters(in: .newlines))")
    }

    // Stopping and restarting PostgreSQL mid-run: CacheNodeTests (with the cache, the
    // last good answers are served; without it, lookups fall through, then recover).
}
