import FSConfTestSupport
import Foundation
import XCTest

/// The agent plans only what concerns its own node (docs/cluster.md): the built
/// binary, AgentCLITests' data, two nodes' agents reading one change log.
final class AgentScopeCLITests: XCTestCase {
    func dryRun(_ s: AgentCLITests.Setup, node: String) throws -> String {
        var env = s.db.environment
        env["FSCONF_ESL_PASSWORD"] = nil
        let out = try runProcess(TestEnvironment.fsconfBinary, s.arguments(["--once", "--dry-run", "--node-name", node]), environment: env)
        XCTAssertEqual(out.status, 0, out.description)
        return out.stdout
    }

    func testEachNodesAgentPlansOnlyItsOwnVariants() throws {
        let s = try AgentCLITests.Setup()
        try Data("\(s.counter)\n".utf8).write(to: URL(fileURLWithPath: s.stateFile))
        let before = s.counter
        try s.sql("INSERT INTO fsconf.node_groups (node_group, node) VALUES ('eu', 'sitea'), ('eu', 'siteb')")
        // A gateway for sitea only (its user's domain is parsed by profile external).
        try s.sql("""
            INSERT INTO fsconf.gateways (domain_id, user_id, name, nodes)
            SELECT domain_id, id, 'site-a-only', '{sitea}' FROM fsconf.users WHERE user_id = 'gwuser'
            """)
        // A profile setting for @eu: a variant of external's sip-port.
        try s.sql("""
            WITH p AS (SELECT e.id, e.document_id FROM fsconf.elements e
                       WHERE e.tag = 'settings' AND e.parent_id = (SELECT element_id FROM fsconf.attributes WHERE name = 'name' AND value = 'external')),
                 x AS (INSERT INTO fsconf.elements (document_id, parent_id, position, tag, nodes)
                       SELECT document_id, id, 9, 'param', '{@eu}' FROM p LIMIT 1 RETURNING id)
            INSERT INTO fsconf.attributes (element_id, name, value, position)
            SELECT id, 'name', 'sip-port', 1 FROM x UNION ALL SELECT id, 'value', '5099', 2 FROM x
            """)
        let report = "# report: sofia profile external: settings changed; they apply when the profile restarts"
        let restart = "sofia profile external restart  # only with --allow-restart, and only without active calls unless --force-restart"
        func joined(_ node: String) -> String {
            """
            xml_flush_cache
            # report: the groups of this node (\(node)) changed: every cached user flushed; gateways and profile settings that differ per group apply after `sofia profile PROFILE rescan` (or restart)
            """
        }
        XCTAssertEqual(try dryRun(s, node: "sitea"), """
            # seq \(before + 1) (change set \(before + 1), 2 row change(s))
            \(joined("sitea"))
            # seq \(before + 2) (change set \(before + 2), 1 row change(s))
            sofia profile external rescan
            # seq \(before + 3) (change set \(before + 3), 3 row change(s))
            \(restart)
            \(report)

            """)
        XCTAssertEqual(try dryRun(s, node: "siteb"), """
            # seq \(before + 1) (change set \(before + 1), 2 row change(s))
            \(joined("siteb"))
            # seq \(before + 2) (change set \(before + 2), 1 row change(s))
            # seq \(before + 3) (change set \(before + 3), 3 row change(s))
            \(restart)
            \(report)

            """)
        XCTAssertEqual(try dryRun(s, node: "sitec"), """
            # seq \(before + 1) (change set \(before + 1), 2 row change(s))
            # seq \(before + 2) (change set \(before + 2), 1 row change(s))
            # seq \(before + 3) (change set \(before + 3), 3 row change(s))

            """)
    }
}
