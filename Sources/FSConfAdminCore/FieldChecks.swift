import FSConfCore

/// The one validator every way in shares — `fsconf set`, the typed commands and
/// `fsconf import` — and that the schema's CHECKs say again (migrations 0001, 0002,
/// 0005; a test walks their cases through both). Messages say what is wrong in the
/// user's terms, without the path (callers prefix it).
extension FieldValidation {
    /// What a name names: each kind has its own rule.
    public enum NameKind: String, Sendable {
        case domain = "domain name", group = "group name", user = "user id", numberAlias = "number-alias"
        case gateway = "gateway name", setting = "name", context = "context name", `extension` = "extension name"
        case document = "document name", global = "global variable name", xml = "XML name"
    }

    /// Why `name` cannot be a `kind` (nil: it can). A name is not empty (an
    /// extension's may be) and holds no control character, not even a tab or a
    /// newline (schema: fsconf.is_name); a global's is letters, digits and `_ . : -`;
    /// XML names (tags, attributes) start with a letter or `_`.
    public static func nameProblem(_ name: String, _ kind: NameKind) -> String? {
        switch kind {
        case .global:
            return ConfigImporter.isGlobalName(name) ? nil : "a global variable's name is letters, digits and _ . : -; got \(FieldPath.quote(name))"
        case .xml:
            return ConfigImporter.isName(name) ? nil : "\(FieldPath.quote(name)) is not a valid XML name"
        case .extension where name.isEmpty:
            return nil
        default:
            if name.isEmpty { return "\(kind.rawValue) cannot be empty" }
            var index = 0
            for u in name.unicodeScalars {
                index += 1
                switch u.value {
                case 0..<0x20, 0x7F: return "\(kind.rawValue) \(shown(name)): character \(index) is the control character U+\(hex(u.value)), which a name cannot hold"
                case 0xFFFD: return "\(kind.rawValue): character \(index) is U+FFFD: the name was not valid UTF-8"
                case 0xFFFE, 0xFFFF: return "\(kind.rawValue): character \(index) (U+\(hex(u.value))) is not allowed in XML"
                default: continue
                }
            }
            return nil
        }
    }

    /// A name on one line: quoted, control characters escaped (\t, \n, \u{1}).
    static func shown(_ name: String) -> String {
        var out = "\""
        for u in name.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out += oneLine(String(u))
            }
        }
        return out + "\""
    }

    /// `text` with its control characters escaped (\t, \n, \r, \u{1}): one line.
    public static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return text }
        var out = ""
        for u in text.unicodeScalars {
            switch u {
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: if u.value < 0x20 || u.value == 0x7F { out += "\\u{\(String(u.value, radix: 16))}" } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }

    /// The largest `cacheable` in milliseconds FreeSWITCH reads as such: it parses
    /// the value with atol() into an int and multiplies it by 1000 in int arithmetic
    /// (switch_xml.c, switch_xml_locate_user_merged), so above this the lifetime wraps.
    public static let maximumCacheableMilliseconds = 2_147_483

    /// Why `value` cannot be a `cacheable` (nil: it can): `true` (until
    /// xml_flush_cache), milliseconds up to `maximumCacheableMilliseconds`, or —
    /// for a user, never for a domain's default — `false`.
    public static func cacheableProblem(_ value: String, user: Bool) -> String? {
        if value == "true" || (user && value == "false") { return nil }
        if value == "false" {
            return "a domain's cacheable takes true or milliseconds (false belongs on a user; leave the domain's unset instead)"
        }
        guard !value.isEmpty, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            return "cacheable takes true\(user ? ", false" : "") or milliseconds; got \(FieldDiff.show(value))"
        }
        let digits = value.drop { $0 == "0" }
        if digits.count > 7 || (Int(digits) ?? 0) > maximumCacheableMilliseconds {
            return "cacheable \(value) is above \(maximumCacheableMilliseconds) ms: FreeSWITCH multiplies it by 1000 in a 32-bit int "
                + "(switch_xml.c) and the lifetime wraps; use true (cached until xml_flush_cache) or at most \(maximumCacheableMilliseconds)"
        }
        return nil
    }

    /// A user's `extra-xml` as stored: the well-formed elements of `value`,
    /// re-serialised (what import stores), or why it is not that.
    public static func extraXML(_ value: String) -> (xml: String?, problem: String?) {
        let root: ParsedElement
        do {
            root = try XMLTreeParser.parse("<extra-xml>" + value + "</extra-xml>")
        } catch {
            // Said without the wrapper element the check parses in.
            var message = error.message
            if let open = message.firstRange(of: "closing tag </extra-xml> does not match ") {
                message = "\(message[open.upperBound...]) is not closed"
            } else if message.hasSuffix(" does not match <extra-xml>"), let tag = message.split(separator: " ").dropFirst(2).first {
                message = "\(tag) closes an element it did not open"
            } else if message.contains("<extra-xml>") {
                message = "not well-formed"
            }
            return (nil, "extra-xml must be well-formed XML elements: \(message)")
        }
        if root.text != nil { return (nil, "extra-xml must be XML elements only: it holds text outside any element") }
        if root.children.isEmpty { return (nil, "extra-xml holds no element (unset it instead)") }
        return (root.children.map(\.compactXML).joined(), nil)
    }

    /// A condition's field/expression pairing (schema: dialplan_conditions_field_expression_check):
    /// a field needs an expression and the reverse, unless the condition has `regex=`.
    public static func conditionProblem(field: String?, expression: String?, regex: String?) -> String? {
        guard regex == nil, (field == nil) != (expression == nil) else { return nil }
        return field == nil ? "a condition with an expression needs a field (or regex=all|any|xor with <regex> children)"
            : "a condition with a field needs an expression (or regex=all|any|xor with <regex> children)"
    }

    /// Why `address` cannot be set to `value` (nil: it can). `regex` compiles dialplan
    /// expressions as FreeSWITCH does (nil: not checked). Whether the addressed rows
    /// exist is the store's business.
    public static func problem(_ address: FieldAddress, value: String, regex: (any RegexCompiler)?) -> String? {
        if let p = xmlTextProblem(value) { return "invalid value: \(p)" }
        switch address {
        case .globals(let name, _):
            return name.flatMap { nameProblem($0, .global) }
        case .directory(let d):
            switch d.field {
            case .setting(_, let name, _)?:
                return nameProblem(name, .setting)
            case .column(let column)?:
                switch column {
                case "name":
                    if d.gateway != nil { return nameProblem(value, .gateway) }
                    if case .group = d.owner { return nameProblem(value, .group) }
                    return nameProblem(value, .domain)
                case "id": return nameProblem(value, .user)
                case "number-alias": return nameProblem(value, .numberAlias)
                case "group": return nameProblem(value, .group)
                case "cacheable":
                    if case .user = d.owner { return cacheableProblem(value, user: true) }
                    return cacheableProblem(value, user: false)
                case "extra-xml": return extraXML(value).problem
                default: return enumerationProblem(column, value)
                }
            case .member(let user)?:
                return nameProblem(user, .user)
            case nil:
                return nil
            }
        case .dialplan(let d):
            guard let column = d.column else { return nil }
            if d.extensionPick == nil { return nameProblem(value, .context) }
            if d.conditions.isEmpty && column == "name" { return nameProblem(value, .extension) }
            if let p = enumerationProblem(column, value) { return p }
            if (column == "field" || column == "application") && value.isEmpty { return "\(column) cannot be empty" }
            if column == "expression", let regex, let p = FreeSWITCHRegex.problem(value, compiler: regex) {
                return "expression \"\(value)\" \(p)"
            }
            return nil
        case .tree(let t):
            if let bad = t.elements.first(where: { !ConfigImporter.isName($0.tag) }) {
                return "\(bad.tag) is not a valid XML element name"
            }
            for e in t.elements {
                if case .match(let key, _) = e.pick, !ConfigImporter.isName(key) { return "\(key) is not a valid XML attribute name" }
            }
            if case .attribute(let a)? = t.leaf, !ConfigImporter.isName(a) { return "\(a) is not a valid XML attribute name" }
            return nil
        }
    }

    /// Enumerated columns (`@continue`, `@break`…): the schema's CHECK lists.
    static func enumerationProblem(_ column: String, _ value: String) -> String? {
        guard let allowed = enumerations[column], !allowed.contains(value) else { return nil }
        return "\(column) takes \(allowed.joined(separator: ", ")); got \(FieldDiff.show(value))"
    }

    // MARK: Secrets

    /// Field names whose values are secrets (schema: fsconf.is_secret_name): the
    /// change log keeps their values where nodes cannot read them, history hides them.
    public static func isSecretName(_ name: String) -> Bool {
        let n = name.asciiLowercased
        for word in ["password", "passwd", "passphrase", "secret", "credential", "token", "a1-hash"] where n.contains(word) { return true }
        for word in ["pass", "pin"] where n == word || n.hasSuffix("-" + word) || n.hasSuffix("_" + word) { return true }
        return n.hasSuffix("dsn")
    }

    // MARK: Whole trees (import)

    /// Checks every name and value of `tree` with the rules above and returns the
    /// tree without what fails (the smallest enclosing entity: a setting, a user, an
    /// extension, a document…), and the problems, each prefixed by its path.
    public static func check(_ tree: ConfigTree, regex: (any RegexCompiler)?) -> (tree: ConfigTree, problems: [String]) {
        var problems: [String] = []
        func fail(_ path: FieldPath, _ p: String?) -> Bool {
            guard let p else { return false }
            problems.append(oneLine("\(path): \(p)"))
            return true
        }
        func root(_ s: String) -> FieldPath { FieldPath([FieldPath.Step(s)]) }
        func settings(_ list: [SettingEntity], _ owner: FieldPath) -> [SettingEntity] {
            list.filter { s in
                let p = owner.appending(s.kind.rawValue).appending(s.name)
                return !fail(p, nameProblem(s.name, .setting)) && !fail(p, xmlTextProblem(s.value).map { "invalid value: \($0)" })
            }
        }
        func gateways(_ list: [GatewayEntity], _ owner: FieldPath) -> [GatewayEntity] {
            list.compactMap { g in
                let p = owner.appending("gateway").appending(g.name)
                if fail(p, nameProblem(g.name, .gateway)) { return nil }
                var g = g
                g.settings = g.settings.filter { s in
                    let sp = p.appending(s.kind.rawValue).appending(s.name)
                    return !fail(sp, nameProblem(s.name, .setting)) && !fail(sp, xmlTextProblem(s.value).map { "invalid value: \($0)" })
                }
                return g
            }
        }
        var out = tree

        // Globals, and references that would expand forever.
        out.globals = tree.globals.filter { g in
            let p = root("globals").appending(g.name)
            return !fail(p, nameProblem(g.name, .global)) && !fail(p, xmlTextProblem(g.value).map { "invalid value: \($0)" })
        }
        var values: [String: String] = [:]
        for g in out.globals { values[g.name] = g.value }
        out.globals = out.globals.filter { g in
            guard let cycle = VariableExpander.cycle(from: g.name, globals: values) else { return true }
            problems.append(oneLine("\(root("globals").appending(g.name)): \(VariableExpander.describe(cycle: cycle))"))
            values[g.name] = nil
            return false
        }

        // Directory.
        out.domains = tree.domains.compactMap { d in
            let p = root("directory").appending(d.name)
            if fail(p, nameProblem(d.name, .domain)) || fail(p.with(leaf: .attribute("cacheable")), d.cacheable.flatMap { cacheableProblem($0, user: false) }) {
                return nil
            }
            var d = d
            d.settings = settings(d.settings, p)
            d.gateways = gateways(d.gateways, p)
            d.groups = d.groups.compactMap { g in
                let gp = p.appending("group").appending(g.name)
                if fail(gp, nameProblem(g.name, .group)) { return nil }
                var g = g
                g.settings = settings(g.settings, gp)
                return g
            }
            d.users = d.users.compactMap { u in
                let up = p.appending("user").appending(u.userID)
                if fail(up, nameProblem(u.userID, .user))
                    || fail(up.with(leaf: .attribute("number-alias")), u.numberAlias.flatMap { nameProblem($0, .numberAlias) })
                    || fail(up.with(leaf: .attribute("extra-xml")), u.extraXML.flatMap { extraXML($0).problem }) {
                    return nil
                }
                var u = u
                // A cacheable FreeSWITCH would misread is left out, not the user.
                if fail(up.with(leaf: .attribute("cacheable")), u.cacheable.flatMap { cacheableProblem($0, user: true) }) { u.cacheable = nil }
                u.settings = settings(u.settings, up)
                u.gateways = gateways(u.gateways, up)
                return u
            }
            let userKeys = Set(d.users.map(\.key))
            for i in d.groups.indices { d.groups[i].members = d.groups[i].members.filter { userKeys.contains($0.asciiLowercased) } }
            return d
        }

        // Dialplan: an extension with any bad part is left out whole.
        out.contexts = tree.contexts.compactMap { c in
            let p = root(c.section.rawValue).appending(c.name)
            if fail(p, nameProblem(c.name, .context)) { return nil }
            var c = c
            c.extensions = c.extensions.enumerated().compactMap { (n, x) in
                let xp = p.appending("extension", x.name.isEmpty ? [.index(n + 1)] : [.match("name", x.name)])
                if fail(xp, nameProblem(x.name, .extension)) || fail(xp.with(leaf: .attribute("continue")), x.continue.flatMap { enumerationProblem("continue", $0) }) {
                    return nil
                }
                var ok = true
                func condition(_ cond: ConditionEntity, _ cp: FieldPath, depth: Int) {
                    for (xml, value) in cond.attributes.sorted(by: { $0.key < $1.key }) {
                        let ap = cp.with(leaf: .attribute(xml))
                        var p = xmlTextProblem(value).map { "invalid value: \($0)" } ?? enumerationProblem(xml, value)
                        if p == nil, xml == "field", value.isEmpty { p = "field cannot be empty" }
                        if p == nil, xml == "expression", let regex, let r = FreeSWITCHRegex.problem(value, compiler: regex) { p = "expression \"\(value)\" \(r)" }
                        if fail(ap, p) { ok = false }
                    }
                    if fail(cp, conditionProblem(field: cond.attributes["field"], expression: cond.attributes["expression"], regex: cond.attributes["regex"])) { ok = false }
                    for (k, r) in cond.regexes.enumerated() {
                        let rp = cp.appending("regex", [.index(k + 1)])
                        let field = r.field.flatMap { $0.isEmpty ? "field cannot be empty" : xmlTextProblem($0).map { "invalid value: \($0)" } }
                        let expression = r.expression.flatMap { e in
                            xmlTextProblem(e).map { "invalid value: \($0)" }
                                ?? regex.flatMap { FreeSWITCHRegex.problem(e, compiler: $0) }.map { "expression \"\(e)\" \($0)" }
                        }
                        if fail(rp.with(leaf: .attribute("field")), field) || fail(rp.with(leaf: .attribute("expression")), expression) { ok = false }
                        for (xml, value) in r.time.sorted(by: { $0.key < $1.key }) {
                            if fail(rp.with(leaf: .attribute(xml)), xmlTextProblem(value).map { "invalid value: \($0)" }) { ok = false }
                        }
                    }
                    for (kind, list) in [("action", cond.actions), ("anti-action", cond.antiActions)] {
                        for (k, a) in list.enumerated() {
                            let ap = cp.appending(kind, [.index(k + 1)])
                            if fail(ap.with(leaf: .attribute("application")), a.application.isEmpty ? "application cannot be empty" : xmlTextProblem(a.application).map { "invalid value: \($0)" })
                                || fail(ap.with(leaf: .attribute("data")), a.data.flatMap { xmlTextProblem($0) }.map { "invalid value: \($0)" })
                                || fail(ap.with(leaf: .attribute("inline")), a.inline.flatMap { enumerationProblem("inline", $0) }) {
                                ok = false
                            }
                        }
                    }
                    guard depth < maximumDepth else { return }
                    for (k, child) in cond.children.enumerated() { condition(child, cp.appending("condition", [.index(k + 1)]), depth: depth + 1) }
                }
                for (k, cond) in x.conditions.enumerated() { condition(cond, xp.appending("condition", [.index(k + 1)]), depth: 1) }
                return ok ? x : nil
            }
            return c
        }

        // Configuration and languages: a document with any bad part is left out whole.
        out.documents = tree.documents.filter { doc in
            let p = root(doc.section.rawValue).appending(doc.name)
            if fail(p, nameProblem(doc.name, .document)) { return false }
            var ok = true
            var stack: [(ParsedElement, FieldPath, Int)] = [(doc.root, p, 0)]
            while let (e, ep, depth) = stack.popLast() {
                if fail(ep, ConfigImporter.isName(e.name) ? nil : "<\(e.name)> is not a valid XML element name") { ok = false }
                for a in e.attributes {
                    if fail(ep.with(leaf: .attribute(a.name)), ConfigImporter.isName(a.name) ? xmlTextProblem(a.value).map { "invalid value: \($0)" }
                            : "\(a.name) is not a valid XML attribute name") { ok = false }
                }
                if fail(ep.with(leaf: .text), e.text.flatMap { xmlTextProblem($0) }.map { "invalid text: \($0)" }) { ok = false }
                if depth >= maximumDepth {
                    if !e.children.isEmpty { problems.append("\(ep): elements nested deeper than \(maximumDepth) levels"); ok = false }
                    continue
                }
                let steps = FieldListing.childSteps(e.children.map { ($0.name, $0.attribute("name"), $0.scope) })
                for (child, step) in zip(e.children, steps).reversed() {
                    var cp = ep
                    cp.steps.append(step)
                    stack.append((child, cp, depth + 1))
                }
            }
            return ok
        }
        return (out, problems)
    }

    /// How deep elements and conditions may nest: what the node renders (documents
    /// are cut at 256 levels by TreeDocument) and what import parses.
    public static let maximumDepth = 256
}
