@testable import fsconf
import FSConfAdminCore
import FSConfCore
import FSConfTestSupport
import Foundation
import XCTest

/// `fsconf node install` and `fsconf doctor` end to end: the built CLI on a node
/// laid out in a temporary folder (FreeSWITCH's scripts and lua.conf.xml), the
/// built library, a real database.
final class NodeInstallTests: XCTestCase {
    var vanilla: URL {
        TestEnvironment.sharedDirectory.appendingPathComponent("fixtures/freeswitch-conf/vanilla/autoload_configs/lua.conf.xml")
    }

    /// A node folder: scripts/, conf/lua.conf.xml (FreeSWITCH's stock one), lib/.
    func layout() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(at: dir.url.appendingPathComponent("scripts"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: dir.url.appendingPathComponent("conf"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: vanilla, to: dir.url.appendingPathComponent("conf/lua.conf.xml"))
        return dir
    }

    func install(_ dir: TemporaryDirectory, _ extra: [String] = [], conninfo: String = "dbname=fsconf",
                 environment: [String: String]? = nil) throws -> ProcessOutput {
        try runProcess(TestEnvironment.fsconfBinary,
                       ["node", "install", "--library", dir.path("lib/fsconf.so"), "--from", TestEnvironment.nodeLibrary.path,
                        "--scripts-dir", dir.path("scripts"), "--lua-conf", dir.path("conf/lua.conf.xml"),
                        "--conninfo", conninfo] + extra, environment: environment)
    }

    func read(_ dir: TemporaryDirectory, _ name: String) throws -> String {
        try String(contentsOfFile: dir.path(name), encoding: .utf8)
    }

    func testInstallsLibraryShimAndLuaConfOnceAndThenChangesNothing() throws {
        let dir = try layout()
        let first = try install(dir)
        XCTAssertEqual(first.status, 0, first.description)
        XCTAssertEqual(first.stdout, """
            library  \(dir.path("lib/fsconf.so")): installed from \(TestEnvironment.nodeLibrary.path)
            shim  \(dir.path("scripts/fsconf.lua")): written
            lua.conf.xml  \(dir.path("conf/lua.conf.xml")): xml handler bound; backup \(dir.path("conf/lua.conf.xml")).fsconf-backup

            """)
        XCTAssertTrue(first.stderr.contains("restart FreeSWITCH"), first.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: dir.path("lib/fsconf.so")), FileManager.default.contents(atPath: TestEnvironment.nodeLibrary.path))
        XCTAssertEqual(try read(dir, "conf/lua.conf.xml.fsconf-backup"), try String(contentsOf: vanilla, encoding: .utf8))
        let conf = try read(dir, "conf/lua.conf.xml")
        XCTAssertEqual(LuaConfFile(conf).handler(), .success(.init(script: dir.path("scripts/fsconf.lua"),
                                                                    bindings: ["directory", "dialplan", "chatplan", "configuration", "languages"])))
        XCTAssertEqual(ShimFile.parse(try read(dir, "scripts/fsconf.lua"))?.library, dir.path("lib/fsconf.so"))
        let shimInode = try FileManager.default.attributesOfItem(atPath: dir.path("scripts/fsconf.lua"))[.systemFileNumber] as? Int

        let second = try install(dir)
        XCTAssertEqual(second.status, 0, second.description)
        XCTAssertEqual(second.stdout.split(separator: "\n").map { $0.split(separator: ":").last.map(String.init) ?? "" },
                       [" unchanged", " unchanged", " unchanged"], second.stdout)
        XCTAssertFalse(second.stderr.contains("restart"), second.stderr)
        XCTAssertEqual(try read(dir, "conf/lua.conf.xml"), conf)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: dir.path("scripts/fsconf.lua"))[.systemFileNumber] as? Int, shimInode,
                       "an unchanged shim is not rewritten")

        // A new setting rewrites the shim only.
        let third = try install(dir, ["--pool-size", "8"])
        XCTAssertEqual(third.status, 0, third.description)
        XCTAssertTrue(third.stdout.contains("shim  \(dir.path("scripts/fsconf.lua")): rewritten"), third.stdout)
        XCTAssertTrue(try read(dir, "scripts/fsconf.lua").contains("\\npool_size=8"))
        XCTAssertEqual(try read(dir, "conf/lua.conf.xml"), conf)
    }

    /// A library FreeSWITCH has mapped is replaced by a rename, never written in
    /// place: the running process keeps reading the old file.
    func testANewLibraryReplacesTheOldFileWithoutWritingIntoIt() throws {
        let dir = try layout()
        XCTAssertEqual(try install(dir).status, 0)
        let old = try FileHandle(forReadingFrom: dir.url.appendingPathComponent("lib/fsconf.so"))
        defer { try? old.close() }
        var changed = try Data(contentsOf: TestEnvironment.nodeLibrary)
        changed.append(contentsOf: [0x66, 0x73])  // trailing bytes: still the same ELF
        try changed.write(to: dir.url.appendingPathComponent("new.so"))
        let out = try runProcess(TestEnvironment.fsconfBinary,
                                 ["node", "install", "--library", dir.path("lib/fsconf.so"), "--from", dir.path("new.so"),
                                  "--scripts-dir", dir.path("scripts"), "--lua-conf", dir.path("conf/lua.conf.xml"), "--conninfo", "dbname=fsconf"])
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stdout.contains("installed from \(dir.path("new.so"))"), out.stdout)
        XCTAssertEqual(try Data(contentsOf: dir.url.appendingPathComponent("lib/fsconf.so")), changed)
        try old.seek(toOffset: 0)
        XCTAssertEqual(try old.readToEnd(), try Data(contentsOf: TestEnvironment.nodeLibrary), "the old inode kept its bytes")
    }

    func testHandEditedLuaConfIsRefusedAndNothingIsWrittenUntilForce() throws {
        let dir = try layout()
        let own = try read(dir, "conf/lua.conf.xml")
            .replacingOccurrences(of: "<!--<param name=\"xml-handler-script\" value=\"/dp.lua\"/>-->",
                                  with: "<param name=\"xml-handler-script\" value=\"/dp.lua\"/>")
        try dir.write("conf/lua.conf.xml", own)
        let refused = try install(dir)
        XCTAssertEqual(refused.status, 5, refused.description)
        XCTAssertEqual(refused.stderr, "fsconf: refusing to change \(dir.path("conf/lua.conf.xml")): it already sets xml-handler-script=\"/dp.lua\" (edited by hand); give --force to replace them (the file is kept as \(dir.path("conf/lua.conf.xml")).fsconf-backup)\n")
        XCTAssertEqual(try read(dir, "conf/lua.conf.xml"), own)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path("lib/fsconf.so")), "a refusal writes nothing")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path("scripts/fsconf.lua")))

        let forced = try install(dir, ["--force"])
        XCTAssertEqual(forced.status, 0, forced.description)
        XCTAssertTrue(forced.stdout.contains("xml handler bound (replaced xml-handler-script=/dp.lua)"), forced.stdout)
        XCTAssertEqual(try read(dir, "conf/lua.conf.xml.fsconf-backup"), own)
        XCTAssertEqual(LuaConfFile(try read(dir, "conf/lua.conf.xml")).handlerParams.map(\.value),
                       [dir.path("scripts/fsconf.lua"), ShimOptions.defaultBindings])

        // fsconf's own lines edited by hand: refused as well.
        let edited = try read(dir, "conf/lua.conf.xml").replacingOccurrences(of: "value=\"\(ShimOptions.defaultBindings)\"",
                                                                                 with: "value=\"dialplan\"")
        try dir.write("conf/lua.conf.xml", edited)
        let again = try install(dir)
        XCTAssertEqual(again.status, 5, again.description)
        XCTAssertTrue(again.stderr.contains("its fsconf lines"), again.stderr)
        XCTAssertEqual(try read(dir, "conf/lua.conf.xml"), edited)
    }

    func testOptionsThatWouldHurtAreRefused() throws {
        let dir = try layout()
        let race = try install(dir, ["--bindings", "directory"])
        XCTAssertEqual(race.status, 2, race.description)
        XCTAssertTrue(race.stderr.contains("--bindings with directory must include configuration"), race.stderr)
        let notALibrary = try runProcess(TestEnvironment.fsconfBinary,
                                         ["node", "install", "--library", dir.path("lib/fsconf.so"), "--from", TestEnvironment.fsconfBinary.path,
                                          "--scripts-dir", dir.path("scripts"), "--lua-conf", dir.path("conf/lua.conf.xml")])
        XCTAssertEqual(notALibrary.status, 2, notALibrary.description)
        XCTAssertTrue(notALibrary.stderr.contains("cannot be installed: it exports no fsconf_xml_handler, luaopen_fsconf"), notALibrary.stderr)
        let missing = try runProcess(TestEnvironment.fsconfBinary,
                                     ["node", "install", "--library", dir.path("lib/none.so"), "--scripts-dir", dir.path("scripts"),
                                      "--lua-conf", dir.path("conf/lua.conf.xml")])
        XCTAssertEqual(missing.status, 4, missing.description)
        XCTAssertTrue(missing.stderr.contains("no node library at \(dir.path("lib/none.so")): install the fsconf-node package"), missing.stderr)
        try dir.write("conf/broken.xml", "<configuration><settings>\n")
        let malformed = try runProcess(TestEnvironment.fsconfBinary,
                                       ["node", "install", "--library", dir.path("lib/fsconf.so"), "--from", TestEnvironment.nodeLibrary.path,
                                        "--scripts-dir", dir.path("scripts"), "--lua-conf", dir.path("conf/broken.xml")])
        XCTAssertEqual(malformed.status, 1, malformed.description)
        XCTAssertTrue(malformed.stderr.contains("is not well-formed XML"), malformed.stderr)
        XCTAssertEqual(try read(dir, "conf/broken.xml"), "<configuration><settings>\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path("lib/fsconf.so")), "a refusal writes nothing")
    }

    func testDryRunAndNoLuaConfAndANewLuaConf() throws {
        let dir = try layout()
        let dry = try install(dir, ["--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.description)
        XCTAssertTrue(dry.stdout.contains("shim  \(dir.path("scripts/fsconf.lua")): would be written"), dry.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path("scripts/fsconf.lua")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path("lib/fsconf.so")))
        XCTAssertEqual(try read(dir, "conf/lua.conf.xml"), try String(contentsOf: vanilla, encoding: .utf8))

        let printed = try runProcess(TestEnvironment.fsconfBinary,
                                     ["node", "install", "--library", dir.path("lib/fsconf.so"), "--from", TestEnvironment.nodeLibrary.path,
                                      "--scripts-dir", dir.path("scripts"), "--no-lua-conf"])
        XCTAssertEqual(printed.status, 0, printed.description)
        XCTAssertTrue(printed.stdout.hasPrefix(ShimTemplate.luaConfLines(scriptPath: dir.path("scripts/fsconf.lua"),
                                                                         bindings: ShimOptions.defaultBindings)), printed.stdout)
        XCTAssertEqual(try read(dir, "conf/lua.conf.xml"), try String(contentsOf: vanilla, encoding: .utf8))

        let fresh = try runProcess(TestEnvironment.fsconfBinary,
                                   ["node", "install", "--library", dir.path("lib/fsconf.so"), "--scripts-dir", dir.path("scripts"),
                                    "--lua-conf", dir.path("conf/new/lua.conf.xml")])
        XCTAssertEqual(fresh.status, 1, "the folder does not exist: \(fresh.description)")
        try FileManager.default.createDirectory(at: dir.url.appendingPathComponent("conf/new"), withIntermediateDirectories: true)
        let created = try runProcess(TestEnvironment.fsconfBinary,
                                     ["node", "install", "--library", dir.path("lib/fsconf.so"), "--scripts-dir", dir.path("scripts"),
                                      "--lua-conf", dir.path("conf/new/lua.conf.xml")])
        XCTAssertEqual(created.status, 0, created.description)
        XCTAssertTrue(created.stdout.contains("lua.conf.xml  \(dir.path("conf/new/lua.conf.xml")): written"), created.stdout)
        XCTAssertNotNil(try XMLTreeParser.parse(try read(dir, "conf/new/lua.conf.xml")))
    }

    /// The whole path an administrator follows: install, then doctor — every check
    /// passes with the node's read-only role, the event socket double and a cacheable
    /// domain; then one hand edit makes it fail, with the fix, and exit 1.
    func testDoctorAfterInstallPassesEveryCheckThenCatchesAHandEdit() throws {
        let db = try TestDatabase(prefix: "nodeinstall")
        XCTAssertEqual(try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up"], environment: db.environment).status, 0)
        try db.connect().execute("""
            INSERT INTO fsconf.domains (name, cacheable) VALUES ('node.example', '2147483');
            INSERT INTO fsconf.users (domain_id, user_id) SELECT id, '1000' FROM fsconf.domains;
            """)
        let added = try runProcess(TestEnvironment.fsconfBinary, ["extension", "add", "default", "echo", "--condition",
                                                                   "destination_number=^9196$", "--action", "echo"], environment: db.environment)
        XCTAssertEqual(added.status, 0, added.description)
        let role = "install_node_\(getpid())"
        let admin = try db.connect()
        XCTAssertEqual(try runProcess(TestEnvironment.fsconfBinary, ["grant", "roles"], environment: db.environment).status, 0)
        try admin.execute("DROP ROLE IF EXISTS \(role); CREATE ROLE \(role) LOGIN")
        defer { _ = try? admin.execute("DROP ROLE IF EXISTS \(role)") }
        XCTAssertEqual(try runProcess(TestEnvironment.fsconfBinary, ["grant", "reader", role], environment: db.environment).status, 0)

        let dir = try layout()
        XCTAssertEqual(try install(dir, conninfo: "\(db.conninfo) user=\(role)", environment: db.environment).status, 0)
        let esl = try EventSocketDouble(password: "n0de")
        esl.reply(to: "status", with: "UP 0 years, 0 days, 0 hours, 1 minute\n")
        try dir.write("esl-password", "n0de\n")
        let doctorArgs = ["doctor", "--lua-conf", dir.path("conf/lua.conf.xml"), "--esl-port", String(esl.port),
                          "--esl-password-file", dir.path("esl-password"), "--freeswitch-user", "nobody-\(getpid())"]
        let doctor = try runProcess(TestEnvironment.fsconfBinary, doctorArgs, environment: db.environment)
        XCTAssertEqual(doctor.status, 0, doctor.description)
        let lines = doctor.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.map { $0.split(separator: ":").first.map(String.init) ?? "" },
                       ["[PASS] library", "[PASS] shim", "[PASS] lua.conf", "[PASS] database", "[PASS] schema", "[PASS] read-only",
                        "[PASS] lookup", "[PASS] event socket", "[PASS] cacheable", "[PASS] prerendered", "[PASS] clock",
                        "11 checks"], doctor.stdout)
        XCTAssertEqual(lines.last, "11 checks: 11 passed, 0 failed, 0 skipped")

        let conf = try read(dir, "conf/lua.conf.xml")
        try dir.write("conf/lua.conf.xml", conf.replacingOccurrences(of: ShimOptions.defaultBindings, with: "directory,dialplan"))
        let broken = try runProcess(TestEnvironment.fsconfBinary, doctorArgs + ["--no-agent"], environment: db.environment)
        XCTAssertEqual(broken.status, 1, broken.description)
        XCTAssertTrue(broken.stdout.contains("[FAIL] lua.conf: \(dir.path("conf/lua.conf.xml")): xml-handler-bindings binds directory without configuration"), broken.stdout)
        XCTAssertTrue(broken.stdout.contains("       fix: bind configuration too"), broken.stdout)
        XCTAssertTrue(broken.stdout.contains("[SKIP] event socket: --no-agent"), broken.stdout)
        XCTAssertTrue(broken.stdout.hasSuffix("11 checks: 8 passed, 1 failed, 2 skipped\n"), broken.stdout)

        // A context changed in SQL: read row by row until rendered again, which doctor says with the fix.
        try db.connect().execute("UPDATE fsconf.dialplan_actions SET data = 'changed in SQL'")
        let stale = try runProcess(TestEnvironment.fsconfBinary, doctorArgs, environment: db.environment)
        XCTAssertEqual(stale.status, 1, stale.description)
        XCTAssertTrue(stale.stdout.contains("[FAIL] prerendered: 1 of 1 context(s) changed (in SQL, or by an older fsconf) since they were rendered"), stale.stdout)
        XCTAssertTrue(stale.stdout.contains("       fix: fsconf prerender"), stale.stdout)
    }
}
