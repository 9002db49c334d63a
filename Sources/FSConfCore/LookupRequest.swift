/// One lookup as mod_lua hands it to the handler: `XML_REQUEST` plus the few
/// `params` headers that shape the answer. Everything here is untrusted input
/// from FreeSWITCH (often straight from a SIP packet).
public struct LookupRequest: Equatable, Sendable {
    public var section: String
    public var tagName: String
    public var keyName: String
    public var keyValue: String
    /// Headers from `params`, by the names in `LookupRequest.headerNames`.
    public var headers: [String: String]
    /// False when mod_lua passed no params event at all.
    public var hasParams: Bool

    public init(section: String, tagName: String = "", keyName: String = "", keyValue: String = "",
                headers: [String: String] = [:], hasParams: Bool = true) {
        self.section = section
        self.tagName = tagName
        self.keyName = keyName
        self.keyValue = keyValue
        self.headers = headers
        self.hasParams = hasParams
    }

    /// The params headers fsconf reads (getHeader is case-insensitive in FreeSWITCH).
    /// Reading a fixed list keeps the per-lookup cost bounded whatever the event holds.
    public static let headerNames: [String] = [
        // directory
        "action", "purpose", "key", "user", "domain", "group_name", "type", "profile",
        // dialplan
        "Hunt-Context", "Caller-Context",
        // configuration narrowing
        "reconfig", "Menu-Name", "CC-Queue", "conf_name", "profile_name",
        // languages
        "lang", "macro_name",
    ]

    /// For each of `headerNames`, the sections whose planning reads it (bits:
    /// 1 directory, 2 dialplan, 4 configuration, 8 languages/phrases; 0: read by no
    /// planner today). The glue reads only the headers of the asked section: each
    /// `params:getHeader` is a Lua call, and most lookups are cache hits whose cost
    /// is mostly these reads. A planner that starts reading a header must set its bit.
    public static let headerMasks: [UInt8] = headerNames.map { name in
        switch name {
        case "purpose", "key", "user", "domain", "group_name": return 1
        case "Hunt-Context", "Caller-Context": return 2
        case "profile", "Menu-Name", "CC-Queue", "profile_name": return 4
        case "lang": return 8
        default: return 0   // action, type, reconfig, conf_name, macro_name: informational only
        }
    }

    /// The `headerMasks` bit of a section name (0: a section fsconf does not serve).
    public static func sectionBit(_ section: String) -> UInt8 {
        switch section {
        case "directory": return 1
        case "dialplan": return 2
        case "configuration": return 4
        case "languages", "phrases": return 8
        default: return 0
        }
    }

    public func header(_ name: String) -> String? {
        guard let v = headers[name], !v.isEmpty else { return nil }
        return v
    }

    /// Longest value fsconf accepts for any key (a SIP user, a domain...). Longer
    /// input cannot name anything stored, so it is answered without a query.
    public static let maximumKeyLength = 512

    /// True when `text` can be a stored key at all: valid length, no NUL.
    /// (Strings from Lua are decoded leniently; U+FFFD marks invalid UTF-8.)
    public static func isPlausibleKey(_ text: String) -> Bool {
        if text.utf8.count > maximumKeyLength { return false }
        for scalar in text.unicodeScalars where scalar.value == 0 || scalar == "\u{FFFD}" { return false }
        return true
    }
}

/// Sections fsconf answers.
public enum Section: String, Sendable, CaseIterable {
    case directory, dialplan, configuration, languages, phrases
}
