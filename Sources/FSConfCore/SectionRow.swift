/// One row of a dialplan or tree-store query, in the uniform shape those
/// statements return: a record type, the row's id, its parent's id, an owner id
/// (the extension of a condition), a position, then text values.
public struct SectionRow: Equatable, Sendable {
    public var kind: String
    public var id: Int64
    public var parent: Int64?
    public var owner: Int64?
    public var position: Int
    public var values: [String?]

    public init(kind: String, id: Int64, parent: Int64? = nil, owner: Int64? = nil, position: Int = 0,
                values: [String?] = []) {
        self.kind = kind; self.id = id; self.parent = parent; self.owner = owner
        self.position = position; self.values = values
    }

    /// Value `i` (0-based), nil when absent.
    @inline(__always)
    public func value(_ i: Int) -> String? { i < values.count ? values[i] : nil }

    /// Record type of a global variable row: values (name, value).
    public static let globalVariable = "V"

    /// The `$${name}` values a result carries. A global's scoped variants come as
    /// several rows of one name, `owner` saying how specifically each names the node:
    /// the most specific wins, then the earliest created (docs/cluster.md).
    public static func globals(_ rows: [SectionRow]) -> [String: String] {
        var globals: [String: (value: String, rank: Int64, id: Int64)] = [:]
        for row in rows where row.kind == globalVariable {
            guard let name = row.value(0) else { continue }
            let rank = row.owner ?? 0
            if let held = globals[name], held.rank > rank || (held.rank == rank && held.id < row.id) { continue }
            globals[name] = (row.value(1) ?? "", rank, row.id)
        }
        return globals.mapValues(\.value)
    }
}

/// ASCII case-insensitive comparison: FreeSWITCH's strcasecmp, used by
/// switch_xml_find_child and the modules' own name matching.
public func sameIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
    guard a.utf8.count == b.utf8.count else { return false }
    var a = a, b = b
    return a.withUTF8 { x in b.withUTF8 { y in sameIgnoringASCIICase(x, y) } }
}

/// The same over UTF-8 bytes (values read in place from a result).
func sameIgnoringASCIICase(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
    guard x.count == y.count else { return false }
    for i in 0..<x.count where x[i] != y[i] {
        let p = x[i], q = y[i]
        let lp = p >= 65 && p <= 90 ? p + 32 : p
        let lq = q >= 65 && q <= 90 ? q + 32 : q
        if lp != lq { return false }
    }
    return true
}

extension String {
    /// ASCII case folding, as FreeSWITCH's strcasecmp (and PostgreSQL's lower() on ASCII).
    public var asciiLowercased: String {
        guard utf8.contains(where: { $0 >= 65 && $0 <= 90 }) else { return self }
        return String(decoding: utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }
}
