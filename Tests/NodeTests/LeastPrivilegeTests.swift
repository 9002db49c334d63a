import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// The first hour on a managed PostgreSQL: the fsconf role owns its database and has
/// neither SUPERUSER nor CREATEROLE. Every migration, the import, admin writes and
/// node lookups work as that owner; the cluster-wide group roles come from a DBA
/// running the SQL `fsconf grant roles` prints; the node role can read, not write.
final class LeastPrivilegeTests: XCTestCase {
    /// A superuser connection to `database` (default: the maintenance database).
    func superuser(_ database: String? = nil) throws -> PGConnection {
        guard let database else { return try TestDatabase.admin() }
        return try PGConnection(conninfo: "dbname=\(database)")
    }

    /// The group roles are cluster-wide: drop them (and what other databases of this
    /// test cluster granted them) so this test sees a cluster where only a DBA can
    /// create them, whatever ran before.
    func dropGroupRoles() throws {
        let admin = try superuser()
        let exists = try admin.query("SELECT count(*) FROM pg_roles WHERE rolname IN ('fsconf_reader', 'fsconf_writer')")
        guard exists.string(0, 0) != "0" else { return }
        let dbs = try admin.query("SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate")
        for i in 0..<dbs.rowCount {
            let conn = try superuser(dbs.string(i, 0)!)
            for role in ["fsconf_reader", "fsconf_writer"]
            where try conn.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]).rowCount == 1 {
                try conn.execute("DROP OWNED BY \(role)")
            }
        }
        try admin.execute("DROP ROLE IF EXISTS fsconf_reader, fsconf_writer")
    }

    func testOwnerWithoutCreateRoleMigratesImportsWritesAndNodesRead() throws {
        try TestEnvironment.requirePostgres()
        try dropGroupRoles()
        let suffix = "\(getpid())"
        let owner = "fh_owner_\(suffix)", node = "fh_node_\(suffix)", database = "fsconf_lp_\(suffix)"
        let admin = try superuser()
        try admin.execute("DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
        try admin.execute("DROP ROLE IF EXISTS \(owner)")
        try admin.execute("DROP ROLE IF EXISTS \(node)")
        // What a DBA gives an application: a login that owns one database, nothing more.
        try admin.execute("CREATE ROLE \(owner) LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB")
        try admin.execute("CREATE DATABASE \(database) OWNER \(owner)")
        defer {
            _ = try? admin.execute("DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
            _ = try? admin.execute("DROP ROLE IF EXISTS \(node)")
            _ = try? admin.execute("DROP ROLE IF EXISTS \(owner)")
        }
        var env = ProcessInfo.processInfo.environment
        env["PGUSER"] = owner
        env["PGDATABASE"] = database
        func fsconf(_ args: [String]) throws -> ProcessOutput { try runProcess(TestEnvironment.fsconfBinary, args, environment: env) }

        let up = try fsconf(["migrate", "up"])
        XCTAssertEqual(up.status, 0, up.description)
        XCTAssertTrue(up.stderr.contains("fsconf grant roles"), "migrate says how to get the group roles: \(up.stderr)")
        XCTAssertEqual(try fsconf(["migrate", "verify"]).status, 0)
        let down = try fsconf(["migrate", "down", "--to", "0"])
        XCTAssertEqual(down.status, 0, down.description)
        XCTAssertEqual(try fsconf(["migrate", "up"]).status, 0)

        // The owner may not create roles: it gets the exact SQL for a DBA.
        let roles = try fsconf(["grant", "roles"])
        XCTAssertEqual(roles.status, 1, roles.description)
        XCTAssertTrue(roles.stdout.contains("CREATE ROLE fsconf_reader NOLOGIN;"), roles.stdout)
        XCTAssertTrue(roles.stderr.contains("no CREATEROLE"), roles.stderr)
        XCTAssertEqual(try admin.query("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'fsconf\\_%'").string(0, 0), "0",
                       "nothing was created")
        // The DBA runs it in the owner's database, and makes the node's login role.
        try superuser(database).execute(roles.stdout)
        try admin.execute("CREATE ROLE \(node) LOGIN NOSUPERUSER NOCREATEROLE")
        // The owner (ADMIN OPTION from the DBA's script) hands out the reader role.
        let reader = try fsconf(["grant", "reader", node])
        XCTAssertEqual(reader.status, 0, reader.description)

        // Import, admin writes, history: all as the owner.
        let imported = try fsconf(["import", "--quiet", ImportRoundTripTests.vanilla.path])
        XCTAssertEqual(imported.status, 0, imported.description)
        XCTAssertEqual(try fsconf(["domain", "add", "lp.example.com"]).status, 0)
        let add = try fsconf(["user", "add", "lp.example.com", "2000"])
        XCTAssertEqual(add.status, 0, add.description)
        let set = try fsconf(["set", "directory/lp.example.com/user/2000/param/vm-password", "4321"])
        XCTAssertEqual(set.status, 0, set.description)
        XCTAssertEqual(try fsconf(["history", "directory/lp.example.com"]).status, 0)

        // The node, logged in as the DBA-made role: its lookups are answered...
        let shimDir = try TemporaryDirectory()
        let shim = try fsconf(["shim", "--out", shimDir.url.path, "--library", TestEnvironment.nodeLibrary.path,
                               "--conninfo", "dbname=\(database) user=\(node)", "--deadline-ms", "5000"])
        XCTAssertEqual(shim.status, 0, shim.description)
        let lookup = try runProcess(tool("lua5.3"), [NodeSetup.harness.path, shimDir.url.appendingPathComponent("fsconf.lua").path,
                                                     "--section", "directory", "--tag", "domain", "--key-name", "name",
                                                     "--key-value", "lp.example.com", "--param", "action=sip_auth",
                                                     "--param", "user=2000", "--param", "domain=lp.example.com"], environment: env)
        XCTAssertEqual(lookup.status, 0, lookup.description)
        XCTAssertTrue(lookup.stdout.contains("<user id=\"2000\"") && lookup.stdout.contains("value=\"4321\""), lookup.stdout)
        let dialplan = try runProcess(tool("lua5.3"), [NodeSetup.harness.path, shimDir.url.appendingPathComponent("fsconf.lua").path,
                                                       "--section", "dialplan", "--param", "Hunt-Context=public"], environment: env)
        XCTAssertTrue(dialplan.stdout.contains("<context name=\"public\""), dialplan.description)
        // ...and it can read every table but write none.
        let nodeConn = try PGConnection(conninfo: "dbname=\(database) user=\(node)")
        XCTAssertNotEqual(try nodeConn.query("SELECT count(*) FROM fsconf.users").string(0, 0), "0")
        XCTAssertThrowsError(try nodeConn.execute("INSERT INTO fsconf.global_variables (name, value) VALUES ('x', 'y')")) { error in
            XCTAssertEqual((error as? PostgresError)?.sqlState, "42501", "\(error)")
        }
        XCTAssertThrowsError(try nodeConn.execute("DELETE FROM fsconf.users"))
        XCTAssertEqual(try fsconf(["migrate", "verify"]).status, 0)
    }

    /// Databases migrated before 0001/0003 lost their role statements keep verifying:
    /// their recorded checksums are listed as superseded texts of the same files.
    func testDatabasesMigratedWithTheEarlierFilesStillVerify() throws {
        let db = try TestDatabase(prefix: "lpold")
        let earlier = TestEnvironment.repoRoot.appendingPathComponent("Tests/Fixtures/migrations-before-0004").path
        // The earlier 0001 created the group roles itself: as the superuser it can.
        let old = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up", "--migrations", earlier], environment: db.environment)
        XCTAssertEqual(old.status, 0, old.description)
        let verify = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "verify"], environment: db.environment)
        XCTAssertEqual(verify.status, 0, verify.description)
        XCTAssertTrue(verify.stdout.contains("ok: 3 applied"), verify.stdout)
        let status = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "status"], environment: db.environment)
        XCTAssertFalse(status.stdout.contains("[!]"), status.stdout)
        let up = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up"], environment: db.environment)
        XCTAssertEqual(up.status, 0, up.description)
        let down = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "down", "--to", "0"], environment: db.environment)
        XCTAssertEqual(down.status, 0, "the earlier files' rows revert with today's down sections: \(down.description)")
        // A file that really changed is still drift.
        try db.connect().execute("""
            INSERT INTO fsconf.schema_migrations (version, name, checksum) VALUES (1, 'initial_schema', repeat('0', 64))
            """)
        let drift = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "verify"], environment: db.environment)
        XCTAssertEqual(drift.status, 1, drift.description)
    }
}
