import FSConfCore
import Glibc

/// How a node reaches its database, from the shim's settings table. The shim
/// carries no secret: a libpq service name, a root-only conninfo file, or libpq's
/// environment.
public struct NodeSettings: Equatable, Sendable {
    /// libpq conninfo (possibly empty: libpq's environment).
    public var conninfo: String
    public var poolSize: Int = 4
    /// Longest a lookup may wait for the database (connect + query), in ms.
    public var deadlineMs: Int = 300
    /// PostgreSQL's statement_timeout on node connections, in ms.
    public var statementTimeoutMs: Int = 250
    /// The schema version the shim was generated for.
    public var shimSchema: Int?
    /// The in-node cache's memory cap in bytes (answers, keys and tags); 0 turns
    /// the cache off (every lookup asks the database, no last good answer kept).
    public var cacheBytes: Int = 64 * 1024 * 1024
    /// How long a "not found" answer (unknown user, context, document) is served
    /// from the cache without asking again, in ms. Changes drop it sooner.
    public var negativeTTLms: Int = 5_000
    /// How often the change listener reads fsconf.change_counter, in ms (the only
    /// way to learn of changes on a standby, which gets no NOTIFY).
    public var pollMs: Int = 250
    /// `prefer_standby=true`: libpq's `target_session_attrs=prefer-standby`
    /// (libpq 14+): with `host=a,b`, read from a standby when one is up.
    public var preferStandby = false

    public init(conninfo: String = "") { self.conninfo = conninfo }

    /// The accepted ranges (the shim generator checks them too).
    public static let poolSizes = 1...64, deadlines = 10...60_000, cacheSizes = 0...Int(Int32.max),
                      negativeTTLs = 0...3_600_000, pollIntervals = 20...60_000

    /// The keys the shim's settings table may hold.
    public static let keys = ["schema", "service", "conninfo_file", "conninfo", "pool_size", "deadline_ms", "statement_timeout_ms",
                              "cache_bytes", "negative_ttl_ms", "poll_ms", "prefer_standby"]

    /// The conninfo the node connects with: `conninfo` plus what the settings add.
    public var effectiveConninfo: String {
        guard preferStandby, !conninfo.contains("target_session_attrs") else { return conninfo }
        return NodeSettings.appending(conninfo, "target_session_attrs", "prefer-standby")
    }

    /// Adds `key=value` to a conninfo in either form (keywords or a URI).
    public static func appending(_ conninfo: String, _ key: String, _ value: String) -> String {
        if conninfo.hasPrefix("postgresql://") || conninfo.hasPrefix("postgres://") {
            return conninfo + (conninfo.contains("?") ? "&" : "?") + "\(key)=\(value)"
        }
        return conninfo.isEmpty ? "\(key)=\(value)" : "\(conninfo) \(key)=\(value)"
    }

    /// The shim's settings string: `name=value` lines (split at the first `=`).
    /// Names the library does not know are ignored, as in a settings table.
    public static func values(fromText text: String) -> Result<[String: String], NodeError> {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let eq = line.firstIndex(of: "=") else {
                return .failure(.configuration("a settings line must be name=value, got \(line.prefix(40))"))
            }
            values[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return .success(values)
    }

    /// Builds settings from the shim's table values (by `keys`). Errors are one line.
    public static func from(_ values: [String: String], readFile: (String) -> String?) -> Result<NodeSettings, NodeError> {
        var conninfo = ""
        if let service = values["service"], !service.isEmpty {
            conninfo = "service=\(quoteConninfo(service))"
        } else if let path = values["conninfo_file"], !path.isEmpty {
            guard let text = readFile(path) else {
                return .failure(.configuration("cannot read conninfo_file \(path)"))
            }
            conninfo = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
                .filter { !$0.hasPrefix("#") }.joined(separator: " ")
        } else if let raw = values["conninfo"] {
            conninfo = raw
        }
        var settings = NodeSettings(conninfo: conninfo)
        func int(_ key: String, _ range: ClosedRange<Int>) -> Result<Int?, NodeError> {
            guard let text = values[key] else { return .success(nil) }
            guard let n = Int(text), range.contains(n) else {
                return .failure(.configuration("\(key) must be a whole number in \(range.lowerBound)...\(range.upperBound), got \(text)"))
            }
            return .success(n)
        }
        do {
            if let n = try int("pool_size", poolSizes).get() { settings.poolSize = n }
            if let n = try int("deadline_ms", deadlines).get() { settings.deadlineMs = n }
            if let n = try int("statement_timeout_ms", deadlines).get() { settings.statementTimeoutMs = n }
            else { settings.statementTimeoutMs = max(10, settings.deadlineMs - 50) }
            if let n = try int("schema", 1...1_000_000).get() { settings.shimSchema = n }
            if let n = try int("cache_bytes", cacheSizes).get() { settings.cacheBytes = n }
            if let n = try int("negative_ttl_ms", negativeTTLs).get() { settings.negativeTTLms = n }
            if let n = try int("poll_ms", pollIntervals).get() { settings.pollMs = n }
        } catch {
            return .failure(error)
        }
        if let text = values["prefer_standby"] {
            switch text.asciiLowercased {
            case "true", "1", "yes", "on": settings.preferStandby = true
            case "false", "0", "no", "off", "": settings.preferStandby = false
            default: return .failure(.configuration("prefer_standby must be true or false, got \(text)"))
            }
        }
        return .success(settings)
    }

    static func quoteConninfo(_ value: String) -> String {
        var out = "'"
        for ch in value {
            if ch == "'" || ch == "\\" { out.append("\\") }
            out.append(ch)
        }
        return out + "'"
    }
}

public enum NodeError: Error, Equatable, Sendable, CustomStringConvertible {
    case configuration(String)
    public var description: String {
        switch self { case .configuration(let m): return "fsconf: bad shim settings: \(m)" }
    }
}

/// Reads a small file (the conninfo file) without Foundation.
public func readSmallFile(_ path: String, limit: Int = 64 * 1024) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var buffer = [UInt8](repeating: 0, count: limit)
    let n = fread(&buffer, 1, limit, f)
    return String(decoding: buffer[0..<n], as: UTF8.self)
}
