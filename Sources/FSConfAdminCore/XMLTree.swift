/// A parsed XML element: what FreeSWITCH's own parser (ezxml in switch_xml.c) keeps
/// of a document — names, attributes in order, child elements in order and the
/// element's character data. Comments and processing instructions are dropped.

import FSConfCore

public struct ParsedElement: Sendable {
    public var name: String
    public var attributes: [(name: String, value: String)]
    public var children: [ParsedElement]
    /// All character data directly inside the element, concatenated (as FreeSWITCH's
    /// `txt`); nil when there is none or it is only whitespace.
    public var text: String?
    /// Line of the start tag in the parsed text (1-based).
    public var line: Int
    /// True when non-whitespace text and child elements are mixed.
    public var mixedContent: Bool = false
    /// The nodes this element is for (stored elements, docs/cluster.md); nil: every node.
    public var scope: Scope?

    public init(name: String, attributes: [(name: String, value: String)] = [], children: [ParsedElement] = [],
                text: String? = nil, line: Int = 0) {
        self.name = name; self.attributes = attributes; self.children = children; self.text = text; self.line = line
    }

    public func attribute(_ name: String) -> String? {
        attributes.first { $0.name == name }?.value
    }

    /// FreeSWITCH's `switch_xml_attr_soft`-like case-sensitive lookup of a child.
    public func child(_ name: String) -> ParsedElement? { children.first { $0.name == name } }
    public func children(_ name: String) -> [ParsedElement] { children.filter { $0.name == name } }
}

extension ParsedElement: Equatable {
    /// Structural equality: name, attributes in order, children in order, text.
    /// Lines are not compared.
    public static func == (l: ParsedElement, r: ParsedElement) -> Bool {
        l.name == r.name && l.text == r.text && l.scope == r.scope && l.attributes.count == r.attributes.count
            && zip(l.attributes, r.attributes).allSatisfy { $0.name == $1.name && $0.value == $1.value }
            && l.children == r.children
    }
}

public struct XMLParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var message: String
    /// The line of the start tag an unclosed or mismatched tag refers to.
    public var openedAt: Int?
    public init(line: Int, message: String, openedAt: Int? = nil) { self.line = line; self.message = message; self.openedAt = openedAt }
    public var description: String { "line \(line): \(message)" + (openedAt.map { " (opened at line \($0))" } ?? "") }
}

/// A small strict XML parser over UTF-8 bytes, lenient where FreeSWITCH's parser
/// (switch_xml_parse_str) is: unknown entity references stay literal text; `<` may
/// appear in attribute values; a DOCTYPE is skipped (never processed); an attribute
/// without a value has the value ""; of duplicate attributes the first counts; text
/// outside the root is ignored. Strict where it fails: unclosed or mismatched tags,
/// markup outside the root, missing quotes, several roots.
public struct XMLTreeParser {
    private let bytes: [UInt8]
    private var i = 0
    private var line = 1

    public static func parse(_ text: String) throws(XMLParseError) -> ParsedElement {
        var parser = XMLTreeParser(bytes: Array(text.utf8))
        return try parser.document()
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    private func fail(_ message: String, at line: Int? = nil) -> XMLParseError {
        XMLParseError(line: line ?? self.line, message: message)
    }

    private mutating func advance(_ n: Int = 1) {
        for _ in 0..<n where i < bytes.count {
            if bytes[i] == 10 { line += 1 }
            i += 1
        }
    }

    private func starts(_ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        guard i + n <= bytes.count else { return false }
        let p = s.utf8Start
        for k in 0..<n where bytes[i + k] != p[k] { return false }
        return true
    }

    /// Skips to just past `terminator`; false when it never comes.
    private mutating func skip(past terminator: StaticString) -> Bool {
        while i < bytes.count {
            if starts(terminator) { advance(terminator.utf8CodeUnitCount); return true }
            advance()
        }
        return false
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 }
    private static func isNameByte(_ b: UInt8) -> Bool {
        !(isSpace(b) || b == UInt8(ascii: "/") || b == UInt8(ascii: ">") || b == UInt8(ascii: "=")
          || b == UInt8(ascii: "<") || b == UInt8(ascii: "\"") || b == UInt8(ascii: "'"))
    }
    private static func isNameStart(_ b: UInt8) -> Bool {
        (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == UInt8(ascii: "_") || b == UInt8(ascii: ":") || b >= 0x80
    }

    private mutating func skipSpace() { while i < bytes.count && XMLTreeParser.isSpace(bytes[i]) { advance() } }

    /// Skips `<!DOCTYPE …>` (with an internal subset `[…]`) the way switch_xml_parse_str
    /// finds its end. Its declarations are not processed: no entity is defined or
    /// expanded (references stay literal text) and nothing external is read.
    private mutating func skipDoctype() throws(XMLParseError) {
        let start = line
        var inSubset = false
        while i < bytes.count {
            let b = bytes[i]
            if !inSubset && b == UInt8(ascii: "[") { inSubset = true }
            else if !inSubset && b == UInt8(ascii: ">") { advance(); return }
            else if inSubset && b == UInt8(ascii: "]") {
                var k = i + 1
                while k < bytes.count && XMLTreeParser.isSpace(bytes[k]) { k += 1 }
                if k < bytes.count && bytes[k] == UInt8(ascii: ">") { advance(k + 1 - i); return }
            }
            advance()
        }
        throw fail("unclosed <!DOCTYPE", at: start)
    }

    /// Skips comments, PIs, DOCTYPE, whitespace and text outside the root (switch_xml.c
    /// skips text before the first `<` and ignores character data after the root).
    private mutating func misc(afterRoot: Bool) throws(XMLParseError) {
        while true {
            skipSpace()
            if i >= bytes.count { return }
            if starts("<!--") {
                let start = line
                advance(4)
                guard skip(past: "-->") else { throw fail("unclosed <!--", at: start) }
            } else if starts("<?") {
                let start = line
                guard skip(past: "?>") else { throw fail("unclosed <?", at: start) }
            } else if starts("<!DOCTYPE") {
                try skipDoctype()
            } else if bytes[i] == UInt8(ascii: "<") {
                if afterRoot { throw fail("markup outside of the root element (several top-level elements)") }
                return
            } else {
                while i < bytes.count && bytes[i] != UInt8(ascii: "<") { advance() }
            }
        }
    }

    mutating func document() throws(XMLParseError) -> ParsedElement {
        try misc(afterRoot: false)
        guard i < bytes.count else { throw fail("root element missing") }
        let root = try element()
        try misc(afterRoot: true)
        return root
    }

    private mutating func name() throws(XMLParseError) -> String {
        guard i < bytes.count, XMLTreeParser.isNameStart(bytes[i]) else {
            throw fail("a name was expected")
        }
        let start = i
        while i < bytes.count && XMLTreeParser.isNameByte(bytes[i]) { advance() }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    /// Parses one element starting at `<`. Iterative over depth to survive deep trees.
    private mutating func element() throws(XMLParseError) -> ParsedElement {
        var stack: [(element: ParsedElement, text: [UInt8], textSegments: Int)] = []
        while true {
            // At '<' of a start tag.
            let startLine = line
            advance() // '<'
            let tag = try name()
            var attributes: [(name: String, value: String)] = []
            var selfClosing = false
            while true {
                skipSpace()
                guard i < bytes.count else { throw fail("unclosed start tag <\(tag)>", at: startLine) }
                if bytes[i] == UInt8(ascii: "/") {
                    advance()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ">") else { throw fail("missing > in <\(tag)>") }
                    advance(); selfClosing = true; break
                }
                if bytes[i] == UInt8(ascii: ">") { advance(); break }
                let attributeName = try name()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "=") else {
                    // switch_xml_parse_str: an attribute without `=value` has the value "".
                    if !attributes.contains(where: { $0.name == attributeName }) { attributes.append((attributeName, "")) }
                    continue
                }
                advance()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "'") else {
                    throw fail("attribute \(attributeName) of <\(tag)>: value must be quoted")
                }
                let quote = bytes[i]
                let valueLine = line
                advance()
                let start = i
                while i < bytes.count && bytes[i] != quote { advance() }
                guard i < bytes.count else { throw fail("missing closing quote for attribute \(attributeName)", at: valueLine) }
                let value = XMLTreeParser.decode(bytes[start..<i], attribute: true)
                advance()
                // Duplicates: switch_xml_attr returns the first, so the first is kept.
                if !attributes.contains(where: { $0.name == attributeName }) { attributes.append((attributeName, value)) }
            }
            if stack.count >= FieldValidation.maximumDepth {
                throw fail("elements nested deeper than \(FieldValidation.maximumDepth) levels", at: startLine)
            }
            var current = ParsedElement(name: tag, attributes: attributes, line: startLine)
            if !selfClosing {
                stack.append((current, [], 0))
            } else if stack.isEmpty {
                return current
            } else {
                stack[stack.count - 1].element.children.append(current)
            }
            // Content until the next start tag (or the end of the outermost element).
            while true {
                guard !stack.isEmpty else { return current }
                // Character data.
                let textStart = i
                while i < bytes.count && bytes[i] != UInt8(ascii: "<") { advance() }
                if i > textStart {
                    let segment = bytes[textStart..<i]
                    if segment.contains(where: { !XMLTreeParser.isSpace($0) }) { stack[stack.count - 1].textSegments += 1 }
                    stack[stack.count - 1].text.append(contentsOf: XMLTreeParser.decode(segment, attribute: false).utf8)
                }
                guard i < bytes.count else {
                    let open = stack[stack.count - 1].element
                    throw XMLParseError(line: line, message: "unclosed tag <\(open.name)>", openedAt: open.line)
                }
                if starts("<!--") {
                    let start = line
                    advance(4)
                    guard skip(past: "-->") else { throw fail("unclosed <!--", at: start) }
                } else if starts("<![CDATA[") {
                    let start = line
                    advance(9)
                    let dataStart = i
                    guard skip(past: "]]>") else { throw fail("unclosed <![CDATA[", at: start) }
                    stack[stack.count - 1].text.append(contentsOf: bytes[dataStart..<(i - 3)])
                    stack[stack.count - 1].textSegments += 1
                } else if starts("<?") {
                    let start = line
                    guard skip(past: "?>") else { throw fail("unclosed <?", at: start) }
                } else if starts("</") {
                    advance(2)
                    let closing = try name()
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ">") else { throw fail("missing > in </\(closing)>") }
                    advance()
                    var (done, text, segments) = stack.removeLast()
                    guard closing == done.name else {
                        throw XMLParseError(line: line, message: "closing tag </\(closing)> does not match <\(done.name)>", openedAt: done.line)
                    }
                    if text.contains(where: { !XMLTreeParser.isSpace($0) }) {
                        done.text = String(decoding: text, as: UTF8.self)
                        done.mixedContent = !done.children.isEmpty && segments > 0
                    }
                    text = []
                    if stack.isEmpty { return done }
                    stack[stack.count - 1].element.children.append(done)
                    current = done
                } else if starts("<!DOCTYPE") {
                    try skipDoctype()
                } else if starts("<!") {
                    throw fail("unexpected <!")
                } else {
                    // Next start tag.
                    guard i + 1 < bytes.count, XMLTreeParser.isNameStart(bytes[i + 1]) else { throw fail("unexpected <") }
                    break
                }
            }
        }
    }

    /// Decodes entity and character references; unknown references stay literal (as
    /// in FreeSWITCH). Attribute values get whitespace normalised to spaces, text gets
    /// CR LF → LF, as FreeSWITCH's parser does.
    static func decode(_ raw: ArraySlice<UInt8>, attribute: Bool) -> String {
        if !raw.contains(UInt8(ascii: "&")) && !raw.contains(where: { $0 == 13 || (attribute && ($0 == 9 || $0 == 10)) }) {
            return String(decoding: raw, as: UTF8.self)
        }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var k = raw.startIndex
        while k < raw.endIndex {
            let b = raw[k]
            if b == UInt8(ascii: "&"), let semi = raw[k...].prefix(12).firstIndex(of: UInt8(ascii: ";")) {
                let entity = String(decoding: raw[(k + 1)..<semi], as: UTF8.self)
                var replacement: [UInt8]? = nil
                switch entity {
                case "amp": replacement = [UInt8(ascii: "&")]
                case "lt": replacement = [UInt8(ascii: "<")]
                case "gt": replacement = [UInt8(ascii: ">")]
                case "quot": replacement = [UInt8(ascii: "\"")]
                case "apos": replacement = [UInt8(ascii: "'")]
                default:
                    if entity.hasPrefix("#") {
                        let digits = entity.dropFirst()
                        let value = digits.hasPrefix("x") || digits.hasPrefix("X")
                            ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits, radix: 10)
                        if let value, let scalar = Unicode.Scalar(value), value != 0 {
                            replacement = Array(String(Character(scalar)).utf8)
                        }
                    }
                }
                if let replacement {
                    out.append(contentsOf: replacement)
                    k = semi + 1
                    continue
                }
            }
            if b == 13 {
                // CR LF and lone CR become LF (a space in attributes).
                out.append(attribute ? 32 : 10)
                if k + 1 < raw.endIndex && raw[k + 1] == 10 { k += 1 }
            } else if attribute && (b == 9 || b == 10) {
                out.append(32)
            } else {
                out.append(b)
            }
            k += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension ParsedElement {
    /// Writes the element with XMLWriter (escaped, indented by the writer's setting).
    public func write(to w: inout XMLWriter) {
        if children.isEmpty {
            if let text { w.element(name, attributes.map { ($0.name, $0.value) }, text: text) }
            else { w.empty(name, attributes.map { ($0.name, $0.value) }) }
            return
        }
        w.open(name, attributes.map { ($0.name, $0.value) })
        if let text { w.textLine(text) }
        for child in children { child.write(to: &w) }
        w.close(name)
    }

    /// Compact, well-formed serialisation (used for users.extra_xml).
    public var compactXML: String {
        var w = XMLWriter(indent: false, capacity: 256)
        write(to: &w)
        return w.string
    }
}

extension XMLWriter {
    /// Character data on its own line inside the current element.
    public mutating func textLine(_ text: String) {
        raw(XMLWriter.escape(text))
    }
}
