/// Every field of a `ConfigTree` as (canonical path, value): what `fsconf list`
/// prints and what `fsconf diff` compares. Each entity also lists its naming
/// column (`@name`, `@id`), so an entity without fields still shows up.

import FSConfCore

public struct FieldEntry: Equatable, Sendable {
    public var path: FieldPath
    public var value: String
    public init(path: FieldPath, value: String) { self.path = path; self.value = value }
}

public enum FieldListing {
    public static func entries(_ tree: ConfigTree) -> [FieldEntry] {
        var out: [FieldEntry] = []
        let globalsRoot = FieldPath([FieldPath.Step("globals")])
        for g in tree.globals { out.append(FieldEntry(path: globalsRoot.appending(g.name, scope: g.scope), value: g.value)) }

        let dirRoot = FieldPath([FieldPath.Step("directory")])
        for d in tree.domains {
            let dp = dirRoot.appending(d.name, scope: d.scope)
            out.append(FieldEntry(path: dp.with(leaf: .attribute("name")), value: d.name))
            if let c = d.cacheable { out.append(FieldEntry(path: dp.with(leaf: .attribute("cacheable")), value: c)) }
            settings(d.settings, dp, &out)
            gateways(d.gateways, dp, &out)
            for g in d.groups {
                let gp = dp.appending("group").appending(g.name)
                out.append(FieldEntry(path: gp.with(leaf: .attribute("name")), value: g.name))
                settings(g.settings, gp, &out)
                for m in g.members { out.append(FieldEntry(path: gp.appending("member").appending(m), value: m)) }
            }
            for u in d.users {
                let up = dp.appending("user").appending(u.userID, scope: u.scope)
                out.append(FieldEntry(path: up.with(leaf: .attribute("id")), value: u.userID))
                if let v = u.numberAlias { out.append(FieldEntry(path: up.with(leaf: .attribute("number-alias")), value: v)) }
                if let v = u.cacheable { out.append(FieldEntry(path: up.with(leaf: .attribute("cacheable")), value: v)) }
                out.append(FieldEntry(path: up.with(leaf: .attribute("enabled")), value: u.enabled ? "true" : "false"))
                if let v = u.homeGroup { out.append(FieldEntry(path: up.with(leaf: .attribute("group")), value: v)) }
                if let v = u.extraXML { out.append(FieldEntry(path: up.with(leaf: .attribute("extra-xml")), value: v)) }
                settings(u.settings, up, &out)
                gateways(u.gateways, up, &out)
            }
        }

        for c in tree.contexts {
            let cp = FieldPath([FieldPath.Step(c.section.rawValue)]).appending(c.name, scope: c.scope)
            out.append(FieldEntry(path: cp.with(leaf: .attribute("name")), value: c.name))
            // Names and ordinals count the extensions of the same scope.
            var nameCounts: [String: Int] = [:], ordinals: [String: Int] = [:]
            for x in c.extensions { nameCounts[(x.scope?.description ?? "") + "\u{0}" + x.name, default: 0] += 1 }
            for x in c.extensions {
                let scopeKey = x.scope?.description ?? ""
                ordinals[scopeKey, default: 0] += 1
                let s = CanonicalStep.extensionStep(name: x.name, sameName: nameCounts[scopeKey + "\u{0}" + x.name] ?? 0,
                                                    ordinal: ordinals[scopeKey] ?? 0, scope: x.scope)
                var xp = cp
                xp.steps.append(s)
                out.append(FieldEntry(path: xp.with(leaf: .attribute("name")), value: x.name))
                if let v = x.continue { out.append(FieldEntry(path: xp.with(leaf: .attribute("continue")), value: v)) }
                out.append(FieldEntry(path: xp.with(leaf: .attribute("enabled")), value: x.enabled ? "true" : "false"))
                for (n, cond) in x.conditions.enumerated() { condition(cond, xp.appending("condition", [.index(n + 1)]), &out) }
            }
        }

        for doc in tree.documents {
            let root = FieldPath([FieldPath.Step(doc.section.rawValue), FieldPath.Step(doc.name, scope: doc.scope)])
            element(doc.root, root, &out)
        }
        return out
    }

    static func settings(_ list: [SettingEntity], _ owner: FieldPath, _ out: inout [FieldEntry]) {
        for s in list { out.append(FieldEntry(path: owner.appending(s.kind.rawValue).appending(s.name), value: s.value)) }
    }

    static func gateways(_ list: [GatewayEntity], _ owner: FieldPath, _ out: inout [FieldEntry]) {
        for g in list {
            let gp = owner.appending("gateway").appending(g.name, scope: g.scope)
            out.append(FieldEntry(path: gp.with(leaf: .attribute("name")), value: g.name))
            for s in g.settings {
                let step = FieldPath.Step(s.name, s.direction.map { [.match("direction", $0)] } ?? [])
                var p = gp.appending(s.kind.rawValue)
                p.steps.append(step)
                out.append(FieldEntry(path: p, value: s.value))
            }
        }
    }

    static func condition(_ c: ConditionEntity, _ p: FieldPath, _ out: inout [FieldEntry]) {
        for (xml, _) in ConditionEntity.columns {
            if let v = c.attributes[xml] { out.append(FieldEntry(path: p.with(leaf: .attribute(xml)), value: v)) }
        }
        if c.attributes.isEmpty && c.regexes.isEmpty && c.actions.isEmpty && c.antiActions.isEmpty && c.children.isEmpty {
            out.append(FieldEntry(path: p, value: ""))
        }
        for (n, r) in c.regexes.enumerated() {
            let rp = p.appending("regex", [.index(n + 1)])
            if let f = r.field { out.append(FieldEntry(path: rp.with(leaf: .attribute("field")), value: f)) }
            if let x = r.expression { out.append(FieldEntry(path: rp.with(leaf: .attribute("expression")), value: x)) }
            for t in ConditionEntity.timeColumns {
                if let v = r.time[t.xml] { out.append(FieldEntry(path: rp.with(leaf: .attribute(t.xml)), value: v)) }
            }
        }
        for (kind, list) in [("action", c.actions), ("anti-action", c.antiActions)] {
            for (n, a) in list.enumerated() {
                let ap = p.appending(kind, [.index(n + 1)])
                out.append(FieldEntry(path: ap.with(leaf: .attribute("application")), value: a.application))
                if let d = a.data { out.append(FieldEntry(path: ap.with(leaf: .attribute("data")), value: d)) }
                if let i = a.inline { out.append(FieldEntry(path: ap.with(leaf: .attribute("inline")), value: i)) }
                if let l = a.loop { out.append(FieldEntry(path: ap.with(leaf: .attribute("loop")), value: l)) }
            }
        }
        for (n, child) in c.children.enumerated() { condition(child, p.appending("condition", [.index(n + 1)]), &out) }
    }

    static func element(_ e: ParsedElement, _ p: FieldPath, _ out: inout [FieldEntry]) {
        for a in e.attributes { out.append(FieldEntry(path: p.with(leaf: .attribute(a.name)), value: a.value)) }
        if let t = e.text { out.append(FieldEntry(path: p.with(leaf: .text), value: t)) }
        if e.attributes.isEmpty && e.text == nil && e.children.isEmpty { out.append(FieldEntry(path: p, value: "")) }
        for step in childSteps(e.children.map { ($0.name, $0.attribute("name"), $0.scope) }).enumerated() {
            var cp = p
            cp.steps.append(step.element)
            element(e.children[step.offset], cp, &out)
        }
    }

    /// Canonical steps for a list of sibling elements (tag, name attribute, scope):
    /// names, counts and ordinals are per scope, each variant with its `{…}` block.
    public static func childSteps(_ siblings: [(tag: String, name: String?, scope: Scope?)]) -> [FieldPath.Step] {
        var tagCount: [String: Int] = [:], nameCount: [String: Int] = [:]
        func key(_ s: (tag: String, name: String?, scope: Scope?)) -> String { s.tag + "\u{0}" + (s.scope?.description ?? "") }
        for s in siblings {
            tagCount[key(s), default: 0] += 1
            if let n = s.name { nameCount[key(s) + "\u{0}" + n, default: 0] += 1 }
        }
        var ordinal: [String: Int] = [:]
        return siblings.map { s in
            ordinal[key(s), default: 0] += 1
            return CanonicalStep.elementStep(tag: s.tag, name: s.name, sameTag: tagCount[key(s)] ?? 0,
                                             sameTagSameName: s.name.map { nameCount[key(s) + "\u{0}" + $0] ?? 0 } ?? 0,
                                             ordinal: ordinal[key(s)] ?? 0, scope: s.scope)
        }
    }
}

/// A field-by-field comparison of two listings (`fsconf diff`).
public enum FieldDiff {
    public enum Line: Equatable, Sendable, CustomStringConvertible {
        case added(FieldPath, String)
        case removed(FieldPath, String)
        case changed(FieldPath, old: String, new: String)
        public var description: String {
            switch self {
            case .added(let p, let v): return "+ \(p) = \(FieldDiff.show(v))"
            case .removed(let p, let v): return "- \(p) = \(FieldDiff.show(v))"
            case .changed(let p, let o, let n): return "~ \(p): \(FieldDiff.show(o)) -> \(FieldDiff.show(n))"
            }
        }
    }

    /// Values on one line: newlines and tabs escaped, long ones cut.
    public static func show(_ v: String) -> String {
        var out = ""
        for ch in v {
            switch ch {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default: out.append(ch)
            }
        }
        if out.count > 200 { out = String(out.prefix(200)) + "…" }
        return out
    }

    public static func compare(stored: [FieldEntry], tree: [FieldEntry]) -> [Line] {
        var old: [FieldPath: String] = [:]
        for e in stored where old[e.path] == nil { old[e.path] = e.value }
        var new: [FieldPath: String] = [:]
        for e in tree where new[e.path] == nil { new[e.path] = e.value }
        var lines: [Line] = []
        for e in stored where new[e.path] == nil { lines.append(.removed(e.path, e.value)) }
        for e in tree {
            if let o = old[e.path] {
                if o != e.value { lines.append(.changed(e.path, old: o, new: e.value)) }
            } else {
                lines.append(.added(e.path, e.value))
            }
        }
        return lines
    }
}

extension ConfigTree {
    /// The same tree with each entity's settings grouped by kind (attributes,
    /// params, variables, profile-variables; order kept within a kind), as XML holds
    /// them: the interleaving of kinds is not something an XML tree can express.
    public var settingsGroupedByKind: ConfigTree {
        func group(_ list: [SettingEntity]) -> [SettingEntity] {
            [Setting.Kind.attribute, .param, .variable, .profileVariable].flatMap { k in list.filter { $0.kind == k } }
        }
        func gateways(_ list: [GatewayEntity]) -> [GatewayEntity] {
            list.map { g in
                var g = g
                g.settings = [Setting.Kind.param, .variable].flatMap { k in g.settings.filter { $0.kind == k } }
                return g
            }
        }
        var t = self
        for i in t.domains.indices {
            t.domains[i].settings = group(t.domains[i].settings)
            t.domains[i].gateways = gateways(t.domains[i].gateways)
            for j in t.domains[i].groups.indices { t.domains[i].groups[j].settings = group(t.domains[i].groups[j].settings) }
            for j in t.domains[i].users.indices {
                t.domains[i].users[j].settings = group(t.domains[i].users[j].settings)
                t.domains[i].users[j].gateways = gateways(t.domains[i].users[j].gateways)
            }
        }
        return t
    }
}
