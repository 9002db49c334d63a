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
    /// (-z nodelete), so one bounded pool serves them all.
    func testTenThousandStatesShareOneBoundedPool() throws {
        let node = try NodeSetup(shimArguments: ["--pool-size", "3"])
        try node.load(DirectoryData.sql)
        let host = try ChildProcess(NodeSetup.host, hostArguments(node) + ["--threads", "8", "--requests", "10000", "--quiet"],
                                    environment: node.db.environment)
        let admin = try node.db.connect()
        var most = 0
        while host.process.isRunning {
            let n = try admin.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fsconf-node' AND datname = $1",
                                    [node.db.name]).int(0, 0) ?? 0
            most = max(most, n)
            usleep(20_000)
        }
        let out = host.wait()
        XCTAssertEqual(out.status, 0, out.description)
        let result = parse(out.stdout)
        XCTAssertEqual(result["ok"], 10000, out.stdout)
        XCTAssertEqual(result["failed"], 0, out.stdout)
        XCTAssertGreaterThanOrEqual(most, 1, "the pool was seen in pg_stat_activity")
        XCTAssertLessThanOrEqual(most, 3, "never more backends than the pool size")
        print("10000 lookups, 8 threads: \(out.stdout.trimmingCharacters(in: .newlines)); most backends seen: \(most)")
    }

    // Stopping and restarting PostgreSQL mid-run: CacheNodeTests (with the cache, the
    // last good answers are served; without it, lookups fall through, then recover).
}
