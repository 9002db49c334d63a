/// Builds XML text. Every attribute value and text node goes through `escape`,
/// so nothing stored in the database can change the document's structure.
public struct XMLWriter: Sendable {
    public private(set) var output: [UInt8] = []
    private var depth = 0
    public var indent: Bool

    public init(indent: Bool = true, capacity: Int = 1024) {
        self.indent = indent
        output.reserveCapacity(capacity)
    }

    public var string: String { String(decoding: output, as: UTF8.self) }

    /// `<tag a="v"...>` (or `<tag .../>` when `selfClosing`).
    public mutating func open(_ tag: String, _ attributes: [(String, String)] = [], selfClosing: Bool = false) {
        newline()
        output.append(UInt8(ascii: "<"))
        output.append(contentsOf: tag.utf8)
        for (name, value) in attributes {
            output.append(UInt8(ascii: " "))
            output.append(contentsOf: name.utf8)
            output.append(contentsOf: "=\"".utf8)
            XMLWriter.escape(value, into: &output)
            output.append(UInt8(ascii: "\""))
        }
        if selfClosing {
            output.append(contentsOf: "/>".utf8)
        } else {
            output.append(UInt8(ascii: ">"))
            depth += 1
        }
    }

    /// `<tag a="v"/>`.
    public mutating func empty(_ tag: String, _ attributes: [(String, String)] = []) {
        open(tag, attributes, selfClosing: true)
    }

    public mutating func close(_ tag: String) {
        depth -= 1
        newline()
        output.append(contentsOf: "</".utf8)
        output.append(contentsOf: tag.utf8)
        output.append(UInt8(ascii: ">"))
    }

    /// `<tag a="v">text</tag>` on one line.
    public mutating func element(_ tag: String, _ attributes: [(String, String)] = [], text: String) {
        open(tag, attributes)
        XMLWriter.escape(text, into: &output)
        depth -= 1
        output.append(contentsOf: "</".utf8)
        output.append(contentsOf: tag.utf8)
        output.append(UInt8(ascii: ">"))
    }

    /// Character data inside the open element, escaped, with no added whitespace.
    public mutating func text(_ text: String) {
        XMLWriter.escape(text, into: &output)
    }

    /// Appends XML that is already well-formed (stored verbatim fragments).
    public mutating func raw(_ xml: String) {
        newline()
        output.append(contentsOf: xml.utf8)
    }

    private mutating func newline() {
        guard indent, !output.isEmpty else { return }
        output.append(UInt8(ascii: "\n"))
        for _ in 0..<max(depth, 0) { output.append(contentsOf: "  ".utf8) }
    }

    /// Escapes text for an attribute value or character data. Characters XML 1.0
    /// cannot carry at all (C0 controls other than tab, LF, CR; U+FFFE/U+FFFF) are
    /// dropped, so a stored value can never make the document unparsable.
    public static func escape(_ text: String, into out: inout [UInt8]) {
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out.append(contentsOf: "&amp;".utf8)
            case "<": out.append(contentsOf: "&lt;".utf8)
            case ">": out.append(contentsOf: "&gt;".utf8)
            case "\"": out.append(contentsOf: "&quot;".utf8)
            case "'": out.append(contentsOf: "&apos;".utf8)
            case "\t": out.append(contentsOf: "&#9;".utf8)
            case "\n": out.append(contentsOf: "&#10;".utf8)
            case "\r": out.append(contentsOf: "&#13;".utf8)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF { continue }
                out.append(contentsOf: String(scalar).utf8)
            }
        }
    }

    public static func escape(_ text: String) -> String {
        var out: [UInt8] = []
        escape(text, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// The documents every handler answer is wrapped in.
public enum FreeSWITCHDocument {
    /// The answer that makes FreeSWITCH try the next handler, then its static files.
    public static let notFound =
        #"<document type="freeswitch/xml"><section name="result"><result status="not found"/></section></document>"#

    /// Starts `<document type="freeswitch/xml"><section name="…">`.
    public static func begin(_ writer: inout XMLWriter, section: String, attributes: [(String, String)] = []) {
        writer.open("document", [("type", "freeswitch/xml")])
        writer.open("section", [("name", section)] + attributes)
    }

    public static func end(_ writer: inout XMLWriter) {
        writer.close("section")
        writer.close("document")
    }
}
