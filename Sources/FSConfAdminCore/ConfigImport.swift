/// Maps a pre-processed FreeSWITCH document onto fsconf's tables (`ConfigTree`),
/// field by field. Whatever the schema cannot hold is reported, by original file and
/// line, in `unrepresentable`; nothing is dropped silently.

import FSConfCore

public struct ConfigImporter {
    public private(set) var tree = ConfigTree()
    public private(set) var unrepresentable: [SourceError] = []
    /// Kept or dropped with a reason the operator should read (inert elements...).
    public private(set) var notes: [SourceError] = []
    /// Stored as written, but FreeSWITCH ignores it (a domain's own <gateways>).
    public private(set) var warnings: [SourceError] = []
    private let locate: (Int) -> SourceLocation
    private let domainMap: [String: String]

    /// Pre-processes nothing: takes the pre-processor's output, parses it and maps it.
    /// A malformed document throws, naming the original file and line.
    /// `regex` compiles dialplan expressions as FreeSWITCH does (nil: not checked).
    public static func load(_ pre: PreProcessor, domainMap: [String: String] = [:],
                            regex: (any RegexCompiler)? = nil) throws(SourceError) -> ConfigImporter {
        let root: ParsedElement
        do {
            root = try XMLTreeParser.parse(pre.text)
        } catch {
            let at = pre.location(ofOutputLine: error.line)
            var message = error.message
            if let opened = error.openedAt.map({ pre.location(ofOutputLine: $0) }) {
                message += opened.file == at.file ? " (opened at line \(opened.line))" : " (opened at \(opened))"
            }
            throw SourceError(at, message)
        }
        var importer = ConfigImporter(locate: { pre.location(ofOutputLine: $0) }, domainMap: domainMap)
        importer.unrepresentable.append(contentsOf: pre.unrepresentable)
        importer.globals(pre.globals)
        try importer.document(root)
        importer.validate(root, regex: regex)
        return importer
    }

    /// The validator `fsconf set` uses (FieldValidation.check), over the whole tree:
    /// what fails is left out and reported at its section's line, by path.
    private mutating func validate(_ root: ParsedElement, regex: (any RegexCompiler)?) {
        let (checked, problems) = FieldValidation.check(tree, regex: regex)
        tree = checked
        var lines: [String: Int] = [:]
        for c in root.children where c.name == "section" { lines[c.attribute("name") ?? ""] = lines[c.attribute("name") ?? ""] ?? c.line }
        for p in problems {
            let section = String(p.prefix { $0 != "/" })
            unrepresentable.append(SourceError(locate(lines[section] ?? root.line), p))
        }
    }

    init(locate: @escaping (Int) -> SourceLocation, domainMap: [String: String]) {
        self.locate = locate
        self.domainMap = domainMap
    }

    private mutating func report(_ e: ParsedElement, _ what: String) {
        unrepresentable.append(SourceError(locate(e.line), what))
    }

    public static func isName(_ s: String) -> Bool {
        guard let first = s.utf8.first else { return false }
        let startOK = (first >= 65 && first <= 90) || (first >= 97 && first <= 122) || first == UInt8(ascii: "_")
        return startOK && s.utf8.allSatisfy { b in
            (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: ":") || b == UInt8(ascii: "-")
        }
    }

    public static func isGlobalName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { b in
            (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: ":") || b == UInt8(ascii: "-")
        }
    }

    // MARK: Globals

    private mutating func globals(_ list: [PreProcessor.Global]) {
        var index: [String: (Int, SourceLocation)] = [:]
        for g in list {
            guard ConfigImporter.isGlobalName(g.name) else {
                unrepresentable.append(SourceError(g.location, "global variable name \"\(g.name)\" is not allowed (letters, digits, _ . : -)"))
                continue
            }
            if let (i, first) = index[g.name] {
                if tree.globals[i].value != g.value || tree.globals[i].command != g.command {
                    unrepresentable.append(SourceError(g.location,
                        "global \(g.name) is set again with another value (first at \(first)): fsconf keeps one value per name, the last"))
                }
                tree.globals[i].value = g.value
                tree.globals[i].command = g.command
            } else {
                index[g.name] = (tree.globals.count, g.location)
                tree.globals.append(GlobalVariable(name: g.name, value: g.value, command: g.command))
            }
        }
    }

    // MARK: Document and sections

    private mutating func document(_ root: ParsedElement) throws(SourceError) {
        guard root.name == "document" else {
            throw SourceError(locate(root.line), "the root element is <\(root.name)>, expected <document type=\"freeswitch/xml\">")
        }
        if root.text != nil { report(root, "text inside <document>") }
        for child in root.children {
            if inert(child) { continue }
            guard child.name == "section" else {
                report(child, "<\(child.name)> outside any section")
                continue
            }
            let name = child.attribute("name") ?? ""
            if child.text != nil { report(child, "text inside <section name=\"\(name)\">") }
            let elements = child.children.filter { !inert($0) }
            switch name {
            case "directory": for e in elements { directoryChild(e) }
            case "dialplan": for e in elements { context(e, section: .dialplan) }
            case "chatplan": for e in elements { context(e, section: .chatplan) }
            case "configuration", "languages":
                for e in elements { documentChild(e, section: name == "configuration" ? .configuration : .languages) }
            default:
                report(child, "section \"\(name)\" (\(child.children.count) element(s)) is not stored by fsconf")
            }
        }
    }

    /// `<X-NO-PRE-PROCESS …>`: switch_xml.c's pre-processor acts only on
    /// `<X-PRE-PROCESS`; this one is an element no module reads. Dropped, with a note.
    private mutating func inert(_ e: ParsedElement) -> Bool {
        guard e.name.asciiLowercased == "x-no-pre-process" else { return false }
        let what = e.attributes.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: " ")
        notes.append(SourceError(locate(e.line), "<\(e.name) \(what)> is inert in FreeSWITCH (no module reads it): not stored"))
        return true
    }

    // MARK: Directory

    private mutating func directoryChild(_ e: ParsedElement) {
        guard e.name == "domain" else { report(e, "<\(e.name)> in the directory section (only <domain> is stored)"); return }
        guard var name = e.attribute("name"), !name.isEmpty else { report(e, "<domain> without a name"); return }
        if let mapped = domainMap[name] { name = mapped }
        if tree.domains.contains(where: { $0.key == name.asciiLowercased }) {
            report(e, "domain \(name) is defined again (FreeSWITCH uses the first)")
            return
        }
        var domain = DomainEntity(name: name)
        for a in e.attributes where a.name != "name" {
            domain.settings.append(SettingEntity(kind: .attribute, name: a.name, value: a.value))
        }
        if e.text != nil { report(e, "text inside <domain name=\"\(name)\">") }
        var userKeys: [String: Int] = [:]
        var aliasKeys: Set<String> = []
        var gatewayNames: Set<String> = []
        func addUser(_ user: UserEntity, _ source: ParsedElement, into domain: inout DomainEntity, _ me: inout ConfigImporter) {
            if userKeys[user.key] != nil {
                me.report(source, "user \(user.userID) is defined again in domain \(name) (FreeSWITCH uses the first)")
                return
            }
            if let alias = user.numberAlias {
                if aliasKeys.contains(alias.asciiLowercased) {
                    me.report(source, "number-alias \(alias) is used by another user of domain \(name)")
                    return
                }
                aliasKeys.insert(alias.asciiLowercased)
            }
            for g in user.gateways {
                if gatewayNames.contains(g.name) { me.report(source, "gateway \(g.name) is defined twice in domain \(name)") }
                gatewayNames.insert(g.name)
            }
            userKeys[user.key] = domain.users.count
            domain.users.append(user)
        }
        var pointers: [(group: Int, id: String, source: ParsedElement)] = []
        for c in e.children {
            switch c.name {
            case "params", "variables", "profile-variables":
                domain.settings.append(contentsOf: settings(c, owner: "domain \(name)", existing: domain.settings))
            case "gateways":
                warnings.append(SourceError(locate(c.line),
                    "<gateways> directly in domain \(name) is stored as written, but FreeSWITCH ignores it: sofia reads the gateways "
                    + "of a parsed domain's users and of sofia.conf profiles (sofia.c parse_domain_tag, parse_gateways)"))
                for g in gateways(c) {
                    if gatewayNames.contains(g.name) { report(c, "gateway \(g.name) is defined twice in domain \(name)"); continue }
                    gatewayNames.insert(g.name)
                    domain.gateways.append(g)
                }
            case "groups":
                if c.text != nil || !c.attributes.isEmpty { report(c, "<groups> with attributes or text") }
                for g in c.children {
                    guard g.name == "group" else { report(g, "<\(g.name)> inside <groups>"); continue }
                    guard let groupName = g.attribute("name"), !groupName.isEmpty else { report(g, "<group> without a name"); continue }
                    if domain.groups.contains(where: { $0.key == groupName.asciiLowercased }) {
                        report(g, "group \(groupName) is defined again in domain \(name)"); continue
                    }
                    var group = GroupEntity(name: groupName)
                    for a in g.attributes where a.name != "name" {
                        group.settings.append(SettingEntity(kind: .attribute, name: a.name, value: a.value))
                    }
                    if g.text != nil { report(g, "text inside <group name=\"\(groupName)\">") }
                    let groupIndex = domain.groups.count
                    for gc in g.children {
                        switch gc.name {
                        case "params", "variables", "profile-variables":
                            group.settings.append(contentsOf: settings(gc, owner: "group \(groupName)", existing: group.settings))
                        case "users":
                            if gc.text != nil || !gc.attributes.isEmpty { report(gc, "<users> with attributes or text") }
                            for u in gc.children {
                                guard u.name == "user" else { report(u, "<\(u.name)> inside <users>"); continue }
                                if u.attribute("type") == "pointer" {
                                    guard let id = u.attribute("id"), !id.isEmpty else { report(u, "pointer <user> without an id"); continue }
                                    for a in u.attributes where a.name != "id" && a.name != "type" {
                                        report(u, "attribute \(a.name) on pointer user \(id) (only id and type are kept)")
                                    }
                                    if !u.children.isEmpty || u.text != nil { report(u, "content inside pointer user \(id)") }
                                    pointers.append((groupIndex, id, u))
                                } else if let user = user(u, home: groupName) {
                                    addUser(user, u, into: &domain, &self)
                                }
                            }
                        default:
                            report(gc, "<\(gc.name)> inside <group name=\"\(groupName)\">")
                        }
                    }
                    domain.groups.append(group)
                }
            case "users":
                if c.text != nil || !c.attributes.isEmpty { report(c, "<users> with attributes or text") }
                for u in c.children {
                    guard u.name == "user" else { report(u, "<\(u.name)> inside <users>"); continue }
                    if u.attribute("type") == "pointer" { report(u, "pointer user outside a group"); continue }
                    if let user = user(u, home: nil) { addUser(user, u, into: &domain, &self) }
                }
            case "user":
                if c.attribute("type") == "pointer" { report(c, "pointer user outside a group"); continue }
                if let user = user(c, home: nil) { addUser(user, c, into: &domain, &self) }
            default:
                report(c, "<\(c.name)> inside <domain name=\"\(name)\">")
            }
        }
        for p in pointers {
            guard userKeys[p.id.asciiLowercased] != nil else {
                report(p.source, "pointer to user \(p.id), which domain \(name) does not define"); continue
            }
            let defined = domain.users[userKeys[p.id.asciiLowercased]!].userID
            if domain.groups[p.group].members.contains(where: { $0.asciiLowercased == p.id.asciiLowercased }) {
                report(p.source, "user \(p.id) is listed twice in group \(domain.groups[p.group].name)"); continue
            }
            domain.groups[p.group].members.append(defined)
        }
        tree.domains.append(domain)
    }

    private mutating func user(_ u: ParsedElement, home: String?) -> UserEntity? {
        guard let id = u.attribute("id"), !id.isEmpty else { report(u, "<user> without an id"); return nil }
        var user = UserEntity(userID: id)
        user.homeGroup = home
        for a in u.attributes where a.name != "id" {
            switch a.name {
            case "number-alias":
                if a.value.isEmpty { report(u, "empty number-alias on user \(id)") } else { user.numberAlias = a.value }
            case "cacheable" where ConfigImporter.isCacheable(a.value):
                user.cacheable = a.value
            default:
                user.settings.append(SettingEntity(kind: .attribute, name: a.name, value: a.value))
            }
        }
        if u.text != nil { report(u, "text inside <user id=\"\(id)\">") }
        var extra: [String] = []
        for c in u.children {
            switch c.name {
            case "params", "variables", "profile-variables":
                user.settings.append(contentsOf: settings(c, owner: "user \(id)", existing: user.settings))
            case "gateways":
                user.gateways.append(contentsOf: gateways(c))
            default:
                extra.append(c.compactXML)
            }
        }
        if !extra.isEmpty { user.extraXML = extra.joined() }
        return user
    }

    static func isCacheable(_ v: String) -> Bool {
        v == "true" || v == "false" || (!v.isEmpty && v.utf8.allSatisfy { $0 >= 48 && $0 <= 57 })
    }

    /// `<params><param name= value=/>…`, `<variables>`, `<profile-variables>`.
    private mutating func settings(_ c: ParsedElement, owner: String, existing: [SettingEntity]) -> [SettingEntity] {
        let (kind, tag): (Setting.Kind, String) = c.name == "params" ? (.param, "param")
            : c.name == "variables" ? (.variable, "variable") : (.profileVariable, "variable")
        if !c.attributes.isEmpty || c.text != nil { report(c, "<\(c.name)> of \(owner) with attributes or text") }
        var out: [SettingEntity] = []
        for p in c.children {
            guard p.name == tag else { report(p, "<\(p.name)> inside <\(c.name)> of \(owner)"); continue }
            guard let name = p.attribute("name"), !name.isEmpty else { report(p, "<\(tag)> without a name in \(owner)"); continue }
            guard let value = p.attribute("value") else { report(p, "\(tag) \(name) of \(owner) has no value"); continue }
            for a in p.attributes where a.name != "name" && a.name != "value" {
                report(p, "attribute \(a.name) on \(tag) \(name) of \(owner) (only name and value are kept)")
            }
            if !p.children.isEmpty || p.text != nil { report(p, "content inside \(tag) \(name) of \(owner)") }
            if (existing + out).contains(where: { $0.kind == kind && $0.name == name }) {
                report(p, "\(tag) \(name) appears twice in \(owner)"); continue
            }
            out.append(SettingEntity(kind: kind, name: name, value: value))
        }
        return out
    }

    private mutating func gateways(_ c: ParsedElement) -> [GatewayEntity] {
        if !c.attributes.isEmpty || c.text != nil { report(c, "<gateways> with attributes or text") }
        var out: [GatewayEntity] = []
        for g in c.children {
            guard g.name == "gateway" else { report(g, "<\(g.name)> inside <gateways>"); continue }
            guard let name = g.attribute("name"), !name.isEmpty else { report(g, "<gateway> without a name"); continue }
            for a in g.attributes where a.name != "name" { report(g, "attribute \(a.name) on gateway \(name)") }
            if g.text != nil { report(g, "text inside gateway \(name)") }
            var gateway = GatewayEntity(name: name)
            func add(_ s: GatewaySettingEntity, _ source: ParsedElement, _ me: inout ConfigImporter) {
                if gateway.settings.contains(where: { $0.kind == s.kind && $0.name == s.name && $0.direction == s.direction }) {
                    me.report(source, "\(s.kind.rawValue) \(s.name) appears twice in gateway \(name)")
                } else {
                    gateway.settings.append(s)
                }
            }
            for p in g.children {
                switch p.name {
                case "param":
                    guard let n = p.attribute("name"), !n.isEmpty, let v = p.attribute("value") else {
                        report(p, "param without name or value in gateway \(name)"); continue
                    }
                    for a in p.attributes where a.name != "name" && a.name != "value" { report(p, "attribute \(a.name) on param \(n) of gateway \(name)") }
                    add(GatewaySettingEntity(kind: .param, name: n, value: v), p, &self)
                case "variables":
                    if !p.attributes.isEmpty || p.text != nil { report(p, "<variables> of gateway \(name) with attributes or text") }
                    for v in p.children {
                        guard v.name == "variable" else { report(v, "<\(v.name)> inside gateway \(name)'s <variables>"); continue }
                        guard let n = v.attribute("name"), !n.isEmpty, let value = v.attribute("value") else {
                            report(v, "variable without name or value in gateway \(name)"); continue
                        }
                        let direction = v.attribute("direction")
                        if let direction, direction != "inbound" && direction != "outbound" {
                            report(v, "direction \"\(direction)\" of variable \(n) in gateway \(name) (inbound or outbound)"); continue
                        }
                        for a in v.attributes where !["name", "value", "direction"].contains(a.name) {
                            report(v, "attribute \(a.name) on variable \(n) of gateway \(name)")
                        }
                        add(GatewaySettingEntity(kind: .variable, name: n, value: value, direction: direction), v, &self)
                    }
                default:
                    report(p, "<\(p.name)> inside gateway \(name)")
                }
            }
            out.append(gateway)
        }
        return out
    }

    // MARK: Dialplan

    private mutating func context(_ e: ParsedElement, section: PlanSection) {
        guard e.name == "context" else { report(e, "<\(e.name)> in the \(section.rawValue) section (only <context> is stored)"); return }
        guard let name = e.attribute("name"), !name.isEmpty else { report(e, "<context> without a name"); return }
        if tree.contexts.contains(where: { $0.section == section && $0.name == name }) {
            report(e, "\(section.rawValue) context \(name) is defined again (FreeSWITCH uses the first)"); return
        }
        for a in e.attributes where a.name != "name" { report(e, "attribute \(a.name) on context \(name)") }
        if e.text != nil { report(e, "text inside context \(name)") }
        var context = ContextEntity(name: name, section: section)
        for x in e.children {
            guard x.name == "extension" else { report(x, "<\(x.name)> inside context \(name)"); continue }
            var ext = ExtensionEntity(name: x.attribute("name") ?? "")
            if x.attribute("name") == nil { report(x, "<extension> without a name in context \(name)"); continue }
            for a in x.attributes where a.name != "name" {
                if a.name == "continue" && (a.value == "true" || a.value == "false") { ext.continue = a.value }
                else { report(x, "attribute \(a.name)=\"\(a.value)\" on extension \(ext.name)") }
            }
            if x.text != nil { report(x, "text inside extension \(ext.name)") }
            for c in x.children {
                guard c.name == "condition" else { report(c, "<\(c.name)> inside extension \(ext.name)"); continue }
                ext.conditions.append(condition(c, extension: ext.name))
            }
            context.extensions.append(ext)
        }
        tree.contexts.append(context)
    }

    private mutating func condition(_ c: ParsedElement, extension ext: String) -> ConditionEntity {
        var out = ConditionEntity()
        for a in c.attributes {
            if !ConditionEntity.attributeNames.contains(a.name) {
                report(c, "attribute \(a.name) on a condition of extension \(ext)"); continue
            }
            if let values = FieldValidation.enumerations[a.name], !values.contains(a.value) {
                report(c, "\(a.name)=\"\(a.value)\" on a condition of extension \(ext)"); continue
            }
            out.attributes[a.name] = a.value
        }
        if c.text != nil { report(c, "text inside a condition of extension \(ext)") }
        var sawChild = false
        for k in c.children {
            switch k.name {
            case "regex":
                var regex = RegexEntity(field: nil, expression: nil)
                for a in k.attributes {
                    switch a.name {
                    case "field": regex.field = a.value
                    case "expression": regex.expression = a.value
                    default:
                        if let t = ConditionEntity.timeColumns.first(where: { $0.xml == a.name }) { regex.time[t.xml] = a.value }
                        else { report(k, "attribute \(a.name) on <regex> in extension \(ext)") }
                    }
                }
                if let x = expressionChild(k, ext) {
                    if regex.expression != nil { notes.append(SourceError(locate(k.line), "<regex> in extension \(ext) has an expression attribute and an <expression> child: FreeSWITCH reads the child; the attribute is not stored")) }
                    regex.expression = x; regex.expressionElement = true
                }
                for x in k.children where x.name != "expression" { report(x, "<\(x.name)> inside <regex> in extension \(ext)") }
                if regex.field == nil && regex.time.isEmpty {
                    report(k, "<regex> without a field or a time attribute in extension \(ext)"); continue
                }
                if regex.field != nil && regex.expression == nil {
                    report(k, "<regex field=\"\(regex.field!)\"> without an expression in extension \(ext)"); continue
                }
                out.regexes.append(regex)
            case "action", "anti-action":
                guard let app = k.attribute("application"), !app.isEmpty else {
                    report(k, "<\(k.name)> without an application in extension \(ext)"); continue
                }
                if sawChild { report(k, "<\(k.name)> after a nested condition in extension \(ext): fsconf keeps actions before nested conditions") }
                var action = ActionEntity(application: app, data: k.attribute("data"))
                if let text = k.text, !k.mixedContent {
                    // mod_dialplan_xml: `if (!zstr(xaction->txt)) data = xaction->txt; else data = attr "data"`.
                    if action.data != nil {
                        notes.append(SourceError(locate(k.line), "<\(k.name) application=\"\(app)\"> in extension \(ext) has data and text: FreeSWITCH uses the text; the data attribute is not stored"))
                    }
                    action.data = text; action.dataElement = true
                }
                for a in k.attributes where a.name != "application" && a.name != "data" {
                    if a.name == "inline" && (a.value == "true" || a.value == "false") { action.inline = a.value }
                    else if a.name == "loop" && !a.value.isEmpty { action.loop = a.value }
                    else { report(k, "attribute \(a.name)=\"\(a.value)\" on <\(k.name)> in extension \(ext)") }
                }
                if !k.children.isEmpty { report(k, "content inside <\(k.name)> in extension \(ext)") }
                if k.name == "action" { out.actions.append(action) } else { out.antiActions.append(action) }
            case "expression":
                // mod_dialplan_xml reads <expression>text</expression> before the attribute.
                guard !out.expressionElement, let x = expressionChild(c, ext) else { continue }
                if out.attributes["expression"] != nil && !out.expressionElement {
                    notes.append(SourceError(locate(k.line), "a condition of extension \(ext) has an expression attribute and an <expression> child: FreeSWITCH reads the child; the attribute is not stored"))
                }
                out.attributes["expression"] = x
                out.expressionElement = true
            case "condition":
                sawChild = true
                out.children.append(condition(k, extension: ext))
            default:
                report(k, "<\(k.name)> inside a condition of extension \(ext)")
            }
        }
        return out
    }

    /// The first `<expression>` child's text, as `switch_xml_child(x, "expression")->txt`
    /// reads it; nil when there is none. FreeSWITCH never reads a second one: reported.
    private mutating func expressionChild(_ parent: ParsedElement, _ ext: String) -> String? {
        let all = parent.children("expression")
        guard let first = all.first else { return nil }
        for extra in all.dropFirst() { report(extra, "a second <expression> in extension \(ext) (FreeSWITCH reads the first)") }
        if !first.attributes.isEmpty || !first.children.isEmpty { report(first, "<expression> with attributes or elements in extension \(ext)") }
        return first.text ?? ""
    }

    // MARK: Configuration and languages

    private mutating func documentChild(_ e: ParsedElement, section: DocumentEntity.Section) {
        let tag = section == .configuration ? "configuration" : "language"
        guard e.name == tag else {
            report(e, "<\(e.name)> in the \(section.rawValue) section (only <\(tag)> is stored)"); return
        }
        guard let name = e.attribute("name"), !name.isEmpty else { report(e, "<\(tag)> without a name"); return }
        if tree.documents.contains(where: { $0.section == section && $0.name == name }) {
            report(e, "\(tag) \(name) is defined again (FreeSWITCH uses the first)"); return
        }
        var ok = true
        checkTree(e, document: name, ok: &ok)
        if ok { tree.documents.append(DocumentEntity(section: section, name: name, root: e)) }
    }

    private mutating func checkTree(_ e: ParsedElement, document: String, ok: inout Bool) {
        if !ConfigImporter.isName(e.name) { report(e, "element name <\(e.name)> in \(document) cannot be stored"); ok = false }
        for a in e.attributes where !ConfigImporter.isName(a.name) {
            report(e, "attribute name \(a.name) in \(document) cannot be stored"); ok = false
        }
        if e.mixedContent { report(e, "<\(e.name)> in \(document) mixes text and elements: the text's place among them is not kept") }
        for c in e.children { checkTree(c, document: document, ok: &ok) }
    }
}
