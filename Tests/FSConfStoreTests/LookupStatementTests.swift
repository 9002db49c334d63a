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
    func candidates(_ conn: PGConnection, _ user: String) throws -> [String] {
        let statement = DirectorySQL.userByID
        try conn.prepare(statement.name, statement.sql)
        let result = try conn.queryPrepared(statement.name, statement.arguments(["192.0.2.1", user, nil], globalsVersion: nil),
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
