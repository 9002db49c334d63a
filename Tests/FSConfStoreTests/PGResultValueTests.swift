import FSConfCore
import FSConfStore
import FSConfTestSupport
import XCTest

/// Reading values out of a result: a NULL and an empty value are told apart
/// (only an empty value asks libpq for its NULL flag), integers are read from the
/// bytes and anything else is no integer, and a directory row with a malformed
/// record type or numbers is decoded without trusting it.
final class PGResultValueTests: XCTestCase {
    func testNullsEmptiesAndIntegers() throws {
        let conn = try TestDatabase.admin()
        let r = try conn.query("""
            SELECT NULL::text, ''::text, 'x'::text, '日本'::text, NULL::bigint, '-9223372036854775808', '9223372036854775808',
                   '12x', '', '-', '007', ' 1'
            """)
        XCTAssertNil(r.string(0, 0))
        XCTAssertEqual(r.string(0, 1), "")
        XCTAssertEqual(r.string(0, 2), "x")
        XCTAssertEqual(r.string(0, 3), "日本")
        XCTAssertNil(r.withBytes(0, 0) { $0.count })
        XCTAssertEqual(r.withBytes(0, 1) { $0.count }, 0, "an empty value is there, with no bytes")
        XCTAssertEqual(r.withBytes(0, 3) { $0.count }, 6)
        XCTAssertNil(r.int64(0, 4), "NULL")
        XCTAssertEqual(r.int64(0, 5), Int64.min)
        XCTAssertNil(r.int64(0, 6), "overflow")
        for column in 7...11 where column != 10 { XCTAssertNil(r.int64(0, column), "column \(column)") }
        XCTAssertNil(r.int64(0, 9), "a sign alone")
        XCTAssertEqual(r.int64(0, 10), 7)
        XCTAssertNil(r.int64(0, 1), "an empty value is no integer")
    }

    func testDirectoryRowsFromUntrustedValues() throws {
        let conn = try TestDatabase.admin()
        // rec, id, parent, a, b, c, d, e, pos, rank
        let r = try conn.query("""
            SELECT * FROM (VALUES
              ('U', '5', NULL, '1000', '', NULL, 'x7', '<a/>&', '3', '0'),
              ('X', '6', NULL, 'ignored', NULL, NULL, NULL, NULL, '0', '0'),
              ('USS', '7', '5', 'param', 'p', 'v', NULL, NULL, '0', '0'),
              ('US', 'eight', '5x', 'param', 'p', '', NULL, NULL, 'z', NULL),
              (NULL, '9', NULL, NULL, NULL, NULL, NULL, NULL, '0', '0')
            ) AS t(rec, id, parent, a, b, c, d, e, pos, rank)
            """)
        let rows = DirectorySQL.rows(r)
        XCTAssertEqual(rows, [
            DirectoryRow(kind: .user, id: 5, parent: nil, a: "1000", b: "", c: nil, d: "x7", e: "<a/>&", position: 3, rank: 0),
            DirectoryRow(kind: .userSetting, id: 0, parent: nil, a: "param", b: "p", c: "", d: nil, e: nil, position: 0, rank: 0),
        ], "unknown record types are skipped; malformed numbers read as absent (id 0, no parent)")
        // A user whose domain did not come is attached to nothing.
        let data = DirectoryData(rows: rows)
        XCTAssertEqual(data.domains.count, 0)
    }
}
