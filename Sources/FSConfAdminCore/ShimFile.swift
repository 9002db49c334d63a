/// What a generated shim (`lua/shim.lua.in`) passes the library: the library's
/// path and the settings string, read back from the script's two Lua literals.
/// `fsconf doctor` uses it to check the shim against the library and the database.
public struct ShimFile: Equatable, Sendable {
    public var library: String
    public var settings: String
    /// The version of the fsconf that generated it (its first comment line), if given.
    public var generatedBy: String?

    /// The `schema=N` setting.
    public var schema: Int? {
        for line in settings.split(separator: "\n") where line.hasPrefix("schema=") { return Int(line.dropFirst(7)) }
        return nil
    }

    /// Reads a shim of the current format; nil for anything else (an older format,
    /// a script edited by hand).
    public static func parse(_ script: String) -> ShimFile? {
        let bytes = Array(script.utf8)
        guard let load = find(Array("package.loadlib(".utf8), in: bytes, from: 0),
              let (library, afterLibrary) = luaLiteral(bytes, at: skipSpace(bytes, load)),
              let handler = find(Array("\"fsconf_xml_handler\"".utf8), in: bytes, from: afterLibrary),
              let call = find(Array("then h(".utf8), in: bytes, from: handler),
              let (settings, _) = luaLiteral(bytes, at: skipSpace(bytes, call)) else { return nil }
        var generatedBy: String?
        let marker = Array("(fsconf ".utf8)
        if let at = find(marker, in: bytes, from: 0), let close = bytes[at...].firstIndex(of: UInt8(ascii: ")")),
           at < load {
            generatedBy = String(decoding: bytes[at..<close], as: UTF8.self)
        }
        return ShimFile(library: library, settings: settings, generatedBy: generatedBy)
    }

    /// The offset just after `needle`, searching from `start`.
    static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard needle.count <= bytes.count else { return nil }
        var i = start
        while i + needle.count <= bytes.count {
            if bytes[i..<(i + needle.count)].elementsEqual(needle) { return i + needle.count }
            i += 1
        }
        return nil
    }

    static func skipSpace(_ bytes: [UInt8], _ i: Int) -> Int {
        var j = i
        while j < bytes.count && (bytes[j] == 0x20 || bytes[j] == 0x09) { j += 1 }
        return j
    }

    /// A Lua short string literal at `i` (either quote; the escapes of Lua 5.3).
    /// Returns its value and the offset after it.
    static func luaLiteral(_ bytes: [UInt8], at i: Int) -> (String, Int)? {
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "'") else { return nil }
        let quote = bytes[i]
        var out: [UInt8] = []
        var j = i + 1
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        while j < bytes.count {
            let b = bytes[j]
            if b == quote { return (String(decoding: out, as: UTF8.self), j + 1) }
            if b == 0x0A { return nil }
            if b != UInt8(ascii: "\\") { out.append(b); j += 1; continue }
            j += 1
            guard j < bytes.count else { return nil }
            let e = bytes[j]
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A); j += 1
            case UInt8(ascii: "t"): out.append(0x09); j += 1
            case UInt8(ascii: "r"): out.append(0x0D); j += 1
            case UInt8(ascii: "a"): out.append(0x07); j += 1
            case UInt8(ascii: "b"): out.append(0x08); j += 1
            case UInt8(ascii: "f"): out.append(0x0C); j += 1
            case UInt8(ascii: "v"): out.append(0x0B); j += 1
            case UInt8(ascii: "x"):
                guard j + 2 < bytes.count, let v = UInt8(String(decoding: bytes[(j + 1)...(j + 2)], as: UTF8.self), radix: 16) else { return nil }
                out.append(v); j += 3
            case UInt8(ascii: "z"):
                j += 1
                while j < bytes.count && (bytes[j] == 0x20 || bytes[j] == 0x09 || bytes[j] == 0x0A || bytes[j] == 0x0D) { j += 1 }
            default:
                if isDigit(e) {
                    var value = 0, n = 0
                    while n < 3 && j < bytes.count && isDigit(bytes[j]) { value = value * 10 + Int(bytes[j] - 0x30); j += 1; n += 1 }
                    guard value <= 255 else { return nil }
                    out.append(UInt8(value))
                } else {
                    out.append(e); j += 1  // \\ \" \' and a line break
                }
            }
        }
        return nil
    }
}
