import FSConfAdminCore
import FSConfCore
import FSConfRegex
import XCTest

/// The one validator (FieldValidation) and the bounds on hostile input, without a
/// database: names, cacheable as FreeSWITCH reads it, extra-xml, whole trees for
/// import, `$${}` chains of any depth and cycles, nesting depth, includes.
final class FieldChecksTests: XCTestCase {
    func directory(_ field: DirectoryAddress.Field, owner: DirectoryAddress.Owner = .user("1000"), gateway: String? = nil) -> FieldAddress {
        .directory(DirectoryAddress(domain: "pbx.test", owner: owner, gateway: gateway, field: field))
    }

    func testNamesHoldNoControlCharacterEveryWayIn() {
        for bad in ["a\tb", "x\ny", "a\u{1}b", "a\rb", "a\u{7F}", "", "a\u{FFFD}"] {
            XCTAssertNotNil(FieldValidation.problem(directory(.column("id")), value: bad, regex: nil), bad.debugDescription)
            XCTAssertNotNil(FieldValidation.problem(directory(.column("name"), owner: .domain), value: bad, regex: nil), bad.debugDescription)
            XCTAssertNotNil(FieldValidation.problem(directory(.setting(kind: .param, name: bad, direction: nil)), value: "v", regex: nil),
                            "a new setting's name \(bad.debugDescription)")
        }
        // One line, control characters escaped: "user id \"a\\tb\": character 2 is the control character U+0009…"
        let message = FieldValidation.problem(directory(.column("id")), value: "a\tb", regex: nil)!
        XCTAssertFalse(message.contains("\t"), message)
        XCTAssertTrue(message.contains(#""a\tb""#) && message.contains("U+0009"), message)
        for good in ["1000", "$${default_provider}", "my user", "Jörg"] {
            XCTAssertNil(FieldValidation.problem(directory(.column("id")), value: good, regex: nil), good)
        }
        // Values may hold tab, LF and CR (XML character data), never other controls.
        XCTAssertNil(FieldValidation.problem(directory(.setting(kind: .param, name: "x", direction: nil)), value: "a\tb\nc", regex: nil))
        XCTAssertNotNil(FieldValidation.problem(directory(.setting(kind: .param, name: "x", direction: nil)), value: "a\u{1}", regex: nil))
        // An extension may be unnamed (FreeSWITCH allows it); a context may not.
        var ext = DialplanAddress(context: "default")
        ext.extensionPick = .index(1)
        ext.column = "name"
        XCTAssertNil(FieldValidation.problem(.dialplan(ext), value: "", regex: nil))
        XCTAssertNotNil(FieldValidation.problem(.dialplan(ext), value: "a\nb", regex: nil))
    }

    func testCacheableIsWhatFreeSWITCHReadsAsSuch() {
        // switch_xml.c: int cache_ms = atol(v); expires = now + (cache_ms * 1000) in int arithmetic.
        let user = directory(.column("cacheable")), domain = directory(.column("cacheable"), owner: .domain)
        for ok in ["true", "false", "0", "60000", "2147483", "0000002147483"] {
            XCTAssertNil(FieldValidation.problem(user, value: ok, regex: nil), ok)
        }
        for bad in ["2147484", "3600000", "86400000", "99999999999999999999", "-5", "1.5", "soon", ""] {
            XCTAssertNotNil(FieldValidation.problem(user, value: bad, regex: nil), bad)
        }
        XCTAssertNil(FieldValidation.problem(domain, value: "true", regex: nil))
        XCTAssertTrue(FieldValidation.problem(domain, value: "false", regex: nil)!.contains("a domain's cacheable takes true or milliseconds"))
        XCTAssertTrue(FieldValidation.problem(user, value: "86400000", regex: nil)!.contains("wraps"))
    }

    func testExtraXMLIsOnlyWellFormedElements() {
        XCTAssertEqual(FieldValidation.extraXML("<vcard>").problem, "extra-xml must be well-formed XML elements: <vcard> is not closed")
        XCTAssertEqual(FieldValidation.extraXML(#"</user><user id="evil">"#).problem,
                       "extra-xml must be well-formed XML elements: </user> closes an element it did not open")
        XCTAssertNotNil(FieldValidation.extraXML("plain text").problem)
        XCTAssertNotNil(FieldValidation.extraXML("").problem)
        // Re-serialised as import stores it: escaped, one line.
        XCTAssertEqual(FieldValidation.extraXML("<skinny a=\"1<2\">\n  <x/>\n</skinny><b>t&amp;u</b>").xml,
                       #"<skinny a="1&lt;2"><x/></skinny><b>t&amp;u</b>"#)
    }

    func testConditionPairingIsTheSchemasCheck() {
        XCTAssertNil(FieldValidation.conditionProblem(field: "destination_number", expression: "^1$", regex: nil))
        XCTAssertNil(FieldValidation.conditionProblem(field: nil, expression: nil, regex: nil))
        XCTAssertNil(FieldValidation.conditionProblem(field: "x", expression: nil, regex: "any"))
        XCTAssertNotNil(FieldValidation.conditionProblem(field: "destination_number", expression: nil, regex: nil))
        XCTAssertNotNil(FieldValidation.conditionProblem(field: nil, expression: "^1$", regex: nil))
    }

    func testReferencesExpandAtAnyDepthAndCyclesExpandToNothing() {
        // A password written through a chain deeper than any fixed bound still renders.
        var globals: [String: String] = [:]
        for i in 0..<10_000 { globals["v\(i)"] = "$${v\(i + 1)}" }
        globals["v10000"] = "S3cret"
        var expander = VariableExpander(globals: globals)
        XCTAssertEqual(expander.expand("pw=$${v0}"), "pw=S3cret")
        XCTAssertEqual(expander.expand("$${v9}-$${v5000}"), "S3cret-S3cret")
        XCTAssertNil(VariableExpander.cycle(from: "v0", globals: globals))
        // A cycle: refused at write (cycle(from:)), expands to nothing if stored anyway.
        let cyclic = ["a": "x$${b}", "b": "$${c}y", "c": "$${a}", "d": "$${a}!"]
        XCTAssertEqual(VariableExpander.cycle(from: "a", globals: cyclic), ["a", "b", "c", "a"])
        XCTAssertNil(VariableExpander.cycle(from: "d", globals: cyclic), "d reaches a cycle but is not on it")
        XCTAssertEqual(VariableExpander.cycle(from: "s", globals: ["s": "$${s}"]), ["s", "s"])
        var e = VariableExpander(globals: cyclic)
        XCTAssertEqual(e.expand("$${d}"), "xy!")
        // Names nobody knows come from the node; its values are final.
        var n = VariableExpander(globals: ["a": "$${local_ip_v4}"], node: { $0 == "local_ip_v4" ? "10.0.0.1$${a}" : nil })
        XCTAssertEqual(n.expand("$${a}"), "10.0.0.1$${a}")
    }

    func testImportLeavesOutWhatSetRefusesAndSaysWhere() {
        var tree = ConfigTree()
        tree.globals = [GlobalVariable(name: "ok", value: "1"), GlobalVariable(name: "loop", value: "$${loop}"),
                        GlobalVariable(name: "bad", value: "a\u{1}b")]
        var domain = DomainEntity(name: "pbx.test")
        var good = UserEntity(userID: "1000")
        good.settings = [SettingEntity(kind: .param, name: "password", value: "x"), SettingEntity(kind: .param, name: "vm", value: "a\u{1}")]
        good.cacheable = "86400000"
        domain.users = [good, UserEntity(userID: "a\u{1}b"), UserEntity(userID: "tab\tid")]
        var extra = UserEntity(userID: "1002")
        extra.extraXML = "<vcard>"
        domain.users.append(extra)
        tree.domains = [domain, DomainEntity(name: "x\ny")]
        var context = ContextEntity(name: "default")
        var bad = ExtensionEntity(name: "bad")
        var condition = ConditionEntity()
        condition.attributes = ["field": "destination_number", "expression": "^(1$"]
        bad.conditions = [condition]
        var fine = ExtensionEntity(name: "fine")
        condition.attributes = ["field": "destination_number", "expression": "^1$"]
        fine.conditions = [condition]
        context.extensions = [bad, fine]
        tree.contexts = [context]
        tree.documents = [DocumentEntity(section: .configuration, name: "x.conf",
                                         root: ParsedElement(name: "configuration", attributes: [("name", "x.conf"), ("v", "\u{1}")]))]
        let (checked, problems) = FieldValidation.check(tree, regex: PCRE2Compiler())
        XCTAssertEqual(checked.globals.map(\.name), ["ok"])
        XCTAssertEqual(checked.domains.map(\.name), ["pbx.test"])
        XCTAssertEqual(checked.domains[0].users.map(\.userID), ["1000"])
        XCTAssertEqual(checked.domains[0].users[0].settings.map(\.name), ["password"])
        XCTAssertNil(checked.domains[0].users[0].cacheable, "a cacheable FreeSWITCH misreads is left out, not the user")
        XCTAssertEqual(checked.contexts[0].extensions.map(\.name), ["fine"])
        XCTAssertTrue(checked.documents.isEmpty)
        let text = problems.joined(separator: "\n")
        for expected in ["globals/loop: loop refers back to itself", "globals/bad: invalid value", "directory/pbx.test/user/1000/param/vm: invalid value",
                         "directory/pbx.test/user/1000/@cacheable: cacheable 86400000", "U+0001, which a name cannot hold",
                         #"user id "tab\tid""#, "directory/pbx.test/user/1002/@extra-xml: extra-xml must be well-formed",
                         "dialplan/default/extension[name=bad]/condition[1]/@expression: expression \"^(1$\"", "configuration/x.conf/@v: invalid value"] {
            XCTAssertTrue(text.contains(expected), "missing \(expected) in\n\(text)")
        }
        XCTAssertFalse(text.contains("\n\n") || problems.contains { $0.contains("\n") }, "one line each")
    }

    func testNestingIsBoundedWhereverXMLComesIn() throws {
        // 40,000 levels crashed import (stack overflow); parsing is bounded, not recursive.
        let deep = String(repeating: "<a>", count: 40_000) + String(repeating: "</a>", count: 40_000)
        XCTAssertThrowsError(try XMLTreeParser.parse(deep)) { error in
            XCTAssertEqual((error as? XMLParseError)?.message, "elements nested deeper than 256 levels")
        }
        let ok = String(repeating: "<a>", count: 256) + String(repeating: "</a>", count: 256)
        XCTAssertNoThrow(try XMLTreeParser.parse(ok))
        XCTAssertNotNil(FieldValidation.extraXML(deep).problem)
    }

    func testIncludesOutsideTheTreeNeedAFlag() throws {
        let files = [
            "/conf/freeswitch.xml": "<document type=\"freeswitch/xml\">\n<X-PRE-PROCESS cmd=\"include\" data=\"/etc/shadow\"/>\n</document>",
            "/etc/shadow": "<x v=\"root:$6$hash\"/>",
        ]
        var pre = PreProcessor(fileSystem: MemoryFileSystem(files: files))
        XCTAssertThrowsError(try pre.run("/conf/freeswitch.xml")) { error in
            let message = (error as? SourceError)?.description ?? ""
            XCTAssertTrue(message.hasPrefix("freeswitch.xml:2: included file /etc/shadow is outside the tree's folder /conf"), message)
            XCTAssertTrue(message.contains("--allow-outside-includes"), message)
        }
        // Relative escapes are outside too.
        var relative = PreProcessor(fileSystem: MemoryFileSystem(files: [
            "/conf/freeswitch.xml": "<document>\n<X-PRE-PROCESS cmd=\"include\" data=\"../etc/shadow\"/>\n</document>",
            "/etc/shadow": "<x/>"]))
        XCTAssertThrowsError(try relative.run("/conf/freeswitch.xml"))
        var allowed = PreProcessor(fileSystem: MemoryFileSystem(files: files), allowOutsideIncludes: true)
        try allowed.run("/conf/freeswitch.xml")
        XCTAssertTrue(allowed.lines.contains { $0.text.contains("root:") })
        XCTAssertTrue(allowed.notes.contains { $0.description.contains("outside the tree's folder") })
    }

    func testAnEmptyFileIsNamedNotItsFolder() throws {
        var pre = PreProcessor(fileSystem: MemoryFileSystem(files: ["/conf/empty.xml": ""]))
        try pre.run("/conf/empty.xml")
        XCTAssertThrowsError(try ConfigImporter.load(pre)) { error in
            XCTAssertEqual((error as? SourceError)?.description, "empty.xml:1: root element missing")
        }
    }

    func testSecretNames() {
        for secret in ["password", "vm-password", "a1-hash", "vm-a1-hash", "reverse-auth-pass", "tls-passphrase", "odbc-dsn",
                       "default_password", "moderator-pin", "pin", "gateway-credentials", "api-token", "ESL-PASSWORD"] {
            XCTAssertTrue(FieldValidation.isSecretName(secret), secret)
        }
        for plain in ["username", "inbound-bypass-media", "dial-string", "pinger", "register", "passive"] {
            XCTAssertFalse(FieldValidation.isSecretName(plain), plain)
        }
    }
}
