import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// The fleet view end to end: several agents (each with its own event socket
/// double standing in for its FreeSWITCH) against one real database;
/// `fsconf nodes`, `--wait` and `history` read what they record.
final class AgentFleetTests: XCTestCase {
    final class Agent {
        let name: String
        let esl: EventSocketDouble
        let process: ChildProcess
        init(_ name: String, _ s: AgentCLITests.Setup, _ dir: TemporaryDirectory, extra: [String] = []) throws {
            self.name = name
            esl = try EventSocketDouble(password: s.esl.password)
            esl.reply(to: "sofia xmlstatus gateway", with: AgentCLITests.gatewayStatus)
            var env = s.db.environment
            env["FSCONF_ESL_PASSWORD"] = esl.password
            process = try ChildProcess(TestEnvironment.fsconfBinary,
                                       ["agent", "--db", s.db.conninfo, "--esl-port", String(esl.port), "--state-file",
                                        dir.path("\(name).seq"), "--poll-ms", "100", "--node-name", name] + extra,
                                       environment: env)
        }
        func stop() -> ProcessOutput {
            process.process.terminate()
            return process.wait(timeout: 10)
        }
    }

    /// Waits until fsconf.nodes says `name` applied `seq` (the agent records it
    /// right after applying).
    func waitRecorded(_ s: AgentCLITests.Setup, _ name: String, seq: Int, timeout: TimeInterval = 20) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let v = try? s.db.column("SELECT applied_seq::text FROM fsconf.nodes WHERE name = $1", [name]).first,
               let applied = v.flatMap({ Int($0) }), applied >= seq { return true }
            usleep(10_000)
        }
        return false
    }

    func fsconf(_ s: AgentCLITests.Setup, _ args: [String]) throws -> ProcessOutput {
        try runProcess(TestEnvironment.fsconfBinary, args, environment: s.db.environment)
    }

    static let setPassword = ["set", "directory/pbx.test/user/1000/param/password"]

    func testNodesShowsEveryNodeItsLagAndItsFailures() throws {
        let s = try AgentCLITests.Setup()
        let dir = try TemporaryDirectory()
        let a = try Agent("fs-a", s, dir), b = try Agent("fs-b", s, dir), c = try Agent("fs-c", s, dir)
        defer { _ = a.stop(); _ = b.stop(); _ = c.stop() }
        for n in ["fs-a", "fs-b", "fs-c"] { XCTAssertTrue(waitRecorded(s, n, seq: s.counter), "\(n) reported") }
        XCTAssertTrue(a.esl.texts.contains("version"), "the agent asks FreeSWITCH's version")

        var out = try fsconf(s, ["nodes", "--json"])
        XCTAssertEqual(out.status, 0, "every node caught up, nothing failing: \(out)")
        XCTAssertTrue(out.stdout.contains("\"freeswitch_version\": \"\(EventSocketDouble.version)\""), out.stdout)
        XCTAssertTrue(out.stdout.contains("\"agent_version\": \"0.1.0\""), out.stdout)

        // fs-b's FreeSWITCH refuses reloadacl; fs-c stops before the change.
        b.esl.reply(to: "reloadacl", with: "-ERR no reloadacl today\n")
        let cOut = c.stop()
        XCTAssertTrue(cOut.stderr.contains("connected to the database"), cOut.stderr)
        try s.sql("UPDATE fsconf.attributes SET value = 'allow' WHERE name = 'default' AND value = 'deny'")
        let target = s.counter
        XCTAssertTrue(waitRecorded(s, "fs-a", seq: target))
        XCTAssertTrue(waitRecorded(s, "fs-b", seq: target), "fs-b gives up after 5 tries and goes on")

        out = try fsconf(s, ["nodes"])
        XCTAssertEqual(out.status, 1, "fs-c is behind and fs-b failing: \(out)")
        let lines = out.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("NODE"), out.stdout)
        let row = { (name: String) in lines.first { $0.hasPrefix(name + " ") } ?? "" }
        XCTAssertTrue(row("fs-a").contains(" \(target) ") && row("fs-a").hasSuffix("  -"), row("fs-a"))
        XCTAssertTrue(row("fs-b").contains("`reloadacl`") && row("fs-b").contains("-ERR no reloadacl today"), row("fs-b"))
        XCTAssertTrue(row("fs-c").contains(" \(target - 1) ") && row("fs-c").contains(" 1 "), "applied one less, lag 1: \(row("fs-c"))")
        XCTAssertTrue(row("fs-a").contains("1.10.12-release~64bit"), row("fs-a"))
        XCTAssertTrue(out.stderr.contains("fs-b: gave up `reloadacl`"), out.stderr)
        XCTAssertTrue(out.stderr.contains("fs-c: 1 change set(s) behind (applied \(target - 1))"), out.stderr)
        XCTAssertFalse(out.stderr.contains("fs-a:"), out.stderr)

        out = try fsconf(s, ["nodes", "--json"])
        XCTAssertEqual(out.status, 1)
        XCTAssertTrue(out.stdout.contains("\"newest_seq\": \(target)"), out.stdout)
        XCTAssertTrue(out.stdout.contains("\"last_failure\": {\"command\": \"reloadacl\", \"reply\": \"-ERR no reloadacl today\""), out.stdout)

        // A failure older than --failed-within is shown, but no longer fails the check.
        out = try fsconf(s, ["nodes", "--failed-within", "0"])
        XCTAssertEqual(out.status, 1, "fs-c is still behind: \(out)")
        XCTAssertTrue(out.stdout.contains("(old)"), out.stdout)
        XCTAssertFalse(out.stderr.contains("fs-b"), out.stderr)

        // history: which nodes applied each change set.
        out = try fsconf(s, ["history", "--limit", "1"])
        XCTAssertTrue(out.stdout.contains("applied by: fs-a, fs-b; not yet by: fs-c"), out.stdout)
        out = try fsconf(s, ["history", "--limit", "1", "--json"])
        XCTAssertTrue(out.stdout.contains("\"applied_by\": [\"fs-a\", \"fs-b\"], \"not_applied_by\": [\"fs-c\"]"), out.stdout)
    }

    func testWaitReturnsOnceEveryLiveNodeAppliedAndNamesAStoppedOne() throws {
        let s = try AgentCLITests.Setup()
        let dir = try TemporaryDirectory()
        let a = try Agent("fs-a", s, dir), b = try Agent("fs-b", s, dir)
        defer { _ = a.stop(); _ = b.stop() }
        for n in ["fs-a", "fs-b"] { XCTAssertTrue(waitRecorded(s, n, seq: s.counter)) }

        var out = try fsconf(s, AgentFleetTests.setPassword + ["w-1", "--wait=30"])
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stderr.contains("applied by every live node (fs-a, fs-b)"), out.stderr)
        let seq = s.counter
        // Returned only once both had recorded it.
        XCTAssertEqual(try s.db.column("SELECT count(*)::text FROM fsconf.nodes WHERE applied_seq >= $1::bigint", [String(seq)]), ["2"])
        XCTAssertTrue(a.esl.texts.contains("xml_flush_cache id 1000 pbx.test") && b.esl.texts.contains("xml_flush_cache id 1000 pbx.test"))

        // Bare --wait (30 s) on a typed command.
        out = try fsconf(s, ["domain", "add", "second.test", "--wait"])
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stderr.contains("applied by every live node"), out.stderr)
        // A batch waits for its one change set like any writer.
        try dir.write("batch.txt", "set globals/waited 1\ndomain add third.test\n")
        out = try fsconf(s, ["apply", dir.path("batch.txt"), "--wait"])
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stderr.contains("applied by every live node (fs-a, fs-b)"), out.stderr)
        XCTAssertEqual(try s.db.column("SELECT count(*)::text FROM fsconf.nodes WHERE applied_seq >= $1::bigint", [String(s.counter)]), ["2"])

        // fs-b stops: it is still live (seen seconds ago) but will not apply.
        _ = b.stop()
        out = try fsconf(s, AgentFleetTests.setPassword + ["w-2", "--wait", "2"])
        XCTAssertEqual(out.status, 1, out.description)
        XCTAssertTrue(out.stdout.contains("change set"), "the write itself is done and reported: \(out.stdout)")
        XCTAssertTrue(out.stderr.contains("fsconf: not applied within 2 s by: fs-b (applied \(seq + 2)"), out.stderr)
        XCTAssertFalse(out.stderr.contains("fs-a ("), out.stderr)

        // undo and unset wait the same way.
        out = try fsconf(s, ["unset", "directory/pbx.test/user/1000/param/password", "--wait=1"])
        XCTAssertEqual(out.status, 1, out.description)
        XCTAssertTrue(out.stderr.contains("by: fs-b"), out.stderr)
    }

    /// Least privilege: a node's role records its status only through
    /// fsconf.report_node, only for rows its own role created.
    func testNodeRolesRecordOnlyTheirOwnRow() throws {
        let s = try AgentCLITests.Setup()
        let admin = try s.db.connect()
        let suffix = String(getpid())
        let roleA = "fs_node_a_\(suffix)", roleB = "fs_node_b_\(suffix)"
        let roles = try fsconf(s, ["grant", "roles"])
        XCTAssertEqual(roles.status, 0, roles.description)
        for r in [roleA, roleB] {
            try admin.execute("DROP ROLE IF EXISTS \(r); CREATE ROLE \(r) LOGIN")
            let g = try fsconf(s, ["grant", "reader", r])
            XCTAssertEqual(g.status, 0, g.description)
        }
        defer {
            for r in [roleA, roleB] { _ = try? admin.execute("DROP OWNED BY \(r); DROP ROLE IF EXISTS \(r)") }
        }
        let a = try PGConnection(conninfo: "\(s.db.conninfo) user=\(roleA)")
        let b = try PGConnection(conninfo: "\(s.db.conninfo) user=\(roleB)")
        let report = "SELECT fsconf.report_node($1, 'FreeSWITCH Version 1.10', '0.1.0', $2::bigint, NULL, NULL)"
        try a.query(report, ["node-a", "3"])
        try a.query(report, ["node-a", "4"])
        XCTAssertEqual(try s.db.column("SELECT applied_seq::text || ' ' || db_role FROM fsconf.nodes"), ["4 \(roleA)"])
        XCTAssertThrowsError(try b.query(report, ["node-a", "9"]), "another role cannot rewrite node-a") {
            XCTAssertEqual(($0 as? PostgresError)?.sqlState, "42501")
        }
        XCTAssertThrowsError(try a.query("UPDATE fsconf.nodes SET applied_seq = 99"), "no direct write") {
            XCTAssertEqual(($0 as? PostgresError)?.sqlState, "42501")
        }
        XCTAssertThrowsError(try a.query("INSERT INTO fsconf.nodes (name, db_role, seen_at) VALUES ('x', 'y', now())"))
        XCTAssertThrowsError(try a.query("UPDATE fsconf.users SET enabled = false"), "still a reader")
        XCTAssertEqual(try s.db.column("SELECT applied_seq::text FROM fsconf.nodes"), ["4"])

        // The agent itself, logged in as the node role.
        let dir = try TemporaryDirectory()
        let esl = try EventSocketDouble(password: s.esl.password)
        esl.reply(to: "sofia xmlstatus gateway", with: AgentCLITests.gatewayStatus)
        var env = s.db.environment
        env["FSCONF_ESL_PASSWORD"] = esl.password
        let out = try runProcess(TestEnvironment.fsconfBinary,
                                 ["agent", "--db", "\(s.db.conninfo) user=\(roleB)", "--esl-port", String(esl.port),
                                  "--state-file", dir.path("seq"), "--node-name", "node-b", "--once"], environment: env)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(try s.db.column("SELECT db_role FROM fsconf.nodes WHERE name = 'node-b'"), [roleB])
        let stolen = try runProcess(TestEnvironment.fsconfBinary,
                                    ["agent", "--db", "\(s.db.conninfo) user=\(roleB)", "--esl-port", String(esl.port),
                                     "--state-file", dir.path("seq"), "--node-name", "node-a", "--once"], environment: env)
        XCTAssertEqual(stolen.status, 0, "recording is best effort: the agent applies anyway")
        XCTAssertTrue(stolen.stderr.contains("cannot record this node's status in fsconf.nodes (node node-a is reported by another database role"),
                      stolen.stderr)
        // --report-db: the status goes over its own connection (here node-a's role).
        try s.sql("UPDATE fsconf.domains SET cacheable = '60000'")
        let reported = try runProcess(TestEnvironment.fsconfBinary,
                                      ["agent", "--db", "\(s.db.conninfo) user=\(roleB)", "--report-db", "\(s.db.conninfo) user=\(roleA)",
                                       "--esl-port", String(esl.port), "--state-file", dir.path("seq"), "--node-name", "node-a", "--once"],
                                      environment: env)
        XCTAssertEqual(reported.status, 0, reported.description)
        XCTAssertFalse(reported.stderr.contains("cannot record"), reported.stderr)
        XCTAssertEqual(try s.db.column("SELECT applied_seq::text || ' ' || db_role FROM fsconf.nodes WHERE name = 'node-a'"),
                       ["\(s.counter) \(roleA)"])
    }
}
