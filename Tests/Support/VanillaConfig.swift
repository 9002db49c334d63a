import FSConfStore
import Foundation
import FoundationXML

/// Test data that mirrors FreeSWITCH's vanilla configuration: a tiny stand-in for
/// the pre-processor (include globs, dropping <include> wrappers) and loaders that
/// turn XML into fsconf rows with plain SQL. Test support only: the real importer
/// is `fsconf import` (a later issue), which these helpers do not try to be.
public enum VanillaConfig {
    public static var root: URL {
        TestEnvironment.sharedDirectory.appendingPathComponent("fixtures/freeswitch-conf/vanilla")
    }

    /// `file` with `<X-PRE-PROCESS cmd="include">` lines replaced by the matching
    /// files (sorted; `exclude` drops names containing any of those strings),
    /// `<include>`/`</include>`/`<?` lines and other X-PRE-PROCESS lines removed.
    /// `$${…}` stays as it is, as fsconf stores it.
    public static func expand(_ file: URL, exclude: [String] = []) throws -> String {
        let text = try String(contentsOf: file, encoding: .utf8)
        var out: [String] = []
        for line in text.components(separatedBy: "\n") {
            if line.contains("<X-PRE-PROCESS") {
                guard line.contains("cmd=\"include\""), let data = attribute("data", in: line) else { continue }
                let base = data.hasPrefix("/") ? URL(fileURLWithPath: "/") : file.deletingLastPathComponent()
                for match in try glob(data, in: base) where !exclude.contains(where: { match.lastPathComponent.contains($0) }) {
                    out.append(try expand(match, exclude: exclude))
                }
                continue
            }
            if line.contains("<include>") || line.contains("</include>") || line.contains("<?") { continue }
            out.append(line)
        }
        return out.joined(separator: "\n")
    }

    static func attribute(_ name: String, in line: String) -> String? {
        guard let r = line.range(of: "\(name)=\"") else { return nil }
        let rest = line[r.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }

    /// `dir/*.xml` style globs: a directory part and a file pattern with `*`.
    static func glob(_ pattern: String, in base: URL) throws -> [URL] {
        let full = base.appendingPathComponent(pattern)
        let dir = full.deletingLastPathComponent()
        let name = full.lastPathComponent
        guard name.contains("*") else {
            return FileManager.default.fileExists(atPath: full.path) ? [full] : []
        }
        let parts = name.components(separatedBy: "*")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return files.filter { f in
            f.hasPrefix(parts.first ?? "") && f.hasSuffix(parts.last ?? "") && f.count >= name.count - 1
        }.sorted().map { dir.appendingPathComponent($0) }
    }

    static func quote(_ s: String?) -> String {
        guard let s else { return "NULL" }
        return "'" + s.replacingOccurrences(of: "'", with: "''") + "'"
    }

    static func elements(_ e: XMLElement) -> [XMLElement] { (e.children ?? []).compactMap { $0 as? XMLElement } }

    /// Character data directly inside `e` (text and CDATA), nil when only whitespace.
    static func text(_ e: XMLElement) -> String? {
        let parts = (e.children ?? []).filter { $0.kind == .text }.compactMap(\.stringValue)
        let joined = parts.joined()
        return joined.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : joined
    }

    /// Stores `xml` (one root element) as document (section, name) with plain SQL.
    public static func loadTree(_ xml: String, section: String, name: String, into conn: PGConnection) throws {
        let doc = try XMLDocument(xmlString: xml, options: [])
        guard let root = doc.rootElement() else { throw TestSetupError("no root element in \(name)") }
        let docID = try conn.query("INSERT INTO fsconf.documents (section, name) VALUES ($1, $2) RETURNING id",
                                   [section, name]).string(0, 0)!
        var nextID = Int(try conn.query("SELECT coalesce(max(id), 0) + 1 FROM fsconf.elements").string(0, 0)!)!
        var elementRows: [String] = []
        var attributeRows: [String] = []
        func walk(_ e: XMLElement, parent: Int?, position: Int) {
            let id = nextID
            nextID += 1
            elementRows.append("(\(id), \(docID), \(parent.map(String.init) ?? "NULL"), \(position), \(quote(e.name)), \(quote(text(e))))")
            for (i, a) in (e.attributes ?? []).enumerated() {
                attributeRows.append("(\(id), \(quote(a.name)), \(quote(a.stringValue ?? "")), \(i + 1))")
            }
            for (i, child) in elements(e).enumerated() { walk(child, parent: id, position: i + 1) }
        }
        walk(root, parent: nil, position: 1)
        for chunk in stride(from: 0, to: elementRows.count, by: 1000) {
            try conn.execute("INSERT INTO fsconf.elements (id, document_id, parent_id, position, tag, text) OVERRIDING SYSTEM VALUE VALUES "
                             + elementRows[chunk..<min(chunk + 1000, elementRows.count)].joined(separator: ","))
        }
        for chunk in stride(from: 0, to: attributeRows.count, by: 1000) {
            try conn.execute("INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES "
                             + attributeRows[chunk..<min(chunk + 1000, attributeRows.count)].joined(separator: ","))
        }
        try conn.execute("SELECT setval(pg_get_serial_sequence('fsconf.elements', 'id'), (SELECT max(id) FROM fsconf.elements))")
    }

    /// Stores every `<context>` of a dialplan file (extensions, conditions with
    /// their nested conditions, `<regex>` children, actions, anti-actions).
    public static func loadDialplan(_ xml: String, into conn: PGConnection) throws {
        let doc = try XMLDocument(xmlString: "<root>\(xml)</root>", options: [])
        let contexts = try doc.nodes(forXPath: "//context").compactMap { $0 as? XMLElement }
        for context in contexts {
            let name = context.attribute(forName: "name")?.stringValue ?? ""
            let contextID = try conn.query("INSERT INTO fsconf.dialplan_contexts (name) VALUES ($1) RETURNING id", [name]).string(0, 0)!
            for (i, ext) in elements(context).filter({ $0.name == "extension" }).enumerated() {
                let a = { (n: String) in ext.attribute(forName: n)?.stringValue }
                let extID = try conn.query("""
                    INSERT INTO fsconf.dialplan_extensions (context_id, name, continue, position)
                    VALUES ($1, $2, $3, $4) RETURNING id
                    """, [contextID, a("name") ?? "", a("continue"), String(i + 1)]).string(0, 0)!
                for (j, c) in elements(ext).filter({ $0.name == "condition" }).enumerated() {
                    try loadCondition(c, extension: extID, parent: nil, position: j + 1, conn)
                }
            }
        }
    }

    static let conditionColumns: [(xml: String, column: String)] = [
        ("field", "field"), ("expression", "expression"), ("break", "break"), ("require-nested", "require_nested"),
        ("regex", "regex"), ("year", "year"), ("yday", "yday"), ("mon", "mon"), ("mday", "mday"), ("week", "week"),
        ("mweek", "mweek"), ("wday", "wday"), ("hour", "hour"), ("minute", "minute"), ("minute-of-day", "minute_of_day"),
        ("time-of-day", "time_of_day"), ("date-time", "date_time"), ("tz", "tz"),
    ]

    static func loadCondition(_ c: XMLElement, extension ext: String, parent: String?, position: Int, _ conn: PGConnection) throws {
        var values: [String?] = conditionColumns.map { c.attribute(forName: $0.xml)?.stringValue }
        if values[1] == nil, let expression = elements(c).first(where: { $0.name == "expression" }) {
            values[1] = expression.stringValue ?? ""
        }
        let columns = conditionColumns.map(\.column).joined(separator: ", ")
        let placeholders = (0..<conditionColumns.count).map { "$\($0 + 4)" }.joined(separator: ", ")
        let id = try conn.query("""
            INSERT INTO fsconf.dialplan_conditions (extension_id, parent_id, position, \(columns))
            VALUES ($1, $2, $3, \(placeholders)) RETURNING id
            """, [ext, parent, String(position)] + values).string(0, 0)!
        var positions: [String: Int] = [:]
        for child in elements(c) {
            let n = child.name ?? ""
            positions[n, default: 0] += 1
            let p = String(positions[n]!)
            let a = { (name: String) in child.attribute(forName: name)?.stringValue }
            switch n {
            case "action", "anti-action":
                try conn.query("""
                    INSERT INTO fsconf.dialplan_actions (condition_id, kind, position, application, data, inline)
                    VALUES ($1, $2, $3, $4, $5, $6)
                    """, [id, n, p, a("application") ?? "", a("data") ?? text(child), a("inline")])
            case "regex":
                try conn.query("INSERT INTO fsconf.dialplan_regexes (condition_id, position, field, expression) VALUES ($1, $2, $3, $4)",
                               [id, p, a("field") ?? "", a("expression") ?? ""])
            case "condition":
                try loadCondition(child, extension: ext, parent: id, position: positions[n]!, conn)
            default:
                continue
            }
        }
    }
}
