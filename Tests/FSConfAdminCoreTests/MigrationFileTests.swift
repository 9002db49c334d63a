import FSConfCore
import FSConfAdminCore
import XCTest

final class MigrationFileTests: XCTestCase {
    private let good = """
        -- comment before the sections is fine
        -- migrate:up
        CREATE TABLE a (id int);
        CREATE TABLE b (id int);
        -- migrate:down
        DROP TABLE b;
        DROP TABLE a;
        """

    func testParsesSectionsVersionAndStatementLines() throws {
        let file = try MigrationFile(filename: "0007_add_tables.sql", contents: good)
        XCTAssertEqual(file.version, 7)
        XCTAssertEqual(file.name, "add_tables")
        XCTAssertEqual(file.upStatements.map(\.text), ["CREATE TABLE a (id int)", "CREATE TABLE b (id int)"])
        XCTAssertEqual(file.upStatements.map(\.line), [3, 4])
        XCTAssertEqual(file.downStatements.map(\.text), ["DROP TABLE b", "DROP TABLE a"])
        XCTAssertEqual(file.downStatements.map(\.line), [6, 7])
        XCTAssertEqual(file.checksum, SHA256.hex(good))
        XCTAssertTrue(file.isReversible)
    }

    func testRejectsBadFiles() {
        func error(_ name: String, _ text: String) -> MigrationError? {
            do { _ = try MigrationFile(filename: name, contents: text); return nil } catch { return error }
        }
        XCTAssertEqual(error("0001_x.sql", ""), .emptyFile("0001_x.sql"))
        XCTAssertEqual(error("0001_x.sql", "  \n\n"), .emptyFile("0001_x.sql"))
        XCTAssertEqual(error("0001_x.sql", "CREATE TABLE a();\n-- migrate:down\n"),
                       .missingMarker("0001_x.sql", "-- migrate:up"))
        XCTAssertEqual(error("0001_x.sql", "-- migrate:up\nCREATE TABLE a();\n"),
                       .missingMarker("0001_x.sql", "-- migrate:down"))
        XCTAssertEqual(error("0001_x.sql", "-- migrate:down\n-- migrate:up\nSELECT 1;"), .markersOutOfOrder("0001_x.sql"))
        XCTAssertEqual(error("0001_x.sql", "-- migrate:up\nSELECT 1;\n-- migrate:up\n-- migrate:down\n"),
                       .duplicateMarker("0001_x.sql", "-- migrate:up", 3))
        XCTAssertEqual(error("0001_x.sql", "-- migrate:up\n-- only a comment\n-- migrate:down\nDROP TABLE a;"),
                       .emptyUp("0001_x.sql"))
        XCTAssertEqual(error("0001_x.sql", "SELECT 1;\n-- migrate:up\nSELECT 1;\n-- migrate:down\n"),
                       .sqlOutsideSections("0001_x.sql", 1))
        for name in ["1_short.sql", "0001-dash.sql", "0001_Upper.sql", "0001_.sql", "abcd_x.sql", "0001_x.txt", "0000_zero.sql"] {
            XCTAssertEqual(error(name, good), .badFilename(name), name)
        }
    }

    func testEmptyDownMeansIrreversible() throws {
        let file = try MigrationFile(filename: "0002_x.sql", contents: "-- migrate:up\nSELECT 1;\n-- migrate:down\n")
        XCTAssertFalse(file.isReversible)
        let planner = try MigrationPlanner(files: [file], applied: [.init(version: 2, name: "x", checksum: file.checksum)])
        XCTAssertThrowsError(try planner.planDown(steps: 1)) { XCTAssertEqual($0 as? MigrationError, .irreversible("0002_x.sql")) }
    }

    func testSlugAndFilename() {
        XCTAssertEqual(MigrationFile.slug("Add gateway index!"), "add_gateway_index")
        XCTAssertEqual(MigrationFile.slug("  --  "), nil)
        XCTAssertEqual(MigrationFile.filename(version: 12, slug: "x"), "0012_x.sql")
        // A fresh template has no SQL yet: it cannot be applied by mistake.
        XCTAssertThrowsError(try MigrationFile(filename: "0003_x.sql", contents: MigrationFile.template(slug: "x"))) {
            XCTAssertEqual($0 as? MigrationError, .emptyUp("0003_x.sql"))
        }
    }
}

final class MigrationPlannerTests: XCTestCase {
    private func file(_ v: Int, _ sql: String = "SELECT 1;") throws -> MigrationFile {
        try MigrationFile(filename: MigrationFile.filename(version: v, slug: "m\(v)"),
                          contents: "-- migrate:up\n\(sql)\n-- migrate:down\nSELECT \(v);\n")
    }
    private func applied(_ f: MigrationFile) -> AppliedMigration { .init(version: f.version, name: f.name, checksum: f.checksum) }

    func testDuplicateVersionsAreRefused() throws {
        let a = try MigrationFile(filename: "0001_a.sql", contents: "-- migrate:up\nSELECT 1;\n-- migrate:down\n")
        let b = try MigrationFile(filename: "0001_b.sql", contents: "-- migrate:up\nSELECT 2;\n-- migrate:down\n")
        XCTAssertThrowsError(try MigrationPlanner(files: [a, b], applied: [])) {
            XCTAssertEqual($0 as? MigrationError, .duplicateVersion(1, "0001_a.sql", "0001_b.sql"))
        }
    }

    func testPlanUpAndDown() throws {
        let f = try (1...4).map { try file($0) }
        let p = try MigrationPlanner(files: f.reversed(), applied: [applied(f[0]), applied(f[1])])
        XCTAssertEqual(try p.planUp().map(\.version), [3, 4])
        XCTAssertEqual(try p.planUp(to: 3).map(\.version), [3])
        XCTAssertEqual(try p.planDown(steps: 1).map(\.version), [2])
        XCTAssertEqual(try p.planDown(to: 0).map(\.version), [2, 1])
        XCTAssertEqual(try p.planDown(to: 1).map(\.version), [2])
        XCTAssertThrowsError(try p.planUp(to: 9)) { XCTAssertEqual($0 as? MigrationError, .unknownTarget(9)) }
        XCTAssertEqual(p.status().map(\.state), [.applied, .applied, .pending, .pending])
        XCTAssertEqual(p.currentVersion, 2)
    }

    func testDriftMissingAndOutOfOrderAreProblems() throws {
        let f1 = try file(1), f2 = try file(2), f3 = try file(3)
        let edited = try file(1, "SELECT 'edited';")
        let drift = try MigrationPlanner(files: [edited, f2], applied: [applied(f1)])
        XCTAssertEqual(drift.problems(), [.drift("0001_m1.sql")])
        XCTAssertThrowsError(try drift.planUp()) { XCTAssertEqual($0 as? MigrationError, .drift("0001_m1.sql")) }

        let missing = try MigrationPlanner(files: [f2], applied: [applied(f1), applied(f2)])
        XCTAssertEqual(missing.problems(), [.missingFile(version: 1, name: "m1")])

        let gap = try MigrationPlanner(files: [f1, f2, f3], applied: [applied(f1), applied(f3)])
        XCTAssertEqual(gap.problems(), [.outOfOrder(pending: "0002_m2.sql", applied: "0003_m3.sql")])
        XCTAssertThrowsError(try gap.planUp())
    }
}

final class SQLSplitterTests: XCTestCase {
    func testSplitsOnlyAtTopLevelSemicolons() {
        let script = """
            CREATE TABLE "odd;name" (v text DEFAULT 'a;b' CHECK (v <> 'it''s;'));
            -- a comment; with a semicolon
            /* block; /* nested; */ still comment; */
            CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END $body$ LANGUAGE plpgsql;
            DO $$ BEGIN PERFORM 1; END $$;
            SELECT E'\\';', 'x'
            """
        let parts = SQLSplitter.split(script)
        XCTAssertEqual(parts.count, 4, "\(parts)")
        XCTAssertEqual(parts[0].text, #"CREATE TABLE "odd;name" (v text DEFAULT 'a;b' CHECK (v <> 'it''s;'))"#)
        XCTAssertTrue(parts[1].text.hasPrefix("CREATE FUNCTION f()") && parts[1].text.hasSuffix("LANGUAGE plpgsql"))
        XCTAssertEqual(parts[1].line, 4)
        XCTAssertEqual(parts[2].text, "DO $$ BEGIN PERFORM 1; END $$")
        XCTAssertEqual(parts[3].text, #"SELECT E'\';', 'x'"#)
        XCTAssertEqual(parts[3].line, 6)
    }

    func testCommentsOnlyGiveNoStatements() {
        XCTAssertEqual(SQLSplitter.split("-- nothing\n/* here */\n ;; \n"), [])
    }

    func testDollarInIdentifiersIsNotAQuote() {
        XCTAssertEqual(SQLSplitter.split("SELECT a$1; SELECT 2").map(\.text), ["SELECT a$1", "SELECT 2"])
    }
}

final class SHA256Tests: XCTestCase {
    func testKnownVectors() {
        XCTAssertEqual(SHA256.hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(String(repeating: "a", count: 1000)),
                       "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}
