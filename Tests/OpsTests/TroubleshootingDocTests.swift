import FSConfTestSupport
import Foundation
import XCTest

/// docs/troubleshooting.md lists every line the node library and the agent can
/// log. The lines are read from the sources (string literals in the calls that
/// log), so the list cannot drift: a new or changed message fails this test until
/// it is documented.
final class TroubleshootingDocTests: XCTestCase {
    /// A string literal: its text pieces, an interpolation between each two.
    struct Literal: CustomStringConvertible {
        var pieces: [String]
        var file: String
        var context: String
        var description: String { "\(file): \(pieces.joined(separator: "…"))" }
    }

    func testEveryLogLineOfTheLibraryAndTheAgentIsDocumented() throws {
        let doc = try String(contentsOf: TestEnvironment.repoRoot.appendingPathComponent("docs/troubleshooting.md"), encoding: .utf8)
        let lines = doc.split(separator: "\n").map(String.init)
        let messages = try TroubleshootingDocTests.logMessages()
        XCTAssertGreaterThan(messages.count, 40, "the extraction found too few messages: \(messages)")
        var missing: [String] = []
        for message in messages where !lines.contains(where: { TroubleshootingDocTests.matches(message.pieces, $0) }) {
            missing.append(message.description)
        }
        XCTAssertEqual(missing, [], "log lines missing from docs/troubleshooting.md (write each on one line, any word for an interpolation)")
    }

    /// The extraction itself finds what it should (so that an empty list cannot pass).
    func testTheExtractionFindsKnownMessages() throws {
        let texts = try TroubleshootingDocTests.logMessages().map { $0.pieces.joined(separator: "…") }
        for known in ["fsconf: database unavailable since …, serving stale answers (… so far)…",
                      "fsconf: change listener lost the database (…); answers are read from the database until it is back",
                      "… must be a whole number in …...…, got …",   // NodeSettings, after "fsconf: bad shim settings: "
                      "all … connections busy until the deadline",
                      "lost the database: …; reconnecting",
                      "`…` failed … times (last reply: …); giving up on it",   // AgentMachine; the agent adds "REPORT: "
                      "event socket at …:… refused the password (…)"] {
            XCTAssertTrue(texts.contains(known), "\(known) not extracted")
        }
    }

    /// True when `line` holds every (non-blank) piece, in order.
    static func matches(_ pieces: [String], _ line: String) -> Bool {
        var rest = line[...]
        for piece in pieces where !piece.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let range = rest.range(of: piece) else { return false }
            rest = rest[range.upperBound...]
        }
        return true
    }

    /// The messages: in the node library (FSConfNode, FSConfLua) every literal that
    /// starts with "fsconf: ", the reasons given to NodeError.configuration, the
    /// library's own PostgresError messages and how they are described (FSConfStore,
    /// FSConfNode), the log limiter's suffix; in the agent (Agent.swift) every
    /// `log(…)` line and every CLIFailure, what FSConfAgentCore logs and reports
    /// (`.log(…)`, `.report(…)`), and the event socket's failures (EventSocket.swift).
    static func logMessages() throws -> [Literal] {
        let root = TestEnvironment.repoRoot.appendingPathComponent("Sources")
        func files(_ folder: String) throws -> [URL] {
            try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path)
                .filter { $0.hasSuffix(".swift") }.sorted().map { root.appendingPathComponent("\(folder)/\($0)") }
        }
        var out: [Literal] = []
        for file in try files("FSConfNode") + files("FSConfLua") + files("FSConfStore") {
            let library = !file.path.contains("/FSConfStore/")
            for literal in try literals(in: file) {
                let first = literal.pieces.first ?? ""
                if library && first.hasPrefix("fsconf: ") { out.append(literal) }
                else if library && literal.context.hasSuffix(".configuration(") { out.append(literal) }
                else if literal.context.hasSuffix("message: ") && literal.context.contains("PostgresError(") { out.append(literal) }
                else if file.lastPathComponent == "PostgresError.swift" && literal.context.hasSuffix("return ") { out.append(literal) }
                else if library && literal.pieces.joined().contains("similar message(s) suppressed") { out.append(literal) }
            }
        }
        for literal in try literals(in: root.appendingPathComponent("fsconf/Agent.swift"))
        where literal.context.hasSuffix("log(") || literal.context.hasSuffix("CLIFailure(") {
            out.append(literal)
        }
        for file in try files("FSConfAgentCore") {   // what the agent logs and reports (REPORT: …)
            for literal in try literals(in: file) where literal.context.hasSuffix(".log(") || literal.context.hasSuffix(".report(") {
                out.append(literal)
            }
        }
        for literal in try literals(in: root.appendingPathComponent("fsconf/EventSocket.swift"))
        where literal.context.hasSuffix("Failure(description: ") {
            out.append(literal)
        }
        return out
    }

    /// Every top-level string literal of a Swift file (not those inside another
    /// literal's interpolation), with the 60 characters of code before it.
    static func literals(in file: URL) throws -> [Literal] {
        let source = Array(try String(contentsOf: file, encoding: .utf8).unicodeScalars)
        var out: [Literal] = []
        var i = 0
        func at(_ k: Int, _ text: String) -> Bool {
            let t = Array(text.unicodeScalars)
            return k + t.count <= source.count && Array(source[k..<(k + t.count)]) == t
        }
        while i < source.count {
            if at(i, "//") { while i < source.count && source[i] != "\n" { i += 1 }; continue }
            if at(i, "/*") { i += 2; while i < source.count && !at(i, "*/") { i += 1 }; i += 2; continue }
            if source[i] == "#" && at(i + 1, "\"") {   // raw string: no escapes, no interpolation here
                i += 2
                while i < source.count && !at(i, "\"#") { i += 1 }
                i += 2
                continue
            }
            if source[i] == "\"" {
                let contextStart = max(0, i - 60)
                let context = String(String.UnicodeScalarView(source[contextStart..<i]))
                let (pieces, end) = readLiteral(source, i)
                out.append(Literal(pieces: pieces, file: file.lastPathComponent, context: context))
                i = end
                continue
            }
            i += 1
        }
        return out
    }

    /// Reads a literal starting at `start` (a `"` or `"""`); returns its pieces
    /// (escapes decoded, interpolations as breaks) and the offset after it.
    static func readLiteral(_ s: [Unicode.Scalar], _ start: Int) -> ([String], Int) {
        let multiline = start + 2 < s.count && s[start + 1] == "\"" && s[start + 2] == "\""
        var i = start + (multiline ? 3 : 1)
        var pieces: [String] = []
        var current = ""
        while i < s.count {
            if multiline && s[i] == "\"" && i + 2 < s.count && s[i + 1] == "\"" && s[i + 2] == "\"" { i += 3; break }
            if !multiline && s[i] == "\"" { i += 1; break }
            if s[i] == "\\" && i + 1 < s.count {
                let e = s[i + 1]
                if e == "(" {
                    pieces.append(current); current = ""
                    var depth = 1
                    i += 2
                    while i < s.count && depth > 0 {
                        if s[i] == "\"" { i = readLiteral(s, i).1; continue }
                        if s[i] == "(" { depth += 1 } else if s[i] == ")" { depth -= 1 }
                        i += 1
                    }
                    continue
                }
                switch e {
                case "n": current += multiline ? "\n" : ""
                case "t": current += "\t"
                case "\n": i += 2; while i < s.count && (s[i] == " ") { i += 1 }; continue  // line continuation
                default: current.unicodeScalars.append(e)
                }
                i += 2
                continue
            }
            if multiline && s[i] == "\n" {
                current += " "
                i += 1
                while i < s.count && s[i] == " " { i += 1 }
                continue
            }
            current.unicodeScalars.append(s[i])
            i += 1
        }
        pieces.append(current)
        if multiline {   // the opening and closing line breaks are not text
            pieces[0] = String(pieces[0].drop { $0 == " " })
            pieces[pieces.count - 1] = String(pieces[pieces.count - 1].reversed().drop { $0 == " " }.reversed())
        }
        return (pieces, i)
    }
}
