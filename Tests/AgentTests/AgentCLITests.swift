import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

extension EventSocketDouble {
    /// The commands the agent sent, less `version` (asked once per connection for
    /// the fleet view; AgentFleetTests checks it).
    var sent: [String] { texts.filter { $0 != "version" } }
}

/// `fsconf agent` end to end: the built binary, a real PostgreSQL, and the event
/// socket test double recording every command it is sent.
final class AgentCLITests: XCTestCase {
    /// A directory with cacheable users, a cidr user, a user-level gateway; a
    /// sofia.conf whose `external` profile parses pbx.test and defines a gateway;
    /// an acl.conf.
    static let data = """
        INSERT INTO fsconf.domains (name, cacheable) VALUES ('pbx.test', '2000000');
        INSERT INTO fsconf.groups (domain_id, name, position) SELECT id, 'default', 1 FROM fsconf.domains;
        INSERT INTO fsconf.users (domain_id, user_id, number_alias, cacheable, home_group_id, position)
        SELECT d.id, u.uid, u.alias, u.cacheable, g.id, u.pos FROM fsconf.domains d JOIN fsconf.groups g ON g.domain_id = d.id,
          (VALUES ('1000', '7000', NULL, 1), ('1001', NULL, NULL, 2), ('brian', NULL, 'false', 3), ('gwuser', NULL, NULL, 4))
          AS u(uid, alias, cacheable, pos);
        INSERT INTO fsconf.user_settings (user_id, kind, name, value, position)
        SELECT u.id, s.kind, s.name, s.value, s.pos FROM fsconf.users u JOIN (VALUES
          ('1000', 'param', 'password', 'one', 1), ('1001', 'param', 'password', 'x', 1),
          ('brian', 'attribute', 'cidr', '192.0.2.0/24', 1), ('brian', 'param', 'password', 'b', 2),
          ('gwuser', 'param', 'password', 'g', 1)) AS s(uid, kind, name, value, pos) ON s.uid = u.user_id;
        INSERT INTO fsconf.gateways (domain_id, user_id, name) SELECT domain_id, id, 'carrier' FROM fsconf.users WHERE user_id = 'gwuser';
        INSERT INTO fsconf.gateway_settings (gateway_id, kind, name, value) SELECT id, 'param', 'proxy', 'sip.carrier.test' FROM fsconf.gateways;
        DO $$
        DECLARE d bigint; c bigint; ps bigint; p bigint; x bigint; y bigint; z bigint;
        BEGIN
          INSERT INTO fsconf.documents (section, name) VALUES ('configuration', 'sofia.conf') RETURNING id INTO d;
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, NULL, 1, 'configuration') RETURNING id INTO c;
          INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES (c, 'name', 'sofia.conf', 1);
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, c, 1, 'profiles') RETURNING id INTO ps;
          -- internal: aliases every domain, parses none
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, ps, 1, 'profile') RETURNING id INTO p;
          INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES (p, 'name', 'internal', 1);
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, p, 1, 'domains') RETURNING id INTO x;
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, x, 1, 'domain') RETURNING id INTO y;
          INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES (y, 'name', 'all', 1), (y, 'alias', 'true', 2), (y, 'parse', 'false', 3);
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, p, 2, 'settings') RETURNING id INTO x;
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, x, 1, 'param') RETURNING id INTO y;
          INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES (y, 'name', 'sip-port', 1), (y, 'value', '5060', 2);
          -- external: parses pbx.test (its users' gateways), defines gateway upstream
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, ps, 2, 'profile') RETURNING id INTO p;
          INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES (p, 'name', 'external', 1);
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, p, 1, 'domains') RETURNING id INTO x;
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, x, 1, 'domain') RETURNING id INTO y;
          INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES (y, 'name', 'pbx.test', 1), (y, 'parse', 'true', 2);
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, p, 2, 'gateways') RETURNING id INTO x;
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, x, 1, 'gateway') RETURNING id INTO y;
          INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES (y, 'name', 'upstream', 1);
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, y, 1, 'param') RETURNING id INTO z;
          INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES (z, 'name', 'proxy', 1), (z, 'value', 'up.test', 2);
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, p, 3, 'settings') RETURNING id INTO x;
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, x, 1, 'param') RETURNING id INTO y;
          INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES (y, 'name', 'sip-port', 1), (y, 'value', '5080', 2);
          -- acl.conf
          INSERT INTO fsconf.documents (section, name) VALUES ('configuration', 'acl.conf') RETURNING id INTO d;
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, NULL, 1, 'configuration') RETURNING id INTO c;
          INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES (c, 'name', 'acl.conf', 1);
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, c, 1, 'network-lists') RETURNING id INTO x;
          INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES (d, x, 1, 'list') RETURNING id INTO y;
          INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES (y, 'name', 'lan', 1), (y, 'default', 'deny', 2);
        END $$;
        """

    /// `sofia xmlstatus gateway` as FreeSWITCH answers it with the stored gateways running.
    static let gatewayStatus = """
        <?xml version="1.0" encoding="ISO-8859-1"?>
        <gateways>
          <gateway>
            <name>upstream</name>
            <profile>external</profile>
            <state>REGED</state>
          </gateway>
          <gateway>
            <name>carrier</name>
            <profile>external</profile>
            <state>REGED</state>
          </gateway>
        </gateways>

        """

    static func profileStatus(internalCalls: Int, externalCalls: Int) -> String {
        """
        <?xml version="1.0" encoding="ISO-8859-1"?>
        <profiles>
        <profile>
        <name>internal</name>
        <type>profile</type>
        <data>sip:mod_sofia@192.0.2.1:5060</data>
        <state>RUNNING (\(internalCalls))</state>
        </profile>
        <profile>
        <name>external</name>
        <type>profile</type>
        <data>sip:mod_sofia@192.0.2.1:5080</data>
        <state>RUNNING (\(externalCalls))</state>
        </profile>
        </profiles>

        """
    }

    final class Setup {
        let db: TestDatabase
        let dir: TemporaryDirectory
        let esl: EventSocketDouble
        var stateFile: String { dir.path("agent.seq") }

        init() throws {
            db = try TestDatabase(prefix: "agent")
            dir = try TemporaryDirectory()
            esl = try EventSocketDouble(password: "s3cr3t")
            esl.reply(to: "sofia xmlstatus gateway", with: AgentCLITests.gatewayStatus)
            let up = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up"], environment: db.environment)
            guard up.status == 0 else { throw TestSetupError("migrate up failed: \(up)") }
            try sql(AgentCLITests.data)
        }

        func sql(_ text: String) throws {
            let conn = try db.connect()
            try conn.execute("BEGIN; SET client_min_messages = warning;\n\(text)\n;COMMIT;")
        }

        var counter: Int { Int(((try? db.column("SELECT value::text FROM fsconf.change_counter"))?.first ?? "0") ?? "0") ?? 0 }
        var applied: Int? {
            (try? String(contentsOfFile: stateFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }

        var environment: [String: String] {
            var env = db.environment
            env["FSCONF_ESL_PASSWORD"] = esl.password
            return env
        }

        func arguments(_ extra: [String] = []) -> [String] {
            ["agent", "--db", db.conninfo, "--esl-port", String(esl.port), "--state-file", stateFile, "--poll-ms", "100"] + extra
        }

        func start(_ extra: [String] = []) throws -> ChildProcess {
            try ChildProcess(TestEnvironment.fsconfBinary, arguments(extra), environment: environment)
        }

        /// Waits until the agent has applied everything committed so far.
        func waitApplied(timeout: TimeInterval = 15) -> Bool {
            let target = counter
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let a = applied, a >= target { return true }
                usleep(10_000)
            }
            return false
        }
    }

    func stop(_ agent: ChildProcess) -> ProcessOutput {
        agent.process.terminate()
        return agent.wait(timeout: 10)
    }

    /// Each kind of change: exactly its commands, nothing more.
    func testEachKindOfChangeSendsExactlyItsCommands() throws {
        let s = try Setup()
        let agent = try s.start()
        // First start, no state: reconcile (gateways match) and flush what FreeSWITCH may hold.
        XCTAssertTrue(s.waitApplied() && s.esl.wait { $0.contains("sofia xmlstatus gateway") }, "the agent started")
        XCTAssertEqual(s.esl.sent, ["xml_flush_cache", "sofia xmlstatus gateway"])
        s.esl.clear()

        let cases: [(String, String, [String])] = [
            ("password of a cacheable user with an alias",
             "UPDATE fsconf.user_settings SET value = 'two' WHERE name = 'password' AND user_id = (SELECT id FROM fsconf.users WHERE user_id = '1000')",
             ["xml_flush_cache id 1000 pbx.test", "xml_flush_cache number-alias 7000 pbx.test"]),
            ("a variable of a user inheriting the domain's cacheable",
             "INSERT INTO fsconf.user_settings (user_id, kind, name, value) SELECT id, 'variable', 'toll_allow', 'local' FROM fsconf.users WHERE user_id = '1001'",
             ["xml_flush_cache id 1001 pbx.test"]),
            ("a user marked cacheable=false", "UPDATE fsconf.user_settings SET value = 'c' WHERE name = 'password' AND user_id = (SELECT id FROM fsconf.users WHERE user_id = 'brian')", []),
            ("a cidr", "UPDATE fsconf.user_settings SET value = '198.51.100.0/24' WHERE name = 'cidr'", ["reloadacl"]),
            ("a gateway added to a user of a parsed domain",
             "INSERT INTO fsconf.gateways (domain_id, user_id, name) SELECT domain_id, id, 'second' FROM fsconf.users WHERE user_id = 'gwuser'",
             ["sofia profile external rescan"]),
            ("a gateway changed", "UPDATE fsconf.gateway_settings SET value = 'sip2.carrier.test' WHERE name = 'proxy'",
             ["sofia profile external killgw carrier", "sofia profile external rescan"]),
            ("a gateway removed", "DELETE FROM fsconf.gateways WHERE name = 'second'", ["sofia profile external killgw second"]),
            ("a profile-defined gateway changed",
             "UPDATE fsconf.attributes SET value = 'up2.test' WHERE name = 'value' AND value = 'up.test'",
             ["sofia profile external killgw upstream", "sofia profile external rescan"]),
            ("a profile setting (restart not allowed: reported only)",
             "UPDATE fsconf.attributes SET value = '5090' WHERE name = 'value' AND value = '5080'", []),
            ("acl.conf", "UPDATE fsconf.attributes SET value = 'allow' WHERE name = 'default' AND value = 'deny'", ["reloadacl"]),
            ("the dialplan", "INSERT INTO fsconf.dialplan_contexts (name) VALUES ('default')", []),
            ("a language", "INSERT INTO fsconf.documents (section, name) VALUES ('languages', 'en')", []),
            ("a domain setting: every cacheable user of the domain",
             "INSERT INTO fsconf.domain_settings (domain_id, kind, name, value) SELECT id, 'variable', 'record_stereo', 'true' FROM fsconf.domains",
             ["xml_flush_cache id 1000 pbx.test", "xml_flush_cache number-alias 7000 pbx.test", "xml_flush_cache id 1001 pbx.test",
              "xml_flush_cache id gwuser pbx.test"]),
        ]
        for (what, sql, expected) in cases {
            try s.sql(sql)
            XCTAssertTrue(s.waitApplied(), "\(what): applied")
            XCTAssertEqual(s.esl.sent, expected, what)
            s.esl.clear()
        }
        let out = stop(agent)
        XCTAssertTrue(out.stderr.contains("REPORT: sofia profile external: settings changed"), out.stderr)
        XCTAssertTrue(out.stderr.contains("REPORT: sofia profile external needs a restart"), out.stderr)
        XCTAssertTrue(out.stderr.contains("api xml_flush_cache id 1000 pbx.test → +OK"), "commands and replies are logged")
        XCTAssertFalse(out.stderr.contains("s3cr3t"), "the password is never logged")
    }

    /// --once --dry-run prints the pending commands and changes nothing.
    func testOnceDryRunPrintsPendingCommandsAndKeepsTheState() throws {
        let s = try Setup()
        try Data("\(s.counter)\n".utf8).write(to: URL(fileURLWithPath: s.stateFile))
        let before = s.counter
        try s.sql("UPDATE fsconf.user_settings SET value = 'two' WHERE name = 'password' AND user_id = (SELECT id FROM fsconf.users WHERE user_id = '1000')")
        try s.sql("UPDATE fsconf.attributes SET value = '5090' WHERE name = 'value' AND value = '5080'")
        var env = s.db.environment
        env["FSCONF_ESL_PASSWORD"] = nil
        let out = try runProcess(TestEnvironment.fsconfBinary, s.arguments(["--once", "--dry-run"]), environment: env)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(out.stdout, """
            # seq \(before + 1) (change set \(before + 1), 1 row change(s))
            xml_flush_cache id 1000 pbx.test
            xml_flush_cache number-alias 7000 pbx.test
            # seq \(before + 2) (change set \(before + 2), 1 row change(s))
            sofia profile external restart  # only with --allow-restart, and only without active calls unless --force-restart
            # report: sofia profile external: settings changed; they apply when the profile restarts

            """)
        XCTAssertEqual(s.applied, before, "the state is not advanced")
        XCTAssertEqual(s.esl.sent, [], "nothing sent")
    }

    /// --allow-restart restarts a profile only without active calls; --force-restart does not wait.
    func testRestartPolicy() throws {
        let s = try Setup()
        try Data("\(s.counter)\n".utf8).write(to: URL(fileURLWithPath: s.stateFile))
        try s.sql("UPDATE fsconf.attributes SET value = '5090' WHERE name = 'value' AND value = '5080'")
        s.esl.reply(to: "sofia xmlstatus", with: AgentCLITests.profileStatus(internalCalls: 0, externalCalls: 2))
        s.esl.reply(to: "sofia xmlstatus gateway", with: AgentCLITests.gatewayStatus)
        var out = try runProcess(TestEnvironment.fsconfBinary, s.arguments(["--once"]), environment: s.environment)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertFalse(s.esl.sent.contains { $0.hasSuffix("restart") }, "not allowed: reported only")
        XCTAssertTrue(out.stderr.contains("needs a restart"), out.stderr)

        try Data("\(s.counter - 1)\n".utf8).write(to: URL(fileURLWithPath: s.stateFile))
        s.esl.clear()
        out = try runProcess(TestEnvironment.fsconfBinary, s.arguments(["--once", "--allow-restart"]), environment: s.environment)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(s.esl.sent, ["sofia xmlstatus gateway", "sofia xmlstatus"], "2 active calls: not restarted")
        XCTAssertTrue(out.stderr.contains("waiting: 2 active call(s)"), out.stderr)

        try Data("\(s.counter - 1)\n".utf8).write(to: URL(fileURLWithPath: s.stateFile))
        s.esl.clear()
        s.esl.reply(to: "sofia xmlstatus", with: AgentCLITests.profileStatus(internalCalls: 3, externalCalls: 0))
        out = try runProcess(TestEnvironment.fsconfBinary, s.arguments(["--once", "--allow-restart"]), environment: s.environment)
        XCTAssertEqual(s.esl.sent, ["sofia xmlstatus gateway", "sofia xmlstatus", "sofia profile external restart"], "idle: restarted")

        try Data("\(s.counter - 1)\n".utf8).write(to: URL(fileURLWithPath: s.stateFile))
        s.esl.clear()
        s.esl.reply(to: "sofia xmlstatus", with: AgentCLITests.profileStatus(internalCalls: 0, externalCalls: 5))
        out = try runProcess(TestEnvironment.fsconfBinary, s.arguments(["--once", "--allow-restart", "--force-restart"]), environment: s.environment)
        XCTAssertEqual(s.esl.sent, ["sofia xmlstatus gateway", "sofia profile external restart"], "forced: no question asked")
    }

    /// At start-up the agent compares the gateways FreeSWITCH runs with the stored ones.
    func testReconcileOnStart() throws {
        let s = try Setup()
        try Data("\(s.counter)\n".utf8).write(to: URL(fileURLWithPath: s.stateFile))
        s.esl.reply(to: "sofia xmlstatus gateway", with: """
            <gateways>
              <gateway><name>upstream</name><profile>external</profile></gateway>
              <gateway><name>forgotten</name><profile>external</profile></gateway>
              <gateway><name>static</name><profile>not-in-fsconf</profile></gateway>
            </gateways>
            """)
        let out = try runProcess(TestEnvironment.fsconfBinary, s.arguments(["--once"]), environment: s.environment)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(s.esl.sent, ["sofia xmlstatus gateway", "sofia profile external killgw forgotten", "sofia profile external rescan"],
                       "carrier (a directory gateway) is missing, forgotten is not stored; with a state file nothing is flushed")
    }

    /// A refused command is retried with backoff, then reported; the rest goes on.
    func testFailedCommandIsRetriedThenReported() throws {
        let s = try Setup()
        try Data("\(s.counter)\n".utf8).write(to: URL(fileURLWithPath: s.stateFile))
        s.esl.reply(to: "reloadacl", with: "-ERR no reloadacl today\n")
        try s.sql("UPDATE fsconf.attributes SET value = 'allow' WHERE name = 'default' AND value = 'deny'")
        let out = try runProcess(TestEnvironment.fsconfBinary, s.arguments(["--once"]), environment: s.environment)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(s.esl.sent.filter { $0 == "reloadacl" }.count, 5)
        XCTAssertTrue(out.stderr.contains("REPORT: `reloadacl` failed 5 times"), out.stderr)
        XCTAssertTrue(out.stderr.contains("`reloadacl` failed (attempt 4); retrying in 2 s"), out.stderr)
        XCTAssertEqual(s.applied, s.counter, "the change set is done")
        // (The backoff itself is tested on an injected clock: AgentMachineTests.)
    }

    /// A multi-megabyte `sofia xmlstatus gateway` is read whole (EventSocketFraming)
    /// and every gateway in it that is not stored is killed.
    func testReconcileReadsALargeGatewayStatus() throws {
        let s = try Setup()
        try Data("\(s.counter)\n".utf8).write(to: URL(fileURLWithPath: s.stateFile))
        var status = "<gateways>\n"
        for name in ["upstream", "carrier"] + (0..<1_500).map({ "stray\($0)" }) {
            status += "<gateway><name>\(name)</name><profile>external</profile><realm>\(String(repeating: "r", count: 1_500))</realm></gateway>\n"
        }
        status += "</gateways>\n"
        XCTAssertGreaterThan(status.utf8.count, 2_000_000)
        s.esl.reply(to: "sofia xmlstatus gateway", with: status)
        let out = try runProcess(TestEnvironment.fsconfBinary, s.arguments(["--once"]), environment: s.environment)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stderr.contains("api sofia xmlstatus gateway → 1502 gateway(s) running"), out.stderr)
        XCTAssertEqual(s.esl.sent, ["sofia xmlstatus gateway"] + (0..<1_500).map { "sofia profile external killgw stray\($0)" }.sorted())
    }

    /// FreeSWITCH going away and coming back: the agent reconnects by itself, looks
    /// again (flush + gateway reconcile), and applies what was committed meanwhile.
    func testEventSocketLossIsRecovered() throws {
        let s = try Setup()
        let agent = try s.start()
        XCTAssertTrue(s.waitApplied() && s.esl.wait { $0.contains("sofia xmlstatus gateway") })
        s.esl.clear()
        s.esl.setRefusing(true)
        s.esl.dropConnections()
        try s.sql("UPDATE fsconf.user_settings SET value = 'three' WHERE name = 'password' AND user_id = (SELECT id FROM fsconf.users WHERE user_id = '1000')")
        // The agent has noticed and tried again (twice refused) before FreeSWITCH is back.
        XCTAssertTrue(s.esl.waitRefused(2), "the agent reconnects by itself")
        XCTAssertNotEqual(s.applied, s.counter, "not applied while FreeSWITCH is away")
        s.esl.setRefusing(false)
        XCTAssertTrue(s.waitApplied(), "applied after the reconnect")
        XCTAssertEqual(s.esl.sent, ["xml_flush_cache", "sofia xmlstatus gateway",
                                     "xml_flush_cache id 1000 pbx.test", "xml_flush_cache number-alias 7000 pbx.test"])
        let out = stop(agent)
        XCTAssertTrue(out.stderr.contains("lost the event socket"), out.stderr)
    }

    /// PostgreSQL restarting: the agent reconnects by itself and follows again.
    func testDatabaseLossIsRecovered() throws {
        let cluster = try TemporaryCluster()
        let conninfo = try cluster.migratedDatabase(loading: AgentCLITests.data)
        var env = TemporaryCluster.isolatedEnvironment
        let dir = try TemporaryDirectory()
        let esl = try EventSocketDouble()
        esl.reply(to: "sofia xmlstatus gateway", with: AgentCLITests.gatewayStatus)
        env["FSCONF_ESL_PASSWORD"] = esl.password
        let agent = try ChildProcess(TestEnvironment.fsconfBinary,
                                     ["agent", "--db", conninfo, "--esl-port", String(esl.port), "--state-file", dir.path("seq"), "--poll-ms", "100"],
                                     environment: env)
        XCTAssertTrue(esl.wait { $0.contains("sofia xmlstatus gateway") }, "started")
        try cluster.stop()
        XCTAssertTrue(agent.waitForOutput { _, e in e.contains("database unavailable") }, "the agent noticed and retries: \(agent.output.stderr)")
        try cluster.start()
        esl.clear()
        let conn = try PGConnection(conninfo: conninfo)
        try conn.execute("UPDATE fsconf.user_settings SET value = 'four' WHERE name = 'password' AND user_id = (SELECT id FROM fsconf.users WHERE user_id = '1000')")
        XCTAssertTrue(esl.wait(timeout: 20) { $0.contains("xml_flush_cache id 1000 pbx.test") }, "followed again: \(esl.sent)")
        let out = stop(agent)
        XCTAssertTrue(out.stderr.contains("lost the database") || out.stderr.contains("database unavailable"), out.stderr)
        XCTAssertTrue(out.stderr.contains("connected to the database"), out.stderr)
    }
}
