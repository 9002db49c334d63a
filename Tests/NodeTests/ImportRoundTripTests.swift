import FSConfAdminCore
import FSConfCore
import FSConfTestSupport
import Foundation
import XCTest

/// The vanilla corpus, imported and served back through the real node library (the
/// built .so, the generated shim, lua5.3 and the mod_lua-like harness), compared with
/// what FreeSWITCH finds in its own static tree for the same lookup.
final class ImportRoundTripTests: XCTestCase {
    /// Sections compared through the node. The node library serves only the directory
    /// section until issue 4 (dialplan/configuration/languages rendering) is merged.
    /// Every section the node library serves is compared through it.
    static let servedSections: Set<String> = ["directory", "dialplan", "configuration", "languages"]

    static var vanilla: URL {
        TestEnvironment.sharedDirectory.appendingPathComponent("fixtures/freeswitch-conf/vanilla/freeswitch.xml")
    }

    /// Values of FreeSWITCH's own globals (the node's), identical for the static tree's
    /// expansion and the harness's freeswitch.getGlobalVariable.
    static func nodeGlobals(referencedBy text: String, setNames: Set<String>) -> [String: String] {
        var out: [String: String] = [:]
        for name in Set(VariableExpander.references(in: text)) where !setNames.contains(name) {
            out[name] = name == "local_ip_v4" ? "192.0.2.10" : "node-\(name)"
        }
        out["local_ip_v4"] = "192.0.2.10"
        return out
    }

    func fsconf(_ db: TestDatabase, _ args: [String]) throws -> ProcessOutput {
        try runProcess(TestEnvironment.fsconfBinary, args, environment: db.environment)
    }

    struct Lookup {
        var section: String, tag: String, keyName: String, keyValue: String
        var params: [(String, String)]
        var label: String
        var json: String {
            func s(_ v: String) -> String {
                let data = try! JSONSerialization.data(withJSONObject: [v], options: [])
                let text = String(decoding: data, as: UTF8.self)
                return String(text.dropFirst().dropLast())
            }
            let p = params.map { "\(s($0.0)):\(s($0.1))" }.joined(separator: ",")
            return "{\"section\":\(s(section)),\"tag_name\":\(s(tag)),\"key_name\":\(s(keyName)),\"key_value\":\(s(keyValue)),\"params\":{\(p)}}"
        }
    }

    /// Runs every lookup through the shim in one harness process; one answer per lookup.
    func serve(_ lookups: [Lookup], db: TestDatabase, globals: [String: String], dir: TemporaryDirectory) throws -> [String?] {
        let shimDir = dir.url.appendingPathComponent("shim-\(db.name)")
        let shim = try fsconf(db, ["shim", "--out", shimDir.path, "--library", TestEnvironment.nodeLibrary.path,
                                   "--conninfo", "dbname=\(db.name)", "--bindings", "directory,dialplan,configuration,languages"])
        XCTAssertEqual(shim.status, 0, shim.description)
        let file = dir.url.appendingPathComponent("lookups-\(db.name).json")
        try Data(("{\"lookups\":[" + lookups.map(\.json).joined(separator: ",\n") + "]}").utf8).write(to: file)
        var env = db.environment
        for (k, v) in globals { env["FSCONF_HARNESS_GLOBAL_\(k)"] = v }
        let out = try runProcess(tool("lua5.3"), [TestEnvironment.repoRoot.appendingPathComponent("lua/harness/fsharness.lua").path,
                                                  shimDir.appendingPathComponent("fsconf.lua").path, file.path],
                                 environment: env, timeout: 300)
        XCTAssertEqual(out.status, 0, "harness: \(out.stderr.prefix(2000))")
        var answers: [String?] = Array(repeating: nil, count: lookups.count)
        var current: Int? = nil
        var buffer = ""
        for line in out.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("----- lookup "), let n = Int(line.dropFirst(13).prefix(while: { $0.isNumber })) {
                if let c = current { answers[c] = buffer.isEmpty ? nil : buffer }
                current = n - 1; buffer = ""
            } else if current != nil {
                buffer += (buffer.isEmpty ? "" : "\n") + line
            }
        }
        if let c = current { answers[c] = buffer.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : buffer }
        return answers
    }

    func testVanillaRoundTripThroughTheNodeAndExport() throws {
        let db = try TestDatabase(prefix: "rt")
        XCTAssertEqual(try fsconf(db, ["migrate", "up"]).status, 0)
        let started = Date()
        let imported = try fsconf(db, ["import", "--skip-unrepresentable", "--quiet", Self.vanilla.path])
        let seconds = Date().timeIntervalSince(started)
        XCTAssertEqual(imported.status, 0, imported.description)
        print("vanilla import: \(imported.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
        print(String(format: "vanilla import wall time (CLI process, debug build): %.2f s", seconds))

        // The static tree as FreeSWITCH loads it.
        var keep = PreProcessor(fileSystem: TestFileSystem())
        try keep.run(Self.vanilla.path)
        let globals = Self.nodeGlobals(referencedBy: keep.text, setNames: Set(keep.globals.map(\.name)))
        var expand = PreProcessor(fileSystem: TestFileSystem(), mode: .expand(node: { globals[$0] }))
        try expand.run(Self.vanilla.path)
        let staticTree = try XMLTreeParser.parse(expand.text)

        // Every lookup FreeSWITCH would make for the tree's entities.
        var lookups: [Lookup] = []
        var expected: [String] = []
        let directory = StaticLookup.section(staticTree, "directory")!
        for domain in directory.children("domain") {
            let domainName = domain.attribute("name")!
            var users: [ParsedElement] = domain.children("user")
            for group in domain.child("groups")?.children("group") ?? [] {
                users += group.child("users")?.children("user") ?? []
            }
            for user in users where user.attribute("type") != "pointer" {
                let id = user.attribute("id")!
                let found = StaticLookup.locateUser(staticTree, domain: domainName, user: id)!
                expected.append(StaticLookup.canonical(StaticLookup.mergedUser(found)))
                lookups.append(Lookup(section: "directory", tag: "domain", keyName: "name", keyValue: domainName,
                                      params: [("action", "sip_auth"), ("key", "id"), ("user", id), ("domain", domainName)],
                                      label: "directory user \(id)@\(domainName)"))
            }
        }
        let userCount = lookups.count
        var perSection: [String: Int] = ["directory": userCount]
        if Self.servedSections.contains("dialplan") {
            for context in try XCTUnwrap(StaticLookup.section(staticTree, "dialplan")).children("context") {
                let name = context.attribute("name")!
                expected.append(StaticLookup.canonical(context))
                lookups.append(Lookup(section: "dialplan", tag: "", keyName: "", keyValue: "",
                                      params: [("Hunt-Context", name), ("Caller-Context", name)], label: "dialplan context \(name)"))
                perSection["dialplan", default: 0] += 1
            }
        }
        for (section, tag) in [("configuration", "configuration"), ("languages", "language")] where Self.servedSections.contains(section) {
            for doc in try XCTUnwrap(StaticLookup.section(staticTree, section)).children(tag) {
                guard let name = doc.attribute("name") else { continue }
                // FreeSWITCH answers the first document of a name; later duplicates are never found.
                if lookups.contains(where: { $0.section == section && $0.keyValue == name }) { continue }
                expected.append(StaticLookup.canonical(doc))
                lookups.append(Lookup(section: section, tag: tag, keyName: "name", keyValue: name,
                                      params: section == "languages" ? [("lang", name)] : [], label: "\(section) \(name)"))
                perSection[section, default: 0] += 1
            }
        }

        let dir = try TemporaryDirectory()
        let answers = try serve(lookups, db: db, globals: globals, dir: dir)
        var mismatches: [String] = []
        for (k, lookup) in lookups.enumerated() {
            guard let answer = answers[k], let doc = try? XMLTreeParser.parse(answer) else {
                mismatches.append("\(lookup.label): no parsable answer"); continue
            }
            let got: ParsedElement?
            switch lookup.section {
            case "directory":
                let user = lookup.params.first { $0.0 == "user" }!.1
                got = StaticLookup.locateUser(doc, domain: lookup.keyValue, user: user).map(StaticLookup.mergedUser)
            case "dialplan":
                let name = lookup.params.first { $0.0 == "Hunt-Context" }!.1
                got = StaticLookup.locate(doc, section: "dialplan", tag: "context", keyName: "name", keyValue: name)
            default:
                got = StaticLookup.locate(doc, section: lookup.section, tag: lookup.tag, keyName: "name", keyValue: lookup.keyValue)
            }
            guard let got else { mismatches.append("\(lookup.label): not in the answer"); continue }
            let text = StaticLookup.canonical(got)
            if text != expected[k] {
                mismatches.append("\(lookup.label) differs:\n--- static\n\(expected[k])--- node\n\(text)")
            }
        }
        XCTAssertTrue(mismatches.isEmpty, mismatches.prefix(3).joined(separator: "\n"))
        let compared = perSection.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print("round trip compared through the node: \(compared); \(lookups.count - mismatches.count)/\(lookups.count) equal")
        let notServed = ["dialplan", "configuration", "languages"].filter { !Self.servedSections.contains($0) }
        if !notServed.isEmpty {
            print("not compared (the node library does not serve them yet, issue 4): \(notServed.joined(separator: ", "))")
        }

        // export → import into a fresh database → identical answers for every lookup.
        let exported = dir.url.appendingPathComponent("export")
        let export = try fsconf(db, ["export", exported.path])
        XCTAssertEqual(export.status, 0, export.description)
        // What is stored, for every section (not only those the node serves yet): the
        // exported tree, loaded the FreeSWITCH way, finds the same entities as the original.
        var fromExport = PreProcessor(fileSystem: TestFileSystem(), mode: .expand(node: { globals[$0] }))
        try fromExport.run(exported.appendingPathComponent("freeswitch.xml").path)
        let exportedTree = try XMLTreeParser.parse(fromExport.text)
        var storedCounts: [String: Int] = [:]
        var storedMismatches: [String] = []
        for (section, tag) in [("dialplan", "context"), ("configuration", "configuration"), ("languages", "language")] {
            var seen: Set<String> = []
            for e in try XCTUnwrap(StaticLookup.section(staticTree, section)).children(tag) {
                guard let name = e.attribute("name"), seen.insert(name).inserted else { continue }
                let mine = StaticLookup.locate(exportedTree, section: section, tag: tag, keyName: "name", keyValue: name)
                if mine.map(StaticLookup.canonical) != StaticLookup.canonical(e) { storedMismatches.append("\(section) \(name)") }
                storedCounts[section, default: 0] += 1
            }
        }
        for lookup in lookups where lookup.section == "directory" {
            let user = lookup.params.first { $0.0 == "user" }!.1
            let a = StaticLookup.locateUser(staticTree, domain: lookup.keyValue, user: user).map { StaticLookup.canonical(StaticLookup.mergedUser($0)) }
            let b = StaticLookup.locateUser(exportedTree, domain: lookup.keyValue, user: user).map { StaticLookup.canonical(StaticLookup.mergedUser($0)) }
            if a != b { storedMismatches.append(lookup.label) }
            storedCounts["directory users", default: 0] += 1
        }
        XCTAssertTrue(storedMismatches.isEmpty, "stored ≠ static: \(storedMismatches.prefix(10))")
        print("stored (via export) vs static tree: "
              + storedCounts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
              + "; \(storedMismatches.count) differ")

        let db2 = try TestDatabase(prefix: "rt2")
        XCTAssertEqual(try fsconf(db2, ["migrate", "up"]).status, 0)
        let reimported = try fsconf(db2, ["import", exported.appendingPathComponent("freeswitch.xml").path])
        XCTAssertEqual(reimported.status, 0, "the export holds nothing unrepresentable: \(reimported.description)")
        let again = try fsconf(db, ["import", exported.appendingPathComponent("freeswitch.xml").path])
        XCTAssertTrue(again.stdout.hasPrefix("nothing to change"), "export → import into the same database: \(again.description)")
        let answers2 = try serve(lookups, db: db2, globals: globals, dir: dir)
        let differing = lookups.indices.filter { answers[$0] != answers2[$0] }
        XCTAssertTrue(differing.isEmpty, "renders differ after export → import: \(differing.prefix(5).map { lookups[$0].label })")
        print("export → import: \(lookups.count - differing.count)/\(lookups.count) lookups render identically")
    }
}

/// The pre-processor's file access for tests.
struct TestFileSystem: PreProcessorFileSystem {
    func canonicalPath(_ path: String) -> String? {
        let url = URL(fileURLWithPath: path).resolvingSymlinksInPath()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { return nil }
        return url.path
    }
    func size(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
    }
    func read(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
    func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }
}
