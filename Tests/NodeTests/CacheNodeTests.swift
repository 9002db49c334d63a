import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// The node cache seen from outside: several mod_lua-like host processes (each
/// its own process, so its own cache), a writer, PostgreSQL outages and a real
/// streaming standby.
final class CacheNodeTests: XCTestCase {
    static let watch = #"name="password" value=""#

    func hostArguments(shim: String, user: String = "1000") -> [String] {
        ["--shim", shim, "--section", "directory", "--tag", "domain", "--key-name", "name",
         "--key-value", "127.0.0.1", "--param", "action=sip_auth", "--param", "key=id", "--param", "user=\(user)",
         "--param", "domain=127.0.0.1", "--global", "local_ip_v4=127.0.0.1", "--expect", "<user id=\"\(user)\"", "--quiet"]
    }

    static func parse(_ line: Substring) -> [String: String] {
        var out: [String: String] = [:]
        for pair in line.split(separator: " ") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { out[String(kv[0])] = String(kv[1]) }
        }
        return out
    }

    /// value → first wall-clock ms a host saw it (from --watch lines).
    static func firstSeen(_ stdout: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in stdout.split(separator: "\n") where line.hasPrefix("change ") {
            let f = parse(line)
            if let v = f["value"], let t = f["realtime_ms"].flatMap(Double.init), out[v] == nil { out[v] = t }
        }
        return out
    }

    static func summary(_ stdout: String) -> [String: String] {
        stdout.split(separator: "\n").last(where: { $0.hasPrefix("threads=") }).map(parse) ?? [:]
    }

    static var nowMs: Double { Date().timeIntervalSince1970 * 1000 }

    static let setPassword = """
        UPDATE fsconf.user_settings SET value = $1 WHERE kind = 'param' AND name = 'password'
          AND user_id = (SELECT id FROM fsconf.users WHERE user_id = '1000')
        """

    /// The values a host saw, in the order it saw them (from --watch lines).
    static func seenInOrder(_ stdout: String) -> [String] {
        stdout.split(separator: "\n").filter { $0.hasPrefix("change ") }.compactMap { parse($0)["value"] }
    }

    /// Freshness: every committed change reaches every node, and no node serves an
    /// older value after a newer one (one lookup thread per host, so the order a
    /// host prints values in is the order its lookups ran in). Each change is committed only once every host
    /// has served the previous one (synchronised on the hosts' own output); the
    /// commit → served delays are printed, not asserted (the benchmark reports them).
    func testEveryNodeServesEveryCommittedChangeInOrder() throws {
        let node = try NodeSetup()
        try node.load(DirectoryData.sql)
        let last = "fresh-12"
        let hosts = try (0..<3).map { _ in
            try ChildProcess(NodeSetup.host, hostArguments(shim: node.shim.path) + ["--threads", "1", "--seconds", "300",
                                                                                   "--watch", CacheNodeTests.watch, "--until", last],
                             environment: node.db.environment)
        }
        for (n, host) in hosts.enumerated() {
            XCTAssertTrue(host.waitForOutput { o, _ in o.contains("change ") }, "node \(n) serves the user: \(host.output)")
        }
        let writer = try node.db.connect()
        var delays: [Double] = []
        for i in 1...12 {
            let value = "fresh-\(i)"
            try writer.query(CacheNodeTests.setPassword, [value])
            let committed = CacheNodeTests.nowMs
            for (n, host) in hosts.enumerated() {
                XCTAssertTrue(host.waitForOutput { o, _ in o.contains("value=\(value)\n") }, "node \(n) serves \(value)")
                if let t = CacheNodeTests.firstSeen(host.output.stdout)[value] { delays.append(max(0, t - committed)) }
            }
        }
        for (n, host) in hosts.enumerated() {
            let out = host.wait()
            XCTAssertEqual(out.status, 0, out.description)
            let seen = CacheNodeTests.seenInOrder(out.stdout).filter { $0.hasPrefix("fresh-") }
            XCTAssertEqual(seen, (1...12).map { "fresh-\($0)" }, "node \(n): every change, in commit order, none undone")
            XCTAssertEqual(CacheNodeTests.summary(out.stdout)["failed"], "0", out.stdout)
        }
        print(String(format: "time-to-visible over %d (node, change) pairs: p50=%.1f ms p99=%.1f ms max=%.1f ms",
                     delays.count, percentile(delays, 50), percentile(delays, 99), delays.max() ?? .nan))
    }

    /// Ticks the host printed since `start` ticks had been printed.
    static func ticks(_ stderr: String) -> [[String: String]] {
        stderr.split(separator: "\n").filter { $0.hasPrefix("tick ") }.map(CacheNodeTests.parse)
    }

    /// A host looks user 1000 up on 2 threads; PostgreSQL is stopped once the host
    /// serves the user, started again once the host has run lookups through the
    /// outage (`outageSeen` says when), and a change committed after the restart
    /// ends the run when the host serves it. Returns the ticks during the outage.
    /// The deadline is generous: a stopped server refuses at once, and a lookup
    /// slowed by a loaded machine must not count as an outage failure.
    func outageRun(cacheBytes: Int?, outageSeen: @escaping ([[String: String]]) -> Bool)
        throws -> (outage: [[String: String]], after: [[String: String]], out: ProcessOutput) {
        let cluster = try TemporaryCluster()
        let conninfo = try cluster.migratedDatabase(loading: DirectoryData.sql)
        let env = TemporaryCluster.isolatedEnvironment
        let dir = try TemporaryDirectory()
        var shimArgs = ["shim", "--out", dir.url.path, "--library", TestEnvironment.nodeLibrary.path,
                        "--conninfo", conninfo, "--deadline-ms", "2000"]
        if let cacheBytes { shimArgs += ["--cache-bytes", String(cacheBytes)] }
        let shim = try runProcess(TestEnvironment.fsconfBinary, shimArgs, environment: env)
        XCTAssertEqual(shim.status, 0, shim.description)
        let args = hostArguments(shim: dir.url.appendingPathComponent("fsconf.lua").path)
            + ["--threads", "2", "--seconds", "300", "--report-ms", "100", "--watch", CacheNodeTests.watch,
               "--until", "after-outage"]
        let host = try ChildProcess(NodeSetup.host, args, environment: env)
        XCTAssertTrue(host.waitForOutput { o, _ in o.contains("change ") }, "the host serves the user: \(host.output)")
        try cluster.stop()
        let before = CacheNodeTests.ticks(host.output.stderr).count
        XCTAssertTrue(host.waitForOutput { _, e in outageSeen(Array(CacheNodeTests.ticks(e).dropFirst(before + 1))) },
                      "lookups ran during the outage: \(host.output.stderr.suffix(2000))")
        let during = CacheNodeTests.ticks(host.output.stderr).count
        try cluster.start()
        try PGConnection(conninfo: conninfo).query(CacheNodeTests.setPassword, ["after-outage"])
        let out = host.wait()
        let ticks = CacheNodeTests.ticks(out.stderr)
        return (Array(ticks[(before + 1)..<during]), Array(ticks.dropFirst(during)), out)
    }

    static func sum(_ ticks: [[String: String]], _ field: String) -> Int {
        ticks.reduce(0) { $0 + (Int($1[field] ?? "") ?? 0) }
    }

    /// PostgreSQL stopped mid-run: every lookup of a key seen before is answered
    /// (the last good answer), and fresh answers follow the restart.
    func testOutageServesLastGoodAnswersAndRecovers() throws {
        // Five whole ticks with lookups after the stop: the outage was seen.
        let (outage, _, out) = try outageRun(cacheBytes: nil) { $0.count >= 5 && CacheNodeTests.sum($0, "ok") > 0 }
        XCTAssertGreaterThan(CacheNodeTests.sum(outage, "ok"), 0, out.stderr)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(CacheNodeTests.summary(out.stdout)["failed"], "0", "no failed lookup during the outage: \(out)")
        XCTAssertNotNil(CacheNodeTests.firstSeen(out.stdout)["after-outage"], "a change after the restart is served: \(out.stdout)")
        // (--quiet hides the console; the "database unavailable since" line is checked in process, CacheEngineTests.)
        print("outage run (cache on): \(out.stdout.split(separator: "\n").last ?? "")")
    }

    /// Without the cache (cache_bytes=0): no answer while PostgreSQL is down (fall
    /// through, never "not found"), then recovery in the same process.
    func testWithoutCacheOutageFallsThroughThenRecovers() throws {
        let (outage, _, out) = try outageRun(cacheBytes: 0) { CacheNodeTests.sum($0, "failed") > 0 }
        XCTAssertGreaterThan(CacheNodeTests.sum(outage, "failed"), 0, "no answer while PostgreSQL was down: \(out.stderr)")
        XCTAssertEqual(CacheNodeTests.sum(outage, "ok"), 0, out.stderr)
        XCTAssertEqual(CacheNodeTests.sum(outage, "failed"), CacheNodeTests.sum(outage, "nil"),
                       "every failure while down is no answer (fall through), never not-found: \(out.stderr)")
        // The run ended because a lookup after the restart served the new value (the
        // other thread's lookup, sent before the commit, may still print the old one).
        XCTAssertTrue(CacheNodeTests.seenInOrder(out.stdout).contains("after-outage"), out.description)
    }

    /// A real primary and a streaming standby: nodes read the standby; primary
    /// down → answers continue; both down → cached answers; both back → a change
    /// committed on the primary reaches the node through the standby (no NOTIFY
    /// there), without restarting the node (the delay is printed).
    func testPrimaryAndStreamingStandby() throws {
        let primary = try TemporaryCluster()
        try PGConnection(conninfo: primary.conninfo + " dbname=postgres").execute("CREATE DATABASE fsconf")
        let primaryInfo = primary.conninfo + " dbname=fsconf"
        var env = ProcessInfo.processInfo.environment
        env["PGHOST"] = nil; env["PGPORT"] = nil; env["PGDATABASE"] = nil
        let up = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up", "--db", primaryInfo], environment: env)
        XCTAssertEqual(up.status, 0, up.description)
        try PGConnection(conninfo: primaryInfo).execute("BEGIN; SET client_min_messages = warning;\n\(DirectoryData.sql)\n;COMMIT;")
        let standby = try TemporaryCluster(standbyOf: primary)
        let standbyInfo = standby.conninfo + " dbname=fsconf"
        func standbyStreaming() -> Bool {
            (try? PGConnection(conninfo: standbyInfo).query("SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'").int(0, 0)) == 1
        }
        let both = "host=\(primary.directory.path)/socket,\(standby.directory.path)/socket port=\(primary.port),\(standby.port) user=postgres dbname=fsconf"
        // The admin CLI picks the primary by itself (target_session_attrs=read-write).
        let status = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "status", "--db",
            "host=\(standby.directory.path)/socket,\(primary.directory.path)/socket port=\(standby.port),\(primary.port) user=postgres dbname=fsconf"],
            environment: env)
        XCTAssertEqual(status.status, 0, status.description)

        let dir = try TemporaryDirectory()
        let shim = try runProcess(TestEnvironment.fsconfBinary,
                                  ["shim", "--out", dir.url.path, "--library", TestEnvironment.nodeLibrary.path,
                                   "--conninfo", both, "--prefer-standby", "--deadline-ms", "300"], environment: env)
        XCTAssertEqual(shim.status, 0, shim.description)
        let args = hostArguments(shim: dir.url.appendingPathComponent("fsconf.lua").path)
            + ["--threads", "2", "--seconds", "300", "--report-ms", "100", "--watch", CacheNodeTests.watch,
               "--until", "via-standby"]
        let start = CacheNodeTests.nowMs
        let host = try ChildProcess(NodeSetup.host, args, environment: env)
        func backends(_ info: String, _ app: String) -> Int {
            (try? PGConnection(conninfo: info).query("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", [app]).int(0, 0)) ?? -1
        }
        /// Waits until the host has printed `n` more whole ticks (lookups ran in this phase).
        func ticksPass(_ n: Int, _ phase: String) {
            let seen = CacheNodeTests.ticks(host.output.stderr).count
            XCTAssertTrue(host.waitForOutput { _, e in CacheNodeTests.ticks(e).count >= seen + n + 1 }, "lookups ran: \(phase)")
        }
        func waitFor(_ what: String, _ condition: () -> Bool) {
            let end = Date().addingTimeInterval(30)
            while !condition() && Date() < end { usleep(20_000) }
            XCTAssertTrue(condition(), what)
        }
        XCTAssertTrue(host.waitForOutput { o, _ in o.contains("change ") }, "the host serves the user: \(host.output)")
        waitFor("the listener polls the standby") { backends(standbyInfo, "fsconf-listener") == 1 }
        XCTAssertGreaterThan(backends(standbyInfo, "fsconf-node"), 0, "lookups read the standby")
        XCTAssertEqual(backends(primaryInfo, "fsconf-node"), 0, "not the primary")

        var phases: [(String, Double)] = [("primary stopped", CacheNodeTests.nowMs)]
        try primary.stop()
        ticksPass(5, "primary stopped")
        phases.append(("both stopped", CacheNodeTests.nowMs))
        try standby.stop()
        ticksPass(5, "both stopped")
        phases.append(("standby started", CacheNodeTests.nowMs))
        try standby.start()
        try primary.start()
        waitFor("the standby streams again", standbyStreaming)
        phases.append(("both up", CacheNodeTests.nowMs))
        // The node is back on the standby, whose listener gets no NOTIFY.
        waitFor("the listener is back on the standby") { backends(standbyInfo, "fsconf-listener") == 1 }
        XCTAssertEqual(backends(primaryInfo, "fsconf-listener"), 0)
        try PGConnection(conninfo: primaryInfo).query(CacheNodeTests.setPassword, ["via-standby"])
        let committed = CacheNodeTests.nowMs
        let out = host.wait(timeout: 120)
        XCTAssertEqual(out.status, 0, out.description)
        let seen = CacheNodeTests.firstSeen(out.stdout)
        guard let visible = seen["via-standby"] else {
            return XCTFail("the change never reached the node: \(out)")
        }
        print(String(format: "HA: change on the primary visible on the node through the standby after %.1f ms; phases %@",
                     visible - committed, phases.map { "\($0.0)@+\(Int($0.1 - start))ms" }.joined(separator: ", ")))
        // No failed lookup in any phase (user 1000 was seen before the outage).
        XCTAssertEqual(CacheNodeTests.summary(out.stdout)["failed"], "0", "no failed lookup: \(out.stderr)")
    }
}
