/// The node library's own counters, read from inside FreeSWITCH: the agent sends
/// `api lua ~<code>` (mod_lua runs the code after `~` inline, with `stream` the
/// API's output), the code opens the library FreeSWITCH already holds
/// (`package.loadlib(path, "luaopen_fsconf")`: the same process-wide engine the
/// lookups use) and writes `fsconf.stats()` as `name value` lines.
public struct NodeStats: Equatable, Sendable {
    /// Counter name → value, as `fsconf.stats()` names them (docs/caching.md).
    public var values: [String: Int64] = [:]
    /// Why they could not be read (the library not installed at that path, mod_lua missing…).
    public var error: String?

    public init(values: [String: Int64] = [:], error: String? = nil) { self.values = values; self.error = error }

    /// The `api` command (one line) that runs the stats script for the library at `library`.
    public static func command(library: String) -> String {
        "lua ~local o, e = package.loadlib(\(luaString(library)), \"luaopen_fsconf\") "
            + "if not o then stream:write(\"-ERR \" .. tostring(e):gsub(\"%s+\", \" \") .. \"\\n\") return end "
            + "local ok, m = pcall(o) if not ok or type(m) ~= \"table\" then stream:write(\"-ERR cannot open the fsconf module\\n\") return end "
            + "for k, v in pairs(m.stats()) do stream:write(\"fsconf \" .. k .. \" \" .. string.format(\"%d\", v) .. \"\\n\") end"
    }

    /// A Lua string literal of `text`: every byte that is not a letter, digit or
    /// one of `/._-` is written as a decimal escape (no quote, newline or bracket
    /// can end the literal or the command).
    static func luaString(_ text: String) -> String {
        var out = "\""
        for b in text.utf8 {
            let c = Character(Unicode.Scalar(b))
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "/._-".contains(c) {
                out.append(c)
            } else {
                out += "\\" + String(b)
            }
        }
        return out + "\""
    }

    /// The reply: `fsconf NAME VALUE` lines, else an error line.
    public static func parse(_ reply: String) -> NodeStats {
        var stats = NodeStats()
        for line in reply.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let words = line.split(separator: " ")
            if words.count == 3, words[0] == "fsconf", let v = Int64(words[2]) {
                stats.values[String(words[1])] = v
            }
        }
        if stats.values.isEmpty {
            let text = AgentText.oneLine(reply)
            stats.error = text.hasPrefix("-ERR") ? text : "unexpected reply: \(text)"
        }
        return stats
    }
}

/// Prometheus' text exposition format (version 0.0.4) of the agent's metrics.
public enum PrometheusText {
    /// The node library's counters: stats name → metric name, type, help.
    static let nodeMetrics: [(stat: String, name: String, type: String, help: String)] = [
        ("hits", "fsconf_node_cache_hits_total", "counter", "Lookups answered from the node library's cache."),
        ("misses", "fsconf_node_cache_misses_total", "counter", "Lookups that asked the database."),
        ("stale", "fsconf_node_stale_answers_total", "counter", "Last good answers served while the database could not answer."),
        ("database_errors", "fsconf_node_database_errors_total", "counter", "Lookups the database failed (down, refused, past the deadline)."),
        ("database_down", "fsconf_node_database_down", "gauge", "1 while the node library considers the database unavailable."),
        ("pool_open", "fsconf_node_pool_connections_open", "gauge", "Database connections the node library holds."),
        ("pool_idle", "fsconf_node_pool_connections_idle", "gauge", "Of those, idle."),
        ("pool_size", "fsconf_node_pool_size", "gauge", "The pool's bound (the shim's pool_size)."),
        ("entries", "fsconf_node_cache_entries", "gauge", "Answers in the cache."),
        ("bytes", "fsconf_node_cache_bytes", "gauge", "Bytes the cached answers take."),
        ("capacity", "fsconf_node_cache_capacity_bytes", "gauge", "The cache's bound in bytes."),
        ("inserts", "fsconf_node_cache_inserts_total", "counter", "Answers put in the cache."),
        ("evictions", "fsconf_node_cache_evictions_total", "counter", "Answers evicted to stay within the bound."),
        ("invalidated", "fsconf_node_cache_invalidated_total", "counter", "Answers dropped because a change set touched them."),
        ("listener_connected", "fsconf_node_listener_connected", "gauge", "1 while the change listener is connected."),
        ("listener_seq", "fsconf_node_listener_seq", "gauge", "The last change set the change listener heard of."),
        ("reconnects", "fsconf_node_listener_reconnects_total", "counter", "Reconnects of the change listener."),
    ]

    public static func render(_ m: AgentMetrics) -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for s in samples { out += "\(name)\(s.labels) \(s.value)\n" }
        }
        func one(_ value: Int64?) -> [(labels: String, value: String)] { value.map { [("", String($0))] } ?? [] }
        func byKind(_ counts: [String: Int]) -> [(labels: String, value: String)] {
            counts.keys.sorted().map { ("{kind=\(label($0))}", String(counts[$0]!)) }
        }
        metric("fsconf_agent_applied_seq", "gauge", "The seq of the last change set applied to this node.", one(m.appliedSeq))
        metric("fsconf_agent_newest_seq", "gauge", "The newest change set the agent has seen in the database.", one(m.newestSeq))
        let lag = m.newestSeq.map { max(0, $0 - (m.appliedSeq ?? 0)) }
        metric("fsconf_agent_lag_change_sets", "gauge", "Change sets committed and not applied to this node yet.", one(lag))
        metric("fsconf_agent_change_sets_applied_total", "counter", "Change sets applied since the agent started.",
               [("", String(m.changeSetsApplied))])
        metric("fsconf_agent_commands_total", "counter", "Commands sent to FreeSWITCH, by kind.", byKind(m.commandsSent))
        metric("fsconf_agent_command_failures_total", "counter", "Replies refusing a command (each try), by kind.", byKind(m.commandsRefused))
        metric("fsconf_agent_commands_abandoned_total", "counter", "Commands given up on after every try, by kind.", byKind(m.commandsAbandoned))
        metric("fsconf_agent_reconnects_total", "counter", "Connections lost and made again, by link.",
               [("{link=\"database\"}", String(m.databaseReconnects)), ("{link=\"event_socket\"}", String(m.eventSocketReconnects))])
        metric("fsconf_agent_connected", "gauge", "1 while the link is up.",
               [("{link=\"database\"}", m.databaseConnected ? "1" : "0"), ("{link=\"event_socket\"}", m.eventSocketConnected ? "1" : "0")])
        metric("fsconf_agent_gaps_total", "counter", "Change sets that could not be read (every cached user flushed).", [("", String(m.gaps))])
        metric("fsconf_agent_rewinds_total", "counter", "Times the database's change counter went back (a restore).", [("", String(m.rewinds))])
        var h: [(labels: String, value: String)] = []
        for (i, bound) in m.latency.bounds.enumerated() {
            h.append(("{le=\"\(seconds(bound))\"}", String(m.latency.counts[i])))
        }
        h.append(("{le=\"+Inf\"}", String(m.latency.count)))
        out += "# HELP fsconf_agent_commit_to_applied_seconds From a change set's commit to its last command answered on this node.\n"
        out += "# TYPE fsconf_agent_commit_to_applied_seconds histogram\n"
        for s in h { out += "fsconf_agent_commit_to_applied_seconds_bucket\(s.labels) \(s.value)\n" }
        out += "fsconf_agent_commit_to_applied_seconds_sum \(seconds(m.latency.sum))\n"
        out += "fsconf_agent_commit_to_applied_seconds_count \(m.latency.count)\n"

        let node = m.node
        metric("fsconf_node_stats_up", "gauge", "1 when the node library's counters were read from FreeSWITCH (api lua).",
               [("", node.map { $0.error == nil ? "1" : "0" } ?? "0")])
        if let values = node?.values, node?.error == nil {
            for n in nodeMetrics {
                if let v = values[n.stat] { metric(n.name, n.type, n.help, [("", String(v))]) }
            }
        }
        return out
    }

    /// A label value, quoted and escaped (`\`, `"`, line feed).
    static func label(_ value: String) -> String {
        var out = "\""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out + "\""
    }

    /// Milliseconds as seconds, to the microsecond: 5 → "0.005", 2500 → "2.5".
    static func seconds(_ ms: Double) -> String { AgentText.decimal(Int64((ms * 1000).rounded()), places: 6) }
}
