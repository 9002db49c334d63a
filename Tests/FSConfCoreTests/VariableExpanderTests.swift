import FSConfCore
import XCTest

/// `$${…}` expansion: the shortcuts a lookup takes (a value that is exactly one
/// reference, a global with no reference, the byte scan for `$${`) give what the
/// general walk gives, on odd and hostile stored values too.
final class VariableExpanderTests: XCTestCase {
    func testHasReferenceFindsTheOpeningAnywhere() {
        for text in ["$${a}", "x$${", "$$${a}", "$$$${", "ab$$$${x}", "日本$${x}", "$${"] {
            XCTAssertTrue(VariableExpander.hasReference(text), text)
        }
        for text in ["", "$", "$$", "$$x{", "${a}", "$ ${a}", "$$ {", "{$$}", "$x${a}", "日本 $\u{FFFD}{"] {
            XCTAssertFalse(VariableExpander.hasReference(text), text)
        }
    }

    func testWholeReferencesAndMixedTextExpandAlike() {
        let globals = ["a": "A", "b": "$${a}-B", "loop": "x$${loop}y", "empty": "", "long_name_over_fifteen_bytes": "L",
                       "c": "$${b}$${a}"]
        var e = VariableExpander(globals: globals, node: { $0 == "local_ip_v4" ? "192.0.2.10" : nil })
        XCTAssertEqual(e.expand("$${a}"), "A")
        XCTAssertEqual(e.expand("$${b}"), "A-B", "a global with references is walked")
        XCTAssertEqual(e.expand("$${c}"), "A-BA")
        XCTAssertEqual(e.expand("$${long_name_over_fifteen_bytes}"), "L")
        XCTAssertEqual(e.expand("$${local_ip_v4}"), "192.0.2.10", "the node's value")
        XCTAssertEqual(e.expand("$${unknown}"), "", "nobody's name expands to nothing")
        XCTAssertEqual(e.expand("$${empty}"), "")
        XCTAssertEqual(e.expand("$${loop}"), "xy", "a cycle expands to nothing where it closes")
        XCTAssertEqual(e.expand("$${a}$${b}"), "AA-B", "two references are not one name")
        XCTAssertEqual(e.expand("$${a}}"), "A}")
        XCTAssertEqual(e.expand("$${a$${b}"), "", "the name runs to the first closing brace: `a$${b`")
        XCTAssertEqual(e.expand("$${}"), "")
        XCTAssertEqual(e.expand("$${a"), "$${a", "an unterminated reference stays text")
        XCTAssertEqual(e.expand("pre $${a} post"), "pre A post")
        XCTAssertEqual(e.expand("${a}"), "${a}", "a channel variable is left alone")
        XCTAssertEqual(e.expand("日本$${a}\u{FFFD}"), "日本A\u{FFFD}")
    }
}
