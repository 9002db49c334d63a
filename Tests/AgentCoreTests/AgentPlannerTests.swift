import FSConfAgentCore
import XCTest

/// The directory as a table, for planning without a database.
final class FakeFacts: DirectoryFacts {
    var domains: [Int64: DomainFact] = [:]
    var users: [Int64: UserFact] = [:]
    var members: [Int64: Set<Int64>] = [:]   // group → pointer members
    var gateways: [Int64: GatewayFact] = [:]
    var cidr: Set<Int64> = []
    var referenced: Set<String> = []

    func domain(_ id: Int64) -> DomainFact? { domains[id] }
    func user(_ id: Int64) -> UserFact? { users[id] }
    func users(inDomain id: Int64) -> [UserFact] { users.values.filter { $0.domain == id }.sorted { $0.id < $1.id } }
    func users(inGroup id: Int64) -> [UserFact] {
        users.values.filter { $0.homeGroup == id || (members[id] ?? []).contains($0.id) }.sorted { $0.id < $1.id }
    }
    func gateway(_ id: Int64) -> GatewayFact? { gateways[id] }
    func hasCIDR(user id: Int64) -> Bool { cidr.contains(id) }
    func directoryReferences(global name: String) -> Bool { referenced.contains(name) }
}

/// Builds stored documents (ids assigned in order) and change rows against them.
struct Docs {
    var state = ConfigState()
    var nextID: Int64 = 1
    var paths: [String: Int64] = [:]

    enum Node { case el(String, [(String, String)], [Node]) }

    mutating func add(_ name: String, _ root: Node) {
        let doc = nextID; nextID += 1
        state.addDocument(id: doc, section: "configuration", name: name)
        add(root, doc: doc, parent: nil, position: 1, path: name)
    }

    private mutating func add(_ node: Node, doc: Int64, parent: Int64?, position: Int64, path: String) {
        guard case .el(let tag, let attrs, let kids) = node else { return }
        let id = nextID; nextID += 1
        let name = attrs.first { $0.0 == "name" }?.1
        let p = path + "/" + tag + (tag == "configuration" ? "" : name.map { "[\($0)]" } ?? "")
        paths[p] = id
        state.addElement(id: id, document: doc, parent: parent, position: position, tag: tag, text: nil)
        for (i, a) in attrs.enumerated() { state.addAttribute(element: id, name: a.0, value: a.1, position: Int64(i + 1)) }
        for (i, k) in kids.enumerated() { add(k, doc: doc, parent: id, position: Int64(i + 1), path: p) }
    }

    /// An update of attribute `name` of the element at `path`.
    func setAttribute(_ path: String, _ name: String, from old: String, to new: String) -> ChangeRow {
        let e = AgentJSON.number(String(paths[path]!))
        return ChangeRow(table: "attributes", operation: .update,
                         old: ["element_id": e, "name": .string(name), "value": .string(old), "position": .number("2")],
                         new: ["element_id": e, "name": .string(name), "value": .string(new), "position": .number("2")])
    }

    /// A new element (and its attributes) under `parent`.
    mutating func insert(under parent: String, tag: String, attributes: [(String, String)], position: Int64 = 99) -> [ChangeRow] {
        let id = nextID; nextID += 1
        let parentID = paths[parent]!
        let doc = state.elements[parentID]!.document
        var rows = [ChangeRow(table: "elements", operation: .insert, new: [
            "id": .number(String(id)), "document_id": .number(String(doc)), "parent_id": .number(String(parentID)),
            "position": .number(String(position)), "tag": .string(tag), "text": .null])]
        for (i, a) in attributes.enumerated() {
            rows.append(ChangeRow(table: "attributes", operation: .insert, new: [
                "element_id": .number(String(id)), "name": .string(a.0), "value": .string(a.1), "position": .number(String(i + 1))]))
        }
        return rows
    }

    /// Deleting the element at `path` (its attributes first, as the cascade records them).
    func delete(_ path: String) -> [ChangeRow] {
        let id = paths[path]!
        let e = state.elements[id]!
        var rows: [ChangeRow] = []
        for (k, a) in state.attributes where k.element == id {
            rows.append(ChangeRow(table: "attributes", operation: .delete, old: [
                "element_id": .number(String(id)), "name": .string(k.name), "value": .string(a.value), "position": .number(String(a.position))]))
        }
        rows.append(ChangeRow(table: "elements", operation: .delete, old: [
            "id": .number(String(id)), "document_id": .number(String(e.document)),
            "parent_id": e.parent.map { .number(String($0)) } ?? .null, "position": .number(String(e.position)),
            "tag": .string(e.tag), "text": .null]))
        return rows
    }
}

func row(_ table: String, _ op: ChangeRow.Operation, old: [String: AgentJSON]? = nil, new: [String: AgentJSON]? = nil) -> ChangeRow {
    ChangeRow(table: table, operation: op, old: old, new: new)
}
func n(_ v: Int64) -> AgentJSON { .number(String(v)) }
func s(_ v: String) -> AgentJSON { .string(v) }

final class AgentPlannerTests: XCTestCase {
    var facts = FakeFacts()
    var docs = Docs()

    override func setUp() {
        facts = FakeFacts()
        facts.domains[1] = DomainFact(id: 1, name: "example.com", cacheable: "86400000")
        facts.domains[2] = DomainFact(id: 2, name: "other.test")          // users not cacheable
        facts.domains[3] = DomainFact(id: 3, name: "$${domain}", cacheable: "true")
        facts.users[10] = UserFact(id: 10, domain: 1, userID: "1000", alias: "7000", homeGroup: 100)
        facts.users[11] = UserFact(id: 11, domain: 1, userID: "1001", homeGroup: 100)
        facts.users[12] = UserFact(id: 12, domain: 1, userID: "brian", cacheable: "false")
        facts.users[20] = UserFact(id: 20, domain: 2, userID: "alice")
        facts.users[21] = UserFact(id: 21, domain: 2, userID: "carol", cacheable: "60000")
        facts.users[30] = UserFact(id: 30, domain: 3, userID: "2000")
        facts.members[101] = [11]
        facts.gateways[500] = GatewayFact(id: 500, domain: 1, user: 10, name: "provider")
        facts.gateways[501] = GatewayFact(id: 501, domain: 2, user: 20, name: "elsewhere")
        facts.cidr = [12]

        docs = Docs()
        docs.add("sofia.conf", .el("configuration", [("name", "sofia.conf")], [
            .el("global_settings", [], [.el("param", [("name", "log-level"), ("value", "0")], [])]),
            .el("profiles", [], [
                .el("profile", [("name", "internal")], [
                    .el("domains", [], [.el("domain", [("name", "all"), ("alias", "true"), ("parse", "false")], [])]),
                    .el("settings", [], [.el("param", [("name", "sip-port"), ("value", "$${internal_sip_port}")], [])]),
                ]),
                .el("profile", [("name", "external")], [
                    .el("domains", [], [.el("domain", [("name", "example.com"), ("parse", "true")], [])]),
                    .el("gateways", [], [.el("gateway", [("name", "carrier")], [
                        .el("param", [("name", "proxy"), ("value", "sip.carrier.test")], [])])]),
                    .el("settings", [], [.el("param", [("name", "sip-port"), ("value", "5080")], [])]),
                ]),
            ]),
        ]))
        docs.add("acl.conf", .el("configuration", [("name", "acl.conf")], [
            .el("network-lists", [], [.el("list", [("name", "lan"), ("default", "deny")], [])])]))
        docs.add("callcenter.conf", .el("configuration", [("name", "callcenter.conf")], [
            .el("settings", [], []),
            .el("queues", [], [.el("queue", [("name", "support@default")], [
                .el("param", [("name", "strategy"), ("value", "longest-idle-agent")], [])])]),
        ]))
        docs.add("ivr.conf", .el("configuration", [("name", "ivr.conf")], [
            .el("menus", [], [.el("menu", [("name", "main"), ("greet-long", "a.wav")], [])])]))
        docs.add("local_stream.conf", .el("configuration", [("name", "local_stream.conf")], [
            .el("directory", [("name", "default"), ("path", "/music/8000")], [])]))
        docs.add("voicemail.conf", .el("configuration", [("name", "voicemail.conf")], [
            .el("profiles", [], [.el("profile", [("name", "default")], [])])]))
        docs.state.globals = ["internal_sip_port": "5060", "domain": "pbx.test", "default_password": "1234"]
    }

    func plan(_ rows: [ChangeRow], node: [String: String] = [:], limit: Int = 200) -> AgentPlan {
        let set = ChangeSet(seq: 1, id: 1, rows: rows)
        var after = docs.state
        for r in rows { after.apply(r) }
        let before = after.before(set)
        XCTAssertTrue(before == docs.state, "reverting the rows gives the state before")
        return AgentPlanner(facts: facts, node: { node[$0] }, flushAllAbove: limit).plan(set, before: before, after: after)
    }

    func userSetting(_ user: Int64, _ name: String, _ old: String, _ new: String, kind: String = "param") -> ChangeRow {
        row("user_settings", .update,
            old: ["id": n(1), "user_id": n(user), "kind": s(kind), "name": s(name), "value": s(old)],
            new: ["id": n(1), "user_id": n(user), "kind": s(kind), "name": s(name), "value": s(new)])
    }

    // MARK: Directory

    func testPasswordOfCacheableUserFlushesItByIdAndAlias() {
        let p = plan([userSetting(10, "password", "1234", "s3cret")])
        XCTAssertEqual(p.commands, ["xml_flush_cache id 1000 example.com", "xml_flush_cache number-alias 7000 example.com"])
        XCTAssertEqual(p.reports, [])
    }

    func testUserNotCacheableNeedsNothing() {
        XCTAssertEqual(plan([userSetting(20, "password", "a", "b")]).commands, [])
        // cacheable="false" is not rendered: FreeSWITCH does not cache brian.
        XCTAssertEqual(plan([userSetting(12, "vm-password", "1", "2")]).commands, [])
    }

    func testUserCacheableOnItsOwnInAnUncachedDomain() {
        XCTAssertEqual(plan([userSetting(21, "password", "a", "b")]).commands, ["xml_flush_cache id carol other.test"])
    }

    func testDomainNameIsExpandedFromGlobalsThenTheNode() {
        XCTAssertEqual(plan([userSetting(30, "password", "a", "b")]).commands, ["xml_flush_cache id 2000 pbx.test"])
        docs.state.globals["domain"] = "$${local_ip_v4}"
        XCTAssertEqual(plan([userSetting(30, "password", "a", "b")], node: ["local_ip_v4": "192.0.2.7"]).commands,
                       ["xml_flush_cache id 2000 192.0.2.7"])
    }

    func testRenameAndAliasChangeFlushOldAndNewKeys() {
        let old: [String: AgentJSON] = ["id": n(10), "domain_id": n(1), "user_id": s("1000"), "number_alias": s("7000"), "cacheable": .null, "enabled": .bool(true)]
        var new = old
        new["user_id"] = s("1100"); new["number_alias"] = s("7100")
        facts.users[10]?.userID = "1100"; facts.users[10]?.alias = "7100"
        XCTAssertEqual(plan([row("users", .update, old: old, new: new)]).commands, [
            "xml_flush_cache id 1000 example.com", "xml_flush_cache number-alias 7000 example.com",
            "xml_flush_cache id 1100 example.com", "xml_flush_cache number-alias 7100 example.com"])
    }

    func testDeletedUserIsFlushedFromTheRowsAlone() {
        let old: [String: AgentJSON] = ["id": n(40), "domain_id": n(1), "user_id": s("1040"), "number_alias": .null, "cacheable": .null]
        let setting = row("user_settings", .delete, old: ["id": n(9), "user_id": n(40), "kind": s("param"), "name": s("password"), "value": s("x")])
        XCTAssertEqual(plan([setting, row("users", .delete, old: old)]).commands, ["xml_flush_cache id 1040 example.com"])
    }

    func testCidrChangesReloadTheACL() {
        XCTAssertEqual(plan([userSetting(12, "cidr", "192.0.2.0/24", "198.51.100.0/24", kind: "attribute")]).commands, ["reloadacl"])
        // A cidr user renamed: its network-list entry changes.
        let old: [String: AgentJSON] = ["id": n(12), "domain_id": n(1), "user_id": s("brian"), "cacheable": s("false"), "enabled": .bool(true)]
        var new = old; new["enabled"] = .bool(false)
        XCTAssertEqual(plan([row("users", .update, old: old, new: new)]).commands, ["reloadacl"])
        // Other settings of a cidr user do not touch the ACL.
        XCTAssertEqual(plan([userSetting(12, "password", "a", "b")]).commands, [])
    }

    func testDomainSettingsFlushEveryCacheableUserOfTheDomain() {
        let r = row("domain_settings", .insert, new: ["id": n(1), "domain_id": n(1), "kind": s("variable"), "name": s("x"), "value": s("1")])
        XCTAssertEqual(plan([r]).commands, ["xml_flush_cache id 1000 example.com", "xml_flush_cache number-alias 7000 example.com",
                                            "xml_flush_cache id 1001 example.com"])
        XCTAssertEqual(plan([r], limit: 2).commands, ["xml_flush_cache"], "beyond the limit: one flush of everything")
        let other = row("domain_settings", .insert, new: ["id": n(2), "domain_id": n(2), "kind": s("variable"), "name": s("x"), "value": s("1")])
        XCTAssertEqual(plan([other]).commands, ["xml_flush_cache id carol other.test"])
    }

    func testDomainMadeCacheableOrRenamed() {
        let old: [String: AgentJSON] = ["id": n(2), "name": s("other.test"), "cacheable": .null]
        var new = old; new["cacheable"] = s("true")
        facts.domains[2]?.cacheable = "true"
        XCTAssertEqual(plan([row("domains", .update, old: old, new: new)]).commands,
                       ["xml_flush_cache id alice other.test", "xml_flush_cache id carol other.test"])
    }

    func testGroupsAndMembership() {
        let gs = row("group_settings", .update,
                     old: ["id": n(1), "group_id": n(101), "kind": s("variable"), "name": s("callgroup"), "value": s("a")],
                     new: ["id": n(1), "group_id": n(101), "kind": s("variable"), "name": s("callgroup"), "value": s("b")])
        XCTAssertEqual(plan([gs]).commands, ["xml_flush_cache id 1001 example.com"], "the pointer member")
        let home = row("group_settings", .insert, new: ["id": n(2), "group_id": n(100), "kind": s("param"), "name": s("p"), "value": s("1")])
        XCTAssertEqual(plan([home]).commands, ["xml_flush_cache id 1000 example.com", "xml_flush_cache number-alias 7000 example.com",
                                               "xml_flush_cache id 1001 example.com"])
        let member = row("group_members", .insert, new: ["group_id": n(101), "user_id": n(10), "position": n(3)])
        XCTAssertEqual(plan([member]).commands, ["xml_flush_cache id 1000 example.com", "xml_flush_cache number-alias 7000 example.com"])
        let renamed = row("groups", .insert, new: ["id": n(102), "domain_id": n(1), "name": s("new")])
        XCTAssertEqual(plan([renamed]).commands, [], "an empty new group changes no user")
    }

    // MARK: Gateways on directory users (loaded by profiles that parse the domain)

    func gatewayRow(_ op: ChangeRow.Operation, id: Int64 = 500, domain: Int64 = 1, name: String = "provider", oldName: String? = nil) -> ChangeRow {
        let r: [String: AgentJSON] = ["id": n(id), "domain_id": n(domain), "user_id": n(10), "name": s(name)]
        var o = r
        if let oldName { o["name"] = s(oldName) }
        switch op {
        case .insert: return row("gateways", .insert, new: r)
        case .delete: return row("gateways", .delete, old: r)
        default: return row("gateways", .update, old: o, new: r)
        }
    }

    func testGatewayAddedChangedRemoved() {
        XCTAssertEqual(plan([gatewayRow(.insert, id: 502, name: "newgw"),
                             row("gateway_settings", .insert, new: ["id": n(1), "gateway_id": n(502), "kind": s("param"), "name": s("proxy"), "value": s("x")])]).commands,
                       ["sofia profile external rescan"])
        let setting = row("gateway_settings", .update,
                          old: ["id": n(1), "gateway_id": n(500), "kind": s("param"), "name": s("proxy"), "value": s("a")],
                          new: ["id": n(1), "gateway_id": n(500), "kind": s("param"), "name": s("proxy"), "value": s("b")])
        XCTAssertEqual(plan([setting]).commands, ["sofia profile external killgw provider", "sofia profile external rescan"])
        XCTAssertEqual(plan([gatewayRow(.delete)]).commands, ["sofia profile external killgw provider"])
        facts.gateways[500]?.name = "renamed"
        XCTAssertEqual(plan([gatewayRow(.update, name: "renamed", oldName: "provider")]).commands,
                       ["sofia profile external killgw provider", "sofia profile external rescan"])
        XCTAssertEqual(plan([gatewayRow(.insert, id: 503, domain: 2, name: "x")]).commands, [], "no profile parses other.test")
    }

    // MARK: sofia.conf

    func testSofiaProfileGateways() {
        let changed = docs.setAttribute("sofia.conf/configuration/profiles/profile[external]/gateways/gateway[carrier]/param[proxy]",
                                        "value", from: "sip.carrier.test", to: "sip2.carrier.test")
        XCTAssertEqual(plan([changed]).commands, ["sofia profile external killgw carrier", "sofia profile external rescan"])
        var d = docs
        let added = d.insert(under: "sofia.conf/configuration/profiles/profile[external]/gateways", tag: "gateway", attributes: [("name", "second")])
        docs = d
        XCTAssertEqual(plan(added).commands, ["sofia profile external rescan"])
        let removed = docs.delete("sofia.conf/configuration/profiles/profile[external]/gateways/gateway[carrier]/param[proxy]")
            + docs.delete("sofia.conf/configuration/profiles/profile[external]/gateways/gateway[carrier]")
        XCTAssertEqual(plan(removed).commands, ["sofia profile external killgw carrier"])
    }

    func testSofiaProfileSettingNeedsARestartAndIsReported() {
        let r = docs.setAttribute("sofia.conf/configuration/profiles/profile[external]/settings/param[sip-port]", "value", from: "5080", to: "5090")
        let p = plan([r])
        XCTAssertEqual(p.actions, [.restartProfile("external")])
        XCTAssertEqual(p.reports, ["sofia profile external: settings changed; they apply when the profile restarts"])
    }

    func testSofiaGlobalSettingsAndNewProfile() {
        let g = docs.setAttribute("sofia.conf/configuration/global_settings/param[log-level]", "value", from: "0", to: "9")
        let p = plan([g])
        XCTAssertEqual(p.commands, [])
        XCTAssertEqual(p.reports.count, 1)
        XCTAssertTrue(p.reports[0].hasPrefix("sofia.conf <global_settings> changed"))
        var d = docs
        let added = d.insert(under: "sofia.conf/configuration/profiles", tag: "profile", attributes: [("name", "wss")])
        docs = d
        XCTAssertEqual(plan(added).commands, ["sofia profile wss start"])
    }

    func testGlobalUsedInAProfileSettingRestartsIt() {
        let r = row("global_variables", .update, old: ["name": s("internal_sip_port"), "value": s("5060")],
                    new: ["name": s("internal_sip_port"), "value": s("5070")])
        let p = plan([r])
        XCTAssertEqual(p.actions, [.restartProfile("internal")], "the only use of $${internal_sip_port}")
    }

    func testGlobalUsedInTheDirectoryFlushesEverything() {
        facts.referenced = ["default_password"]
        let r = row("global_variables", .update, old: ["name": s("default_password"), "value": s("1234")],
                    new: ["name": s("default_password"), "value": s("4321")])
        let p = plan([r])
        XCTAssertEqual(p.commands, ["xml_flush_cache"])
        XCTAssertEqual(p.reports, ["global $${default_password} changed: every cached user flushed"])
        facts.referenced = []
        XCTAssertEqual(plan([r]).commands, [], "a global nothing uses")
    }

    // MARK: Other modules

    func testACLConf() {
        XCTAssertEqual(plan([docs.setAttribute("acl.conf/configuration/network-lists/list[lan]", "default", from: "deny", to: "allow")]).commands,
                       ["reloadacl"])
    }

    func testCallcenterQueueReloadsOnlyThatQueue() {
        let r = docs.setAttribute("callcenter.conf/configuration/queues/queue[support@default]/param[strategy]", "value",
                                  from: "longest-idle-agent", to: "ring-all")
        XCTAssertEqual(plan([r]).commands, ["callcenter_config queue reload support@default"])
        var d = docs
        let added = d.insert(under: "callcenter.conf/configuration/queues", tag: "queue", attributes: [("name", "sales@default")])
        docs = d
        XCTAssertEqual(plan(added).commands, ["callcenter_config queue load sales@default"])
        let removed = docs.delete("callcenter.conf/configuration/queues/queue[support@default]/param[strategy]")
            + docs.delete("callcenter.conf/configuration/queues/queue[support@default]")
        XCTAssertEqual(plan(removed).commands, ["callcenter_config queue unload support@default"])
        var e = docs
        let setting = e.insert(under: "callcenter.conf/configuration/settings", tag: "param", attributes: [("name", "odbc-dsn"), ("value", "x")])
        docs = e
        let p = plan(setting)
        XCTAssertEqual(p.commands, [])
        XCTAssertEqual(p.reports.count, 1)
    }

    func testIVRIsReadAtEachUse() {
        let p = plan([docs.setAttribute("ivr.conf/configuration/menus/menu[main]", "greet-long", from: "a.wav", to: "b.wav")])
        XCTAssertEqual(p.commands, [])
        XCTAssertEqual(p.reports, [])
    }

    func testLocalStreamAndOtherModules() {
        var d = docs
        let added = d.insert(under: "local_stream.conf/configuration", tag: "directory", attributes: [("name", "moh16k"), ("path", "/music/16000")])
        docs = d
        XCTAssertEqual(plan(added).commands, ["start_local_stream moh16k"])
        let changed = plan([docs.setAttribute("local_stream.conf/configuration/directory[default]", "path", from: "/music/8000", to: "/m")])
        XCTAssertEqual(changed.commands, [])
        XCTAssertEqual(changed.reports.count, 1)
        var e = docs
        let vm = e.insert(under: "voicemail.conf/configuration/profiles/profile[default]", tag: "param", attributes: [("name", "x"), ("value", "1")])
        docs = e
        let p = plan(vm)
        XCTAssertEqual(p.commands, [])
        XCTAssertEqual(p.reports, ["voicemail.conf changed: mod_voicemail reads it when it loads; `reload mod_voicemail` applies it"])
    }

    func testDialplanAndLanguagesNeedNothing() {
        let dp = row("dialplan_actions", .update, old: ["id": n(1), "condition_id": n(2), "data": s("a")], new: ["id": n(1), "condition_id": n(2), "data": s("b")])
        let lang = row("documents", .insert, new: ["id": n(900), "section": s("languages"), "name": s("fr")])
        let p = plan([dp, lang])
        XCTAssertEqual(p.actions, [])
        XCTAssertEqual(p.reports, [])
    }

    func testOrderAndDeduplicationAcrossKinds() {
        let p = plan([userSetting(10, "password", "a", "b"), userSetting(12, "cidr", "1", "2", kind: "attribute"),
                      userSetting(10, "vm-password", "a", "b"),
                      docs.setAttribute("acl.conf/configuration/network-lists/list[lan]", "default", from: "deny", to: "allow")])
        XCTAssertEqual(p.commands, ["reloadacl", "xml_flush_cache id 1000 example.com", "xml_flush_cache number-alias 7000 example.com"])
    }

    // MARK: Reconcile and parsing

    func testReconcileGateways() {
        let xml = """
            <?xml version="1.0" encoding="ISO-8859-1"?>
            <gateways>
              <gateway>
                <name>carrier</name>
                <profile>external</profile>
              </gateway>
              <gateway>
                <name>stale</name>
                <profile>external</profile>
              </gateway>
              <gateway>
                <name>static</name>
                <profile>unmanaged</profile>
              </gateway>
            </gateways>
            """
        let running = AgentReconcile.gateways(fromXMLStatus: xml)
        XCTAssertEqual(running.map { "\($0.profile)::\($0.name)" }, ["external::carrier", "external::stale", "unmanaged::static"])
        let sofia = SofiaModel(docs.state.tree("sofia.conf")!, expand: { $0 })
        let actions = AgentReconcile.gatewayActions(running: running, sofia: sofia, expected: ["external": ["carrier", "provider"]])
        XCTAssertEqual(actions.map(\.description), ["sofia profile external killgw stale", "sofia profile external rescan"])
        XCTAssertEqual(AgentReconcile.gatewayActions(running: [("external", "carrier"), ("external", "provider")], sofia: sofia,
                                                     expected: ["external": ["carrier", "provider"]]), [])
    }

    func testProfilesInUse() {
        let xml = """
            <profiles>
            <profile>
            <name>internal</name>
            <type>profile</type>
            <data>sip:mod_sofia@192.0.2.1:5060</data>
            <state>RUNNING (3)</state>
            </profile>
            <alias>
            <name>192.0.2.1</name>
            <type>alias</type>
            <data>internal</data>
            <state>ALIASED</state>
            </alias>
            <profile>
            <name>external</name>
            <type>profile</type>
            <data>sip:mod_sofia@192.0.2.1:5080</data>
            <state>RUNNING (0)</state>
            </profile>
            </profiles>
            """
        XCTAssertEqual(AgentReconcile.profilesInUse(fromXMLStatus: xml), ["internal": 3, "external": 0])
    }

    func testJSON() {
        let v = AgentJSON.parse(#"{"a":[1,"x\"y\u00e9\ud83d\ude00",null,true],"b":{"c":-2.5e3}}"#)
        XCTAssertEqual(v?["a"]?.array?[1].text, "x\"yé😀")
        XCTAssertEqual(v?["a"]?.array?[0].int, 1)
        XCTAssertEqual(v?["b"]?["c"]?.text, "-2.5e3")
        XCTAssertNil(AgentJSON.parse("{\"a\":}"))
        XCTAssertNil(AgentJSON.parse("[1] x"))
        let r = ChangeRow(table: "users", operation: "update", oldRow: #"{"id": 5, "user_id": "1000"}"#, newRow: nil, keys: "[]")
        XCTAssertEqual(r?.id(), 5)
    }
}
