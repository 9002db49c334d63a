import FSConfCore
@testable import FSConfNode
import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// Prerendered contexts (migration 0009, DialplanPrerender) against a real
/// PostgreSQL and the built CLI: a stored document answers byte for byte as the
/// rows do, on every stock tree and the 10,000-extension context; a change made in
/// SQL is served from the rows until a writer renders it again; contexts that
/// cannot be stored say why and are read as rows.
final class PrerenderTests: XCTestCase {
    func fsconf(_ db: TestDatabase, _ args: [String]) throws -> ProcessOutput {
        try runProcess(TestEnvironment.fsconfBinary, args, environment: db.environment)
    }

    /// The node's answer for a context with the cache off (every lookup reads the database).
    func answer(_ db: TestDatabase, section: String = "dialplan", _ context: String,
                node: @escaping (String) -> String? = { _ in nil }) throws -> String {
        var settings = NodeSettings(conninfo: db.conninfo)
        settings.cacheBytes = 0
        settings.deadlineMs = 30_000
        settings.statementTimeoutMs = 30_000
        let header = section == "chatplan" ? "context" : "Hunt-Context"
        let outcome = NodeEngine().handle(LookupRequest(section: section, headers: [header: context]), settings: settings, node: node)
        return try XCTUnwrap(outcome.xml, outcome.error ?? "no answer for \(context)")
    }

    /// (name, section) of each context, and whether a current document is stored for it.
    func contexts(_ db: TestDatabase) throws -> [(name: String, section: String, stored: Bool)] {
        let r = try db.connect().query("""
            SELECT c.name, c.section, p.xml IS NOT NULL AND p.rendered_version = p.version
            FROM fsconf.dialplan_contexts c LEFT JOIN fsconf.prerendered_contexts p ON p.context_id = c.id ORDER BY c.id
            """)
        return (0..<r.rowCount).map { (r.string($0, 0)!, r.string($0, 1)!, r.bool($0, 2) ?? false) }
    }

    /// Every context of every stock tree, and "big": stored, and the stored answer
    /// equals the rows' answer byte for byte.
    func testStoredDocumentsAnswerByteForByteAsTheRows() throws {
        let fixtures = TestEnvironment.repoRoot.appendingPathComponent("Tests/Fixtures/freeswitch-conf")
        let trees = [("vanilla", VanillaConfig.root.appendingPathComponent("freeswitch.xml"))]
            + ["minimal", "sbc", "softphone", "testing"].map { ($0, fixtures.appendingPathComponent("\($0)/freeswitch.xml")) }
        var compared = 0, stored = 0
        for (name, tree) in trees {
            let db = try TestDatabase(prefix: "pre")
            XCTAssertEqual(try fsconf(db, ["migrate", "up"]).status, 0)
            let imported = try fsconf(db, ["import", "--skip-unrepresentable", tree.path])
            XCTAssertEqual(imported.status, 0, imported.description)
            if name == "vanilla" {
                let big = TestEnvironment.repoRoot.appendingPathComponent("benchmarks/data/dialplan-10k.sql")
                let load = try runProcess(tool("psql"), ["-q", "-v", "ON_ERROR_STOP=1", "-f", big.path], environment: db.environment)
                XCTAssertEqual(load.status, 0, load.description)
                // Loaded in SQL: read as rows until rendered.
                XCTAssertFalse(try contexts(db).first { $0.name == "big" }!.stored)
                XCTAssertEqual(try fsconf(db, ["prerender", "--check"]).status, 1)
                let rendered = try fsconf(db, ["prerender"])
                XCTAssertEqual(rendered.status, 0, rendered.description)
                XCTAssertEqual(try fsconf(db, ["prerender", "--check"]).status, 0)
            }
            let globals: (String) -> String? = { ["local_ip_v4": "192.0.2.10", "hostname": "fs-node-1"][$0] }
            for context in try contexts(db) {
                XCTAssertTrue(context.stored, "\(name): \(context.name) not stored")
                if context.stored { stored += 1 }
                let fromDocument = try answer(db, section: context.section, context.name, node: globals)
                try db.connect().execute("UPDATE fsconf.prerendered_contexts SET rendered_version = NULL")
                let fromRows = try answer(db, section: context.section, context.name, node: globals)
                XCTAssertEqual(fromDocument, fromRows, "\(name): \(context.section) \(context.name)")
                XCTAssertTrue(fromRows.contains("<context name="), "\(name): \(context.name)")
                compared += 1
                XCTAssertEqual(try fsconf(db, ["prerender"]).status, 0)
            }
        }
        XCTAssertGreaterThan(compared, 15)
        print("prerendered contexts: \(stored) stored, \(compared) compared with their rows")
    }

    /// A migrated database whose context `office` holds one extension (`echo` on
    /// 9196), added with the CLI: its document is stored.
    func officeContext() throws -> TestDatabase {
        let db = try TestDatabase(prefix: "pre")
        XCTAssertEqual(try fsconf(db, ["migrate", "up"]).status, 0)
        let added = try fsconf(db, ["extension", "add", "office", "echo", "--condition",
                                    "destination_number=^9196$", "--action", "echo"])
        XCTAssertEqual(added.status, 0, added.description)
        return db
    }

    /// A change made in SQL is served at once (from the rows); the next fsconf write
    /// or `fsconf prerender` stores the new document.
    func testAChangeInSQLIsServedFromTheRowsUntilRenderedAgain() throws {
        let db = try officeContext()
        XCTAssertEqual(try contexts(db).map(\.stored), [true])
        XCTAssertTrue(try answer(db, "office").contains(#"application="echo""#))

        try db.connect().execute("UPDATE fsconf.dialplan_actions SET application = 'answer'")
        XCTAssertEqual(try contexts(db).map(\.stored), [false])
        XCTAssertTrue(try answer(db, "office").contains(#"application="answer""#))
        XCTAssertEqual(try fsconf(db, ["prerender", "--check"]).status, 1)

        XCTAssertEqual(try fsconf(db, ["prerender"]).status, 0)
        XCTAssertEqual(try contexts(db).map(\.stored), [true])
        XCTAssertTrue(try answer(db, "office").contains(#"application="answer""#))

        // Deleting a condition (its actions cascade) changes the context too.
        try db.connect().execute("DELETE FROM fsconf.dialplan_conditions")
        XCTAssertEqual(try contexts(db).map(\.stored), [false])
        XCTAssertFalse(try answer(db, "office").contains("<condition"))
    }

    /// What cannot be stored is read as rows, with the reason kept; references in
    /// stored documents expand per node.
    func testContextsThatCannotBeStoredSayWhyAndStillAnswer() throws {
        let db = try TestDatabase.migrated(prefix: "pre")
        let conn = try db.connect()
        try conn.execute("""
            INSERT INTO fsconf.dialplan_contexts (name) VALUES ('plain'), ('expr'), ('scoped');
            INSERT INTO fsconf.dialplan_extensions (context_id, name, position, nodes)
            SELECT id, 'e', 1, CASE name WHEN 'scoped' THEN ARRAY['fs-node-2'] END FROM fsconf.dialplan_contexts;
            INSERT INTO fsconf.dialplan_conditions (extension_id, position, field, expression)
            SELECT e.id, 1, 'destination_number', CASE c.name WHEN 'expr' THEN '^$${prefix}(\\d+)$' ELSE '^(\\d+)$' END
            FROM fsconf.dialplan_extensions e JOIN fsconf.dialplan_contexts c ON c.id = e.context_id;
            INSERT INTO fsconf.dialplan_actions (condition_id, kind, position, application, data)
            SELECT id, 'action', 1, 'bridge', 'sofia/$${domain}/$1 <&>' FROM fsconf.dialplan_conditions;
            """)
        let out = try fsconf(db, ["prerender"])
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stdout.contains("read as rows: scoped: extensions scoped to nodes"), out.stdout)
        XCTAssertTrue(out.stdout.contains("2 stored, 1 read as rows"), out.stdout)
        XCTAssertEqual(try contexts(db).map(\.stored), [true, true, false])
        XCTAssertEqual(try conn.query("SELECT checks::text FROM fsconf.prerendered_contexts ORDER BY context_id").string(1, 0),
                       #"{"^$${prefix}(\\d+)$"}"#)

        // Each node expands the stored document with its own values, escaped.
        let one = try answer(db, "plain", node: { $0 == "domain" ? "a&b.example" : nil })
        let two = try answer(db, "plain", node: { $0 == "domain" ? "two.example" : nil })
        XCTAssertTrue(one.contains(#"data="sofia/a&amp;b.example/$1 &lt;&amp;&gt;""#), one)
        XCTAssertTrue(two.contains(#"data="sofia/two.example/$1 &lt;&amp;&gt;""#), two)
        let expr = try answer(db, "expr", node: { $0 == "prefix" ? "9" : nil })
        XCTAssertTrue(expr.contains(#"expression="^9(\d+)$""#), expr)
        // A node whose value makes the expression invalid reads the rows: the
        // extension is left out there, as without a stored document.
        let broken = try answer(db, "expr", node: { $0 == "prefix" ? "(" : nil })
        XCTAssertTrue(broken.contains(#"<context name="expr""#), broken)
        XCTAssertFalse(broken.contains("<extension"), broken)
        XCTAssertEqual(try answer(db, "scoped", node: { _ in nil }).contains("<extension"), false)
    }

    /// Nodes read the packed form (migration 0010), not `xml`; a packed block that
    /// does not unpack is served from the rows, with one warning; a document stored
    /// without its packed form is served from `xml`.
    func testNodesReadThePackedFormAndACorruptOneIsReadAsRows() throws {
        let db = try officeContext()
        let conn = try db.connect()
        let stored = try conn.query("SELECT packed_length = octet_length(xml), octet_length(packed) > 0 FROM fsconf.prerendered_contexts")
        XCTAssertEqual(stored.bool(0, 0), true)
        XCTAssertEqual(stored.bool(0, 1), true)
        let expected = try answer(db, "office")
        XCTAssertTrue(expected.contains(#"application="echo""#), expected)

        // `xml` is not what a node reads while the packed form is there.
        try conn.execute("UPDATE fsconf.prerendered_contexts SET xml = '<document type=\"freeswitch/xml\"/>'")
        XCTAssertEqual(try answer(db, "office"), expected)

        // A block that does not unpack (flipped bytes; a length that does not match):
        // the rows answer, and the node says so once.
        for corruption in ["packed = '\\x00ff00ff'::bytea", "packed_length = packed_length + 1"] {
            try conn.execute("UPDATE fsconf.prerendered_contexts SET \(corruption)")
            var settings = NodeSettings(conninfo: db.conninfo)
            settings.cacheBytes = 0
            let outcome = NodeEngine().handle(LookupRequest(section: "dialplan", headers: ["Hunt-Context": "office"]), settings: settings, node: { _ in nil })
            XCTAssertEqual(outcome.xml, expected, corruption)
            XCTAssertEqual(outcome.log.filter { $0.message.contains("did not unpack") }.count, 1, "\(corruption): \(outcome.log)")
            XCTAssertEqual(try fsconf(db, ["prerender", "--all"]).status, 0)
            XCTAssertEqual(try answer(db, "office"), expected)
        }

        // Stored without a packed form (as by hand): served from `xml`, still a stored document.
        try conn.execute("UPDATE fsconf.prerendered_contexts SET packed = NULL, packed_length = NULL, xml = replace(xml, 'echo', 'park')")
        XCTAssertTrue(try answer(db, "office").contains(#"application="park""#))
    }

    /// One node (one engine, cache off) following a context through its states:
    /// stored (the document alone is asked for), changed in SQL (the rows, then the
    /// statement that returns document or rows), rendered again (the document, and
    /// the hint gone), and a context that cannot be stored (rows every time).
    func testOneNodeFollowsAContextBetweenItsDocumentAndItsRows() throws {
        let db = try officeContext()
        var settings = NodeSettings(conninfo: db.conninfo)
        settings.cacheBytes = 0
        let engine = NodeEngine()
        func ask(_ context: String) throws -> String {
            let outcome = engine.handle(LookupRequest(section: "dialplan", headers: ["Hunt-Context": context]),
                                        settings: settings, node: { _ in nil })
            return try XCTUnwrap(outcome.xml, outcome.error ?? "no answer")
        }
        XCTAssertTrue(try ask("office").contains(#"application="echo""#))
        XCTAssertFalse(engine.contextHints.readsRows(.dialplan, "office"))

        try db.connect().execute("UPDATE fsconf.dialplan_actions SET application = 'answer'")
        for _ in 0..<3 {
            XCTAssertTrue(try ask("office").contains(#"application="answer""#))
            XCTAssertTrue(engine.contextHints.readsRows(.dialplan, "office"))
        }
        XCTAssertEqual(try fsconf(db, ["prerender"]).status, 0)
        try db.connect().execute("UPDATE fsconf.prerendered_contexts SET xml = replace(xml, 'answer', 'stale')")
        // The document again (rendered, then marked in `xml` only: the node reads `packed`).
        XCTAssertTrue(try ask("office").contains(#"application="answer""#))
        XCTAssertFalse(engine.contextHints.readsRows(.dialplan, "office"))
        XCTAssertTrue(try ask("office").contains(#"application="answer""#))

        // Unknown contexts leave no hint; a context that cannot be stored keeps one.
        XCTAssertEqual(try ask("nowhere"), FreeSWITCHDocument.notFound)
        XCTAssertFalse(engine.contextHints.readsRows(.dialplan, "nowhere"))
        for (name, number) in [("only-here", "1"), ("everywhere", "2")] {
            let added = try fsconf(db, ["extension", "add", "lab", name, "--condition", "destination_number=^\(number)$",
                                        "--action", "park"])
            XCTAssertEqual(added.status, 0, added.description)
        }
        try db.connect().execute("UPDATE fsconf.dialplan_extensions SET nodes = ARRAY['fs-node-9'] WHERE name = 'only-here'")
        XCTAssertEqual(try fsconf(db, ["prerender"]).status, 0)
        XCTAssertEqual(try db.connect().query("""
            SELECT p.reason IS NOT NULL FROM fsconf.prerendered_contexts p JOIN fsconf.dialplan_contexts c ON c.id = p.context_id
            WHERE c.name = 'lab'
            """).bool(0, 0), true)
        for _ in 0..<2 {
            let lab = try ask("lab")
            XCTAssertTrue(lab.contains(#"<extension name="everywhere""#), lab)
            XCTAssertFalse(lab.contains("only-here"), lab)
            XCTAssertTrue(engine.contextHints.readsRows(.dialplan, "lab"))
        }
    }

    /// The upgrade to schema 10: documents an earlier fsconf stored (format 1, no
    /// packed form) are stale for this library; `migrate up` renders and packs them,
    /// and nodes read them packed. Until then a node reads the rows.
    func testTheUpgradeToSchema10PacksEveryStoredDocument() throws {
        let db = try TestDatabase(prefix: "pre")
        let to9 = try fsconf(db, ["migrate", "up", "--to", "9"])
        XCTAssertEqual(to9.status, 0, to9.description)
        let conn = try db.connect()
        try conn.execute("""
            INSERT INTO fsconf.dialplan_contexts (name) VALUES ('office');
            INSERT INTO fsconf.dialplan_extensions (context_id, name, position) SELECT id, 'echo', 1 FROM fsconf.dialplan_contexts;
            INSERT INTO fsconf.dialplan_conditions (extension_id, position, field, expression)
                SELECT id, 1, 'destination_number', '^9196$' FROM fsconf.dialplan_extensions;
            INSERT INTO fsconf.dialplan_actions (condition_id, kind, position, application) SELECT id, 'action', 1, 'echo' FROM fsconf.dialplan_conditions;
            UPDATE fsconf.prerendered_contexts SET rendered_version = version, format = 1, rendered_at = now(),
                xml = '<document type="freeswitch/xml"><section name="dialplan"><context name="office"/></section></document>';
            """)
        let up = try fsconf(db, ["migrate", "up"])
        XCTAssertEqual(up.status, 0, up.description)
        XCTAssertTrue(up.stdout.contains("applied 0010_packed_contexts.sql"), up.stdout)
        XCTAssertTrue(up.stdout.contains("prerendered 1 context(s)"), up.stdout)
        let stored = try conn.query("SELECT format, packed_length = octet_length(xml), xml LIKE '%echo%' FROM fsconf.prerendered_contexts")
        XCTAssertEqual(stored.int(0, 0), DialplanPrerender.format)
        XCTAssertEqual(stored.bool(0, 1), true)
        XCTAssertEqual(stored.bool(0, 2), true)
        XCTAssertTrue(try answer(db, "office").contains(#"application="echo""#))
    }
}
