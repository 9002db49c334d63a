/// Expands `$${name}` references the way FreeSWITCH's pre-processor does for
/// static files — which it never does for handler answers, so fsconf must.
///
/// Names come from the global-variables table first, then from the node
/// (`freeswitch.getGlobalVariable`: values like local_ip_v4 differ per node);
/// a name nobody knows becomes empty, as in FreeSWITCH. `${name}` (one dollar)
/// is a channel variable and is left alone.
public struct VariableExpander {
    public var globals: [String: String] { didSet { expandedCache = [:] } }
    public var node: (String) -> String?
    private var nodeCache: [String: String?] = [:]
    private var expandedCache: [String: String] = [:]

    public init(globals: [String: String] = [:], node: @escaping (String) -> String? = { _ in nil }) {
        self.globals = globals
        self.node = node
    }

    public static func hasReference(_ text: String) -> Bool {
        if let found = text.utf8.withContiguousStorageIfAvailable(hasReference) { return found }
        return Array(text.utf8).withUnsafeBufferPointer(hasReference)
    }

    /// The same over bytes (every lookup asks this of every value it renders).
    static func hasReference(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        return nextReference(base, bytes.count, from: 0) != nil
    }

    /// The offset of the next `$${` at or after `from`, eight bytes at a time: a
    /// word's `$` bytes are found from its mask (lowest first), not byte by byte
    /// (a dialplan holds a `$` every ~75 bytes: `$1`, `${var}`, `...$"`).
    static func nextReference(_ base: UnsafePointer<UInt8>, _ n: Int, from: Int) -> Int? {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let dollars = ones &* UInt64(UInt8(ascii: "$"))
        func startsReference(_ j: Int) -> Bool {
            j + 2 < n && base[j] == UInt8(ascii: "$") && base[j + 1] == UInt8(ascii: "$") && base[j + 2] == UInt8(ascii: "{")
        }
        var i = from
        while i + 8 <= n {
            let x = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)) ^ dollars
            // The high bit of each byte that was `$` (in memory order: the lowest set bit
            // is the first one; a borrow may mark a later byte too, checked below).
            var mask = (x &- ones) & ~x & highs
            while mask != 0 {
                let j = i + mask.trailingZeroBitCount >> 3
                if startsReference(j) { return j }
                mask &= mask &- 1
            }
            i += 8
        }
        while i + 2 < n {
            if startsReference(i) { return i }
            i += 1
        }
        return nil
    }

    /// `name` when `text` is exactly one reference `$${name}` (the usual stored
    /// value: `$${default_password}`), else nil.
    static func wholeReference(_ text: String) -> String? {
        if let name = text.utf8.withContiguousStorageIfAvailable(wholeReference) { return name }
        return Array(text.utf8).withUnsafeBufferPointer(wholeReference)
    }

    static func wholeReference(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let n = bytes.count
        guard n > 4, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "$"), bytes[2] == UInt8(ascii: "{"),
              bytes[n - 1] == UInt8(ascii: "}") else { return nil }
        // The first `}` must be the last byte: `$${a}$${b}` is two references.
        var i = 3
        while i < n - 1 {
            if bytes[i] == UInt8(ascii: "}") { return nil }
            i += 1
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[3..<(n - 1)]), as: UTF8.self)
    }

    /// Names referenced by `text` (for fetching exactly the globals a lookup needs).
    public static func references(in text: String) -> [String] {
        var names: [String] = []
        scan(text) { piece in if case .reference(let name) = piece { names.append(name) } }
        return names
    }

    public mutating func expand(_ text: String) -> String {
        guard VariableExpander.hasReference(text) else { return text }
        if let name = VariableExpander.wholeReference(text) { return expanded(name) }
        var out = ""
        VariableExpander.scan(text) { piece in
            switch piece {
            case .literal(let literal): out += literal
            case .reference(let name): out += expanded(name)
            }
        }
        return out
    }

    /// The fully expanded value of global `name`, however deep its references go
    /// (FreeSWITCH expands each `set` as it is defined, so a chain of any length
    /// resolves). Iterative, so no chain can exhaust a FreeSWITCH thread's stack; a
    /// reference back into a name being expanded (a cycle, which writes refuse)
    /// expands to nothing. Values read from the node are final, as in FreeSWITCH.
    mutating func expanded(_ name: String) -> String {
        if let done = expandedCache[name] { return done }
        guard let raw = globals[name] else { return nodeValue(name) }
        // A value with no reference is its own expansion: no walk, nothing cached.
        if !VariableExpander.hasReference(raw) { return raw }
        // A short chain of whole references ending in a plain value or a node's
        // (`$${domain}` → `$${local_ip_v4}`) is followed without the walk; a
        // cycle, a long chain or mixed text take the walk below.
        var chain = [name], value = raw
        while chain.count < 8, let next = VariableExpander.wholeReference(value), !chain.contains(next) {
            guard let stored = globals[next] else {
                let done = nodeValue(next)
                for n in chain { expandedCache[n] = done }
                return done
            }
            chain.append(next)
            if !VariableExpander.hasReference(stored) {
                for n in chain.dropLast() { expandedCache[n] = stored }
                return stored
            }
            value = stored
        }
        var stack: [(name: String, pieces: [Piece], next: Int, out: String)] = [(name, VariableExpander.pieces(raw), 0, "")]
        var active: Set<String> = [name]
        while true {
            let top = stack.count - 1
            if stack[top].next == stack[top].pieces.count {
                let done = stack.removeLast()
                active.remove(done.name)
                expandedCache[done.name] = done.out
                if stack.isEmpty { return done.out }
                stack[stack.count - 1].out += done.out
                continue
            }
            let piece = stack[top].pieces[stack[top].next]
            stack[top].next += 1
            switch piece {
            case .literal(let literal): stack[top].out += literal
            case .reference(let ref):
                if let done = expandedCache[ref] { stack[top].out += done }
                else if active.contains(ref) { continue }
                else if let value = globals[ref] {
                    active.insert(ref)
                    stack.append((ref, VariableExpander.pieces(value), 0, ""))
                } else { stack[top].out += nodeValue(ref) }
            }
        }
    }

    static func pieces(_ text: String) -> [Piece] {
        var out: [Piece] = []
        scan(text) { out.append($0) }
        return out
    }

    /// The names of a reference cycle through global `name` (`[a, b, a]`), or nil.
    public static func cycle(from name: String, globals: [String: String]) -> [String]? {
        // Depth-first over references, iteratively; `path` is the current chain.
        var path: [String] = [name]
        var onPath: Set<String> = [name]
        var pending: [[String]] = [references(in: globals[name] ?? "")]
        var finished: Set<String> = []
        while !pending.isEmpty {
            guard let next = pending[pending.count - 1].popLast() else {
                pending.removeLast()
                let done = path.removeLast()
                onPath.remove(done)
                finished.insert(done)
                continue
            }
            if next == name { return path + [next] }
            if finished.contains(next) || onPath.contains(next) { continue }
            guard let value = globals[next] else { continue }
            path.append(next)
            onPath.insert(next)
            pending.append(references(in: value))
        }
        return nil
    }

    /// "a refers back to itself: a → b → a"
    public static func describe(cycle: [String]) -> String {
        "\(cycle.first ?? "") refers back to itself through $${} references (\(cycle.joined(separator: " → "))): it would expand to nothing"
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

    private mutating func nodeValue(_ name: String) -> String {
        if let cached = nodeCache[name] { return cached ?? "" }
        let v = node(name)
        nodeCache[name] = v
        return v ?? ""
    }
}
