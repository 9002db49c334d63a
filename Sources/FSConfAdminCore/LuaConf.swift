import FSConfCore

/// mod_lua's `lua.conf.xml`, read and edited as text: the administrator's layout,
/// comments and other settings are kept byte for byte; only the xml handler's two
/// params are touched (`fsconf node install`) or checked (`fsconf doctor`).
///
/// fsconf writes its params between two marker comments whose opening one carries
/// a checksum of the params; a block whose params no longer match it was edited by
/// hand and is not replaced without `force`. Active (uncommented) `xml-handler-*`
/// params outside the block are someone else's and are not replaced without `force`
/// either.
public struct LuaConfFile: Sendable {
    /// An active (uncommented) `<param name=… value=…/>` element.
    public struct Param: Equatable, Sendable {
        public var name: String
        public var value: String
        /// Byte offsets of the element in the text.
        public var start: Int, end: Int
    }

    /// fsconf's marked block.
    public struct Block: Equatable, Sendable {
        /// From the start of the opening marker's line to the end of the closing marker's line.
        public var start: Int, end: Int
        /// The checksum written in the opening marker, and whether the params inside still match it.
        public var intact: Bool
    }

    public static let scriptParam = "xml-handler-script"
    public static let bindingsParam = "xml-handler-bindings"
    static let beginMarker = "fsconf: begin"
    static let endMarker = "fsconf: end"

    public let bytes: [UInt8]
    /// Every active param element, in document order.
    public private(set) var params: [Param] = []
    /// Just after the first `<settings>` opening tag (nil: none, or self-closing).
    public private(set) var settingsBodyStart: Int?
    /// Indentation of the `<settings>` line.
    public private(set) var settingsIndent = ""
    public private(set) var block: Block?

    public init(_ text: String) {
        bytes = Array(text.utf8)
        scan()
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// The active `xml-handler-script` / `xml-handler-bindings` params, in order.
    public var handlerParams: [Param] {
        params.filter { $0.name == LuaConfFile.scriptParam || $0.name == LuaConfFile.bindingsParam }
    }

    /// Handler params outside fsconf's block.
    public var foreignHandlerParams: [Param] {
        handlerParams.filter { p in block.map { p.start < $0.start || p.end > $0.end } ?? true }
    }

    // MARK: Checking

    /// What mod_lua will do with this file's handler params: the script (its first
    /// word; mod_lua passes the others as argv) and the bindings, or why it binds nothing useful.
    public struct Handler: Equatable, Sendable {
        public var script: String
        public var bindings: [String]
        public init(script: String, bindings: [String]) { self.script = script; self.bindings = bindings }
    }

    public enum HandlerProblem: Error, Equatable, Sendable, CustomStringConvertible {
        case none
        case duplicate(String)
        case bindingsFirst
        case noBindings
        case directoryWithoutConfiguration

        public var description: String {
            switch self {
            case .none: return "no xml-handler-script param: mod_lua runs no xml handler"
            case .duplicate(let name): return "\(name) is set more than once (mod_lua would bind the handler several times)"
            case .bindingsFirst: return "xml-handler-bindings comes before xml-handler-script: mod_lua ignores it and binds nothing"
            case .noBindings: return "xml-handler-bindings is missing: mod_lua binds no section"
            case .directoryWithoutConfiguration:
                return "xml-handler-bindings binds directory without configuration: at start-up both sofia profiles' threads make the first lookups at once, mod_lua creates its SWIG bindings on the first lookup without a lock, and FreeSWITCH can crash (2 to 5 in 20 starts, measured)"
            }
        }
    }

    public func handler() -> Result<Handler, HandlerProblem> {
        let handlers = handlerParams
        let scripts = handlers.filter { $0.name == LuaConfFile.scriptParam }
        let bindings = handlers.filter { $0.name == LuaConfFile.bindingsParam }
        guard let script = scripts.first else { return .failure(.none) }
        if scripts.count > 1 { return .failure(.duplicate(LuaConfFile.scriptParam)) }
        if bindings.count > 1 { return .failure(.duplicate(LuaConfFile.bindingsParam)) }
        guard let binding = bindings.first else { return .failure(.noBindings) }
        if binding.start < script.start { return .failure(.bindingsFirst) }
        let sections = binding.value.split(separator: ",").map { SQLSplitter.trimmed(String($0)) }.filter { !$0.isEmpty }
        if sections.contains("directory") && !sections.contains("configuration") {
            return .failure(.directoryWithoutConfiguration)
        }
        let path = script.value.split(separator: " ", omittingEmptySubsequences: true).first.map(String.init) ?? ""
        return .success(Handler(script: path, bindings: sections))
    }

    // MARK: Editing

    public enum Edit: Equatable, Sendable {
        case unchanged
        /// The new text; `replaced` lists the foreign params removed (with force).
        case write(String, replaced: [String])
        /// Refused: the reason (edited by hand).
        case conflict(String)
    }

    public enum EditError: Error, Equatable, Sendable, CustomStringConvertible {
        case noSettings
        public var description: String { "no <settings> element to add the xml handler to" }
    }

    /// The params fsconf wants, in mod_lua's order (script first).
    public static func lines(script: String, bindings: String) -> [String] {
        ["<param name=\"\(scriptParam)\" value=\"\(XMLWriter.escape(script))\"/>",
         "<param name=\"\(bindingsParam)\" value=\"\(XMLWriter.escape(bindings))\"/>"]
    }

    static func checksum(_ params: [(String, String)]) -> String {
        String(SHA256.hex("fsconf lua.conf\n" + params.map { "\($0.0)=\($0.1)" }.joined(separator: "\n")).prefix(16))
    }

    static func blockLines(script: String, bindings: String, indent: String) -> String {
        let sum = checksum([(scriptParam, script), (bindingsParam, bindings)])
        return ([
            "<!-- \(beginMarker) (written by fsconf node install; run it again to change these lines) checksum=\(sum) -->",
        ] + lines(script: script, bindings: bindings) + ["<!-- \(endMarker) -->"])
            .map { indent + $0 + "\n" }.joined()
    }

    /// Makes the file bind `script` for `bindings`.
    public func install(script: String, bindings: String, force: Bool) throws(EditError) -> Edit {
        let foreign = foreignHandlerParams
        var out = bytes
        var replaced: [String] = []
        // Removals and the insertion are applied from the end, so offsets stay valid.
        var edits: [(start: Int, end: Int, text: String)] = []
        if let block {
            if !block.intact && !force {
                return .conflict("its fsconf lines (between the \"\(LuaConfFile.beginMarker)\" and \"\(LuaConfFile.endMarker)\" comments) were edited by hand")
            }
            if !foreign.isEmpty && !force {
                return .conflict("it also sets \(describe(foreign)) outside fsconf's lines (edited by hand)")
            }
            let indent = lineIndent(at: block.start)
            edits.append((block.start, block.end, LuaConfFile.blockLines(script: script, bindings: bindings, indent: indent)))
        } else {
            if !foreign.isEmpty {
                let wanted = [(LuaConfFile.scriptParam, script), (LuaConfFile.bindingsParam, bindings)]
                if foreign.count == 2 && zip(foreign, wanted).allSatisfy({ $0.name == $1.0 && $0.value == $1.1 }) {
                    return .unchanged  // already set by hand, exactly as fsconf would
                }
                if !force { return .conflict("it already sets \(describe(foreign)) (edited by hand)") }
            }
            guard let at = settingsBodyStart else { throw .noSettings }
            // After the <settings> line.
            var lineEnd = at
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            let onlySpace = bytes[at..<lineEnd].allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
            let insertAt = onlySpace && lineEnd < bytes.count ? lineEnd + 1 : at
            let prefix = insertAt == at ? "\n" : ""
            edits.append((insertAt, insertAt, prefix + LuaConfFile.blockLines(script: script, bindings: bindings, indent: settingsIndent + "  ")))
        }
        if force {
            for p in foreign {
                replaced.append("\(p.name)=\(p.value)")
                let (s, e) = wholeLine(p.start, p.end)
                edits.append((s, e, ""))
            }
        }
        for edit in edits.sorted(by: { $0.start > $1.start }) {
            out.replaceSubrange(edit.start..<edit.end, with: Array(edit.text.utf8))
        }
        if out == bytes { return .unchanged }
        return .write(String(decoding: out, as: UTF8.self), replaced: replaced)
    }

    private func describe(_ params: [Param]) -> String {
        params.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ", ")
    }

    /// Indentation (spaces and tabs) of the line holding `offset`.
    private func lineIndent(at offset: Int) -> String {
        var s = offset
        while s > 0 && bytes[s - 1] != 0x0A { s -= 1 }
        var e = s
        while e < bytes.count && (bytes[e] == 0x20 || bytes[e] == 0x09) { e += 1 }
        return String(decoding: bytes[s..<e], as: UTF8.self)
    }

    /// The element's whole line (with its line break) when nothing else is on it.
    private func wholeLine(_ start: Int, _ end: Int) -> (Int, Int) {
        var s = start
        while s > 0 && (bytes[s - 1] == 0x20 || bytes[s - 1] == 0x09) { s -= 1 }
        var e = end
        while e < bytes.count && (bytes[e] == 0x20 || bytes[e] == 0x09 || bytes[e] == 0x0D) { e += 1 }
        let lineStart = s == 0 || bytes[s - 1] == 0x0A
        if lineStart && e < bytes.count && bytes[e] == 0x0A { return (s, e + 1) }
        if lineStart && e == bytes.count { return (s, e) }
        return (start, end)
    }

    // MARK: Scanning

    private func starts(_ literal: String, at i: Int) -> Bool {
        let l = Array(literal.utf8)
        guard i + l.count <= bytes.count else { return false }
        return bytes[i..<(i + l.count)].elementsEqual(l)
    }

    private func find(_ literal: String, from i: Int) -> Int? {
        var j = i
        while j < bytes.count { if starts(literal, at: j) { return j }; j += 1 }
        return nil
    }

    private static func isNameEnd(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x2F || b == 0x3E }

    private mutating func scan() {
        var i = 0
        var begin: (lineStart: Int, sum: String, bodyStart: Int)?
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "<") else { i += 1; continue }
            if starts("<!--", at: i) {
                let close = find("-->", from: i + 4) ?? bytes.count
                let body = SQLSplitter.trimmed(String(decoding: bytes[(i + 4)..<close], as: UTF8.self))
                let after = min(bytes.count, close + 3)
                if body.hasPrefix(LuaConfFile.beginMarker), block == nil {
                    let sum = body.split(separator: " ").first { $0.hasPrefix("checksum=") }.map { String($0.dropFirst(9)) } ?? ""
                    begin = (lineStartOffset(i), sum, after)
                } else if body.hasPrefix(LuaConfFile.endMarker), let b = begin, block == nil {
                    var end = after
                    while end < bytes.count && bytes[end] != 0x0A { end += 1 }
                    if end < bytes.count { end += 1 }
                    let inside = params.filter { $0.start >= b.bodyStart && $0.end <= i }
                    let intact = LuaConfFile.checksum(inside.map { ($0.name, $0.value) }) == b.sum
                        && inside.map(\.name) == [LuaConfFile.scriptParam, LuaConfFile.bindingsParam]
                    block = Block(start: b.lineStart, end: end, intact: intact)
                }
                i = after
            } else if starts("<![CDATA[", at: i) {
                i = (find("]]>", from: i) ?? bytes.count) + 3
            } else if starts("<?", at: i) {
                i = (find("?>", from: i) ?? bytes.count) + 2
            } else if starts("<param", at: i), i + 6 < bytes.count, LuaConfFile.isNameEnd(bytes[i + 6]) {
                let (attributes, end) = tag(from: i + 6)
                if let name = attributes["name"] {
                    params.append(Param(name: name, value: attributes["value"] ?? "", start: i, end: end))
                }
                i = end
            } else if settingsBodyStart == nil, starts("<settings", at: i), i + 9 < bytes.count, LuaConfFile.isNameEnd(bytes[i + 9]) {
                let (_, end) = tag(from: i + 9)
                if end >= 2 && bytes[end - 2] != UInt8(ascii: "/") {
                    settingsBodyStart = end
                    settingsIndent = lineIndent(at: i)
                }
                i = end
            } else {
                i += 1
            }
        }
    }

    private func lineStartOffset(_ i: Int) -> Int {
        var s = i
        while s > 0 && bytes[s - 1] != 0x0A { s -= 1 }
        return s
    }

    /// Reads a tag's attributes from just after its name; returns them and the offset after `>`.
    private func tag(from start: Int) -> ([String: String], Int) {
        var attributes: [String: String] = [:]
        var i = start
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: ">") { return (attributes, i + 1) }
            if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == UInt8(ascii: "/") { i += 1; continue }
            var nameEnd = i
            while nameEnd < bytes.count, bytes[nameEnd] != UInt8(ascii: "="), bytes[nameEnd] != UInt8(ascii: ">"),
                  !LuaConfFile.isNameEnd(bytes[nameEnd]) { nameEnd += 1 }
            let name = String(decoding: bytes[i..<nameEnd], as: UTF8.self)
            var j = nameEnd
            while j < bytes.count && (bytes[j] == 0x20 || bytes[j] == 0x09 || bytes[j] == 0x0A || bytes[j] == 0x0D) { j += 1 }
            guard j < bytes.count, bytes[j] == UInt8(ascii: "=") else { i = max(nameEnd, i + 1); continue }
            j += 1
            while j < bytes.count && (bytes[j] == 0x20 || bytes[j] == 0x09 || bytes[j] == 0x0A || bytes[j] == 0x0D) { j += 1 }
            guard j < bytes.count, bytes[j] == UInt8(ascii: "\"") || bytes[j] == UInt8(ascii: "'") else { i = j; continue }
            let quote = bytes[j]
            var k = j + 1
            while k < bytes.count && bytes[k] != quote { k += 1 }
            attributes[name] = XMLTreeParser.decode(bytes[(j + 1)..<min(k, bytes.count)], attribute: true)
            i = k + 1
        }
        return (attributes, bytes.count)
    }
}
