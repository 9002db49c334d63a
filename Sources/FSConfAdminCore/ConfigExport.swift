/// Writes a `ConfigTree` as a FreeSWITCH configuration tree: `freeswitch.xml` with the
/// five sections and explicit X-PRE-PROCESS includes (in stored order), `vars.xml` with
/// the globals as `set` lines (`exec-set`/`env-set` as written; references kept: FreeSWITCH expands them when it
/// loads the files, fsconf keeps them when it imports them back), and one file per
/// domain, context, configuration document and language.

import FSConfCore

public enum ConfigExport {
    public struct File: Sendable, Equatable {
        public var path: String
        public var contents: String
    }

    public struct ExportError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public static func files(_ tree: ConfigTree) throws(ExportError) -> [File] {
        var files: [File] = []
        var used: Set<String> = []
        func unique(_ folder: String, _ name: String, _ ext: String = ".xml") -> String {
            var base = folder + safeName(name)
            var path = base + ext
            var n = 2
            while used.contains(path.asciiLowercased) { path = base + "-\(n)" + ext; n += 1 }
            used.insert(path.asciiLowercased)
            base = path
            return path
        }

        var vars = "<include>\n"
        for g in tree.globals {
            guard !g.value.contains("\""), !g.value.contains("\n"), !g.value.contains("\r") else {
                throw ExportError(description: "global \(g.name): its value holds a quote or a line break, which vars.xml cannot carry")
            }
            vars += "  <X-PRE-PROCESS cmd=\"\(g.command)\" data=\"\(g.name)=\(g.value)\"/>\n"
        }
        vars += "</include>\n"
        files.append(File(path: "vars.xml", contents: vars))

        var configurationIncludes: [String] = [], dialplanIncludes: [String] = [], chatplanIncludes: [String] = []
        var directoryIncludes: [String] = [], languageIncludes: [String] = []

        for doc in tree.configurations {
            let path = unique("autoload_configs/", doc.name)
            configurationIncludes.append(path)
            files.append(File(path: path, contents: wrap { doc.root.write(to: &$0) }))
        }
        for context in tree.contexts {
            let path = unique(context.section.rawValue + "/", context.name)
            if context.section == .chatplan { chatplanIncludes.append(path) } else { dialplanIncludes.append(path) }
            files.append(File(path: path, contents: wrap { renderContext(context, &$0) }))
        }
        for domain in tree.domains {
            let path = unique("directory/", domain.name)
            directoryIncludes.append(path)
            files.append(File(path: path, contents: wrap { renderDomain(domain, &$0) }))
        }
        for doc in tree.languages {
            let folder = "lang/" + safeName(doc.name) + "/"
            let path = unique(folder, doc.name)
            languageIncludes.append(path)
            files.append(File(path: path, contents: wrap { doc.root.write(to: &$0) }))
        }

        var main = "<?xml version=\"1.0\"?>\n<!-- Written by fsconf export. -->\n<document type=\"freeswitch/xml\">\n"
        main += "  <X-PRE-PROCESS cmd=\"include\" data=\"vars.xml\"/>\n"
        for (name, description, includes) in [("configuration", "Various Configuration", configurationIncludes),
                                              ("dialplan", "Regex/XML Dialplan", dialplanIncludes),
                                              ("chatplan", "Regex/XML Chatplan", chatplanIncludes),
                                              ("directory", "User Directory", directoryIncludes),
                                              ("languages", "Language Management", languageIncludes)] {
            main += "  <section name=\"\(name)\" description=\"\(description)\">\n"
            for path in includes { main += "    <X-PRE-PROCESS cmd=\"include\" data=\"\(path)\"/>\n" }
            main += "  </section>\n"
        }
        main += "</document>\n"
        files.insert(File(path: "freeswitch.xml", contents: main), at: 0)

        // FreeSWITCH's pre-processor drops or obeys lines that mention it; none of ours may.
        for file in files where file.path != "freeswitch.xml" && file.path != "vars.xml" {
            for line in file.contents.split(separator: "\n") {
                if PreProcessor.caseInsensitiveRange(of: "x-pre-process", in: line) != nil || line.contains("<!--#") {
                    throw ExportError(description: "\(file.path): a value mentions X-PRE-PROCESS, which FreeSWITCH's pre-processor would act on")
                }
            }
        }
        return files
    }

    /// File names: the entity name with anything but letters, digits, `.`, `_`, `-`
    /// replaced by `_` (names like `$${domain}` must not be expanded in include lines).
    public static func safeName(_ name: String) -> String {
        let mapped = name.unicodeScalars.map { s -> Character in
            let v = s.value
            let ok = (v >= 48 && v <= 57) || (v >= 65 && v <= 90) || (v >= 97 && v <= 122) || s == "." || s == "_" || s == "-"
            return ok ? Character(s) : "_"
        }
        var out = String(mapped)
        if out.isEmpty || out.hasPrefix(".") { out = "_" + out }
        return out
    }

    static func wrap(_ body: (inout XMLWriter) -> Void) -> String {
        var w = XMLWriter(indent: true, capacity: 4096)
        w.open("include")
        body(&w)
        w.close("include")
        return w.string + "\n"
    }

    // MARK: Directory

    public static func renderDomain(_ d: DomainEntity, _ w: inout XMLWriter) {
        w.open("domain", [("name", d.name)] + attributes(d.settings))
        renderSettings(d.settings, &w)
        if !d.gateways.isEmpty {
            w.open("gateways")
            for g in d.gateways { renderGateway(g, &w) }
            w.close("gateways")
        }
        if !d.groups.isEmpty {
            w.open("groups")
            for g in d.groups {
                w.open("group", [("name", g.name)] + attributes(g.settings))
                renderSettings(g.settings, &w)
                w.open("users")
                for u in d.users where u.homeGroup.map({ $0.asciiLowercased == g.key }) == true { renderUser(u, &w) }
                for m in g.members { w.empty("user", [("id", m), ("type", "pointer")]) }
                w.close("users")
                w.close("group")
            }
            w.close("groups")
        }
        let groupKeys = Set(d.groups.map(\.key))
        for u in d.users where u.homeGroup.map({ !groupKeys.contains($0.asciiLowercased) }) ?? true { renderUser(u, &w) }
        w.close("domain")
    }

    static func attributes(_ settings: [SettingEntity]) -> [(String, String)] {
        settings.filter { $0.kind == .attribute }.map { ($0.name, $0.value) }
    }

    public static func renderUser(_ u: UserEntity, _ w: inout XMLWriter) {
        var attrs = [("id", u.userID)]
        if let a = u.numberAlias { attrs.append(("number-alias", a)) }
        if let c = u.cacheable { attrs.append(("cacheable", c)) }
        attrs += attributes(u.settings)
        let hasBody = u.settings.contains { $0.kind != .attribute } || !u.gateways.isEmpty || u.extraXML != nil
        guard hasBody else { w.empty("user", attrs); return }
        w.open("user", attrs)
        renderSettings(u.settings, &w)
        if !u.gateways.isEmpty {
            w.open("gateways")
            for g in u.gateways { renderGateway(g, &w) }
            w.close("gateways")
        }
        if let extra = u.extraXML { w.raw(extra) }
        w.close("user")
    }

    static func renderSettings(_ settings: [SettingEntity], _ w: inout XMLWriter) {
        for (kind, container, tag) in [(Setting.Kind.param, "params", "param"), (.variable, "variables", "variable"),
                                       (.profileVariable, "profile-variables", "variable")] {
            let list = settings.filter { $0.kind == kind }
            if list.isEmpty { continue }
            w.open(container)
            for s in list { w.empty(tag, [("name", s.name), ("value", s.value)]) }
            w.close(container)
        }
    }

    static func renderGateway(_ g: GatewayEntity, _ w: inout XMLWriter) {
        w.open("gateway", [("name", g.name)])
        for s in g.settings where s.kind == .param { w.empty("param", [("name", s.name), ("value", s.value)]) }
        let variables = g.settings.filter { $0.kind == .variable }
        if !variables.isEmpty {
            w.open("variables")
            for s in variables {
                var a = [("name", s.name), ("value", s.value)]
                if let d = s.direction { a.append(("direction", d)) }
                w.empty("variable", a)
            }
            w.close("variables")
        }
        w.close("gateway")
    }

    // MARK: Dialplan

    public static func renderContext(_ c: ContextEntity, _ w: inout XMLWriter) {
        w.open("context", [("name", c.name)])
        for x in c.extensions {
            var a = [("name", x.name)]
            if let k = x.continue { a.append(("continue", k)) }
            if x.conditions.isEmpty { w.empty("extension", a); continue }
            w.open("extension", a)
            for cond in x.conditions { renderCondition(cond, &w) }
            w.close("extension")
        }
        w.close("context")
    }

    /// The operator's form: `<expression>` children, action data as text, `loop`.
    public static func renderCondition(_ c: ConditionEntity, _ w: inout XMLWriter) {
        let attrs = ConditionEntity.columns.compactMap { col -> (String, String)? in
            if col.xml == "expression" && c.expressionElement { return nil }
            return c.attributes[col.xml].map { (col.xml, $0) }
        }
        let element = c.expressionElement ? c.attributes["expression"] : nil
        if c.regexes.isEmpty && c.actions.isEmpty && c.antiActions.isEmpty && c.children.isEmpty && element == nil {
            w.empty("condition", attrs); return
        }
        w.open("condition", attrs)
        if let element { w.element("expression", text: element) }
        for r in c.regexes {
            var a: [(String, String)] = []
            if let f = r.field { a.append(("field", f)) }
            if let x = r.expression, !r.expressionElement { a.append(("expression", x)) }
            for t in ConditionEntity.timeColumns { if let v = r.time[t.xml] { a.append((t.xml, v)) } }
            if r.expressionElement, let x = r.expression {
                w.open("regex", a); w.element("expression", text: x); w.close("regex")
            } else {
                w.empty("regex", a)
            }
        }
        for (tag, list) in [("action", c.actions), ("anti-action", c.antiActions)] {
            for a in list {
                var attributes = [("application", a.application)]
                if let d = a.data, !a.dataElement { attributes.append(("data", d)) }
                if let i = a.inline { attributes.append(("inline", i)) }
                if let l = a.loop { attributes.append(("loop", l)) }
                if a.dataElement, let d = a.data { w.element(tag, attributes, text: d) } else { w.empty(tag, attributes) }
            }
        }
        for child in c.children { renderCondition(child, &w) }
        w.close("condition")
    }
}
