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
        start(tag)
        for (name, value) in attributes { attribute(name, value) }
        finish(selfClosing: selfClosing)
    }

    /// `<tag`: attributes follow (`attribute`), then `finish`. The hot renderers
    /// write elements this way: no array of attributes per element.
    public mutating func start(_ tag: String) {
        newline()
        output.append(UInt8(ascii: "<"))
        XMLWriter.append(tag, to: &output)
    }

    /// ` name="value"` (the value escaped), between `start` and `finish`.
    public mutating func attribute(_ name: String, _ value: String) {
        beginAttribute(name)
        XMLWriter.escape(value, into: &output)
        output.append(UInt8(ascii: "\""))
    }

    /// ` name="value"` with the value's UTF-8 bytes (escaped), as read from a result.
    public mutating func attribute(_ name: String, bytes value: UnsafeBufferPointer<UInt8>) {
        beginAttribute(name)
        XMLWriter.escape(value, into: &output)
        output.append(UInt8(ascii: "\""))
    }

    /// The same with the attribute's name as bytes (a stored attribute setting's name,
    /// written as `attribute(_:_:)` writes a name: as it is).
    public mutating func attribute(bytes name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) {
        output.append(UInt8(ascii: " "))
        output.append(contentsOf: name)
        output.append(UInt8(ascii: "="))
        output.append(UInt8(ascii: "\""))
        XMLWriter.escape(value, into: &output)
        output.append(UInt8(ascii: "\""))
    }

    /// ` name="`: what every attribute starts with.
    private mutating func beginAttribute(_ name: String) {
        output.append(UInt8(ascii: " "))
        XMLWriter.append(name, to: &output)
        output.append(UInt8(ascii: "="))
        output.append(UInt8(ascii: "\""))
    }

    /// Ends what `start` began with character data and the end tag, on one line
    /// (`element`'s form).
    public mutating func finish(text: String, closing tag: String) {
        output.append(UInt8(ascii: ">"))
        XMLWriter.escape(text, into: &output)
        endTag(tag)
    }

    /// `</tag>`.
    private mutating func endTag(_ tag: String) {
        output.append(UInt8(ascii: "<"))
        output.append(UInt8(ascii: "/"))
        XMLWriter.append(tag, to: &output)
        output.append(UInt8(ascii: ">"))
    }

    /// Ends what `start` began: `/>`, or `>` (the element stays open).
    public mutating func finish(selfClosing: Bool) {
        if selfClosing {
            output.append(UInt8(ascii: "/"))
            output.append(UInt8(ascii: ">"))
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
        endTag(tag)
    }

    /// `<tag a="v">text</tag>` on one line.
    public mutating func element(_ tag: String, _ attributes: [(String, String)] = [], text: String) {
        start(tag)
        for (name, value) in attributes { attribute(name, value) }
        finish(text: text, closing: tag)
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

    /// `raw` from bytes (a stored fragment read from a result).
    public mutating func raw(bytes xml: UnsafeBufferPointer<UInt8>) {
        newline()
        output.append(contentsOf: xml)
    }

    private mutating func newline() {
        guard indent, !output.isEmpty else { return }
        output.append(UInt8(ascii: "\n"))
        var spaces = 2 * depth
        while spaces > 0 {
            // Copied from a static run of spaces (no Repeated sequence per line).
            let run = min(spaces, XMLWriter.spaces.utf8CodeUnitCount)
            output.append(contentsOf: UnsafeBufferPointer(start: XMLWriter.spaces.utf8Start, count: run))
            spaces -= run
        }
    }

    private static let spaces: StaticString = "                                "

    @inline(__always)
    static func append(static text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// A string's bytes, copied from its contiguous storage when it has one.
    @inline(__always)
    static func append(_ text: String, to out: inout [UInt8]) {
        if text.utf8.withContiguousStorageIfAvailable({ out.append(contentsOf: $0) }) == nil {
            out.append(contentsOf: text.utf8)
        }
    }

    /// Escapes text for an attribute value or character data. Characters XML 1.0
    /// cannot carry at all (C0 controls other than tab, LF, CR; U+FFFE/U+FFFF) are
    /// dropped, so a stored value can never make the document unparsable.
    public static func escape(_ text: String, into out: inout [UInt8]) {
        if text.utf8.withContiguousStorageIfAvailable({ escape($0, into: &out) }) == nil {
            Array(text.utf8).withUnsafeBufferPointer { escape($0, into: &out) }
        }
    }

    /// The same over UTF-8 bytes (a Swift string's, so valid UTF-8): runs that need
    /// nothing are copied whole.
    public static func escape(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        let n = bytes.count
        var run = 0, i = 0
        while i < n {
            let b = bytes[i]
            // Fast path: bytes that stand for themselves (below 0x40 the mask says
            // which do not: C0 controls, " & ' < >; above, only EF may start U+FFFE/F).
            if b < 0x40 ? (XMLWriter.special >> UInt64(b)) & 1 == 0 : b != 0xEF {
                i += 1
                continue
            }
            if run < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<i])) }
            var skip = 1
            switch b {
            case 0x26: append(static: "&amp;", to: &out)
            case 0x3C: append(static: "&lt;", to: &out)
            case 0x3E: append(static: "&gt;", to: &out)
            case 0x22: append(static: "&quot;", to: &out)
            case 0x27: append(static: "&apos;", to: &out)
            case 0x09: append(static: "&#9;", to: &out)
            case 0x0A: append(static: "&#10;", to: &out)
            case 0x0D: append(static: "&#13;", to: &out)
            case 0xEF:
                // U+FFFE and U+FFFF (EF BF BE, EF BF BF) are dropped; any other
                // character starting with EF is copied.
                if i + 2 < n, bytes[i + 1] == 0xBF, bytes[i + 2] == 0xBE || bytes[i + 2] == 0xBF {
                    skip = 3
                } else {
                    out.append(b)
                }
            default: break  // other C0 controls: dropped
            }
            i += skip
            run = i
        }
        if run < n { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<n])) }
    }

    /// Bit b set: byte b (below 0x40) is escaped or dropped.
    static let special: UInt64 = 0xFFFF_FFFF | 1 << 0x22 | 1 << 0x26 | 1 << 0x27 | 1 << 0x3C | 1 << 0x3E

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
