import FSConfAdminCore
import FSConfCore
import FSConfTestSupport
import XCTest

/// fsconf's XML reader accepts what FreeSWITCH's parser accepts (switch_xml_parse_str
/// in src/switch_xml.c) and refuses what it refuses. Each case names the behaviour it
/// mirrors.
final class XMLReaderTests: XCTestCase {
    struct Accepted {
        var xml: String
        /// The root as FreeSWITCH reads it: canonical text (StaticLookup.canonical).
        var expected: ParsedElement
        var mirrors: String
    }

    static let accepted: [Accepted] = [
        Accepted(xml: "<!DOCTYPE document>\n<document><section name=\"x\"/></document>",
                 expected: ParsedElement(name: "document", children: [ParsedElement(name: "section", attributes: [("name", "x")])]),
                 mirrors: "`!strncmp(s, \"!DOCTYPE\", 8)`: the declaration is skipped up to its `>`"),
        Accepted(xml: """
                    <?xml version="1.0"?>
                    <!DOCTYPE document [
                      <!ENTITY xxe SYSTEM "file:///etc/passwd">
                      <!ENTITY word "expanded">
                    ]>
                    <document><p v="&xxe;&word;">&word;</p></document>
                    """,
                 expected: ParsedElement(name: "document", children: [
                    ParsedElement(name: "p", attributes: [("v", "&xxe;&word;")], text: "&word;")]),
                 mirrors: "the internal subset `[…]` is skipped to `]>`; fsconf defines no entity from it and reads nothing external (switch_xml_internal_dtd skips externals; unknown references stay text)"),
        Accepted(xml: "<document><user id=\"1000\" cacheable/></document>",
                 expected: ParsedElement(name: "document", children: [ParsedElement(name: "user", attributes: [("id", "1000"), ("cacheable", "")])]),
                 mirrors: "`attr[l + 1] = \"\"`: an attribute without `=value` has the value \"\""),
        Accepted(xml: "<document><a b c=\"1\"></a></document>",
                 expected: ParsedElement(name: "document", children: [ParsedElement(name: "a", attributes: [("b", ""), ("c", "1")])]),
                 mirrors: "a name followed by space and no `=`: value \"\", the next word is the next attribute"),
        Accepted(xml: "<document><param name=\"a\" value=\"first\" value=\"second\"/></document>",
                 expected: ParsedElement(name: "document", children: [ParsedElement(name: "param", attributes: [("name", "a"), ("value", "first")])]),
                 mirrors: "duplicate attributes are both kept by the parser; switch_xml_attr returns the first"),
        Accepted(xml: "stray text\n<document><x/></document>\ntrailing text",
                 expected: ParsedElement(name: "document", children: [ParsedElement(name: "x")]),
                 mirrors: "`while (*s && *s != '<') s++`: text before the first tag is skipped; character data after the root has no element to go to"),
        Accepted(xml: "<document><x><!DOCTYPE y><z/></x></document>",
                 expected: ParsedElement(name: "document", children: [ParsedElement(name: "x", children: [ParsedElement(name: "z")])]),
                 mirrors: "the DOCTYPE branch is in the main loop: it is skipped wherever it appears"),
    ]

    func testAcceptsWhatSwitchXMLAccepts() throws {
        for c in Self.accepted {
            let parsed: ParsedElement
            do { parsed = try XMLTreeParser.parse(c.xml) } catch {
                XCTFail("\(c.mirrors): refused with \(error)"); continue
            }
            XCTAssertEqual(StaticLookup.canonical(parsed), StaticLookup.canonical(c.expected), c.mirrors)
            XCTAssertEqual(parsed.children.first?.attributes.map(\.name), c.expected.children.first?.attributes.map(\.name),
                           "attribute order: \(c.mirrors)")
        }
    }

    func testRefusesWhatSwitchXMLRefuses() {
        let refused: [(xml: String, message: String, mirrors: String)] = [
            ("<document><a></document>", "does not match", "switch_xml_close_tag: unexpected closing tag"),
            ("<document><a>", "unclosed tag <a>", "\"unclosed tag <%s>\""),
            ("<document/><second/>", "markup outside of the root element", "\"markup outside of root element\""),
            ("<document><a b=\"1/></document>", "missing closing quote", "\"missing %c\""),
            ("<!DOCTYPE document [ <!ENTITY x \"y\"> <document/>", "unclosed <!DOCTYPE", "\"unclosed <!DOCTYPE\""),
            ("<document><!-- x </document>", "unclosed <!--", "\"unclosed <!--\""),
            ("just text", "root element missing", "\"root tag missing\""),
        ]
        for c in refused {
            XCTAssertThrowsError(try XMLTreeParser.parse(c.xml), c.mirrors) { error in
                XCTAssertTrue("\(error)".contains(c.message), "\(c.mirrors): \(error)")
            }
        }
    }
}
