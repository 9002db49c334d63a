import FSConfAdminCore
import FSConfCore
import XCTest

/// Scopes in field paths and trees (docs/cluster.md, docs/cli.md): the `{…}` block,
/// canonical steps of variants, a node's view of a tree, what a site's import shares.
final class ScopePathTests: XCTestCase {
    func scope(_ text: String) throws -> Scope { try Scope.parse(text).get() }

    func testScopeBlocksParseAndPrintBack() throws {
        for text in [
            "configuration/sofia.conf/profiles/profile[name=internal]/settings/param[name=sip-ip]{@eu,sitea}/@value",
            "directory/$${domain}/user/1000{sitea}/gateway/carrier{@eu}/param/proxy",
            "directory/example.com{siteb}/@cacheable",
            "globals/outbound_proxy{sitea}",
            "dialplan/default{sitea}/extension[name=ring]{siteb}/condition[1]/@expression",
            "dialplan/default/extension[2]{sitea}",
            "configuration/x.conf/a/b[3]{n1}/text()",
            "directory/\"a{b}\"/user/\"x}\"",
        ] {
            let path = try FieldPath.parse(text)
            XCTAssertEqual(path.description, text)
            XCTAssertEqual(try FieldPath.parse(path.description), path, text)
        }
        // Blocks are normalised: lower case, sorted, unique.
        XCTAssertEqual(try FieldPath.parse("globals/x{SiteB, sitea,@EU,sitea}").description, "globals/x{@eu,sitea,siteb}")
        let p = try FieldPath.parse("directory/$${domain}{sitea}/user/1000")
        XCTAssertEqual(p.steps[1].name, "$${domain}", "a $${…} reference is part of the name")
        XCTAssertEqual(p.steps[1].scope, try scope("sitea"))
        XCTAssertNil(p.steps[3].scope)
        XCTAssertEqual(FieldPath([FieldPath.Step("directory"), FieldPath.Step("a{b}")]).description, "directory/\"a{b}\"")
        XCTAssertEqual(FieldPath([FieldPath.Step("globals"), FieldPath.Step("x${y}z")]).description, "globals/x${y}z")
        for bad in ["globals/x{}", "globals/x{bad name}", "globals/x{sitea", "globals/x}y", "globals/x{a}{b}",
                    "globals/x{-a}", "directory/$${domain/user/1"] {
            XCTAssertThrowsError(try FieldPath.parse(bad), bad)
        }
    }

    func testScopesAddressTheirEntities() throws {
        func address(_ s: String) throws -> FieldAddress { try FieldAddress.resolve(try FieldPath.parse(s)) }
        XCTAssertEqual(try address("globals/x{sitea}"), .globals(name: "x", scope: try scope("sitea")))
        guard case .directory(let d) = try address("directory/d{@eu}/user/u{sitea}/gateway/g{siteb}/param/proxy") else { return XCTFail() }
        XCTAssertEqual(d.domainScope, try scope("@eu"))
        XCTAssertEqual(d.userScope, try scope("sitea"))
        XCTAssertEqual(d.gatewayScope, try scope("siteb"))
        XCTAssertEqual(d.owner, .user("u"))
        XCTAssertEqual(d.gateway, "g")
        guard case .dialplan(let x) = try address("dialplan/c{a}/extension[name=r]{b}/condition[1]/@field") else { return XCTFail() }
        XCTAssertEqual(x.contextScope, try scope("a"))
        XCTAssertEqual(x.extensionScope, try scope("b"))
        guard case .tree(let t) = try address("configuration/sofia.conf{a}/profiles/profile[name=internal]{b}/settings/param[name=x]/@value")
        else { return XCTFail() }
        XCTAssertEqual(t.documentScope, try scope("a"))
        XCTAssertEqual(t.elements.map(\.scope), [nil, try scope("b"), nil, nil])
        // Only what FreeSWITCH looks up is limited to nodes.
        for bad in ["directory/d/group/g{a}/param/x", "directory/d/user/u/param/p{a}", "dialplan/c/extension[1]/condition[1]{a}",
                    "directory/d/user/u/gateway{a}/g", "globals{a}/x", "directory/d/group/g/member/u{a}"] {
            XCTAssertThrowsError(try address(bad), bad) { error in
                XCTAssertTrue("\(error)".contains("scope"), "\(bad): \(error)")
            }
        }
    }

    func testCanonicalStepsCountEachScopeApart() throws {
        let a = try scope("sitea")
        let steps = FieldListing.childSteps([("param", "sip-ip", nil), ("param", "sip-ip", a), ("param", "x", nil), ("x", nil, nil),
                                             ("x", nil, a), ("x", nil, a)])
        XCTAssertEqual(steps.map { FieldPath([$0]).description },
                       ["param[name=sip-ip]", "param[name=sip-ip]{sitea}", "param[name=x]", "x", "x[1]{sitea}", "x[2]{sitea}"])
    }

    /// A stored tree with variants, as `ConfigStore.load(.all)` gives it.
    func tree() throws -> ConfigTree {
        var t = ConfigTree()
        var g = GlobalVariable(name: "proxy", value: "every")
        var ga = GlobalVariable(name: "proxy", value: "a")
        ga.scope = try scope("sitea"); ga.row = RowID(2); g.row = RowID(1)
        t.globals = [g, ga]
        var d = DomainEntity(name: "example.test")
        var u = UserEntity(userID: "1000")
        var gw = GatewayEntity(name: "carrier")
        gw.scope = try scope("@eu")
        u.gateways = [gw]
        var u2 = UserEntity(userID: "1001")
        u2.scope = try scope("siteb")
        d.users = [u, u2]
        var group = GroupEntity(name: "all")
        group.members = ["1000", "1001"]
        d.groups = [group]
        t.domains = [d]
        var c = ContextEntity(name: "default")
        var ring = ExtensionEntity(name: "ring")
        ring.continue = "false"
        var ringA = ExtensionEntity(name: "ring")
        ringA.continue = "true"
        ringA.scope = try scope("sitea")
        c.extensions = [ring, ExtensionEntity(name: "last"), ringA]
        t.contexts = [c]
        var root = ParsedElement(name: "configuration", attributes: [("name", "sofia.conf")])
        var settings = ParsedElement(name: "settings")
        var ipA = ParsedElement(name: "param", attributes: [("name", "sip-ip"), ("value", "10.0.0.1")])
        ipA.scope = try scope("@eu")
        settings.children = [ParsedElement(name: "param", attributes: [("name", "sip-ip"), ("value", "$${local_ip_v4}")]),
                             ParsedElement(name: "param", attributes: [("name", "sip-port"), ("value", "5060")]), ipA]
        root.children = [settings]
        t.documents = [DocumentEntity(section: .configuration, name: "sofia.conf", root: root)]
        return t
    }

    func testANodesViewHoldsOneVariantOfEachEntityWithoutScopes() throws {
        let t = try tree()
        XCTAssertEqual(t.scopedCount, 5)
        let a = t.view(for: NodeIdentity(name: "sitea", groups: ["eu"]))
        XCTAssertEqual(a.scopedCount, 0)
        XCTAssertEqual(a.globals.map(\.value), ["a"])
        XCTAssertEqual(a.domains[0].users.map(\.userID), ["1000"])
        XCTAssertEqual(a.domains[0].users[0].gateways.map(\.name), ["carrier"])
        XCTAssertEqual(a.domains[0].groups[0].members, ["1000"], "no pointer to a user the node does not have")
        XCTAssertEqual(a.contexts[0].extensions.map { "\($0.name):\($0.continue ?? "")" }, ["ring:true", "last:"])
        XCTAssertEqual(a.documents[0].root.children[0].children.map { $0.attribute("value") ?? "" }, ["10.0.0.1", "5060"])
        let b = t.view(for: NodeIdentity(name: "siteb"))
        XCTAssertEqual(b.globals.map(\.value), ["every"])
        XCTAssertEqual(b.domains[0].users.map(\.userID), ["1000", "1001"])
        XCTAssertEqual(b.domains[0].users[0].gateways.map(\.name), [])
        XCTAssertEqual(b.contexts[0].extensions.map { "\($0.name):\($0.continue ?? "")" }, ["ring:false", "last:"])
        XCTAssertEqual(b.documents[0].root.children[0].children.map { $0.attribute("value") ?? "" }, ["$${local_ip_v4}", "5060"])
        // Listing the stored tree names every variant by its block.
        let paths = FieldListing.entries(t).map(\.path.description)
        XCTAssertTrue(paths.contains("globals/proxy{sitea}"))
        XCTAssertTrue(paths.contains("directory/example.test/user/1000/gateway/carrier{@eu}/@name"))
        XCTAssertTrue(paths.contains("directory/example.test/user/1001{siteb}/@id"))
        XCTAssertTrue(paths.contains("dialplan/default/extension[name=ring]{sitea}/@continue"))
        XCTAssertTrue(paths.contains("dialplan/default/extension[name=ring]/@continue"))
        XCTAssertTrue(paths.contains("configuration/sofia.conf/settings/param[name=sip-ip]{@eu}/@value"))
    }

    func testASitesImportSharesWhatEqualsEveryNodes() throws {
        let base = try tree().view(for: NodeIdentity(name: nil))
        var site = base
        site.globals.append(GlobalVariable(name: "only_here", value: "1"))
        site.documents[0].root.children[0].children[0].attributes[1].value = "10.9.9.9"
        let (rest, shared) = site.splittingShared(with: base)
        XCTAssertEqual(rest.globals.map(\.name), ["only_here"])
        XCTAssertEqual(rest.documents.map(\.name), ["sofia.conf"])
        XCTAssertEqual(shared.globals.map(\.name), ["proxy"])
        XCTAssertEqual(shared.domains.map(\.name), ["example.test"])
        XCTAssertEqual(shared.contexts.map(\.name), ["default"])
        // The slice's own copy of what is now shared is removed.
        var slice = ConfigTree()
        slice.globals = [GlobalVariable(name: "proxy", value: "old site value")]
        var diff = ConfigDiff(stored: slice, imported: rest)
        diff.removeStored(shared, from: slice)
        XCTAssertEqual(diff.entries.map(\.description).sorted(),
                       ["+ configuration sofia.conf", "+ globals only_here", "- globals proxy (every node's)"])
        XCTAssertEqual(diff.globals.filter { $0.op == .remove }.map(\.variable.name), ["proxy"])
    }
}
