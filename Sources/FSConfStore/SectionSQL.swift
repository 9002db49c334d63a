import FSConfCore

/// Columns 0…4 of every dialplan / tree-store statement: rec, id, parent, owner,
/// pos; then text values. Decodes a result into `SectionRow`s.
public enum SectionRows {
    /// Trailing NULL values are left out (`SectionRow.value` is nil past the end):
    /// most rows of a wide statement use a few of its columns.
    public static func decode(_ result: PGResult) -> [SectionRow] {
        decode(result, leavingOut: nil).rows
    }

    /// The rows, with the values of the first row of kind `kind` left out (kept where
    /// libpq holds them: a stored document is megabytes) and that row's index.
    public static func decode(_ result: PGResult, leavingOut kind: String?) -> (rows: [SectionRow], leftOut: Int?) {
        let count = result.rowCount
        let columns = result.columnCount
        var rows: [SectionRow] = []
        var leftOut: Int?
        rows.reserveCapacity(count)
        for i in 0..<count {
            let rowKind = result.string(i, 0) ?? ""
            if let kind, leftOut == nil, rowKind == kind {
                leftOut = i
                rows.append(SectionRow(kind: kind, id: result.int64(i, 1) ?? 0, parent: result.int64(i, 2),
                                       owner: result.int64(i, 3), position: result.int(i, 4) ?? 0, values: []))
                continue
            }
            var used = columns
            while used > 5 && result.isNull(i, used - 1) { used -= 1 }
            var values: [String?] = []
            if used > 5 {
                values.reserveCapacity(used - 5)
                for c in 5..<used { values.append(result.string(i, c)) }
            }
            rows.append(SectionRow(kind: rowKind, id: result.int64(i, 1) ?? 0,
                                   parent: result.int64(i, 2), owner: result.int64(i, 3),
                                   position: result.int(i, 4) ?? 0, values: values))
        }
        return (rows, leftOut)
    }

    /// exec-set / env-set globals are each node's own (it evaluates them at its
    /// start): lookups leave `$${name}` to the node's global for them.
    static let nodeEvaluatedFilter = "v.command NOT IN ('exec-set', 'env-set')"

    /// The statement: the node's `me` (the last key, $`parameters`; `ScopeSQL`),
    /// CTEs ending in `out`, then its rows, the global variables the node can see as
    /// `V` rows (id, rank as owner, name, value) padded with `padding` NULLs when the
    /// node's globals version (parameter `parameters + 1`) is not the current one —
    /// so values expand on the node exactly as for the directory — and the `Q` row.
    static func withGlobals(parameters: Int, ctes: String, padding: Int) -> String {
        let nulls = String(repeating: ", NULL", count: padding)
        return """
            WITH RECURSIVE
            \(ScopeSQL.me(parameter: parameters)),
            \(ctes)
            SELECT * FROM out
            UNION ALL
            SELECT 'V', v.id, NULL, \(ScopeSQL.rank("v.nodes")), 0, v.name, v.value\(nulls)
            FROM fsconf.global_variables v WHERE \(ChangeSeq.globalsStale(parameter: parameters + 1)) AND \(nodeEvaluatedFilter)
                AND \(ScopeSQL.visible("v.nodes"))
            UNION ALL
            SELECT 'Q', c.value, \(ChangeSeq.globalsVersion), NULL, 0, NULL, NULL\(nulls) FROM fsconf.change_counter c
            """
    }
}

/// Sub-selects are written `= (SELECT …)` / `= ANY (ARRAY(SELECT …))` rather than
/// `IN (SELECT …)` so that the prepared (generic) plan uses the parent-id indexes:
/// with `IN`, PostgreSQL hash-joins whole tables once one context is large
/// (measured: a 3-extension context took 3.4 ms instead of 0.9 ms beside a
/// 10,000-extension one; docs/performance.md).
///
/// The dialplan lookup: ONE statement returning a whole context — extensions
/// (enabled only), conditions (nested ones too), regexes, actions — and the global
/// variables unless the node holds the current ones. $1: the context name (exact
/// name preferred, else ASCII case-insensitive, as FreeSWITCH's find_child
/// compares; then the variant most specific to the node); $2: the section,
/// `dialplan` or `chatplan`; $3: the asking node; $4: the node's globals version.
/// Extensions come with their rank (`owner`).
public enum DialplanSQL {
    static let textColumns = (1...19).map { "v\($0)" }

    /// The node's statement: the context by name, as its prerendered document
    /// when the database holds a current one of the library's format (a `P` row:
    /// then no extension rows are read), else its rows.
    public static let context = statement(name: "fsconf_dialplan_context", prerendered: true, ctx: byName)

    /// The context named $1 (exact name first, then the most specific scope) in section $2.
    static let byName = """
        ctx AS (
            SELECT c.id, c.name FROM fsconf.dialplan_contexts c WHERE c.section = $2 AND lower(c.name) = lower($1)
                AND \(ScopeSQL.visible("c.nodes"))
            ORDER BY (c.name = $1) DESC, \(ScopeSQL.rank("c.nodes")) DESC, c.id LIMIT 1
        )
        """

    /// The node's first statement for a context: the context (`X`) and its current
    /// stored document (`P`, `K`), never its rows — a plan without the row branches
    /// runs in ~60 % of `context`'s time (vanilla `default`: 0.10 against 0.17 ms of
    /// execution). An `X` without a `P` (no current document): the node reads the
    /// rows (`contextRows`) and asks `context` for that context from then on.
    public static let stored = statement(name: "fsconf_dialplan_stored", prerendered: true, rows: false, ctx: byName)

    /// A writer's statement (DialplanPrerender): one context's rows by id ($1), as
    /// every node reads them (no node: $3 NULL), never its stored document. A node
    /// reads them too, for a context `stored` found no current document for.
    public static let contextRows = statement(name: "fsconf_dialplan_context_rows", prerendered: false, ctx: """
        ctx AS (SELECT c.id, c.name FROM fsconf.dialplan_contexts c WHERE c.id = $1::bigint AND c.section = $2)
        """)

    static func statement(name: String, prerendered: Bool, rows: Bool = true, ctx: String) -> DirectorySQL.Statement {
        let n = "NULL::text"
        func pad(_ used: Int) -> String { String(repeating: ", \(n)", count: 19 - used) }
        let pre = prerendered ? """
            pre AS (
                SELECT CASE WHEN p.packed IS NULL THEN p.xml END AS xml, p.packed, p.packed_length, p.checks
                FROM fsconf.prerendered_contexts p WHERE p.context_id = (SELECT id FROM ctx)
                    AND p.rendered_version = p.version AND p.format = \(DialplanPrerender.format) AND p.xml IS NOT NULL
            ),
            """ : ""
        let rowCTEs = rows ? """
            ext AS (
                SELECT e.id, e.context_id, e.name, e.continue, e.position, e.nodes FROM fsconf.dialplan_extensions e
                WHERE e.context_id = (SELECT id FROM ctx) AND e.enabled AND \(ScopeSQL.visible("e.nodes"))\(prerendered ? " AND NOT EXISTS (SELECT 1 FROM pre)" : "")
            ),
            cond AS (
                SELECT d.* FROM fsconf.dialplan_conditions d WHERE d.extension_id = ANY (ARRAY(SELECT id FROM ext))
            ),
            """ : ""
        let rowBranches = rows ? """

                UNION ALL
                SELECT 'E', e.id, e.context_id, \(ScopeSQL.rank("e.nodes")), e.position, e.name, e.continue\(pad(2)) FROM ext e
                UNION ALL
                SELECT 'C', d.id, d.parent_id, d.extension_id, d.position, d.field, d.expression, d.break,
                       d.require_nested, d.regex, d.year, d.yday, d.mon, d.mday, d.week, d.mweek, d.wday, d.hour,
                       d.minute, d.minute_of_day, d.time_of_day, d.date_time, d.tz, d.expression_element::text
                FROM cond d
                UNION ALL
                SELECT 'R', r.id, r.condition_id, NULL, r.position, r.field, r.expression, r.expression_element::text,
                       r.year, r.yday, r.mon, r.mday, r.week, r.mweek, r.wday, r.hour, r.minute, r.minute_of_day,
                       r.time_of_day, r.date_time, r.tz\(pad(16))
                FROM fsconf.dialplan_regexes r WHERE r.condition_id = ANY (ARRAY(SELECT id FROM cond))
                UNION ALL
                SELECT 'A', a.id, a.condition_id, NULL, a.position, a.kind, a.application, a.data, a.inline,
                       a.data_element::text, a.loop\(pad(6))
                FROM fsconf.dialplan_actions a WHERE a.condition_id = ANY (ARRAY(SELECT id FROM cond))
            """ : ""
        let ctes = """
            \(ctx),
            \(pre)
            \(rowCTEs)
            out(rec, id, parent, owner, pos, \(textColumns.joined(separator: ", "))) AS (
                SELECT 'X', c.id, NULL::bigint, NULL::bigint, 0, c.name\(pad(1)) FROM ctx c\(rowBranches)\(prerendered ? """

                UNION ALL
                SELECT 'P', c.id, NULL, NULL, 0, p.xml, encode(p.packed, 'hex'),
                       p.packed_length::text\(pad(3)) FROM pre p, ctx c
                UNION ALL
                SELECT 'K', c.id, NULL, NULL, k.n::integer, k.x\(pad(1)) FROM pre p, ctx c, unnest(p.checks) WITH ORDINALITY k(x, n)
                """ : "")
            )
            """
        return DirectorySQL.Statement(name: name, sql: SectionRows.withGlobals(parameters: 3, ctes: ctes, padding: 17), parameters: 3)
    }

    public static func bind(_ query: DialplanQuery, section: PlanSection = .dialplan, node: String?) -> (DirectorySQL.Statement, [String?])? {
        switch query {
        case .none: return nil
        case .context(let name): return (context, [name, section.rawValue, node])
        }
    }
}

/// Tree-store lookups (configuration documents and languages). Each is ONE
/// statement returning the document's elements, their attributes and the global
/// variables unless the node holds the current ones (the last parameter). The last
/// key is the asking node: the document variant most specific to it, its elements
/// minus those scoped to other nodes, each with its rank (`owner`).
public enum DocumentSQL {
    static func output(elements: String) -> String {
        """
        out(rec, id, parent, owner, pos, v1, v2) AS (
            SELECT 'D', d.id, NULL::bigint, NULL::bigint, 0, d.name, NULL::text FROM doc d
            UNION ALL
            SELECT 'E', e.id, e.parent_id, \(ScopeSQL.rank("e.nodes")), e.position, e.tag, e.text FROM \(elements) e
            UNION ALL
            SELECT 'A', a.element_id, a.element_id, NULL, a.position, a.name, a.value
            FROM fsconf.attributes a WHERE a.element_id = ANY (ARRAY(SELECT id FROM \(elements)))
        )
        """
    }

    /// $1 section, $2 name, $3 a fallback name or NULL (`en` for `en-US`), $4 node:
    /// the whole document. Names compare ASCII case-insensitively; an exact match
    /// wins, then the variant most specific to the node.
    public static let document = DirectorySQL.Statement(name: "fsconf_document", sql: SectionRows.withGlobals(parameters: 4, ctes: """
        doc AS (
            SELECT d.id, d.name FROM fsconf.documents d
            WHERE d.section = $1 AND (lower(d.name) = lower($2) OR lower(d.name) = lower($3))
                AND \(ScopeSQL.visible("d.nodes"))
            ORDER BY (d.name = $2) DESC, (lower(d.name) = lower($2)) DESC, \(ScopeSQL.rank("d.nodes")) DESC, d.id LIMIT 1
        ),
        el AS (
            SELECT e.id, e.parent_id, e.position, e.tag, e.text, e.nodes FROM fsconf.elements e
            WHERE e.document_id = (SELECT id FROM doc) AND \(ScopeSQL.visible("e.nodes"))
        ),
        \(output(elements: "el"))
        """, padding: 0), parameters: 4)

    /// $1 section, $2 name, $3 container tag, $4 child tag, $5 wanted name, $6 node:
    /// the document without the subtrees of `<child>` elements (under a root-level
    /// `<container>`) named otherwise — sofia.conf with one profile does not fetch
    /// the others' gateways. Names holding `$${` are kept (compared after
    /// expansion on the node, which narrows again).
    public static let narrowedDocument = DirectorySQL.Statement(name: "fsconf_document_narrowed", sql: SectionRows.withGlobals(parameters: 6, ctes: """
        doc AS (
            SELECT d.id, d.name FROM fsconf.documents d
            WHERE d.section = $1 AND lower(d.name) = lower($2) AND \(ScopeSQL.visible("d.nodes"))
            ORDER BY (d.name = $2) DESC, \(ScopeSQL.rank("d.nodes")) DESC, d.id LIMIT 1
        ),
        el(id, parent_id, position, tag, text, nodes, depth) AS (
            SELECT e.id, e.parent_id, e.position, e.tag, e.text, e.nodes, 0 FROM fsconf.elements e
            WHERE e.document_id = (SELECT id FROM doc) AND e.parent_id IS NULL
            UNION ALL
            SELECT c.id, c.parent_id, c.position, c.tag, c.text, c.nodes, p.depth + 1
            FROM el p JOIN fsconf.elements c ON c.parent_id = p.id
            WHERE \(ScopeSQL.visible("c.nodes")) AND NOT (p.depth = 1 AND p.tag = $3 AND c.tag = $4 AND NOT EXISTS (
                SELECT 1 FROM fsconf.attributes a WHERE a.element_id = c.id AND a.name = 'name'
                AND (lower(a.value) = lower($5) OR strpos(a.value, '$${') > 0)))
        ),
        \(output(elements: "el"))
        """, padding: 0), parameters: 6)

    public static func bind(_ query: ConfigurationQuery, node: String?) -> (DirectorySQL.Statement, [String?]) {
        switch query.narrowing {
        case .children(let container, let child, let name):
            return (narrowedDocument, ["configuration", query.document, container, child, name, node])
        case .whole, .ivrMenu:
            return (document, ["configuration", query.document, nil, node])
        }
    }

    public static func bind(_ query: LanguageQuery, node: String?) -> (DirectorySQL.Statement, [String?]) {
        (document, ["languages", query.language, query.fallback, node])
    }
}
