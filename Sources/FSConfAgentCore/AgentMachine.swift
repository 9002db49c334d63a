import FSConfCore

/// The node agent as a state machine (docs/agent.md, "Following changes"): events
/// in — a connection up or down, the change counter read, change sets read, a
/// plan made, a command's reply, a timer — and actions out — connect, read, plan,
/// send, reconcile, wait, write the state, log. Pure: no I/O, no clock of its own
/// (the driver passes a monotonic `now` in milliseconds with every event), so
/// gaps, rewinds, reconnects, retries and backoff are tested without a database,
/// a socket or a sleep (Tests/AgentCoreTests/AgentMachineTests.swift).
///
/// Every `handle` returns zero or more effects (`log`, `report`, `writeState`,
/// `recordStatus`) followed by exactly one request; the driver performs the
/// request and answers it with the next event.
public struct AgentMachine {
    public struct Settings: Sendable {
        /// `--once`: exit when caught up.
        public var once = false
        public var allowRestart = false
        public var forceRestart = false
        /// How often the change counter is read when nothing wakes the agent sooner.
        public var pollMs: Int64 = 250
        /// How often a restart waiting for calls to end is checked again.
        public var restartCheckMs: Int64 = 5_000
        /// How often the node's status is recorded while nothing happens.
        public var heartbeatMs: Int64 = 10_000
        /// Change sets read at a time.
        public var batch = 500
        /// Tries of a refused command before it is reported and skipped.
        public var attempts = 5
        /// First delay between two tries of a refused command (doubled each time).
        public var retryMs: Int64 = 250
        /// How often the node library's counters are read from FreeSWITCH (`api lua`);
        /// nil: never (no metrics served).
        public var nodeStatsMs: Int64?
        /// Reconnect backoff: first and largest delay.
        public var backoffMs: Int64 = 250
        public var maxBackoffMs: Int64 = 5_000
        public init() {}
    }

    public enum Event: Equatable, Sendable {
        /// Start-up, with the seq the state file holds (nil: no state file).
        case started(savedSeq: Int64?)
        /// The database answered: its change counter, and whether it is a standby.
        case databaseConnected(counter: Int64, standby: Bool)
        /// The database could not be reached, or a read failed (the connection is dropped).
        case databaseFailed(String)
        /// The stored configuration documents and globals, current at `seq`.
        case configLoaded(ConfigState, seq: Int64)
        case counterRead(Int64)
        case changeSetsRead([ChangeSet])
        case eventSocketConnected
        /// FreeSWITCH could not be reached, or the connection was lost.
        case eventSocketFailed(String)
        case planned(AgentPlan)
        /// The reply to the command sent.
        case replied(String)
        /// Gateway commands from a reconcile; nil when sofia.conf is not stored.
        case reconcilePlanned([AgentAction]?)
        /// FreeSWITCH's reply to the node library's stats script (`NodeStats.command`).
        case nodeStatsRead(String)
        /// A wait or a sleep ended (its time came, or a notification arrived).
        case tick
    }

    public enum Action: Equatable, Sendable {
        // Requests: the driver answers each with one event.
        case connectDatabase
        case loadConfig
        case readCounter
        case readChangeSets(after: Int64, upTo: Int64, limit: Int)
        case connectEventSocket
        /// Plan `set` (the planner asks the database for directory facts).
        case plan(ChangeSet, before: ConfigState, after: ConfigState)
        /// `api <command>` over the event socket; answered with `.replied`.
        case send(String)
        /// Compare the gateways FreeSWITCH runs with the stored ones.
        case reconcile(ConfigState)
        /// Run `NodeStats.command` in FreeSWITCH; answered with `.nodeStatsRead`.
        case readNodeStats
        /// Wait for a notification or `until`, whichever comes first; answered with `.tick`.
        case waitForChange(until: Int64)
        /// Wait until `until` (backoff, retry delay); answered with `.tick`.
        case sleep(until: Int64)
        /// `--once`: everything pending is applied.
        case exit
        // Effects: nothing answers them.
        case log(String)
        case report(String)
        case writeState(Int64)
        /// Record this node's status in the database (best effort).
        case recordStatus(AgentStatus)
    }

    /// One step of the work under way.
    enum Step: Equatable {
        case command(String)
        /// A restart: decided when it comes (policy, active calls).
        case restart(String)
        /// `sofia xmlstatus` sent for a restart of this profile.
        case status(String)
        /// The gateways FreeSWITCH runs against the stored ones (a reconcile).
        case gateways
    }

    enum Work: Equatable {
        case reconcile
        case changeSet(ChangeSet, after: ConfigState)
        case restartChecks
    }

    enum Stage: Equatable {
        case idle
        /// Reading change sets (target, loaded seq] to revert the loaded state to `target`.
        case reverting(target: Int64, loaded: ConfigState, seq: Int64)
        /// Waiting before connecting again.
        case backingOff(until: Int64)
        /// Waiting before sending a refused command again.
        case retrying(until: Int64)
        case readingChangeSets(upTo: Int64)
        /// Waiting for a notification or the next poll.
        case waiting
        case done
    }

    public let settings: Settings
    public private(set) var metrics = AgentMetrics()
    /// The seq of the last change set applied (nil until the first start has read one).
    public private(set) var lastSeq: Int64?
    /// The configuration documents and globals as of `lastSeq`.
    public private(set) var config = ConfigState()
    /// Profiles whose restart waits for their calls to end.
    public private(set) var pendingRestarts: Set<String> = []
    var stage = Stage.idle
    var savedSeq: Int64?
    var counter: Int64 = 0
    var databaseUp = false
    var configCurrent = false
    var eventSocketUp = false
    var eventSocketEverUp = false
    var needReconcile = true
    var flushAll = false
    var databaseBackoff: Int64
    var eventSocketBackoff: Int64
    var nextPoll: Int64 = .min
    var nextRestartCheck: Int64 = .min
    var nextHeartbeat: Int64 = .min
    var nextNodeStats: Int64 = .min
    /// Change sets read and not applied yet, in seq order.
    var pending: [ChangeSet] = []
    /// When each change set read was committed, on the driver's clock.
    var committedAt: [Int64: Int64] = [:]
    var work: Work?
    var steps: [Step] = []
    var attempt = 0
    var retryDelay: Int64 = 0

    public init(settings: Settings = Settings()) {
        self.settings = settings
        databaseBackoff = settings.backoffMs
        eventSocketBackoff = settings.backoffMs
    }

    /// Feeds one event; returns the effects and the one request that follows.
    public mutating func handle(_ event: Event, now: Int64) -> [Action] {
        var out: [Action] = []
        switch event {
        case .started(let saved):
            savedSeq = saved
            lastSeq = saved
        case .databaseConnected(let c, let standby):
            databaseUp = true
            metrics.databaseConnected = true
            counter = c
            metrics.newestSeq = c
            databaseBackoff = settings.backoffMs
            configCurrent = false
            needReconcile = true
            nextPoll = now + settings.pollMs
            out.append(.log("connected to the database (\(standby ? "standby: polling" : "primary: LISTEN + polling"), change counter \(c))"))
        case .databaseFailed(let message):
            abandonWork()
            configCurrent = false
            metrics.databaseConnected = false
            if databaseUp {
                databaseUp = false
                metrics.databaseReconnects += 1
                out.append(.log("lost the database: \(message); reconnecting"))
            } else {
                out.append(.log("database unavailable (\(message)); retrying in \(AgentMachine.seconds(databaseBackoff)) s"))
                stage = .backingOff(until: now + databaseBackoff)
                databaseBackoff = min(databaseBackoff * 2, settings.maxBackoffMs)
            }
        case .configLoaded(let state, let seq):
            configLoaded(state, seq: seq, into: &out)
        case .counterRead(let c):
            counterRead(c, into: &out)
        case .changeSetsRead(let sets):
            changeSetsRead(sets, now: now, into: &out)
        case .eventSocketConnected:
            eventSocketUp = true
            metrics.eventSocketConnected = true
            eventSocketBackoff = settings.backoffMs
            if eventSocketEverUp {
                // Whatever FreeSWITCH did while we were away (a restart, changes by
                // hand): look again rather than assume.
                flushAll = true
                metrics.eventSocketReconnects += 1
            }
            eventSocketEverUp = true
            needReconcile = true
        case .eventSocketFailed(let message):
            abandonWork()
            metrics.eventSocketConnected = false
            if eventSocketUp {
                eventSocketUp = false
                out.append(.log("lost the event socket: \(message); reconnecting"))
            } else {
                out.append(.log("FreeSWITCH unavailable (\(message)); retrying in \(AgentMachine.seconds(eventSocketBackoff)) s"))
                stage = .backingOff(until: now + eventSocketBackoff)
                eventSocketBackoff = min(eventSocketBackoff * 2, settings.maxBackoffMs)
            }
        case .planned(let plan):
            if case .changeSet(let set, _)? = work {
                out.append(.log("seq \(set.seq) (change set \(set.id), \(set.rows.count) row change(s)): \(plan.actions.isEmpty ? "nothing to send" : "\(plan.actions.count) command(s)")"))
                for r in plan.reports { out.append(.report(r)) }
                steps = plan.actions.map(AgentMachine.step)
            }
        case .replied(let reply):
            replied(reply, now: now, into: &out)
        case .reconcilePlanned(let actions):
            if steps.first == .gateways { steps.removeFirst() }
            if let actions {
                if actions.isEmpty { out.append(.log("reconcile: gateways match the database")) }
                steps = actions.map(AgentMachine.step) + steps
            } else {
                out.append(.log("reconcile: sofia.conf is not stored in fsconf; gateways left as FreeSWITCH runs them"))
            }
        case .nodeStatsRead(let reply):
            metrics.node = NodeStats.parse(reply)
        case .tick:
            switch stage {
            case .waiting:
                // Woken by a notification or the poll: read the counter.
                stage = .idle
                nextPoll = now + settings.pollMs
                out.append(.readCounter)
                return out
            case .backingOff(let until), .retrying(let until):
                if now >= until { stage = .idle }
            default:
                break
            }
        }
        out.append(next(now: now, into: &out))
        return out
    }

    /// A change set is applied whole or retried whole: work cut short by a lost
    /// connection starts again from the last applied seq (every command is idempotent).
    mutating func abandonWork() {
        work = nil
        steps = []
        pending = []
        attempt = 0
        if case .done = stage {} else { stage = .idle }
    }

    // MARK: The configuration at the last applied seq

    mutating func configLoaded(_ state: ConfigState, seq: Int64, into out: inout [Action]) {
        guard let last = lastSeq else {
            config = state
            lastSeq = seq
            configCurrent = true
            flushAll = true
            needReconcile = true
            out.append(.log("no state file: reconciling and starting from seq \(seq)"))
            return
        }
        if last > seq {
            out.append(.report("the database's change counter (\(seq)) is behind the last applied seq (\(last)): it was restored or replaced; reconciling and flushing every cached user"))
            metrics.rewinds += 1
            resume(at: seq, into: &out)
            config = state
            configCurrent = true
            return
        }
        if last == seq {
            config = state
            configCurrent = true
            return
        }
        // The configuration as it was at the last applied change set: revert the later ones.
        stage = .reverting(target: last, loaded: state, seq: seq)
    }

    // MARK: Following the counter

    mutating func counterRead(_ value: Int64, into out: inout [Action]) {
        counter = value
        metrics.newestSeq = value
        if let last = lastSeq, value < last {
            out.append(.report("the database's change counter went back (\(value) < \(last)): restored or replaced; reconciling and flushing every cached user"))
            metrics.rewinds += 1
            resume(at: value, into: &out)
        }
    }

    mutating func changeSetsRead(_ sets: [ChangeSet], now: Int64, into out: inout [Action]) {
        if case .reverting(let target, var state, let seq) = stage {
            for set in sets.reversed() where set.seq > target && set.seq <= seq { state = state.before(set) }
            config = state
            configCurrent = true
            stage = .idle
            return
        }
        guard case .readingChangeSets(let upTo) = stage, let last = lastSeq else { return }
        stage = .idle
        guard let first = sets.first else {
            out.append(.report("change sets \(last + 1)…\(upTo) cannot be read (removed); flushing every cached user and reconciling"))
            gap(resumeAt: upTo, into: &out)
            return
        }
        if first.seq != last + 1 {
            out.append(.report("change sets \(last + 1)…\(first.seq - 1) cannot be read; flushing every cached user and reconciling"))
            gap(resumeAt: first.seq - 1, into: &out)
            return
        }
        // Up to the first hole: the next read starts there and reports it.
        var expected = last + 1
        pending = []
        for set in sets where set.seq <= upTo {
            if set.seq != expected { break }
            pending.append(set)
            if let age = set.ageMs { committedAt[set.seq] = now - age }
            expected += 1
        }
    }

    /// Change sets that cannot be read: the agent cannot know what they changed.
    mutating func gap(resumeAt seq: Int64, into out: inout [Action]) {
        metrics.gaps += 1
        resume(at: seq, into: &out)
    }

    /// What the agent no longer knows (a rewind, a gap): it goes on from `seq`,
    /// everything FreeSWITCH caches is flushed, gateways are reconciled, and the
    /// configuration is read again as of `seq`, so later change sets are planned
    /// against what the database really holds.
    mutating func resume(at seq: Int64, into out: inout [Action]) {
        lastSeq = seq
        out.append(write(seq))
        configCurrent = false
        flushAll = true
        needReconcile = true
        pending = []
    }

    // MARK: Sending

    static func step(_ action: AgentAction) -> Step {
        switch action {
        case .api(let command): return .command(command)
        case .restartProfile(let profile): return .restart(profile)
        }
    }

    mutating func replied(_ reply: String, now: Int64, into out: inout [Action]) {
        guard let step = steps.first else { return }
        switch step {
        case .command(let command):
            out.append(.log("api \(command) → \(AgentText.oneLine(reply))"))
            metrics.sent(command)
            guard AgentText.isFailure(command, reply) else {
                steps.removeFirst()
                attempt = 0
                return
            }
            metrics.refused(command)
            attempt += 1
            if attempt >= settings.attempts {
                out.append(.report("`\(command)` failed \(attempt) times (last reply: \(AgentText.oneLine(reply))); giving up on it"))
                metrics.abandoned(command)
                metrics.lastFailure = AgentStatus.Failure(command: command, reply: AgentText.oneLine(reply))
                steps.removeFirst()
                attempt = 0
                return
            }
            if attempt == 1 { retryDelay = settings.retryMs }
            out.append(.log("`\(command)` failed (attempt \(attempt)); retrying in \(AgentMachine.seconds(retryDelay)) s"))
            stage = .retrying(until: now + retryDelay)
            retryDelay *= 2
        case .status(let profile):
            steps.removeFirst()
            let inUse = AgentReconcile.profilesInUse(fromXMLStatus: reply)[profile.lowercased()] ?? 0
            if inUse > 0 {
                if !pendingRestarts.contains(profile) {
                    out.append(.report("sofia profile \(profile) needs a restart; waiting: \(inUse) active call(s) (--force-restart does not wait)"))
                    nextRestartCheck = max(nextRestartCheck, now + settings.restartCheckMs)
                }
                pendingRestarts.insert(profile)
            } else {
                pendingRestarts.remove(profile)
                steps.insert(.command("sofia profile \(profile) restart"), at: 0)
            }
        case .restart, .gateways:
            break
        }
    }

    /// The request for the step at the head of the queue (a restart is decided here).
    mutating func request(now: Int64, into out: inout [Action]) -> Action? {
        while let step = steps.first {
            switch step {
            case .command(let command):
                return .send(command)
            case .status:
                return .send("sofia xmlstatus")
            case .gateways:
                return .reconcile(config)
            case .restart(let profile):
                if !settings.allowRestart {
                    out.append(.report("sofia profile \(profile) needs a restart to apply its settings (not done: start the agent with --allow-restart, or run `sofia profile \(profile) restart`)"))
                    steps.removeFirst()
                } else if settings.forceRestart {
                    pendingRestarts.remove(profile)
                    steps[0] = .command("sofia profile \(profile) restart")
                } else {
                    steps[0] = .status(profile)
                }
            }
        }
        return nil
    }

    // MARK: Deciding

    /// What to do next, given everything known: the one place that decides.
    mutating func next(now: Int64, into out: inout [Action]) -> Action {
        switch stage {
        case .backingOff(let until), .retrying(let until): return .sleep(until: until)
        case .done: return .exit
        default: break
        }
        if !databaseUp { return .connectDatabase }
        if case .reverting(let target, _, let seq) = stage {
            return .readChangeSets(after: target, upTo: seq, limit: 100_000)
        }
        if !configCurrent { return .loadConfig }
        if !eventSocketUp { return .connectEventSocket }
        if let current = work {
            if let r = request(now: now, into: &out) { return r }
            finish(current, now: now, into: &out)
        }
        if needReconcile || flushAll {
            work = .reconcile
            steps = (flushAll ? [.command("xml_flush_cache")] : []) + [.gateways]
            flushAll = false
            needReconcile = false
            return request(now: now, into: &out)!
        }
        if let last = lastSeq, let set = pending.first, set.seq == last + 1 {
            pending.removeFirst()
            var after = config
            for row in set.rows { after.apply(row) }
            work = .changeSet(set, after: after)
            steps = []
            return .plan(set, before: config, after: after)
        }
        pending = []
        if let last = lastSeq, counter > last {
            stage = .readingChangeSets(upTo: counter)
            return .readChangeSets(after: last, upTo: counter, limit: settings.batch)
        }
        if settings.once {
            stage = .done
            out.append(.recordStatus(status))
            return .exit
        }
        if !pendingRestarts.isEmpty && now >= nextRestartCheck {
            nextRestartCheck = now + settings.restartCheckMs
            work = .restartChecks
            steps = pendingRestarts.sorted().map { .restart($0) }
            if let r = request(now: now, into: &out) { return r }
            work = nil
        }
        if now >= nextHeartbeat {
            nextHeartbeat = now + settings.heartbeatMs
            out.append(.recordStatus(status))
        }
        if let every = settings.nodeStatsMs, now >= nextNodeStats {
            nextNodeStats = now + every
            return .readNodeStats
        }
        stage = .waiting
        var until = max(nextPoll, now)
        if !pendingRestarts.isEmpty { until = min(until, max(nextRestartCheck, now)) }
        until = min(until, max(nextHeartbeat, now))
        if settings.nodeStatsMs != nil { until = min(until, max(nextNodeStats, now)) }
        return .waitForChange(until: until)
    }

    /// The work's last step is done.
    mutating func finish(_ done: Work, now: Int64, into out: inout [Action]) {
        work = nil
        switch done {
        case .reconcile:
            if let last = lastSeq, savedSeq != last { out.append(write(last)) }
        case .changeSet(let set, let after):
            config = after
            lastSeq = set.seq
            out.append(write(set.seq))
            metrics.applied(seq: set.seq, latencyMs: committedAt.removeValue(forKey: set.seq).map { now - $0 })
            out.append(.recordStatus(status))
            nextHeartbeat = now + settings.heartbeatMs
        case .restartChecks:
            break
        }
    }

    mutating func write(_ seq: Int64) -> Action {
        savedSeq = seq
        return .writeState(seq)
    }

    /// What the node reports of itself (docs/agent.md, "Fleet view").
    public var status: AgentStatus {
        AgentStatus(appliedSeq: lastSeq, lastFailure: metrics.lastFailure)
    }

    /// Milliseconds as seconds for a log line: 250 → "0.25", 2000 → "2".
    public static func seconds(_ ms: Int64) -> String { AgentText.decimal(ms, places: 3) }
}

/// What a node says of itself: the last change set applied, the last command that
/// kept failing.
public struct AgentStatus: Equatable, Sendable {
    public struct Failure: Equatable, Sendable {
        public var command: String
        public var reply: String
        public init(command: String, reply: String) { self.command = command; self.reply = reply }
    }
    public var appliedSeq: Int64?
    public var lastFailure: Failure?
    public init(appliedSeq: Int64?, lastFailure: Failure?) { self.appliedSeq = appliedSeq; self.lastFailure = lastFailure }
}

/// Counters the agent keeps (served as Prometheus text, docs/agent.md "Metrics").
public struct AgentMetrics: Equatable, Sendable {
    /// Per kind of command (`AgentText.kind`): sent, refused by FreeSWITCH, given up.
    public var commandsSent: [String: Int] = [:]
    public var commandsRefused: [String: Int] = [:]
    public var commandsAbandoned: [String: Int] = [:]
    public var changeSetsApplied = 0
    public var databaseReconnects = 0
    public var eventSocketReconnects = 0
    public var gaps = 0
    public var rewinds = 0
    public var appliedSeq: Int64?
    /// The newest change set the agent has seen (the change counter).
    public var newestSeq: Int64?
    public var databaseConnected = false
    public var eventSocketConnected = false
    public var lastFailure: AgentStatus.Failure?
    /// The node library's counters as FreeSWITCH's process last reported them.
    public var node: NodeStats?
    /// Commit → applied, in milliseconds (bucket upper bounds in `AgentMetrics.buckets`).
    public var latency = Histogram(bounds: AgentMetrics.buckets)

    public static let buckets: [Double] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]

    public init() {}

    mutating func sent(_ command: String) { commandsSent[AgentText.kind(command), default: 0] += 1 }
    mutating func refused(_ command: String) { commandsRefused[AgentText.kind(command), default: 0] += 1 }
    mutating func abandoned(_ command: String) { commandsAbandoned[AgentText.kind(command), default: 0] += 1 }
    mutating func applied(seq: Int64, latencyMs: Int64?) {
        changeSetsApplied += 1
        appliedSeq = seq
        if let latencyMs { latency.observe(Double(max(0, latencyMs))) }
    }
}

/// A cumulative histogram (Prometheus' shape): counts per upper bound, sum, count.
public struct Histogram: Equatable, Sendable {
    public let bounds: [Double]
    public private(set) var counts: [Int]
    public private(set) var sum: Double = 0
    public private(set) var count = 0

    public init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    public mutating func observe(_ value: Double) {
        for (i, b) in bounds.enumerated() where value <= b { counts[i] += 1 }
        sum += value
        count += 1
    }
}

/// The agent's text rules: what counts as a refused command, how a reply is logged.
public enum AgentText {
    /// A reply that means FreeSWITCH did not do it.
    public static func isFailure(_ command: String, _ reply: String) -> Bool {
        let t = trimmed(reply)
        if command.contains(" killgw ") && t.hasPrefix("-ERR no such gateway") { return false }  // already gone: the goal
        return t.hasPrefix("-ERR") || t.hasPrefix("-USAGE") || t.hasPrefix("Invalid ") || t.contains("must be up for at least")
    }

    /// A reply on one line: its non-empty lines joined with " / ", at most 300 characters.
    public static func oneLine(_ reply: String) -> String {
        let lines = reply.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map(trimmed).filter { !$0.isEmpty }
        let joined = lines.joined(separator: " / ")
        return joined.count > 300 ? String(joined.prefix(300)) + "…" : (joined.isEmpty ? "(empty)" : joined)
    }

    /// The kind of a command for metrics: `xml_flush_cache`, `sofia profile rescan`,
    /// `sofia profile killgw`, `sofia profile restart`, `reloadacl`, `callcenter_config`…
    public static func kind(_ command: String) -> String {
        let words = command.split(separator: " ")
        guard let first = words.first else { return "" }
        if first == "sofia", words.count >= 4, words[1] == "profile" { return "sofia profile \(words[3])" }
        if first == "sofia", words.count >= 2 { return "sofia \(words[1])" }
        return String(first)
    }

    /// `value / 10^places` in decimal without float noise or trailing zeros:
    /// (250, 3) → "0.25", (2000, 3) → "2", (5, 6) → "0.000005".
    public static func decimal(_ value: Int64, places: Int) -> String {
        var scale: Int64 = 1
        for _ in 0..<places { scale *= 10 }
        let sign = value < 0 ? "-" : "", v = value.magnitude
        let whole = v / UInt64(scale), frac = v % UInt64(scale)
        if frac == 0 { return sign + String(whole) }
        var f = String(frac)
        while f.count < places { f = "0" + f }
        while f.hasSuffix("0") { f.removeLast() }
        return "\(sign)\(whole).\(f)"
    }

    static func trimmed<S: StringProtocol>(_ s: S) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = s.firstIndex(where: { !isSpace($0) }), let end = s.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(s[start...end])
    }
}
