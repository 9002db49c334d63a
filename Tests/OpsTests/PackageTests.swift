import FSConfAdminCore
import FSConfCore
import FSConfTestSupport
import Foundation
import XCTest

/// The Debian packages scripts/package builds (scripts/test builds them on a full
/// run and passes their folder as FSCONF_PACKAGES): they install into a throwaway
/// root with `dpkg --root`, the installed CLI runs, installs a node and answers
/// through the installed library in lua5.3 with the harness; purging removes them.
final class PackageTests: XCTestCase {
    func packages() throws -> URL {
        guard let path = ProcessInfo.processInfo.environment["FSCONF_PACKAGES"] else {
            throw XCTSkip("packages not built: scripts/test builds them on a full run (FSCONF_PACKAGE_TEST=1 forces it)")
        }
        return URL(fileURLWithPath: path)
    }

    func one(_ dir: URL, prefix: String, suffix: String) throws -> URL {
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) }
        XCTAssertEqual(names.count, 1, "\(prefix)*\(suffix) in \(dir.path): \(names)")
        return dir.appendingPathComponent(try XCTUnwrap(names.first))
    }

    func dpkg(_ args: [String]) throws -> ProcessOutput {
        try runProcess(tool("dpkg"), args)
    }

    /// A dpkg database that lists only the packages ours depend on, as this host has
    /// them installed (their files are the host's: the installed programs run here).
    func cleanRoot(for debs: [URL]) throws -> TemporaryDirectory {
        let root = try TemporaryDirectory()
        let admin = root.url.appendingPathComponent("var/lib/dpkg")
        for sub in ["info", "updates", "triggers"] {
            try FileManager.default.createDirectory(at: admin.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        var status = ""
        var seen: Set<String> = []
        for deb in debs {
            let depends = try runProcess(tool("dpkg-deb"), ["-f", deb.path, "Depends"]).stdout
            for clause in depends.split(separator: ",") {
                let name = String(clause.trimmingCharacters(in: .whitespaces).prefix { $0 != " " && $0 != "(" })
                guard !name.hasPrefix("fsconf"), seen.insert(name).inserted else { continue }
                let stanza = try runProcess(tool("dpkg-query"), ["-s", name])
                XCTAssertEqual(stanza.status, 0, "\(name), a dependency, is not installed here: \(stanza)")
                status += stanza.stdout.trimmingCharacters(in: .newlines) + "\n\n"
                let arch = stanza.stdout.split(separator: "\n").first { $0.hasPrefix("Architecture: ") }.map { String($0.dropFirst(14)) } ?? ""
                for list in ["\(name).list", "\(name):\(arch).list"] {
                    FileManager.default.createFile(atPath: admin.appendingPathComponent("info/\(list)").path, contents: Data())
                }
            }
        }
        try status.write(to: admin.appendingPathComponent("status"), atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: admin.appendingPathComponent("available").path, contents: Data())
        return root
    }

    func testPackagesInstallIntoACleanRootAndTheInstalledCLIAndLibraryWork() throws {
        let dir = try packages()
        let cli = try one(dir, prefix: "fsconf_", suffix: ".deb")
        let node = try one(dir, prefix: "fsconf-node_", suffix: ".deb")
        let agent = try one(dir, prefix: "fsconf-agent_", suffix: "_all.deb")
        let version = try runProcess(tool("dpkg-deb"), ["-f", cli.path, "Version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try runProcess(tool("dpkg-deb"), ["-f", agent.path, "Depends"]).stdout, "fsconf (= \(version))\n")
        XCTAssertTrue(try runProcess(tool("dpkg-deb"), ["-f", node.path, "Depends"]).stdout.contains("libpq5 (>= 14)"))

        let root = try cleanRoot(for: [cli, node, agent])
        let install = try dpkg(["--root=\(root.url.path)", "--force-script-chrootless", "-i", cli.path, node.path, agent.path])
        XCTAssertEqual(install.status, 0, install.description)
        let status = try dpkg(["--root=\(root.url.path)", "-s", "fsconf-agent"])
        XCTAssertTrue(status.stdout.contains("Status: install ok installed"), status.description)
        XCTAssertTrue(status.stdout.contains("Conffiles:\n /etc/fsconf/esl-password "), status.stdout)

        // What is where, with which modes.
        func attributes(_ path: String) throws -> [FileAttributeKey: Any] { try FileManager.default.attributesOfItem(atPath: root.path(path)) }
        XCTAssertEqual(try attributes("usr/bin/fsconf")[.posixPermissions] as? Int, 0o755)
        XCTAssertEqual(try attributes("usr/lib/fsconf/fsconf.so")[.posixPermissions] as? Int, 0o644)
        XCTAssertEqual(try attributes("etc/fsconf/esl-password")[.posixPermissions] as? Int, 0o600, "the event socket password is root's only")
        XCTAssertEqual(try attributes("etc/fsconf/esl-password")[.ownerAccountID] as? Int, 0)
        let unit = try String(contentsOfFile: root.path("lib/systemd/system/fsconf-agent.service"), encoding: .utf8)
        XCTAssertTrue(unit.contains("ExecStart=/usr/bin/fsconf agent "), unit)
        XCTAssertTrue(unit.contains("LoadCredential=esl-password:/etc/fsconf/esl-password"), unit)
        let migrations = try FileManager.default.contentsOfDirectory(atPath: root.path("usr/share/fsconf/migrations")).sorted()
        XCTAssertEqual(migrations, try FileManager.default.contentsOfDirectory(atPath: TestEnvironment.repoRoot.appendingPathComponent("migrations").path)
            .filter { $0.hasSuffix(".sql") }.sorted())
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.path("usr/share/doc/fsconf/docs/operations.md")))

        // No Swift toolchain needed: neither binary asks for the Swift runtime.
        let cliELF = try ELFFile.parse([UInt8](try Data(contentsOf: root.url.appendingPathComponent("usr/bin/fsconf"))))
        XCTAssertEqual(cliELF.forbiddenNeeded, [], "the CLI needs \(cliELF.needed)")
        let libELF = try ELFFile.parse([UInt8](try Data(contentsOf: root.url.appendingPathComponent("usr/lib/fsconf/fsconf.so"))))
        XCTAssertEqual(libELF.forbiddenNeeded, [])
        XCTAssertTrue(libELF.noDelete)
        XCTAssertTrue(libELF.exports.isSuperset(of: ["fsconf_xml_handler", "luaopen_fsconf"]))

        // The installed CLI runs: migrate, node install (its default library is the
        // package's, beside its bin folder), and a lookup through the installed library.
        let installed = root.url.appendingPathComponent("usr/bin/fsconf")
        XCTAssertEqual(try runProcess(installed, ["--version"]).stdout, "\(version)\n")
        let db = try TestDatabase(prefix: "package")
        let up = try runProcess(installed, ["migrate", "up"], environment: db.environment)
        XCTAssertEqual(up.status, 0, up.description)
        try db.connect().execute("""
            INSERT INTO fsconf.domains (name) VALUES ('pkg.example');
            INSERT INTO fsconf.users (domain_id, user_id) SELECT id, '1000' FROM fsconf.domains;
            """)
        try FileManager.default.createDirectory(at: root.url.appendingPathComponent("scripts"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.url.appendingPathComponent("conf"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: TestEnvironment.sharedDirectory.appendingPathComponent("fixtures/freeswitch-conf/vanilla/autoload_configs/lua.conf.xml"),
                                         to: root.url.appendingPathComponent("conf/lua.conf.xml"))
        let nodeInstall = try runProcess(installed, ["node", "install", "--scripts-dir", root.path("scripts"),
                                                     "--lua-conf", root.path("conf/lua.conf.xml"), "--conninfo", db.conninfo],
                                         environment: db.environment)
        XCTAssertEqual(nodeInstall.status, 0, nodeInstall.description)
        XCTAssertTrue(nodeInstall.stdout.hasPrefix("library  \(root.path("usr/lib/fsconf/fsconf.so")): present\n"), nodeInstall.stdout)
        let lookup = try runProcess(tool("lua5.3"),
                                    [NodeSetup.harness.path, root.path("scripts/fsconf.lua"), "--section", "directory", "--tag", "domain",
                                     "--key-name", "name", "--key-value", "pkg.example", "--param", "action=sip_auth",
                                     "--param", "key=id", "--param", "user=1000", "--param", "domain=pkg.example"],
                                    environment: db.environment)
        XCTAssertEqual(lookup.status, 0, lookup.description)
        XCTAssertTrue(lookup.stdout.contains("<user id=\"1000\""), lookup.description)
        let doctor = try runProcess(installed, ["doctor", "--lua-conf", root.path("conf/lua.conf.xml"), "--no-agent"], environment: db.environment)
        for check in ["[PASS] library: \(root.path("usr/lib/fsconf/fsconf.so")) loads in lua5.3", "[PASS] shim:", "[PASS] lua.conf:",
                      "[PASS] database:", "[PASS] schema:", "[PASS] lookup:"] {
            XCTAssertTrue(doctor.stdout.contains(check), "\(check) in \(doctor.stdout)")
        }

        // Purged, nothing of ours is left, the root-only secret included.
        let purge = try dpkg(["--root=\(root.url.path)", "--force-script-chrootless", "--purge", "fsconf-agent", "fsconf-node", "fsconf"])
        XCTAssertEqual(purge.status, 0, purge.description)
        for path in ["usr/bin/fsconf", "usr/lib/fsconf/fsconf.so", "etc/fsconf/esl-password", "lib/systemd/system/fsconf-agent.service"] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: root.path(path)), "\(path) is still there")
        }
    }

    func testTheTarballHoldsTheSameArtefacts() throws {
        let dir = try packages()
        let tarball = try one(dir, prefix: "fsconf-", suffix: ".tar.gz")
        let listing = try runProcess(tool("tar"), ["-tzf", tarball.path])
        XCTAssertEqual(listing.status, 0, listing.description)
        let top = tarball.lastPathComponent.replacingOccurrences(of: ".tar.gz", with: "")
        for file in ["bin/fsconf", "lib/fsconf/fsconf.so", "share/fsconf/shim.lua.in", "share/fsconf/migrations/0001_initial_schema.sql"] {
            XCTAssertTrue(listing.stdout.contains("\(top)/\(file)\n"), "\(file) in \(listing.stdout)")
        }
    }
}
