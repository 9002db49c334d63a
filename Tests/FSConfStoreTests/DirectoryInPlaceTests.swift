import FSConfCore
import FSConfNode
import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// User lookups rendered straight from the statement's result (DirectoryUserRenderer)
/// against the general way (rows decoded into the model, then rendered), on every
/// stock tree imported with `fsconf import`, for every stored user asked by its id
/// and its alias, in its domain as the node names it: the same answer and the same
/// cache tags, and the rows of a real result are all taken on in place.
final class DirectoryInPlaceTests: XCTestCase {
    func testStockTreesUserAnswersRenderedInPlaceAreTheGeneralOnes() throws {
        let fixtures = TestEnvironment.repoRoot.appendingPathComponent("Tests/Fixtures/freeswitch-conf")
        let trees = [("vanilla", VanillaConfig.root.appendingPathComponent("freeswitch.xml"))]
            + ["minimal", "sbc", "softphone", "testing"].map { ($0, fixtures.appendingPathComponent("\($0)/freeswitch.xml")) }
        let node: (String) -> String? = { ["local_ip_v4": "192.0.2.10", "hostname": "fs-node-1"][$0] }
        var compared = 0, found = 0
        for (name, tree) in trees {
            let db = try TestDatabase(prefix: "inplace")
            XCTAssertEqual(try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up"], environment: db.environment).status, 0)
            let imported = try runProcess(TestEnvironment.fsconfBinary, ["import", "--skip-unrepresentable", tree.path],
                                          environment: db.environment)
            XCTAssertEqual(imported.status, 0, imported.description)
            let conn = try db.connect()
            let stored = try conn.query("""
                SELECT d.name, u.user_id, u.number_alias FROM fsconf.users u JOIN fsconf.domains d ON d.id = u.domain_id ORDER BY u.id
                """)
            var asks: [(domain: String, user: String, statement: DirectorySQL.Statement, key: String)] = []
            for i in 0..<stored.rowCount {
                let domain = stored.string(i, 0)!
                // The domain as the node names it ($${domain} is the node's address here).
                let asked = VariableExpander.hasReference(domain) ? "192.0.2.10" : domain
                for user in [stored.string(i, 1)!, "no-such-user"] {
                    asks.append((asked, user, DirectorySQL.userByID, "id"))
                }
                if let alias = stored.string(i, 2) { asks.append((asked, alias, DirectorySQL.userByAlias, "number-alias")) }
                asks.append(("elsewhere.test", stored.string(i, 1)!, DirectorySQL.userByID, "id"))
            }
            for ask in asks {
                let statement = ask.statement
                try conn.prepare(statement.name, statement.sql)
                let result = try conn.queryPrepared(statement.name, statement.arguments([ask.domain, ask.user, nil], globalsVersion: nil),
                                                    deadline: .max)
                let query = DirectoryQuery.user(domain: ask.domain, user: ask.user, key: ask.key)
                let data = DirectoryData(rows: DirectorySQL.rows(result))
                let general = DirectoryRenderer.answer(query, data, node: node)
                let inPlace = withExtendedLifetime(result) {
                    DirectoryUserRenderer.render(result.directoryRawRows, domain: ask.domain, user: ask.user, key: ask.key,
                                                 globals: { $0 }, node: node, tags: true)
                }
                guard let inPlace else {
                    XCTFail("\(name): \(ask.user)@\(ask.domain) was left to the general way")
                    continue
                }
                XCTAssertEqual(inPlace.answer.xml, general.xml, "\(name): \(ask.user)@\(ask.domain)")
                XCTAssertEqual(inPlace.answer.noSuchUser, general.noSuchUser, "\(name): \(ask.user)@\(ask.domain)")
                XCTAssertEqual(inPlace.answer.heldByFreeSWITCH, general.heldByFreeSWITCH, "\(name): \(ask.user)@\(ask.domain)")
                XCTAssertEqual(inPlace.tags, CacheTags.directory(query, data, found: !general.notFound), "\(name): \(ask.user)")
                compared += 1
                if !general.noSuchUser && !general.notFound { found += 1 }
            }
        }
        print("user answers rendered in place and compared: \(compared), \(found) of them found a user")
        XCTAssertGreaterThan(found, 40)
    }

    /// A database in another encoding: the node asks for UTF-8 (client_encoding), so
    /// what it renders from the result's bytes is UTF-8 whatever the database holds.
    func testALatin1DatabaseIsAnsweredInUTF8() throws {
        let db = try TestDatabase(prefix: "latin1", encoding: "LATIN1")
        let up = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up"], environment: db.environment)
        XCTAssertEqual(up.status, 0, up.description)
        let conn = try db.connect()
        // Before the text that holds them: a query string is read in the encoding it arrives in.
        try conn.execute("SET client_encoding = 'UTF8'")
        try conn.execute("""
            INSERT INTO fsconf.domains (name) VALUES ('pbx.test');
            INSERT INTO fsconf.users (domain_id, user_id) SELECT id, '1000' FROM fsconf.domains;
            INSERT INTO fsconf.user_settings (user_id, kind, name, value)
                SELECT id, 'variable', 'effective_caller_id_name', 'Café Müller' FROM fsconf.users;
            """)
        XCTAssertEqual(try db.column("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()"),
                       ["LATIN1"])
        XCTAssertEqual(try conn.query("SELECT octet_length(convert_to(value, 'LATIN1')) FROM fsconf.user_settings").string(0, 0), "11",
                       "stored as Latin-1: one byte per letter")
        var settings = NodeSettings(conninfo: db.conninfo)
        settings.cacheBytes = 0
        let request = LookupRequest(section: "directory", tagName: "domain", keyName: "name", keyValue: "pbx.test",
                                    headers: ["action": "sip_auth", "key": "id", "user": "1000", "domain": "pbx.test"])
        let outcome = NodeEngine().handle(request, settings: settings) { _ in nil }
        let xml = try XCTUnwrap(outcome.xml, outcome.error ?? "no answer")
        XCTAssertTrue(xml.contains(#"<variable name="effective_caller_id_name" value="Café Müller"/>"#), xml)
    }
}
