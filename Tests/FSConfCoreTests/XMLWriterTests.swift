import FSConfCore
import XCTest

/// The XML writer's escaping, byte for byte: what every rendered value goes through.
final class XMLWriterTests: XCTestCase {
    func testEscapeReplacesMarkupAndWhitespaceAndDropsWhatXMLCannotCarry() {
        XCTAssertEqual(XMLWriter.escape(#"a&b<c>d"e'f"#), "a&amp;b&lt;c&gt;d&quot;e&apos;f")
        XCTAssertEqual(XMLWriter.escape("tab\tlf\ncr\r"), "tab&#9;lf&#10;cr&#13;")
        // C0 controls, U+FFFE and U+FFFF cannot appear in XML 1.0 at all.
        XCTAssertEqual(XMLWriter.escape("x\u{0}y\u{1F}z\u{FFFE}w\u{FFFF}v"), "xyzwv")
        // Other characters (those starting with the byte EF too) pass unchanged.
        XCTAssertEqual(XMLWriter.escape("\u{FFFD}é€\u{F8FF}日本 \u{1F600}"), "\u{FFFD}é€\u{F8FF}日本 \u{1F600}")
        XCTAssertEqual(XMLWriter.escape(""), "")
        XCTAssertEqual(XMLWriter.escape("plain text, no change"), "plain text, no change")
        XCTAssertEqual(XMLWriter.escape("\u{FFFC}\u{FFFD}"), "\u{FFFC}\u{FFFD}", "EF BF BC and EF BF BD are kept")
        // A long run with one character to escape at each end.
        let long = String(repeating: "0123456789", count: 100)
        XCTAssertEqual(XMLWriter.escape("<" + long + "&"), "&lt;" + long + "&amp;")
    }

    func testElementsWrittenAttributeByAttributeMatchTheListForm() {
        var a = XMLWriter()
        a.open("user", [("id", "1000"), ("note", "a<b")], selfClosing: true)
        var b = XMLWriter()
        b.start("user")
        b.attribute("id", "1000")
        b.attribute("note", "a<b")
        b.finish(selfClosing: true)
        XCTAssertEqual(a.string, #"<user id="1000" note="a&lt;b"/>"#)
        XCTAssertEqual(b.string, a.string)
        var c = XMLWriter()
        c.open("a")
        c.open("b")
        c.empty("c", [("x", "1")])
        c.close("b")
        c.close("a")
        XCTAssertEqual(c.string, "<a>\n  <b>\n    <c x=\"1\"/>\n  </b>\n</a>")
    }
}
