/// Fills the shim template (`lua/shim.lua.in`). Everything substituted is a Lua
/// literal built here, so no setting can inject Lua code.
public enum ShimTemplate {
    public static func render(template: String, version: String, library: String,
                              settings: [(String, String)]) -> String {
        return template
            .replacingAll("@VERSION@", with: version)
            .replacingAll("@SCHEMA@", with: String(SchemaVersion.current))
            .replacingAll("@LIBRARY@", with: luaString(library))
            .replacingAll("@SETTINGS@", with: luaString(settingsText(settings)))
    }

    /// The settings the shim hands the library: one string of `name=value` lines,
    /// the schema first (one Lua string: no table to build in each lookup's state).
    public static func settingsText(_ settings: [(String, String)]) -> String {
        ([("schema", String(SchemaVersion.current))] + settings).map { "\($0.0)=\($0.1)" }.joined(separator: "\n")
    }

    /// Why a setting cannot go into the shim (a line break or NUL would split or
    /// cut the text), or nil.
    public static func settingProblem(_ name: String, _ value: String) -> String? {
        for byte in value.utf8 where byte == 0x0A || byte == 0x0D || byte == 0 {
            return "\(name) must not contain a line break or NUL"
        }
        return nil
    }

    /// A double-quoted Lua string literal for any text.
    public static func luaString(_ text: String) -> String {
        var out = "\""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x20...0x7e: out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let digits = String(byte)
                out += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
            }
        }
        return out + "\""
    }

    /// The lua.conf.xml lines: the script param must come before the bindings.
    public static func luaConfLines(scriptPath: String, bindings: String) -> String {
        """
        <param name="xml-handler-script" value="\(XMLWriter.escape(scriptPath))"/>
        <param name="xml-handler-bindings" value="\(XMLWriter.escape(bindings))"/>
        """
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRangeOfBytes(target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    /// First occurrence of `needle` (byte-wise), without Foundation.
    func firstRangeOfBytes(_ needle: String) -> Range<Index>? {
        let n = Array(needle.utf8)
        let hay = self.utf8
        var i = hay.startIndex
        while i != hay.endIndex {
            if hay[i] == n[0] {
                var j = i, k = 0
                while k < n.count && j != hay.endIndex && hay[j] == n[k] { j = hay.index(after: j); k += 1 }
                if k == n.count { return i..<j }
            }
            i = hay.index(after: i)
        }
        return nil
    }
}
