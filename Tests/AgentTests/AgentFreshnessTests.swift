import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// With `cacheable` on, a changed password is what the node's next lookup gets
/// once the agent has flushed the user. The double stands in for FreeSWITCH's
/// event socket; when the agent flushes the user, FreeSWITCH would ask again:
/// the test then looks the user up through the mod_lua-like C host and the
/// generated shim. Each step waits for the event before it (the flush, the
/// lookup); the commit → served times are printed as figures (the target is
/// 1 s), not asserted against the wall clock.
final class AgentFreshnessTests: XCTestCase {
    func testChangedPasswordIsServedOnceTheAgentFlushedTheUser() throws {
        let host = NodeSetup.host
        if !FileManager.default.isExecutableFile(atPath: host.path) {
            let make = try runProcess(tool("make"), ["-s", "-C", host.deletingLastPathComponent().path, "fshost"])
            XCTAssertEqual(make.status, 0, make.description)
        }
        let node = try NodeSetup()
        try node.load("""
            INSERT INTO fsconf.domains (name, cacheable) VALUES ('pbx.test', '2147483');
            INSERT INTO fsconf.users (domain_id, user_id, number_alias) SELECT id, '1000', '7000' FROM fsconf.domains;
            INSERT INTO fsconf.user_settings (user_id, kind, name, value) SELECT id, 'param', 'password', 'pw-0' FROM fsconf.users;
            """)
        let dir = try TemporaryDirectory()
        let esl = try EventSocketDouble()
        var env = node.db.environment
        env["FSCONF_ESL_PASSWORD"] = esl.password
        let agent = try ChildProcess(TestEnvironment.fsconfBinary,
                                     ["agent", "--db", node.db.conninfo, "--esl-port", String(esl.port),
                                      "--state-file", dir.path("seq"), "--poll-ms", "250"], environment: env)
        defer { agent.process.terminate(); _ = agent.wait(timeout: 10) }
        XCTAssertTrue(esl.wait { $0.contains("xml_flush_cache") }, "the agent started")
        let conn = try node.db.connect()
        let lookup = ["--shim", node.shim.path, "--section", "directory", "--tag", "domain", "--key-name", "name",
                      "--key-value", "pbx.test", "--param", "action=sip_auth", "--param", "key=id", "--param", "user=1000",
                      "--param", "domain=pbx.test", "--print", "--requests", "1", "--quiet"]
        var latencies: [Double] = []       // commit → served, including starting the host process
        var served: [Double] = []          // commit → flush + the lookup itself (as in a running FreeSWITCH)
        var flushLatencies: [Double] = []
        for i in 1...20 {
            let flushes = esl.texts.filter { $0 == "xml_flush_cache id 1000 pbx.test" }.count
            let committed = Date()
            try conn.execute("UPDATE fsconf.user_settings SET value = 'pw-\(i)' WHERE name = 'password'")
            // FreeSWITCH forgets the user when the agent says so...
            XCTAssertTrue(esl.wait(timeout: 5) { $0.filter { $0 == "xml_flush_cache id 1000 pbx.test" }.count > flushes }, "flush \(i)")
            let flushed = esl.commands.last { $0.text == "xml_flush_cache id 1000 pbx.test" }!.at
            flushLatencies.append(flushed.timeIntervalSince(committed))
            // ...and asks again at the next lookup: the new password must be served.
            let out = try runProcess(host, lookup, environment: node.db.environment)
            XCTAssertEqual(out.status, 0, out.description)
            XCTAssertTrue(out.stdout.contains("value=\"pw-\(i)\""), "lookup \(i) serves the new password: \(out.stdout)")
            latencies.append(Date().timeIntervalSince(committed))
            // fshost's own measure of the lookup (new lua_State → shim → library → close),
            // without starting a process: what FreeSWITCH, already running, would spend.
            let lookupSeconds = out.stdout.split(separator: " ").first { $0.hasPrefix("max_us=") }
                .flatMap { Double($0.dropFirst(7).trimmingCharacters(in: .whitespacesAndNewlines)) }.map { $0 / 1e6 } ?? 1
            served.append(flushed.timeIntervalSince(committed) + lookupSeconds)
            Thread.sleep(forTimeInterval: Double(i % 4) * 0.07)  // commits at varied points of the poll cycle
        }
        print(String(format: "agent freshness over %d changes: commit→flush p50 %.1f ms p99 %.1f ms; commit→new password served p50 %.1f ms p99 %.1f ms (with a new host process per lookup: p50 %.1f ms p99 %.1f ms)",
                     served.count, percentile(flushLatencies, 50) * 1000, percentile(flushLatencies, 99) * 1000,
                     percentile(served, 50) * 1000, percentile(served, 99) * 1000,
                     percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000))
        XCTAssertEqual(served.count, 20, "every change was flushed and then served")
    }
}
