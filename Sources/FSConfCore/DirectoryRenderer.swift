/// Renders directory answers in the shape FreeSWITCH searches (switch_xml.c):
/// `domain/groups/group/users/user` for users defined in a group, `domain/user`
/// for the others, so that FreeSWITCH's own merge (user over group over domain)
/// and its group_call, network-list and gateway walks all find what they expect.
public enum DirectoryRenderer {
    /// What a lookup answers, with the facts the node's cache needs read from the
    /// model (not from the rendered text).
    public struct Answer: Sendable {
        public var xml: String
        /// FreeSWITCH's "not found" document: fsconf holds no such domain.
        public var notFound: Bool { xml == FreeSWITCHDocument.notFound }
        /// A user lookup that found the domain but no such user (cached briefly).
        public var noSuchUser = false
        /// A user FreeSWITCH keeps in its own cache (`cacheable` rendered): only
        /// the agent's xml_flush_cache makes FreeSWITCH ask again.
        public var heldByFreeSWITCH = false
    }

    public static func render(_ query: DirectoryQuery, _ data: DirectoryData,
                              node: @escaping (String) -> String? = { _ in nil }) -> String {
        answer(query, data, node: node).xml
    }

    public static func answer(_ query: DirectoryQuery, _ data: DirectoryData,
                              node: @escaping (String) -> String? = { _ in nil }) -> Answer {
        var facts = Answer(xml: "")
        facts.xml = render(query, data, node: node, facts: &facts)
        return facts
    }

    static func render(_ query: DirectoryQuery, _ data: DirectoryData, node: @escaping (String) -> String?,
                       facts: inout Answer) -> String {
        var expander = VariableExpander(globals: data.globals, node: node)
        var w = XMLWriter(capacity: 4096)   // a user answer is ~2.5 KB: no regrowth
        switch query {
        case .none:
            return FreeSWITCHDocument.notFound

        case .gateways(let wanted):
            let domains = data.domains.filter { d in
                wanted.map { same(expander.expand(d.name), $0) } ?? true
            }
            if domains.isEmpty { return FreeSWITCHDocument.notFound }
            FreeSWITCHDocument.begin(&w, section: "directory")
            for domain in domains {
                openDomain(&w, domain, &expander)
                if !domain.gateways.isEmpty {
                    // Stored for completeness: FreeSWITCH 1.10 reads gateways only inside users.
                    w.open("gateways")
                    for gateway in domain.gateways { renderGateway(&w, gateway, &expander) }
                    w.close("gateways")
                }
                renderUsers(&w, domain, domain.users, &expander, settings: false)
                w.close("domain")
            }
            FreeSWITCHDocument.end(&w)

        case .user(let name, let user, let key):
            guard let domain = pick(name, data, &expander) else { return FreeSWITCHDocument.notFound }
            let users = domain.users.filter { u in
                switch key {
                case "id": return same(expander.expand(u.userID), user) || u.numberAlias.map { same(expander.expand($0), user) } == true
                case "number-alias": return u.numberAlias.map { same(expander.expand($0), user) } == true
                default: return true  // matched on the attribute by the query
                }
            }
            facts.noSuchUser = users.isEmpty
            facts.heldByFreeSWITCH = users.contains { $0.heldByFreeSWITCH(in: domain) }
            FreeSWITCHDocument.begin(&w, section: "directory")
            openDomain(&w, domain, &expander)
            renderSettings(&w, domain.settings, &expander)
            renderUsers(&w, domain, users, &expander, settings: true)
            w.close("domain")
            FreeSWITCHDocument.end(&w)

        case .group(let name, let groupName):
            guard let domain = pick(name, data, &expander) else { return FreeSWITCHDocument.notFound }
            FreeSWITCHDocument.begin(&w, section: "directory")
            openDomain(&w, domain, &expander)
            renderSettings(&w, domain.settings, &expander)
            if let group = domain.groups.first(where: { same(expander.expand($0.name), groupName) }) {
                w.open("groups")
                w.open("group", [("name", expander.expand(group.name))])
                renderSettings(&w, group.settings, &expander)
                w.open("users")
                for user in domain.users where user.homeGroup == group.id {
                    renderUser(&w, domain, user, &expander, settings: true)
                }
                for (pointer, _) in group.pointers {
                    w.empty("user", [("id", expander.expand(pointer)), ("type", "pointer")])
                }
                w.close("users")
                w.close("group")
                w.close("groups")
            }
            w.close("domain")
            FreeSWITCHDocument.end(&w)

        case .domain(let name, let mode):
            guard let domain = pick(name, data, &expander) else { return FreeSWITCHDocument.notFound }
            FreeSWITCHDocument.begin(&w, section: "directory")
            openDomain(&w, domain, &expander)
            renderSettings(&w, domain.settings, &expander)
            switch mode {
            case .none: break
            case .cidr: renderUsers(&w, domain, domain.users, &expander, settings: true)
            case .all:
                // mod_voicemail's publish-vm searches only the domain's direct <user> children.
                for user in domain.users { renderUser(&w, domain, user, &expander, settings: true) }
            }
            w.close("domain")
            FreeSWITCHDocument.end(&w)
        }
        return w.string
    }

    /// FreeSWITCH compares names with strcasecmp (ASCII case folding).
    static func same(_ a: String, _ b: String) -> Bool { sameIgnoringASCIICase(a, b) }

    /// The stored domain whose name, as the node expands it, is `name`: exact names
    /// first. A stored `$${domain}` is only ever its expansion, never its own text.
    static func pick(_ name: String, _ data: DirectoryData, _ expander: inout VariableExpander) -> DirectoryDomain? {
        if let exact = data.domains.first(where: { !VariableExpander.hasReference($0.name) && same($0.name, name) }) { return exact }
        return data.domains.first { VariableExpander.hasReference($0.name) && same(expander.expand($0.name), name) }
    }

    // Elements are written attribute by attribute (XMLWriter.start/attribute/
    // finish): no array of attributes per element on the lookup path.

    static func openDomain(_ w: inout XMLWriter, _ domain: DirectoryDomain, _ expander: inout VariableExpander) {
        w.start("domain")
        w.attribute("name", expander.expand(domain.name))
        for s in domain.settings where s.kind == .attribute {
            w.attribute(s.name, expander.expand(s.value))
        }
        w.finish(selfClosing: false)
    }

    /// Users in their home groups (in group order), then the domain's direct users.
    static func renderUsers(_ w: inout XMLWriter, _ domain: DirectoryDomain, _ users: [DirectoryUser],
                            _ expander: inout VariableExpander, settings: Bool) {
        var anyGrouped = false
        for group in domain.groups where users.contains(where: { $0.homeGroup == group.id }) {
            if !anyGrouped { w.open("groups"); anyGrouped = true }
            w.start("group")
            w.attribute("name", expander.expand(group.name))
            w.finish(selfClosing: false)
            if settings { renderSettings(&w, group.settings, &expander) }
            w.open("users")
            for user in users where user.homeGroup == group.id {
                renderUser(&w, domain, user, &expander, settings: settings)
            }
            w.close("users")
            w.close("group")
        }
        if anyGrouped { w.close("groups") }
        for user in users where !domain.groups.contains(where: { $0.id == user.homeGroup }) {
            renderUser(&w, domain, user, &expander, settings: settings)
        }
    }

    static func renderUser(_ w: inout XMLWriter, _ domain: DirectoryDomain, _ user: DirectoryUser,
                           _ expander: inout VariableExpander, settings: Bool) {
        w.start("user")
        w.attribute("id", expander.expand(user.userID))
        if let alias = user.numberAlias { w.attribute("number-alias", expander.expand(alias)) }
        if let cacheable = user.effectiveCacheable(in: domain) { w.attribute("cacheable", cacheable) }
        for s in user.settings where s.kind == .attribute {
            w.attribute(s.name, expander.expand(s.value))
        }
        let hasBody = (settings && user.settings.contains { $0.kind != .attribute }) || !user.gateways.isEmpty
            || (settings && user.extraXML != nil)
        guard hasBody else {
            w.finish(selfClosing: true)
            return
        }
        w.finish(selfClosing: false)
        if settings { renderSettings(&w, user.settings, &expander) }
        if !user.gateways.isEmpty {
            w.open("gateways")
            for gateway in user.gateways { renderGateway(&w, gateway, &expander) }
            w.close("gateways")
        }
        if settings, let extra = user.extraXML { w.raw(extra) }
        w.close("user")
    }

    /// Params, variables and profile variables, each in its container when any.
    static func renderSettings(_ w: inout XMLWriter, _ settings: [Setting], _ expander: inout VariableExpander) {
        renderSettings(&w, settings, .param, container: "params", tag: "param", &expander)
        renderSettings(&w, settings, .variable, container: "variables", tag: "variable", &expander)
        renderSettings(&w, settings, .profileVariable, container: "profile-variables", tag: "variable", &expander)
    }

    static func renderSettings(_ w: inout XMLWriter, _ settings: [Setting], _ kind: Setting.Kind, container: String,
                               tag: String, _ expander: inout VariableExpander) {
        var opened = false
        // By index: no copy of each setting (three strings retained) per pass.
        for i in settings.indices where settings[i].kind == kind {
            if !opened { w.open(container); opened = true }
            w.start(tag)
            w.attribute("name", settings[i].name)
            w.attribute("value", expander.expand(settings[i].value))
            w.finish(selfClosing: true)
        }
        if opened { w.close(container) }
    }

    static func renderGateway(_ w: inout XMLWriter, _ gateway: Gateway, _ expander: inout VariableExpander) {
        w.start("gateway")
        w.attribute("name", expander.expand(gateway.name))
        w.finish(selfClosing: false)
        for s in gateway.settings where s.kind == .param {
            w.start("param")
            w.attribute("name", s.name)
            w.attribute("value", expander.expand(s.value))
            w.finish(selfClosing: true)
        }
        var opened = false
        for s in gateway.settings where s.kind == .variable {
            if !opened { w.open("variables"); opened = true }
            w.start("variable")
            w.attribute("name", s.name)
            w.attribute("value", expander.expand(s.value))
            if let direction = s.direction { w.attribute("direction", direction) }
            w.finish(selfClosing: true)
        }
        if opened { w.close("variables") }
        w.close("gateway")
    }
}

extension DirectoryUser {
    /// The `cacheable` attribute rendered for this user: its own, else its domain's.
    /// A number is milliseconds, any other value caches until xml_flush_cache — so
    /// "false" (and "") is not rendered at all.
    public func effectiveCacheable(in domain: DirectoryDomain) -> String? {
        guard let value = cacheable ?? domain.cacheable, value != "false", !value.isEmpty else { return nil }
        return value
    }

    /// FreeSWITCH keeps this user in its own cache: a `cacheable` is rendered (the
    /// column, or a user attribute stored under that name).
    public func heldByFreeSWITCH(in domain: DirectoryDomain) -> Bool {
        effectiveCacheable(in: domain) != nil || settings.contains { $0.kind == .attribute && $0.name == "cacheable" }
    }
}
