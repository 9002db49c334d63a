import FSConfAdminCore
import FSConfCore

/// What FreeSWITCH finds in a parsed document for one lookup (switch_xml.c), so a
/// static tree and a handler's answer can be compared the way FreeSWITCH uses them.
public enum StaticLookup {
    static func same(_ a: String?, _ b: String) -> Bool {
        guard let a else { return false }
        return sameIgnoringASCIICase(a, b)
    }

    /// `switch_xml_find_child(xml, "section", "name", section)`.
    public static func section(_ document: ParsedElement, _ name: String) -> ParsedElement? {
        document.children.first { $0.name == "section" && same($0.attribute("name"), name) }
    }

    /// `switch_xml_locate(section, tag, key_name, key_value)`: the first `tag` child of
    /// the section whose attribute `keyName` is `keyValue`.
    public static func locate(_ document: ParsedElement, section name: String, tag: String, keyName: String,
                              keyValue: String) -> ParsedElement? {
        section(document, name)?.children.first { $0.name == tag && same($0.attribute(keyName), keyValue) }
    }

    /// `switch_xml_locate_user` with key `id`: the domain, then each group's `<users>`
    /// in order, then the domain's own `<user>` children; pointer users are skipped;
    /// a user matches by id or number-alias.
    public static func locateUser(_ document: ParsedElement, domain: String, user: String)
        -> (domain: ParsedElement, group: ParsedElement?, user: ParsedElement)? {
        guard let d = locate(document, section: "directory", tag: "domain", keyName: "name", keyValue: domain) else { return nil }
        func find(in tag: ParsedElement) -> ParsedElement? {
            tag.children.first { u in
                u.name == "user" && u.attribute("type") != "pointer"
                    && (same(u.attribute("id"), user) || same(u.attribute("number-alias"), user))
            }
        }
        if let groups = d.child("groups") {
            for g in groups.children("group") {
                if let users = g.child("users"), let u = find(in: users) { return (d, g, u) }
            }
        }
        if let u = find(in: d) { return (d, nil, u) }
        if let users = d.child("users"), let u = find(in: users) { return (d, nil, u) }
        return nil
    }

    /// `switch_xml_merge_user`: the user's params, variables and profile-variables,
    /// completed from the group's then the domain's (names compared without case),
    /// plus `domain-name`. This is what mod_sofia and friends actually read.
    public static func mergedUser(_ found: (domain: ParsedElement, group: ParsedElement?, user: ParsedElement)) -> ParsedElement {
        var user = found.user
        func merge(from source: ParsedElement?, _ container: String, _ tag: String) {
            var index = user.children.firstIndex { $0.name == container }
            if index == nil {
                user.children.append(ParsedElement(name: container))
                index = user.children.count - 1
            }
            guard let source, let from = source.child(container) else { return }
            for p in from.children(tag) {
                let name = p.attribute("name")
                let present = user.children[index!].children(tag).contains { q in
                    if let name, let other = q.attribute("name") { return same(other, name) }
                    return false
                }
                if !present {
                    user.children[index!].children.append(
                        ParsedElement(name: tag, attributes: [("name", name ?? ""), ("value", p.attribute("value") ?? "")]))
                }
            }
        }
        for source in [found.group, found.domain] {
            merge(from: source, "params", "param")
            merge(from: source, "variables", "variable")
            merge(from: source, "profile-variables", "variable")
        }
        if let name = found.domain.attribute("name"), !name.isEmpty {
            user.attributes.removeAll { $0.name == "domain-name" }
            user.attributes.append(("domain-name", name))
        }
        return user
    }

    /// A canonical text for comparing what FreeSWITCH reads: element names, attributes
    /// (sorted by name: XML gives attribute order no meaning and FreeSWITCH reads them by
    /// name), children in order, non-whitespace text. Comments and insignificant
    /// whitespace are already gone after parsing. Two FreeSWITCH-neutral normalisations:
    /// - a `<user>`'s child containers are compared in a fixed order (params, variables,
    ///   profile-variables, gateways, then the rest): FreeSWITCH looks each up by name;
///   an empty `<gateways/>` declares nothing and is left out;
    /// - a dialplan `<condition>`'s `<expression>text</expression>` is the same as its
    ///   `expression` attribute (mod_dialplan_xml reads either), and its regexes,
    ///   actions, anti-actions and nested conditions are separate lists to
    ///   mod_dialplan_xml, so they are compared kind by kind (order kept within a kind).
    public static func canonical(_ e: ParsedElement) -> String {
        var out = ""
        canonical(e, into: &out, depth: 0)
        return out
    }

    static func canonical(_ e: ParsedElement, into out: inout String, depth: Int) {
        var e = e
        var children = e.children
        if e.name == "user" {
            let rank = ["params": 0, "variables": 1, "profile-variables": 2, "gateways": 3]
            children = children.enumerated().sorted { (rank[$0.element.name] ?? 4, $0.offset) < (rank[$1.element.name] ?? 4, $1.offset) }.map(\.element)
            // An empty <gateways/> declares nothing (sofia reads the gateway children).
            children.removeAll { $0.name == "gateways" && $0.children.isEmpty && $0.attributes.isEmpty && $0.text == nil }
        }
        if e.name == "condition" {
            if e.attribute("expression") == nil, let x = children.first(where: { $0.name == "expression" && $0.attributes.isEmpty && $0.children.isEmpty }) {
                e.attributes.append(("expression", x.text ?? ""))
                children.removeAll { $0.name == "expression" }
            }
            let rank = ["regex": 0, "action": 1, "anti-action": 2, "condition": 3]
            children = children.enumerated().sorted { (rank[$0.element.name] ?? 4, $0.offset) < (rank[$1.element.name] ?? 4, $1.offset) }.map(\.element)
        }
        let indent = String(repeating: "  ", count: depth)
        out += indent + "<" + e.name
        for a in e.attributes.sorted(by: { $0.name < $1.name }) { out += " \(a.name)=\"\(XMLWriter.escape(a.value))\"" }
        out += ">"
        if let t = e.text { out += " text=\"\(XMLWriter.escape(t))\"" }
        out += "\n"
        for c in children { canonical(c, into: &out, depth: depth + 1) }
    }
}
