@testable import FSConfStore
import XCTest

/// The packed form stored documents travel in (migration 0010): what is packed
/// unpacks to the same bytes, and nothing malformed unpacks, crashes or reads or
/// writes outside its buffers.
final class PackedDocumentTests: XCTestCase {
    struct RNG: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state ^ (state >> 29)
        }
    }

    func unpacked(_ hex: String, length: Int) -> [UInt8]? {
        var hex = hex
        return hex.withUTF8 { PackedDocument.unpack(hex: $0, length: length) { Array($0) } }
    }

    /// The hex PostgreSQL's encode(packed, 'hex') returns: the literal without `\x`.
    func hex(_ bytes: [UInt8]) -> String { String(PackedDocument.hexLiteral(bytes).dropFirst(2)) }

    func testWhatIsPackedUnpacksToTheSameBytes() throws {
        var rng = RNG(state: 7)
        let pieces = ["<extension name=\"ext-1\">", "$${domain}", "${called}", "é", "日本", "\u{1F600}", "&amp;", "\n  ", "x"]
        for round in 0..<300 {
            var text = ""
            for _ in 0..<Int.random(in: 0...(round < 290 ? 200 : 20_000), using: &rng) {
                text += pieces.randomElement(using: &rng)!
            }
            let packed = try XCTUnwrap(PackedDocument.pack(text))
            let back = try XCTUnwrap(unpacked(hex(packed), length: text.utf8.count), "round \(round)")
            XCTAssertEqual(back, Array(text.utf8), "round \(round)")
        }
        // Repetitive XML packs small (a 10,000-extension context: 3.06 MB to 113 KB).
        let context = (1...2_000).map { "<extension name=\"ext-\($0)\"><condition field=\"destination_number\" expression=\"^\($0)$\"/></extension>\n" }.joined()
        XCTAssertLessThan(try XCTUnwrap(PackedDocument.pack(context)).count * 5, context.utf8.count)
    }

    func testTheLiteralIsByteaHexInput() {
        XCTAssertEqual(PackedDocument.hexLiteral([0x00, 0x7f, 0xab, 0xff]), #"\x007fabff"#)
        XCTAssertEqual(PackedDocument.hexLiteral([]), #"\x"#)
    }

    func testMalformedInputUnpacksToNothing() throws {
        let text = String(repeating: "<action application=\"bridge\" data=\"user/${called}@${domain_name}\"/>\n", count: 50)
        let good = hex(try XCTUnwrap(PackedDocument.pack(text)))
        let n = text.utf8.count
        XCTAssertNotNil(unpacked(good, length: n))
        XCTAssertNil(unpacked(good, length: n - 1), "a block longer than its length")
        XCTAssertNil(unpacked(good, length: n + 1), "a block shorter than its length")
        XCTAssertNil(unpacked(good, length: -1))
        XCTAssertNil(unpacked(good, length: Int.max))
        XCTAssertNil(unpacked(good, length: PackedDocument.maximumLength), "a length LZ4 cannot reach from this block")
        // Refused before anything is allocated for it.
        XCTAssertFalse(PackedDocument.plausible(length: 1_000_000_000, packed: 100))
        XCTAssertTrue(PackedDocument.plausible(length: 25_500, packed: 100))
        XCTAssertFalse(PackedDocument.plausible(length: -1, packed: 100))
        // The most repetitive document packs to ~1/255 and still unpacks.
        let zeros = String(repeating: "0", count: 1_000_000)
        let dense = try XCTUnwrap(PackedDocument.pack(zeros))
        XCTAssertLessThan(dense.count * 200, zeros.utf8.count)
        XCTAssertEqual(unpacked(hex(dense), length: zeros.utf8.count)?.count, zeros.utf8.count)
        XCTAssertNil(unpacked(String(good.dropLast(2)), length: n), "truncated")
        XCTAssertNil(unpacked(String(good.dropLast()), length: n), "odd hex")
        XCTAssertNil(unpacked("zz" + good.dropFirst(2), length: n), "not hex")
        XCTAssertNil(unpacked("", length: n))
        // Random blocks and flipped bytes: nil or some bytes of the length asked,
        // never a crash or a read past either buffer (run under ASan by hand).
        var rng = RNG(state: 11)
        let bytes = Array(good.utf8)
        for _ in 0..<2_000 {
            var mutated = bytes
            let i = Int.random(in: 0..<mutated.count, using: &rng)
            mutated[i] = Array("0123456789abcdef".utf8).randomElement(using: &rng)!
            let out = mutated.withUnsafeBufferPointer { PackedDocument.unpack(hex: $0, length: n) { $0.count } }
            if let out { XCTAssertEqual(out, n) }
            let noise = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if let out = unpacked(hex(noise), length: n + 7) { XCTAssertEqual(out.count, n + 7) }
        }
    }
}
