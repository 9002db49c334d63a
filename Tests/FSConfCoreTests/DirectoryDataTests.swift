import FSConfCore
import XCTest

/// Rows → the directory model, whatever order the rows come in.
final class DirectoryDataTests: XCTestCase {
    /// A domain with groups, users (one of them with a gateway), settings and pointers.
    func rows() -> [DirectoryRow] {
        var rows: [DirectoryRow] = [
            DirectoryRow(kind: .domain, id: 7, a: "$${domain}"),
            DirectoryRow(kind: .domainSetting, id: 1, parent: 7, a: "param", b: "b-param", c: "2", position: 2),
            DirectoryRow(kind: .domainSetting, id: 2, parent: 7, a: "param", b: "a-param", c: "1", position: 2),
            DirectoryRow(kind: .domainSetting, id: 3, parent: 7, a: "variable", b: "first", c: "0", position: 1),
            DirectoryRow(kind: .group, id: 20, parent: 7, a: "sales", position: 2),
            DirectoryRow(kind: .group, id: 21, parent: 7, a: "default", position: 1),
            DirectoryRow(kind: .member, id: 300, parent: 20, a: "1001", position: 2),
            DirectoryRow(kind: .member, id: 301, parent: 20, a: "1000", position: 1),
            DirectoryRow(kind: .gateway, id: 50, parent: 300, a: "gw", e: "7"),
            DirectoryRow(kind: .gatewaySetting, id: 9, parent: 50, a: "param", b: "username", c: "u", position: 1),
            DirectoryRow(kind: .globalVariable, id: 0, a: "domain", b: "pbx.test"),
        ]
        // Thirty users (past the small index's linear search), in reverse position order.
        for n in (0..<30).reversed() {
            rows.append(DirectoryRow(kind: .user, id: 300 + Int64(n), parent: 7, a: String(1000 + n), d: "21", position: n))
            rows.append(DirectoryRow(kind: .userSetting, id: 1000 + Int64(n), parent: 300 + Int64(n), a: "param",
                                     b: "password", c: "pw-\(n)", position: 1))
        }
        return rows
    }

    func check(_ data: DirectoryData, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(data.domains.count, 1, file: file, line: line)
        guard let d = data.domains.first else { return }
        XCTAssertEqual(d.settings.map(\.name), ["first", "a-param", "b-param"], "by position, then name", file: file, line: line)
        XCTAssertEqual(d.groups.map(\.name), ["default", "sales"], file: file, line: line)
        XCTAssertEqual(d.groups[1].pointers.map(\.0), ["1000", "1001"], file: file, line: line)
        XCTAssertEqual(d.users.map(\.userID), (0..<30).map { String(1000 + $0) }, file: file, line: line)
        XCTAssertEqual(d.users.map { $0.settings.first?.value }, (0..<30).map { "pw-\($0)" }, file: file, line: line)
        XCTAssertEqual(d.users[0].gateways.map(\.name), ["gw"], file: file, line: line)
        XCTAssertEqual(d.users[0].gateways.first?.settings.map(\.value), ["u"], file: file, line: line)
        XCTAssertTrue(d.users.dropFirst().allSatisfy { $0.gateways.isEmpty }, file: file, line: line)
        XCTAssertEqual(data.globals, ["domain": "pbx.test"], file: file, line: line)
    }

    func testRowsAssembleInStoredOrderWhateverTheirOrder() {
        check(DirectoryData(rows: rows()))
        check(DirectoryData(rows: rows().reversed()))   // children before their parents
        check(DirectoryData(rows: rows().shuffled()))
        // Rows of entities that are not there are left out; a repeated row replaces the first.
        var extra = rows()
        extra.append(DirectoryRow(kind: .userSetting, id: 5000, parent: 999, a: "param", b: "orphan", c: "x"))
        extra.append(DirectoryRow(kind: .user, id: 999, parent: 8, a: "elsewhere"))
        extra.append(DirectoryRow(kind: .group, id: 21, parent: 7, a: "default", position: 1))
        check(DirectoryData(rows: extra))
    }

    func testRecordTypesDecodeFromTheirBytes() {
        let all: [DirectoryRow.Kind] = [.domain, .domainSetting, .group, .groupSetting, .user, .userSetting, .member,
                                        .gateway, .gatewaySetting, .globalVariable]
        for kind in all {
            XCTAssertEqual(Array(kind.rawValue.utf8).withUnsafeBufferPointer { DirectoryRow.Kind(bytes: $0) }, kind)
        }
        for bad in ["", "Q", "MS", "VS", "DSS", "d", "S"] {
            XCTAssertNil(Array(bad.utf8).withUnsafeBufferPointer { DirectoryRow.Kind(bytes: $0) }, bad)
        }
    }
}
