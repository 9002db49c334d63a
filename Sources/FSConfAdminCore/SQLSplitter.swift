/// One SQL statement cut out of a script, with the line it starts on (1-based,
/// counted in the text that was split) so errors can point at it.

import FSConfCore

public struct SQLStatement: Equatable, Sendable {
    public var text: String
    public var line: Int
    public init(text: String, line: Int) { self.text = text; self.line = line }
}

/// Splits a PostgreSQL script into statements at top-level semicolons.
///
/// Understands what PostgreSQL's own lexer does that matters for finding `;`:
/// '…' strings (with '' escapes), E'…' strings (backslash escapes), "…" identifiers,
/// $tag$…$tag$ bodies, -- line comments and nested /* */ comments. Statements that are
/// only whitespace and comments are dropped.
public enum SQLSplitter {
    public static func split(_ script: String, firstLine: Int = 1) -> [SQLStatement] {
        let s = Array(script.utf8)
        var out: [SQLStatement] = []
        var start = 0
        var line = firstLine
        var startLine = firstLine
        var hasCode = false
        var i = 0
        func flush(_ end: Int) {
            if hasCode {
                let text = String(decoding: s[start..<end], as: UTF8.self)
                out.append(SQLStatement(text: trimmed(text), line: startLine))
            }
            hasCode = false
        }
        func markCode() {
            if !hasCode { hasCode = true; startLine = line; start = i }
        }
        while i < s.count {
            let c = s[i]
            switch c {
            case UInt8(ascii: "\n"):
                line += 1; i += 1
            case UInt8(ascii: "-") where i + 1 < s.count && s[i + 1] == UInt8(ascii: "-"):
                while i < s.count && s[i] != UInt8(ascii: "\n") { i += 1 }
            case UInt8(ascii: "/") where i + 1 < s.count && s[i + 1] == UInt8(ascii: "*"):
                var depth = 0
                while i < s.count {
                    if s[i] == UInt8(ascii: "/") && i + 1 < s.count && s[i + 1] == UInt8(ascii: "*") {
                        depth += 1; i += 2; continue
                    }
                    if s[i] == UInt8(ascii: "*") && i + 1 < s.count && s[i + 1] == UInt8(ascii: "/") {
                        depth -= 1; i += 2
                        if depth == 0 { break }
                        continue
                    }
                    if s[i] == UInt8(ascii: "\n") { line += 1 }
                    i += 1
                }
            case UInt8(ascii: "'"):
                markCode()
                let escaped = i > 0 && (s[i - 1] == UInt8(ascii: "E") || s[i - 1] == UInt8(ascii: "e"))
                    && (i < 2 || !isIdent(s[i - 2]))
                i += 1
                while i < s.count {
                    if s[i] == UInt8(ascii: "\n") { line += 1 }
                    if escaped && s[i] == UInt8(ascii: "\\") { i += 2; continue }
                    if s[i] == UInt8(ascii: "'") {
                        if i + 1 < s.count && s[i + 1] == UInt8(ascii: "'") { i += 2; continue }
                        i += 1; break
                    }
                    i += 1
                }
            case UInt8(ascii: "\""):
                markCode()
                i += 1
                while i < s.count {
                    if s[i] == UInt8(ascii: "\n") { line += 1 }
                    if s[i] == UInt8(ascii: "\"") { i += 1; break }
                    i += 1
                }
            case UInt8(ascii: "$"):
                markCode()
                // $tag$ where tag is empty or an identifier not starting with a digit.
                var j = i + 1
                while j < s.count && isIdent(s[j]) { j += 1 }
                let tagOK = j < s.count && s[j] == UInt8(ascii: "$")
                    && (j == i + 1 || !isDigit(s[i + 1]))
                    && (i == 0 || !isIdent(s[i - 1]))
                if !tagOK { i += 1; break }
                let tag = Array(s[i...j])
                i = j + 1
                while i < s.count {
                    if s[i] == UInt8(ascii: "$") && i + tag.count <= s.count && Array(s[i..<(i + tag.count)]) == tag {
                        i += tag.count; break
                    }
                    if s[i] == UInt8(ascii: "\n") { line += 1 }
                    i += 1
                }
            case UInt8(ascii: ";"):
                flush(i)
                i += 1
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                i += 1
            default:
                markCode()
                i += 1
            }
        }
        flush(s.count)
        return out
    }

    private static func isIdent(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || isDigit(c) || c == 0x5f || c >= 0x80
    }
    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    static func trimmed(_ text: String) -> String {
        var scalars = Substring(text)
        while let f = scalars.first, f == " " || f == "\n" || f == "\t" || f == "\r" { scalars.removeFirst() }
        while let l = scalars.last, l == " " || l == "\n" || l == "\t" || l == "\r" { scalars.removeLast() }
        return String(scalars)
    }
}
