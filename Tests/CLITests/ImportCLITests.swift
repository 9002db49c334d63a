import FSConfTestSupport
import Foundation
import XCTest

/// `fsconf import` / `fsconf export` end to end: the built binary against a real PostgreSQL.
final class ImportCLITests: XCTestCase {
    static var vanillaFolder: URL { TestEnvironment.sharedDirectory.appendingPathComponent("fixtures/freeswitch-conf/vanilla") }

    func fsconf(_ db: TestDatabase, _ args: [String]) throws -> ProcessOutput {
        try runProcess(TestEnvironment.fsconfBinary, args, environment: db.environment, timeout: 300)
    }

    func migrated() throws -> TestDatabase {
        let db = try TestDatabase(prefix: "imp")
        let up = try fsconf(db, ["migrate", "up"])
        XCTAssertEqual(up.status, 0, up.description)
        return db
    }

    /// Row counts and a checksum of every fsconf table's contents.
    func fingerprint(_ db: TestDatabase) throws -> String {
        let tables = try db.column("""
            SELECT tablename FROM pg_tables WHERE schemaname = 'fsconf' AND tablename <> 'schema_migrations' ORDER BY 1
            """).compactMap { $0 }
        var parts: [String] = []
        for t in tables {
            let r = try db.column("SELECT count(*)::text || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM fsconf.\(t) x")
            parts.append("\(t)=\(r[0] ?? "")")
        }
        return parts.joined(separator: " ")
    }

    /// A copy of the vanilla tree to vary.
    func vanillaCopy() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        let out = try runProcess(URL(fileURLWithPath: "/bin/cp"), ["-R", Self.vanillaFolder.path + "/.", dir.url.path])
        XCTAssertEqual(out.status, 0, out.description)
        return dir
    }

    func testImportTwiceChangesNothingAndIsOneChangeSet() throws {
        let db = try migrated()
        let tree = Self.vanillaFolder.appendingPathComponent("freeswitch.xml").path
        let first = try fsconf(db, ["import", tree])
        XCTAssertEqual(first.status, 0, first.description)
        print("vanilla import (debug build): \(first.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
        XCTAssertTrue(first.stderr.contains("note: freeswitch.xml:67: <X-NO-PRE-PROCESS"), first.stderr)
        XCTAssertEqual(try db.column("SELECT name FROM fsconf.dialplan_contexts WHERE section = 'chatplan'"), ["default"])
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.change_sets WHERE source = 'import'"), ["1"])
        let summary = try db.column("SELECT summary FROM fsconf.change_sets")[0] ?? ""
        XCTAssertTrue(summary.contains("directory +1") && summary.contains("configuration +79"), summary)
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.users"), ["24"])
        XCTAssertEqual(try db.column("SELECT value FROM fsconf.user_settings s JOIN fsconf.users u ON u.id = s.user_id WHERE u.user_id = '1000' AND s.name = 'password'"),
                       ["$${default_password}"], "references are kept")
        XCTAssertEqual(try db.column("SELECT name FROM fsconf.domains"), ["$${domain}"])

        let before = try fingerprint(db)
        let second = try fsconf(db, ["import", tree])
        XCTAssertEqual(second.status, 0, second.description)
        XCTAssertTrue(second.stdout.hasPrefix("nothing to change"), second.stdout)
        XCTAssertEqual(try fingerprint(db), before)
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.change_sets"), ["1"], "no empty change set")
    }

    func testUnrepresentableFailsUnlessSkipped() throws {
        let db = try migrated()
        let before = try fingerprint(db)
        // Vanilla with a section no FreeSWITCH module reads and a directory element fsconf does not model.
        let dir = try vanillaCopy()
        let main = try String(contentsOfFile: dir.path("freeswitch.xml"), encoding: .utf8)
        try Data(main.replacingOccurrences(of: "</document>", with: "  <section name=\"bogus\"><x/></section>\n</document>").utf8)
            .write(to: URL(fileURLWithPath: dir.path("freeswitch.xml")))
        let out = try fsconf(db, ["import", dir.path("freeswitch.xml")])
        XCTAssertEqual(out.status, 2, out.description)
        XCTAssertTrue(out.stderr.contains("unrepresentable: freeswitch.xml:72: section \"bogus\""), out.stderr)
        XCTAssertFalse(out.stderr.contains("chatplan") || out.stderr.contains("unrepresentable: freeswitch.xml:67"), out.stderr)
        XCTAssertEqual(try fingerprint(db), before)
        let skipped = try fsconf(db, ["import", "--skip-unrepresentable", dir.path("freeswitch.xml")])
        XCTAssertEqual(skipped.status, 0, skipped.description)
        XCTAssertTrue(skipped.stderr.contains("skipped: freeswitch.xml:72: section \"bogus\""), skipped.stderr)
    }

    func testDryRunWritesNothingAndReplaceMakesTheSectionExact() throws {
        let db = try migrated()
        let dir = try vanillaCopy()
        let tree = dir.path("freeswitch.xml")
        XCTAssertEqual(try fsconf(db, ["import", "--skip-unrepresentable", "--quiet", tree]).status, 0)

        // Change one user, drop one context, add a global.
        let user = dir.path("directory/default/1001.xml")
        let text = try String(contentsOfFile: user, encoding: .utf8).replacingOccurrences(of: "value=\"1001\"", with: "value=\"7001\"")
        try text.write(toFile: user, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: dir.path("dialplan/features.xml"))
        let vars = try String(contentsOfFile: dir.path("vars.xml"), encoding: .utf8)
            .replacingOccurrences(of: "</include>", with: "  <X-PRE-PROCESS cmd=\"set\" data=\"fsconf_test=1\"/>\n</include>")
        try vars.write(toFile: dir.path("vars.xml"), atomically: true, encoding: .utf8)

        let before = try fingerprint(db)
        let dry = try fsconf(db, ["import", "--skip-unrepresentable", "--quiet", "--dry-run", "--replace", "dialplan", tree])
        XCTAssertEqual(dry.status, 0, dry.description)
        let lines = dry.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("~ directory user 1001@$${domain}"), dry.stdout)
        XCTAssertTrue(lines.contains("- dialplan context features"), dry.stdout)
        XCTAssertTrue(lines.contains("+ globals fsconf_test"), dry.stdout)
        XCTAssertEqual(try fingerprint(db), before, "--dry-run writes nothing")

        // Without --replace the context missing from the tree stays.
        let keep = try fsconf(db, ["import", "--skip-unrepresentable", "--quiet", tree])
        XCTAssertEqual(keep.status, 0, keep.description)
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.dialplan_contexts WHERE name = 'features'"), ["1"])
        XCTAssertEqual(try db.column("""
            SELECT s.value FROM fsconf.user_settings s JOIN fsconf.users u ON u.id = s.user_id
            WHERE u.user_id = '1001' AND s.name = 'accountcode'
            """), ["7001"])
        // With it, the section is exactly the tree's.
        let replace = try fsconf(db, ["import", "--skip-unrepresentable", "--quiet", "--replace", "dialplan", tree])
        XCTAssertEqual(replace.status, 0, replace.description)
        XCTAssertTrue(replace.stdout.contains("dialplan -1"), replace.stdout)
        XCTAssertEqual(try db.column("SELECT name FROM fsconf.dialplan_contexts WHERE section = 'dialplan' ORDER BY name"), ["default", "public", "skinny-patterns"])
        XCTAssertEqual(try db.column("SELECT name FROM fsconf.dialplan_contexts WHERE section = 'chatplan'"), ["default"], "--replace dialplan leaves the chatplan")
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.change_sets"), ["3"])
    }

    func testDomainMapRenamesTheDomain() throws {
        let db = try migrated()
        let out = try fsconf(db, ["import", "--skip-unrepresentable", "--quiet", "--domain-map", "$${domain}=pbx.example.com",
                                  Self.vanillaFolder.appendingPathComponent("freeswitch.xml").path])
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(try db.column("SELECT name FROM fsconf.domains"), ["pbx.example.com"])
    }

    /// Broken input: one line naming the file and line, exit 2, the database untouched.
    func testBrokenTreesFailWithFileAndLineAndWriteNothing() throws {
        let db = try migrated()
        // Something stored already, so "unchanged" means something.
        let dir = try TemporaryDirectory()
        try dir.write("freeswitch.xml", """
            <?xml version="1.0"?>
            <document type="freeswitch/xml">
              <X-PRE-PROCESS cmd="set" data="domain=example.org"/>
              <section name="directory">
                <X-PRE-PROCESS cmd="include" data="dir/*.xml"/>
              </section>
            </document>

            """)
        try FileManager.default.createDirectory(atPath: dir.path("dir"), withIntermediateDirectories: true)
        try dir.write("dir/a.xml", "<include>\n  <domain name=\"$${domain}\">\n    <user id=\"1\"/>\n  </domain>\n</include>\n")
        let ok = try fsconf(db, ["import", dir.path("freeswitch.xml")])
        XCTAssertEqual(ok.status, 0, ok.description)
        let before = try fingerprint(db)

        func expectFailure(_ name: String, _ files: [String: Data], _ expected: String,
                           file: StaticString = #filePath, line: UInt = #line) throws {
            let case_ = try TemporaryDirectory()
            for (path, text) in files {
                let url = case_.url.appendingPathComponent(path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try text.write(to: url)
            }
            let started = Date()
            let out = try fsconf(db, ["import", case_.path("freeswitch.xml")])
            XCTAssertEqual(out.status, 2, "\(name): \(out.description)", file: file, line: line)
            let lines = out.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(name): one line: \(out.stderr)", file: file, line: line)
            XCTAssertTrue(out.stderr.contains(expected), "\(name): \(out.stderr)", file: file, line: line)
            XCTAssertEqual(try fingerprint(db), before, "\(name): database changed", file: file, line: line)
            print(String(format: "%@ → %@ (%.2f s)", name, out.stderr.trimmingCharacters(in: .whitespacesAndNewlines), Date().timeIntervalSince(started)))
        }
        let head = "<document type=\"freeswitch/xml\">\n  <section name=\"directory\">\n"
        let tail = "  </section>\n</document>\n"
        func include(_ file: String) -> Data { Data((head + "    <X-PRE-PROCESS cmd=\"include\" data=\"\(file)\"/>\n" + tail).utf8) }
        try expectFailure("malformed XML", [
            "freeswitch.xml": include("d.xml"),
            "d.xml": Data("<include>\n  <domain name=\"x\">\n    <user id=\"1\">\n  </domain>\n</include>\n".utf8),
        ], "fsconf: d.xml:4: closing tag </domain> does not match <user> (opened at line 3)")
        try expectFailure("missing include", ["freeswitch.xml": include("nowhere.xml")],
                          "fsconf: freeswitch.xml:3: included file nowhere.xml does not exist")
        try expectFailure("include loop", [
            "freeswitch.xml": include("a.xml"),
            "a.xml": Data("<include>\n  <X-PRE-PROCESS cmd=\"include\" data=\"sub/b.xml\"/>\n</include>\n".utf8),
            "sub/b.xml": Data("<include>\n\n  <X-PRE-PROCESS cmd=\"include\" data=\"../a.xml\"/>\n</include>\n".utf8),
        ], "fsconf: sub/b.xml:3: include loop: freeswitch.xml → a.xml → sub/b.xml → a.xml")
        var invalid = Data("<include>\n  <domain name=\"x\">\n    <user id=\"caf".utf8)
        invalid.append(contentsOf: [0xC3, 0x28])  // a lead byte followed by a non-continuation byte
        invalid.append(Data("\"/>\n  </domain>\n</include>\n".utf8))
        try expectFailure("invalid UTF-8", ["freeswitch.xml": include("u.xml"), "u.xml": invalid], "fsconf: u.xml:3: invalid UTF-8")
        // 50 MB of well-formed XML: refused by size before it is read into memory.
        var big = Data("<include>\n  <domain name=\"big\">\n".utf8)
        let user = Data("    <user id=\"u\"><params><param name=\"password\" value=\"0123456789\"/></params></user>\n".utf8)
        while big.count < 50 * 1024 * 1024 { big.append(user) }
        big.append(Data("  </domain>\n</include>\n".utf8))
        try expectFailure("50 MB file", ["freeswitch.xml": include("big.xml"), "big.xml": big],
                          "fsconf: big.xml:1: file is 50.0 MiB, above the 16.0 MiB limit")
        try expectFailure("several roots", ["freeswitch.xml": Data((head + tail + "<document/>\n").utf8)],
                          "fsconf: freeswitch.xml:5: markup outside of the root element")
    }

    /// A tree someone sent you never executes anything: exec-set and env-set are kept
    /// as written (each node evaluates them at its start), and lookups leave their
    /// `$${name}` to the node's own global.
    func testExecSetAndEnvSetAreNodeEvaluatedAndNeverRun() throws {
        let db = try migrated()
        let dir = try TemporaryDirectory()
        let marker = dir.url.appendingPathComponent("executed").path
        try Data("""
            <document type="freeswitch/xml">
              <X-PRE-PROCESS cmd="set" data="plain=1"/>
              <X-PRE-PROCESS cmd="exec-set" data="host_id=touch \(marker)"/>
              <X-PRE-PROCESS cmd="env-set" data="region=$FSCONF_SURELY_UNSET_VARIABLE"/>
              <section name="dialplan">
                <context name="default">
                  <extension name="x"><condition field="destination_number" expression="^1$">
                    <action application="log" data="$${host_id} $${region} $${plain}"/>
                  </condition></extension>
                </context>
              </section>
            </document>
            """.utf8).write(to: dir.url.appendingPathComponent("freeswitch.xml"))
        let imported = try fsconf(db, ["import", dir.url.appendingPathComponent("freeswitch.xml").path])
        XCTAssertEqual(imported.status, 0, imported.description)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "import ran the exec-set command")
        XCTAssertTrue(imported.stderr.contains("exec-set host_id=touch \(marker): evaluated by each node at its start"), imported.stderr)
        XCTAssertEqual(try db.column("SELECT command || ' ' || value FROM fsconf.global_variables ORDER BY position"),
                       ["set 1", "exec-set touch \(marker)", "env-set $FSCONF_SURELY_UNSET_VARIABLE"])
        let render = try fsconf(db, ["render", "dialplan", "default", "--global", "host_id=node-7", "--global", "region=eu"])
        XCTAssertTrue(render.stdout.contains("data=\"node-7 eu 1\""), "the node's own values: \(render.description)")
        let out = dir.url.appendingPathComponent("export")
        XCTAssertEqual(try fsconf(db, ["export", out.path]).status, 0)
        let vars = try String(contentsOf: out.appendingPathComponent("vars.xml"), encoding: .utf8)
        XCTAssertTrue(vars.contains("<X-PRE-PROCESS cmd=\"exec-set\" data=\"host_id=touch \(marker)\"/>"), vars)
        XCTAssertTrue(vars.contains("<X-PRE-PROCESS cmd=\"env-set\" data=\"region=$FSCONF_SURELY_UNSET_VARIABLE\"/>"), vars)
        XCTAssertTrue(try fsconf(db, ["import", out.appendingPathComponent("freeswitch.xml").path]).stdout.hasPrefix("nothing to change"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
    }

    /// The dialplan and chatplan forms FreeSWITCH reads are stored as written, served,
    /// exported, addressed by path, and their changes recorded and undone.
    func testDialplanFormsAndChatplanKeptAsWritten() throws {
        let db = try migrated()
        let dir = try TemporaryDirectory()
        try Data("""
            <document type="freeswitch/xml">
              <section name="dialplan">
                <context name="default">
                  <extension name="forms">
                    <condition field="destination_number"><expression><![CDATA[^(8[0-9]+)$]]></expression>
                      <action application="export"><![CDATA[sip_h_Call-Info=<sip:${domain_name}>;answer-after=0]]></action>
                      <action application="playback" data="beep.wav" loop="3"/>
                    </condition>
                    <condition regex="all">
                      <regex wday="1-7"/>
                      <regex field="caller_id_number"><expression>^1</expression></regex>
                      <action application="answer"/>
                    </condition>
                  </extension>
                </context>
              </section>
              <section name="chatplan">
                <context name="default">
                  <extension name="demo"><condition field="to" expression="^(.*)$">
                    <action application="reply" data="Hello, you said: ${body}"/>
                  </condition></extension>
                </context>
              </section>
            </document>
            """.utf8).write(to: dir.url.appendingPathComponent("freeswitch.xml"))
        let imported = try fsconf(db, ["import", dir.url.appendingPathComponent("freeswitch.xml").path])
        XCTAssertEqual(imported.status, 0, imported.description)
        let dp = try fsconf(db, ["render", "dialplan", "default"]).stdout
        for form in ["<expression>^(8[0-9]+)$</expression>", "<action application=\"export\">sip_h_Call-Info=&lt;sip:${domain_name}&gt;;answer-after=0</action>",
                     "loop=\"3\"", "<regex wday=\"1-7\"/>", "<regex field=\"caller_id_number\">"] {
            XCTAssertTrue(dp.contains(form), "render keeps \(form): \(dp)")
        }
        let out = dir.url.appendingPathComponent("export")
        XCTAssertEqual(try fsconf(db, ["export", out.path]).status, 0)
        let exported = try String(contentsOf: out.appendingPathComponent("dialplan/default.xml"), encoding: .utf8)
        XCTAssertTrue(exported.contains("<action application=\"export\">sip_h_Call-Info=") && exported.contains("<expression>^1</expression>"), exported)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("chatplan/default.xml").path))
        let chat = try fsconf(db, ["render", "chatplan", "default"])
        XCTAssertTrue(chat.stdout.contains("<section name=\"chatplan\">") && chat.stdout.contains("Hello, you said"), chat.description)
        // Paths, history, undo.
        let path = "chatplan/default/extension[name=demo]/condition[1]/action[1]/@data"
        XCTAssertEqual(try fsconf(db, ["get", path]).stdout.trimmingCharacters(in: .whitespacesAndNewlines), "Hello, you said: ${body}")
        XCTAssertEqual(try fsconf(db, ["get", "dialplan/default/extension[name=forms]/condition[1]/action[2]/@loop"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines), "3")
        let set = try fsconf(db, ["set", path, "Bye"])
        XCTAssertEqual(set.status, 0, set.description)
        let history = try fsconf(db, ["history", "chatplan/default"])
        XCTAssertTrue(history.stdout.contains("Bye"), history.description)
        let changeSet = try db.column("SELECT max(id)::text FROM fsconf.change_sets")[0]!
        XCTAssertEqual(try fsconf(db, ["undo", changeSet]).status, 0)
        XCTAssertTrue(try fsconf(db, ["render", "chatplan", "default"]).stdout.contains("Hello, you said"))
        XCTAssertTrue(try fsconf(db, ["list", "chatplan"]).stdout.contains("chatplan/default/@name = default"))
    }

    /// Bad input keeps its rules: one line naming file:line, exit 2, database unchanged.
    func testMalformedTreesStillFailWithFileAndLine() throws {
        let db = try migrated()
        let before = try fingerprint(db)
        let dir = try TemporaryDirectory()
        for (text, expected) in [("<document>\n<!DOCTYPE x [\n<section/>\n</document>\n", "freeswitch.xml:2: unclosed <!DOCTYPE"),
                                 ("<document>\n<section name=\"chatplan\">\n<context name=\"a\">\n</section>\n</document>\n",
                                  "freeswitch.xml:4: closing tag </section> does not match <context>")] {
            try Data(text.utf8).write(to: dir.url.appendingPathComponent("freeswitch.xml"))
            let r = try fsconf(db, ["import", dir.url.appendingPathComponent("freeswitch.xml").path])
            XCTAssertEqual(r.status, 2, r.description)
            XCTAssertTrue(r.stderr.hasPrefix("fsconf: \(expected)"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
        XCTAssertEqual(try fingerprint(db), before)
    }
}
