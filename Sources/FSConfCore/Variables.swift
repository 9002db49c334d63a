/// Expands `$${name}` references the way FreeSWITCH's pre-processor does for
/// static files — which it never does for handler answers, so fsconf must.
///
/// Names come from the global-variables table first, then from the node
/// (`freeswitch.getGlobalVariable`: values like local_ip_v4 differ per node);
/// a name nobody knows becomes empty, as in FreeSWITCH. `${name}` (one dollar)
/// is a channel variable and is left alone.
public struct VariableExpander {
    public var globals: [String: String]
    public var node: (String) -> String?
    private var nodeCache: [String: String?] = [:]

    public init(globals: [String: String] = [:], node: @escaping (String) -> String? = { _ in nil }) {
        self.globals = globals
        self.node = node
    }

    public static func hasReference(_ text: String) -> Bool {
        var previous: (UInt8, UInt8) = (0, 0)
        for byte in text.utf8 {
            if byte == UInt8(ascii: "{") && previous == (UInt8(ascii: "$"), UInt8(ascii: "$")) { return true }
            previous = (previous.1, byte)
        }
        return false
    }

    /// Names referenced by `text` (for fetching exactly the globals a lookup needs).
    public static func references(in text: String) -> [String] {
        var names: [String] = []
        scan(text) { piece in if case .reference(let name) = piece { names.append(name) } }
        return names
    }

    public mutating func expand(_ text: String) -> String {
        guard VariableExpander.hasReference(text) else { return text }
        return expand(text, depth: 0)
    }

    private mutating func expand(_ text: String, depth: Int) -> String {
        // Appends as `scan` walks (no list of pieces: a lookup expands many values).
        var out = ""
        VariableExpander.scan(text) { piece in
            switch piece {
            case .literal(let literal): out += literal
            case .reference(let name):
                if depth < 8 { out += expand(value(of: name), depth: depth + 1) }
            }
        }
        return out
    }

    enum Piece { case literal(Substring), reference(String) }

    /// Splits text into literal runs and `$${name}` references. An unterminated
    /// reference stays literal text.
    static func scan(_ text: String, _ visit: (Piece) -> Void) {
        let bytes = text.utf8
        var literalStart = bytes.startIndex
        var i = bytes.startIndex
        while i != bytes.endIndex {
            guard bytes[i] == UInt8(ascii: "$") else { i = bytes.index(after: i); continue }
            let j = bytes.index(after: i)
            guard j != bytes.endIndex, bytes[j] == UInt8(ascii: "$") else { i = j; continue }
            let k = bytes.index(after: j)
            guard k != bytes.endIndex, bytes[k] == UInt8(ascii: "{") else { i = j; continue }
            let nameStart = bytes.index(after: k)
            guard let close = bytes[nameStart...].firstIndex(of: UInt8(ascii: "}")) else { break }
            if literalStart != i { visit(.literal(text[literalStart..<i])) }
            visit(.reference(String(text[nameStart..<close])))
            i = bytes.index(after: close)
            literalStart = i
        }
        if literalStart != bytes.endIndex { visit(.literal(text[literalStart...])) }
    }

    private mutating func value(of name: String) -> String {
        if let v = globals[name] { return v }
        if let cached = nodeCache[name] { return cached ?? "" }
        let v = node(name)
        nodeCache[name] = v
        return v ?? ""
    }
}
