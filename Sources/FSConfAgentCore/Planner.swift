import FSConfAdminCore
import FSConfCore

public struct DomainFact: Equatable, Sendable {
    public var id: Int64; public var name: String; public var cacheable: String?
    public init(id: Int64, name: String, cacheable: String? = nil) { self.id = id; self.name = name; self.cacheable = cacheable }
}

public struct UserFact: Equatable, Sendable {
    public var id: Int64; public var domain: Int64; public var userID: String; public var alias: String?
    public var cacheable: String?; public var homeGroup: Int64?; public var enabled: Bool
    public init(id: Int64, domain: Int64, userID: String, alias: String? = nil, cacheable: String? = nil,
                homeGroup: Int64? = nil, enabled: Bool = true) {
        self.id = id; self.domain = domain; self.userID = userID; self.alias = alias
        self.cacheable = cacheable; self.homeGroup = homeGroup; self.enabled = enabled
    }
}

public struct GatewayFact: Equatable, Sendable {
    public var id: Int64; public var domain: Int64; public var user: Int64?; public var name: String
    public init(id: Int64, domain: Int64, user: Int64? = nil, name: String) {
        self.id = id; self.domain = domain; self.user = user; self.name = name
    }
}

/// The directory as it is now, asked lazily (the database, or a table in tests).
public protocol DirectoryFacts {
    func domain(_ id: Int64) -> DomainFact?
    func user(_ id: Int64) -> UserFact?
    func users(inDomain id: Int64) -> [UserFact]
    /// Users defined in the group and users that are pointer members of it.
    func users(inGroup id: Int64) -> [UserFact]
    func gateway(_ id: Int64) -> GatewayFact?
    func hasCIDR(user id: Int64) -> Bool
    /// Whether any directory value or name holds `$${name}`.
    func directoryReferences(global name: String) -> Bool
}

/// Turns a change set into the smallest set of FreeSWITCH commands (docs/agent.md).
/// Pure: the facts, the configuration before/after and the node's globals are given.
public struct AgentPlanner {
    public var facts: DirectoryFacts
    /// The node's own global variables (FreeSWITCH's `global_getvar`), for `$${}`
    /// names the database does not set.
    public var node: (String) -> String?
    /// Above this many per-user flushes for one change set, one `xml_flush_cache`
    /// (everything) is cheaper than the commands.
    public var flushAllAbove: Int

    public init(facts: DirectoryFacts, node: @escaping (String) -> String? = { _ in nil }, flushAllAbove: Int = 200) {
        self.facts = facts; self.node = node; self.flushAllAbove = flushAllAbove
    }

    /// Modules whose configuration is read again at each use: nothing to do.
    static let readPerUse: Set<String> = ["ivr.conf", "directory.conf"]
    /// Read only at start-up.
    static let startupOnly: Set<String> = ["switch.conf", "modules.conf", "pre_load_modules.conf", "post_load_modules.conf",
                                           "post_load_switch.conf", "lua.conf", "xml_curl.conf"]

    /// The plan of one change set, in named steps (`PlanRun`): directory rows,
    /// truncations, globals, sofia.conf, directory gateways, other modules.
    public func plan(_ set: ChangeSet, before: ConfigState, after: ConfigState) -> AgentPlan {
        var run = PlanRun(planner: self, set: set, before: before, after: after)
        for row in set.rows {
            run.directoryRow(row)
            run.documentRow(row)
            run.truncation(row)
        }
        run.documentsUsingChangedGlobals()
        let restarting = run.sofia()
        run.directoryGateways(skipping: restarting)
        run.modules()
        run.b.capFlushes(flushAllAbove)
        return run.b.plan
    }

    /// sofia.conf changed: returns the profiles that need a restart (their gateways
    /// come back with it, so no gateway commands for them).
    func planSofia(before: SofiaModel?, after: SofiaModel?, into b: inout Builder) -> Set<String> {
        var restarting: Set<String> = []
        let old = before?.profiles ?? [:], new = after?.profiles ?? [:]
        if before?.globalSettings != after?.globalSettings {
            b.report("sofia.conf <global_settings> changed: mod_sofia reads them when a profile starts; they apply at the next profile restart (or `reload mod_sofia`, which restarts every profile)")
        }
        for key in new.keys.sorted() {
            let p = new[key]!
            guard let o = old[key] else {
                b.api(.start, "sofia profile \(p.name) start")
                continue
            }
            if o.settings != p.settings {
                restarting.insert(key)
                b.restart(p.name)
                b.report("sofia profile \(p.name): settings changed; they apply when the profile restarts")
                continue
            }
            for (g, sig) in p.gateways.sorted(by: { $0.key < $1.key }) {
                if let was = o.gateways[g] {
                    if was != sig { b.killgw(p.name, g); b.rescan(p.name) }
                } else {
                    b.rescan(p.name)
                }
            }
            for g in o.gateways.keys.sorted() where p.gateways[g] == nil { b.killgw(p.name, g) }
        }
        for key in old.keys.sorted() where new[key] == nil {
            b.report("sofia profile \(old[key]!.name) was removed from sofia.conf: it runs until `sofia profile \(old[key]!.name) stop`")
        }
        return restarting
    }

    func planModule(_ name: String, before: TreeNode?, after: TreeNode?, into b: inout Builder) {
        let module = "mod_" + (name.hasSuffix(".conf") ? String(name.dropLast(5)) : name)
        switch name {
        case "acl.conf":
            b.acl()
        case _ where AgentPlanner.readPerUse.contains(name):
            break
        case "callcenter.conf":
            let old = AgentPlanner.named(before, container: "queues", tag: "queue")
            let new = AgentPlanner.named(after, container: "queues", tag: "queue")
            for (q, sig) in new.sorted(by: { $0.key < $1.key }) {
                if let was = old[q] {
                    if was != sig { b.api(.module, "callcenter_config queue reload \(q)") }
                } else {
                    b.api(.module, "callcenter_config queue load \(q)")
                }
            }
            for q in old.keys.sorted() where new[q] == nil { b.api(.module, "callcenter_config queue unload \(q)") }
            if AgentPlanner.without(before, "queues") != AgentPlanner.without(after, "queues") {
                b.report("callcenter.conf settings/agents/tiers changed: mod_callcenter reads them at load; use `callcenter_config agent|tier …` or `reload mod_callcenter` (ends its calls)")
            }
        case "local_stream.conf":
            let old = AgentPlanner.named(before, container: nil, tag: "directory")
            let new = AgentPlanner.named(after, container: nil, tag: "directory")
            for (d, _) in new.sorted(by: { $0.key < $1.key }) where old[d] == nil { b.api(.module, "start_local_stream \(d)") }
            let changed = new.keys.filter { old[$0] != nil && old[$0] != new[$0] } + old.keys.filter { new[$0] == nil }
            if !changed.isEmpty {
                b.report("local_stream.conf: stream(s) \(changed.sorted().joined(separator: ", ")) changed or removed: a running stream keeps its settings; `reload mod_local_stream` (interrupts music on hold)")
            }
        case "conference.conf":
            b.report("conference.conf changed: conferences started from now on use it; running conferences keep their settings")
        case _ where AgentPlanner.startupOnly.contains(name):
            b.report("\(name) changed: FreeSWITCH reads it at start-up; restart FreeSWITCH to apply it")
        default:
            b.report("\(name) changed: \(module) reads it when it loads; `reload \(module)` applies it")
        }
    }

    static func named(_ root: TreeNode?, container: String?, tag: String) -> [String: String] {
        guard let root else { return [:] }
        let parents = container.map { root.children($0) } ?? [root]
        var out: [String: String] = [:]
        for p in parents { for c in p.children(tag) { if let n = c.attribute("name") { out[n] = c.signature } } }
        return out
    }

    static func without(_ root: TreeNode?, _ tag: String) -> String? {
        guard var r = root else { return nil }
        r.children.removeAll { $0.tag == tag }
        return r.signature
    }

    func expander(_ globals: [String: String]) -> (String) -> String {
        var e = VariableExpander(globals: globals, node: node)
        return { text in e.expand(text) }
    }

    static func user(_ r: [String: AgentJSON]) -> UserFact? {
        guard let id = r["id"]?.int, let d = r["domain_id"]?.int else { return nil }
        return UserFact(id: id, domain: d, userID: r["user_id"]?.text ?? "", alias: r["number_alias"]?.text,
                        cacheable: r["cacheable"]?.text, homeGroup: r["home_group_id"]?.int, enabled: r["enabled"]?.bool ?? true)
    }

    static func isCIDR(_ row: ChangeRow) -> Bool {
        row.table == "user_settings" && row.rows.contains { $0["kind"]?.text == "attribute" && $0["name"]?.text?.lowercased() == "cidr" }
    }

    /// As the renderer writes it: user's, else domain's; "false" and "" are not cacheable.
    public static func isCacheable(_ value: String?) -> Bool {
        guard let v = value, !v.isEmpty, v != "false" else { return false }
        return true
    }

    /// Collects actions by phase, each once, in first-seen order.
    struct Builder {
        enum Phase: Int, CaseIterable { case killgw, start, rescan, restart, acl, module, flush }
        var phases: [Phase: [AgentAction]] = [:]
        var seen: Set<AgentAction> = []
        var reports: [String] = []
        var flushAll = false

        mutating func api(_ phase: Phase, _ command: String) { add(phase, .api(command)) }
        mutating func add(_ phase: Phase, _ action: AgentAction) {
            if seen.insert(action).inserted { phases[phase, default: []].append(action) }
        }
        mutating func killgw(_ profile: String, _ gateway: String) { api(.killgw, "sofia profile \(profile) killgw \(gateway)") }
        mutating func rescan(_ profile: String) { api(.rescan, "sofia profile \(profile) rescan") }
        mutating func restart(_ profile: String) { add(.restart, .restartProfile(profile)) }
        mutating func acl() { api(.acl, "reloadacl") }
        mutating func flush(_ command: String) { api(.flush, command) }
        mutating func report(_ text: String) { if !reports.contains(text) { reports.append(text) } }

        var plan: AgentPlan {
            var actions: [AgentAction] = []
            for phase in Phase.allCases {
                let list = phases[phase] ?? []
                if phase == .flush {
                    if flushAll { actions.append(.api("xml_flush_cache")) } else { actions += list }
                } else {
                    actions += list
                }
            }
            return AgentPlan(actions: actions, reports: reports)
        }
    }
}

extension AgentPlanner.Builder {
    /// Per-user flushes beyond the limit become one flush of everything.
    mutating func capFlushes(_ limit: Int) {
        if (phases[.flush]?.count ?? 0) > limit { flushAll = true }
    }
}

/// Reconciliation: what FreeSWITCH runs against what is stored.
public enum AgentReconcile {
    /// `sofia xmlstatus gateway`: (profile, gateway) pairs.
    public static func gateways(fromXMLStatus text: String) -> [(profile: String, name: String)] {
        var out: [(String, String)] = []
        for block in text.split(separator: "<gateway>", omittingEmptySubsequences: false).dropFirst().map(String.init) {
            guard let name = value(block, "name"), let profile = value(block, "profile") else { continue }
            out.append((profile, name))
        }
        return out
    }

    /// `sofia xmlstatus`: profile name → sessions in use ("RUNNING (N)").
    public static func profilesInUse(fromXMLStatus text: String) -> [String: Int] {
        var out: [String: Int] = [:]
        for block in text.split(separator: "<profile>", omittingEmptySubsequences: false).dropFirst().map(String.init) {
            guard let name = value(block, "name"), let state = value(block, "state") else { continue }
            guard let open = state.firstIndex(of: "("), let close = state[open...].firstIndex(of: ")") else { continue }
            let n = Int(state[state.index(after: open)..<close]) ?? 0
            out[name.lowercased()] = max(out[name.lowercased()] ?? 0, n)
        }
        return out
    }

    static func value(_ block: String, _ tag: String) -> String? {
        guard let start = block.firstRange(of: "<\(tag)>"),
              let end = block[start.upperBound...].firstRange(of: "</\(tag)>") else { return nil }
        return decodeXML(String(block[start.upperBound..<end.lowerBound]))
    }

    static func decodeXML(_ s: String) -> String {
        s.replacing("&lt;", with: "<").replacing("&gt;", with: ">")
            .replacing("&quot;", with: "\"").replacing("&apos;", with: "'").replacing("&amp;", with: "&")
    }

    /// Gateways to kill (running on a stored profile, not stored) and profiles to
    /// rescan (a stored gateway is not running). `expected`: profile (lower-cased) → names.
    public static func gatewayActions(running: [(profile: String, name: String)], sofia: SofiaModel,
                                      expected: [String: Set<String>]) -> [AgentAction] {
        var kill: [AgentAction] = [], rescan: [AgentAction] = []
        var runningBy: [String: Set<String>] = [:]
        for (p, g) in running { runningBy[p.lowercased(), default: []].insert(g) }
        for (p, g) in running.sorted(by: { ($0.profile, $0.name) < ($1.profile, $1.name) }) {
            guard let profile = sofia.profiles[p.lowercased()] else { continue }
            if !(expected[p.lowercased()] ?? []).contains(g) { kill.append(.api("sofia profile \(profile.name) killgw \(g)")) }
        }
        for key in sofia.profiles.keys.sorted() {
            let want = expected[key] ?? []
            if !want.isSubset(of: runningBy[key] ?? []) { rescan.append(.api("sofia profile \(sofia.profiles[key]!.name) rescan")) }
        }
        return kill + rescan
    }
}

/// What a change set says of rows that may be gone by the time it is planned:
/// every version (old and new) of the domains, users and gateways it touched.
struct RowVersions {
    var domains: [Int64: [DomainFact]] = [:]
    var users: [Int64: [UserFact]] = [:]
    var gateways: [Int64: [GatewayFact]] = [:]
    var gatewayOperations: [Int64: Set<ChangeRow.Operation>] = [:]

    init(_ set: ChangeSet) {
        for row in set.rows {
            for r in row.rows {
                switch row.table {
                case "domains":
                    if let id = r["id"]?.int { domains[id, default: []].append(DomainFact(id: id, name: r["name"]?.text ?? "", cacheable: r["cacheable"]?.text)) }
                case "users":
                    if let u = AgentPlanner.user(r) { users[u.id, default: []].append(u) }
                case "gateways":
                    if let id = r["id"]?.int, let d = r["domain_id"]?.int {
                        gateways[id, default: []].append(GatewayFact(id: id, domain: d, user: r["user_id"]?.int, name: r["name"]?.text ?? ""))
                    }
                default: break
                }
            }
            if row.table == "gateways", let id = row.id() { gatewayOperations[id, default: []].insert(row.operation) }
        }
    }
}

/// One planning of one change set: the steps `AgentPlanner.plan` runs in order,
/// sharing the facts read so far (a domain and each group's members are read once).
struct PlanRun {
    let planner: AgentPlanner
    let set: ChangeSet
    let before: ConfigState
    let after: ConfigState
    let expandAfter: (String) -> String
    let expandBefore: (String) -> String
    let versions: RowVersions
    let sofiaAfter: SofiaModel?
    var b = AgentPlanner.Builder()
    var domainFacts: [Int64: DomainFact?] = [:]
    var groupUsers: [Int64: [UserFact]] = [:]
    var touchedDocs: Set<String> = []
    var changedGlobals: [String] = []
    var gatewayChanged: Set<Int64> = []

    init(planner: AgentPlanner, set: ChangeSet, before: ConfigState, after: ConfigState) {
        self.planner = planner; self.set = set; self.before = before; self.after = after
        expandAfter = planner.expander(after.nodeGlobals)
        expandBefore = planner.expander(before.nodeGlobals)
        versions = RowVersions(set)
        sofiaAfter = after.tree("sofia.conf").map { [expandAfter] in SofiaModel($0, expand: expandAfter) }
    }

    var facts: DirectoryFacts { planner.facts }

    // MARK: Facts, each read once per plan

    /// Every version of domain `id`: the change set's rows, then the database's.
    mutating func domains(_ id: Int64) -> [DomainFact] {
        var out = versions.domains[id] ?? []
        let fact: DomainFact?
        if let known = domainFacts[id] { fact = known } else { fact = facts.domain(id); domainFacts[id] = fact }
        if let d = fact, !out.contains(d) { out.append(d) }
        return out
    }

    mutating func users(inGroup g: Int64) -> [UserFact] {
        if let known = groupUsers[g] { return known }
        let found = facts.users(inGroup: g)
        groupUsers[g] = found
        return found
    }

    func users(_ id: Int64) -> [UserFact] {
        var out = versions.users[id] ?? []
        if out.isEmpty, let u = facts.user(id) { out.append(u) }
        return out
    }

    // MARK: Flushes

    /// A user FreeSWITCH may hold (cacheable before or after): flushed by id and by
    /// alias, under every name it had (a rename keys the cache differently).
    mutating func flush(_ versions: [UserFact]) {
        var cacheable = false
        for u in versions where !cacheable {
            cacheable = domains(u.domain).contains { AgentPlanner.isCacheable(u.cacheable ?? $0.cacheable) }
        }
        guard cacheable else { return }
        for u in versions {
            for d in domains(u.domain) { flushUser(u, in: d) }
        }
    }

    /// Every user of domain `id` that is (or, with `cacheableVersions`, was) cacheable.
    mutating func flushDomain(_ id: Int64, cacheableVersions: [String?] = []) {
        let doms = domains(id)
        for u in facts.users(inDomain: id) {
            let any = doms.contains { AgentPlanner.isCacheable(u.cacheable ?? $0.cacheable) }
                || cacheableVersions.contains { AgentPlanner.isCacheable(u.cacheable ?? $0) }
            guard any else { continue }
            for d in doms { flushUser(u, in: d) }
        }
    }

    mutating func flushUser(_ u: UserFact, in d: DomainFact) {
        let domain = expandAfter(d.name)
        b.flush("xml_flush_cache id \(expandAfter(u.userID)) \(domain)")
        if let a = u.alias, !a.isEmpty { b.flush("xml_flush_cache number-alias \(expandAfter(a)) \(domain)") }
    }

    // MARK: Step 1: directory rows

    mutating func directoryRow(_ row: ChangeRow) {
        switch row.table {
        case "users":
            flush(users(row.id() ?? -1))
            if let id = row.id(), facts.hasCIDR(user: id) || set.rows.contains(where: { AgentPlanner.isCIDR($0) && $0.id("user_id") == id }) {
                if row.operation != .update || row.old?["user_id"] != row.new?["user_id"]
                    || row.old?["enabled"] != row.new?["enabled"] || row.old?["domain_id"] != row.new?["domain_id"] {
                    b.acl()
                }
            }
        case "user_settings":
            if let uid = row.id("user_id") { flush(users(uid)) }
            if AgentPlanner.isCIDR(row) { b.acl() }
        case "group_members":
            for r in row.rows { if let uid = r["user_id"]?.int { flush(users(uid)) } }
        case "group_settings":
            for r in row.rows { if let g = r["group_id"]?.int { for u in users(inGroup: g) { flush([u]) } } }
        case "groups":
            if row.operation == .update, let g = row.id() { for u in users(inGroup: g) { flush([u]) } }
        case "domain_settings":
            if let d = row.id("domain_id") { flushDomain(d) }
        case "domains":
            domainRow(row)
        case "gateways":
            if let id = row.id() { gatewayChanged.insert(id) }
        case "gateway_settings":
            for r in row.rows { if let g = r["gateway_id"]?.int { gatewayChanged.insert(g) } }
        case "global_variables":
            if let name = row.value("name") {
                changedGlobals.append(name)
                if facts.directoryReferences(global: name) { b.flushAll = true }
            }
        default:
            break
        }
    }

    mutating func domainRow(_ row: ChangeRow) {
        if row.operation == .update, let id = row.id() {
            if row.old?["name"] != row.new?["name"] || row.old?["cacheable"] != row.new?["cacheable"] {
                flushDomain(id, cacheableVersions: row.rows.map { $0["cacheable"]?.text })
            }
        } else if row.operation == .insert, let name = row.value("name") {
            let aliasing = sofiaAfter?.profilesAliasing(expandAfter(name)) ?? []
            if !aliasing.isEmpty {
                b.report("new domain \(expandAfter(name)): profile(s) \(aliasing.joined(separator: ", ")) alias every domain; the alias is added when the profile restarts")
            }
        }
    }

    // MARK: Step 2: configuration documents touched

    mutating func documentRow(_ row: ChangeRow) {
        switch row.table {
        case "documents":
            for r in row.rows where r["section"]?.text == "configuration" { if let n = r["name"]?.text { touchedDocs.insert(n) } }
        case "elements":
            for r in row.rows {
                if let d = r["document_id"]?.int, let doc = after.documents[d] ?? before.documents[d], doc.section == "configuration" {
                    touchedDocs.insert(doc.name)
                }
            }
        case "attributes":
            for r in row.rows {
                if let e = r["element_id"]?.int, let el = after.elements[e] ?? before.elements[e],
                   let doc = after.documents[el.document] ?? before.documents[el.document], doc.section == "configuration" {
                    touchedDocs.insert(doc.name)
                }
            }
        default:
            break
        }
    }

    // MARK: Step 3: truncations (the rows are not recorded)

    mutating func truncation(_ row: ChangeRow) {
        guard row.operation == .truncate else { return }
        for k in row.keys where k["all"]?.bool == true {
            switch k["s"]?.text {
            case "directory":
                b.flushAll = true
                b.acl()
                b.report("\(row.table) truncated: every cached user flushed and ACLs reloaded; check gateways with a reconcile (restart the agent)")
            case "globals":
                b.flushAll = true
                b.report("global variables truncated: every cached user flushed; modules keep the values they loaded")
            case "configuration":
                b.report("\(row.table) truncated: fsconf cannot tell which configuration changed; reload the modules concerned")
            default: break
            }
        }
    }

    // MARK: Step 4: configuration documents that use a changed global

    mutating func documentsUsingChangedGlobals() {
        guard !changedGlobals.isEmpty else { return }
        for name in after.documentNames().union(before.documentNames()) {
            let sig = (after.tree(name) ?? before.tree(name))?.signature ?? ""
            if changedGlobals.contains(where: { sig.contains("$${\($0)}") }) { touchedDocs.insert(name) }
        }
        for g in changedGlobals.sorted() where b.flushAll {
            b.report("global $${\(g)} changed: every cached user flushed")
        }
    }

    // MARK: Step 5: sofia.conf, the model before and after

    /// The profiles that restart (their gateways come back with them).
    mutating func sofia() -> Set<String> {
        guard touchedDocs.contains("sofia.conf") else { return [] }
        let sofiaBefore = before.tree("sofia.conf").map { [expandBefore] in SofiaModel($0, expand: expandBefore) }
        return planner.planSofia(before: sofiaBefore, after: sofiaAfter, into: &b)
    }

    // MARK: Step 6: directory gateways, killgw/rescan on every profile that parses the domain

    mutating func directoryGateways(skipping restarting: Set<String>) {
        for id in gatewayChanged.sorted() { directoryGateway(id, skipping: restarting) }
    }

    mutating func directoryGateway(_ id: Int64, skipping restarting: Set<String>) {
        let current = facts.gateway(id)
        var gatewayVersions = versions.gateways[id] ?? []
        if gatewayVersions.isEmpty, let g = current { gatewayVersions.append(g) }
        guard !gatewayVersions.isEmpty else { return }
        let ops = versions.gatewayOperations[id] ?? []
        let added = ops.contains(.insert) && !ops.contains(.delete)
        let removed = ops.contains(.delete) && !ops.contains(.insert)
        let names = Set(gatewayVersions.map { expandAfter($0.name) }).sorted()
        // The names FreeSWITCH runs it under: as it was before this change set.
        var running = set.rows.filter { $0.table == "gateways" && $0.id() == id }.compactMap { $0.old?["name"]?.text }
        if running.isEmpty, let g = current { running = [g.name] }
        let oldNames = Set(running.map { expandAfter($0) }).sorted()
        guard let sofia = sofiaAfter else {
            b.report("gateway \(names.joined(separator: "/")) changed, but sofia.conf is not stored in fsconf: run `sofia profile <profile> killgw \(names[0])` and `rescan` on the profiles that load it")
            return
        }
        var profiles: [String] = []
        for v in gatewayVersions { for d in domains(v.domain) { profiles += sofia.profilesParsing(expandAfter(d.name)) } }
        for p in Set(profiles).sorted() where !restarting.contains(p.lowercased()) {
            if !added { for n in oldNames { b.killgw(p, n) } }
            if !removed { b.rescan(p) }
        }
    }

    // MARK: Step 7: other configuration documents

    mutating func modules() {
        for name in touchedDocs.sorted() where name != "sofia.conf" {
            let old = before.tree(name).map { SofiaModel.expanded($0, expandBefore) }
            let new = after.tree(name).map { SofiaModel.expanded($0, expandAfter) }
            if old == new { continue }
            planner.planModule(name, before: old, after: new, into: &b)
        }
    }
}
