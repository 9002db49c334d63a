import FSConfAdminCore
import FSConfCore
import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// Field commands, history/undo, render, diff and the typed conveniences: the built
/// binary against a real PostgreSQL, exit codes and --json included.
final class AdminCLITests: XCTestCase {
    static let sofiaPort = "configuration/sofia.conf/profiles/profile[name=internal]/settings/param[name=sip-port]/@value"

    func fsconf(_ db: TestDatabase, _ args: [String], stdin: String? = nil) throws -> ProcessOutput {
        try runProcess(TestEnvironment.fsconfBinary, args, environment: db.environment, stdin: stdin, timeout: 120)
    }

    @discardableResult
    func ok(_ db: TestDatabase, _ args: [String], stdin: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let out = try fsconf(db, args, stdin: stdin)
        XCTAssertEqual(out.status, 0, "\(args): \(out)", file: file, line: line)
        return out.stdout
    }

    /// A migrated database holding samples/demo.sql plus a small language.
    func demo() throws -> TestDatabase {
        let db = try TestDatabase(prefix: "adm")
        XCTAssertEqual(try fsconf(db, ["migrate", "up"]).status, 0)
        let conn = try db.connect()
        try conn.execute("SET client_min_messages = warning")
        try conn.execute(String(contentsOf: TestEnvironment.repoRoot.appendingPathComponent("samples/demo.sql"), encoding: .utf8))
        try conn.execute("""
            WITH d AS (INSERT INTO fsconf.documents (section, name) VALUES ('languages', 'en') RETURNING id),
                 e AS (INSERT INTO fsconf.elements (document_id, position, tag) SELECT id, 1, 'language' FROM d RETURNING id)
            INSERT INTO fsconf.attributes (element_id, name, value, position)
            SELECT id, 'name', 'en', 1 FROM e UNION ALL SELECT id, 'say-module', 'en', 2 FROM e
            """)
        return db
    }

    /// Row counts and a checksum of every fsconf table, change log included.
    func fingerprint(_ db: TestDatabase) throws -> String {
        let tables = try db.column("SELECT tablename FROM pg_tables WHERE schemaname = 'fsconf' ORDER BY 1").compactMap { $0 }
        return try tables.map { t in
            "\(t)=\(try db.column("SELECT count(*)::text || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM fsconf.\(t) x")[0] ?? "")"
        }.joined(separator: " ")
    }

    func renders(_ db: TestDatabase) throws -> [String] {
        try [["render", "directory", "pbx.example.test", "1000"], ["render", "directory", "pbx.example.test", "alice"],
             ["render", "dialplan", "default"], ["render", "configuration", "sofia.conf"], ["render", "languages", "en"]]
            .map { try fsconf(db, $0).stdout }
    }

    // MARK: get / set / unset / list

    func testRoundTripsInEverySection() throws {
        let db = try demo()
        let cases: [(path: String, value: String, list: String)] = [
            ("globals/new_var", "v1", "globals"),
            ("directory/pbx.example.test/user/1000/variable/toll_allow", "local", "directory/pbx.example.test/user/1000"),
            ("directory/pbx.example.test/group/sales/param/vm-enabled", "true", "directory/pbx.example.test/group/sales"),
            ("directory/pbx.example.test/user/alice/gateway/carrier-a/variable/x[direction=inbound]", "1", "directory/pbx.example.test/user/alice"),
            ("dialplan/default/extension[name=local_extension]/@continue", "true", "dialplan/default"),
            ("dialplan/default/extension[name=local_extension]/condition[1]/action[1]/@data", "new-data", "dialplan/default/extension[name=local_extension]"),
            (Self.sofiaPort, "5070", "configuration/sofia.conf"),
            ("configuration/sofia.conf/profiles/profile[name=internal]/settings/param[name=rtp-timeout-sec]/@value", "300", "configuration/sofia.conf/profiles"),
            ("languages/en/@sound-prefix", "/sounds/en", "languages/en"),
        ]
        for c in cases {
            let before = try fsconf(db, ["get", c.path])
            try ok(db, ["set", c.path, c.value])
            XCTAssertEqual(try ok(db, ["get", c.path]), c.value + "\n", c.path)
            let json = try ok(db, ["get", "--json", c.path])
            XCTAssertTrue(json.contains("\"value\": \(c.value.debugDescription)") && json.contains("\"exists\": true"), json)
            XCTAssertTrue(try ok(db, ["list", c.list]).contains("\(c.path) = \(c.value)\n"), c.path)
            if before.status == 4 {
                // It did not exist: unset removes it again.
                try ok(db, ["unset", c.path])
                XCTAssertEqual(try fsconf(db, ["get", c.path]).status, 4, c.path)
            } else {
                try ok(db, ["set", c.path, String(before.stdout.dropLast())])
                XCTAssertEqual(try ok(db, ["get", c.path]), before.stdout)
            }
        }
        // Case-insensitive names, canonical paths in output.
        let out = try fsconf(db, ["get", "--json", "directory/PBX.example.TEST/user/1000/param/password"])
        XCTAssertTrue(out.stdout.contains("\"path\": \"directory/pbx.example.test/user/1000/param/password\""), out.description)
        // Exit codes: not found 4, invalid path 2, entity is not a field 2.
        XCTAssertEqual(try fsconf(db, ["get", "directory/nope.example/user/1/param/x"]).status, 4)
        XCTAssertEqual(try fsconf(db, ["get", "directory/pbx.example.test/user/1000/param/nope"]).status, 4)
        XCTAssertEqual(try fsconf(db, ["get", "directory/pbx.example.test/user/1000/@nope"]).status, 2)
        XCTAssertEqual(try fsconf(db, ["get", "directory/pbx.example.test/user/1000"]).status, 2)
        XCTAssertEqual(try fsconf(db, ["get", "bogus/x"]).status, 2)
        XCTAssertEqual(try fsconf(db, ["unset", "directory/pbx.example.test/user/1000/param/nope"]).status, 4)
        XCTAssertEqual(try fsconf(db, ["unset", "dialplan/default/extension[name=unloop]/@name"]).status, 2, "a required column")
        XCTAssertEqual(try fsconf(db, ["list", "directory/nope.example"]).status, 4)
        // list --json: every path reads back with get.
        let listed = try ok(db, ["list", "--json", "configuration/sofia.conf/profiles/profile[name=internal]/settings"])
        let items = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: String]])
        XCTAssertGreaterThan(items.count, 2)
        for item in items.prefix(6) { XCTAssertEqual(try ok(db, ["get", try XCTUnwrap(item["path"])]), try XCTUnwrap(item["value"]) + "\n") }
    }

    func testCheckAndSetHasExactlyOneWinner() throws {
        let db = try demo()
        for round in 1...3 {
            let old = String(try ok(db, ["get", Self.sofiaPort]).dropLast())
            // Hold the row so both writers start before either can finish.
            let blocker = try db.connect()
            try blocker.execute("BEGIN")
            try blocker.query("""
                SELECT 1 FROM fsconf.attributes a JOIN fsconf.elements e ON e.id = a.element_id
                WHERE a.name = 'value' AND e.tag = 'param' AND EXISTS (SELECT 1 FROM fsconf.attributes n WHERE n.element_id = e.id AND n.name = 'name' AND n.value = 'sip-port')
                FOR UPDATE
                """)
            let a = try ChildProcess(TestEnvironment.fsconfBinary, ["set", Self.sofiaPort, "6\(round)01", "--expect", old], environment: db.environment)
            let b = try ChildProcess(TestEnvironment.fsconfBinary, ["set", Self.sofiaPort, "6\(round)02", "--expect", old], environment: db.environment)
            // Both writers have reached the held row (they wait on its lock).
            let end = Date().addingTimeInterval(60)
            while Date() < end, try db.column("""
                SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                """) != ["2"] { usleep(10_000) }
            XCTAssertEqual(try db.column("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"),
                           ["2"], "both writers wait on the held row")
            try blocker.execute("COMMIT")
            let ra = a.wait(), rb = b.wait()
            XCTAssertEqual(Set([ra.status, rb.status]), Set([0, 5]), "\(ra)\n\(rb)")
            let (winner, loser) = ra.status == 0 ? ("6\(round)01", rb) : ("6\(round)02", ra)
            XCTAssertTrue(loser.stderr.contains("someone changed it first"), loser.stderr)
            XCTAssertEqual(try ok(db, ["get", Self.sofiaPort]), winner + "\n", "no lost update")
        }
        // --expect-absent: create only once.
        try ok(db, ["set", "globals/once", "1", "--expect-absent"])
        XCTAssertEqual(try fsconf(db, ["set", "globals/once", "2", "--expect-absent"]).status, 5)
        XCTAssertEqual(try ok(db, ["get", "globals/once"]), "1\n")
    }

    func testRejectedValuesWriteNothing() throws {
        let db = try demo()
        let before = try fingerprint(db)
        let rejected: [[String]] = [
            ["set", "globals/x", "a\u{1}b"],
            ["set", "globals/bad name", "x"],
            ["set", "dialplan/default/extension[name=unloop]/condition[1]/@expression", "^(1000$"],
            ["set", "dialplan/default/extension[name=unloop]/@continue", "maybe"],
            ["set", "directory/pbx.example.test/user/1000/@cacheable", "soon"],
            ["set", "configuration/sofia.conf/profiles/profile[name=internal]/@1bad", "x"],
            ["set", "dialplan/default/extension[name=unloop]/condition[1]/action[1]/@application", ""],
            ["extension", "add", "default", "broken", "--condition", "destination_number=^(12$", "--action", "answer"],
            ["user", "add", "pbx.example.test", "1001"],
            ["set", "directory/pbx.example.test/user/1000/@number-alias", "7000x\u{7F}"],
            ["user", "add", "pbx.example.test", "9999", "--param", "password=clear"],
        ]
        for args in rejected {
            let out = try fsconf(db, args)
            XCTAssertTrue(out.status == 2 || out.status == 5, "\(args): \(out)")
            XCTAssertTrue(out.stderr.hasPrefix("fsconf: ") || out.stderr.contains("\nfsconf: "), out.stderr)
        }
        // A unique violation is a conflict: alias 7000 belongs to 1000.
        XCTAssertEqual(try fsconf(db, ["set", "directory/pbx.example.test/user/1001/@number-alias", "7000"]).status, 5)
        XCTAssertEqual(try fingerprint(db), before, "nothing written, not even a change set")
        // An unknown param is only a warning.
        let warned = try fsconf(db, ["set", "directory/pbx.example.test/user/1000/param/vm-pasword", "1"])
        XCTAssertEqual(warned.status, 0)
        XCTAssertTrue(warned.stderr.contains("warning: vm-pasword is not a directory param") && warned.stderr.contains("vm-password"), warned.stderr)
    }

    // MARK: history and undo

    func testHistoryAndUndoRestoreIdenticalRenders() throws {
        let db = try demo()
        let original = try renders(db)
        let changes: [[String]] = [
            ["set", Self.sofiaPort, "5999"],
            ["unset", "dialplan/default/extension[name=unloop]"],
            ["user", "remove", "pbx.example.test", "1000"],
            ["gateway", "add", "pbx.example.test", "gw2", "--user", "alice", "--param", "proxy=sip.b.example", "--param", "register=false"],
            ["set", "directory/pbx.example.test/user/alice/param/vm-password", "4321"],
            ["set", "languages/en/@say-module", "fr"],
            ["extension", "add", "default", "echo", "--condition", "destination_number=^9196$", "--action", "answer", "--action", "echo"],
            ["unset", "configuration/sofia.conf/profiles/profile[name=internal]/settings"],
        ]
        var sets: [String] = []
        for args in changes {
            let out = try ok(db, args + ["--actor", "alice-admin"])
            let id = out.components(separatedBy: "change set ").last!.prefix { $0.isNumber }
            XCTAssertFalse(id.isEmpty, out)
            sets.append(String(id))
        }
        let changed = try renders(db)
        XCTAssertNotEqual(changed, original)
        XCTAssertTrue(changed[2].contains("name=\"echo\""))

        // History: who, what, old and new, filtered by path.
        let history = try ok(db, ["history", "--json", "--limit", "100"])
        let entries = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(history.utf8)) as? [[String: Any]])
        XCTAssertEqual(entries.filter { $0["actor"] as? String == "alice-admin" }.count, changes.count, "one change set per command")
        XCTAssertEqual(entries[0]["actor"] as? String, "alice-admin")
        let portHistory = try ok(db, ["history", Self.sofiaPort])
        XCTAssertTrue(portHistory.contains("~ \(Self.sofiaPort): $${internal_sip_port} -> 5999"), portHistory)
        XCTAssertFalse(portHistory.contains("vm-password"), "filtered to the path")
        let userHistory = try ok(db, ["history", "directory/pbx.example.test/user/1000"])
        XCTAssertTrue(userHistory.contains("- directory/pbx.example.test/user/1000/param/password (was (hidden))"), userHistory)
        XCTAssertTrue(userHistory.contains("- directory/pbx.example.test/group/sales/member/1000") == false, "member paths are under the group")

        // Undo newest first: every render is byte-identical to the original again.
        for id in sets.reversed() {
            let out = try ok(db, ["undo", id, "--actor", "bob"])
            XCTAssertTrue(out.hasPrefix("undid change set \(id)"), out)
        }
        XCTAssertEqual(try renders(db), original)
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.change_sets WHERE source = 'undo' AND actor = 'bob' AND undo_of IS NOT NULL"),
                       [String(sets.count)])
        // An undo is a change set too, and can itself be undone.
        let last = try XCTUnwrap(try db.column("SELECT max(id) FROM fsconf.change_sets").first ?? nil)
        try ok(db, ["undo", last])
        XCTAssertTrue(try renders(db)[3].contains("value=\"5999\""))
    }

    func testUndoOfOverwrittenChangeNeedsForce() throws {
        let db = try demo()
        let first = try ok(db, ["set", "globals/default_password", "first"])
        let firstID = String(first.components(separatedBy: "change set ").last!.prefix { $0.isNumber })
        try ok(db, ["set", "globals/default_password", "second"])
        let before = try fingerprint(db)
        let refused = try fsconf(db, ["undo", firstID])
        XCTAssertEqual(refused.status, 5, refused.description)
        XCTAssertTrue(refused.stderr.contains("globals/default_password (changed by change set"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--force"), refused.stderr)
        XCTAssertEqual(try fingerprint(db), before, "refused: nothing written")
        let dry = try ok(db, ["undo", firstID, "--dry-run"])
        XCTAssertTrue(dry.contains("would clobber globals/default_password"), dry)
        let forced = try fsconf(db, ["undo", firstID, "--force"])
        XCTAssertEqual(forced.status, 0, forced.description)
        XCTAssertEqual(try ok(db, ["get", "globals/default_password"]), "change-me-1234\n")
        // A truncate cannot be undone.
        let conn = try db.connect()
        try conn.execute("TRUNCATE fsconf.global_variables")
        let truncated = try XCTUnwrap(try db.column("SELECT max(id) FROM fsconf.change_sets").first ?? nil)
        let out = try fsconf(db, ["undo", truncated])
        XCTAssertEqual(out.status, 2)
        XCTAssertTrue(out.stderr.contains("cannot be undone"), out.stderr)
        XCTAssertEqual(try fsconf(db, ["undo", "999999"]).status, 4)
    }

    // MARK: notification

    func testSetNotifiesListenersWithTheKeys() throws {
        let db = try demo()
        let listener = try db.connect()
        try listener.execute("LISTEN fsconf_changes")
        try ok(db, ["set", "directory/pbx.example.test/user/1000/variable/toll_allow", "local"])
        var payloads: [String] = []
        let deadline = MonotonicClock.deadline(afterMilliseconds: 5000)
        while payloads.isEmpty && listener.waitReadable(deadline: deadline) {
            payloads += try listener.drainNotifications().filter { $0.channel == "fsconf_changes" }.map(\.payload)
        }
        XCTAssertEqual(payloads.count, 1, "\(payloads)")
        let payload = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(XCTUnwrap(payloads.first).utf8)) as? [String: Any])
        let keys = try XCTUnwrap(payload["keys"] as? [[String: String]])
        XCTAssertEqual(keys, [["s": "directory", "d": "pbx.example.test", "u": "1000", "a": "7000"]])
        let id = try XCTUnwrap(try db.column("SELECT max(id) FROM fsconf.change_sets").first ?? nil)
        XCTAssertEqual(String(describing: try XCTUnwrap(payload["id"])), id)
        // A set that changes nothing announces nothing.
        let same = try ok(db, ["set", "directory/pbx.example.test/user/1000/variable/toll_allow", "local"])
        XCTAssertTrue(same.hasSuffix("unchanged\n"), same)
        // The next notice heard is the next real change's: none came in between.
        try ok(db, ["set", "directory/pbx.example.test/user/1000/variable/toll_allow", "domestic"])
        let next = try db.column("SELECT max(id) FROM fsconf.change_sets")[0]
        var later: [String] = []
        let end = MonotonicClock.deadline(afterMilliseconds: 30_000)
        while later.isEmpty && listener.waitReadable(deadline: end) {
            later += try listener.drainNotifications().filter { $0.channel == "fsconf_changes" }.map(\.payload)
        }
        XCTAssertEqual(later.count, 1, "\(later)")
        let notice = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(XCTUnwrap(later.first).utf8)) as? [String: Any])
        XCTAssertEqual(String(describing: try XCTUnwrap(notice["id"])), next, "the notice is the later change set's")
    }

    // MARK: typed commands

    func testSetPasswordStoresTheA1HashOnly() throws {
        let db = try demo()
        let secret = "Sup3r-s3cret!"
        let out = try fsconf(db, ["user", "set-password", "pbx.example.test", "1000"], stdin: secret + "\n")
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertFalse(out.stdout.contains(secret) || out.stderr.contains(secret))
        XCTAssertEqual(try ok(db, ["get", "directory/pbx.example.test/user/1000/param/a1-hash"]),
                       MD5.hex("1000:pbx.example.test:\(secret)") + "\n")
        XCTAssertEqual(try fsconf(db, ["get", "directory/pbx.example.test/user/1000/param/password"]).status, 4, "clear password removed")
        let render = try ok(db, ["render", "directory", "pbx.example.test", "1000"])
        XCTAssertTrue(render.contains("<param name=\"a1-hash\" value=\"\(MD5.hex("1000:pbx.example.test:\(secret)"))\"/>"), render)
        XCTAssertFalse(try ok(db, ["history", "--json"]).contains(secret))
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.changes WHERE old_row::text LIKE '%' || $1 || '%' OR new_row::text LIKE '%' || $1 || '%'", [secret]), ["0"])
        XCTAssertEqual(try fsconf(db, ["user", "set-password", "pbx.example.test", "1000"], stdin: "\n").status, 2, "empty")
        XCTAssertEqual(try fsconf(db, ["user", "set-password", "pbx.example.test", "nobody"], stdin: "x\n").status, 4)
    }

    func testTypedConveniences() throws {
        let db = try demo()
        try ok(db, ["domain", "add", "b.example"])
        XCTAssertEqual(try fsconf(db, ["domain", "add", "B.EXAMPLE"]).status, 5)
        try ok(db, ["user", "add", "b.example", "2000", "--group", "staff", "--alias", "200", "--variable", "user_context=default"])
        XCTAssertEqual(try fsconf(db, ["user", "add", "b.example", "2000"]).status, 5)
        try ok(db, ["user", "set-password", "b.example", "2000"], stdin: "pw\n")
        // A gateway directly in a domain is never read by sofia: refused, naming the two real places.
        let domainLevel = try fsconf(db, ["gateway", "add", "b.example", "upstream", "--param", "proxy=sip.up.example"])
        XCTAssertEqual(domainLevel.status, 2, domainLevel.description)
        XCTAssertTrue(domainLevel.stderr.contains("--user USER") && domainLevel.stderr.contains("--profile PROFILE"), domainLevel.stderr)
        XCTAssertFalse(try ok(db, ["list", "directory/b.example"]).contains("upstream"), "nothing written")
        try ok(db, ["gateway", "add", "b.example", "upstream", "--user", "2000", "--param", "proxy=sip.up.example", "--param", "register=false"])
        let dir = try ok(db, ["render", "directory", "b.example", "2000"])
        XCTAssertTrue(dir.contains("<gateway name=\"upstream\">"), "the user's own answer carries its gateways: \(dir)")
        XCTAssertTrue(dir.contains("<user id=\"2000\" number-alias=\"200\">") || dir.contains("id=\"2000\""), dir)
        XCTAssertTrue(dir.contains("<group name=\"staff\">"), dir)
        XCTAssertTrue(try ok(db, ["list", "directory/b.example"]).contains("directory/b.example/user/2000/gateway/upstream/param/proxy = sip.up.example"))
        // A sofia.conf profile's gateway: stored in the document, served with the profile.
        try ok(db, ["gateway", "add", "carrier", "--profile", "internal", "--param", "proxy=sip.carrier.example", "--variable", "v=1"])
        XCTAssertEqual(try fsconf(db, ["gateway", "add", "carrier", "--profile", "internal"]).status, 5)
        XCTAssertEqual(try fsconf(db, ["gateway", "add", "carrier", "--profile", "nope"]).status, 4)
        let sofia = try ok(db, ["render", "configuration", "sofia.conf", "--profile", "internal"])
        XCTAssertTrue(sofia.contains("<gateway name=\"carrier\">") && sofia.contains("value=\"sip.carrier.example\""), sofia)
        try ok(db, ["gateway", "remove", "carrier", "--profile", "internal"])
        XCTAssertFalse(try ok(db, ["render", "configuration", "sofia.conf", "--profile", "internal"]).contains("carrier"))
        try ok(db, ["extension", "add", "public", "from_carrier", "--condition", "destination_number=^(\\d+)$", "--action", "transfer=$1 XML default"])
        let dp = try ok(db, ["render", "dialplan", "public"])
        XCTAssertTrue(dp.contains("<action application=\"transfer\" data=\"$1 XML default\"/>"), dp)
        try ok(db, ["extension", "remove", "public", "from_carrier"])
        XCTAssertFalse(try ok(db, ["render", "dialplan", "public"]).contains("from_carrier"))
        try ok(db, ["gateway", "remove", "b.example", "upstream", "--user", "2000"])
        try ok(db, ["user", "remove", "b.example", "2000"])
        try ok(db, ["domain", "remove", "b.example"])
        XCTAssertEqual(try fsconf(db, ["render", "directory", "b.example", "2000"]).status, 4)
        XCTAssertEqual(try fsconf(db, ["domain", "remove", "b.example"]).status, 4)
    }

    // MARK: diff

    func testDiffAgainstAnExportedTree() throws {
        let db = try demo()
        let dir = try TemporaryDirectory()
        try ok(db, ["export", dir.url.appendingPathComponent("tree").path])
        let tree = dir.url.appendingPathComponent("tree/freeswitch.xml").path
        let same = try fsconf(db, ["diff", tree])
        XCTAssertEqual(same.status, 0, same.description)
        XCTAssertEqual(same.stdout, "")
        try ok(db, ["set", Self.sofiaPort, "5999"])
        try ok(db, ["set", "globals/extra", "1"])
        let differs = try fsconf(db, ["diff", tree])
        XCTAssertEqual(differs.status, 1, differs.description)
        XCTAssertTrue(differs.stdout.contains("~ \(Self.sofiaPort): 5999 -> $${internal_sip_port}"), differs.stdout)
        XCTAssertTrue(differs.stdout.contains("- globals/extra = 1"), differs.stdout)
        XCTAssertEqual(try fsconf(db, ["diff", "--section", "dialplan", tree]).status, 0)
        XCTAssertEqual(try fsconf(db, ["diff", dir.url.appendingPathComponent("missing.xml").path]).status, 2)
    }
}
