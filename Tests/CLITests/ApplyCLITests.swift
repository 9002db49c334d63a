import FSConfAdminCore
import FSConfCore
import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// `fsconf apply` (issue 14, batch changes) with the built binary against a real
/// PostgreSQL: one change set or nothing, failures named by line, the dry run's
/// exact rendered diff.
extension AdminCLITests {
    /// Everything in the database as pg_dump writes it; without `sequences`, not
    /// the sequences' positions (a rolled-back transaction advances a sequence, as
    /// any PostgreSQL transaction that inserted a row does).
    func dataDump(_ db: TestDatabase, sequences: Bool = false) throws -> String {
        let out = try runProcess(tool("pg_dump"), ["--data-only", "--schema=fsconf", db.name], environment: db.environment)
        XCTAssertEqual(out.status, 0, out.description)
        return out.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { (sequences || !$0.hasPrefix("SELECT pg_catalog.setval(")) && !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
            .joined(separator: "\n")
    }

    func batchFile(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fsconf-batch-\(UUID().uuidString).txt")
        try text.write(to: url, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    /// Notifications heard on `listener` until one arrives (or 30 s pass).
    func notices(_ listener: PGConnection) throws -> [String] {
        var payloads: [String] = []
        let deadline = MonotonicClock.deadline(afterMilliseconds: 30_000)
        while payloads.isEmpty && listener.waitReadable(deadline: deadline) {
            payloads += try listener.drainNotifications().filter { $0.channel == "fsconf_changes" }.map(\.payload)
        }
        return payloads
    }

    func testApplyIsOneChangeSetAnnouncedOnce() throws {
        let db = try demo()
        let listener = try db.connect()
        try listener.execute("LISTEN fsconf_changes")
        let before = try db.column("SELECT count(*) FROM fsconf.change_sets")[0]
        let file = try batchFile("""
            # a new variable, a changed port, a removed member, in one step
            set directory/pbx.example.test/user/1000/variable/toll_allow local --expect-absent
            set \(Self.sofiaPort) 5070 --expect '$${internal_sip_port}'

            unset directory/pbx.example.test/group/sales/member/1001 --expect 1001
            set 'dialplan/default/extension[name=local_extension]/@continue' true
            """)
        let out = try fsconf(db, ["apply", file, "--actor", "carol"])
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(out.stdout, """
            \(file):2: directory/pbx.example.test/user/1000/variable/toll_allow: added local
            \(file):3: \(Self.sofiaPort): $${internal_sip_port} -> 5070
            \(file):5: directory/pbx.example.test/group/sales/member/1001: removed (was 1001)
            \(file):6: dialplan/default/extension[name=local_extension]/@continue: added true

            """ + "applied 4 operation(s) from \(file) as change set \(try db.column("SELECT max(id) FROM fsconf.change_sets")[0]!)\n")
        // One change set, by the actor, naming the file and the count, holding every row.
        XCTAssertEqual(try db.column("SELECT count(*) - \(before!) FROM fsconf.change_sets"), ["1"])
        XCTAssertEqual(try db.column("""
            SELECT actor || ' ' || source || ' ' || summary || ' ' || (SELECT count(*) FROM fsconf.changes c WHERE c.change_set_id = s.id)
            FROM fsconf.change_sets s ORDER BY id DESC LIMIT 1
            """), ["carol cli apply \(file): 4 operation(s) 4"])
        XCTAssertEqual(try ok(db, ["get", Self.sofiaPort]), "5070\n")
        XCTAssertEqual(try fsconf(db, ["get", "directory/pbx.example.test/group/sales/member/1001"]).status, 4)
        // One notice with every key; the next one heard is a later change's.
        let heard = try notices(listener)
        XCTAssertEqual(heard.count, 1, "\(heard)")
        let payload = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(XCTUnwrap(heard.first).utf8)) as? [String: Any])
        let keys = try XCTUnwrap(payload["keys"] as? [[String: String]])
        XCTAssertEqual(Set(keys.map { $0["s"] ?? "" }), ["directory", "configuration", "dialplan"], "\(keys)")
        try ok(db, ["set", "globals/after_batch", "1"])
        let next = try notices(listener)
        XCTAssertEqual(next.count, 1, "\(next)")
        XCTAssertTrue(next[0].contains("after_batch"), next[0])
    }

    func testAFailingLastLineLeavesTheDatabaseByteIdentical() throws {
        let db = try demo()
        let good = """
            set directory/pbx.example.test/user/1000/variable/toll_allow local
            set globals/new_one 1
            unset directory/pbx.example.test/user/1002/variable/user_context
            set \(Self.sofiaPort) 5080

            """
        // Each last line fails only when it runs, after the others have written.
        let failures: [(line: String, code: Int32, message: String)] = [
            ("set globals/internal_sip_port 5090 --expect 9999",
             5, "globals/internal_sip_port is 5060, not the expected 9999: someone changed it first; nothing written"),
            ("set globals/new_one 2 --expect-absent", 5, "globals/new_one already exists (value 1); expected it absent"),
            ("unset directory/pbx.example.test/user/1002/variable/user_context", 4,
             "directory/pbx.example.test/user/1002/variable/user_context does not exist; nothing written"),
            ("set directory/pbx.example.test/user/nobody/param/vm-password 1", 4, "no user nobody in domain pbx.example.test; nothing written"),
            ("unset 'dialplan/default/extension[name=unloop]/@name'", 2, "cannot be removed (it is required)"),
            // Refused by the store's own check, after the other lines wrote.
            ("unset 'dialplan/default/extension[name=unloop]/condition[1]/@field'", 2, "a condition with an expression needs a field"),
            ("domain add PBX.example.test", 5, "domain PBX.example.test already exists"),
            ("user add pbx.example.test 1003 --alias 7000", 5, "7000"),
            ("extension remove default nosuch", 4, "no extension [name=nosuch]"),
        ]
        for failure in failures {
            let rows = try fingerprint(db), dump = try dataDump(db)
            let file = try batchFile(good + failure.line + "\n")
            let out = try fsconf(db, ["apply", file])
            XCTAssertEqual(out.status, failure.code, "\(failure.line): \(out)")
            XCTAssertTrue(out.stderr.hasPrefix("fsconf: \(file):5: "), out.stderr)
            XCTAssertTrue(out.stderr.contains(failure.message), out.stderr)
            XCTAssertEqual(out.stderr.split(separator: "\n").count, 1, out.stderr)
            XCTAssertEqual(out.stdout, "", "nothing reported as done")
            XCTAssertEqual(try fingerprint(db), rows, failure.line)
            XCTAssertEqual(try dataDump(db), dump, failure.line)
        }
        // The same lines without the failing one: all written.
        let out = try fsconf(db, ["apply", try batchFile(good)])
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(try ok(db, ["get", "globals/new_one"]), "1\n")
    }

    func testBadLinesAreNamedByFileAndLineBeforeAnythingIsRead() throws {
        let db = try demo()
        let dump = try dataDump(db, sequences: true)
        let cases: [(text: String, message: String)] = [
            ("set globals/a 1\nfrobnicate x\n", ":2: unknown operation frobnicate (set, unset, domain|user|gateway|extension add|remove, scope set|clear|group|ungroup)"),
            ("set globals/a 1\n\nuser set-password pbx.example.test 1000\n", ":3: `user set-password` is not an operation a batch can hold"),
            ("set globals/a\n", ":1: "),
            ("set globals/a 1 --db dbname=elsewhere\n", ":1: --db, --actor and --wait belong on `fsconf apply`, not on an operation"),
            ("set globals/a 1\nset globals/b 2 --wait\n", ":2: --db, --actor and --wait belong on `fsconf apply`, not on an operation"),
            ("set globals/a 1 --json\n", ":1: --json belongs on a command run alone, not on an operation"),
            ("set globals/a 1\nset 'dialplan/default/extension[name=unloop]/condition[1]/@expression' '(('\n",
             ":2: dialplan/default/extension[name=unloop]/condition[1]/@expression: expression \"((\" does not compile"),
            ("set globals/a 1\nset dir//x 1\n", ":2: dir//x: "),
            ("set globals/a 'open\n", ":1: unterminated single quote"),
            ("set globals/a 1\nhelp set\n", ":2: "),
            ("[\n{\"op\":\"set\",\"path\":\"globals/a\",\"value\":\"1\"},\n{\"op\":\"sett\",\"path\":\"globals/a\"}\n]", ":3: "),
        ]
        for c in cases {
            let file = try batchFile(c.text)
            let out = try fsconf(db, ["apply", file])
            XCTAssertEqual(out.status, 2, "\(c.text): \(out)")
            XCTAssertTrue(out.stderr.hasPrefix("fsconf: \(file)\(c.message)"), "\(c.text): \(out.stderr)")
            XCTAssertEqual(out.stderr.split(separator: "\n").count, 1, out.stderr)
        }
        // Nothing was written, not even a sequence advanced: the database was not written to.
        XCTAssertEqual(try dataDump(db, sequences: true), dump)
    }

    func testANewCustomerInOneStep() throws {
        let db = try demo()
        let file = try batchFile("""
            domain add shop.example.com --cacheable 60000
            user add shop.example.com 1000 --group staff --alias 100 \\
                --variable 'effective_caller_id_name=Front Desk' --param vm-pasword=0000
            user add shop.example.com 1001 --group staff
            gateway add shop.example.com trunk --user 1000 --param proxy=sip.carrier.example --param register=false
            extension add shop '100' --condition 'destination_number=^100$' --action answer --action 'bridge=user/1000@shop.example.com'
            set directory/shop.example.com/user/1001/variable/offset -5
            set directory/shop.example.com/group/staff/member/1001 1001
            """)
        // Reviewed first: the new users and context appear (before: FreeSWITCH's "not found").
        let dry = try fsconf(db, ["apply", file, "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.description)
        XCTAssertTrue(dry.stdout.contains("--- directory shop.example.com 1000\t(before)"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("-<document type=\"freeswitch/xml\"><section name=\"result\"><result status=\"not found\"/>"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("+++ dialplan shop\t(after)"), dry.stdout)
        XCTAssertEqual(dry.stderr.components(separatedBy: "note: \(file):6: created dialplan context shop").count, 2, dry.stderr)
        XCTAssertEqual(try fsconf(db, ["get", "dialplan/shop/@name"]).status, 4, "the dry run wrote nothing")
        let out = try fsconf(db, ["apply", file])
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(out.stdout, """
            \(file):1: added domain shop.example.com
            \(file):2: added user 1000@shop.example.com
            \(file):4: added user 1001@shop.example.com
            \(file):5: added gateway trunk to 1000@shop.example.com
            \(file):6: added extension 100 to context shop
            \(file):7: directory/shop.example.com/user/1001/variable/offset: added -5
            \(file):8: directory/shop.example.com/group/staff/member/1001: added 1001

            """ + "applied 7 operation(s) from \(file) as change set \(try db.column("SELECT max(id) FROM fsconf.change_sets")[0]!)\n")
        // Warnings and notes name the line they come from.
        XCTAssertTrue(out.stderr.contains("warning: \(file):2: vm-pasword is not a directory param FreeSWITCH is known to read"), out.stderr)
        XCTAssertTrue(out.stderr.contains("note: \(file):6: created dialplan context shop"), out.stderr)
        XCTAssertEqual(try db.column("SELECT count(DISTINCT change_set_id) FROM fsconf.changes c JOIN fsconf.change_sets s ON s.id = c.change_set_id WHERE s.summary LIKE 'apply %'"), ["1"])
        let user = try ok(db, ["render", "directory", "shop.example.com", "1000"])
        XCTAssertTrue(user.contains("<gateway name=\"trunk\">") && user.contains("value=\"Front Desk\""), user)
        XCTAssertTrue(try ok(db, ["render", "dialplan", "shop"]).contains("<action application=\"bridge\" data=\"user/1000@shop.example.com\"/>"))
        // The whole step undoes as one.
        let id = try XCTUnwrap(try db.column("SELECT max(id) FROM fsconf.change_sets")[0])
        try ok(db, ["undo", id])
        XCTAssertEqual(try fsconf(db, ["render", "directory", "shop.example.com", "1000"]).status, 4)
        XCTAssertEqual(try fsconf(db, ["get", "dialplan/shop/@name"]).status, 4)
    }

    func testJSONAndStandardInputAndValuesStartingWithADash() throws {
        let db = try demo()
        let json = """
            [
              {"op": "set", "path": "globals/offset", "value": "-5", "expect": null},
              {"op": "set", "path": "directory/pbx.example.test/user/1000/variable/toll_allow", "value": "--local--"},
              {"op": "unset", "path": "directory/pbx.example.test/user/1002/variable/user_context", "expect": "public"}
            ]
            """
        let out = try fsconf(db, ["apply", "-"], stdin: json)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stdout.hasPrefix("stdin:2: globals/offset: added -5\nstdin:3: "), out.stdout)
        XCTAssertEqual(try ok(db, ["get", "globals/offset"]), "-5\n")
        XCTAssertEqual(try ok(db, ["get", "directory/pbx.example.test/user/1000/variable/toll_allow"]), "--local--\n")
        XCTAssertEqual(try db.column("SELECT summary FROM fsconf.change_sets ORDER BY id DESC LIMIT 1"), ["apply stdin: 3 operation(s)"])
        // An expectation that fails in JSON names the element's line.
        let failed = try fsconf(db, ["apply", "-"], stdin: "[\n{\"op\":\"set\",\"path\":\"globals/offset\",\"value\":\"1\",\"expect\":\"7\"}\n]")
        XCTAssertEqual(failed.status, 5, failed.description)
        XCTAssertTrue(failed.stderr.hasPrefix("fsconf: stdin:2: globals/offset is -5, not the expected 7"), failed.stderr)
        // Nothing to do is not an error.
        let empty = try fsconf(db, ["apply", "-"], stdin: "# nothing yet\n\n")
        XCTAssertEqual(empty.status, 0, empty.description)
        XCTAssertEqual(empty.stdout, "stdin: no operations; nothing written\n")
    }

    func testDryRunPrintsTheExactRenderedDiffAndWritesNothing() throws {
        let db = try demo()
        let rows = try fingerprint(db), dump = try dataDump(db)
        let batch = """
            set 'dialplan/default/extension[name=local_extension]/condition[1]/action[2]/@data' 'user/${dialed_extension}@pbx.example.test'
            set directory/pbx.example.test/user/1000/variable/effective_caller_id_name 'Front Desk'

            """
        let out = try fsconf(db, ["apply", "-", "--dry-run"], stdin: batch)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(out.stdout, """
            stdin:1: dialplan/default/extension[name=local_extension]/condition[1]/action[2]/@data: user/${dialed_extension}@${domain_name} -> user/${dialed_extension}@pbx.example.test
            stdin:2: directory/pbx.example.test/user/1000/variable/effective_caller_id_name: Extension 1000 -> Front Desk
            --- directory pbx.example.test 1000\t(before)
            +++ directory pbx.example.test 1000\t(after)
            @@ -16,7 +16,7 @@
                             <param name="password" value="(hidden 1)"/>
                           </params>
                           <variables>
            -                <variable name="effective_caller_id_name" value="Extension 1000"/>
            +                <variable name="effective_caller_id_name" value="Front Desk"/>
                             <variable name="effective_caller_id_number" value="1000"/>
                           </variables>
                         </user>
            --- dialplan default\t(before)
            +++ dialplan default\t(after)
            @@ -10,7 +10,7 @@
                   <extension name="local_extension">
                     <condition field="destination_number" expression="^(10[01][0-9])$">
                       <action application="export" data="dialed_extension=$1"/>
            -          <action application="bridge" data="user/${dialed_extension}@${domain_name}"/>
            +          <action application="bridge" data="user/${dialed_extension}@pbx.example.test"/>
                     </condition>
                   </extension>
                   <extension name="business_hours" continue="true">
            agent: nothing to send
            dry run: apply stdin: 2 operation(s); 2 row(s) would change; 2 lookup(s) rendered, 2 would change; nothing written

            """)
        XCTAssertEqual(try fingerprint(db), rows, "nothing written, not even a change set")
        XCTAssertEqual(try dataDump(db), dump)
        // The diff is the renders' own: what `fsconf render` prints after the change.
        let before = try ok(db, ["render", "dialplan", "default"])
        try ok(db, ["apply", "-"], stdin: batch)
        let after = try ok(db, ["render", "dialplan", "default"])
        XCTAssertTrue(UnifiedDiff.diff(before, after, oldLabel: "dialplan default\t(before)", newLabel: "dialplan default\t(after)")
                        .split(separator: "\n").allSatisfy { out.stdout.contains($0) })
    }

    func testDryRunHidesSecretsUnlessAsked() throws {
        let db = try demo()
        let batch = "set directory/pbx.example.test/user/alice/gateway/carrier-a/param/password new-gw-secret\n"
        let out = try fsconf(db, ["apply", "-", "--dry-run"], stdin: batch)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertFalse(out.stdout.contains("gw-secret") || out.stderr.contains("gw-secret"), out.stdout)
        XCTAssertTrue(out.stdout.contains("stdin:1: directory/pbx.example.test/user/alice/gateway/carrier-a/param/password: (hidden) -> (hidden)\n"), out.stdout)
        // Numbered per lookup in order of appearance: alice's a1-hash is 1, the gateway's password 2, its new one 3.
        XCTAssertTrue(out.stdout.contains("""
            -                  <param name="password" value="(hidden 2)"/>
            +                  <param name="password" value="(hidden 3)"/>
            """), out.stdout)
        let shown = try fsconf(db, ["apply", "-", "--dry-run", "--show-secrets"], stdin: batch)
        XCTAssertTrue(shown.stdout.contains("""
            -                  <param name="password" value="gw-secret"/>
            +                  <param name="password" value="new-gw-secret"/>
            """), shown.stdout)
        XCTAssertEqual(try fsconf(db, ["apply", "-", "--show-secrets"], stdin: batch).status, 2, "--show-secrets goes with --dry-run")
    }

    func testDryRunOfADomainWideChangeShowsEachLookupAndTheAgentsCommands() throws {
        let db = try demo()
        // A domain variable reaches the domain, its groups and every user: the same
        // hunk, shown once with the lookups it applies to.
        var out = try fsconf(db, ["apply", "-", "--dry-run", "--max-users", "2"],
                             stdin: "set directory/pbx.example.test/variable/record_stereo false\n")
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stdout.contains("(the same diff for directory pbx.example.test --param group_name=sales, "
                                          + "directory pbx.example.test 1000, directory pbx.example.test 1001)\n"), out.stdout)
        XCTAssertTrue(out.stderr.contains("note: 2 more user lookup(s) of pbx.example.test not rendered (at most 2 per domain: --max-users)"), out.stderr)
        XCTAssertTrue(out.stdout.hasSuffix("5 lookup(s) rendered, 5 would change; nothing written\n"), out.stdout)
        // A global used by sofia.conf: the document's diff, and the agent's restart.
        out = try fsconf(db, ["apply", "-", "--dry-run"], stdin: "set globals/internal_sip_port 5070\n")
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stdout.contains("""
            -            <param name="sip-port" value="5060"/>
            +            <param name="sip-port" value="5070"/>
            """), out.stdout)
        XCTAssertTrue(out.stdout.contains("agent: sofia profile internal restart (with --allow-restart, when no calls are up)\n"), out.stdout)
        // A user made cacheable: the agent flushes FreeSWITCH's copy of it.
        out = try fsconf(db, ["apply", "-", "--dry-run"], stdin: "set directory/pbx.example.test/user/1001/@cacheable true\n")
        XCTAssertTrue(out.stdout.contains("agent: xml_flush_cache id 1001 pbx.example.test\n"), out.stdout)
        // A renamed alias: the lookups by the old and the new alias.
        out = try fsconf(db, ["apply", "-", "--dry-run"], stdin: "set directory/pbx.example.test/user/1000/@number-alias 7100\n")
        XCTAssertTrue(out.stdout.contains("--- directory pbx.example.test 7000 --param key=number-alias\t(before)"), out.stdout)
        XCTAssertTrue(out.stdout.contains("--- directory pbx.example.test 7100 --param key=number-alias\t(before)"), out.stdout)
        XCTAssertEqual(try fsconf(db, ["get", "directory/pbx.example.test/user/1000/@number-alias"]).stdout, "7000\n")
        // What the node would log rendering the lookup (a row written past fsconf's checks) is a note.
        try db.connect().execute("""
            UPDATE fsconf.dialplan_conditions SET expression = '((' WHERE extension_id =
                (SELECT id FROM fsconf.dialplan_extensions WHERE name = 'unloop') AND position = 1
            """)
        out = try fsconf(db, ["apply", "-", "--dry-run"], stdin: "set 'dialplan/default/extension[name=business_hours]/@continue' false\n")
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stderr.contains("note: dialplan default: warning: fsconf: dialplan context default: skipped 1 invalid extension(s): unloop"),
                      out.stderr)
    }
}

extension AdminCLITests {
    func testImportDryRunOfAnEditedExportShowsTheRenderedDiff() throws {
        let db = try demo()
        let dir = try TemporaryDirectory()
        try ok(db, ["export", dir.url.path, "--force"])
        func edit(_ file: String, _ from: String, _ to: String) throws {
            let text = try String(contentsOfFile: dir.path(file), encoding: .utf8)
            XCTAssertTrue(text.contains(from), "\(file) lacks \(from)")
            try text.replacingOccurrences(of: from, with: to).write(toFile: dir.path(file), atomically: true, encoding: .utf8)
        }
        try edit("directory/pbx.example.test.xml", "value=\"Extension 1001\"", "value=\"Sales 1001\"")
        try edit("dialplan/default.xml", "data=\"dialed_extension=$1\"", "data=\"dialed_extension=$1 dialed_by=import\"")
        let rows = try fingerprint(db)
        let renders = try self.renders(db)
        let out = try fsconf(db, ["import", dir.path("freeswitch.xml"), "--dry-run"])
        XCTAssertEqual(out.status, 0, out.description)
        // The entities, then each changed lookup's rendered diff, then the agent's commands (alice's
        // rows are rewritten, her answer is not: only two lookups differ).
        XCTAssertTrue(out.stdout.hasPrefix("~ directory user 1001@pbx.example.test\n"), out.stdout)
        XCTAssertTrue(out.stdout.contains("~ dialplan context default\n"), out.stdout)
        XCTAssertTrue(out.stdout.contains("""
            --- directory pbx.example.test 1001\t(before)
            +++ directory pbx.example.test 1001\t(after)
            @@ -16,7 +16,7 @@
                             <param name="password" value="(hidden 1)"/>
                           </params>
                           <variables>
            -                <variable name="effective_caller_id_name" value="Extension 1001"/>
            +                <variable name="effective_caller_id_name" value="Sales 1001"/>
                           </variables>
                         </user>
                       </users>
            --- dialplan default\t(before)
            +++ dialplan default\t(after)
            @@ -9,7 +9,7 @@
                   </extension>
                   <extension name="local_extension">
                     <condition field="destination_number" expression="^(10[01][0-9])$">
            -          <action application="export" data="dialed_extension=$1"/>
            +          <action application="export" data="dialed_extension=$1 dialed_by=import"/>
                       <action application="bridge" data="user/${dialed_extension}@${domain_name}"/>
                     </condition>
                   </extension>
            agent: 
            """), out.stdout)
        XCTAssertTrue(out.stdout.contains(" would change; nothing written\n"), out.stdout)
        XCTAssertFalse(out.stdout.contains("--- configuration"), "sofia.conf was not edited: \(out.stdout)")
        XCTAssertEqual(try fingerprint(db), rows, "--dry-run writes nothing")
        XCTAssertEqual(try self.renders(db), renders)
        // Imported for real, the lookups answer what the dry run showed.
        try ok(db, ["import", dir.path("freeswitch.xml"), "--quiet"])
        XCTAssertTrue(try ok(db, ["render", "dialplan", "default"]).contains("data=\"dialed_extension=$1 dialed_by=import\""))
    }
}

extension AdminCLITests {
    static let sipPort = "configuration/sofia.conf/profiles/profile[name=internal]/settings/param[name=sip-port]"

    /// The head of the demo sofia.conf's diff when the internal profile's sip-port
    /// (5060) becomes `to`, up to the changed line.
    static func sipPortDiff(_ label: String, to: String) -> String {
        """
        --- \(label)\t(before)
        +++ \(label)\t(after)
        @@ -7,7 +7,7 @@
               <profiles>
                 <profile name="internal">
                   <settings>
        -            <param name="sip-port" value="5060"/>
        +            <param name="sip-port" value="\(to)"/>
        """
    }

    func testDryRunShowsEachNodeWhoseAnswerDiffers() throws {
        let db = try demo()
        try ok(db, ["set", "\(Self.sipPort){fs-eu-1}/@value", "5099"])
        // Every other node's sip-port changes; fs-eu-1 keeps its own variant.
        var out = try fsconf(db, ["apply", "-", "--dry-run"], stdin: "set '\(Self.sipPort)/@value' 5070\n")
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(out.stdout, """
            stdin:1: \(Self.sipPort)/@value: $${internal_sip_port} -> 5070
            \(Self.sipPortDiff("configuration sofia.conf", to: "5070"))
                         <param name="context" value="default"/>
                         <param name="auth-calls" value="true"/>
                       </settings>
            (configuration sofia.conf: no change for node(s) fs-eu-1, which get their own variant)
            agent (every other node): sofia profile internal restart (with --allow-restart, when no calls are up)
            agent (every other node) report: sofia profile internal: settings changed; they apply when the profile restarts
            agent (node fs-eu-1): nothing to send
            dry run: apply stdin: 1 operation(s); 1 row(s) would change; 2 lookup(s) rendered, 1 would change; nothing written

            """)
        // A group's variant, in the same batch as the group: only its nodes' answers change.
        out = try fsconf(db, ["apply", "-", "--dry-run"], stdin: """
            scope group us fs-us-1 fs-us-2
            set '\(Self.sipPort){@us}/@value' 5098

            """)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stdout.contains(Self.sipPortDiff("configuration sofia.conf --node fs-us-1", to: "5098")), out.stdout)
        XCTAssertTrue(out.stdout.contains("(the same diff for configuration sofia.conf --node fs-us-2)\n"), out.stdout)
        XCTAssertFalse(out.stdout.contains("--- configuration sofia.conf\t"), "every other node's answer is unchanged: \(out.stdout)")
        XCTAssertFalse(out.stdout.contains("no change for node(s)"), out.stdout)
        // Each node plans its part (its group changed, which its report names).
        for node in ["fs-us-1", "fs-us-2"] {
            XCTAssertTrue(out.stdout.contains("agent (node \(node)): sofia profile internal restart"), out.stdout)
            XCTAssertTrue(out.stdout.contains("agent (node \(node)) report: the groups of this node (\(node)) changed"), out.stdout)
        }
        XCTAssertTrue(out.stdout.contains("agent (every other node): nothing to send\n"), out.stdout)
        XCTAssertTrue(out.stderr.contains("note: node groups changed"), out.stderr)
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.node_groups"), ["0"], "the dry run wrote nothing")
        // The same batch for real: one change set holds the group and the variant.
        out = try fsconf(db, ["apply", "-"], stdin: "scope group us fs-us-1 fs-us-2\nset '\(Self.sipPort){@us}/@value' 5098\n")
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stdout.hasPrefix("stdin:1: @us: added fs-us-1, fs-us-2\nstdin:2: \(Self.sipPort){@us}/@value: added 5098\n"), out.stdout)
        XCTAssertTrue(try ok(db, ["render", "configuration", "sofia.conf", "--node", "fs-us-2"]).contains("<param name=\"sip-port\" value=\"5098\"/>"))
        XCTAssertTrue(try ok(db, ["render", "configuration", "sofia.conf"]).contains("<param name=\"sip-port\" value=\"5060\"/>"))
    }
}
