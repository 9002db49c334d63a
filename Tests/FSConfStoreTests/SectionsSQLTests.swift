import FSConfCore
import FSConfNode
import FSConfRegex
import FSConfStore
import FSConfTestSupport
import Foundation
import FoundationXML
import XCTest

/// The section statements against a real PostgreSQL, in process: one round trip
/// per lookup, and a 10,000-extension context (benchmarks/data/dialplan-10k.sql)
/// rendered completely and in order. Timings are printed (lines starting
/// "PERF"), never asserted; docs/performance.md records them.
final class SectionsSQLTests: XCTestCase {
    func migratedDatabase() throws -> TestDatabase {
        let db = try TestDatabase(prefix: "sql")
        let up = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up"], environment: db.environment)
        XCTAssertEqual(up.status, 0, up.description)
        return db
    }

    func load10k(_ db: TestDatabase) throws {
        let file = TestEnvironment.repoRoot.appendingPathComponent("benchmarks/data/dialplan-10k.sql")
        let out = try runProcess(tool("psql"), ["-q", "-v", "ON_ERROR_STOP=1", "-f", file.path], environment: db.environment)
        XCTAssertEqual(out.status, 0, out.description)
    }

    static func milliseconds(_ block: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try block()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    func testTenThousandExtensionsRenderCompletelyAndInOrder() throws {
        let db = try migratedDatabase()
        try load10k(db)
        var settings = NodeSettings(conninfo: db.conninfo)
        settings.deadlineMs = 30_000
        settings.statementTimeoutMs = 30_000
        settings.cacheBytes = 0   // every lookup reads and renders (the printed times are misses)
        let engine = NodeEngine()
        let request = LookupRequest(section: "dialplan", headers: ["Hunt-Context": "big"])
        var outcome = LookupOutcome()
        var runs: [Double] = []
        for _ in 0..<5 {
            runs.append(Self.milliseconds { outcome = engine.handle(request, settings: settings, node: { _ in nil }) })
        }
        let xml = try XCTUnwrap(outcome.xml, outcome.error ?? "no answer")
        let doc = try XMLDocument(xmlString: xml, options: [])
        let names = try doc.nodes(forXPath: "/document/section/context[@name='big']/extension/@name").map { $0.stringValue ?? "" }
        XCTAssertEqual(names.count, 10_000)
        XCTAssertEqual(names, (1...10_000).map { "ext-" + String(repeating: "0", count: 5 - String($0).count) + String($0) })
        XCTAssertEqual(try doc.nodes(forXPath: "//extension[@continue='true']").count, 1_000)
        XCTAssertEqual(try doc.nodes(forXPath: "//condition[@regex='any']/regex").count, 200)
        XCTAssertEqual(try doc.nodes(forXPath: "//condition/condition/action[@data='local_stream://moh']").count, 100)
        XCTAssertTrue(outcome.log.isEmpty, "\(outcome.log)")

        // Where the time goes: the statement alone, row assembly, rendering.
        let conn = try db.connect()
        try conn.execute("SET jit = off; SET plan_cache_mode = force_generic_plan")  // as on node connections (ConnectionPool)
        let (statement, params) = DialplanSQL.bind(.context("big"), node: nil)!
        try conn.prepare(statement.name, statement.sql)
        var result: PGResult?
        let sql = try (0..<3).map { _ in
            try Self.milliseconds {
                result = try conn.queryPrepared(statement.name, statement.arguments(params, globalsVersion: nil), deadline: .max)
            }
        }.min()!
        var rows: [SectionRow] = []
        let decode = Self.milliseconds { rows = SectionRows.decode(result!) }
        var data: DialplanData?
        let assemble = Self.milliseconds { data = DialplanData(rows: rows) }
        let compiler = CachingRegexCompiler()
        _ = DialplanRenderer.render(.context("big"), data!, compiler: compiler)
        var rendered: DialplanRenderer.Result?
        let render = Self.milliseconds { rendered = DialplanRenderer.render(.context("big"), data!, compiler: compiler) }
        let cold = Self.milliseconds { _ = DialplanRenderer.render(.context("big"), data!, compiler: CachingRegexCompiler()) }
        XCTAssertEqual(rendered?.xml.utf8.count, xml.utf8.count)
        print(String(format: "PERF dialplan-10k: rows=%d bytes=%d lookup_ms(min/median of 5)=%.1f/%.1f sql_ms=%.1f decode_ms=%.1f assemble_ms=%.1f render_ms=%.1f render_cold_regex_ms=%.1f",
                     rows.count, xml.utf8.count, runs.min()!, runs.sorted()[2], sql, decode, assemble, render, cold))
    }

    func testEachSectionStatementIsOneRoundTripWithItsGlobals() throws {
        let db = try migratedDatabase()
        let conn = try db.connect()
        try conn.execute("""
            INSERT INTO fsconf.global_variables (name, value) VALUES ('a', 'x$${b}'), ('b', 'y'), ('unused', 'z');
            INSERT INTO fsconf.documents (section, name) VALUES ('configuration', 'sofia.conf');
            """)
        try VanillaConfig.loadTree("""
            <configuration name="sofia.conf">
              <global_settings><param name="p" value="$${a}"/></global_settings>
              <profiles>
                <profile name="internal"><gateways><gateway name="g1"/></gateways></profile>
                <profile name="external"><gateways><gateway name="g2"/><gateway name="g3"/></gateways></profile>
              </profiles>
            </configuration>
            """, section: "configuration", name: "sofia2.conf", into: conn)
        func rows(_ bound: (DirectorySQL.Statement, [String?]), globalsVersion: String? = nil) throws -> [SectionRow] {
            try conn.prepare(bound.0.name, bound.0.sql)
            let result = try conn.queryPrepared(bound.0.name, bound.0.arguments(bound.1, globalsVersion: globalsVersion),
                                                deadline: .max)
            // Every statement ends with the snapshot's change seq (the node cache's guard).
            XCTAssertNotNil(ChangeSeq.of(result), bound.0.name)
            return SectionRows.decode(result).filter { $0.kind != "Q" }
        }
        func version() throws -> String? { try conn.query("SELECT value FROM fsconf.globals_version").string(0, 0) }
        // A node without the globals gets every one of them, whatever the rows reference.
        let whole = try rows(DocumentSQL.bind(ConfigurationQuery(document: "SOFIA2.conf"), node: nil))
        XCTAssertEqual(SectionRow.globals(whole), ["a": "x$${b}", "b": "y", "unused": "z"])
        XCTAssertEqual(whole.filter { $0.kind == "E" }.count, 11)
        // A node holding the current version gets none; a changed global is a new version.
        let current = try version()
        let held = try rows(DocumentSQL.bind(ConfigurationQuery(document: "SOFIA2.conf"), node: nil), globalsVersion: current)
        XCTAssertEqual(held.filter { $0.kind == "V" }.count, 0)
        XCTAssertEqual(held.filter { $0.kind == "E" }.count, 11)
        try conn.execute("UPDATE fsconf.global_variables SET value = 'w' WHERE name = 'b'")
        XCTAssertNotEqual(try version(), current)
        let renewed = try rows(DocumentSQL.bind(ConfigurationQuery(document: "SOFIA2.conf"), node: nil), globalsVersion: current)
        XCTAssertEqual(SectionRow.globals(renewed), ["a": "x$${b}", "b": "w", "unused": "z"])
        // Narrowed in SQL: the other profile's subtree is not fetched at all.
        let narrowed = try rows(DocumentSQL.bind(ConfigurationQuery(document: "sofia2.conf",
                                                                    narrowing: .children(container: "profiles", child: "profile", name: "Internal")), node: nil))
        let data = TreeData(rows: narrowed)
        XCTAssertEqual(narrowed.filter { $0.kind == "E" }.count, 7)
        XCTAssertEqual(data.root?.children[1].children.map { $0.attribute("name") ?? "" }, ["internal"])
        let now = try version()
        XCTAssertEqual(try rows(DocumentSQL.bind(ConfigurationQuery(document: "nope.conf"), node: nil), globalsVersion: now).count, 0)
        XCTAssertTrue(try rows(DocumentSQL.bind(LanguageQuery(language: "en", fallback: nil, phrases: false), node: nil), globalsVersion: now).isEmpty)
        XCTAssertTrue(try rows(DialplanSQL.bind(.context("nope"), node: nil)!, globalsVersion: now).isEmpty)
        for statement in DirectorySQL.all {
            let keys = [String?](repeating: "x", count: statement.parameters)
            XCTAssertEqual(try rows((statement, keys), globalsVersion: now).filter { $0.kind == "V" }.count, 0, statement.name)
        }
    }
}
