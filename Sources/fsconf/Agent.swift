import ArgumentParser
import FSConfAgentCore
import FSConfAdminCore
import FSConfCore
import FSConfAdminStore
import FSConfStore
import Foundation

extension Fsconf {
    struct Agent: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow committed changes and apply each to this node's FreeSWITCH with the smallest reload.",
            discussion: """
                One agent per FreeSWITCH node. It follows change sets (LISTEN fsconf_changes and a
                poll of fsconf.change_counter, so it also works against a standby), plans the
                minimal FreeSWITCH commands for each (docs/agent.md) and sends them over the event
                socket. The event socket password comes from --esl-password-file or the
                FSCONF_ESL_PASSWORD environment variable, never from the command line.
                """)

        @OptionGroup var connection: ConnectionOptions
        @Option(help: "FreeSWITCH event socket host.") var eslHost = "127.0.0.1"
        @Option(help: "FreeSWITCH event socket port.") var eslPort = 8021
        @Option(help: ArgumentHelp("A file holding the event socket password (else FSCONF_ESL_PASSWORD).", valueName: "file"))
        var eslPasswordFile: String?
        @Option(help: ArgumentHelp("Where the last applied seq is kept.", valueName: "file"))
        var stateFile = "/var/lib/fsconf/agent.seq"
        @Flag(help: "Restart sofia profiles whose settings changed (only without active calls).") var allowRestart = false
        @Flag(help: "With --allow-restart: restart even with active calls.") var forceRestart = false
        @Flag(help: "Apply the pending change sets and exit.") var once = false
        @Flag(help: "With --once: print what would be sent; send nothing, keep the state.") var dryRun = false
        @Option(help: "How often to read fsconf.change_counter, in milliseconds.") var pollMs = 250
        @Option(help: "Above this many user flushes for one change set, flush every cached user.") var flushAllAbove = 200
        @Option(help: ArgumentHelp("This node's name: its FreeSWITCH switchname (default: the host name, which the switchname is unless switch.conf sets one).",
                                   valueName: "name"))
        var nodeName: String?

        func validate() throws {
            if dryRun && !once { throw ValidationError("--dry-run needs --once") }
            if forceRestart && !allowRestart { throw ValidationError("--force-restart needs --allow-restart") }
            if !(10...60_000).contains(pollMs) { throw ValidationError("--poll-ms takes 10...60000") }
            if !(1...65535).contains(eslPort) { throw ValidationError("--esl-port takes 1...65535") }
            if let nodeName, let problem = FSConfCore.Scope.nameProblem(nodeName) { throw ValidationError("--node-name \(nodeName): \(problem)") }
        }

        /// The node's name (docs/cluster.md): --node-name, else the host name.
        var resolvedNodeName: String {
            if let nodeName { return nodeName.asciiLowercased }
            var buffer = [CChar](repeating: 0, count: 256)
            guard gethostname(&buffer, buffer.count) == 0 else { return "" }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).asciiLowercased
        }

        func password() throws -> String {
            if let file = eslPasswordFile {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw CLIFailure("cannot read \(file)", code: CLIFailure.Code.invalid)
                }
                return text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if let env = ProcessInfo.processInfo.environment["FSCONF_ESL_PASSWORD"] { return env }
            throw CLIFailure("no event socket password: give --esl-password-file or set FSCONF_ESL_PASSWORD", code: CLIFailure.Code.invalid)
        }

        func execute() throws {
            let runner = AgentRunner(options: self, password: dryRun ? (try? password()) : try password())
            if once {
                try runner.runOnce()
            } else {
                runner.runForever()
            }
        }
    }
}

/// The agent's loop: follow, plan, send, remember.
final class AgentRunner {
    let options: Fsconf.Agent
    let password: String?
    var store: AgentStore?
    var esl: EventSocket?
    var listening = false
    var state = ConfigState()
    var lastSeq: Int64?
    var nodeGlobals: [String: String?] = [:]
    var pendingRestarts: Set<String> = []
    var nextRestartCheck = Date.distantPast
    var eslEverConnected = false
    var needReconcile = true
    /// This node as its lookups name it (docs/cluster.md), and its groups.
    var me = NodeIdentity(name: nil)

    init(options: Fsconf.Agent, password: String?) {
        self.options = options
        self.password = password
    }

    // MARK: Logging (stderr; never the password)

    static let stamp: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSSZ"
        return f
    }()

    func log(_ text: String) {
        FileHandle.standardError.write(Data("\(AgentRunner.stamp.string(from: Date())) fsconf agent: \(text)\n".utf8))
    }

    static func oneLine(_ reply: String) -> String {
        let lines = reply.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let joined = lines.joined(separator: " / ")
        return joined.count > 300 ? String(joined.prefix(300)) + "…" : (joined.isEmpty ? "(empty)" : joined)
    }

    // MARK: State file

    func readState() -> Int64? {
        guard let text = try? String(contentsOfFile: options.stateFile, encoding: .utf8) else { return nil }
        return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func writeState(_ seq: Int64) {
        let url = URL(fileURLWithPath: options.stateFile)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp")
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data("\(seq)\n".utf8).write(to: tmp)
            if rename(tmp.path, url.path) != 0 { log("cannot write \(url.path): \(String(cString: strerror(errno)))") }
        } catch {
            log("cannot write \(url.path): \(error)")
        }
    }

    // MARK: Connections

    func connectDB() throws {
        if store != nil { return }
        let s = try AgentStore(conninfo: options.connection.conninfo ?? "")
        let (counter, standby) = try s.counter()
        if !standby { try s.listen() }
        listening = !standby
        let loaded = try s.configState()
        store = s
        log("connected to the database (\(standby ? "standby: polling" : "primary: LISTEN + polling"), change counter \(counter))")
        if let last = lastSeq ?? readState() {
            lastSeq = last
            // The configuration as it was at the last applied change set.
            var st = loaded.state
            if last < loaded.seq {
                let pending = try s.changeSets(after: last, upTo: loaded.seq, limit: 100_000)
                for set in pending.reversed() { st = st.before(set) }
            }
            state = st
            if last > loaded.seq {
                log("the database's change counter (\(loaded.seq)) is behind the last applied seq (\(last)): it was restored or replaced; reconciling and flushing every cached user")
                lastSeq = loaded.seq
                forceFlushAll = true
            }
        } else {
            state = loaded.state
            lastSeq = loaded.seq
            forceFlushAll = true
            log("no state file: reconciling and starting from seq \(loaded.seq)")
        }
        needReconcile = true
    }

    var forceFlushAll = false

    func connectESL() throws {
        if let e = esl, e.isOpen { return }
        guard let password else { throw EventSocket.Failure(description: "no event socket password") }
        esl = try EventSocket(host: options.eslHost, port: options.eslPort, password: password)
        log("connected to FreeSWITCH's event socket at \(options.eslHost):\(options.eslPort)")
        nodeGlobals = [:]
        if eslEverConnected {
            // Whatever FreeSWITCH did while we were away (a restart, changes applied by hand):
            // look again rather than assume.
            forceFlushAll = true
        }
        eslEverConnected = true
        needReconcile = true
    }

    func dropDB(_ error: Error) {
        if store != nil { log("lost the database: \(error); reconnecting") }
        store = nil
        listening = false
    }

    func dropESL(_ error: Error) {
        if esl != nil { log("lost the event socket: \(error); reconnecting") }
        esl?.close()
        esl = nil
    }

    /// The node's `$${name}` (global_getvar), cached per connection.
    func nodeGlobal(_ name: String) -> String? {
        if let cached = nodeGlobals[name] { return cached }
        guard let e = esl, e.isOpen, let value = try? e.api("global_getvar \(name)") else {
            return options.dryRun ? "{node:\(name)}" : nil
        }
        let v = value.trimmingCharacters(in: .whitespacesAndNewlines)
        let result: String? = v.isEmpty || v.hasPrefix("-ERR") ? nil : v
        nodeGlobals[name] = result
        return result
    }

    /// Reads this node's groups again; the state's views follow.
    func refreshIdentity(_ s: AgentStore) throws {
        me = try s.identity(of: options.resolvedNodeName)
        state.node = me
    }

    /// Plans the part of `set` that concerns this node (`ChangeSet.concerning`).
    func plan(_ s: AgentStore, _ set: ChangeSet, before: ConfigState) -> AgentPlan {
        let mine = set.concerning(me)
        var after = before
        for row in mine.rows { after.apply(row) }
        return planner(s).plan(mine, before: before, after: after)
    }

    func planner(_ s: AgentStore) -> AgentPlanner {
        AgentPlanner(facts: s, node: { [unowned self] in self.nodeGlobal($0) }, flushAllAbove: options.flushAllAbove)
    }

    // MARK: Sending

    static func isFailure(_ command: String, _ reply: String) -> Bool {
        let t = reply.trimmingCharacters(in: .whitespacesAndNewlines)
        if command.contains(" killgw ") && t.hasPrefix("-ERR no such gateway") { return false }  // already gone: the goal
        return t.hasPrefix("-ERR") || t.hasPrefix("-USAGE") || t.hasPrefix("Invalid ") || t.contains("must be up for at least")
    }

    /// Sends one command; a refused command is retried with backoff (0.25 s … 4 s),
    /// then reported. A lost connection throws (the change set is retried whole).
    func send(_ command: String) throws {
        var delay = 0.25
        for attempt in 1...5 {
            guard let e = esl else { throw EventSocket.Failure(description: "not connected") }
            let reply = try e.api(command)
            log("api \(command) → \(AgentRunner.oneLine(reply))")
            if !AgentRunner.isFailure(command, reply) { return }
            if attempt == 5 {
                log("REPORT: `\(command)` failed 5 times (last reply: \(AgentRunner.oneLine(reply))); giving up on it")
                return
            }
            log("`\(command)` failed (attempt \(attempt)); retrying in \(delay) s")
            Thread.sleep(forTimeInterval: delay)
            delay *= 2
        }
    }

    func perform(_ action: AgentAction) throws {
        switch action {
        case .api(let command):
            try send(command)
        case .restartProfile(let profile):
            guard options.allowRestart else {
                log("REPORT: sofia profile \(profile) needs a restart to apply its settings (not done: start the agent with --allow-restart, or run `sofia profile \(profile) restart`)")
                return
            }
            try restartIfIdle(profile)
        }
    }

    func restartIfIdle(_ profile: String) throws {
        guard let e = esl else { throw EventSocket.Failure(description: "not connected") }
        if !options.forceRestart {
            let status = try e.api("sofia xmlstatus")
            let inUse = AgentReconcile.profilesInUse(fromXMLStatus: status)[profile.lowercased()] ?? 0
            if inUse > 0 {
                if !pendingRestarts.contains(profile) {
                    log("REPORT: sofia profile \(profile) needs a restart; waiting: \(inUse) active call(s) (--force-restart does not wait)")
                }
                pendingRestarts.insert(profile)
                return
            }
        }
        pendingRestarts.remove(profile)
        try send("sofia profile \(profile) restart")
    }

    // MARK: Reconcile

    func reconcile(_ s: AgentStore) throws {
        try refreshIdentity(s)
        var e = VariableExpander(globals: state.nodeGlobals, node: { [unowned self] in self.nodeGlobal($0) })
        if forceFlushAll { try send("xml_flush_cache") }
        forceFlushAll = false
        guard let tree = state.tree("sofia.conf") else {
            log("reconcile: sofia.conf is not stored in fsconf; gateways left as FreeSWITCH runs them")
            needReconcile = false
            if !options.dryRun, let last = lastSeq, readState() != last { writeState(last) }
            return
        }
        let sofia = SofiaModel(tree, expand: { e.expand($0) })
        var expected: [String: Set<String>] = [:]
        for (key, p) in sofia.profiles { expected[key] = Set(p.gateways.keys) }
        for (domain, name) in try s.allGateways(for: me) {
            let d = e.expand(domain), n = e.expand(name)
            for p in sofia.profilesParsing(d) { expected[p.lowercased(), default: []].insert(n) }
        }
        guard let esl else { throw EventSocket.Failure(description: "not connected") }
        let reply = try esl.api("sofia xmlstatus gateway")
        let running = AgentReconcile.gateways(fromXMLStatus: reply)
        log("api sofia xmlstatus gateway → \(running.count) gateway(s) running")
        let actions = AgentReconcile.gatewayActions(running: running, sofia: sofia, expected: expected)
        if actions.isEmpty { log("reconcile: gateways match the database") }
        for a in actions { try perform(a) }
        needReconcile = false
        if !options.dryRun, let last = lastSeq, readState() != last { writeState(last) }
    }

    // MARK: Applying change sets

    /// Plans and sends every change set up to the counter. Returns how many were applied.
    @discardableResult
    func catchUp(_ s: AgentStore, upTo counter: Int64) throws -> Int {
        guard var last = lastSeq else { return 0 }
        try refreshIdentity(s)
        var applied = 0
        while last < counter {
            let sets = try s.changeSets(after: last, upTo: counter)
            if sets.isEmpty {
                log("REPORT: change sets \(last + 1)…\(counter) cannot be read (removed); flushing every cached user and reconciling")
                forceFlushAll = true
                needReconcile = true
                last = counter
                lastSeq = last
                writeState(last)
                break
            }
            for set in sets {
                if set.seq != last + 1 {
                    log("REPORT: change sets \(last + 1)…\(set.seq - 1) cannot be read; flushing every cached user and reconciling")
                    forceFlushAll = true
                    needReconcile = true
                }
                var after = state
                for row in set.rows { after.apply(row) }
                s.resetFactError()
                let plan = self.plan(s, set, before: state)
                if let error = s.factError { throw error }
                if set.rows.contains(where: { $0.table == "node_groups" && $0.concerns(me) }) {
                    // What this node sees may have changed anywhere: look again.
                    log("REPORT: seq \(set.seq) changed the groups of this node (\(me.name ?? "?")): flushing every cached user and reconciling gateways; a profile setting that differs per group needs its profile rescanned or restarted")
                    forceFlushAll = true
                    needReconcile = true
                }
                log("seq \(set.seq) (change set \(set.id), \(set.rows.count) row change(s)): \(plan.actions.isEmpty ? "nothing to send" : "\(plan.actions.count) command(s)")")
                for r in plan.reports { log("REPORT: \(r)") }
                for a in plan.actions { try perform(a) }
                state = after
                last = set.seq
                lastSeq = last
                writeState(last)
                applied += 1
            }
        }
        return applied
    }

    // MARK: Modes

    func runOnce() throws {
        do { try connectDB() } catch {
            throw CLIFailure("cannot reach the database: \(error)", code: CLIFailure.Code.unreachable)
        }
        guard let s = store else { return }
        let counter = try s.counter().seq
        if options.dryRun {
            if password != nil { try? connectESL() }
            guard readState() != nil, let last = lastSeq else {
                print("# no state file (\(options.stateFile)): the agent would reconcile and start from seq \(counter)")
                return
            }
            if last >= counter { print("# nothing pending (last applied seq \(last))"); return }
            try refreshIdentity(s)
            var st = state
            for set in try s.changeSets(after: last, upTo: counter, limit: 100_000) {
                var after = st
                for row in set.rows { after.apply(row) }
                let plan = self.plan(s, set, before: st)
                print("# seq \(set.seq) (change set \(set.id), \(set.rows.count) row change(s))")
                for a in plan.actions {
                    if case .restartProfile = a {
                        print("\(a)  # only with --allow-restart, and only without active calls unless --force-restart")
                    } else {
                        print(a)
                    }
                }
                for r in plan.reports { print("# report: \(r)") }
                st = after
            }
            return
        }
        do {
            try connectESL()
            if needReconcile || forceFlushAll { try reconcile(s) }
            try catchUp(s, upTo: counter)
            if needReconcile || forceFlushAll { try reconcile(s) }
        } catch let e as EventSocket.Failure {
            throw CLIFailure(e.description, code: CLIFailure.Code.failed)
        }
    }

    func runForever() {
        var dbBackoff = 0.25, eslBackoff = 0.25
        var nextPoll = Date.distantPast
        log("starting (event socket \(options.eslHost):\(options.eslPort), state \(options.stateFile), restarts \(options.allowRestart ? (options.forceRestart ? "allowed, forced" : "allowed when idle") : "reported only"))")
        while true {
            do { try connectDB(); dbBackoff = 0.25 } catch {
                dropDB(error)
                log("database unavailable (\(error)); retrying in \(dbBackoff) s")
                Thread.sleep(forTimeInterval: dbBackoff)
                dbBackoff = min(dbBackoff * 2, 5)
                continue
            }
            do { try connectESL(); eslBackoff = 0.25 } catch {
                dropESL(error)
                log("FreeSWITCH unavailable (\(error)); retrying in \(eslBackoff) s")
                Thread.sleep(forTimeInterval: eslBackoff)
                eslBackoff = min(eslBackoff * 2, 5)
                continue
            }
            guard let s = store else { continue }
            do {
                if needReconcile || forceFlushAll { try reconcile(s) }
                // Wake on a notification, or at the next poll.
                if listening {
                    let wait = max(0, nextPoll.timeIntervalSinceNow)
                    if wait > 0 { _ = s.conn.waitReadable(deadline: MonotonicClock.deadline(afterMilliseconds: Int(wait * 1000))) }
                    _ = try s.conn.drainNotifications()
                } else {
                    let wait = nextPoll.timeIntervalSinceNow
                    if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                }
                nextPoll = Date().addingTimeInterval(Double(options.pollMs) / 1000)
                let (counter, _) = try s.counter()
                if let last = lastSeq, counter < last {
                    log("REPORT: the database's change counter went back (\(counter) < \(last)): restored or replaced; reconciling and flushing every cached user")
                    lastSeq = counter
                    writeState(counter)
                    if let loaded = try? s.configState() { state = loaded.state }
                    forceFlushAll = true
                    needReconcile = true
                    continue
                }
                try catchUp(s, upTo: counter)
                if !pendingRestarts.isEmpty && Date() >= nextRestartCheck {
                    nextRestartCheck = Date().addingTimeInterval(5)
                    for p in pendingRestarts.sorted() { try restartIfIdle(p) }
                }
            } catch let error as EventSocket.Failure {
                dropESL(error)
            } catch {
                dropDB(error)
            }
        }
    }
}
