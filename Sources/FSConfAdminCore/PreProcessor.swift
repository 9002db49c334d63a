/// Where the pre-processor reads files. The CLI implements it over the real file
/// system; tests can use memory.

import FSConfCore

public protocol PreProcessorFileSystem {
    /// The resolved absolute path (symlinks followed), nil when the file does not exist.
    func canonicalPath(_ path: String) -> String?
    /// Size in bytes, nil when unknown.
    func size(_ path: String) -> Int?
    func read(_ path: String) throws -> [UInt8]
    /// Matches of a glob pattern (absolute), sorted; empty when nothing matches.
    func glob(_ pattern: String) -> [String]
}

/// A place in the original files.
public struct SourceLocation: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public init(file: String, line: Int) { self.file = file; self.line = line }
    public var description: String { "\(file):\(line)" }
}

/// An error that names the original file and line.
public struct SourceError: Error, Equatable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String
    public init(_ location: SourceLocation, _ message: String) { self.location = location; self.message = message }
    public var description: String { "\(location): \(message)" }
}

/// FreeSWITCH's line-based pre-processor (switch_xml.c `preprocess`), reproduced:
///
/// - each line is read; lines holding `<include>`, `</include>` or `<?` are dropped;
/// - a line holding `<X-PRE-PROCESS cmd="…" data="…"/>` is consumed whole (even inside
///   an XML comment); a line holding `X-PRE-PROCESS` not preceded by `<` is dropped;
/// - `<!--#cmd "arg"-->` lines are the old directive syntax; an unterminated one
///   swallows lines up to `-->`;
/// - `include` is a glob relative to the including file's folder, matches in sorted
///   order; no match is fine, a missing plain file is an error here (FreeSWITCH only
///   logs it), and so is an include loop;
/// - `set` / `stun-set` record global variables; `exec-set` / `env-set` are recorded
///   as written, never evaluated (each node evaluates them at its start).
///
/// In `.keepReferences` mode (import) `$${name}` stays in the text; in `.expand`
/// mode (what FreeSWITCH itself loads) it is replaced on each line by the value set
/// so far, else by `node(name)`, else by nothing.
public struct PreProcessor {
    public enum Mode { case keepReferences, expand(node: (String) -> String?) }

    public struct Line: Sendable {
        public var text: String
        public var location: SourceLocation
    }

    public struct Global: Sendable, Equatable {
        public var name: String
        public var value: String
        public var command: String
        public var location: SourceLocation
    }

    /// 16 MiB: far above any real configuration file, far below memory trouble.
    public static let defaultMaximumFileSize = 16 * 1024 * 1024

    public private(set) var lines: [Line] = []
    public private(set) var globals: [Global] = []
    /// Directives fsconf cannot keep (`exec`).
    public private(set) var unrepresentable: [SourceError] = []
    /// Things the user should know (values evaluated on this machine...).
    public private(set) var notes: [SourceError] = []
    public private(set) var filesRead: [String] = []

    private let fs: PreProcessorFileSystem
    private let mode: Mode
    private let maximumFileSize: Int
    /// Whether includes may leave the tree's folder (the folder of the first file).
    /// Without it such an include is an error: whatever it names (`/etc/shadow`…)
    /// would be stored and served to every node.
    private let allowOutsideIncludes: Bool
    private var root = ""
    private var stack: [String] = []
    private var values: [String: String] = [:]

    /// `exec-set` and `env-set` are never evaluated: in `.keepReferences` mode they
    /// are recorded as written (node-evaluated globals); in `.expand` mode their value
    /// is the node's own (`node(name)`), as the node sets it at its start.
    public init(fileSystem: PreProcessorFileSystem, mode: Mode = .keepReferences,
                maximumFileSize: Int = PreProcessor.defaultMaximumFileSize, allowOutsideIncludes: Bool = false) {
        self.fs = fileSystem
        self.allowOutsideIncludes = allowOutsideIncludes
        self.mode = mode
        self.maximumFileSize = maximumFileSize
    }

    /// The pre-processed text, one output line per `lines` entry.
    public var text: String { lines.map(\.text).joined(separator: "\n") }

    /// Where output line `n` (1-based) came from.
    public func location(ofOutputLine n: Int) -> SourceLocation {
        guard !lines.isEmpty else { return SourceLocation(file: display(filesRead.first ?? root), line: 1) }
        return lines[min(max(n, 1), lines.count) - 1].location
    }

    /// Runs the pre-processor from `path` (freeswitch.xml or any file).
    public mutating func run(_ path: String) throws(SourceError) {
        guard let canonical = fs.canonicalPath(path) else {
            throw SourceError(SourceLocation(file: path, line: 1), "no such file")
        }
        root = PreProcessor.directory(of: canonical)
        try process(canonical, includedFrom: nil)
    }

    /// A path for messages: relative to the top folder when inside it.
    public func display(_ path: String) -> String {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private mutating func process(_ path: String, includedFrom: SourceLocation?) throws(SourceError) {
        let here = SourceLocation(file: display(path), line: 1)
        if stack.contains(path) {
            let chain = (stack + [path]).map { display($0) }.joined(separator: " → ")
            throw SourceError(includedFrom ?? here, "include loop: \(chain)")
        }
        if let size = fs.size(path), size > maximumFileSize {
            throw SourceError(here, "file is \(PreProcessor.mebibytes(size)) MiB, above the \(PreProcessor.mebibytes(maximumFileSize)) MiB limit")
        }
        let bytes: [UInt8]
        do { bytes = try fs.read(path) } catch {
            throw SourceError(here, "cannot read file: \(error)")
        }
        if bytes.count > maximumFileSize {
            throw SourceError(here, "file is \(PreProcessor.mebibytes(bytes.count)) MiB, above the \(PreProcessor.mebibytes(maximumFileSize)) MiB limit")
        }
        if let bad = PreProcessor.firstInvalidUTF8Line(bytes) {
            throw SourceError(SourceLocation(file: display(path), line: bad), "invalid UTF-8")
        }
        if bytes.contains(0) {
            let line = bytes.prefix(upTo: bytes.firstIndex(of: 0)!).filter { $0 == 10 }.count + 1
            throw SourceError(SourceLocation(file: display(path), line: line), "NUL byte in file")
        }
        filesRead.append(path)
        stack.append(path)
        defer { stack.removeLast() }

        let folder = PreProcessor.directory(of: path)
        var multiLineComment = false
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 10 { end += 1 }
            lineNumber += 1
            var raw = String(decoding: bytes[start..<end], as: UTF8.self)
            if raw.hasSuffix("\r") { raw.removeLast() }
            start = end + 1
            let location = SourceLocation(file: display(path), line: lineNumber)
            try processLine(raw, location: location, folder: folder, multiLineComment: &multiLineComment)
        }
    }

    private mutating func emit(_ text: Substring, _ location: SourceLocation) {
        lines.append(Line(text: String(text), location: location))
    }

    private mutating func processLine(_ raw: String, location: SourceLocation, folder: String,
                                      multiLineComment: inout Bool) throws(SourceError) {
        if raw.contains("<include>") || raw.contains("</include>") || raw.contains("<?") { return }
        var line = Substring(expand(raw))
        if multiLineComment {
            guard let end = line.firstRange(of: "-->") else { return }
            multiLineComment = false
            line = line[end.upperBound...]
        }
        if let marker = PreProcessor.caseInsensitiveRange(of: "x-pre-process", in: line) {
            guard marker.lowerBound > line.startIndex, line[line.index(before: marker.lowerBound)] == "<" else { return }
            var rest = line[marker.upperBound...]
            if let close = rest.firstRange(of: "/>") { rest = rest[..<close.lowerBound] }
            guard let (command, afterCommand) = PreProcessor.quotedValue(after: "cmd", in: rest),
                  let (data, _) = PreProcessor.quotedValue(after: "data", in: afterCommand) else { return }
            try directive(command: String(command), argument: String(data), location: location, folder: folder)
            return
        }
        if let marker = line.firstRange(of: "<!--#") {
            if marker.lowerBound > line.startIndex { emit(line[..<marker.lowerBound], location) }
            var body = line[marker.upperBound...]
            if let end = body.firstRange(of: "-->") {
                let after = body[end.upperBound...]
                if !after.isEmpty { emit(after, location) }
                body = body[..<end.lowerBound]
            } else {
                multiLineComment = true
            }
            guard let space = body.firstIndex(of: " ") else { return }
            let command = body[..<space]
            var argument = body[body.index(after: space)...]
            if let q1 = argument.firstIndex(of: "\""),
               let q2 = argument[argument.index(after: q1)...].firstIndex(of: "\"") {
                argument = argument[argument.index(after: q1)..<q2]
            }
            try directive(command: String(command), argument: String(argument), location: location, folder: folder)
            return
        }
        emit(line, location)
    }

    private mutating func directive(command: String, argument: String, location: SourceLocation,
                                    folder: String) throws(SourceError) {
        switch command.lowercased() {
        case "include":
            let pattern = argumentForPath(argument)
            let full = pattern.hasPrefix("/") ? pattern : folder + "/" + pattern
            let isGlob = pattern.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" })
            if isGlob {
                for match in fs.glob(full) {
                    guard let canonical = fs.canonicalPath(match) else { continue }
                    try checkInside(canonical, location)
                    try process(canonical, includedFrom: location)
                }
            } else {
                guard let canonical = fs.canonicalPath(full) else {
                    throw SourceError(location, "included file \(pattern) does not exist")
                }
                try checkInside(canonical, location)
                try process(canonical, includedFrom: location)
            }
        case "set", "exec-set", "env-set", "stun-set":
            guard let eq = argument.firstIndex(of: "=") else { return }
            let name = PreProcessor.trimSpaces(argument[..<eq])
            let value = PreProcessor.trimSpaces(argument[argument.index(after: eq)...])
            let cmd = command.lowercased()
            if GlobalVariable.nodeEvaluated.contains(cmd) {
                // Never run here: a command from a tree someone sent must not execute,
                // and the value belongs to each node (its own command, its own
                // environment), which sets it at its start only when it succeeds.
                notes.append(SourceError(location, "\(cmd) \(name)=\(value): evaluated by each node at its start; stored as written, never run here"))
                globals.append(Global(name: name, value: value, command: cmd, location: location))
                if case .expand(let node) = mode {
                    if let own = node(name) { values[name] = own }
                } else {
                    values[name] = nil
                }
                return
            }
            if cmd == "stun-set" {
                notes.append(SourceError(location, "stun-set \(name): kept as \(value) (mod_sofia resolves stun: values itself)"))
            }
            values[name] = value
            globals.append(Global(name: name, value: value, command: cmd, location: location))
        case "exec":
            unrepresentable.append(SourceError(location, "exec \(argument): the output of a command run at load time cannot be stored"))
        default:
            return
        }
    }

    private mutating func checkInside(_ path: String, _ location: SourceLocation) throws(SourceError) {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        guard !path.hasPrefix(prefix) else { return }
        guard allowOutsideIncludes else {
            throw SourceError(location, "included file \(path) is outside the tree's folder \(root): its contents would be stored "
                              + "and served to every node; give --allow-outside-includes to follow it")
        }
        notes.append(SourceError(location, "included file \(path) is outside the tree's folder \(root) (followed: --allow-outside-includes)"))
    }

    /// Include paths may use $${name}: resolved with what is known so far.
    private func argumentForPath(_ argument: String) -> String {
        guard case .keepReferences = mode, VariableExpander.hasReference(argument) else { return argument }
        return PreProcessor.expand(argument, lookup: { values[$0] })
    }

    private func expand(_ line: String) -> String {
        guard case .expand(let node) = mode else { return line }
        return PreProcessor.expand(line, lookup: { values[$0] ?? node($0) })
    }

    /// FreeSWITCH's expand_vars: `$${name}` (braces may nest) → value or nothing;
    /// an unterminated reference stays as text.
    public static func expand(_ line: String, lookup: (String) -> String?) -> String {
        guard line.contains("$${") else { return line }
        let b = Array(line.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var k = 0
        while k < b.count {
            if b[k] == UInt8(ascii: "$"), k + 2 < b.count, b[k + 1] == UInt8(ascii: "$"), b[k + 2] == UInt8(ascii: "{") {
                var depth = 0
                var e = k + 2
                var close: Int? = nil
                while e < b.count {
                    if b[e] == UInt8(ascii: "{") { depth += 1 }
                    if b[e] == UInt8(ascii: "}") { depth -= 1; if depth == 0 { close = e; break } }
                    e += 1
                }
                if let close {
                    let name = String(decoding: b[(k + 3)..<close], as: UTF8.self)
                    if let value = lookup(name) { out.append(contentsOf: value.utf8) }
                    k = close + 1
                    continue
                }
            }
            out.append(b[k])
            k += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func trimSpaces(_ s: Substring) -> String {
        var t = s
        while t.first == " " { t.removeFirst() }
        while t.last == " " { t.removeLast() }
        return String(t)
    }

    /// `key = "value"` after `key` (case-insensitive), as switch_xml.c finds it.
    static func quotedValue(after key: String, in text: Substring) -> (Substring, Substring)? {
        guard let k = caseInsensitiveRange(of: key, in: text) else { return nil }
        guard let eq = text[k.upperBound...].firstIndex(of: "=") else { return nil }
        guard let q = text[eq...].firstIndex(of: "\"") else { return nil }
        let valueStart = text.index(after: q)
        if let end = text[valueStart...].firstIndex(of: "\"") {
            return (text[valueStart..<end], text[text.index(after: end)...])
        }
        return (text[valueStart...], text[text.endIndex...])
    }

    static func caseInsensitiveRange(of needle: String, in haystack: Substring) -> Range<Substring.Index>? {
        let n = Array(needle.lowercased().utf8)
        let h = haystack.utf8
        guard h.count >= n.count, let first = n.first else { return nil }
        var i = h.startIndex
        while i != h.endIndex {
            var b = h[i]; if b >= 65 && b <= 90 { b += 32 }
            if b == first {
                var j = i, k = 0
                while k < n.count && j != h.endIndex {
                    var c = h[j]; if c >= 65 && c <= 90 { c += 32 }
                    if c != n[k] { break }
                    k += 1; j = h.index(after: j)
                }
                if k == n.count { return i..<j }
            }
            i = h.index(after: i)
        }
        return nil
    }

    /// The 1-based line of the first byte sequence that is not valid UTF-8.
    public static func firstInvalidUTF8Line(_ bytes: [UInt8]) -> Int? {
        var line = 1
        var k = 0
        let n = bytes.count
        while k < n {
            let b = bytes[k]
            if b < 0x80 { if b == 10 { line += 1 }; k += 1; continue }
            let length: Int
            let minimum: UInt32
            var scalar: UInt32
            switch b {
            case 0xC2...0xDF: length = 2; minimum = 0x80; scalar = UInt32(b & 0x1F)
            case 0xE0...0xEF: length = 3; minimum = 0x800; scalar = UInt32(b & 0x0F)
            case 0xF0...0xF4: length = 4; minimum = 0x10000; scalar = UInt32(b & 0x07)
            default: return line
            }
            guard k + length <= n else { return line }
            for j in 1..<length {
                let c = bytes[k + j]
                guard c & 0xC0 == 0x80 else { return line }
                scalar = scalar << 6 | UInt32(c & 0x3F)
            }
            if scalar < minimum || scalar > 0x10FFFF || (scalar >= 0xD800 && scalar <= 0xDFFF) { return line }
            k += length
        }
        return nil
    }

    static func mebibytes(_ n: Int) -> String {
        let tenths = (n * 10 + 512 * 1024) / (1024 * 1024)
        return "\(tenths / 10).\(tenths % 10)"
    }
}
