import FSConfAgentCore
import XCTest

/// The metrics text (Prometheus' format) from what the machine counted, and the
/// node library's stats read back from FreeSWITCH's reply.
final class AgentMetricsTests: XCTestCase {
    func lines(_ text: String) -> Set<String> { Set(text.split(separator: "\n").map(String.init)) }

    func testTextFromWhatTheMachineCounted() {
        var settings = AgentMachine.Settings()
        settings.nodeStatsMs = 5_000
        var w = World(settings, savedSeq: 0)
        w.replies["reloadacl"] = "-ERR no\n"
        w.replies["lua ~"] = "fsconf hits 7\nfsconf misses 3\nfsconf stale 1\nfsconf database_errors 2\nfsconf pool_size 4\nfsconf pool_open 1\n"
        w.run()
        w.commit(plan: AgentPlan(actions: [.api("xml_flush_cache id 1000 pbx.test"), .api("reloadacl")]), ageMs: 30)
        w.poll()
        XCTAssertTrue(w.requests.contains(.readNodeStats), "the node's counters are read while idle")
        let text = PrometheusText.render(w.machine.metrics)
        let got = lines(text)
        for expected in [
            "# TYPE fsconf_agent_applied_seq gauge", "fsconf_agent_applied_seq 1", "fsconf_agent_newest_seq 1",
            "fsconf_agent_lag_change_sets 0", "fsconf_agent_change_sets_applied_total 1",
            "# TYPE fsconf_agent_commands_total counter",
            "fsconf_agent_commands_total{kind=\"xml_flush_cache\"} 1", "fsconf_agent_commands_total{kind=\"reloadacl\"} 5",
            "fsconf_agent_command_failures_total{kind=\"reloadacl\"} 5", "fsconf_agent_commands_abandoned_total{kind=\"reloadacl\"} 1",
            "fsconf_agent_reconnects_total{link=\"database\"} 0", "fsconf_agent_connected{link=\"event_socket\"} 1",
            "# TYPE fsconf_agent_commit_to_applied_seconds histogram",
            "fsconf_agent_commit_to_applied_seconds_bucket{le=\"2.5\"} 0", "fsconf_agent_commit_to_applied_seconds_bucket{le=\"5\"} 1",
            "fsconf_agent_commit_to_applied_seconds_bucket{le=\"+Inf\"} 1",
            "fsconf_agent_commit_to_applied_seconds_count 1",
            "fsconf_node_stats_up 1", "# TYPE fsconf_node_cache_hits_total counter", "fsconf_node_cache_hits_total 7",
            "fsconf_node_cache_misses_total 3", "fsconf_node_stale_answers_total 1", "fsconf_node_database_errors_total 2",
            "fsconf_node_pool_size 4", "fsconf_node_pool_connections_open 1",
        ] {
            XCTAssertTrue(got.contains(expected), "missing \(expected) in\n\(text)")
        }
        // The retries of reloadacl waited 3.75 s on the injected clock: the sum says so.
        XCTAssertTrue(got.contains("fsconf_agent_commit_to_applied_seconds_sum 3.78"), text)
        // Every sample line names a metric with HELP and TYPE before it.
        var declared: Set<String> = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") { declared.insert(String(line.split(separator: " ")[2])); continue }
            if line.hasPrefix("#") { continue }
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            let base = ["_bucket", "_sum", "_count"].reduce(name) { n, s in n.hasSuffix(s) && declared.contains(String(n.dropLast(s.count))) ? String(n.dropLast(s.count)) : n }
            XCTAssertTrue(declared.contains(base), "\(line) has no TYPE")
        }
    }

    func testNodeStatsCommandAndReply() {
        let command = NodeStats.command(library: "/usr/local/lib/fsconf/fsconf.so")
        XCTAssertTrue(command.hasPrefix("lua ~local o, e = package.loadlib(\"/usr/local/lib/fsconf/fsconf.so\", \"luaopen_fsconf\")"), command)
        XCTAssertFalse(command.contains("\n"), "one line: an event socket command")
        let odd = NodeStats.command(library: "/opt/x\" ]] os.exit() --\n/fsconf.so")
        XCTAssertTrue(odd.contains("\"/opt/x\\34\\32\\93\\93\\32os.exit\\40\\41\\32--\\10/fsconf.so\""), "every other byte escaped: \(odd)")
        XCTAssertEqual(NodeStats.parse("fsconf hits 2\nfsconf misses 1\n"), NodeStats(values: ["hits": 2, "misses": 1]))
        XCTAssertEqual(NodeStats.parse("-ERR /x.so: cannot open shared object file\n").error, "-ERR /x.so: cannot open shared object file")
        XCTAssertEqual(NodeStats.parse("-ERR Cannot execute script\n").values, [:])
        let down = PrometheusText.render(AgentMetrics())
        XCTAssertTrue(lines(down).contains("fsconf_node_stats_up 0"))
        XCTAssertFalse(down.contains("fsconf_node_cache_hits_total"), "no node figures when they could not be read")
        XCTAssertFalse(lines(down).contains { $0.hasPrefix("fsconf_agent_applied_seq") }, "no sample before anything is applied")
    }
}
