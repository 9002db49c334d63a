import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// `fsconf agent --metrics-listen`: a real HTTP GET on loopback. The double runs
/// the agent's `api lua ~…` the way mod_lua does — the code in a Lua 5.3 process
/// that has loaded the real node library and answered lookups through it — so the
/// node figures are the library's own.
final class AgentEndpointTests: XCTestCase {
    /// Stands in for FreeSWITCH's process: a directory lookup through the library
    /// (which starts its change listener), then, once the listener listens, three
    /// more, then the agent's code with `stream` as the API's output.
    static let runner = """
        local code, lib, settings = arg[1], arg[2], arg[3]
        stream = { write = function(self, s) io.write(s) end }
        local f = assert(package.loadlib(lib, "luaopen_fsconf"))()
        local params = { getHeader = function(self, name) return nil end }
        local function lookup()
          f.handle({ section = "directory", tag_name = "domain", key_name = "name", key_value = "pbx.test" }, params, settings)
        end
        lookup()
        for _ = 1, 600 do
          local s = f.stats()
          if s.fresh == 1 and s.listener_connected == 1 then break end
          os.execute("sleep 0.05")
        end
        for i = 1, 3 do lookup() end
        assert(load(code))()
        """

    func testMetricsEndpointServesAgentAndNodeFigures() throws {
        let s = try AgentCLITests.Setup()
        let dir = try TemporaryDirectory()
        try dir.write("runner.lua", AgentEndpointTests.runner)
        let library = TestEnvironment.nodeLibrary.path
        let env = s.db.environment
        let settings = "schema=\(try s.db.column("SELECT max(version)::text FROM fsconf.schema_migrations").first!!)\nconninfo=\(s.db.conninfo)"
        let runner = dir.path("runner.lua")
        s.esl.reply(to: "lua ~") { command in
            let out = try? runProcess(tool("lua5.3"), [runner, String(command.dropFirst(5)), library, settings], environment: env)
            return out.map { $0.status == 0 ? $0.stdout : "-ERR Cannot execute script\n" } ?? "-ERR\n"
        }
        let agent = try s.start(["--metrics-listen", "127.0.0.1:0", "--node-library", library])
        defer { agent.process.terminate(); _ = agent.wait(timeout: 10) }
        XCTAssertTrue(agent.waitForOutput { _, e in e.contains("metrics at http://127.0.0.1:") }, agent.output.stderr)
        let port = Int(agent.output.stderr.split(separator: "metrics at http://127.0.0.1:")[1].prefix { $0.isNumber })!
        XCTAssertTrue(s.waitApplied())
        try s.sql("UPDATE fsconf.user_settings SET value = 'm-1' WHERE name = 'password' AND user_id = (SELECT id FROM fsconf.users WHERE user_id = '1000')")
        XCTAssertTrue(s.waitApplied())

        // The node's figures come with the next stats read (at once when idle, then every 5 s).
        var body = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let r = try httpRequest(port: port, path: "/metrics")
            XCTAssertEqual(r.status, 200)
            XCTAssertTrue(r.headers.contains("Content-Type: text/plain; version=0.0.4"), r.headers)
            body = r.body
            if body.contains("fsconf_agent_applied_seq \(s.counter)\n") && body.contains("fsconf_node_stats_up 1\n") { break }
            usleep(50_000)
        }
        let lines = Set(body.split(separator: "\n").map(String.init))
        for expected in [
            "fsconf_agent_applied_seq \(s.counter)", "fsconf_agent_lag_change_sets 0",
            "fsconf_agent_commands_total{kind=\"xml_flush_cache\"} 3",
            "fsconf_agent_commit_to_applied_seconds_count 1", "fsconf_agent_connected{link=\"database\"} 1",
            "fsconf_agent_connected{link=\"event_socket\"} 1", "fsconf_node_stats_up 1",
            "fsconf_node_database_errors_total 0",
            "fsconf_node_pool_size 4", "fsconf_node_pool_connections_open 1",
        ] {
            XCTAssertTrue(lines.contains(expected), "missing \(expected) in\n\(body)")
        }
        // The library's own counts of the runner's four lookups: the first misses, and
        // so does the first once the listener is up (a new epoch); then the cache answers.
        func value(_ name: String) -> Int? {
            body.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Int($0.split(separator: " ")[1]) }
        }
        XCTAssertEqual((value("fsconf_node_cache_hits_total") ?? 0) + (value("fsconf_node_cache_misses_total") ?? 0), 4, body)
        XCTAssertGreaterThanOrEqual(value("fsconf_node_cache_hits_total") ?? 0, 2, body)
        XCTAssertGreaterThanOrEqual(value("fsconf_node_cache_inserts_total") ?? 0, 1, body)
        XCTAssertTrue(s.esl.texts.contains { $0.hasPrefix("lua ~local o, e = package.loadlib(\"\(library)\"") }, "asked FreeSWITCH to run the stats code")

        // FreeSWITCH restarting: the reconnect is counted.
        s.esl.dropConnections()
        let reconnected = Date().addingTimeInterval(20)
        while Date() < reconnected {
            if try httpRequest(port: port, path: "/metrics").body.contains("fsconf_agent_reconnects_total{link=\"event_socket\"} 1\n") { break }
            usleep(50_000)
        }
        XCTAssertTrue(try httpRequest(port: port, path: "/metrics").body.contains("fsconf_agent_reconnects_total{link=\"event_socket\"} 1\n"))

        XCTAssertEqual(try httpRequest(port: port, path: "/").status, 404)
        XCTAssertEqual(try httpRequest("POST", port: port, path: "/metrics").status, 405)
    }

    func testABadListenAddressIsRefusedUpFront() throws {
        let out = try runProcess(TestEnvironment.fsconfBinary, ["agent", "--metrics-listen", "9464", "--esl-password-file", "/dev/null"])
        XCTAssertEqual(out.status, 2, out.description)
        XCTAssertTrue(out.stderr.contains("--metrics-listen takes HOST:PORT"), out.stderr)
    }
}
