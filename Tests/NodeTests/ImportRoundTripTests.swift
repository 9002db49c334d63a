import FSConfAdminCore
import FSConfCore
import FSConfTestSupport
import Foundation
import XCTest

/// The vanilla corpus, imported and served back through the real node library (the
/// built .so, the generated shim, lua5.3 and the mod_lua-like harness), compared with
/// what FreeSWITCH finds in its own static tree for the same lookup.
final class ImportRoundTripTests: XCTestCase {
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
                                   "--conninfo", "dbname=\(db.name)", "--bindings", "directory,dialplan,chatplan,configuration,languages"])
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

    /// What `xml_locate SECTION TAG NAME VALUE` (mod_commands.c xml_locate_function)
    /// sends: the key in XML_REQUEST and these params, nothing else the planners read.
    static func xmlLocateParams(_ section: String, _ tag: String, _ value: String) -> [(String, String)] {
        [("Event-Name", "REQUEST_PARAMS"), ("Event-Calling-File", "mod_commands.c"),
         ("Event-Calling-Function", "xml_locate_function"), ("section", section), ("tag", tag),
         ("tag_attr_name", "name"), ("tag_attr_val", value)]
    }

    /// The static tree as FreeSWITCH loads it, and the node's globals.
    static func staticTree(_ tree: URL) throws -> (ParsedElement, [String: String]) {
        var keep = PreProcessor(fileSystem: TestFileSystem())
        try keep.run(tree.path)
        let globals = nodeGlobals(referencedBy: keep.text, setNames: Set(keep.globals.filter { !GlobalVariable.nodeEvaluated.contains($0.command) }.map(\.name)))
        var expand = PreProcessor(fileSystem: TestFileSystem(), mode: .expand(node: { globals[$0] }))
        try expand.run(tree.path)
        return (try XMLTreeParser.parse(expand.text), globals)
    }

    /// Every lookup FreeSWITCH would make for the tree's entities, as its modules send
    /// them and as `xml_locate` sends them, with the static answer each must equal.
    static func lookups(_ staticTree: ParsedElement) -> (lookups: [Lookup], expected: [String], perSection: [String: Int]) {
        var lookups: [Lookup] = []
        var expected: [String] = []
        var perSection: [String: Int] = [:]
        for domain in StaticLookup.section(staticTree, "directory")?.children("domain") ?? [] {
            let domainName = domain.attribute("name")!
            var users: [ParsedElement] = domain.children("user") + (domain.child("users")?.children("user") ?? [])
            for group in domain.child("groups")?.children("group") ?? [] {
                users += group.child("users")?.children("user") ?? []
            }
            for user in users where user.attribute("type") != "pointer" {
                let id = user.attribute("id")!
                guard let found = StaticLookup.locateUser(staticTree, domain: domainName, user: id), found.user.attribute("id") == id else { continue }
                expected.append(StaticLookup.canonical(StaticLookup.mergedUser(found)))
                lookups.append(Lookup(section: "directory", tag: "domain", keyName: "name", keyValue: domainName,
                                      params: [("action", "sip_auth"), ("key", "id"), ("user", id), ("domain", domainName)],
                                      label: "directory user \(id)@\(domainName)"))
                perSection["directory", default: 0] += 1
            }
        }
        // Dialplan: as mod_dialplan_xml asks (Hunt-Context) and as xml_locate asks
        // (tag context, key name). Chatplan: as mod_sms asks (the message event's
        // "context") and as xml_locate asks.
        for (section, params) in [("dialplan", { (n: String) in [("Hunt-Context", n), ("Caller-Context", n)] }),
                                  ("chatplan", { (n: String) in [("Event-Name", "MESSAGE"), ("proto", "sip"), ("from", "1000@example.com"),
                                                                  ("to", "1001@example.com"), ("body", "hi"), ("context", n)] })] {
            var seen: Set<String> = []
            for context in StaticLookup.section(staticTree, section)?.children("context") ?? [] {
                let name = context.attribute("name")!
                guard seen.insert(name.lowercased()).inserted else { continue }
                expected.append(StaticLookup.canonical(context))
                lookups.append(Lookup(section: section, tag: "", keyName: "", keyValue: "", params: params(name),
                                      label: "\(section) context \(name)"))
                expected.append(StaticLookup.canonical(context))
                lookups.append(Lookup(section: section, tag: "context", keyName: "name", keyValue: name,
                                      params: xmlLocateParams(section, "context", name), label: "xml_locate \(section) context name \(name)"))
                perSection[section, default: 0] += 2
            }
        }
        for (section, tag) in [("configuration", "configuration"), ("languages", "language")] {
            var seen: Set<String> = []
            for doc in StaticLookup.section(staticTree, section)?.children(tag) ?? [] {
                guard let name = doc.attribute("name") else { continue }
                // FreeSWITCH answers the first document of a name; later duplicates are never found.
                guard seen.insert(name.lowercased()).inserted else { continue }
                expected.append(StaticLookup.canonical(doc))
                lookups.append(Lookup(section: section, tag: tag, keyName: "name", keyValue: name,
                                      params: section == "languages" ? [("lang", name)] : xmlLocateParams(section, tag, name),
                                      label: "\(section) \(name)"))
                perSection[section, default: 0] += 1
            }
        }
        return (lookups, expected, perSection)
    }

    /// What each answer holds for its lookup, the way FreeSWITCH finds it, against the
    /// static answer. Returns one line per mismatch.
    static func mismatches(_ lookups: [Lookup], _ answers: [String?], _ expected: [String]) -> [String] {
        var out: [String] = []
        for (k, lookup) in lookups.enumerated() {
            guard let answer = answers[k], let doc = try? XMLTreeParser.parse(answer) else {
                out.append("\(lookup.label): no parsable answer"); continue
            }
            let got: ParsedElement?
            switch lookup.section {
            case "directory":
                let user = lookup.params.first { $0.0 == "user" }!.1
                got = StaticLookup.locateUser(doc, domain: lookup.keyValue, user: user).map(StaticLookup.mergedUser)
            case "dialplan", "chatplan":
                let name = lookup.keyValue.isEmpty
                    ? lookup.params.first { $0.0 == "Hunt-Context" || $0.0 == "context" }!.1 : lookup.keyValue
                got = StaticLookup.locate(doc, section: lookup.section, tag: "context", keyName: "name", keyValue: name)
            default:
                got = StaticLookup.locate(doc, section: lookup.section, tag: lookup.tag, keyName: "name", keyValue: lookup.keyValue)
            }
            guard let got else { out.append("\(lookup.label): not in the answer"); continue }
            let text = StaticLookup.canonical(got)
            if text != expected[k] {
                out.append("\(lookup.label) differs:\n--- static\n\(expected[k])--- node\n\(text)")
            }
        }
        return out
    }

    /// A plain import: no flag, nothing reported unrepresentable or skipped.
    func importPlain(_ db: TestDatabase, _ tree: URL) throws -> ProcessOutput {
        XCTAssertEqual(try fsconf(db, ["migrate", "up"]).status, 0)
        let imported = try fsconf(db, ["import", tree.path])
        XCTAssertEqual(imported.status, 0, imported.description)
        XCTAssertFalse(imported.stderr.contains("unrepresentable") || imported.stderr.contains("skipped"), imported.stderr)
        return imported
    }

    func testVanillaRoundTripThroughTheNodeAndExport() throws {
        let db = try TestDatabase(prefix: "rt")
        let started = Date()
        let imported = try importPlain(db, Self.vanilla)
        let seconds = Date().timeIntervalSince(started)
        print("vanilla import: \(imported.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
        print(String(format: "vanilla import wall time (CLI process, debug build): %.2f s", seconds))
        XCTAssertTrue(imported.stderr.contains("X-NO-PRE-PROCESS"), "the inert lines are noted: \(imported.stderr)")

        let (staticTree, globals) = try Self.staticTree(Self.vanilla)
        let (lookups, expected, perSection) = Self.lookups(staticTree)
        XCTAssertGreaterThan(perSection["chatplan"] ?? 0, 0, "vanilla's chatplan is looked up")
        let dir = try TemporaryDirectory()
        let answers = try serve(lookups, db: db, globals: globals, dir: dir)
        let mismatches = Self.mismatches(lookups, answers, expected)
        XCTAssertTrue(mismatches.isEmpty, mismatches.prefix(3).joined(separator: "\n"))
        let compared = perSection.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print("round trip compared through the node: \(compared); \(lookups.count - mismatches.count)/\(lookups.count) equal")

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
        for (section, tag) in [("dialplan", "context"), ("chatplan", "context"), ("configuration", "configuration"), ("languages", "language")] {
            var seen: Set<String> = []
            for e in StaticLookup.section(staticTree, section)?.children(tag) ?? [] {
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

    /// FreeSWITCH's other stock trees that load on their own (conf/minimal, sbc,
    /// softphone, testing in its source; copies under Tests/Fixtures/freeswitch-conf):
    /// each imports with no flag and nothing skipped, and every lookup it supports
    /// renders through the node equal to the static tree.
    func testOtherStockTreesImportPlainAndRenderAsTheStaticTree() throws {
        let fixtures = TestEnvironment.repoRoot.appendingPathComponent("Tests/Fixtures/freeswitch-conf")
        let dir = try TemporaryDirectory()
        for name in ["minimal", "sbc", "softphone", "testing"] {
            let tree = fixtures.appendingPathComponent("\(name)/freeswitch.xml")
            let db = try TestDatabase(prefix: "st")
            _ = try importPlain(db, tree)
            let (staticTree, globals) = try Self.staticTree(tree)
            let (lookups, expected, perSection) = Self.lookups(staticTree)
            XCTAssertGreaterThan(lookups.count, 0, name)
            let answers = try serve(lookups, db: db, globals: globals, dir: dir)
            let mismatches = Self.mismatches(lookups, answers, expected)
            XCTAssertTrue(mismatches.isEmpty, "\(name): " + mismatches.prefix(3).joined(separator: "\n"))
            let compared = perSection.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            print("stock tree \(name): \(compared); \(lookups.count - mismatches.count)/\(lookups.count) equal")
        }
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
