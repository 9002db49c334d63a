@testable import FSConfCore
import XCTest

/// The user-lookup renderer that reads a result in place answers exactly what the
/// general renderer answers from the decoded model, or leaves the rows to it.
final class DirectoryUserRendererTests: XCTestCase {
    /// A deterministic generator (SplitMix64): failures replay.
    struct Rng: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func chance(_ percent: Int) -> Bool { int(100) < percent }
        mutating func pick<T>(_ list: [T]) -> T { list[int(list.count)] }
    }

    static let node: @Sendable (String) -> String? = { name in
        ["local_ip_v4": "192.0.2.10", "hostname": "fs-1"][name]
    }

    /// Values: plain, needing escapes, references (known, node-only, unknown, chained,
    /// mixed with text, unterminated), non-ASCII, empty.
    static let values = ["1234", "a&b<c>\"d'e", "$${default_password}", "$${local_ip_v4}", "x-$${domain}-y",
                         "$${nobody}", "$${unterminated", "ünï©ødé", "", "{presence_id=${dialed_user}@${dialed_domain}}",
                         "$${chain}", "tab\there", "\u{FFFE}bad"]
    static let globals = ["default_password": "1234", "domain": "$${local_ip_v4}", "chain": "$${domain}",
                          "default_provider": "example.com"]

    /// A user lookup's rows: candidate domains, groups, users with settings and
    /// gateways, the V rows sometimes; in SQL's order or shuffled.
    func randomRows(_ r: inout Rng) -> [DirectoryRow] {
        var rows: [DirectoryRow] = []
        var nextID: Int64 = 1
        func id() -> Int64 { defer { nextID += 1 }; return nextID }
        let settingKinds = ["param", "variable", "profile-variable", "attribute", "attribute", "bogus"]
        func settings(_ kind: DirectoryRow.Kind, parent: Int64, count: Int, unique: Bool) {
            var positions = Array(0..<(count * 2)).shuffled(using: &r)
            for n in 0..<count {
                let position = unique ? positions.removeLast() : r.int(3)
                var name: String? = r.pick(["password", "vm-password", "user_context", "cacheable", "a-b", "toll_allow"]) + "\(n)"
                if r.chance(5) { name = "cacheable" }
                if r.chance(3) { name = nil }
                rows.append(DirectoryRow(kind: kind, id: id(), parent: parent, a: r.pick(settingKinds), b: name,
                                         c: r.chance(5) ? nil : r.pick(Self.values),
                                         d: kind == .gatewaySetting && r.chance(50) ? r.pick(["inbound", "outbound"]) : nil,
                                         position: position))
            }
        }
        let unique = !r.chance(15)
        let domainNames = ["192.0.2.10", "$${domain}", "pbx.test", "PBX.test", "$${local_ip_v4}", "$${nobody}"]
        for _ in 0..<(1 + r.int(3)) {
            let d = id()
            rows.append(DirectoryRow(kind: .domain, id: d, a: r.pick(domainNames),
                                     b: r.chance(30) ? r.pick(["true", "false", "", "60000"]) : nil,
                                     rank: r.chance(5) ? 1 : 0))
            settings(.domainSetting, parent: d, count: r.int(6), unique: unique)
            var groupIDs: [Int64] = []
            for _ in 0..<r.int(3) {
                let g = id()
                groupIDs.append(g)
                rows.append(DirectoryRow(kind: .group, id: g, parent: d, a: r.pick(["default", "sales", "$${domain}-grp"]),
                                         position: r.int(4)))
                settings(.groupSetting, parent: g, count: r.int(3), unique: unique)
            }
            for _ in 0..<(r.int(4)) {
                let u = id()
                let home: String? = groupIDs.isEmpty || r.chance(20) ? (r.chance(10) ? "999" : nil) : String(r.pick(groupIDs))
                rows.append(DirectoryRow(kind: .user, id: u, parent: d,
                                         a: r.pick(["1000", "1001", "$${default_provider}", "$${chain}", "USER<1>"]),
                                         b: r.chance(30) ? r.pick(["1000", "2000", "$${nobody}"]) : nil,
                                         c: r.chance(20) ? r.pick(["true", "false", "", "5000"]) : nil,
                                         d: home, e: r.chance(10) ? "<vm-settings x=\"1\"/>" : nil,
                                         position: r.int(5), rank: r.chance(3) ? 2 : 0))
                settings(.userSetting, parent: u, count: r.int(8), unique: unique)
                for _ in 0..<(r.chance(25) ? 1 + r.int(2) : 0) {
                    let w = id()
                    rows.append(DirectoryRow(kind: .gateway, id: w, parent: u, a: r.pick(["gw", "$${default_provider}"]),
                                             e: String(d), position: r.int(3)))
                    settings(.gatewaySetting, parent: w, count: r.int(4), unique: unique)
                }
            }
        }
        if r.chance(30) {
            for (name, value) in Self.globals.sorted(by: { $0.key < $1.key }) {
                rows.append(DirectoryRow(kind: .globalVariable, id: id(), a: name, b: value))
            }
        }
        if r.chance(30) { rows.shuffle(using: &r) }
        return rows
    }

    func testAnswersAsTheGeneralRendererDoesOrLeavesTheRowsToIt() {
        var r = Rng(state: 13)
        var rendered = 0, left = 0, users = 0
        for round in 0..<3000 {
            let rows = randomRows(&r)
            let domain = r.pick(["192.0.2.10", "pbx.test", "PBX.TEST", "elsewhere"])
            let user = r.pick(["1000", "1001", "2000", "example.com", "user<1>"])
            let key = r.pick(["id", "id", "number-alias", "mailbox"])
            let query = DirectoryQuery.user(domain: domain, user: user, key: key)
            var data = DirectoryData(rows: rows)
            var held: [String: String] = ["default_password": "held"]
            if !rows.contains(where: { $0.kind == .globalVariable }) { data.globals = held } else { held = data.globals }
            let general = DirectoryRenderer.answer(query, data, node: Self.node)
            let tags = CacheTags.directory(query, data, found: !general.notFound)
            var asked = 0
            let table = DirectoryRowArray(rows)   // the bytes the raw rows point into
            let fast = withExtendedLifetime(table) {
                DirectoryUserRenderer.render(table.raw, domain: domain, user: user, key: key, globals: { fromRows in
                    asked += 1
                    return fromRows.isEmpty ? held : fromRows
                }, node: Self.node, tags: true)
            }
            guard let fast else {
                left += 1
                continue
            }
            rendered += 1
            if !general.noSuchUser && !general.notFound { users += 1 }
            XCTAssertLessThanOrEqual(asked, 1, "round \(round): the globals are resolved once")
            XCTAssertEqual(fast.answer.xml, general.xml, "round \(round): \(rows)")
            XCTAssertEqual(fast.answer.noSuchUser, general.noSuchUser, "round \(round)")
            XCTAssertEqual(fast.answer.heldByFreeSWITCH, general.heldByFreeSWITCH, "round \(round)")
            XCTAssertEqual(fast.tags, tags, "round \(round)")
            if fast.answer.xml != general.xml { break }
        }
        // The renderer must take on what SQL returns (no variants, no ties): most rounds.
        XCTAssertGreaterThan(rendered, 1500, "rendered \(rendered), left \(left)")
        print("rendered \(rendered), left \(left), found a user \(users)")
        XCTAssertGreaterThan(users, 200, "rounds that found a user: \(users)")
        XCTAssertGreaterThan(left, 100, "the rows it must leave (variants, ties, duplicates) came up")
    }

    /// What it leaves to the general way: node variants, settings sharing a position,
    /// an entity twice.
    func testLeavesVariantsTiesAndRepeatsToTheGeneralWay() {
        func render(_ rows: [DirectoryRow]) -> DirectoryUserRenderer.Rendered? {
            let table = DirectoryRowArray(rows)
            return withExtendedLifetime(table) {
                DirectoryUserRenderer.render(table.raw, domain: "pbx.test", user: "1000", key: "id",
                                             globals: { $0 }, node: { _ in nil }, tags: false)
            }
        }
        let base = [DirectoryRow(kind: .domain, id: 1, a: "pbx.test"),
                    DirectoryRow(kind: .user, id: 2, parent: 1, a: "1000"),
                    DirectoryRow(kind: .userSetting, id: 3, parent: 2, a: "param", b: "password", c: "x", position: 1)]
        XCTAssertNotNil(render(base))
        XCTAssertTrue(render(base)!.answer.xml.contains(#"<param name="password" value="x"/>"#))
        XCTAssertNil(render(base + [DirectoryRow(kind: .user, id: 4, parent: 1, a: "1000", rank: 2)]))
        XCTAssertNil(render(base + [DirectoryRow(kind: .userSetting, id: 5, parent: 2, a: "param", b: "a", c: "y", position: 1)]))
        XCTAssertNil(render(base + [DirectoryRow(kind: .user, id: 2, parent: 1, a: "1000")]))
        XCTAssertNotNil(render(base + [DirectoryRow(kind: .userSetting, id: 5, parent: 2, a: "param", b: "a", c: "y", position: 2)]))
    }

    /// Bytes that are not UTF-8 (a SQL_ASCII database passes them through) are left to the
    /// general way, which decodes them with replacement characters; UTF-8 is rendered.
    func testLeavesBytesThatAreNotUTF8ToTheGeneralWay() {
        func render(_ value: [UInt8]) -> DirectoryUserRenderer.Rendered? {
            let table = DirectoryRowArray([DirectoryRow(kind: .domain, id: 1, a: "pbx.test"),
                                           DirectoryRow(kind: .user, id: 2, parent: 1, a: "1000")])
            let kind = Array("param".utf8), name = Array("password".utf8)
            return withExtendedLifetime(table) {
                kind.withUnsafeBufferPointer { kind in
                    name.withUnsafeBufferPointer { name in
                        value.withUnsafeBufferPointer { bytes in
                            let setting = RawDirectoryRow(kind: .userSetting, id: 3, parent: 2, a: kind, b: name, c: bytes,
                                                          d: nil, e: nil, position: 1, rank: 0)
                            return DirectoryUserRenderer.render(table.raw + [setting], domain: "pbx.test", user: "1000",
                                                                key: "id", globals: { $0 }, node: { _ in nil }, tags: false)
                        }
                    }
                }
            }
        }
        XCTAssertNil(render([0x63, 0x61, 0x66, 0xE9]), "Latin-1 café")
        XCTAssertNil(render(Array("0123456789abcdef".utf8) + [0xFF]), "invalid after an ASCII run")
        XCTAssertTrue(render(Array("café ünï".utf8))?.answer.xml.contains(#"value="café ünï""#) ?? false)
        XCTAssertTrue(render(Array("0123456789abcdefgh".utf8))?.answer.xml.contains(#"value="0123456789abcdefgh""#) ?? false)
    }
}

/// `DirectoryRow`s' values as bytes, for `DirectoryUserRenderer` (tests compare it
/// with `DirectoryRenderer` on the same rows).
final class DirectoryRowArray {
    let rows: [DirectoryRow]
    /// Each value's bytes, kept for the table's life (column a…e → 0…4).
    private var storage: [[UnsafeMutableBufferPointer<UInt8>?]] = []

    init(_ rows: [DirectoryRow]) {
        self.rows = rows
        storage = rows.map { row in
            [row.a, row.b, row.c, row.d, row.e].map { value in
                value.map { v in
                    let bytes = Array(v.utf8)
                    let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(bytes.count, 1))
                    _ = buffer.initialize(from: bytes)
                    return UnsafeMutableBufferPointer(rebasing: buffer[0..<bytes.count])
                }
            }
        }
    }

    deinit {
        for row in storage { for value in row { value?.deallocate() } }
    }

    /// The rows as `RawDirectoryRow`s over this table's bytes (valid while it lives).
    var raw: [RawDirectoryRow] {
        rows.indices.map { i in
            let v = storage[i].map { $0.map { UnsafeBufferPointer($0) } }
            return RawDirectoryRow(kind: rows[i].kind, id: rows[i].id, parent: rows[i].parent, a: v[0], b: v[1], c: v[2],
                                   d: v[3], e: v[4], position: rows[i].position, rank: rows[i].rank)
        }
    }
}
