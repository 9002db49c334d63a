import FSConfCore
import FSConfAdminCore
import XCTest

/// Files in memory for the pre-processor.
struct MemoryFileSystem: PreProcessorFileSystem {
    var files: [String: String]
    func canonicalPath(_ path: String) -> String? {
        var parts: [Substring] = []
        for p in path.split(separator: "/") {
            if p == "." { continue }
            if p == ".." { _ = parts.popLast(); continue }
            parts.append(p)
        }
        let normal = "/" + parts.joined(separator: "/")
        return files[normal] == nil ? nil : normal
    }
    func size(_ path: String) -> Int? { files[path]?.utf8.count }
    func read(_ path: String) throws -> [UInt8] { Array(files[path]!.utf8) }
    func glob(_ pattern: String) -> [String] {
        // Enough for tests: "*" within the last path component.
        guard let star = pattern.firstIndex(of: "*") else { return files[pattern] == nil ? [] : [pattern] }
        let prefix = String(pattern[..<star]), suffix = String(pattern[pattern.index(after: star)...])
        return files.keys.filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) && !$0.dropFirst(prefix.count).contains("/") }.sorted()
    }
}

final class PreProcessorTests: XCTestCase {
    func run(_ files: [String: String], mode: PreProcessor.Mode = .keepReferences) throws -> PreProcessor {
        var pre = PreProcessor(fileSystem: MemoryFileSystem(files: files), mode: mode)
        try pre.run("/conf/freeswitch.xml")
        return pre
    }

    func testDirectivesIncludesAndTheLineMap() throws {
        let pre = try run([
            "/conf/freeswitch.xml": """
                <?xml version="1.0"?>
                <document type="freeswitch/xml">
                  <!-- even in a comment: <X-PRE-PROCESS cmd="set" data="in_comment=yes"/> -->
                  <X-PRE-PROCESS cmd="set" data=" domain = $${local_ip_v4} "/>
                  <section name="directory">
                    <X-PRE-PROCESS cmd="include" data="directory/*.xml"/>
                    <X-PRE-PROCESS cmd="include" data="none/*.xml"/>
                  </section>
                  <X-NO-PRE-PROCESS cmd="include" data="x.xml"/>
                  <!--#set "old=style"-->
                </document>
                """,
            "/conf/directory/b.xml": "<include>\n  <domain name=\"$${domain}\"/>\n</include>",
            "/conf/directory/a.xml": "<include>\n  <domain name=\"a\"/>\n</include>",
        ])
        XCTAssertEqual(pre.globals.map { "\($0.name)=\($0.value)" }, ["in_comment=yes", "domain=$${local_ip_v4}", "old=style"])
        XCTAssertEqual(pre.globals[1].location.description, "freeswitch.xml:4")
        let lines = pre.lines.map(\.text)
        XCTAssertEqual(lines.filter { $0.contains("domain name") }, ["  <domain name=\"a\"/>", "  <domain name=\"$${domain}\"/>"],
                       "sorted glob matches, references kept")
        XCTAssertTrue(lines.contains { $0.contains("X-NO-PRE-PROCESS") }, "not a directive: kept as an element")
        XCTAssertFalse(lines.contains { $0.contains("include>") || $0.contains("<?xml") })
        let aLine = pre.lines.firstIndex { $0.text.contains("name=\"a\"") }! + 1
        XCTAssertEqual(pre.location(ofOutputLine: aLine).description, "directory/a.xml:2")
    }

    func testExpandModeIsWhatFreeSWITCHLoads() throws {
        let pre = try run([
            "/conf/freeswitch.xml": """
                <document>
                  <X-PRE-PROCESS cmd="set" data="domain=$${local_ip_v4}"/>
                  <a v="$${domain}" w="$${unset}" x="${channel}"/>
                </document>
                """,
        ], mode: .expand(node: { $0 == "local_ip_v4" ? "192.0.2.1" : nil }))
        XCTAssertEqual(pre.lines.map(\.text)[1], "  <a v=\"192.0.2.1\" w=\"\" x=\"${channel}\"/>")
        XCTAssertEqual(pre.globals.first?.value, "192.0.2.1", "FreeSWITCH stores the expanded value")
    }

    func testMissingFileAndLoopNameFileAndLine() {
        XCTAssertThrowsError(try run(["/conf/freeswitch.xml": "<document>\n<X-PRE-PROCESS cmd=\"include\" data=\"gone.xml\"/>\n</document>"])) { e in
            XCTAssertEqual((e as? SourceError)?.description, "freeswitch.xml:2: included file gone.xml does not exist")
        }
        XCTAssertThrowsError(try run(["/conf/freeswitch.xml": "<document>\n<X-PRE-PROCESS cmd=\"include\" data=\"freeswitch.xml\"/>\n</document>"])) { e in
            XCTAssertEqual((e as? SourceError)?.description, "freeswitch.xml:2: include loop: freeswitch.xml → freeswitch.xml")
        }
    }

    func testImporterMapsAndReportsByOriginalLine() throws {
        let pre = try run([
            "/conf/freeswitch.xml": """
                <document type="freeswitch/xml">
                  <section name="directory">
                    <X-PRE-PROCESS cmd="include" data="d.xml"/>
                  </section>
                </document>
                """,
            "/conf/d.xml": """
                <include>
                  <domain name="$${domain}">
                    <groups><group name="g"><users>
                      <user id="1000" cidr="192.0.2.0/24"><params><param name="password" value="$${pw}"/></params><vcard><n>x</n></vcard></user>
                      <user id="1000" type="pointer"/>
                    </users></group></groups>
                    <wizard/>
                  </domain>
                </include>
                """,
        ])
        let importer = try ConfigImporter.load(pre, domainMap: ["$${domain}": "pbx.example.com"])
        let domain = try XCTUnwrap(importer.tree.domains.first)
        XCTAssertEqual(domain.name, "pbx.example.com")
        let user = try XCTUnwrap(domain.users.first)
        XCTAssertEqual(user.homeGroup, "g")
        XCTAssertEqual(user.settings, [SettingEntity(kind: .attribute, name: "cidr", value: "192.0.2.0/24"),
                                       SettingEntity(kind: .param, name: "password", value: "$${pw}")])
        XCTAssertEqual(user.extraXML, "<vcard><n>x</n></vcard>")
        XCTAssertEqual(domain.groups.first?.members, ["1000"])
        XCTAssertEqual(importer.unrepresentable.map(\.description), ["d.xml:7: <wizard> inside <domain name=\"pbx.example.com\">"])
    }

    func testDiffIsPerEntity() {
        var a = ConfigTree()
        a.globals = [GlobalVariable(name: "x", value: "1")]
        var d = DomainEntity(name: "d")
        d.users = [UserEntity(userID: "1"), UserEntity(userID: "2")]
        a.domains = [d]
        var b = a
        b.domains[0].users[1].numberAlias = "22"
        b.contexts = [ContextEntity(name: "default")]
        XCTAssertTrue(ConfigDiff(stored: a, imported: a).isEmpty)
        let diff = ConfigDiff(stored: a, imported: b)
        XCTAssertEqual(diff.entries.map(\.description), ["~ directory user 2@d", "+ dialplan context default (0 extensions)"])
        XCTAssertEqual(ConfigDiff(stored: b, imported: a, replace: [.dialplan]).entries.map(\.description),
                       ["~ directory user 2@d", "- dialplan context default"])
    }
}
