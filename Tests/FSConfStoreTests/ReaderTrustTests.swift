import FSConfCore
@testable import FSConfNode
import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// What a node's own login (fsconf_reader) can do to other nodes: it can send any
/// NOTIFY fsconf_changes (PostgreSQL has no privilege for it). A notice must only
/// make the node look at the change log, so a forged one can neither hide a real
/// change from the cache nor make it forget less than the change touched.
extension CacheEngineTests {
    func testAForgedNoticeCannotHideARealChange() throws {
        let db = try TestDatabase(prefix: "trust")
        let up = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up"], environment: db.environment)
        XCTAssertEqual(up.status, 0, up.description)
        try db.connect().execute("BEGIN; \(CacheEngineTests.data); COMMIT;")
        let role = "node_\(db.name)"
        let admin = try TestDatabase.admin()
        try admin.execute("DROP ROLE IF EXISTS \(role); CREATE ROLE \(role) LOGIN")
        defer { _ = try? admin.execute("DROP OWNED BY \(role); DROP ROLE IF EXISTS \(role)") }
        for args in [["grant", "roles"], ["grant", "reader", role]] {
            XCTAssertEqual(try runProcess(TestEnvironment.fsconfBinary, args, environment: db.environment).status, 0, "\(args)")
        }
        let node = try PGConnection(conninfo: "dbname=\(db.name) user=\(role)")

        // The engine reads with the node's login, as on a real node.
        let settings = NodeSettings(conninfo: "dbname=\(db.name) user=\(role)")
        let engine = NodeEngine()
        let tests = self
        tests.ready(engine, settings)
        XCTAssertTrue(tests.lookup(engine, settings, "1001").xml!.contains("pw-1001"))
        let hits = engine.cacheStats.hits
        XCTAssertTrue(tests.lookup(engine, settings, "1001").xml!.contains("pw-1001"))
        XCTAssertEqual(engine.cacheStats.hits, hits + 1, "cached")

        // Forged: the next seq, touching nothing; then a far seq.
        let counter = Int(try node.query("SELECT value FROM fsconf.change_counter").string(0, 0)!)!
        let notices = engine.cacheStats.notices
        try node.execute("""
            NOTIFY fsconf_changes, '{"seq":\(counter + 1),"id":1,"keys":[]}';
            NOTIFY fsconf_changes, '{"seq":\(counter + 1000),"id":1,"keys":[]}';
            """)
        tests.waitUntil("the forged notices") { engine.cacheStats.notices >= notices + 2 }
        XCTAssertEqual(engine.cacheStats.listenerSeq, counter, "a notice's seq is not taken on trust")

        // The real change with that seq reaches the cache.
        try db.connect().execute("UPDATE fsconf.user_settings SET value = 'pw-new' WHERE value = 'pw-1001'")
        tests.waitUntil("the real change", timeout: 10) { tests.lookup(engine, settings, "1001").xml!.contains("pw-new") }
        XCTAssertEqual(engine.cacheStats.listenerSeq, counter + 1)
    }
}
