/// Fills the shim template (`lua/shim.lua.in`). Everything substituted is a Lua
/// literal built here, so no setting can inject Lua code.

import FSConfCore

public enum ShimTemplate {
    public static func render(template: String, version: String, library: String,
                              settings: [(String, String)]) -> String {
        return template
            .replacing("@VERSION@", with: version)
            .replacing("@SCHEMA@", with: String(SchemaVersion.current))
            .replacing("@LIBRARY@", with: luaString(library))
            .replacing("@SETTINGS@", with: luaString(settingsText(settings)))
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
