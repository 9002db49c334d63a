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

    func testChainsOfWholeReferences() {
        var globals = ["domain": "$${ip}", "ip": "$${local_ip_v4}", "f": "$${a}", "a": "A", "self": "$${self}",
                       "p": "$${q}", "q": "$${p}", "mixed": "$${a}x", "m": "$${mixed}", "gone": "$${nobody}"]
        for i in 0..<12 { globals["c\(i)"] = i == 11 ? "end" : "$${c\(i + 1)}" }
        let node = { (name: String) -> String? in name == "local_ip_v4" ? "192.0.2.10" : nil }
        let expected = ["$${domain}": "192.0.2.10", "$${ip}": "192.0.2.10", "$${f}": "A", "$${self}": "", "$${p}": "",
                        "$${q}": "", "$${m}": "Ax", "$${gone}": "", "$${c0}": "end", "$${c5}": "end",
                        "x$${domain}": "x192.0.2.10", "$${domain}$${domain}": "192.0.2.10192.0.2.10"]
        for (text, value) in expected {
            var fresh = VariableExpander(globals: globals, node: node)
            XCTAssertEqual(fresh.expand(text), value, text)
        }
        var shared = VariableExpander(globals: globals, node: node)
        XCTAssertEqual(shared.expand("$${domain}"), "192.0.2.10")
        XCTAssertEqual(shared.expand("$${ip}"), "192.0.2.10")
        XCTAssertEqual(shared.expand("$${p}"), "", "a cycle expands to nothing")
        XCTAssertEqual(shared.expand("$${self}"), "")
        XCTAssertEqual(shared.expand("$${m}"), "Ax")
        XCTAssertEqual(shared.expand("$${c0}"), "end", "a chain longer than the shortcut's reach")
        XCTAssertEqual(shared.expand("$${gone}"), "")
    }
}
