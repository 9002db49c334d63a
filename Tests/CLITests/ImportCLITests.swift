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
        let first = try fsconf(db, ["import", "--skip-unrepresentable", tree])
        XCTAssertEqual(first.status, 0, first.description)
        print("vanilla import (debug build): \(first.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
        XCTAssertTrue(first.stderr.contains("skipped: freeswitch.xml:49: section \"chatplan\""), first.stderr)
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.change_sets WHERE source = 'import'"), ["1"])
        let summary = try db.column("SELECT summary FROM fsconf.change_sets")[0] ?? ""
        XCTAssertTrue(summary.contains("directory +1") && summary.contains("configuration +79"), summary)
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.users"), ["24"])
        XCTAssertEqual(try db.column("SELECT value FROM fsconf.user_settings s JOIN fsconf.users u ON u.id = s.user_id WHERE u.user_id = '1000' AND s.name = 'password'"),
                       ["$${default_password}"], "references are kept")
        XCTAssertEqual(try db.column("SELECT name FROM fsconf.domains"), ["$${domain}"])

        let before = try fingerprint(db)
        let second = try fsconf(db, ["import", "--skip-unrepresentable", tree])
        XCTAssertEqual(second.status, 0, second.description)
        XCTAssertTrue(second.stdout.hasPrefix("nothing to change"), second.stdout)
        XCTAssertEqual(try fingerprint(db), before)
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.change_sets"), ["1"], "no empty change set")
    }

    func testUnrepresentableFailsUnlessSkipped() throws {
        let db = try migrated()
        let before = try fingerprint(db)
        let out = try fsconf(db, ["import", Self.vanillaFolder.appendingPathComponent("freeswitch.xml").path])
        XCTAssertEqual(out.status, 2, out.description)
        XCTAssertTrue(out.stderr.contains("unrepresentable: freeswitch.xml:49: section \"chatplan\""), out.stderr)
        XCTAssertTrue(out.stderr.contains("unrepresentable: freeswitch.xml:67: <X-NO-PRE-PROCESS>"), out.stderr)
        XCTAssertEqual(try fingerprint(db), before)
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
        XCTAssertEqual(try db.column("SELECT name FROM fsconf.dialplan_contexts ORDER BY name"), ["default", "public", "skinny-patterns"])
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
}
