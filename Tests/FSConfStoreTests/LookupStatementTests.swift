import FSConfAdminStore
import FSConfCore
@testable import FSConfNode
import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// What the lookup statements leave to the database since migration 0006: the
/// node's one copy of the global variables (sent again only when they change),
/// and `$${name}`-named users the database can tell apart without the node.
final class LookupStatementTests: XCTestCase {
    static let data = """
        INSERT INTO fsconf.global_variables (name, value) VALUES
            ('domain', '$${local_ip_v4}'), ('default_password', '1234'), ('provider', 'Example.com'),
            ('nested', '$${local_ip_v4}'), ('empty', '');
        INSERT INTO fsconf.global_variables (name, value, command) VALUES ('run_on_node', 'hostname', 'exec-set');
        INSERT INTO fsconf.domains (name) VALUES ('$${domain}');
        INSERT INTO fsconf.users (domain_id, user_id)
        SELECT d.id, u FROM fsconf.domains d, unnest(ARRAY['1000', '$${provider}', '$${nested}', 'x$${provider}',
            '$${only_on_node}', '$${empty}', '$${provider}.$${empty}', '$${run_on_node}']) AS u;
        INSERT INTO fsconf.user_settings (user_id, kind, name, value)
        SELECT id, 'param', 'password', '$${default_password}' FROM fsconf.users;
        """

    func database() throws -> TestDatabase { try TestDatabase.migrated(prefix: "stmt", loading: Self.data) }

    /// The stored ids of the users the id statement returns for `user`.
    func candidates(_ conn: PGConnection, _ user: String, domain: String = "192.0.2.1") throws -> [String] {
        let statement = DirectorySQL.userByID
        try conn.prepare(statement.name, statement.sql)
        let result = try conn.queryPrepared(statement.name, statement.arguments([domain, user, nil], globalsVersion: nil),
                                            deadline: .max)
        return DirectorySQL.rows(result).filter { $0.kind == .user }.compactMap(\.a).sorted()
    }

    func testReferenceNamedUsersAreLeftOutOnlyWhenTheyCannotBeTheAskedOne() throws {
        let db = try database()
        let conn = try db.connect()
        // `$${provider}` expands to Example.com from the stored globals, `$${empty}`
        // to "": neither is 1000. The others need the node (local_ip_v4, a name not
        // stored, a global each node evaluates itself) or have text around the
        // reference: they stay candidates.
        let others = ["$${nested}", "$${only_on_node}", "$${provider}.$${empty}", "$${run_on_node}", "x$${provider}"]
        XCTAssertEqual(try candidates(conn, "1000"), (["1000"] + others).sorted())
        XCTAssertEqual(try candidates(conn, "EXAMPLE.COM"), (["$${provider}"] + others).sorted())
    }

    /// `fsconf.fixed_user_ids` as it should be: the ids every node expands the same
    /// way, worked out here from the tables (what the statement joined before 0011).
    static let expectedFixed = """
        SELECT u.user_id || '=' || lower(v.value) FROM fsconf.users u JOIN fsconf.global_variables v
            ON v.name = substr(u.user_id, 4, length(u.user_id) - 4) AND v.nodes IS NULL AND v.command NOT IN ('exec-set', 'env-set')
        WHERE u.user_id LIKE '$${%}' AND v.value IS NOT NULL AND v.value NOT LIKE '%$${%'
          AND NOT EXISTS (SELECT 1 FROM fsconf.global_variables x WHERE x.name = v.name AND x.nodes IS NOT NULL)
        ORDER BY 1
        """

    func fixed(_ conn: PGConnection) throws -> [String] {
        let r = try conn.query("SELECT u.user_id || '=' || f.expands_to FROM fsconf.fixed_user_ids f JOIN fsconf.users u ON u.id = f.user_id ORDER BY 1")
        return (0..<r.rowCount).compactMap { r.string($0, 0) }
    }

    func expectedFixed(_ conn: PGConnection) throws -> [String] {
        let r = try conn.query(Self.expectedFixed)
        return (0..<r.rowCount).compactMap { r.string($0, 0) }
    }

    func testTheFixedIdsFollowEveryWriteToUsersAndGlobals() throws {
        let db = try database()
        let conn = try db.connect()
        XCTAssertEqual(try fixed(conn), ["$${empty}=", "$${provider}=example.com"])
        let steps = [
            "UPDATE fsconf.global_variables SET value = 'Other.example' WHERE name = 'provider'",
            "UPDATE fsconf.global_variables SET value = '$${local_ip_v4}' WHERE name = 'provider'",   // a reference: the node decides
            "UPDATE fsconf.global_variables SET value = 'back.example' WHERE name = 'provider'",
            "INSERT INTO fsconf.global_variables (name, value, nodes) VALUES ('provider', 'node-a.example', '{fs-a}')",  // a variant
            "DELETE FROM fsconf.global_variables WHERE nodes IS NOT NULL",
            "UPDATE fsconf.global_variables SET command = 'exec-set' WHERE name = 'empty'",
            "UPDATE fsconf.global_variables SET command = 'set' WHERE name = 'empty'",
            "UPDATE fsconf.global_variables SET value = 'Has $${provider}' WHERE name = 'empty'",
            "INSERT INTO fsconf.global_variables (name, value) VALUES ('only_on_node', 'now.stored')",
            "INSERT INTO fsconf.users (domain_id, user_id) SELECT id, '$${default_password}' FROM fsconf.domains",
            "UPDATE fsconf.users SET user_id = '$${provider}x' WHERE user_id = '$${default_password}'",
            "UPDATE fsconf.users SET user_id = '$${default_password}' WHERE user_id = '$${provider}x'",
            "UPDATE fsconf.users SET user_id = 'plain' WHERE user_id = '$${only_on_node}'",
            "DELETE FROM fsconf.users WHERE user_id = '$${provider}'",
            "INSERT INTO fsconf.users (domain_id, user_id) SELECT id, '$${provider}' FROM fsconf.domains",
            "TRUNCATE fsconf.global_variables",
            "INSERT INTO fsconf.global_variables (name, value) VALUES ('provider', 'Again.example'), ('default_password', '1')",
        ]
        for step in steps {
            try conn.execute(step)
            let want = try expectedFixed(conn)
            XCTAssertEqual(try fixed(conn), want, step)
            XCTAssertEqual(try PrerenderStore(conn).fixedIDsBehind(), 0, step)
        }
        XCTAssertEqual(try fixed(conn), ["$${default_password}=1", "$${provider}=again.example"])
        // The statement leaves out exactly those that cannot be the asked user.
        XCTAssertEqual(try candidates(conn, "again.EXAMPLE"), ["$${empty}", "$${nested}", "$${provider}", "$${provider}.$${empty}", "$${run_on_node}", "x$${provider}"])
        XCTAssertFalse(try candidates(conn, "1000").contains("$${provider}"))
        // A load with triggers disabled leaves it behind; `fsconf prerender --all` works it out again.
        try conn.execute("SET session_replication_role = replica; UPDATE fsconf.global_variables SET value = '1000' WHERE name = 'provider'; RESET session_replication_role")
        XCTAssertFalse(try candidates(conn, "1000").contains("$${provider}"), "stale, as documented")
        XCTAssertEqual(try PrerenderStore(conn).fixedIDsBehind(), 1, "what fsconf doctor reports")
        let run = try runProcess(TestEnvironment.fsconfBinary, ["prerender", "--all"], environment: db.environment)
        XCTAssertEqual(run.status, 0, run.description)
        XCTAssertEqual(try fixed(conn), try expectedFixed(conn))
        XCTAssertTrue(try candidates(conn, "1000").contains("$${provider}"))
        XCTAssertEqual(try PrerenderStore(conn).fixedIDsBehind(), 0)
    }

    /// The upgrade to schema 11 fills `fixed_user_ids` from what a schema-10 database
    /// holds, and the node's lookups leave out what they left out before it.
    func testTheUpgradeToSchema11WorksOutTheFixedIds() throws {
        let db = try TestDatabase(prefix: "stmt")
        let to10 = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up", "--to", "10"], environment: db.environment)
        XCTAssertEqual(to10.status, 0, to10.description)
        let conn = try db.connect()
        try conn.execute(Self.data)
        let up = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up"], environment: db.environment)
        XCTAssertEqual(up.status, 0, up.description)
        XCTAssertTrue(up.stdout.contains("applied 0011_fixed_reference_users.sql"), up.stdout)
        XCTAssertEqual(try fixed(conn), ["$${empty}=", "$${provider}=example.com"])
        XCTAssertEqual(try fixed(conn), try expectedFixed(conn))
        XCTAssertEqual(userIDs(try lookup(NodeEngine(), settings(db), "example.COM")), ["Example.com"])
    }

    /// A reference-named user written while another transaction changes the globals
    /// it names: its row is worked out from the globals before that change, and
    /// carries their version, which is not current once the change commits: the
    /// statement does not use it (the user stays a candidate), and nobody waits.
    func testAUserWrittenWhileTheGlobalsChangeIsNeverLeftOutWrongly() throws {
        let db = try database()
        let first = try db.connect(), second = try db.connect()
        try first.execute("INSERT INTO fsconf.domains (name) VALUES ('other.example')")
        try first.execute("BEGIN; UPDATE fsconf.global_variables SET value = 'Changed.example' WHERE name = 'provider'")
        try second.execute("INSERT INTO fsconf.users (domain_id, user_id) SELECT id, '$${provider}' FROM fsconf.domains WHERE name = 'other.example'")
        try first.execute("COMMIT")
        let conn = try db.connect()
        // The new user's row says example.com, from a version that is gone.
        XCTAssertEqual(try fixed(conn).filter { $0.hasPrefix("$${provider}=") }, ["$${provider}=changed.example", "$${provider}=example.com"])
        // Both `$${provider}` users are candidates (the asked domain's and $${domain}'s, whose row is current).
        XCTAssertEqual(try candidates(conn, "changed.example", domain: "other.example").filter { $0 == "$${provider}" }.count, 2,
                       "a stale row must not leave the user out")
        XCTAssertEqual(try PrerenderStore(conn).fixedIDsBehind(), 1, "what fsconf doctor reports")
        // The next write of globals (or `fsconf prerender --all`) works it out again.
        try conn.execute("UPDATE fsconf.global_variables SET value = value WHERE name = 'provider'")
        XCTAssertEqual(try PrerenderStore(conn).fixedIDsBehind(), 0)
        XCTAssertEqual(try candidates(conn, "changed.example", domain: "other.example").filter { $0 == "$${provider}" }.count, 2)
        XCTAssertFalse(try candidates(conn, "1000", domain: "other.example").contains("$${provider}"))
    }

    func settings(_ db: TestDatabase) -> NodeSettings {
        var settings = NodeSettings(conninfo: db.conninfo)
        settings.cacheBytes = 0   // every lookup reads the database
        return settings
    }

    func lookup(_ engine: NodeEngine, _ settings: NodeSettings, _ user: String) throws -> String {
        let request = LookupRequest(section: "directory", tagName: "domain", keyName: "name", keyValue: "192.0.2.1",
                                    headers: ["action": "sip_auth", "key": "id", "user": user, "domain": "192.0.2.1"])
        let outcome = engine.handle(request, settings: settings) { $0 == "local_ip_v4" ? "192.0.2.1" : nil }
        return try XCTUnwrap(outcome.xml, outcome.error ?? "no answer")
    }

    func userIDs(_ xml: String) -> [String] {
        xml.components(separatedBy: "<user id=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
    }

    func testAnswersAreWhatTheNodeExpands() throws {
        let db = try database()
        let engine = NodeEngine()
        let settings = settings(db)
        XCTAssertEqual(userIDs(try lookup(engine, settings, "1000")), ["1000"])
        XCTAssertEqual(userIDs(try lookup(engine, settings, "example.COM")), ["Example.com"])
        XCTAssertEqual(userIDs(try lookup(engine, settings, "xexample.com")), ["xExample.com"])
        // $${nested} is $${local_ip_v4}: only the node knows it.
        XCTAssertEqual(userIDs(try lookup(engine, settings, "192.0.2.1")), ["192.0.2.1"])
        XCTAssertTrue(try lookup(engine, settings, "1000").contains(#"<param name="password" value="1234"/>"#))
    }

    func testTheNodeKeepsOneCopyOfTheGlobalsAndRenewsItWhenTheyChange() throws {
        let db = try database()
        let conn = try db.connect()
        func version() throws -> String? { try conn.query("SELECT value FROM fsconf.globals_version").string(0, 0) }
        let engine = NodeEngine()
        let settings = settings(db)
        XCTAssertNil(engine.globalsVersion)
        XCTAssertTrue(try lookup(engine, settings, "1000").contains(#"value="1234""#))
        let first = try version()
        XCTAssertEqual(engine.globalsVersion, first)
        // Unchanged: the same copy serves the next lookups.
        XCTAssertTrue(try lookup(engine, settings, "1000").contains(#"value="1234""#))
        XCTAssertEqual(engine.globalsVersion, first)
        // A statement that writes no global leaves the version alone.
        try conn.execute("UPDATE fsconf.global_variables SET value = 'x' WHERE name = 'nobody'")
        XCTAssertEqual(try version(), first)
        // A changed global is a new version: the next lookup renders the new value.
        try conn.execute("UPDATE fsconf.global_variables SET value = '5678' WHERE name = 'default_password'")
        let second = try version()
        XCTAssertNotEqual(second, first)
        XCTAssertTrue(try lookup(engine, settings, "1000").contains(#"value="5678""#))
        XCTAssertEqual(engine.globalsVersion, second)
        // Removed: the reference expands to "" (nothing stored, nothing on the node).
        try conn.execute("DELETE FROM fsconf.global_variables WHERE name = 'default_password'")
        XCTAssertTrue(try lookup(engine, settings, "1000").contains(#"<param name="password" value=""/>"#))
        try conn.execute("TRUNCATE fsconf.global_variables")
        XCTAssertNotEqual(try version(), engine.globalsVersion)
        XCTAssertEqual(userIDs(try lookup(engine, settings, "1000")), [], "$${domain} is now \"\": no such domain")
    }

    func testARecreatedDatabaseNeverServesTheGlobalsOfTheOldOne() throws {
        let db = try database()
        let engine = NodeEngine()
        let settings = settings(db)
        XCTAssertTrue(try lookup(engine, settings, "1000").contains(#"value="1234""#))
        // The same name, new contents: the node's connections break, its copy is stale.
        let admin = try TestDatabase.admin()
        try admin.execute("DROP DATABASE \(db.name) WITH (FORCE)")
        try admin.execute("CREATE DATABASE \(db.name)")
        let up = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up"], environment: db.environment)
        XCTAssertEqual(up.status, 0, up.description)
        try db.connect().execute("BEGIN; \(Self.data.replacingOccurrences(of: "'1234'", with: "'4321'")); COMMIT;")
        XCTAssertTrue(try lookup(engine, settings, "1000").contains(#"value="4321""#))
    }

    func testIntegersAreReadFromTheResultsBytes() throws {
        let db = try TestDatabase(prefix: "stmt")
        let r = try db.connect().query("""
            SELECT '-9223372036854775808'::bigint, '9223372036854775807'::bigint, 0, '12a', NULL::bigint, '', '99999999999999999999', '-'
            """)
        XCTAssertEqual(r.int64(0, 0), Int64.min)
        XCTAssertEqual(r.int64(0, 1), Int64.max)
        XCTAssertEqual(r.int64(0, 2), 0)
        for column in 3..<8 { XCTAssertNil(r.int64(0, column), "column \(column)") }
        XCTAssertEqual(r.withBytes(0, 3) { Array($0) }, Array("12a".utf8))
        XCTAssertNil(r.withBytes(0, 4) { Array($0) })
    }
}
