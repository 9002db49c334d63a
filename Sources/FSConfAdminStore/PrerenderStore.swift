import FSConfCore
import FSConfStore

/// Keeps `fsconf.prerendered_contexts` current (migration 0009, DialplanPrerender):
/// every context whose stored document is missing, of another format, or older
/// than its rows is rendered again, in the caller's transaction.
public struct PrerenderStore {
    public let conn: PGConnection
    public init(_ conn: PGConnection) { self.conn = conn }

    public struct Summary: Sendable {
        /// Contexts rendered and stored; rendered but read as rows (with why).
        public var stored = 0
        public var ineligible: [(context: String, reason: String)] = []
    }

    /// A `prerendered_contexts` row `p` (or its absence, after a load with triggers
    /// disabled) not rendered from its context's current version by this format.
    static let stale = """
        (p.context_id IS NULL OR p.rendered_version IS DISTINCT FROM p.version OR p.format IS DISTINCT FROM $1::integer)
        """

    /// Renders every stale context. `all`: every context, current or not (after a
    /// load with triggers disabled, which leaves versions unchanged), and
    /// `fsconf.fixed_user_ids` recomputed. Contexts
    /// another transaction has locked (it changed them) are left to it: it renders
    /// them before it commits, and two writers never wait for each other here.
    @discardableResult
    public func refresh(all: Bool = false, compiler: any RegexCompiler) throws -> Summary {
        // After writes with triggers disabled: the reference-named users every node
        // expands the same way (migration 0011) are worked out again as well.
        if all { try conn.query("SELECT fsconf.refresh_fixed_user_ids(NULL)") }
        // Contexts written with triggers disabled have no row yet.
        try conn.query("""
            INSERT INTO fsconf.prerendered_contexts (context_id) SELECT id FROM fsconf.dialplan_contexts
            ON CONFLICT (context_id) DO \(all ? "UPDATE SET version = nextval('fsconf.context_version_seq')" : "NOTHING")
            """)
        let stale = try conn.query("""
            SELECT p.context_id, p.version, c.name, c.section,
                   EXISTS (SELECT 1 FROM fsconf.dialplan_extensions e WHERE e.context_id = c.id AND e.nodes IS NOT NULL)
            FROM fsconf.prerendered_contexts p JOIN fsconf.dialplan_contexts c ON c.id = p.context_id
            WHERE \(Self.stale)
            ORDER BY c.id FOR UPDATE OF p SKIP LOCKED
            """, [String(DialplanPrerender.format)])
        var summary = Summary()
        for i in 0..<stale.rowCount {
            guard let id = stale.string(i, 0), let version = stale.string(i, 1), let name = stale.string(i, 2),
                  let sectionName = stale.string(i, 3) else { continue }
            let section = PlanSection(rawValue: sectionName) ?? .dialplan
            let statement = DialplanSQL.contextRows
            let rows = try conn.query(statement.sql, statement.arguments([id, sectionName, nil], globalsVersion: nil))
            let outcome = DialplanPrerender.make(DialplanData(rows: SectionRows.decode(rows)), scoped: stale.bool(i, 4) ?? true,
                                                 section: section, compiler: compiler)
            let xml: String?, reason: String?, checks: [String]
            switch outcome {
            case .document(let document, let list): (xml, reason, checks) = (document, nil, list); summary.stored += 1
            case .ineligible(let why): (xml, reason, checks) = (nil, why, []); summary.ineligible.append((name, why))
            }
            // Only the version whose rows were read: a write committed meanwhile
            // left a newer one, rendered by its own writer or the next refresh.
            // Packed for the nodes (migration 0010); a document LZ4 cannot take (over
            // ~1.9 GiB) is not stored at all: nodes read its rows.
            let packed = xml.flatMap { PackedDocument.pack($0) }
            let stored = packed == nil ? nil : xml
            try conn.query("""
                UPDATE fsconf.prerendered_contexts SET rendered_version = version, format = $3::integer, xml = $4, reason = $5,
                    checks = $6::text[], rendered_at = now(), packed = $7::bytea, packed_length = $8::integer
                WHERE context_id = $1::bigint AND version = $2::bigint
                """, [id, version, String(DialplanPrerender.format), stored,
                      stored == nil && xml != nil ? "the document is too large to pack" : reason,
                      Self.arrayLiteral(checks), packed.map(PackedDocument.hexLiteral), stored.map { String($0.utf8.count) }])
        }
        return summary
    }

    /// A text[] input literal: every element quoted, `\` and `"` escaped.
    static func arrayLiteral(_ values: [String]) -> String {
        "{" + values.map { v in
            "\"" + v.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
        }.joined(separator: ",") + "}"
    }

    /// Reference-named users whose `fsconf.fixed_user_ids` row (migration 0011) is
    /// not what the globals say now (missing, extra, another value or an older
    /// globals version: after writes with triggers disabled, or a user written while
    /// another transaction changed the globals). `refresh(all: true)` recomputes them.
    public func fixedIDsBehind() throws -> Int {
        let r = try conn.query("""
            SELECT count(*) FROM fsconf.fixed_user_ids_due d FULL JOIN fsconf.fixed_user_ids f ON f.user_id = d.user_id
            WHERE (d.expands_to, d.globals_version) IS DISTINCT FROM (f.expands_to, f.globals_version)
            """)
        return r.int(0, 0) ?? 0
    }

    /// Contexts in all; those whose stored document is not current (what nodes
    /// read as rows because no writer rendered them since their last change); those
    /// served as a stored document.
    public func counts() throws -> (total: Int, stale: Int, stored: Int) {
        let r = try conn.query("""
            SELECT count(*), count(*) FILTER (WHERE \(Self.stale)), count(*) FILTER (WHERE NOT \(Self.stale) AND p.xml IS NOT NULL)
            FROM fsconf.dialplan_contexts c LEFT JOIN fsconf.prerendered_contexts p ON p.context_id = c.id
            """, [String(DialplanPrerender.format)])
        return (r.int(0, 0) ?? 0, r.int(0, 1) ?? 0, r.int(0, 2) ?? 0)
    }
}
