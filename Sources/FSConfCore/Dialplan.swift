/// The dialplan section: one context, whole, with its extensions in order.
///
/// What FreeSWITCH does with the answer (src/mod/dialplans/mod_dialplan_xml/mod_dialplan_xml.c):
/// dialplan_xml_locate asks `switch_xml_locate("dialplan", …)` with the channel's
/// variables and the caller profile as "Hunt-*" headers; dialplan_hunt then takes
/// `<context name=caller_profile->context>` (else `global`) from whatever document
/// has a dialplan section, and walks its `<extension>` children in order. A missing
/// context must therefore be answered "not found", so the static tree is used.
///
/// The chatplan (mod_sms.c, chat_process_event) is the same language: it asks
/// `switch_xml_locate("chatplan", …)` with the message event as params, then takes
/// `<context name=event's "context" header>` (else `default`), else `global`.
///
/// `xml_locate dialplan context name X` (mod_commands) sends tag_name=context,
/// key_name=name, key_value=X and no Hunt-Context: the answer is context X.
public enum DialplanQuery: Equatable, Sendable {
    case context(String)
    case none

    public static func plan(_ request: LookupRequest) -> DialplanQuery {
        let name: String
        if request.tagName == "context" && request.keyName == "name" && !request.keyValue.isEmpty {
            name = request.keyValue
        } else if request.section == PlanSection.chatplan.rawValue {
            name = request.header("context") ?? "default"
        } else {
            name = request.header("Hunt-Context") ?? request.header("Caller-Context") ?? "default"
        }
        return LookupRequest.isPlausibleKey(name) ? .context(name) : .none
    }
}

public struct DialplanAction: Equatable, Sendable {
    public var anti: Bool
    public var application: String
    public var data: String?
    public var inline: String?
    public var position: Int
    public var loop: String?
    /// Render the data as the element's text (as the operator wrote it).
    public var dataElement: Bool

    public init(anti: Bool = false, application: String, data: String? = nil, inline: String? = nil, position: Int = 0,
                loop: String? = nil, dataElement: Bool = false) {
        self.anti = anti; self.application = application; self.data = data; self.inline = inline; self.position = position
        self.loop = loop; self.dataElement = dataElement
    }
}

public struct DialplanRegex: Equatable, Sendable {
    public var field: String?
    public var expression: String?
    public var position: Int
    /// Time attributes by XML name, in `timeAttributeNames` order.
    public var time: [(String, String)]
    public var expressionElement: Bool

    public init(field: String?, expression: String?, position: Int = 0, time: [(String, String)] = [], expressionElement: Bool = false) {
        self.field = field; self.expression = expression; self.position = position; self.time = time
        self.expressionElement = expressionElement
    }

    public static func == (l: Self, r: Self) -> Bool {
        l.field == r.field && l.expression == r.expression && l.position == r.position && l.expressionElement == r.expressionElement
            && l.time.map(\.0) == r.time.map(\.0) && l.time.map(\.1) == r.time.map(\.1)
    }
}

public struct DialplanCondition: Equatable, Sendable {
    public var id: Int64
    public var position: Int
    public var field: String?
    public var expression: String?
    public var breakOn: String?
    public var requireNested: String?
    public var regex: String?
    /// Time attributes by XML name (`wday`, `minute-of-day`…), in `timeAttributeNames` order.
    public var time: [(String, String)]
    public var regexes: [DialplanRegex]
    public var actions: [DialplanAction]
    public var children: [DialplanCondition]
    /// Render the expression as an `<expression>` child (as the operator wrote it).
    public var expressionElement = false

    /// The time attributes FreeSWITCH's switch_xml_std_datetime_check reads
    /// (src/switch_xml.c), in the order the columns are stored and rendered.
    public static let timeAttributeNames = columns.dropFirst(5).map(\.xml)

    /// XML attribute → column of fsconf.dialplan_conditions, in rendering order.
    public static let columns: [(xml: String, column: String)] = [
        ("field", "field"), ("expression", "expression"), ("break", "break"),
        ("require-nested", "require_nested"), ("regex", "regex"),
        ("year", "year"), ("yday", "yday"), ("mon", "mon"), ("mday", "mday"), ("week", "week"),
        ("mweek", "mweek"), ("wday", "wday"), ("hour", "hour"), ("minute", "minute"),
        ("minute-of-day", "minute_of_day"), ("time-of-day", "time_of_day"), ("date-time", "date_time"), ("tz", "tz"),
    ]

    public init(id: Int64 = 0, position: Int = 0, field: String? = nil, expression: String? = nil,
                breakOn: String? = nil, requireNested: String? = nil, regex: String? = nil,
                time: [(String, String)] = [], regexes: [DialplanRegex] = [], actions: [DialplanAction] = [],
                children: [DialplanCondition] = []) {
        self.id = id; self.position = position; self.field = field; self.expression = expression
        self.breakOn = breakOn; self.requireNested = requireNested; self.regex = regex; self.time = time
        self.regexes = regexes; self.actions = actions; self.children = children
    }

    public static func == (l: Self, r: Self) -> Bool {
        l.id == r.id && l.position == r.position && l.field == r.field && l.expression == r.expression
            && l.breakOn == r.breakOn && l.requireNested == r.requireNested && l.regex == r.regex
            && l.time.map(\.0) == r.time.map(\.0) && l.time.map(\.1) == r.time.map(\.1)
            && l.regexes == r.regexes && l.actions == r.actions && l.children == r.children
            && l.expressionElement == r.expressionElement
    }
}

public struct DialplanExtension: Equatable, Sendable {
    public var id: Int64
    public var name: String
    public var continueOn: String?
    public var position: Int
    public var conditions: [DialplanCondition]

    public init(id: Int64 = 0, name: String, continueOn: String? = nil, position: Int = 0,
                conditions: [DialplanCondition] = []) {
        self.id = id; self.name = name; self.continueOn = continueOn; self.position = position
        self.conditions = conditions
    }
}

public struct DialplanContext: Equatable, Sendable {
    public var id: Int64
    public var name: String
    public var extensions: [DialplanExtension]

    public init(id: Int64 = 0, name: String, extensions: [DialplanExtension] = []) {
        self.id = id; self.name = name; self.extensions = extensions
    }
}

/// Rows → the context, everything in stored order. Record types (DialplanSQL):
/// `X` context (name), `E` extension (name, continue; parent = context),
/// `C` condition (field, expression, break, require_nested, regex, 13 time columns;
/// expression_element; parent = parent condition, owner = extension), `R` regex
/// (field, expression, expression_element, 13 time columns; parent = condition),
/// `A` action (kind, application, data, inline, data_element, loop; parent = condition),
/// `V` global variable, `P` the context's prerendered document (then no E/C/R/A
/// rows: DialplanPrerender): value 0 its text where it is not packed, 1 the packed
/// form (hex), 2 its length (migration 0010; the node unpacks, FSConfStore.PackedDocument).
public struct DialplanData: Sendable {
    public var context: DialplanContext?
    public var globals: [String: String]
    /// The stored document, references unexpanded (DialplanPrerender), when the
    /// database holds a current one for this context.
    public var prerendered: String?
    /// Its expressions holding references (`K` rows), checked on the node.
    public var prerenderChecks: [String] = []

    public init(context: DialplanContext?, globals: [String: String] = [:]) {
        self.context = context
        self.globals = globals
    }

    /// Built in a few passes over flat arrays: each condition's regexes and actions
    /// are appended in place, then sorted only when the rows did not come in order
    /// (a 10,000-extension context is 43,000 rows: no dictionary of arrays per kind,
    /// no copies of the condition tree).
    public init(rows: [SectionRow]) {
        var context: DialplanContext?
        var extensions: [DialplanExtension] = []
        var extensionIndex: [Int64: Int] = [:]
        var conditions: [DialplanCondition] = []
        var conditionIndex: [Int64: Int] = [:]
        var conditionParent: [Int64?] = []
        var conditionOwner: [Int64] = []
        var pending: [(parent: Int64, regex: DialplanRegex?, action: DialplanAction?)] = []
        var ranks: [Int64: Int] = [:]
        var prerendered: String?
        var checks: [String] = []
        for row in rows {
            switch row.kind {
            case "X":
                context = DialplanContext(id: row.id, name: row.value(0) ?? "")
            case "P":
                prerendered = row.value(0)
            case "K":
                checks.append(row.value(0) ?? "")
            case "E":
                // owner: how specifically the extension's scope names the node (docs/cluster.md).
                if let rank = row.owner, rank != 0 { ranks[row.id] = Int(rank) }
                extensionIndex[row.id] = extensions.count
                extensions.append(DialplanExtension(id: row.id, name: row.value(0) ?? "", continueOn: row.value(1),
                                                    position: row.position))
            case "C":
                var time: [(String, String)] = []
                if row.values.count > 5 {
                    for (i, name) in DialplanCondition.timeAttributeNames.enumerated() {
                        if let v = row.value(5 + i) { time.append((name, v)) }
                    }
                }
                var c = DialplanCondition(id: row.id, position: row.position, field: row.value(0),
                                          expression: row.value(1), breakOn: row.value(2),
                                          requireNested: row.value(3), regex: row.value(4), time: time)
                c.expressionElement = row.value(18) == "true"
                conditionIndex[row.id] = conditions.count
                conditions.append(c)
                conditionParent.append(row.parent)
                conditionOwner.append(row.owner ?? 0)
            case "R":
                var time: [(String, String)] = []
                if row.values.count > 3 {
                    for (i, name) in DialplanCondition.timeAttributeNames.enumerated() {
                        if let v = row.value(3 + i) { time.append((name, v)) }
                    }
                }
                let regex = DialplanRegex(field: row.value(0), expression: row.value(1), position: row.position, time: time,
                                          expressionElement: row.value(2) == "true")
                if let i = conditionIndex[row.parent ?? 0] { conditions[i].regexes.append(regex) }
                else { pending.append((row.parent ?? 0, regex, nil)) }
            case "A":
                let action = DialplanAction(anti: row.value(0) == "anti-action", application: row.value(1) ?? "",
                                            data: row.value(2), inline: row.value(3), position: row.position,
                                            loop: row.value(5), dataElement: row.value(4) == "true")
                if let i = conditionIndex[row.parent ?? 0] { conditions[i].actions.append(action) }
                else { pending.append((row.parent ?? 0, nil, action)) }
            default:
                continue
            }
        }
        self.globals = SectionRow.globals(rows)
        self.prerendered = prerendered
        self.prerenderChecks = checks
        guard var context else { self.context = nil; return }
        // Regexes and actions whose condition came later in the rows.
        for (parent, regex, action) in pending {
            guard let i = conditionIndex[parent] else { continue }
            if let regex { conditions[i].regexes.append(regex) }
            if let action { conditions[i].actions.append(action) }
        }
        func actionOrder(_ a: DialplanAction, _ b: DialplanAction) -> Bool {
            (a.anti ? 1 : 0, a.position) < (b.anti ? 1 : 0, b.position)
        }
        for i in conditions.indices {
            conditions[i].regexes.sortIfNeeded { $0.position < $1.position }
            conditions[i].actions.sortIfNeeded(by: actionOrder)
        }

        // Children of each condition and top-level conditions of each extension (indexes).
        var children: [Int: [Int]] = [:]
        var top = [[Int]](repeating: [], count: extensions.count)
        for i in conditions.indices {
            if let parent = conditionParent[i] {
                if let p = conditionIndex[parent] { children[p, default: []].append(i) }
            } else if let e = extensionIndex[conditionOwner[i]] {
                top[e].append(i)
            }
        }
        // Moves each condition out of the flat array into its parent (no copies).
        func take(_ i: Int, depth: Int) -> DialplanCondition {
            var c = DialplanCondition()
            swap(&c, &conditions[i])
            // mod_dialplan_xml stops at 100 levels (MAX_RECUR); a cycle cannot exist
            // in the schema, but the depth bound keeps bad data from recursing forever.
            if depth < 100, let kids = children[i] {
                c.children = kids.map { take($0, depth: depth + 1) }
                c.children.sortIfNeeded { $0.position < $1.position }
            }
            return c
        }
        for e in extensions.indices where !top[e].isEmpty {
            extensions[e].conditions = top[e].map { take($0, depth: 0) }
            extensions[e].conditions.sortIfNeeded { $0.position < $1.position }
        }
        extensions.sortIfNeeded { $0.position < $1.position }
        if !ranks.isEmpty {
            // Of an extension's variants, the node gets the most specific (in place of the first).
            extensions = Precedence.resolve(extensions, unique: false, identity: { $0.name.isEmpty ? nil : $0.name },
                                            rank: { ranks[$0.id] ?? 0 }, id: { $0.id })
        }
        context.extensions = extensions
        self.context = context
    }
}

extension Array {
    /// True when no element is ordered before its predecessor.
    func isSorted(by areInIncreasingOrder: (Element, Element) -> Bool) -> Bool {
        var i = 1
        while i < count {
            if areInIncreasingOrder(self[i], self[i - 1]) { return false }
            i += 1
        }
        return true
    }

    /// Sorts unless already sorted (rows usually arrive in order).
    mutating func sortIfNeeded(by areInIncreasingOrder: (Element, Element) -> Bool) {
        if !isSorted(by: areInIncreasingOrder) { sort(by: areInIncreasingOrder) }
    }
}

/// Checks an extension the way FreeSWITCH will read it. Used before a write
/// (reject) and at render time (skip the extension, serve the rest).
public enum DialplanValidator {
    /// Problems with `extension`; empty when it is fine. `expand` resolves `$${…}`
    /// references first (what FreeSWITCH will see).
    public static func problems(_ ext: DialplanExtension, compiler: any RegexCompiler,
                                expand: (String) -> String = { $0 }) -> [String] {
        var problems: [String] = []
        // By index: the conditions are borrowed, not copied (a large context has thousands).
        for i in ext.conditions.indices {
            let position = ext.conditions[i].position
            check(ext.conditions[i], path: { "condition \(position)" }, compiler: compiler, expand: expand, into: &problems)
        }
        return problems
    }

    /// `path` names the condition in a problem (built only when there is one).
    static func check(_ c: DialplanCondition, path: () -> String, compiler: any RegexCompiler,
                      expand: (String) -> String, into problems: inout [String]) {
        if let rule = c.regex {
            if !DialplanVocabulary.enumerations["regex"]!.contains(rule) { problems.append("\(path()): regex=\"\(rule)\" is not all, any or xor") }
            for r in c.regexes {
                // A <regex> with time attributes only is a time check (switch_xml_std_datetime_check).
                guard let field = r.field else {
                    if r.time.isEmpty { problems.append("\(path()): regex \(r.position) has no field and no time attribute") }
                    continue
                }
                if field.isEmpty { problems.append("\(path()): regex \(r.position) has no field") }
                if let p = FreeSWITCHRegex.problem(expand(r.expression ?? ""), compiler: compiler) {
                    problems.append("\(path()): regex \(r.position) expression \"\(r.expression ?? "")\" \(p)")
                }
            }
        } else {
            switch (c.field, c.expression) {
            case (let field?, let expression?):
                if field.isEmpty { problems.append("\(path()): empty field") }
                if let p = FreeSWITCHRegex.problem(expand(expression), compiler: compiler) {
                    problems.append("\(path()): expression \"\(expression)\" \(p)")
                }
            case (_?, nil):
                problems.append("\(path()): has a field but no expression")
            case (nil, _?):
                problems.append("\(path()): has an expression but no field")
            case (nil, nil):
                break  // time-only or absolute condition: valid
            }
        }
        if let b = c.breakOn, !DialplanVocabulary.enumerations["break"]!.contains(b) {
            problems.append("\(path()): break=\"\(b)\" is not on-true, on-false, always or never")
        }
        for a in c.actions where a.application.isEmpty {
            problems.append("\(path()): \(a.anti ? "anti-action" : "action") \(a.position) has no application")
        }
        for i in c.children.indices {
            let position = c.children[i].position
            check(c.children[i], path: { "\(path()) > condition \(position)" }, compiler: compiler, expand: expand,
                  into: &problems)
        }
    }
}

/// Renders a context. Bad extensions are left out and reported; the rest is served.
public enum DialplanRenderer {
    public struct Result: Sendable {
        public var xml: String
        /// Extensions left out: (name, position, problems).
        public var skipped: [(name: String, position: Int, problems: [String])]
        /// A stored document failed this node's checks (DialplanPrerender.passes):
        /// the caller reads the context's rows and renders again.
        public var needsRows = false

        /// No answer from the stored document: the caller reads the context's rows.
        public static let fromRows = Result(xml: FreeSWITCHDocument.notFound, skipped: [], needsRows: true)
    }

    /// `stored`: the stored document's bytes where the database's result holds them
    /// (the node: a multi-megabyte context is expanded from there into the answer,
    /// never first copied into a string of its own); they stand for `data.prerendered`.
    public static func render(_ query: DialplanQuery, _ data: DialplanData, compiler: any RegexCompiler,
                              node: @escaping (String) -> String? = { _ in nil }, section: PlanSection = .dialplan,
                              stored: UnsafeBufferPointer<UInt8>? = nil) -> Result {
        guard case .context = query, let context = data.context else {
            return Result(xml: FreeSWITCHDocument.notFound, skipped: [])
        }
        var expander = VariableExpander(globals: data.globals, node: node)
        // Stored by a writer once checked to be what the rows give (DialplanPrerender).
        func expanding(_ document: UnsafeBufferPointer<UInt8>) -> Result {
            guard DialplanPrerender.passes(data.prerenderChecks, expander: &expander, compiler: compiler) else {
                return .fromRows
            }
            return Result(xml: expander.expandEscaped(document) ?? String(decoding: document, as: UTF8.self), skipped: [])
        }
        if let stored { return expanding(stored) }
        if var document = data.prerendered { return document.withUTF8(expanding) }
        var w = XMLWriter(capacity: 256 + context.extensions.count * 320)
        var skipped: [(name: String, position: Int, problems: [String])] = []
        FreeSWITCHDocument.begin(&w, section: section.rawValue)
        w.open("context", [("name", context.name)])
        for e in context.extensions.indices {
            let ext = context.extensions[e]
            let problems = DialplanValidator.problems(ext, compiler: compiler, expand: { expander.expand($0) })
            if !problems.isEmpty {
                skipped.append((ext.name, ext.position, problems))
                continue
            }
            w.start("extension")
            w.attribute("name", expander.expand(ext.name))
            if let c = ext.continueOn { w.attribute("continue", c) }
            if ext.conditions.isEmpty {
                w.finish(selfClosing: true)
                continue
            }
            w.finish(selfClosing: false)
            for i in ext.conditions.indices { renderCondition(&w, ext.conditions[i], &expander) }
            w.close("extension")
        }
        w.close("context")
        FreeSWITCHDocument.end(&w)
        return Result(xml: w.string, skipped: skipped)
    }

    static func renderCondition(_ w: inout XMLWriter, _ c: DialplanCondition, _ expander: inout VariableExpander) {
        w.start("condition")
        if let v = c.field { w.attribute("field", expander.expand(v)) }
        if let v = c.expression, !c.expressionElement { w.attribute("expression", expander.expand(v)) }
        if let v = c.regex { w.attribute("regex", v) }
        for (name, value) in c.time { w.attribute(name, expander.expand(value)) }
        if let v = c.breakOn { w.attribute("break", v) }
        if let v = c.requireNested { w.attribute("require-nested", v) }
        let element = c.expressionElement ? c.expression : nil
        if c.regexes.isEmpty && c.actions.isEmpty && c.children.isEmpty && element == nil {
            w.finish(selfClosing: true)
            return
        }
        w.finish(selfClosing: false)
        if let element { w.element("expression", text: expander.expand(element)) }
        for r in c.regexes {
            w.start("regex")
            if let f = r.field { w.attribute("field", expander.expand(f)) }
            if let x = r.expression, !r.expressionElement { w.attribute("expression", expander.expand(x)) }
            for (name, value) in r.time { w.attribute(name, expander.expand(value)) }
            if r.expressionElement, let x = r.expression {
                w.finish(selfClosing: false)
                w.element("expression", text: expander.expand(x))
                w.close("regex")
            } else {
                w.finish(selfClosing: true)
            }
        }
        for a in c.actions {
            w.start(a.anti ? "anti-action" : "action")
            w.attribute("application", expander.expand(a.application))
            if let d = a.data, !a.dataElement { w.attribute("data", expander.expand(d)) }
            if let i = a.inline { w.attribute("inline", i) }
            if let l = a.loop { w.attribute("loop", expander.expand(l)) }
            if a.dataElement, let d = a.data {
                w.finish(text: expander.expand(d), closing: a.anti ? "anti-action" : "action")
            } else {
                w.finish(selfClosing: true)
            }
        }
        for i in c.children.indices { renderCondition(&w, c.children[i], &expander) }
        w.close("condition")
    }
}

/// Enumerated dialplan attributes and their allowed values (the schema's CHECKs, said
/// earlier): the node's row check and the admin's validator read the same table.
public enum DialplanVocabulary {
    public static let enumerations: [String: [String]] = [
        "continue": ["true", "false"], "enabled": ["true", "false"], "inline": ["true", "false"],
        "require-nested": ["true", "false"], "break": ["on-true", "on-false", "always", "never"],
        "regex": ["all", "any", "xor"],
    ]
}

/// The two sections whose contexts are stored alike: mod_dialplan_xml's dialplan and
/// mod_sms's chatplan (same extension/condition/action language).
public enum PlanSection: String, Sendable, CaseIterable {
    case dialplan, chatplan
}
