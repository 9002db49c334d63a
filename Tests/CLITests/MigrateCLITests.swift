import FSConfAdminCore
import FSConfCore
import FSConfAdminStore
import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// `fsconf migrate …` end to end: the built binary against a real PostgreSQL.
final class MigrateCLITests: XCTestCase {
    func fsconf(_ db: TestDatabase, _ args: [String], stdin: String? = nil) throws -> ProcessOutput {
        try runProcess(TestEnvironment.fsconfBinary, args, environment: db.environment, stdin: stdin)
    }

    /// A schema dump of the fsconf schema (tables, constraints, indexes, grants).
    func schemaDump(_ db: TestDatabase) throws -> String {
        let out = try runProcess(tool("pg_dump"), ["--schema-only", "--schema=fsconf", "--no-owner", db.name],
                          environment: db.environment)
        XCTAssertEqual(out.status, 0, out.description)
        // The bookkeeping table's rows are data, not schema; drop comment lines with dates.
        // pg_dump's \restrict lines carry a random key per run.
        return out.stdout.split(separator: "\n")
            .filter { !$0.hasPrefix("--") && !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
            .joined(separator: "\n")
    }

    func testUpDownUpLeavesAnIdenticalSchema() throws {
        let db = try TestDatabase()
        let up1 = try fsconf(db, ["migrate", "up"])
        XCTAssertEqual(up1.status, 0, up1.description)
        XCTAssertTrue(up1.stdout.contains("applied 0001_initial_schema.sql"), up1.stdout)
        let first = try schemaDump(db)
        XCTAssertTrue(first.contains("CREATE TABLE fsconf.users"), "dump lacks the schema")
        XCTAssertTrue(first.contains("GRANT SELECT ON TABLE fsconf.users TO fsconf_reader"), "dump lacks the grants")

        let down = try fsconf(db, ["migrate", "down", "--to", "0"])
        XCTAssertEqual(down.status, 0, down.description)
        XCTAssertEqual(try db.column("""
            SELECT count(*) FROM pg_tables WHERE schemaname LIKE 'fsconf%' AND tablename NOT IN ('schema_migrations', 'migration_lock')
            """), ["0"])

        let up2 = try fsconf(db, ["migrate", "up"])
        XCTAssertEqual(up2.status, 0, up2.description)
        XCTAssertEqual(try schemaDump(db), first)
    }

    func testStatusShowsAppliedAndPendingAndExitCode() throws {
        let db = try TestDatabase()
        let dir = try TemporaryDirectory()
        try dir.write("0001_one.sql", "-- migrate:up\nCREATE TABLE fsconf.one (id int);\n-- migrate:down\nDROP TABLE fsconf.one;\n")
        try dir.write("0002_two.sql", "-- migrate:up\nCREATE TABLE fsconf.two (id int);\n-- migrate:down\nDROP TABLE fsconf.two;\n")
        let args = ["--migrations", dir.url.path]
        XCTAssertEqual(try fsconf(db, ["migrate", "up", "--to", "1"] + args).status, 0)
        let status = try fsconf(db, ["migrate", "status", "--exit-code"] + args)
        XCTAssertEqual(status.status, 1, "pending migrations must fail --exit-code")
        let lines = status.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("[X] 0001_one.sql"), status.stdout)
        XCTAssertEqual(lines[1].trimmingCharacters(in: .whitespaces), "[ ] 0002_two.sql")
        XCTAssertEqual(lines.last, "1 applied, 1 pending")
        XCTAssertEqual(try fsconf(db, ["migrate", "status"] + args).status, 0, "without --exit-code pending is not an error")

        XCTAssertEqual(try fsconf(db, ["migrate", "up"] + args).status, 0)
        let done = try fsconf(db, ["migrate", "status", "--exit-code"] + args)
        XCTAssertEqual(done.status, 0, done.description)
        XCTAssertTrue(done.stdout.hasSuffix("2 applied, 0 pending\n"), done.stdout)

        let steps = try fsconf(db, ["migrate", "down", "--steps", "1"] + args)
        XCTAssertEqual(steps.status, 0, steps.description)
        XCTAssertTrue(steps.stdout.contains("reverted 0002_two.sql"))
        XCTAssertEqual(try db.column("SELECT to_regclass('fsconf.two')::text"), [nil])
        XCTAssertEqual(try db.column("SELECT version::text FROM fsconf.schema_migrations"), ["1"])
    }

    func testDryRunAndSqlChangeNothing() throws {
        let db = try TestDatabase()
        let dry = try fsconf(db, ["migrate", "up", "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.description)
        let bundled = try FileManager.default.contentsOfDirectory(atPath: TestEnvironment.repoRoot.appendingPathComponent("migrations").path)
            .filter { $0.hasSuffix(".sql") }.sorted()
        XCTAssertEqual(dry.stdout, bundled.map { "would apply \($0)\n" }.joined())
        let sql = try fsconf(db, ["migrate", "up", "--sql"])
        XCTAssertEqual(sql.status, 0)
        XCTAssertTrue(sql.stdout.contains("BEGIN;\n") && sql.stdout.contains("CREATE TABLE fsconf.users") && sql.stdout.hasSuffix("COMMIT;\n\n"))
        XCTAssertEqual(try db.column("SELECT count(*) FROM pg_namespace WHERE nspname = 'fsconf'"), ["0"],
                       "--dry-run / --sql must not even create the bookkeeping table")
    }

    func testBrokenMigrationAppliesNothingAndNamesTheStatement() throws {
        let db = try TestDatabase()
        let dir = try TemporaryDirectory()
        try dir.write("0001_good.sql", "-- migrate:up\nCREATE TABLE fsconf.good (id int);\n-- migrate:down\nDROP TABLE fsconf.good;\n")
        try dir.write("0002_broken.sql", """
            -- migrate:up
            CREATE TABLE fsconf.half (id int);
            INSERT INTO fsconf.half VALUES (1);

            ALTER TABLE fsconf.no_such_table ADD COLUMN x int;
            -- migrate:down
            DROP TABLE fsconf.half;

            """)
        let args = ["--migrations", dir.url.path]
        let out = try fsconf(db, ["migrate", "up"] + args)
        XCTAssertEqual(out.status, 1, out.description)
        let errorLines = out.stderr.split(separator: "\n")
        XCTAssertEqual(errorLines.count, 1, "one clear line: \(out.stderr)")
        XCTAssertTrue(out.stderr.contains("0002_broken.sql:5: statement 3 of the up section failed"), out.stderr)
        XCTAssertTrue(out.stderr.contains("fsconf.no_such_table"), out.stderr)
        XCTAssertTrue(out.stdout.contains("applied 0001_good.sql"), "the good file before it still applies")
        XCTAssertEqual(try db.column("SELECT to_regclass('fsconf.half')::text"), [nil], "nothing of 0002 may remain")
        let status = try fsconf(db, ["migrate", "status"] + args)
        XCTAssertTrue(status.stdout.contains("[ ] 0002_broken.sql"), status.stdout)
        XCTAssertTrue(status.stdout.contains("1 applied, 1 pending"), status.stdout)
    }

    func testDriftIsDetectedByVerifyAndRefusedByUp() throws {
        let db = try TestDatabase()
        let dir = try TemporaryDirectory()
        try dir.write("0001_one.sql", "-- migrate:up\nCREATE TABLE fsconf.one (id int);\n-- migrate:down\nDROP TABLE fsconf.one;\n")
        let args = ["--migrations", dir.url.path]
        XCTAssertEqual(try fsconf(db, ["migrate", "up"] + args).status, 0)
        let ok = try fsconf(db, ["migrate", "verify"] + args)
        XCTAssertEqual(ok.status, 0, ok.description)

        try dir.write("0001_one.sql", "-- migrate:up\nCREATE TABLE fsconf.one (id bigint);\n-- migrate:down\nDROP TABLE fsconf.one;\n")
        try dir.write("0002_two.sql", "-- migrate:up\nCREATE TABLE fsconf.two (id int);\n-- migrate:down\nDROP TABLE fsconf.two;\n")
        let verify = try fsconf(db, ["migrate", "verify"] + args)
        XCTAssertEqual(verify.status, 1)
        XCTAssertTrue(verify.stdout.contains("0001_one.sql was changed after it was applied"), verify.stdout)
        let up = try fsconf(db, ["migrate", "up"] + args)
        XCTAssertEqual(up.status, 1, up.description)
        XCTAssertTrue(up.stderr.contains("0001_one.sql was changed after it was applied"), up.stderr)
        XCTAssertEqual(try db.column("SELECT to_regclass('fsconf.two')::text"), [nil], "a drifted tree applies nothing")

        try FileManager.default.removeItem(atPath: dir.path("0001_one.sql"))
        let missing = try fsconf(db, ["migrate", "verify"] + args)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stdout.contains("0001_one.sql is applied but its file is missing"), missing.stdout)
    }

    func testTwoConcurrentUpsNeverInterleave() throws {
        let db = try TestDatabase()
        // The first migration waits on a table this test holds locked: it is
        // still running (holding the migration lock) for as long as the test says.
        let gate = try db.connect()
        try gate.execute("CREATE TABLE public.gate (x int)")
        try gate.execute("BEGIN; LOCK TABLE public.gate IN ACCESS EXCLUSIVE MODE")
        let dir = try TemporaryDirectory()
        try dir.write("0001_slow.sql", """
            -- migrate:up
            CREATE TABLE fsconf.slow (id int);
            SELECT count(*) FROM public.gate;
            INSERT INTO fsconf.slow VALUES (1);
            -- migrate:down
            DROP TABLE fsconf.slow;
            """)
        let args = ["migrate", "up", "--migrations", dir.url.path]
        let first = try ChildProcess(TestEnvironment.fsconfBinary, args, environment: db.environment)
        // Start the second only once the first is inside its migration (waiting on the gate).
        let end = Date().addingTimeInterval(60)
        while Date() < end, try db.column("""
            SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
            """) != ["1"] { usleep(10_000) }
        let second = try ChildProcess(TestEnvironment.fsconfBinary, args, environment: db.environment)
        XCTAssertTrue(second.waitForOutput { _, e in e.contains("waiting for another fsconf migration to finish") },
                      "the second waits for the first: \(second.output)")
        try gate.execute("COMMIT")
        let a = first.wait(), b = second.wait()
        XCTAssertEqual(a.status, 0, a.description)
        XCTAssertEqual(b.status, 0, b.description)
        XCTAssertTrue(a.stdout.contains("applied 0001_slow.sql"), a.description)
        XCTAssertTrue(b.stderr.contains("waiting for another fsconf migration to finish"), b.description)
        XCTAssertTrue(b.stdout.contains("nothing to do: schema is at version 1"), b.description)
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.slow"), ["1"])
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.schema_migrations"), ["1"])
    }

    func testNewCreatesTheNextNumberedFile() throws {
        let dir = try TemporaryDirectory()
        try dir.write("0001_one.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\n")
        let out = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "new", "Add gateway index", "--migrations", dir.url.path])
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(out.stdout, dir.path("0002_add_gateway_index.sql") + "\n")
        let text = try String(contentsOfFile: dir.path("0002_add_gateway_index.sql"), encoding: .utf8)
        XCTAssertTrue(text.contains("-- migrate:up") && text.contains("-- migrate:down"))
        let bad = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "new", "!!!", "--migrations", dir.url.path])
        XCTAssertEqual(bad.status, 2, bad.description)
    }

    func testBadMigrationFileIsAOneLineError() throws {
        let db = try TestDatabase()
        let dir = try TemporaryDirectory()
        try dir.write("0001_one.sql", "CREATE TABLE x();\n")
        let out = try fsconf(db, ["migrate", "up", "--migrations", dir.url.path])
        XCTAssertEqual(out.status, 2, out.description)
        XCTAssertEqual(out.stderr, "fsconf: 0001_one.sql: missing '-- migrate:up' line\n")
    }

    func testUnreachableDatabaseIsExit3AndNeverPrintsThePassword() throws {
        let out = try runProcess(TestEnvironment.fsconfBinary,
                          ["migrate", "status", "--db", "host=127.0.0.1 port=1 user=x password=s3cr3t-pw connect_timeout=2"])
        XCTAssertEqual(out.status, 3, out.description)
        XCTAssertTrue(out.stderr.hasPrefix("fsconf: cannot connect to PostgreSQL"), out.stderr)
        XCTAssertFalse(out.stderr.contains("s3cr3t-pw") || out.stdout.contains("s3cr3t-pw"))
        XCTAssertEqual(out.stderr.split(separator: "\n").count, 1)
    }

    func testReaderRoleCanReadButNeverWrite() throws {
        let db = try TestDatabase()
        XCTAssertEqual(try fsconf(db, ["migrate", "up"]).status, 0)
        let role = "node_\(db.name)"
        let admin = try TestDatabase.admin()
        try admin.execute("DROP ROLE IF EXISTS \(role); CREATE ROLE \(role) LOGIN")
        defer { _ = try? admin.execute("DROP OWNED BY \(role); DROP ROLE IF EXISTS \(role)") }
        let grant = try fsconf(db, ["grant", "reader", role])
        XCTAssertEqual(grant.status, 0, grant.description)
        let missing = try fsconf(db, ["grant", "reader", "no_such_role_x"])
        XCTAssertEqual(missing.status, 4, missing.description)

        let node = try PGConnection(conninfo: "dbname=\(db.name) user=\(role)")
        XCTAssertEqual(try node.query("SELECT count(*) FROM fsconf.users").string(0, 0), "0")
        XCTAssertEqual(try node.query("SELECT max(version) FROM fsconf.schema_migrations").string(0, 0), String(SchemaVersion.current))
        XCTAssertThrowsError(try node.query("INSERT INTO fsconf.domains (name) VALUES ('x')")) { error in
            XCTAssertEqual((error as? PostgresError)?.sqlState, "42501", "\(error)")
        }
    }

    func testBundledMigrationsMatchTheSchemaVersionTheCodeExpects() throws {
        let dir = TestEnvironment.repoRoot.appendingPathComponent("migrations")
        let versions = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .compactMap { MigrationFile.parseFilename($0)?.0 }
        XCTAssertEqual(versions.max(), SchemaVersion.current)
    }
}
