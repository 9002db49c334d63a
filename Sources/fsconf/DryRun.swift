import ArgumentParser
import FSConfAdminCore
import FSConfAdminStore
import FSConfAgentCore
import FSConfCore
import FSConfNode
import FSConfStore
import Foundation

/// How a dry run renders: `--max-users`, `--global` (apply and import).
struct ReviewOptions: ParsableArguments {
    @Option(help: ArgumentHelp("--dry-run: render at most this many users per domain for a domain-wide change (default 100).",
                               valueName: "n"))
    var maxUsers: Int?
    @Option(name: .customLong("global"), help: ArgumentHelp("--dry-run: a node global variable to render with (repeatable).",
                                                            valueName: "name=value"))
    var globals: [String] = []
    @Flag(help: "--dry-run: show secret values (passwords...) in the rendered XML instead of (hidden N).")
    var showSecrets = false

    func check(dryRun: Bool, waiting: WaitOptions) throws {
        if dryRun && waiting.seconds != nil { throw ValidationError("--wait goes with a write, not with --dry-run") }
        if let maxUsers, maxUsers < 0 { throw ValidationError("--max-users takes 0 or more") }
        if !dryRun && (!globals.isEmpty || maxUsers != nil || showSecrets) {
            throw ValidationError("--global, --max-users and --show-secrets go with --dry-run")
        }
    }

    func dryRun(_ conn: PGConnection) throws -> DryRun {
        var review = DryRun(conn: conn)
        review.usersPerDomain = maxUsers ?? 100
        review.nodeGlobals = Dictionary(try Typed.pairs(globals, "global"), uniquingKeysWith: { $1 })
        review.showSecrets = showSecrets
        return review
    }
}

/// A write shown before it lands, and never landed: `apply --dry-run` and
/// `import --dry-run`. In one REPEATABLE READ transaction that is always rolled
/// back, the write runs under its change set; the lookups its change keys affect
/// (AffectedLookups, from the keys the node cache drops answers by) are rendered
/// before and after it through the node's own code (NodeEngine.render), and the
/// change set's rows are planned by the agent's planner.
///
/// The write runs twice, each time from the same snapshot: once to learn its keys
/// (and the lookups it affects in the state after it), rolled back to a savepoint;
/// the lookups are then rendered before it, and again after its second run.
struct DryRun {
    let conn: PGConnection
    var usersPerDomain = 100
    /// The node's own global variables (`--global`), as `render` plays them.
    var nodeGlobals: [String: String] = [:]
    /// Secret values shown as rendered (else `(hidden N)`, SecretMask).
    var showSecrets = false

    struct Review {
        /// Identical diffs grouped: the lookups (labels) and the diff they share.
        var diffs: [(labels: [String], text: String)] = []
        var unchanged: [String] = []
        /// Lookups asked by a node with its own variants whose answer, unlike every
        /// other node's, does not change: one line each.
        var unchangedForNodes: [String] = []
        var notes: [String] = []
        /// The agent's plan for each group of nodes planned alike; the first is the
        /// plan of a node with no variants of its own (and of the nodes planned alike).
        var plans: [(nodes: [String], plan: AgentPlan)] = []
        var rows = 0
        var rendered = 0
    }

    /// `prepare` runs first in the transaction (locks, reads); `write` makes the
    /// change under the change set already opened for it.
    func review<P, T>(actor: String, source: String, summary: String,
                      prepare: () throws -> P, write: (P) throws -> T) throws -> (T, Review) {
        try conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        defer { _ = try? conn.execute("ROLLBACK") }
        let prepared = try prepare()
        let facts = LookupFactsStore(conn)
        var review = Review()

        // 1. The write, to learn its keys and the lookups they reach after it.
        try conn.execute("SAVEPOINT fsconf_review")
        let first = try ChangeSets.open(conn, actor: actor, source: source, summary: summary)
        _ = try write(prepared)
        let keys = try facts.keys(changeSet: first)
        let after = AffectedLookups.derive(keys, facts: facts, usersPerDomain: usersPerDomain)
        let nodesAfter = try facts.scopedNodes()
        try conn.execute("ROLLBACK TO SAVEPOINT fsconf_review")

        // 2. Before it: the lookups they reach now too, rendered — by a node with no
        // name (what every node gets) and by each node some entity is limited to.
        let before = AffectedLookups.derive(keys, facts: facts, usersPerDomain: usersPerDomain)
        if let error = facts.error { throw error }
        let nodes = Set(nodesAfter).union(try facts.scopedNodes()).sorted()
        let askers: [String?] = [nil] + nodes
        var targets: [RenderTarget] = []
        var seen: Set<String> = []
        for t in after.targets + before.targets where seen.insert(t.label.asciiLowercased).inserted { targets.append(t) }
        for n in after.notes + before.notes where !review.notes.contains(n) { review.notes.append(n) }
        let engine = NodeEngine()
        var logged: [String] = []
        let old = try askers.map { node in try targets.map { try render($0.asked(by: node), engine, log: &logged) } }
        let agent = AgentStore(connection: conn)
        let configBefore = try agent.readConfigState()

        // 3. The write again, then the same lookups after it and the agent's plan.
        let second = try ChangeSets.open(conn, actor: actor, source: source, summary: summary)
        let result = try write(prepared)
        // A fresh engine: its log limiter has not seen the lines of the renders before.
        let engineAfter = NodeEngine()
        let new = try askers.map { node in try targets.map { try render($0.asked(by: node), engineAfter, log: &logged) } }
        review.rendered = targets.count * askers.count
        for line in logged where !review.notes.contains(line) { review.notes.append(line) }
        let rows = try agent.changeRows(changeSet: Int64(second)!)
        review.rows = rows.count
        let configAfter = try agent.readConfigState()
        let set = ChangeSet(seq: 0, id: Int64(second)!, rows: rows)
        let planner = AgentPlanner(facts: agent)
        for node in askers {
            let me = try node.map { try agent.identity(of: $0) } ?? NodeIdentity(name: nil)
            let plan = planner.plan(set, before: configBefore, after: configAfter, for: me)
            if let at = review.plans.firstIndex(where: { $0.plan == plan }) {
                if let node { review.plans[at].nodes.append(node) }
            } else {
                review.plans.append((node.map { [$0] } ?? [], plan))
            }
        }
        if let error = agent.factError { throw error }

        for (i, target) in targets.enumerated() {
            review.add(target, old[0][i], new[0][i], showSecrets: showSecrets)
            var unchangedFor: [String] = []
            for (k, node) in nodes.enumerated() where (old[k + 1][i], new[k + 1][i]) != (old[0][i], new[0][i]) {
                // This node gets its own answer: its own diff, or none (said when every
                // other node's answer changes).
                if old[k + 1][i] == new[k + 1][i] { unchangedFor.append(node); continue }
                review.add(target.asked(by: node), old[k + 1][i], new[k + 1][i], showSecrets: showSecrets)
            }
            if !unchangedFor.isEmpty && old[0][i] != new[0][i] {
                review.unchangedForNodes.append("(\(target.label): no change for node(s) \(unchangedFor.joined(separator: ", ")), "
                                                + "which get their own variant)")
            }
        }
        return (result, review)
    }

    /// The XML a node gets for the target, in this transaction (followed by a
    /// newline, as `fsconf render` prints it); what the node would log (an
    /// extension skipped as invalid…) is added to `log`.
    func render(_ target: RenderTarget, _ engine: NodeEngine, log: inout [String]) throws -> String {
        let outcome = engine.render(try target.request(), on: conn, node: { nodeGlobals[$0] })
        guard let xml = outcome.xml else {
            throw CLIFailure(outcome.error ?? "no answer for \(target.label)", code: CLIFailure.Code.failed)
        }
        log += outcome.log.map { "\(target.label): \($0.level): \($0.message)" }
        return xml + "\n"
    }
}

extension DryRun.Review {
    /// One lookup's diff (secrets masked unless shown), or its label among the unchanged.
    mutating func add(_ target: RenderTarget, _ old: String, _ new: String, showSecrets: Bool) {
        var mask = SecretMask()   // per lookup: its secrets numbered in order of appearance
        let (old, new) = showSecrets ? (old, new) : (mask.apply(old), mask.apply(new))
        let text = UnifiedDiff.diff(old, new, oldLabel: "\(target.label)\t(before)", newLabel: "\(target.label)\t(after)")
        if text.isEmpty { unchanged.append(target.label); return }
        // Identical hunks (a domain setting seen in each user's answer) shown once.
        let body = String(text.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)[2])
        if let at = diffs.firstIndex(where: { $0.text.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)[2] == body }) {
            diffs[at].labels.append(target.label)
        } else {
            diffs.append(([target.label], text))
        }
    }

    /// The diffs, the agent's commands and the notes (stderr); `summary` last.
    func print(summary: String) {
        for d in diffs {
            Swift.print(d.text, terminator: "")
            if d.labels.count > 1 { Swift.print("(the same diff for \(d.labels.dropFirst().joined(separator: ", ")))") }
        }
        for line in unchangedForNodes { Swift.print(line) }
        for (i, (nodes, plan)) in plans.enumerated() {
            // One plan: "agent:"; several: each says which nodes it is for (the
            // first is the plan of a node with no variants of its own).
            let who = plans.count == 1 ? "agent" : i == 0 ? "agent (every other node)" : "agent (node \(nodes.joined(separator: ", ")))"
            if plan.actions.isEmpty && plan.reports.isEmpty { Swift.print("\(who): nothing to send") }
            for action in plan.actions {
                switch action {
                case .api(let command): Swift.print("\(who): \(command)")
                case .restartProfile: Swift.print("\(who): \(action) (with --allow-restart, when no calls are up)")
                }
            }
            for report in plan.reports { Swift.print("\(who) report: \(report)") }
        }
        for note in notes { printErr("note: \(note)") }
        let changing = diffs.reduce(0) { $0 + $1.labels.count }
        Swift.print("dry run: \(summary); \(rows) row(s) would change; \(rendered) lookup(s) rendered, "
                    + "\(changing) would change; nothing written")
    }
}
