/// One lookup as mod_lua hands it to the handler: `XML_REQUEST` plus the few
/// `params` headers that shape the answer. Everything here is untrusted input
/// from FreeSWITCH (often straight from a SIP packet).
public struct LookupRequest: Equatable, Sendable {
    public var section: String
    public var tagName: String
    public var keyName: String
    public var keyValue: String
    /// Headers from `params` already at hand (by name, as FreeSWITCH spells them).
    public var headers: [String: String]
    /// Where the other headers come from, on demand. On a node each header is a
    /// `params:getHeader` call into Lua, so a lookup reads only the few its planner
    /// asks for (a REGISTER's sip_auth: purpose, user, key); nil: `headers` is all.
    public var headerSource: (any HeaderSource)?
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

    /// A header's value; nil when absent or empty.
    public func header(_ name: String) -> String? {
        let value = (headers.isEmpty ? nil : headers[name]) ?? headerSource?.header(name)
        guard let value, !value.isEmpty else { return nil }
        return value
    }

    /// The params headers a lookup of `section` reads in nearly every case, so a
    /// node can read them all in one call into Lua: a directory lookup's plan for a
    /// user (purpose, user, key: a REGISTER's sip_auth, a call's user_call) and the
    /// node's name (NodeIdentity). Others are still read one by one, on demand.
    public static func usualHeaders(section: String) -> [String] {
        section == Section.directory.rawValue ? usualDirectoryHeaders : []
    }
    static let usualDirectoryHeaders = ["purpose", "user", "key", NodeIdentity.headers[0]]

    /// Equal requests ask the same thing: the header source is not compared.
    public static func == (a: LookupRequest, b: LookupRequest) -> Bool {
        a.section == b.section && a.tagName == b.tagName && a.keyName == b.keyName && a.keyValue == b.keyValue
            && a.headers == b.headers && a.hasParams == b.hasParams
    }

    /// Longest value fsconf accepts for any key (a SIP user, a domain...). Longer
    /// input cannot name anything stored, so it is answered without a query.
    public static let maximumKeyLength = 512

    /// True when `text` can be a stored key at all: valid length, no NUL.
    /// (Strings from Lua are decoded leniently; U+FFFD marks invalid UTF-8.)
    public static func isPlausibleKey(_ text: String) -> Bool {
        if text.utf8.count > maximumKeyLength { return false }
        // In bytes: NUL, or U+FFFD (EF BF BD; a String's UTF-8 is always valid).
        func plausible(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
            for i in bytes.indices {
                let byte = bytes[i]
                if byte == 0 || (byte == 0xEF && i + 2 < bytes.count && bytes[i + 1] == 0xBF && bytes[i + 2] == 0xBD) {
                    return false
                }
            }
            return true
        }
        if let answer = text.utf8.withContiguousStorageIfAvailable(plausible) { return answer }
        return Array(text.utf8).withUnsafeBufferPointer(plausible)
    }
}

/// Reads `params` headers on demand (the node: `params:getHeader` through the
/// protected glue). Used on the calling thread only, within one lookup.
public protocol HeaderSource: AnyObject, Sendable {
    func header(_ name: String) -> String?
    /// Set when a read failed (getHeader raised): the lookup is refused with it
    /// rather than planned as if the header were absent.
    var readError: String? { get }
    /// True while every header read came from the ones read together up front
    /// (`LookupRequest.usualHeaders`): the node may then remember what this
    /// request planned to by those headers alone (FSConfNode's RequestMemo).
    var readOnlyUsualHeaders: Bool { get }
}

extension HeaderSource {
    public var readOnlyUsualHeaders: Bool { false }
}

/// Sections fsconf answers.
public enum Section: String, Sendable, CaseIterable {
    case directory, dialplan, chatplan, configuration, languages, phrases
}
