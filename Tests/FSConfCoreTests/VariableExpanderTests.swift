@testable import FSConfCore
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

    /// The word-at-a-time scan finds every `$${` a byte-by-byte one finds, at each
    /// offset within a word, with runs of `$` (a borrow may mark the byte after a
    /// `$`) and at the very end.
    func testTheScanFindsEveryOpeningAByteScanFinds() {
        var state: UInt64 = 3
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        let alphabet: [UInt8] = Array("$${}a%\u{1}".utf8) + [0x24, 0x24, 0xC3, 0xA9, 0x25, 0x23]
        for _ in 0..<3_000 {
            let bytes = (0..<next(70)).map { _ in alphabet[next(alphabet.count)] }
            var naive: [Int] = []
            for i in bytes.indices where i + 2 < bytes.count && bytes[i] == 0x24 && bytes[i + 1] == 0x24 && bytes[i + 2] == 0x7B {
                naive.append(i)
            }
            var found: [Int] = []
            bytes.withUnsafeBufferPointer { b in
                guard let base = b.baseAddress else { return }
                var from = 0
                while let at = VariableExpander.nextReference(base, b.count, from: from) {
                    found.append(at)
                    from = at + 1
                }
            }
            XCTAssertEqual(found, naive, String(decoding: bytes, as: UTF8.self))
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
