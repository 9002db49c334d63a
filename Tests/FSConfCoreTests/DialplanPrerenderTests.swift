import FSConfCore
import FSConfRegex
import XCTest

/// DialplanPrerender without a database: which contexts may be stored, and that a
/// stored document expanded on a node is byte for byte what the renderer gives.
final class DialplanPrerenderTests: XCTestCase {
    let pcre = PCRE2Compiler()

    func context(_ name: String = "office", data: String, application: String = "bridge",
                 expression: String = "^(\\d+)$") -> DialplanData {
        let action = DialplanAction(application: application, data: data)
        let condition = DialplanCondition(field: "destination_number", expression: expression, actions: [action])
        return DialplanData(context: DialplanContext(name: name, extensions: [
            DialplanExtension(name: "call $${zone}", conditions: [condition]),
            DialplanExtension(name: "plain", continueOn: "true",
                              conditions: [DialplanCondition(field: "${x}", expression: "^y$", actions: [DialplanAction(application: "answer")])]),
        ]))
    }

    func stored(_ data: DialplanData) -> (String, [String])? {
        if case .document(let xml, let checks) = DialplanPrerender.make(data, scoped: false, section: .dialplan, compiler: pcre) {
            return (xml, checks)
        }
        return nil
    }

    func reason(_ data: DialplanData, scoped: Bool = false) -> String? {
        if case .ineligible(let why) = DialplanPrerender.make(data, scoped: scoped, section: .dialplan, compiler: pcre) { return why }
        return nil
    }

    func testAStoredDocumentExpandsOnEachNodeAsTheRendererWould() throws {
        let data = context(data: "sofia/$${domain}/$1 <$${zone}> & $${missing} ${channel}")
        let (document, checks) = try XCTUnwrap(stored(data))
        XCTAssertTrue(document.contains(#"data="sofia/$${domain}/$1 &lt;$${zone}&gt; &amp; $${missing} ${channel}""#), document)
        XCTAssertEqual(checks, [])
        for globals in [["domain": "a&b\"c", "zone": "<eu>", "inner": "x"], ["domain": "$${inner}.example", "inner": "in'ner"], [:]] {
            let node: (String) -> String? = { $0 == "zone" ? "from-node" : nil }
            var withGlobals = data
            withGlobals.globals = globals
            let expected = DialplanRenderer.render(.context("office"), withGlobals, compiler: pcre, node: node).xml
            var expander = VariableExpander(globals: globals, node: node)
            XCTAssertEqual(expander.expandEscaped(document), expected, "\(globals)")
        }
    }

    func testWhatTheStoredTextCannotCarryIsReadAsRows() {
        XCTAssertEqual(reason(context(data: "x"), scoped: true), "extensions scoped to nodes (each node gets its own variants)")
        // The renderer does not expand the context's name; the stored text would.
        XCTAssertNotNil(reason(context("ctx-$${zone}", data: "x")))
        // Escaping changes the name: the node could not find the reference again.
        XCTAssertNotNil(reason(context(data: "$${a&b}")))
        // Unterminated: literal for the renderer, a reference up to the next `}` in the document.
        XCTAssertNotNil(reason(context(data: "tail $${open", application: "bridge")))
        // An extension the validator rejects: the node must leave it out and say so.
        XCTAssertEqual(reason(context(data: "x", expression: "^(unclosed$"))?.hasPrefix("invalid extension call $${zone}"), true)
        XCTAssertNotNil(stored(context(data: "closed $${ok} }")))
    }

    func testExpressionsHoldingReferencesAreCheckedOnTheNode() throws {
        let (_, checks) = try XCTUnwrap(stored(context(data: "x", expression: "^$${prefix}(\\d+)$")))
        XCTAssertEqual(checks, ["^$${prefix}(\\d+)$"])
        var good = VariableExpander(globals: ["prefix": "9"])
        XCTAssertTrue(DialplanPrerender.passes(checks, expander: &good, compiler: pcre))
        var bad = VariableExpander(globals: ["prefix": "("])
        XCTAssertFalse(DialplanPrerender.passes(checks, expander: &bad, compiler: pcre))
        var data = DialplanData(context: DialplanContext(name: "office"))
        data.prerendered = "<document/>"
        data.prerenderChecks = checks
        data.globals = ["prefix": "("]
        XCTAssertTrue(DialplanRenderer.render(.context("office"), data, compiler: pcre).needsRows)
        data.globals = ["prefix": "9"]
        XCTAssertEqual(DialplanRenderer.render(.context("office"), data, compiler: pcre).xml, "<document/>")
    }

    /// Expanding escaped text equals escaping expanded text, for any arrangement of
    /// `$`, `{`, `}` (unterminated references, `$$$${`, references across the
    /// eight-byte steps of the scan).
    func testExpandingEscapedTextEqualsEscapingExpandedText() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ab$${}}x".utf8)
        for _ in 0..<3000 {
            let length = Int.random(in: 0...48, using: &generator)
            let text = String(decoding: (0..<length).map { _ in alphabet.randomElement(using: &generator)! }, as: UTF8.self)
            var a = VariableExpander(node: { "<\($0)&>" })
            var b = VariableExpander(node: { "<\($0)&>" })
            XCTAssertEqual(a.expandEscaped(text), XMLWriter.escape(b.expand(text)), text)
        }
    }
}
