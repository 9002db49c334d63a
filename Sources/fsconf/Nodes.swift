import ArgumentParser
import FSConfStore
import Foundation

extension Fsconf {
    struct Nodes: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show every node's agent: applied change set, lag, last seen, last failed command.",
            discussion: """
                Each `fsconf agent` records its node in fsconf.nodes (docs/agent.md, "Fleet view"):
                name, FreeSWITCH and agent versions, the last change set it applied, when it was
                last seen (it reports every 10 s) and the last command it gave up on. A node is live
                when seen within --live-within seconds. LAG is how many change sets it is behind
                the newest. Exit 1 when a live node is behind or failing (a command given up within
                --failed-within seconds); 0 otherwise.
                """)
        @OptionGroup var connection: ConnectionOptions
        @Option(help: ArgumentHelp("A node seen within this many seconds is live.", valueName: "seconds"))
        var liveWithin = Fleet.liveWithin
        @Option(help: ArgumentHelp("A node that gave up a command within this many seconds is failing.", valueName: "seconds"))
        var failedWithin = 900
        @Flag(help: "Print JSON (docs/cli.md).") var json = false

        func validate() throws {
            if liveWithin < 1 { throw ValidationError("--live-within takes a number of seconds above 0") }
            if failedWithin < 0 { throw ValidationError("--failed-within takes a number of seconds") }
        }

        func execute() throws {
            let conn = try connection.connect()
            let fleet = try Fleet.read(conn, liveWithin: liveWithin, failedWithin: failedWithin)
            if json {
                print(JSON.object([
                    ("newest_seq", String(fleet.newest)),
                    ("nodes", JSON.array(fleet.nodes.map(\.json))),
                ]))
            } else if fleet.nodes.isEmpty {
                print("no node has reported (nodes report when `fsconf agent` runs; newest change set \(fleet.newest))")
            } else {
                print(Fleet.table(fleet))
            }
            let attention = fleet.nodes.filter { $0.live && ($0.lag > 0 || $0.failing) }
            if !attention.isEmpty {
                if !json { printErr("fsconf: \(attention.map(\.problem).joined(separator: "; "))") }
                throw ExitCode(CLIFailure.Code.failed)
            }
        }
    }
}

/// The nodes' agents as fsconf.nodes records them (migration 0008).
enum Fleet {
    /// Agents report every 10 s: a node silent for 60 s is not live.
    static let liveWithin = 60

    struct Node {
        var name: String
        var freeswitchVersion: String?
        var agentVersion: String?
        var appliedSeq: Int64?
        var lag: Int64
        var seenAgo: Double
        var seenAt: String
        var live: Bool
        var failedCommand: String?
        var failedReply: String?
        var failedAgo: Double?
        var failing: Bool

        var problem: String {
            var why: [String] = []
            if lag > 0 { why.append("\(lag) change set(s) behind (applied \(appliedSeq.map(String.init) ?? "none"))") }
            if failing, let c = failedCommand { why.append("gave up `\(c)` \(Fleet.ago(failedAgo ?? 0)) ago") }
            return "\(name): " + why.joined(separator: ", ")
        }

        var json: String {
            JSON.object([
                ("name", JSON.string(name)), ("freeswitch_version", JSON.string(freeswitchVersion)),
                ("agent_version", JSON.string(agentVersion)), ("applied_seq", appliedSeq.map(String.init) ?? "null"),
                ("lag", String(lag)), ("seen_at", JSON.string(seenAt)), ("seen_seconds_ago", String(Int(seenAgo.rounded()))),
                ("live", live ? "true" : "false"),
                ("last_failure", failedCommand.map { c in
                    JSON.object([("command", JSON.string(c)), ("reply", JSON.string(failedReply)),
                                 ("seconds_ago", String(Int((failedAgo ?? 0).rounded())))])
                } ?? "null"),
                ("failing", failing ? "true" : "false"),
            ])
        }
    }

    struct View {
        var newest: Int64
        var nodes: [Node]
    }

    /// Every node, with its lag behind the newest change set; times are the
    /// database's (no clock skew between nodes and this machine).
    static func read(_ conn: PGConnection, liveWithin: Int, failedWithin: Int = 900) throws -> View {
        let r: PGResult
        do {
            r = try conn.query("""
                SELECT n.name, n.freeswitch_version, n.agent_version, n.applied_seq, c.value,
                       extract(epoch FROM clock_timestamp() - n.seen_at)::float8,
                       to_char(n.seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       n.failed_command, n.failed_reply, extract(epoch FROM clock_timestamp() - n.failed_at)::float8
                FROM fsconf.change_counter c LEFT JOIN fsconf.nodes n ON true ORDER BY n.name
                """)
        } catch {
            let missing = error.sqlState == "42P01"
            if missing { throw CLIFailure("fsconf.nodes does not exist: run `fsconf migrate up` (migration 0008)", code: CLIFailure.Code.failed) }
            throw error
        }
        var view = View(newest: Int64(r.string(0, 4) ?? "0") ?? 0, nodes: [])
        for i in 0..<r.rowCount {
            guard let name = r.string(i, 0) else { continue }
            let applied = r.string(i, 3).flatMap { Int64($0) }
            let seenAgo = Double(r.string(i, 5) ?? "") ?? .infinity
            let failedAgo = r.string(i, 9).flatMap { Double($0) }
            view.nodes.append(Node(
                name: name, freeswitchVersion: r.string(i, 1), agentVersion: r.string(i, 2), appliedSeq: applied,
                lag: max(0, view.newest - (applied ?? 0)), seenAgo: seenAgo, seenAt: r.string(i, 6) ?? "",
                live: seenAgo <= Double(liveWithin), failedCommand: r.string(i, 7), failedReply: r.string(i, 8),
                failedAgo: failedAgo, failing: failedAgo.map { $0 <= Double(failedWithin) } ?? false))
        }
        return view
    }

    static func ago(_ seconds: Double) -> String {
        let s = Int(max(0, seconds).rounded())
        if s < 120 { return "\(s)s" }
        if s < 7_200 { return "\(s / 60)m" }
        if s < 172_800 { return "\(s / 3_600)h" }
        return "\(s / 86_400)d"
    }

    static func table(_ view: View) -> String {
        var rows = [["NODE", "FREESWITCH", "AGENT", "APPLIED", "LAG", "SEEN", "LAST FAILURE"]]
        for n in view.nodes {
            var failure = "-"
            if let c = n.failedCommand {
                failure = "`\(c)` \(ago(n.failedAgo ?? 0)) ago: \(n.failedReply ?? "")"
                if !n.failing { failure += " (old)" }
            }
            rows.append([n.name, n.freeswitchVersion.map(shortVersion) ?? "?", n.agentVersion ?? "?",
                         n.appliedSeq.map(String.init) ?? "-", String(n.lag),
                         "\(ago(n.seenAgo)) ago" + (n.live ? "" : " (not live)"), failure])
        }
        let widths = (0..<6).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            (0..<6).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") + "  " + row[6]
        }.joined(separator: "\n") + "\nnewest change set: \(view.newest)"
    }

    /// "FreeSWITCH Version 1.10.12-release+git~… (64bit)" → "1.10.12-release+git~…".
    static func shortVersion(_ text: String) -> String {
        let words = text.split(separator: " ")
        if let i = words.firstIndex(of: "Version"), i + 1 < words.count { return String(words[i + 1]) }
        return text
    }

    /// Waits until every live node has applied change set `seq` (or a later one);
    /// throws naming the nodes that had not within `seconds`.
    static func wait(_ conn: PGConnection, for seq: Int64, seconds: Int, liveWithin: Int = Fleet.liveWithin) throws {
        let deadline = Date().addingTimeInterval(Double(seconds))
        while true {
            let view = try read(conn, liveWithin: liveWithin)
            let live = view.nodes.filter(\.live)
            let behind = live.filter { ($0.appliedSeq ?? 0) < seq }
            if behind.isEmpty {
                printErr(live.isEmpty
                         ? "note: no live node to wait for (no agent reported within \(liveWithin) s)"
                         : "applied by every live node (\(live.map(\.name).joined(separator: ", "))): change set seq \(seq)")
                return
            }
            if Date() >= deadline {
                let names = behind.map { "\($0.name) (applied \($0.appliedSeq.map(String.init) ?? "none"), seen \(ago($0.seenAgo)) ago)" }
                throw CLIFailure("not applied within \(seconds) s by: \(names.joined(separator: ", ")) (seq \(seq))", code: CLIFailure.Code.failed)
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }
}

/// `--wait[=SECONDS]` of every command that writes.
struct WaitOptions: ParsableArguments {
    @Option(name: .customLong("wait"), help: ArgumentHelp(
        "Return when every live node's agent has applied the change (a bare --wait: 30 s); exit 1 naming the nodes that have not.",
        valueName: "seconds"))
    var seconds: Int?

    /// The bare `--wait` (no value) stands for this many seconds.
    static let defaultSeconds = 30

    func validate() throws {
        if let seconds, seconds < 1 { throw ValidationError("--wait takes a number of seconds above 0") }
    }

    /// A bare `--wait` (not followed by a number of seconds) → `--wait=30`
    /// (ArgumentParser has no options with an optional value).
    static func expand(_ arguments: [String]) -> [String] {
        var out: [String] = []
        for (i, a) in arguments.enumerated() {
            if a == "--" { out.append(contentsOf: arguments[i...]); return out }
            let next = i + 1 < arguments.count ? arguments[i + 1] : ""
            let seconds = !next.isEmpty && next.allSatisfy(\.isASCII) && next.allSatisfy(\.isNumber)
            out.append(a == "--wait" && !seconds ? "--wait=\(defaultSeconds)" : a)
        }
        return out
    }
}

/// A command that writes and may wait for the nodes (`--wait`).
protocol WaitsForNodes {
    var connection: ConnectionOptions { get }
    var waitOptions: WaitOptions { get }
}

extension WaitsForNodes {
    /// After the write: the newest change set (this one, or a later one) is what
    /// every live node must have applied.
    func waitForNodes() throws {
        guard let seconds = waitOptions.seconds else { return }
        let conn = try connection.connect()
        let seq = Int64(try conn.query("SELECT value FROM fsconf.change_counter").string(0, 0) ?? "0") ?? 0
        try Fleet.wait(conn, for: seq, seconds: seconds)
    }
}

extension Fsconf.SetField: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.UnsetField: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.Undo: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.Import: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.Apply: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.Domain.Add: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.Domain.Remove: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.User.Add: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.User.Remove: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.User.SetPassword: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.Gateway.Add: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.Gateway.Remove: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.Extension.Add: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
extension Fsconf.Extension.Remove: WaitsForNodes { var waitOptions: WaitOptions { write.waiting } }
