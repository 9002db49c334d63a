import FSConfAgentCore
import XCTest

/// The event socket reader's framing: messages cut right whatever the pieces,
/// and every byte examined once (no rescan from the start on each read).
final class EventSocketFramingTests: XCTestCase {
    static func reply(_ body: String) -> [UInt8] {
        Array("Content-Type: api/response\nContent-Length: \(body.utf8.count)\n\n\(body)".utf8)
    }

    /// A `sofia xmlstatus gateway` of `n` gateways, as FreeSWITCH writes it.
    static func xmlstatus(_ n: Int) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<gateways>\n"
        for i in 0..<n {
            out += "  <gateway>\n    <name>gw\(i)</name>\n    <profile>external</profile>\n    <scheme>Digest</scheme>\n"
            out += "    <realm>sip.carrier\(i).test</realm>\n    <state>REGED</state>\n    <status>UP</status>\n  </gateway>\n"
        }
        return out + "</gateways>\n"
    }

    func testALargeReplyReadInSmallPiecesIsExaminedOnce() {
        let body = EventSocketFramingTests.xmlstatus(20_000)
        let bytes = EventSocketFramingTests.reply(body)
        XCTAssertGreaterThan(bytes.count, 3_500_000)
        var f = EventSocketFraming()
        var got: EventSocketMessage?
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + 1_500)       // a TCP segment at a time
            f.append(bytes[i..<end])
            if let m = f.next() { XCTAssertNil(got); got = m }
            i = end
        }
        XCTAssertEqual(got?.contentType, "api/response")
        XCTAssertEqual(got?.body.utf8.count, body.utf8.count)
        XCTAssertEqual(got?.body, body)
        XCTAssertEqual(AgentReconcile.gateways(fromXMLStatus: got?.body ?? "").count, 20_000)
        XCTAssertLessThan(f.examined, 100, "only the headers are searched for their end; the body is taken by its length")
        XCTAssertEqual(f.buffered, 0)
    }

    func testManySmallMessagesInOneReadAreCutInLinearWork() {
        var bytes: [UInt8] = []
        for i in 0..<20_000 {
            bytes += Array("Content-Type: log/data\nLog-Level: 7\n\n".utf8)
            if i % 2 == 0 { bytes += EventSocketFramingTests.reply("+OK \(i)\n") }
        }
        var f = EventSocketFraming()
        f.append(bytes)
        var count = 0, replies = 0
        while let m = f.next() {
            count += 1
            if m.contentType == "api/response" { replies += 1; XCTAssertTrue(m.body.hasPrefix("+OK ")) }
        }
        XCTAssertEqual(count, 30_000)
        XCTAssertEqual(replies, 10_000)
        XCTAssertLessThanOrEqual(f.examined, bytes.count, "each byte examined at most once")
    }

    func testHeadersSplitAnywhereAndBodiesWithBlankLines() {
        let bytes = Array("Content-Type: auth/request\n\n".utf8) + EventSocketFramingTests.reply("line 1\n\nline 3\n\n")
            + Array("Content-Type: text/disconnect-notice\nContent-Length: 0\n\n".utf8)
        for piece in [1, 2, 3, 7, 1_000] {
            var f = EventSocketFraming()
            var out: [EventSocketMessage] = []
            var i = 0
            while i < bytes.count {
                let end = min(bytes.count, i + piece)
                f.append(bytes[i..<end])
                while let m = f.next() { out.append(m) }
                i = end
            }
            XCTAssertEqual(out.map { $0.contentType ?? "" }, ["auth/request", "api/response", "text/disconnect-notice"], "pieces of \(piece)")
            XCTAssertEqual(out[1].body, "line 1\n\nline 3\n\n", "a body is taken by its length, blank lines and all")
            XCTAssertLessThanOrEqual(f.examined, bytes.count)
        }
    }
}
