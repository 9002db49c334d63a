/// Compiles a regular expression and reports why it does not compile (nil: it
/// does). The pure core cannot link PCRE2; FSConfRegex provides the real one.
public protocol RegexCompiler: Sendable {
    func problem(pattern: String, caseless: Bool, dotall: Bool) -> String?
}

/// How FreeSWITCH turns a dialplan `expression` into a PCRE2 pattern before it
/// compiles it (src/switch_regex.c, switch_regex_perform):
/// - `_…` is an Asterisk-style pattern converted by switch_ast2regex;
/// - `/pattern/flags` strips the slashes; flag `i` is PCRE2_CASELESS, `s` is
///   PCRE2_DOTALL; a missing closing `/` is an error ("missing ending '/' delimeter");
/// - anything else is compiled as is, with no options.
public enum FreeSWITCHRegex {
    public enum Prepared: Equatable, Sendable {
        /// Compile this pattern with these options.
        case pattern(String, caseless: Bool, dotall: Bool)
        /// An Asterisk-style `_` pattern: FreeSWITCH rewrites it itself; not checked.
        case asterisk
        /// Not a usable expression at all.
        case invalid(String)
    }

    public static func prepare(_ expression: String) -> Prepared {
        if expression.hasPrefix("_") { return .asterisk }
        guard expression.hasPrefix("/") else { return .pattern(expression, caseless: false, dotall: false) }
        let body = expression.dropFirst()
        guard let slash = body.lastIndex(of: "/") else {
            return .invalid("missing ending '/' delimiter")
        }
        let flags = body[body.index(after: slash)...]
        return .pattern(String(body[..<slash]), caseless: flags.contains("i"), dotall: flags.contains("s"))
    }

    /// Why `expression` would fail in FreeSWITCH (nil: it compiles). An expression
    /// holding a channel variable (`${…}`) is expanded per call before FreeSWITCH
    /// compiles it, so it is only refused when it fails to compile AND holds no
    /// `${`: the call-time value may well repair it.
    public static func problem(_ expression: String, compiler: any RegexCompiler) -> String? {
        switch prepare(expression) {
        case .asterisk: return nil
        case .invalid(let reason): return reason
        case .pattern(let pattern, let caseless, let dotall):
            guard let problem = compiler.problem(pattern: pattern, caseless: caseless, dotall: dotall) else { return nil }
            if expression.utf8.count > 1 && containsChannelVariable(expression) { return nil }
            return problem
        }
    }

    static func containsChannelVariable(_ text: String) -> Bool {
        var previous: UInt8 = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "{") && previous == UInt8(ascii: "$") { return true }
            previous = byte
        }
        return false
    }
}

