/// The few facts about a shared library that decide whether FreeSWITCH can load
/// it safely (docs/architecture.md, "The rules the node library keeps"), read from
/// its bytes: no readelf or nm is needed on a node.
public struct ELFFile: Equatable, Sendable {
    /// DT_NEEDED entries: the libraries it asks the loader for.
    public var needed: [String]
    /// DF_1_NODELETE (`-z nodelete`): never unloaded once loaded.
    public var noDelete: Bool
    /// Defined global (or weak) symbols of the dynamic symbol table.
    public var exports: Set<String>

    public enum ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        case notELF
        case unsupported(String)
        case truncated
        public var description: String {
            switch self {
            case .notELF: return "not an ELF file"
            case .unsupported(let what): return "unsupported ELF file (\(what))"
            case .truncated: return "truncated ELF file"
            }
        }
    }

    /// Libraries that must never be NEEDED by the node library: mod_lua provides Lua,
    /// and the Swift runtime must be linked in (`-static-stdlib`).
    public var forbiddenNeeded: [String] {
        needed.filter { $0.hasPrefix("liblua") || $0.hasPrefix("libswift") || $0.hasPrefix("libFoundation") || $0.hasPrefix("libdispatch") }
    }

    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> ELFFile {
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else { throw .notELF }
        guard bytes[4] == 2 else { throw .unsupported("32-bit") }
        guard bytes[5] == 1 else { throw .unsupported("big-endian") }
        func u16(_ o: Int) throws(ParseError) -> Int {
            guard o >= 0, o + 2 <= bytes.count else { throw .truncated }
            return Int(bytes[o]) | Int(bytes[o + 1]) << 8
        }
        func u32(_ o: Int) throws(ParseError) -> Int {
            guard o >= 0, o + 4 <= bytes.count else { throw .truncated }
            var v = 0
            for k in 0..<4 { v |= Int(bytes[o + k]) << (8 * k) }
            return v
        }
        func u64(_ o: Int) throws(ParseError) -> UInt64 {
            guard o >= 0, o + 8 <= bytes.count else { throw .truncated }
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(bytes[o + k]) << (8 * UInt64(k)) }
            return v
        }
        func int(_ v: UInt64) throws(ParseError) -> Int {
            guard v <= UInt64(bytes.count) else { throw .truncated }
            return Int(v)
        }
        func cString(_ o: Int) throws(ParseError) -> String {
            guard o >= 0, o < bytes.count else { throw .truncated }
            var e = o
            while e < bytes.count && bytes[e] != 0 { e += 1 }
            return String(decoding: bytes[o..<e], as: UTF8.self)
        }
        struct Section { var type: Int; var offset: Int; var size: Int; var link: Int; var entsize: Int }
        let shoff = try int(try u64(0x28))
        let shentsize = try u16(0x3A), shnum = try u16(0x3C)
        guard shentsize >= 64 else { throw .unsupported("section header size \(shentsize)") }
        var sections: [Section] = []
        for k in 0..<shnum {
            let o = shoff + k * shentsize
            sections.append(Section(type: try u32(o + 4), offset: try int(try u64(o + 0x18)), size: try int(try u64(o + 0x20)),
                                    link: try u32(o + 0x28), entsize: try int(try u64(o + 0x38))))
        }
        func strtab(_ index: Int) throws(ParseError) -> Int {
            guard index < sections.count else { throw .truncated }
            return sections[index].offset
        }
        var result = ELFFile(needed: [], noDelete: false, exports: [])
        for s in sections where s.type == 6 {  // SHT_DYNAMIC
            let strings = try strtab(s.link)
            var o = s.offset
            while o + 16 <= s.offset + s.size {
                let tag = try u64(o), value = try u64(o + 8)
                if tag == 0 { break }
                if tag == 1 { result.needed.append(try cString(strings + (try int(value)))) }          // DT_NEEDED
                if tag == 0x6FFF_FFFB && value & 0x8 != 0 { result.noDelete = true }                  // DT_FLAGS_1, DF_1_NODELETE
                o += 16
            }
        }
        for s in sections where s.type == 11 {  // SHT_DYNSYM
            let strings = try strtab(s.link)
            let size = s.entsize == 0 ? 24 : s.entsize
            var o = s.offset
            while o + size <= s.offset + s.size {
                let name = try u32(o), info = Int(bytes[o + 4]), shndx = try u16(o + 6)
                let binding = info >> 4
                if name != 0 && shndx != 0 && (binding == 1 || binding == 2) {  // defined, GLOBAL or WEAK
                    result.exports.insert(try cString(strings + name))
                }
                o += size
            }
        }
        return result
    }
}
