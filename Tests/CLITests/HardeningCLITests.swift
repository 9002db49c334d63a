import FSConfAdminCore
import FSConfAdminStore
import FSConfCore
import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// Hardening (issue 17) as a hostile or careless user would try it, against a real database:
/// concurrent creators (many processes), what a node's reader login can read and
/// do, input that used to crash or hang (each run under a generous kill timeout:
/// the outcome is asserted, not the speed), and errors in the user's terms.
extension AdminCLITests {
    func fsconf(_ db: TestDatabase, _ args: [String], timeout: TimeInterval) throws -> ProcessOutput {
        try runProcess(TestEnvironment.fsconfBinary, args, environment: db.environment, timeout: timeout)
    }

    /// Starts `count` copies of a command at once and returns their outcomes.
    func concurrently(_ db: TestDatabase, _ count: Int, _ args: (Int) -> [String]) -> [ProcessOutput] {
        let children = (0..<count).compactMap { try? ChildProcess(TestEnvironment.fsconfBinary, args($0), environment: db.environment) }
        XCTAssertEqual(children.count, count)
        return children.map { $0.wait(timeout: 120) }
    }

    func statuses(_ outs: [ProcessOutput]) -> [Int32: Int] {
        outs.reduce(into: [:]) { $0[$1.status, default: 0] += 1 }
    }

    // MARK: Integrity

    func testConcurrentCreatorsNeverDuplicate() throws {
        let db = try demo()
        let param = "configuration/sofia.conf/global_settings/param[name=racex]/@value"
        // Exactly one creator wins; the others exit 5 (--expect-absent).
        var outs = concurrently(db, 20) { ["set", param, "v\($0)", "--expect-absent"] }
        XCTAssertEqual(statuses(outs), [0: 1, 5: 19], outs.filter { $0.status != 0 && $0.status != 5 }.description)
        XCTAssertTrue(outs.filter { $0.status == 5 }.allSatisfy { $0.stderr.contains("already exists") }, outs.map(\.stderr).joined())
        XCTAssertEqual(try db.column("""
            SELECT count(*) FROM fsconf.attributes WHERE name = 'name' AND value = 'racex'
            """), ["1"], "one <param name=\"racex\">")
        // Without --expect: every writer succeeds, updating the one element.
        let plain = "configuration/sofia.conf/global_settings/param[name=racey]/@value"
        outs = concurrently(db, 20) { ["set", plain, "v\($0)"] }
        XCTAssertEqual(statuses(outs), [0: 20], outs.filter { $0.status != 0 }.description)
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.attributes WHERE name = 'name' AND value = 'racey'"), ["1"])
        // A new global, group member, XML attribute, user param, gateway variable:
        // an upsert never fails because another writer got there first.
        for path in ["globals/race_global", "directory/pbx.example.test/group/sales/member/1002", "languages/en/@race-attr",
                     "directory/pbx.example.test/user/1002/param/race-param",
                     "directory/pbx.example.test/user/alice/gateway/carrier-a/variable/race[direction=inbound]"] {
            let outs = concurrently(db, 12) { path.hasSuffix("member/1002") ? ["set", path, "1002"] : ["set", path, "v\($0)"] }
            XCTAssertEqual(statuses(outs), [0: 12], "\(path): " + outs.filter { $0.status != 0 }.description)
            XCTAssertFalse(outs.contains { $0.stderr.contains("duplicate key") }, path)
        }
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.global_variables WHERE name = 'race_global'"), ["1"])
        // Every typed "add": one winner, the others exit 5, never a raw constraint text.
        let adds: [(String, [String], String)] = [
            ("domain", ["domain", "add", "race.test"], "SELECT count(*) FROM fsconf.domains WHERE name = 'race.test'"),
            ("user", ["user", "add", "pbx.example.test", "race-user", "--group", "race-group"],
             "SELECT count(*) FROM fsconf.users WHERE user_id = 'race-user'"),
            ("gateway", ["gateway", "add", "pbx.example.test", "race-gw", "--user", "1000", "--param", "proxy=x"],
             "SELECT count(*) FROM fsconf.gateways WHERE name = 'race-gw'"),
            ("profile gateway", ["gateway", "add", "race-pgw", "--profile", "internal", "--param", "proxy=x"],
             "SELECT count(*) FROM fsconf.elements e JOIN fsconf.attributes a ON a.element_id = e.id WHERE e.tag = 'gateway' AND a.value = 'race-pgw'"),
            ("extension", ["extension", "add", "race-context", "race-ext", "--condition", "destination_number=^1$"],
             "SELECT count(*) FROM fsconf.dialplan_extensions WHERE name = 'race-ext'"),
        ]
        for (what, args, count) in adds {
            let outs = concurrently(db, 10) { _ in args }
            XCTAssertEqual(statuses(outs), [0: 1, 5: 9], "\(what): " + outs.filter { $0.status != 0 }.map(\.description).joined())
            XCTAssertFalse(outs.contains { $0.stderr.contains("violates") || $0.stderr.contains("duplicate key") }, what)
            XCTAssertEqual(try db.column(count), ["1"], what)
        }
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.groups WHERE name = 'race-group'"), ["1"])
        // Different names into one list at once: all appended, positions stay unique.
        outs = concurrently(db, 10) { ["extension", "add", "default", "par-\($0)", "--condition", "destination_number=^\($0)$"] }
        XCTAssertEqual(statuses(outs), [0: 10], outs.filter { $0.status != 0 }.description)
    }

    func testReferencesOfAnyDepthRenderAndCyclesAreRefused() throws {
        let db = try demo()
        // A password written through a chain deeper than the old bound of 8.
        try db.connect().execute("""
            INSERT INTO fsconf.global_variables (name, value)
            SELECT 'chain' || g, '$${chain' || (g + 1) || '}' FROM generate_series(0, 39) g
            UNION ALL SELECT 'chain40', 'S3cret-deep';
            """)
        try ok(db, ["set", "directory/pbx.example.test/user/1000/param/password", "$${chain0}"])
        let render = try ok(db, ["render", "directory", "pbx.example.test", "1000"])
        XCTAssertTrue(render.contains(#"<param name="password" value="S3cret-deep"/>"#), render)
        // A cycle is refused at write, nothing written.
        try ok(db, ["set", "globals/loop_a", "$${loop_b}"])
        let refused = try fsconf(db, ["set", "globals/loop_b", "x$${loop_a}"])
        XCTAssertEqual(refused.status, 2, refused.description)
        XCTAssertTrue(refused.stderr.contains("loop_b refers back to itself") && refused.stderr.contains("loop_b → loop_a → loop_b"), refused.stderr)
        XCTAssertEqual(try fsconf(db, ["get", "globals/loop_b"]).status, 4)
        XCTAssertEqual(try fsconf(db, ["set", "globals/self", "$${self}"]).status, 2)
    }

    func testValuesAreCheckedAsTheirConsumerReadsThem() throws {
        let db = try demo()
        for (path, value, expected) in [
            ("directory/pbx.example.test/user/1000/@cacheable", "99999999999999999999", "above 2147483 ms"),
            ("directory/pbx.example.test/@cacheable", "false", "a domain's cacheable takes true or milliseconds"),
            ("directory/pbx.example.test/user/1000/@extra-xml", "<vcard>", "<vcard> is not closed"),
            ("directory/pbx.example.test/user/1000/@extra-xml", #"</user><user id="evil">"#, "</user> closes an element it did not open"),
            ("directory/pbx.example.test/user/1000/@id", "a\tb", #"user id "a\tb": character 2 is the control character U+0009"#),
        ] {
            let out = try fsconf(db, ["set", path, value])
            XCTAssertEqual(out.status, 2, "\(path) \(value): \(out)")
            XCTAssertTrue(out.stderr.contains(expected), out.stderr)
            XCTAssertEqual(out.stderr.split(separator: "\n").count, 1, "one line: \(out.stderr)")
        }
        for args in [["user", "add", "pbx.example.test", "a\tb"], ["domain", "add", "x\ny"], ["domain", "add", "ok.test", "--cacheable", "86400000"],
                     ["gateway", "add", "pbx.example.test", "g\u{1}w"], ["extension", "add", "default", "e", "--condition", "f\u{1}=x"]] {
            let out = try fsconf(db, args)
            XCTAssertEqual(out.status, 2, "\(args): \(out)")
            XCTAssertEqual(out.stderr.split(separator: "\n").count, 1, out.stderr)
        }
        // Well-formed elements are stored re-serialised; the user's answer stays well-formed.
        try ok(db, ["set", "directory/pbx.example.test/user/1000/@extra-xml", "<skinny a=\"1<2\">\n<x/></skinny>"])
        XCTAssertEqual(try ok(db, ["get", "directory/pbx.example.test/user/1000/@extra-xml"]), #"<skinny a="1&lt;2"><x/></skinny>"# + "\n")
        let answer = try ok(db, ["render", "directory", "pbx.example.test", "1000"])
        XCTAssertNoThrow(try XMLTreeParser.parse(answer), answer)
        XCTAssertEqual(answer.components(separatedBy: "<user ").count, 2, "one user")
    }

    func testImportRefusesWhatSetRefuses() throws {
        let db = try demo()
        let dir = try TemporaryDirectory()
        try dir.write("freeswitch.xml", """
            <document type="freeswitch/xml">
              <section name="directory">
                <domain name="imp.test">
                  <users>
                    <user id="a&#1;b"/>
                    <user id="tab&#9;id"/>
                    <user id="fine"><params><param name="password" value="x&#1;y"/><param name="ok" value="1"/></params></user>
                  </users>
                </domain>
              </section>
            </document>
            """)
        let out = try fsconf(db, ["import", dir.path("freeswitch.xml")])
        XCTAssertEqual(out.status, 2, out.description)
        for expected in [#"user id "a\u{1}b""#, #"user id "tab\tid""#, "directory/imp.test/user/fine/param/password: invalid value"] {
            XCTAssertTrue(out.stderr.contains(expected), "\(expected) in \(out.stderr)")
        }
        XCTAssertTrue(out.stderr.contains("freeswitch.xml:2: "), "the section's line: \(out.stderr)")
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.domains WHERE name = 'imp.test'"), ["0"], "nothing imported")
        try ok(db, ["import", dir.path("freeswitch.xml"), "--skip-unrepresentable"])
        XCTAssertEqual(try db.column("SELECT string_agg(user_id, ',') FROM fsconf.users u JOIN fsconf.domains d ON d.id = u.domain_id WHERE d.name = 'imp.test'"),
                       ["fine"])
        XCTAssertEqual(try db.column("SELECT string_agg(s.name, ',') FROM fsconf.user_settings s JOIN fsconf.users u ON u.id = s.user_id WHERE u.user_id = 'fine'"),
                       ["ok"])
    }

    func testIncludesOutsideTheTreeNeedAFlag() throws {
        let db = try demo()
        let tree = try TemporaryDirectory(), outside = try TemporaryDirectory()
        try outside.write("shadow", #"<X-PRE-PROCESS cmd="set" data="stolen=root:$6$secret-hash"/>"#)
        try tree.write("freeswitch.xml", """
            <document type="freeswitch/xml">
              <X-PRE-PROCESS cmd="include" data="\(outside.path("shadow"))"/>
              <section name="configuration"><configuration name="x.conf"><settings><param name="p" value="$${stolen}"/></settings></configuration></section>
            </document>
            """)
        let refused = try fsconf(db, ["import", tree.path("freeswitch.xml")])
        XCTAssertEqual(refused.status, 2, refused.description)
        XCTAssertTrue(refused.stderr.contains("is outside the tree's folder") && refused.stderr.contains("--allow-outside-includes"), refused.stderr)
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.global_variables WHERE name = 'stolen'"), ["0"])
        XCTAssertEqual(try fsconf(db, ["diff", tree.path("freeswitch.xml")]).status, 2)
        let followed = try fsconf(db, ["import", tree.path("freeswitch.xml"), "--allow-outside-includes"])
        XCTAssertEqual(followed.status, 0, followed.description)
        XCTAssertTrue(followed.stderr.contains("outside the tree's folder"), "still warned: \(followed.stderr)")
    }

    func testADomainStoredAsAReferenceAnswersOnlyItsExpansion() throws {
        let db = try demo()
        try db.connect().execute("""
            INSERT INTO fsconf.global_variables (name, value) VALUES ('ref_domain', 'ref.example.test');
            INSERT INTO fsconf.domains (name) VALUES ('$${ref_domain}');
            INSERT INTO fsconf.users (domain_id, user_id) SELECT id, '2000' FROM fsconf.domains WHERE name = '$${ref_domain}';
            """)
        XCTAssertTrue(try ok(db, ["render", "directory", "ref.example.test", "2000"]).contains(#"<domain name="ref.example.test">"#))
        let literal = try fsconf(db, ["render", "directory", "$${ref_domain}", "2000"])
        XCTAssertEqual(literal.status, 4, "the stored, unexpanded name is not a domain a node has: \(literal)")
    }

    // MARK: Secrets and trust boundaries

    func testANodesLoginCannotReadSecretsStallWritersOrReachTheSecretLog() throws {
        let db = try demo()
        let role = "node_\(db.name)"
        let admin = try TestDatabase.admin()
        try admin.execute("DROP ROLE IF EXISTS \(role); CREATE ROLE \(role) LOGIN")
        defer { _ = try? admin.execute("DROP OWNED BY \(role); DROP ROLE IF EXISTS \(role)") }
        try ok(db, ["grant", "roles"])
        try ok(db, ["grant", "reader", role])
        let node = try PGConnection(conninfo: "dbname=\(db.name) user=\(role)")

        // Secrets written through every path never reach what the reader reads.
        try ok(db, ["set", "directory/pbx.example.test/user/1000/param/password", "S3cret-one"])
        try ok(db, ["user", "set-password", "pbx.example.test", "1000"], stdin: "S3cret-two\n")
        try ok(db, ["set", "globals/db_password", "S3cret-three"])
        try ok(db, ["set", "configuration/sofia.conf/profiles/profile[name=internal]/settings/param[name=tls-passphrase]/@value", "S3cret-four"])
        try ok(db, ["unset", "configuration/sofia.conf/profiles/profile[name=internal]/settings/param[name=tls-passphrase]"])
        let hash = MD5.hex("1000:pbx.example.test:S3cret-two")
        for secret in ["S3cret-one", "S3cret-three", "S3cret-four", hash] {
            let seen = try node.query("""
                SELECT count(*) FROM fsconf.changes WHERE concat(old_row::text, new_row::text, old_value, new_value) LIKE '%' || $1 || '%'
                """, [secret])
            XCTAssertEqual(seen.string(0, 0), "0", "\(secret) readable by the node in fsconf.changes")
        }
        XCTAssertThrowsError(try node.query("SELECT count(*) FROM fsconf_private.change_secrets")) {
            XCTAssertEqual(($0 as? PostgresError)?.sqlState, "42501")
        }
        // Hidden values still tell a change from no change (the agent plans from these rows).
        let marks = try node.query("""
            SELECT old_value, new_value FROM fsconf.changes WHERE table_name = 'global_variables' AND new_row->>'name' = 'db_password'
            """)
        XCTAssertTrue(marks.string(0, 1)?.hasPrefix("(hidden ") ?? false, "\(String(describing: marks.string(0, 1)))")
        try ok(db, ["set", "globals/db_password", "S3cret-five"])
        try ok(db, ["set", "globals/db_password", "S3cret-three"])
        let later = try node.query("""
            SELECT new_value FROM fsconf.changes WHERE table_name = 'global_variables' AND new_row->>'name' = 'db_password' ORDER BY id
            """)
        XCTAssertEqual(later.rowCount, 3)
        XCTAssertNotEqual(later.string(0, 0), later.string(1, 0), "different values, different marks")
        XCTAssertEqual(later.string(0, 0), later.string(2, 0), "equal values, equal marks")
        // History hides them; undo still restores them.
        let history = try ok(db, ["history", "--json", "--limit", "10"])
        XCTAssertFalse(history.contains("S3cret") || history.contains(hash), history)
        let setPassword = try db.column("SELECT max(id) FROM fsconf.change_sets WHERE summary LIKE 'user set-password%'")[0]!
        try ok(db, ["undo", setPassword])
        XCTAssertEqual(try ok(db, ["get", "directory/pbx.example.test/user/1000/param/password"]), "S3cret-one\n")

        // The reader holds every lock it can take on the lock tables, and the
        // advisory locks the old code used: imports and migrations still run.
        try node.execute("BEGIN")
        try node.execute("LOCK TABLE fsconf.import_lock IN ACCESS SHARE MODE; LOCK TABLE fsconf.migration_lock IN ACCESS SHARE MODE")
        try node.query("SELECT pg_advisory_lock(hashtext('fsconf.import')), pg_advisory_lock(112645775519334)")
        for mode in ["EXCLUSIVE", "ROW EXCLUSIVE", "SHARE"] {
            XCTAssertThrowsError(try node.execute("SAVEPOINT s; LOCK TABLE fsconf.import_lock IN \(mode) MODE")) {
                XCTAssertEqual(($0 as? PostgresError)?.sqlState, "42501", "\(mode): \($0)")
            }
            try node.execute("ROLLBACK TO SAVEPOINT s")
        }
        try node.execute("SAVEPOINT t")
        XCTAssertThrowsError(try node.query("SELECT * FROM fsconf.import_lock FOR UPDATE")) {
            XCTAssertEqual(($0 as? PostgresError)?.sqlState, "42501", "\($0)")
        }
        try node.execute("ROLLBACK TO SAVEPOINT t")
        let tree = try TemporaryDirectory()
        try tree.write("freeswitch.xml", """
            <document type="freeswitch/xml"><section name="configuration">
              <configuration name="lock.conf"><settings><param name="a" value="1"/></settings></configuration>
            </section></document>
            """)
        let imported = try fsconf(db, ["import", tree.path("freeswitch.xml")], timeout: 60)
        XCTAssertEqual(imported.status, 0, "the reader's locks stalled the import: \(imported)")
        let migrated = try fsconf(db, ["migrate", "up"], timeout: 60)
        XCTAssertEqual(migrated.status, 0, "the reader's locks stalled the migration: \(migrated)")
        try node.execute("ROLLBACK")

        // A reader can NOTIFY (PostgreSQL has no privilege for it), but the payload
        // carries nothing a node trusts: see ReaderTrustTests for the node side.
        try node.execute("NOTIFY fsconf_changes, '{\"seq\":999999,\"id\":1,\"keys\":[]}'")
    }

    // MARK: Input that crashes or hangs

    func testDeepInputEndsInAOneLineErrorNotACrash() throws {
        let db = try demo()
        let dir = try TemporaryDirectory()
        let deep = String(repeating: "<e>", count: 40_000) + String(repeating: "</e>", count: 40_000)
        try dir.write("freeswitch.xml", """
            <document type="freeswitch/xml"><section name="configuration"><configuration name="deep.conf">
            \(deep)
            </configuration></section></document>
            """)
        let out = try fsconf(db, ["import", dir.path("freeswitch.xml")], timeout: 60)
        XCTAssertEqual(out.status, 2, out.description)
        XCTAssertEqual(out.stderr, "fsconf: freeswitch.xml:2: elements nested deeper than 256 levels\n")
    }

    func testHistoryOfAHugeDeepChangeSetShowsItsFirstChanges() throws {
        let db = try demo()
        // A document 10,000 elements deep, written in one change set by SQL.
        try db.connect().execute("""
            BEGIN;
            WITH d AS (INSERT INTO fsconf.documents (section, name) VALUES ('configuration', 'deep.conf') RETURNING id),
            ids AS (SELECT nextval(pg_get_serial_sequence('fsconf.elements', 'id')) AS id, g AS n FROM generate_series(1, 10000) g)
            INSERT INTO fsconf.elements (id, document_id, parent_id, position, tag) OVERRIDING SYSTEM VALUE
            SELECT i.id, d.id, lag(i.id) OVER (ORDER BY i.n), 1, CASE WHEN i.n = 1 THEN 'configuration' ELSE 'e' END FROM ids i, d;
            COMMIT;
            """)
        for args in [["history", "--limit", "1"], ["history", "configuration/deep.conf"], ["history", "--json", "--limit", "1"]] {
            let out = try fsconf(db, args, timeout: 60)
            XCTAssertEqual(out.status, 0, "\(args): \(out.status) \(out.stderr)")
            XCTAssertLessThan(out.stdout.split(separator: "\n").count, 60, "\(args): the first changes, then a count")
            XCTAssertTrue(out.stdout.contains("9951 more row change(s) (--full)") || out.stdout.contains(#""omitted_rows": 9951"#), "\(args)")
        }
        // Whatever reads whole trees stops at the depth the node renders.
        for args in [["list", "configuration/deep.conf"], ["render", "configuration", "deep.conf"], ["export", try TemporaryDirectory().url.path, "--force"]] {
            let out = try fsconf(db, args, timeout: 60)
            XCTAssertEqual(out.status, 0, "\(args): \(out.status) \(out.stderr.prefix(300))")
        }
    }

    // MARK: Clear errors

    func testErrorsSpeakTheUsersTerms() throws {
        let db = try demo()
        let cases: [([String], Int32, String)] = [
            (["set", "directory/pbx.example.test/user/1001/@number-alias", "7000"], 5, "that number-alias belongs to another user of the domain"),
            (["unset", "dialplan/default/extension[1]/condition[1]/@expression"], 2, "a condition with a field needs an expression"),
            (["set", "dialplan/default/extension[1]/condition[1]/@field", ""], 2, "field cannot be empty"),
            (["user", "add", "pbx.example.test", "1001"], 5, "user 1001 already exists in pbx.example.test"),
            (["user", "add", "pbx.example.test", "9000", "--alias", "7000"], 5, "number-alias 7000 belongs to user 1000"),
            (["import", "/dev/zero"], 2, "/dev/zero is not a regular file"),
        ]
        for (args, status, expected) in cases {
            let out = try fsconf(db, args)
            XCTAssertEqual(out.status, status, "\(args): \(out)")
            XCTAssertTrue(out.stderr.hasPrefix("fsconf: ") && out.stderr.contains(expected), "\(args): \(out.stderr)")
            XCTAssertEqual(out.stderr.split(separator: "\n").count, 1, "one line: \(out.stderr)")
            for raw in ["violates", "_idx", "_check", "SQLSTATE", "CLIFailure("] { XCTAssertFalse(out.stderr.contains(raw), "\(args): \(out.stderr)") }
        }
        let dir = try TemporaryDirectory()
        try dir.write("empty.xml", "")
        let empty = try fsconf(db, ["import", dir.path("empty.xml")])
        XCTAssertEqual(empty.stderr, "fsconf: empty.xml:1: root element missing\n")
        // An unmigrated database says what to do.
        let bare = try TestDatabase(prefix: "bare")
        let unmigrated = try fsconf(bare, ["get", "globals/x"])
        XCTAssertTrue(unmigrated.stderr.contains("run `fsconf migrate up`") && !unmigrated.stderr.contains("SQLSTATE"), unmigrated.stderr)
        // Values starting with "-" are values.
        try ok(db, ["set", "globals/offset", "-5"])
        XCTAssertEqual(try ok(db, ["get", "globals/offset"]), "-5\n")
        try ok(db, ["set", "globals/offset", "--expect", "-5", "-7"])
        try ok(db, ["set", "globals/offset", "--", "-8"])
        XCTAssertEqual(try ok(db, ["get", "globals/offset"]), "-8\n")
        let two = try fsconf(db, ["set", "globals/offset", "1", "2"])
        XCTAssertEqual(two.status, 2, two.description)
    }
}
