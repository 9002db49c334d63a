import FSConfCore
import FSConfAdminCore
import XCTest

/// Field paths, addresses, canonical listing, validation and MD5: pure, no database.
final class FieldPathTests: XCTestCase {
    func parse(_ s: String) throws -> FieldPath { try FieldPath.parse(s) }

    func testParsePrintRoundTrip() throws {
        for text in [
            "globals/default_password",
            "directory/example.com/user/1000/param/password",
            "directory/$${domain}/group/sales/member/1000",
            "directory/example.com/user/1000/gateway/gw1/variable/caller[direction=inbound]",
            "dialplan/default/extension[name=hold_music]/condition[1]/@expression",
            "dialplan/default/extension[3]/condition[2]/condition[1]/anti-action[1]/@data",
            "configuration/sofia.conf/profiles/profile[name=internal]/settings/param[name=sip-port]/@value",
            "languages/en/phrases/macros/macro[name=voicemail_enter_pass]/input[1]/@pattern",
            "configuration/x.conf/a/b/text()",
            "directory/\"my domain\"/user/\"a/b\"/param/\"x[1]=\\\"q\\\"\"",
        ] {
            let p = try parse(text)
            XCTAssertEqual(p.description, text, text)
            XCTAssertEqual(try parse(p.description), p)
        }
    }

    func testQuotingRules() throws {
        let p = FieldPath([FieldPath.Step("directory"), FieldPath.Step("a b"), FieldPath.Step("user"), FieldPath.Step("x/y"),
                           FieldPath.Step("param"), FieldPath.Step("")], leaf: nil)
        XCTAssertEqual(p.description, "directory/\"a b\"/user/\"x/y\"/param/\"\"")
        XCTAssertEqual(try parse(p.description), p)
        let sel = try parse("configuration/a.conf/param[name=\"a]b\"]/@value")
        XCTAssertEqual(sel.steps[2].selectors, [.match("name", "a]b")])
        XCTAssertEqual(sel.leaf, .attribute("value"))
        // An element literally named text() is quoted, so it is not the text leaf.
        XCTAssertEqual(try parse("configuration/a.conf/\"text()\"").leaf, nil)
        XCTAssertEqual(try parse("configuration/a.conf/text()").leaf, .text)
    }

    func testMalformedPathsAreRejected() {
        for bad in ["", "directory/", "directory//x", "directory/a b", "dialplan/d/extension[0]", "dialplan/d/extension[x",
                    "configuration/a/@v/more", "directory/\"open", "directory/a\\b", "directory/a=b", "x[1]/@", "dialplan/d/extension[-1]"] {
            XCTAssertThrowsError(try FieldPath.parse(bad), bad)
        }
    }

    func testAddresses() throws {
        func address(_ s: String) throws -> FieldAddress { try FieldAddress.resolve(try parse(s)) }
        XCTAssertEqual(try address("globals/x"), .globals(name: "x", scope: nil))
        XCTAssertEqual(try address("directory/d/user/u/param/password"),
                       .directory(DirectoryAddress(domain: "d", owner: .user("u"), field: .setting(kind: .param, name: "password", direction: nil))))
        XCTAssertEqual(try address("directory/d/gateway/g/variable/v[direction=outbound]"),
                       .directory(DirectoryAddress(domain: "d", gateway: "g", field: .setting(kind: .variable, name: "v", direction: "outbound"))))
        XCTAssertEqual(try address("directory/d/user/u/@number-alias"),
                       .directory(DirectoryAddress(domain: "d", owner: .user("u"), field: .column("number-alias"))))
        guard case .dialplan(let dp) = try address("dialplan/c/extension[name=x]/condition[2]/condition[1]/action[3]/@data") else { return XCTFail() }
        XCTAssertEqual(dp.context, "c")
        XCTAssertEqual(dp.extensionPick, .match("name", "x"))
        XCTAssertEqual(dp.conditions, [.index(2), .index(1)])
        XCTAssertEqual(dp.item, .action(.index(3)))
        XCTAssertEqual(dp.column, "data")
        guard case .tree(let t) = try address("configuration/sofia.conf/profiles/profile[name=internal]/@name") else { return XCTFail() }
        XCTAssertEqual(t.document, "sofia.conf")
        XCTAssertEqual(t.elements.map(\.tag), ["profiles", "profile"])
        XCTAssertEqual(t.elements.map(\.pick), [.only, .match("name", "internal")])
        for bad in ["nosuch/x", "globals/a/b", "directory/d/user/u/@nope", "directory/d/group/g/gateway/x",
                    "directory/d/user/u/member/x", "dialplan/c/action[1]", "dialplan/c/extension[name=x]/@expression",
                    "dialplan/c/extension[name=x]/condition[name=y]", "directory/d/user/u/param/p[direction=inbound]",
                    "directory/d/text()"] {
            XCTAssertThrowsError(try address(bad), bad)
        }
    }

    func testCanonicalSteps() {
        let steps = FieldListing.childSteps([("param", "a", nil), ("param", "b", nil), ("param", "a", nil), ("settings", nil, nil),
                                             ("x", nil, nil), ("x", nil, nil)])
        XCTAssertEqual(steps.map { FieldPath([$0]).description },
                       ["param[1]", "param[name=b]", "param[3]", "settings", "x[1]", "x[2]"])
        XCTAssertEqual(CanonicalStep.extensionStep(name: "a", sameName: 1, ordinal: 4), FieldPath.Step("extension", [.match("name", "a")]))
        XCTAssertEqual(CanonicalStep.extensionStep(name: "a", sameName: 2, ordinal: 4), FieldPath.Step("extension", [.index(4)]))
    }

    func testListingAndFieldDiff() throws {
        var tree = ConfigTree()
        tree.globals = [GlobalVariable(name: "g", value: "1")]
        var d = DomainEntity(name: "example.com")
        var u = UserEntity(userID: "1000")
        u.settings = [SettingEntity(kind: .param, name: "password", value: "p")]
        d.users = [u]
        tree.domains = [d]
        var c = ContextEntity(name: "default")
        var x = ExtensionEntity(name: "echo")
        var cond = ConditionEntity()
        cond.attributes = ["field": "destination_number", "expression": "^9196$"]
        cond.actions = [ActionEntity(application: "echo")]
        x.conditions = [cond]
        c.extensions = [x]
        tree.contexts = [c]
        tree.documents = [DocumentEntity(section: .configuration, name: "a.conf", root: try XMLTreeParser.parse(
            #"<configuration name="a.conf"><settings><param name="k" value="v"/></settings></configuration>"#))]
        let entries = FieldListing.entries(tree).map { "\($0.path) = \($0.value)" }
        for expected in ["globals/g = 1", "directory/example.com/user/1000/param/password = p",
                         "dialplan/default/extension[name=echo]/condition[1]/@expression = ^9196$",
                         "dialplan/default/extension[name=echo]/condition[1]/action[1]/@application = echo",
                         "configuration/a.conf/settings/param[name=k]/@value = v"] {
            XCTAssertTrue(entries.contains(expected), "\(expected) in \(entries)")
        }
        // Every listed path parses back to itself and resolves to an address.
        for e in FieldListing.entries(tree) {
            XCTAssertEqual(try FieldPath.parse(e.path.description), e.path)
            XCTAssertNoThrow(try FieldAddress.resolve(e.path), e.path.description)
        }
        var changed = tree
        changed.globals[0].value = "2"
        changed.domains[0].users[0].settings.append(SettingEntity(kind: .variable, name: "v", value: "x"))
        changed.contexts = []
        let lines = FieldDiff.compare(stored: FieldListing.entries(tree), tree: FieldListing.entries(changed)).map(\.description)
        XCTAssertTrue(lines.contains("~ globals/g: 1 -> 2"), "\(lines)")
        XCTAssertTrue(lines.contains("+ directory/example.com/user/1000/variable/v = x"), "\(lines)")
        XCTAssertTrue(lines.contains("- dialplan/default/@name = default"), "\(lines)")
        XCTAssertTrue(FieldDiff.compare(stored: FieldListing.entries(tree), tree: FieldListing.entries(tree)).isEmpty)
    }

    func testPathUnderPrefix() throws {
        let p = try parse("directory/d/user/u/param/password")
        XCTAssertTrue(p.isUnder(try parse("directory")))
        XCTAssertTrue(p.isUnder(try parse("directory/d/user/u")))
        XCTAssertFalse(p.isUnder(try parse("directory/d/user/u2")))
        XCTAssertFalse(p.isUnder(try parse("directory/d/user/u/param/password2")))
        XCTAssertTrue(try parse("dialplan/c/extension[1]/@name").isUnder(try parse("dialplan/c/extension[1]/@name")))
        XCTAssertFalse(try parse("dialplan/c/extension[1]/@continue").isUnder(try parse("dialplan/c/extension[1]/@name")))
    }

    func testMD5RFC1321Vectors() {
        let vectors = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            ("12345678901234567890123456789012345678901234567890123456789012345678901234567890", "57edf4a22be3c955ac49da2e2107b67a"),
        ]
        for (input, digest) in vectors { XCTAssertEqual(MD5.hex(input), digest, input) }
        XCTAssertEqual(MD5.hex(String(repeating: "x", count: 1000)), MD5.hex(Array(String(repeating: "x", count: 1000).utf8)))
        XCTAssertEqual(MD5.a1Hash(user: "1000", domain: "example.com", password: "secret"), MD5.hex("1000:example.com:secret"))
    }

    func testValueValidation() {
        XCTAssertNil(FieldValidation.xmlTextProblem("plain\ttab\nnewline\r and ünïcødé $${x} <&>"))
        XCTAssertNotNil(FieldValidation.xmlTextProblem("a\u{0}b"))
        XCTAssertNotNil(FieldValidation.xmlTextProblem("a\u{1B}b"))
        XCTAssertNotNil(FieldValidation.xmlTextProblem("bad \u{FFFD} byte"))
        let user = FieldAddress.directory(DirectoryAddress(domain: "d", owner: .user("u"), field: .setting(kind: .param, name: "x", direction: nil)))
        XCTAssertNil(FieldValidation.unknownParamWarning(user, name: "a1-hash"))
        XCTAssertNil(FieldValidation.unknownParamWarning(user, name: "vm-password"))
        XCTAssertTrue(FieldValidation.unknownParamWarning(user, name: "vm-pasword")?.contains("vm-password") ?? false)
        let variable = FieldAddress.directory(DirectoryAddress(domain: "d", owner: .user("u"), field: .setting(kind: .variable, name: "x", direction: nil)))
        XCTAssertNil(FieldValidation.unknownParamWarning(variable, name: "anything_goes"), "variables are free-form")
        let sofia = try! FieldAddress.resolve(try! FieldPath.parse("configuration/sofia.conf/profiles/profile[name=internal]/settings/param[name=sip-prot]/@value"))
        XCTAssertNotNil(FieldValidation.unknownParamWarning(sofia, name: "sip-prot"))
        XCTAssertNil(FieldValidation.unknownParamWarning(sofia, name: "sip-port"))
    }
}
