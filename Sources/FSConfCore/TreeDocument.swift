/// The tree store (documents / elements / attributes): any `*.conf` document and
/// any language, rendered exactly as stored (element order, attribute order, text).

public struct TreeElement: Equatable, Sendable {
    public var tag: String
    public var attributes: [(String, String)]
    public var text: String?
    public var children: [TreeElement]

    public init(_ tag: String, _ attributes: [(String, String)] = [], text: String? = nil, children: [TreeElement] = []) {
        self.tag = tag; self.attributes = attributes; self.text = text; self.children = children
    }

    public func attribute(_ name: String) -> String? { attributes.first { $0.0 == name }?.1 }

    public static func == (l: Self, r: Self) -> Bool {
        l.tag == r.tag && l.text == r.text && l.children == r.children
            && l.attributes.map(\.0) == r.attributes.map(\.0) && l.attributes.map(\.1) == r.attributes.map(\.1)
    }
}

/// Rows → one document. Record types (DocumentSQL): `D` document (name),
/// `E` element (tag, text; parent = parent element, nil for the root),
/// `A` attribute (name, value; parent = its element), `V` global variable.
public struct TreeData: Sendable {
    public var name: String?
    public var root: TreeElement?
    public var globals: [String: String]

    public init(name: String?, root: TreeElement?, globals: [String: String] = [:]) {
        self.name = name; self.root = root; self.globals = globals
    }

    public init(rows: [SectionRow]) {
        var name: String?
        var elements: [Int64: (tag: String, text: String?, position: Int)] = [:]
        var children: [Int64: [(Int, Int64)]] = [:]
        var roots: [(Int, Int64)] = []
        var attributes: [Int64: [(Int, String, String)]] = [:]
        // owner of an E row: how specifically the element's scope names the node (docs/cluster.md).
        var ranks: [Int64: Int] = [:]
        for row in rows {
            switch row.kind {
            case "D": name = row.value(0)
            case "E":
                elements[row.id] = (row.value(0) ?? "", row.value(1), row.position)
                if let rank = row.owner, rank != 0 { ranks[row.id] = Int(rank) }
                if let parent = row.parent { children[parent, default: []].append((row.position, row.id)) }
                else { roots.append((row.position, row.id)) }
            case "A":
                attributes[row.parent ?? row.id, default: []].append((row.position, row.value(0) ?? "", row.value(1) ?? ""))
            default: continue
            }
        }
        func build(_ id: Int64, depth: Int) -> TreeElement? {
            guard let e = elements[id] else { return nil }
            let attrs = (attributes[id] ?? []).sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map { ($0.1, $0.2) }
            var element = TreeElement(e.tag, attrs, text: e.text)
            if depth < 256 {
                var list = (children[id] ?? []).sorted { $0.0 < $1.0 }
                if !ranks.isEmpty {
                    // Of sibling variants (same tag and name), the node gets the most specific, in place.
                    list = Precedence.resolve(list, unique: false, identity: { c in
                        guard let tag = elements[c.1]?.tag,
                              let n = attributes[c.1]?.first(where: { $0.1 == "name" })?.2 else { return nil }
                        return tag + "\u{0}" + n
                    }, rank: { ranks[$0.1] ?? 0 }, id: { $0.1 })
                }
                element.children = list.compactMap { build($0.1, depth: depth + 1) }
            }
            return element
        }
        self.name = name
        self.root = roots.min { $0.0 < $1.0 }.flatMap { build($0.1, depth: 0) }
        self.globals = SectionRow.globals(rows)
    }
}

/// Which part of a document a lookup needs. Narrowing never changes what the
/// asking module finds: it only drops siblings the module does not look at.
public enum TreeNarrowing: Hashable, Sendable {
    case whole
    /// Under each root child `<container>`, keep only the `<child name=…>` elements
    /// whose name is one of `names` (ASCII case-insensitive, as strcasecmp).
    case children(container: String, child: String, name: String)
    /// ivr.conf: `<menus>` keeps the menu and every menu it reaches through
    /// `menu-sub` entries (switch_ivr_menu_stack_xml_build looks sub-menus up in the
    /// same `<menus>`; src/switch_ivr_menu.c).
    case ivrMenu(String)

    public func apply(_ root: TreeElement, expand: (String) -> String = { $0 }) -> TreeElement {
        switch self {
        case .whole:
            return root
        case .children(let container, let child, let name):
            var out = root
            for i in out.children.indices where out.children[i].tag == container {
                out.children[i].children.removeAll { c in
                    c.tag == child && !sameIgnoringASCIICase(expand(c.attribute("name") ?? ""), name)
                }
            }
            return out
        case .ivrMenu(let name):
            var out = root
            for i in out.children.indices where out.children[i].tag == "menus" {
                let menus = out.children[i].children
                func menuNamed(_ n: String) -> TreeElement? {
                    menus.first { $0.tag == "menu" && sameIgnoringASCIICase(expand($0.attribute("name") ?? ""), n) }
                }
                var wanted: [String] = [name]
                var queue = [name]
                while let next = queue.popLast() {
                    guard let menu = menuNamed(next) else { continue }
                    for entry in menu.children where entry.tag == "entry" {
                        guard let action = entry.attribute("action"), sameIgnoringASCIICase(action, "menu-sub"),
                              let param = entry.attribute("param").map(expand), !param.isEmpty else { continue }
                        if !wanted.contains(where: { sameIgnoringASCIICase($0, param) }) {
                            wanted.append(param)
                            queue.append(param)
                        }
                    }
                }
                out.children[i].children.removeAll { c in
                    c.tag == "menu" && !wanted.contains { sameIgnoringASCIICase(expand(c.attribute("name") ?? ""), $0) }
                }
            }
            return out
        }
    }
}

/// What a configuration lookup asks for. Header names and what each module needs
/// back, from the module sources:
/// - mod_sofia config_sofia (sofia.c): `profile` (and `reconfig=true` on rescan);
///   reads `<global_settings>`, then only `<profiles><profile name=…>`; a profile
///   missing from the answer is "No Such Profile" (the static file is not read).
/// - mod_dptools ivr (switch_ivr_menu.c): `Menu-Name`; `<menus><menu name=…>` and
///   the sub-menus its `menu-sub` entries name.
/// - mod_callcenter load_queue: `CC-Queue`; `<queues><queue name=…>`; `<settings>`,
///   `<agents>` and `<tiers>` are kept whole.
/// - mod_conference: `profile_name` (and `conf_name`, not used to narrow);
///   `<profiles><profile name=…>`; caller-controls and the rest are kept whole.
/// - acl.conf and every other file: whole (no params at all for acl.conf).
public struct ConfigurationQuery: Hashable, Sendable {
    public var document: String
    public var narrowing: TreeNarrowing

    public init(document: String, narrowing: TreeNarrowing = .whole) {
        self.document = document; self.narrowing = narrowing
    }

    public static func plan(_ request: LookupRequest) -> ConfigurationQuery? {
        let name = request.keyValue
        guard !name.isEmpty, LookupRequest.isPlausibleKey(name) else { return nil }
        func narrowed(_ header: String, _ make: (String) -> TreeNarrowing) -> ConfigurationQuery {
            guard let value = request.header(header), LookupRequest.isPlausibleKey(value) else {
                return ConfigurationQuery(document: name)
            }
            return ConfigurationQuery(document: name, narrowing: make(value))
        }
        switch name.lowercased() {
        case "sofia.conf": return narrowed("profile") { .children(container: "profiles", child: "profile", name: $0) }
        case "ivr.conf": return narrowed("Menu-Name") { .ivrMenu($0) }
        case "callcenter.conf": return narrowed("CC-Queue") { .children(container: "queues", child: "queue", name: $0) }
        case "conference.conf":
            return narrowed("profile_name") { .children(container: "profiles", child: "profile", name: $0) }
        default: return ConfigurationQuery(document: name)
        }
    }
}

/// What a languages (or phrases) lookup asks for: the `lang` header
/// (switch_ivr_phrase_macro_event / switch_ivr_say add it; key_value is empty).
/// FreeSWITCH finds `<language name=lang>` in the section (switch_xml_locate_language);
/// a missing language must be "not found" so the static tree is searched.
public struct LanguageQuery: Hashable, Sendable {
    public var language: String
    /// `en` for `en-US`: served when `en-US` itself is not stored.
    public var fallback: String?
    public var phrases: Bool

    public init(language: String, fallback: String? = nil, phrases: Bool = false) {
        self.language = language; self.fallback = fallback; self.phrases = phrases
    }

    public static func plan(_ request: LookupRequest, phrases: Bool) -> LanguageQuery? {
        var name = request.header("lang") ?? ""
        if name.isEmpty && request.keyName == "name" { name = request.keyValue }
        guard !name.isEmpty, LookupRequest.isPlausibleKey(name) else { return nil }
        var fallback: String?
        if let dash = name.firstIndex(where: { $0 == "-" || $0 == "_" }), dash != name.startIndex {
            fallback = String(name[..<dash])
        }
        return LanguageQuery(language: name, fallback: fallback, phrases: phrases)
    }
}

public enum TreeRenderer {
    /// `<document><section name=section>` + the (narrowed) root element.
    public static func render(section: String, _ data: TreeData, narrowing: TreeNarrowing = .whole,
                              node: @escaping (String) -> String? = { _ in nil }) -> String {
        guard let root = data.root else { return FreeSWITCHDocument.notFound }
        var expander = VariableExpander(globals: data.globals, node: node)
        let element = narrowing.apply(root, expand: { expander.expand($0) })
        var w = XMLWriter(capacity: 4096)
        FreeSWITCHDocument.begin(&w, section: section)
        write(&w, element, &expander)
        FreeSWITCHDocument.end(&w)
        return w.string
    }

    /// The old `phrases` section layout (switch_xml_locate_language's fallback):
    /// `<section name="phrases"><macros><language name=… (attributes)>` holding the
    /// language's macros directly (from every `<phrases><macros>` group).
    public static func renderPhrases(_ data: TreeData, node: @escaping (String) -> String? = { _ in nil }) -> String {
        guard let root = data.root, root.tag == "language" else { return FreeSWITCHDocument.notFound }
        var expander = VariableExpander(globals: data.globals, node: node)
        var w = XMLWriter(capacity: 4096)
        FreeSWITCHDocument.begin(&w, section: "phrases")
        w.open("macros")
        w.open("language", root.attributes.map { ($0.0, expander.expand($0.1)) })
        for phrases in root.children where phrases.tag == "phrases" {
            for macros in phrases.children where macros.tag == "macros" {
                for macro in macros.children { write(&w, macro, &expander) }
            }
        }
        w.close("language")
        w.close("macros")
        FreeSWITCHDocument.end(&w)
        return w.string
    }

    static func write(_ w: inout XMLWriter, _ e: TreeElement, _ expander: inout VariableExpander) {
        let attributes = e.attributes.map { ($0.0, expander.expand($0.1)) }
        let text = e.text.map { expander.expand($0) }
        if e.children.isEmpty {
            if let text, !text.isEmpty { w.element(e.tag, attributes, text: text) }
            else { w.empty(e.tag, attributes) }
            return
        }
        w.open(e.tag, attributes)
        if let text, !text.isEmpty { w.text(text) }
        for child in e.children { write(&w, child, &expander) }
        w.close(e.tag)
    }
}
