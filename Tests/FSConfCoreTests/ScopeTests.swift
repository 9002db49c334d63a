@testable import FSConfCore
import XCTest

/// Per-node scope's pure rules (docs/cluster.md): scopes, a node's rank of a
/// scope, the choice among variants, and the node models that apply it to rows.
final class ScopeTests: XCTestCase {
    func scope(_ text: String) throws -> Scope { try Scope.parse(text).get() }

    func testScopesAreLowerCasedSortedAndUnique() throws {
        let s = try Scope.make(["SiteB", "@EU", "sitea", "siteb"]).get()
        XCTAssertEqual(s.entries, ["@eu", "sitea", "siteb"], "byte order: @ sorts before letters, as the database's COLLATE \"C\"")
        XCTAssertEqual(s.description, "@eu,sitea,siteb")
        XCTAssertEqual(s.sqlArray, "{@eu,sitea,siteb}")
        XCTAssertEqual(s.nodes, ["sitea", "siteb"])
        XCTAssertEqual(s.groups, ["eu"])
        XCTAssertEqual(try scope(" sitea , @eu"), try scope("@eu,sitea"))
        XCTAssertEqual(Scope.fromColumn("{sitea,@eu}"), try scope("sitea,@eu"))
        XCTAssertEqual(Scope.fromColumn("sitea"), try scope("sitea"))
        XCTAssertNil(Scope.fromColumn(nil))
        XCTAssertEqual(Scope.fromJSON(#"["@eu", "sitea"]"#), try scope("sitea,@eu"))
        XCTAssertNil(Scope.fromJSON(nil))
        XCTAssertNil(Scope.fromJSON("null"))
        XCTAssertEqual(try scope("node-1.example.com:5060_b"), try scope("NODE-1.example.com:5060_b"))
        let bad = ["", ",", "-a", "a b", "@", "@-x", "a/b", "é", String(repeating: "a", count: 254),
                   (1...65).map { "n\($0)" }.joined(separator: ",")]
        for text in bad {
            XCTAssertThrowsError(try Scope.parse(text).get(), text)
        }
        XCTAssertEqual(try Scope.parse(String(repeating: "a", count: 253)).get().entries.count, 1)
    }

    func testANodeRanksAScopeByNameThenGroup() throws {
        let me = NodeIdentity(name: "SiteA", groups: ["EU"])
        XCTAssertEqual(me.rank(nil), 0)
        XCTAssertEqual(me.rank(try scope("sitea")), 2)
        XCTAssertEqual(me.rank(try scope("@eu")), 1)
        XCTAssertEqual(me.rank(try scope("@eu,sitea")), 2)
        XCTAssertNil(me.rank(try scope("siteb,@us")))
        let nameless = NodeIdentity(name: nil)
        XCTAssertEqual(nameless.rank(nil), 0)
        XCTAssertNil(nameless.rank(try scope("sitea")))
    }

    func testTheNodeIsNamedByItsLookupThenAskedItself() {
        var r = LookupRequest(section: "directory", headers: ["FreeSWITCH-Switchname": "SiteA", "FreeSWITCH-Hostname": "host-1"])
        XCTAssertEqual(NodeIdentity.name(of: r, fallback: { XCTFail("not asked"); return nil }), "sitea")
        r.headers = ["FreeSWITCH-Hostname": "Host-1"]
        XCTAssertEqual(NodeIdentity.name(of: r, fallback: { "other" }), "host-1")
        r.headers = [:]
        XCTAssertEqual(NodeIdentity.name(of: r, fallback: { "Fallback" }), "fallback")
        r.hasParams = false
        r.headers = ["FreeSWITCH-Switchname": "ignored without params"]
        XCTAssertEqual(NodeIdentity.name(of: r, fallback: { "node" }), "node")
        XCTAssertNil(NodeIdentity.name(of: r, fallback: { nil }))
        XCTAssertNil(NodeIdentity.name(of: r, fallback: { "" }))
        XCTAssertNil(NodeIdentity.name(of: r, fallback: { String(repeating: "x", count: 600) }), "an implausible name is no name")
    }

    struct Item: Equatable {
        var name: String?
        var rank: Int?
        var id: Int64
    }

    func testTheMostSpecificVariantWinsInPlaceOfTheFirst() {
        let items = [Item(name: "a", rank: 0, id: 1), Item(name: "b", rank: 0, id: 2), Item(name: nil, rank: 2, id: 3),
                     Item(name: "a", rank: 2, id: 4), Item(name: "c", rank: nil, id: 5), Item(name: "b", rank: 1, id: 6),
                     Item(name: "b", rank: 1, id: 7), Item(name: "d", rank: 0, id: 8)]
        func ids(_ unique: Bool) -> [Int64] {
            Precedence.resolve(items, unique: unique, identity: \.name, rank: \.rank, id: \.id).map(\.id)
        }
        // a: 4 replaces 1 where 1 stood; b: 6 and 7 (equal rank) where 2 stood; the
        // nameless one is nobody's variant; c is not for this node.
        XCTAssertEqual(ids(false), [4, 6, 7, 3, 8])
        // Unique identities keep one: the earliest created (lowest id) of the best rank.
        XCTAssertEqual(ids(true), [4, 6, 3, 8])
        // Nothing scoped: only visibility matters, duplicates stay as written.
        let plain = [Item(name: "x", rank: 0, id: 2), Item(name: "x", rank: 0, id: 1), Item(name: "y", rank: nil, id: 3)]
        XCTAssertEqual(Precedence.resolve(plain, unique: false, identity: \.name, rank: \.rank, id: \.id).map(\.id), [2, 1])
    }

    func testDirectoryRowsKeepTheVariantsTheNodeGets() {
        let rows = [
            DirectoryRow(kind: .domain, id: 1, a: "example.test", rank: 0),
            DirectoryRow(kind: .domain, id: 2, a: "Example.TEST", rank: 2),
            DirectoryRow(kind: .domainSetting, id: 10, parent: 1, a: "param", b: "from", c: "unscoped domain"),
            DirectoryRow(kind: .domainSetting, id: 11, parent: 2, a: "param", b: "from", c: "sitea's domain"),
            DirectoryRow(kind: .user, id: 20, parent: 2, a: "1000", rank: 0),
            DirectoryRow(kind: .user, id: 21, parent: 2, a: "1000", rank: 1),
            DirectoryRow(kind: .user, id: 22, parent: 2, a: "1001", rank: 0),
            DirectoryRow(kind: .user, id: 23, parent: 1, a: "1002", rank: 0),
            DirectoryRow(kind: .userSetting, id: 30, parent: 20, a: "param", b: "password", c: "unscoped"),
            DirectoryRow(kind: .userSetting, id: 31, parent: 21, a: "param", b: "password", c: "group's"),
            DirectoryRow(kind: .gateway, id: 40, parent: 21, a: "gw", e: "2", rank: 0),
            DirectoryRow(kind: .gateway, id: 41, parent: 22, a: "gw", e: "2", rank: 2),
            DirectoryRow(kind: .gateway, id: 42, parent: 20, a: "lost-with-its-user", e: "2", rank: 2),
            DirectoryRow(kind: .globalVariable, id: 50, a: "proxy", b: "every node", rank: 0),
            DirectoryRow(kind: .globalVariable, id: 51, a: "proxy", b: "by name", rank: 2),
            DirectoryRow(kind: .globalVariable, id: 52, a: "proxy", b: "by group", rank: 1),
        ]
        let data = DirectoryData(rows: rows)
        XCTAssertEqual(data.domains.map(\.id), [2])
        XCTAssertEqual(data.domains[0].settings.map(\.value), ["sitea's domain"])
        XCTAssertEqual(data.domains[0].users.map(\.id), [21, 22])
        XCTAssertEqual(data.domains[0].users[0].settings.map(\.value), ["group's"])
        // One gateway per name in a domain: 41 (by name) over 40.
        XCTAssertEqual(data.domains[0].users.flatMap(\.gateways).map(\.id), [41])
        XCTAssertEqual(data.globals, ["proxy": "by name"])
        // Unscoped rows only: as before scopes existed.
        let plain = DirectoryData(rows: rows.filter { $0.rank == 0 })
        XCTAssertEqual(plain.domains.map(\.id), [1])
        XCTAssertEqual(plain.domains[0].users.map(\.id), [23])
        XCTAssertEqual(plain.globals, ["proxy": "every node"])
    }

    func testElementsExtensionsAndGlobalsOfSectionsPickTheirVariants() {
        func e(_ id: Int64, _ parent: Int64?, _ position: Int, _ tag: String, rank: Int64? = nil) -> SectionRow {
            SectionRow(kind: "E", id: id, parent: parent, owner: rank, position: position, values: [tag, nil])
        }
        func a(_ element: Int64, _ name: String, _ value: String, _ position: Int) -> SectionRow {
            SectionRow(kind: "A", id: element, parent: element, position: position, values: [name, value])
        }
        let tree = TreeData(rows: [
            SectionRow(kind: "D", id: 1, values: ["sofia.conf"]),
            e(1, nil, 1, "configuration"), e(2, 1, 1, "settings"),
            e(3, 2, 1, "param"), a(3, "name", "sip-ip", 1), a(3, "value", "every node", 2),
            e(4, 2, 2, "param"), a(4, "name", "sip-port", 1), a(4, "value", "5060", 2),
            e(5, 2, 3, "param", rank: 2), a(5, "name", "sip-ip", 1), a(5, "value", "sitea", 2),
            e(6, 2, 4, "param", rank: 1), a(6, "name", "ext-ip", 1), a(6, "value", "group", 2),
            SectionRow(kind: "V", id: 7, owner: 0, values: ["g", "every node"]),
            SectionRow(kind: "V", id: 8, owner: 1, values: ["g", "group"]),
        ])
        let params = tree.root?.children[0].children ?? []
        XCTAssertEqual(params.map { $0.attribute("value") ?? "" }, ["sitea", "5060", "group"], "in place of the unscoped sip-ip")
        XCTAssertEqual(tree.globals, ["g": "group"])

        func x(_ id: Int64, _ name: String, _ position: Int, rank: Int64? = nil) -> SectionRow {
            SectionRow(kind: "E", id: id, parent: 1, owner: rank, position: position, values: [name, nil])
        }
        let plan = DialplanData(rows: [SectionRow(kind: "X", id: 1, values: ["default"]),
                                       x(10, "ring", 1), x(11, "other", 2), x(12, "ring", 3, rank: 2), x(13, "ring", 4, rank: 2)])
        XCTAssertEqual(plan.context?.extensions.map(\.id), [12, 13, 11], "both sitea rings where the ring stood")
    }
}
