import FSConfCore
import FSConfRegex
import Foundation
import FoundationXML
import XCTest

/// Pure rendering of the dialplan, configuration and languages sections: models in,
/// XML out, parsed back with FoundationXML to check structure.
final class SectionRenderingTests: XCTestCase {
    let pcre = PCRE2Compiler()

    func parse(_ xml: String, file: StaticString = #filePath, line: UInt = #line) throws -> XMLElement {
        let doc = try XMLDocument(xmlString: xml, options: [])
        return try XCTUnwrap(doc.rootElement(), file: file, line: line)
    }

    func attributes(_ e: XMLElement) -> [String: String] {
        var out: [String: String] = [:]
        for a in e.attributes ?? [] { out[a.name ?? ""] = a.stringValue ?? "" }
        return out
    }

    func children(_ e: XMLElement, _ name: String? = nil) -> [XMLElement] {
        (e.children ?? []).compactMap { $0 as? XMLElement }.filter { name == nil || $0.name == name }
    }

    // MARK: dialplan

    /// Every mod_dialplan_xml feature, in one extension: the schema.md example
    /// (time, regex=any with <regex> children, nested conditions, anti-actions, inline).
    func holdMusic() -> DialplanExtension {
        let c3 = DialplanCondition(id: 3, position: 1, field: "${open}", expression: "^true$",
                                   actions: [DialplanAction(application: "playback", data: "$${hold_music}", position: 1),
                                             DialplanAction(anti: true, application: "playback", data: "silence_stream://2000", position: 1)])
        let c1 = DialplanCondition(id: 1, position: 1, breakOn: "never",
                                   time: [("wday", "2-6"), ("hour", "9-18")],
                                   actions: [DialplanAction(application: "set", data: "open=true", inline: "true", position: 1),
                                             DialplanAction(anti: true, application: "set", data: "open=false", inline: "true", position: 1)])
        let c2 = DialplanCondition(id: 2, position: 2, requireNested: "false", regex: "any",
                                   regexes: [DialplanRegex(field: "destination_number", expression: "^9664$", position: 1),
                                             DialplanRegex(field: "destination_number", expression: "^hold$", position: 2)],
                                   actions: [DialplanAction(application: "answer", position: 1)], children: [c3])
        return DialplanExtension(id: 1, name: "hold_music", continueOn: "true", position: 1, conditions: [c1, c2])
    }

    func testDialplanRendersEveryFeatureAndParsesBack() throws {
        var allTime = DialplanCondition(id: 9, position: 3, breakOn: "on-true")
        allTime.time = DialplanCondition.timeAttributeNames.map { ($0, "v-\($0)") }
        var ext = holdMusic()
        ext.conditions.append(allTime)
        ext.conditions.append(DialplanCondition(id: 10, position: 4, field: "destination_number", expression: "^(\\d+)$",
                                                breakOn: "on-false", actions: [DialplanAction(application: "bridge", data: "user/$1")]))
        let data = DialplanData(context: DialplanContext(name: "default", extensions: [ext]), globals: ["hold_music": "local_stream://moh"])
        let result = DialplanRenderer.render(.context("default"), data, compiler: pcre)
        XCTAssertTrue(result.skipped.isEmpty, "\(result.skipped)")
        let root = try parse(result.xml)
        XCTAssertEqual(root.name, "document")
        let section = try XCTUnwrap(children(root, "section").first)
        XCTAssertEqual(attributes(section)["name"], "dialplan")
        let context = try XCTUnwrap(children(section, "context").first)
        XCTAssertEqual(attributes(context)["name"], "default")
        let e = try XCTUnwrap(children(context, "extension").first)
        XCTAssertEqual(attributes(e), ["name": "hold_music", "continue": "true"])
        let conditions = children(e, "condition")
        XCTAssertEqual(conditions.count, 4)
        XCTAssertEqual(attributes(conditions[0]), ["wday": "2-6", "hour": "9-18", "break": "never"])
        XCTAssertEqual(children(conditions[0], "action").map(attributes), [["application": "set", "data": "open=true", "inline": "true"]])
        XCTAssertEqual(children(conditions[0], "anti-action").map(attributes), [["application": "set", "data": "open=false", "inline": "true"]])
        XCTAssertEqual(attributes(conditions[1]), ["regex": "any", "require-nested": "false"])
        XCTAssertEqual(children(conditions[1], "regex").map(attributes),
                       [["field": "destination_number", "expression": "^9664$"], ["field": "destination_number", "expression": "^hold$"]])
        XCTAssertEqual(children(conditions[1], "action").map(attributes), [["application": "answer"]])
        let nested = try XCTUnwrap(children(conditions[1], "condition").first)
        XCTAssertEqual(attributes(nested), ["field": "${open}", "expression": "^true$"])
        XCTAssertEqual(children(nested, "action").map(attributes), [["application": "playback", "data": "local_stream://moh"]],
                       "$${hold_music} expands at render time; ${open} stays for FreeSWITCH")
        XCTAssertEqual(children(nested, "anti-action").map(attributes), [["application": "playback", "data": "silence_stream://2000"]])
        var expectedTime: [String: String] = ["break": "on-true"]
        for name in DialplanCondition.timeAttributeNames { expectedTime[name] = "v-\(name)" }
        XCTAssertEqual(attributes(conditions[2]), expectedTime)
        XCTAssertEqual(attributes(conditions[3]), ["field": "destination_number", "expression": "^(\\d+)$", "break": "on-false"])
    }

    func testDialplanEscapesValuesThatLookLikeMarkup() throws {
        let ext = DialplanExtension(name: "a<b>&\"c\"", conditions: [
            DialplanCondition(field: "${sip_h_X}", expression: "^<sip:(.*)@(.*)>$",
                              actions: [DialplanAction(application: "log", data: "INFO '\"<&>\"'")])])
        let result = DialplanRenderer.render(.context("x"), DialplanData(context: DialplanContext(name: "x", extensions: [ext])), compiler: pcre)
        let root = try parse(result.xml)
        let e = try XCTUnwrap(root.nodes(forXPath: "//extension").first as? XMLElement)
        XCTAssertEqual(attributes(e)["name"], "a<b>&\"c\"")
        let c = try XCTUnwrap(root.nodes(forXPath: "//condition").first as? XMLElement)
        XCTAssertEqual(attributes(c)["expression"], "^<sip:(.*)@(.*)>$")
        let a = try XCTUnwrap(root.nodes(forXPath: "//action").first as? XMLElement)
        XCTAssertEqual(attributes(a)["data"], "INFO '\"<&>\"'")
    }

    func testMissingContextIsNotFound() {
        let result = DialplanRenderer.render(.context("nope"), DialplanData(context: nil), compiler: pcre)
        XCTAssertEqual(result.xml, FreeSWITCHDocument.notFound)
        XCTAssertEqual(DialplanQuery.plan(LookupRequest(section: "dialplan", headers: ["Hunt-Context": "public"])), .context("public"))
        XCTAssertEqual(DialplanQuery.plan(LookupRequest(section: "dialplan")), .context("default"))
    }

    func testABadExtensionIsSkippedAndItsNeighboursServed() throws {
        let good1 = DialplanExtension(name: "one", position: 1, conditions: [
            DialplanCondition(field: "destination_number", expression: "^1$", actions: [DialplanAction(application: "answer")])])
        let bad = DialplanExtension(name: "broken", position: 2, conditions: [
            DialplanCondition(field: "destination_number", expression: "^(unclosed$", actions: [DialplanAction(application: "answer")])])
        let good2 = DialplanExtension(name: "three", position: 3, conditions: [
            DialplanCondition(field: "destination_number", expression: "^3$", actions: [DialplanAction(application: "hangup")])])
        let data = DialplanData(context: DialplanContext(name: "default", extensions: [good1, bad, good2]))
        let result = DialplanRenderer.render(.context("default"), data, compiler: pcre)
        XCTAssertEqual(result.skipped.map(\.name), ["broken"])
        XCTAssertTrue(result.skipped[0].problems[0].contains("does not compile"), "\(result.skipped)")
        let root = try parse(result.xml)
        XCTAssertEqual(try root.nodes(forXPath: "//extension/@name").map { $0.stringValue ?? "" }, ["one", "three"])
    }

    func testValidatorRejectsWhatFreeSWITCHCannotUse() {
        func problems(_ c: DialplanCondition) -> [String] {
            DialplanValidator.problems(DialplanExtension(name: "x", conditions: [c]), compiler: pcre)
        }
        XCTAssertEqual(problems(DialplanCondition(field: "destination_number", expression: "^1000$")), [])
        XCTAssertEqual(problems(DialplanCondition(time: [("wday", "1-5")])), [], "time-only condition")
        XCTAssertEqual(problems(DialplanCondition()), [], "absolute condition")
        XCTAssertEqual(problems(DialplanCondition(field: "destination_number", expression: "_1XXX")), [], "asterisk pattern")
        XCTAssertEqual(problems(DialplanCondition(field: "destination_number", expression: "/^abc$/i")), [])
        XCTAssertEqual(problems(DialplanCondition(field: "destination_number", expression: "^${x}(")), [],
                       "a channel variable may repair it at call time")
        XCTAssertEqual(problems(DialplanCondition(field: "destination_number")).count, 1)
        XCTAssertEqual(problems(DialplanCondition(expression: "^1$")).count, 1)
        XCTAssertEqual(problems(DialplanCondition(field: "destination_number", expression: "^([0-9]+$")).count, 1)
        XCTAssertEqual(problems(DialplanCondition(field: "destination_number", expression: "/^abc$")),
                       ["condition 0: expression \"/^abc$\" missing ending '/' delimiter"])
        XCTAssertEqual(problems(DialplanCondition(regex: "any", regexes: [DialplanRegex(field: "", expression: "[")])).count, 2)
        XCTAssertEqual(problems(DialplanCondition(field: "a", expression: "b", actions: [DialplanAction(application: "")])).count, 1)
        let nestedBad = DialplanCondition(field: "a", expression: "b", children: [DialplanCondition(field: "c", expression: "(")])
        XCTAssertEqual(problems(nestedBad).count, 1)
        // $${…} is expanded before the check: what FreeSWITCH will compile.
        let ext = DialplanExtension(name: "x", conditions: [DialplanCondition(field: "a", expression: "$${bad}")])
        XCTAssertEqual(DialplanValidator.problems(ext, compiler: pcre, expand: { _ in "(" }).count, 1)
    }

    func testCachingCompilerRemembersVerdicts() {
        let cache = CachingRegexCompiler(limit: 3)
        XCTAssertNil(cache.problem(pattern: "^a$", caseless: false, dotall: false))
        XCTAssertNotNil(cache.problem(pattern: "(", caseless: false, dotall: false))
        XCTAssertNotNil(cache.problem(pattern: "(", caseless: false, dotall: false))
        XCTAssertEqual(cache.count, 2)
        _ = cache.problem(pattern: "b", caseless: false, dotall: false)
        _ = cache.problem(pattern: "c", caseless: false, dotall: false)
        XCTAssertLessThanOrEqual(cache.count, 3, "bounded")
    }

    func testDialplanRowsAssembleInPositionOrder() {
        let rows: [SectionRow] = [
            SectionRow(kind: "X", id: 1, values: ["default"]),
            SectionRow(kind: "E", id: 11, parent: 1, position: 2, values: ["second", nil]),
            SectionRow(kind: "E", id: 10, parent: 1, position: 1, values: ["first", "true"]),
            SectionRow(kind: "C", id: 101, owner: 10, position: 2, values: ["f2", "e2"]),
            SectionRow(kind: "C", id: 100, owner: 10, position: 1, values: [nil, nil, "never", nil, "all"]
                       + [nil, nil, nil, nil, nil, nil, "1-5"]),
            SectionRow(kind: "C", id: 102, parent: 100, owner: 10, position: 1, values: ["f3", "e3"]),
            SectionRow(kind: "R", id: 1000, parent: 100, position: 2, values: ["rf2", "re2"]),
            SectionRow(kind: "R", id: 1001, parent: 100, position: 1, values: ["rf1", "re1"]),
            SectionRow(kind: "A", id: 2000, parent: 101, position: 2, values: ["action", "b", nil, nil]),
            SectionRow(kind: "A", id: 2001, parent: 101, position: 1, values: ["anti-action", "c", "d", "false"]),
            SectionRow(kind: "A", id: 2002, parent: 101, position: 1, values: ["action", "a", "x", nil]),
            SectionRow(kind: "V", id: 0, values: ["g", "v"]),
        ]
        let data = DialplanData(rows: rows)
        let context = data.context!
        XCTAssertEqual(context.extensions.map(\.name), ["first", "second"])
        let first = context.extensions[0]
        XCTAssertEqual(first.continueOn, "true")
        XCTAssertEqual(first.conditions.map(\.id), [100, 101])
        XCTAssertEqual(first.conditions[0].regex, "all")
        XCTAssertEqual(first.conditions[0].time.map(\.0), ["wday"])
        XCTAssertEqual(first.conditions[0].regexes.map(\.field), ["rf1", "rf2"])
        XCTAssertEqual(first.conditions[0].children.map(\.id), [102])
        XCTAssertEqual(first.conditions[1].actions.map(\.application), ["a", "b", "c"])
        XCTAssertEqual(data.globals, ["g": "v"])
        XCTAssertNil(DialplanData(rows: []).context)
    }

    // MARK: tree store

    func sofia() -> TreeElement {
        TreeElement("configuration", [("name", "sofia.conf"), ("description", "sofia Endpoint")], children: [
            TreeElement("global_settings", children: [TreeElement("param", [("name", "log-level"), ("value", "0")])]),
            TreeElement("profiles", children: [
                TreeElement("profile", [("name", "internal")], children: [
                    TreeElement("aliases", children: [TreeElement("alias", [("name", "default")])]),
                    TreeElement("gateways"),
                    TreeElement("domains", children: [TreeElement("domain", [("name", "all"), ("alias", "true"), ("parse", "false")])]),
                    TreeElement("settings", children: [TreeElement("param", [("name", "sip-port"), ("value", "$${internal_sip_port}")])]),
                ]),
                TreeElement("profile", [("name", "external")], children: [
                    TreeElement("gateways", children: [TreeElement("gateway", [("name", "carrier")])]),
                    TreeElement("settings", children: [TreeElement("param", [("name", "sip-port"), ("value", "5080")])]),
                ]),
            ]),
        ])
    }

    func testDocumentRendersExactlyWithOrderAndText() throws {
        let root = TreeElement("configuration", [("name", "x.conf"), ("z", "1"), ("a", "2")], children: [
            TreeElement("b"), TreeElement("a", text: "hello <world> & $${who}"), TreeElement("c", [("k", "v")]),
        ])
        let xml = TreeRenderer.render(section: "configuration", TreeData(name: "x.conf", root: root, globals: ["who": "you"]))
        XCTAssertTrue(xml.contains(#"<configuration name="x.conf" z="1" a="2">"#), xml)
        let parsed = try parse(xml)
        let conf = try XCTUnwrap(parsed.nodes(forXPath: "/document/section[@name='configuration']/configuration").first as? XMLElement)
        XCTAssertEqual(children(conf).map { $0.name ?? "" }, ["b", "a", "c"])
        XCTAssertEqual(children(conf)[1].stringValue, "hello <world> & you")
        XCTAssertEqual(TreeRenderer.render(section: "configuration", TreeData(name: nil, root: nil)), FreeSWITCHDocument.notFound)
    }

    func testSofiaNarrowingKeepsOneProfileAndTheGlobalSettings() throws {
        let q = try XCTUnwrap(ConfigurationQuery.plan(LookupRequest(section: "configuration", tagName: "configuration", keyName: "name",
                                                                   keyValue: "sofia.conf", headers: ["profile": "INTERNAL", "reconfig": "true"])))
        XCTAssertEqual(q.narrowing, .children(container: "profiles", child: "profile", name: "INTERNAL"))
        let xml = TreeRenderer.render(section: "configuration", TreeData(name: "sofia.conf", root: sofia(), globals: ["internal_sip_port": "5060"]),
                                      narrowing: q.narrowing)
        let parsed = try parse(xml)
        let conf = try XCTUnwrap(parsed.nodes(forXPath: "//configuration[@name='sofia.conf']").first as? XMLElement)
        XCTAssertEqual(children(conf).map { $0.name ?? "" }, ["global_settings", "profiles"])
        let profiles = try parsed.nodes(forXPath: "//profiles/profile/@name").map { $0.stringValue ?? "" }
        XCTAssertEqual(profiles, ["internal"])
        XCTAssertEqual(try parsed.nodes(forXPath: "//profile/*").map { $0.name ?? "" }, ["aliases", "gateways", "domains", "settings"])
        XCTAssertEqual(try parsed.nodes(forXPath: "//param[@name='sip-port']/@value").first?.stringValue, "5060")

        let none = TreeNarrowing.children(container: "profiles", child: "profile", name: "nope").apply(sofia())
        XCTAssertEqual(none.children[1].children, [], "a missing profile leaves <profiles/> empty: mod_sofia says No Such Profile")
        XCTAssertEqual(ConfigurationQuery.plan(LookupRequest(section: "configuration", keyValue: "sofia.conf"))?.narrowing, .whole)
    }

    func testIvrNarrowingKeepsTheMenuAndItsSubmenus() {
        let menus = TreeElement("configuration", [("name", "ivr.conf")], children: [
            TreeElement("menus", children: [
                TreeElement("menu", [("name", "demo_ivr")], children: [
                    TreeElement("entry", [("action", "menu-exec-app"), ("digits", "1"), ("param", "bridge x")]),
                    TreeElement("entry", [("action", "menu-sub"), ("digits", "6"), ("param", "demo_ivr_submenu")]),
                ]),
                TreeElement("menu", [("name", "demo_ivr_submenu")], children: [
                    TreeElement("entry", [("action", "menu-sub"), ("digits", "1"), ("param", "deeper")]),
                    TreeElement("entry", [("action", "menu-top"), ("digits", "*")]),
                ]),
                TreeElement("menu", [("name", "deeper")], children: [
                    TreeElement("entry", [("action", "menu-sub"), ("digits", "1"), ("param", "demo_ivr")]),
                ]),
                TreeElement("menu", [("name", "unrelated")]),
            ]),
        ])
        let q = ConfigurationQuery.plan(LookupRequest(section: "configuration", keyValue: "ivr.conf", headers: ["Menu-Name": "demo_ivr"]))
        XCTAssertEqual(q?.narrowing, .ivrMenu("demo_ivr"))
        let out = q!.narrowing.apply(menus)
        XCTAssertEqual(out.children[0].children.map { $0.attribute("name") ?? "" }, ["demo_ivr", "demo_ivr_submenu", "deeper"])
    }

    func testCallcenterAndConferenceNarrowing() {
        let cc = ConfigurationQuery.plan(LookupRequest(section: "configuration", keyValue: "callcenter.conf", headers: ["CC-Queue": "support@default"]))
        XCTAssertEqual(cc?.narrowing, .children(container: "queues", child: "queue", name: "support@default"))
        let doc = TreeElement("configuration", children: [
            TreeElement("settings"),
            TreeElement("queues", children: [TreeElement("queue", [("name", "support@default")]), TreeElement("queue", [("name", "sales@default")])]),
            TreeElement("agents", children: [TreeElement("agent", [("name", "1000@default")])]),
            TreeElement("tiers", children: [TreeElement("tier", [("agent", "1000@default"), ("queue", "sales@default")])]),
        ])
        let out = cc!.narrowing.apply(doc)
        XCTAssertEqual(out.children[1].children.map { $0.attribute("name") ?? "" }, ["support@default"])
        XCTAssertEqual(out.children[2], doc.children[2])
        XCTAssertEqual(out.children[3], doc.children[3])
        let conf = ConfigurationQuery.plan(LookupRequest(section: "configuration", keyValue: "conference.conf",
                                                         headers: ["conf_name": "3000", "profile_name": "wideband"]))
        XCTAssertEqual(conf?.narrowing, .children(container: "profiles", child: "profile", name: "wideband"))
        XCTAssertEqual(ConfigurationQuery.plan(LookupRequest(section: "configuration", keyValue: "acl.conf", hasParams: false)),
                       ConfigurationQuery(document: "acl.conf"))
        XCTAssertNil(ConfigurationQuery.plan(LookupRequest(section: "configuration", keyValue: "")))
    }

    func testLanguagesAndPhrases() throws {
        let en = TreeElement("language", [("name", "en"), ("say-module", "en"), ("sound-prefix", "$${sound_prefix}")], children: [
            TreeElement("phrases", children: [
                TreeElement("macros", [("name", "demo")], children: [
                    TreeElement("macro", [("name", "demo_ivr_main_menu")], children: [
                        TreeElement("input", [("pattern", "(.*)")], children: [
                            TreeElement("match", children: [TreeElement("action", [("function", "play-file"), ("data", "ivr/ivr-welcome.wav")])]),
                            TreeElement("nomatch", children: [TreeElement("action", [("function", "break")])]),
                        ]),
                    ]),
                ]),
            ]),
        ])
        let data = TreeData(name: "en", root: en, globals: ["sound_prefix": "/snd/en/us/callie"])
        let q = try XCTUnwrap(LanguageQuery.plan(LookupRequest(section: "languages", headers: ["lang": "en-US", "macro_name": "x"]), phrases: false))
        XCTAssertEqual(q.language, "en-US")
        XCTAssertEqual(q.fallback, "en")
        XCTAssertNil(LanguageQuery.plan(LookupRequest(section: "languages"), phrases: false))

        let languages = try parse(TreeRenderer.render(section: "languages", data))
        let lang = try XCTUnwrap(languages.nodes(forXPath: "/document/section[@name='languages']/language[@name='en']").first as? XMLElement)
        XCTAssertEqual(attributes(lang)["sound-prefix"], "/snd/en/us/callie")
        XCTAssertEqual(try lang.nodes(forXPath: "phrases/macros/macro/input/match/action/@data").first?.stringValue, "ivr/ivr-welcome.wav")
        XCTAssertEqual(try lang.nodes(forXPath: "phrases/macros/macro/input/nomatch/action/@function").first?.stringValue, "break")

        let phrases = try parse(TreeRenderer.renderPhrases(data))
        XCTAssertEqual(try phrases.nodes(forXPath: "/document/section[@name='phrases']/macros/language[@name='en']/macro/@name").first?.stringValue,
                       "demo_ivr_main_menu")
    }

    func testTreeRowsAssemble() {
        let rows: [SectionRow] = [
            SectionRow(kind: "D", id: 1, values: ["x.conf"]),
            SectionRow(kind: "E", id: 10, position: 1, values: ["configuration", nil]),
            SectionRow(kind: "E", id: 12, parent: 10, position: 2, values: ["b", "text"]),
            SectionRow(kind: "E", id: 11, parent: 10, position: 1, values: ["a", nil]),
            SectionRow(kind: "A", id: 10, parent: 10, position: 2, values: ["second", "2"]),
            SectionRow(kind: "A", id: 10, parent: 10, position: 1, values: ["name", "x.conf"]),
            SectionRow(kind: "V", id: 0, values: ["n", "v"]),
        ]
        let data = TreeData(rows: rows)
        XCTAssertEqual(data.name, "x.conf")
        XCTAssertEqual(data.root, TreeElement("configuration", [("name", "x.conf"), ("second", "2")],
                                              children: [TreeElement("a"), TreeElement("b", text: "text")]))
        XCTAssertEqual(data.globals, ["n": "v"])
    }
}
