/// Checks run before a field is written: the value must be storable XML text, and
/// parameter names are compared with the names FreeSWITCH reads (a warning, never
/// an error: modules and versions add names).

import FSConfCore

public enum FieldValidation {
    /// Why `value` cannot be XML character data (nil: it can). XML 1.0 allows tab,
    /// LF and CR among the C0 controls; nothing else below U+0020, no U+FFFE/U+FFFF,
    /// no surrogates (Swift strings cannot hold them) and no U+FFFD, which is what an
    /// invalid UTF-8 byte decodes to.
    public static func xmlTextProblem(_ value: String) -> String? {
        var index = 0
        for u in value.unicodeScalars {
            index += 1
            switch u.value {
            case 0x09, 0x0A, 0x0D: continue
            case 0..<0x20: return "character \(index) is the control character U+\(hex(u.value)), which XML cannot carry"
            case 0x7F: return "character \(index) is the control character DEL"
            case 0xFFFD: return "character \(index) is U+FFFD: the value was not valid UTF-8"
            case 0xFFFE, 0xFFFF: return "character \(index) (U+\(hex(u.value))) is not allowed in XML"
            default: continue
            }
        }
        return nil
    }

    static func hex(_ v: UInt32) -> String {
        let digits = Array("0123456789ABCDEF")
        var s = ""
        var x = v
        repeat { s = String(digits[Int(x & 15)]) + s; x >>= 4 } while x > 0
        while s.count < 4 { s = "0" + s }
        return s
    }

    /// Enumerated columns and their allowed values: the dialplan's own (FSConfCore).
    public static var enumerations: [String: [String]] { DialplanVocabulary.enumerations }

    /// Params FreeSWITCH reads from a directory user (or its group/domain, merged):
    /// sofia_reg.c (sip_auth), mod_voicemail, mod_verto, mod_event_socket, switch_ivr.c.
    public static let directoryParams: Set<String> = [
        "password", "a1-hash", "reverse-auth-user", "reverse-auth-pass", "auth-acl", "allow-empty-password",
        "sip-forbid-register", "mwi-account", "max-registrations-per-extension", "user-agent-filter",
        "dial-string", "directory-visible", "directory-exten-visible", "http-allowed-api",
        "esl-password", "jsonrpc-password", "jsonrpc-allowed-methods", "jsonrpc-allowed-jsapi",
        "jsonrpc-allowed-fsapi", "jsonrpc-allowed-event-channels", "verto-context", "verto-dialplan",
        "vm-password", "vm-a1-hash", "vm-enabled", "vm-mailto", "vm-mailfrom", "vm-notify-mailto", "vm-email-all-messages",
        "vm-notify-email-all-messages", "vm-attach-file", "vm-keep-local-after-email", "vm-message-ext",
        "vm-disk-quota", "vm-alternate-greet-id", "vm-skip-instructions", "vm-storage-dir",
        "vm-domain-storage-dir", "vm-cc", "vm-convert-cmd", "vm-convert-ext", "vm-operator-extension",
        "vm-playback-date", "email-addr", "timezone", "callgroup", "effective_caller_id_name",
    ]

    /// Gateway params (sofia.c, parse_gateways).
    public static let gatewayParams: Set<String> = [
        "username", "auth-username", "password", "realm", "from-user", "from-domain", "register", "register-proxy",
        "register-transport", "outbound-proxy", "proxy", "expire-seconds", "retry-seconds", "fail-908-retry-seconds",
        "timeout-seconds", "caller-id-in-from", "extension", "extension-in-contact", "context", "dialplan",
        "ping", "ping-max", "ping-min", "ping-user-agent", "ping-monitoring", "contact-params", "contact-host",
        "distinct-to", "destination-prefix", "cid-type", "channels", "options-user-agent", "reg-id",
        "register-realm", "outbound-sticky-proxy", "early-negotiation", "scheme", "rfc-5626", "reg-instance-id",
        "contact-in-ping", "gw-auth-acl", "from-display", "sip_cid_type",
    ]

    /// sofia.conf `<global_settings>` and profile `<settings>` params (sofia.c,
    /// config_sofia / parse_profile). Not exhaustive: unknown names are only warned about.
    public static let sofiaParams: Set<String> = [
        // global_settings
        "log-level", "auto-restart", "debug-presence", "debug-sla", "capture-server", "abort-on-empty-external-ip",
        "max-recv-requests-per-second", "tracelevel", "inbound-reg-in-new-thread",
        // profile settings
        "sip-port", "sip-ip", "rtp-ip", "ext-rtp-ip", "ext-sip-ip", "ext-sip-port", "context", "dialplan", "codec-prefs",
        "inbound-codec-prefs", "outbound-codec-prefs", "auth-calls", "auth-all-packets", "auth-subscriptions",
        "apply-inbound-acl", "apply-register-acl", "apply-proxy-acl", "apply-nat-acl", "apply-candidate-acl",
        "accept-blind-reg", "accept-blind-auth", "debug", "sip-trace", "sip-capture", "watchdog-enabled",
        "watchdog-step-timeout", "watchdog-event-timeout", "shutdown-on-fail", "log-auth-failures",
        "forward-unsolicited-mwi-notify", "hold-music", "rtp-timer-name", "rtp-timeout-sec", "rtp-hold-timeout-sec",
        "rfc2833-pt", "dtmf-duration", "dtmf-type", "session-timeout", "manage-presence", "presence-hosts",
        "presence-privacy", "presence-probe-on-register", "send-message-query-on-register", "send-presence-on-register",
        "inbound-codec-negotiation", "tls", "tls-only", "tls-bind-params", "tls-sip-port", "tls-cert-dir",
        "tls-version", "tls-passphrase", "tls-verify-date", "tls-verify-policy", "tls-verify-depth",
        "tls-verify-in-subjects", "tls-ciphers", "tls-timeout", "nonce-ttl", "challenge-realm", "user-agent-string",
        "username", "local-network-acl", "force-register-domain", "force-subscription-domain",
        "force-register-db-domain", "inbound-late-negotiation", "inbound-zrtp-passthru", "record-path",
        "record-template", "enable-timer", "enable-100rel", "minimum-session-expires", "ws-binding", "wss-binding",
        "enable-3pcc", "disable-transfer", "disable-register", "aggressive-nat-detection", "multiple-registrations",
        "max-proceeding", "bind-params", "dbname", "odbc-dsn", "rtp-autoflush-during-bridge",
        "rtp-rewrite-timestamps", "pass-rfc2833", "track-calls", "inbound-reg-force-matching-username",
        "unregister-on-options-fail", "nat-options-ping", "all-reg-options-ping", "sip-options-respond-503-on-busy",
        "media-option", "rtcp-audio-interval-msec", "rtcp-video-interval-msec", "inbound-bypass-media",
        "inbound-proxy-media", "disable-transcoding", "auto-jitterbuffer-msec", "pass-callee-id", "caller-id-type",
        "parse-invite-tel-params", "rtp-digit-delay", "alias", "sip-expires-max-deviation", "registration-thread-frequency",
        "ping-mean-interval", "ping-thread-frequency", "keepalive-method",
        "stun-enabled", "stun-auto-disable", "vad", "suppress-cng", "NDLB-force-rport", "NDLB-broken-auth-hash",
        "NDLB-received-in-nat-reg-contact", "NDLB-sendrecv-in-session", "NDLB-allow-bad-iananame", "NDLB-connectile-dysfunction",
        "NDLB-funny-stun", "NDLB-allow-crypto-in-avp", "NDLB-allow-nondup-sdp", "rtp-enable-zrtp", "rtp-ip-v6", "sip-ip-v6",
        "inbound-use-callid-as-uuid", "outbound-use-uuid-as-callid", "timer-T1", "timer-T1X64",
        "timer-T2", "timer-T4", "sip-subscription-max-deviation", "bitpacking", "liberal-dtmf", "rtp-jitter-buffer-during-bridge",
        "mwi-use-reg-callid", "presence-hold-state", "presence-disable-early", "presence-proto-lookup", "presence-updates-only-on-change",
        "contact-user", "outbound-proxy", "proxy-refer-replaces", "proxy-hold", "proxy-info", "proxy-message",
        "extended-info-parsing", "enable-rfc-5626", "webrtc-via-host", "sip-force-expires", "sip-force-expires-min",
        "sip-force-expires-max", "g726-packing", "rtp-notimer-during-bridge", "max-registrations-per-extension",
        "user-agent-filter", "3pcc-reinvite-bridged-on-ack", "renegotiate-codec-on-reinvite", "recieve-proxy-media",
        "disable-hold", "disable-srv", "disable-naptr", "disable-srv503", "t38-passthru",
        "reuse-connections", "tcp-keepalive", "tcp-pingpong", "tcp-ping2pong", "ignore-183nosdp", "ignore-183-sdp",
        "ipv6",
        "rtp-liberal-dtmf", "p-asserted-id-parse", "enable-compact-headers",
        "enable-soa", "dtmf-pt-forward", "sip-messages-respond-200-ok", "sip-subscribe-respond-200-ok",
        "media-timeout", "media-hold-timeout", "auto-rtp-bugs", "manual-rtp-bugs",
        "manual-video-rtp-bugs", "unsolicited-mwi",
    ]

    /// The known names for a param in this context, or nil when fsconf does not check.
    public static func knownParams(_ address: FieldAddress) -> (context: String, names: Set<String>)? {
        switch address {
        case .directory(let d):
            guard case .setting(.param, _, _)? = d.field else { return nil }
            return d.gateway == nil ? ("directory", directoryParams) : ("gateway", gatewayParams)
        case .tree(let t):
            guard t.section == .configuration, t.document == "sofia.conf", let last = t.elements.last, last.tag == "param",
                  t.elements.count >= 2 else { return nil }
            let container = t.elements[t.elements.count - 2].tag
            if container == "gateway" || t.elements.contains(where: { $0.tag == "gateways" }) { return ("sofia gateway", gatewayParams) }
            guard container == "settings" || container == "global_settings" else { return nil }
            return ("sofia.conf \(container)", sofiaParams)
        default:
            return nil
        }
    }

    /// The warning for `name` in `address`, or nil when it is known (or unchecked).
    public static func unknownParamWarning(_ address: FieldAddress, name: String) -> String? {
        guard let (context, names) = knownParams(address), !names.contains(name) else { return nil }
        let close = names.filter { editDistance($0, name) <= 2 }.sorted().prefix(3)
        let hint = close.isEmpty ? "" : " (did you mean \(close.joined(separator: ", "))?)"
        return "warning: \(name) is not a \(context) param FreeSWITCH is known to read\(hint)"
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.utf8), y = Array(b.utf8)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var prev = Array(0...y.count)
        for i in 1...x.count {
            var cur = [i] + [Int](repeating: 0, count: y.count)
            for j in 1...y.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[y.count]
    }
}
