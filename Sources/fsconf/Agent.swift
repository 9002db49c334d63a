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
        @Option(help: ArgumentHelp("This node's name in fsconf.nodes (default: the host name).", valueName: "name"))
        var nodeName: String?
        @Option(help: ArgumentHelp("Where the node's status is recorded (default: --db; give the primary when --db is a standby).",
                                   valueName: "conninfo"))
        var reportDb: String?
        @Option(help: ArgumentHelp("Serve Prometheus metrics at http://ADDRESS/metrics (e.g. 127.0.0.1:9464); off by default.",
                                   valueName: "host:port"))
        var metricsListen: String?
        @Option(help: ArgumentHelp("The node library FreeSWITCH loads (its counters are read for the metrics).", valueName: "path"))
        var nodeLibrary = "/usr/local/lib/fsconf/fsconf.so"

        func validate() throws {
            if dryRun && !once { throw ValidationError("--dry-run needs --once") }
            if forceRestart && !allowRestart { throw ValidationError("--force-restart needs --allow-restart") }
            if !(10...60_000).contains(pollMs) { throw ValidationError("--poll-ms takes 10...60000") }
            if !(1...65535).contains(eslPort) { throw ValidationError("--esl-port takes 1...65535") }
            if let nodeName, nodeName.isEmpty || nodeName.count > 200 { throw ValidationError("--node-name takes 1 to 200 characters") }
            if let metricsListen {
                do { _ = try MetricsServer.split(metricsListen) } catch { throw ValidationError("\(error)") }
                if once { throw ValidationError("--metrics-listen serves a running agent: not with --once") }
            }
        }

        /// The node's name: --node-name, else the host name.
        var resolvedNodeName: String {
            if let nodeName { return nodeName }
            var buffer = [CChar](repeating: 0, count: 256)
            if gethostname(&buffer, buffer.count) == 0 {
                let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !name.isEmpty { return name }
            }
            return "unknown"
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
            if dryRun { try runner.dryRun() } else { try runner.run() }
        }
    }
}

/// The I/O driver of the agent's state machine (FSConfAgentCore.AgentMachine):
/// it performs each request the machine makes — connect, read, plan, send,
/// reconcile, wait — and answers with the event it produced.
final class AgentRunner {
    let options: Fsconf.Agent
    let password: String?
    var store: AgentStore?
    var esl: EventSocket?
    var listening = false
    var nodeGlobals: [String: String?] = [:]
    var machine: AgentMachine
    /// FreeSWITCH's `version`, asked once per event socket connection.
    var freeswitchVersion: String?
    /// The connection status reports go over (--report-db), when not the main one.
    var reportStore: AgentStore?
    var lastReportError: String?
    lazy var nodeName = options.resolvedNodeName
    var metrics: MetricsServer?

    init(options: Fsconf.Agent, password: String?) {
        self.options = options
        self.password = password
        var settings = AgentMachine.Settings()
        settings.once = options.once
        settings.allowRestart = options.allowRestart
        settings.forceRestart = options.forceRestart
        settings.pollMs = Int64(options.pollMs)
        if options.metricsListen != nil { settings.nodeStatsMs = 5_000 }
        machine = AgentMachine(settings: settings)
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

    func connectDB() throws(PostgresError) -> AgentStore {
        if let store { return store }
        let s = try AgentStore(conninfo: options.connection.conninfo ?? "")
        store = s
        return s
    }

    func connectESL() throws -> EventSocket {
        if let e = esl, e.isOpen { return e }
        guard let password else { throw EventSocket.Failure(description: "no event socket password") }
        let e = try EventSocket(host: options.eslHost, port: options.eslPort, password: password)
        esl = e
        nodeGlobals = [:]
        let version = AgentText.oneLine(try e.api("version"))
        freeswitchVersion = version.hasPrefix("-ERR") || version == "(empty)" ? nil : version
        return e
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

    /// This node as its lookups name it (docs/cluster.md): `--node-name` and the
    /// groups fsconf.node_groups gives it, read again for each plan.
    func identity(_ s: AgentStore) throws(PostgresError) -> NodeIdentity {
        try s.identity(of: nodeName)
    }

    /// Plans what of `set` concerns this node (`ChangeSet.concerning`), against its
    /// view of the configuration (`ConfigState.node`).
    func plan(_ s: AgentStore, _ set: ChangeSet, before: ConfigState) throws -> AgentPlan {
        let me = try identity(s)
        var after = before
        for row in set.concerning(me).rows { after.apply(row) }
        return planner(s).plan(set, before: before, after: after, for: me)
    }

    func planner(_ s: AgentStore) -> AgentPlanner {
        AgentPlanner(facts: s, node: { [unowned self] in self.nodeGlobal($0) }, flushAllAbove: options.flushAllAbove)
    }

    /// The gateway commands that bring FreeSWITCH in line with `config` and the
    /// stored directory gateways; nil when sofia.conf is not stored.
    func reconcileGateways(_ config: ConfigState, _ s: AgentStore, _ e: EventSocket) throws -> [AgentAction]? {
        var config = config
        config.node = try identity(s)
        var x = VariableExpander(globals: config.nodeGlobals, node: { [unowned self] in self.nodeGlobal($0) })
        guard let tree = config.tree("sofia.conf") else { return nil }
        let sofia = SofiaModel(tree, expand: { x.expand($0) })
        var expected: [String: Set<String>] = [:]
        for (key, p) in sofia.profiles { expected[key] = Set(p.gateways.keys) }
        for (domain, name) in try s.allGateways(for: config.node) {
            let d = x.expand(domain), n = x.expand(name)
            for p in sofia.profilesParsing(d) { expected[p.lowercased(), default: []].insert(n) }
        }
        let reply = try e.api("sofia xmlstatus gateway")
        let running = AgentReconcile.gateways(fromXMLStatus: reply)
        log("api sofia xmlstatus gateway → \(running.count) gateway(s) running")
        return AgentReconcile.gatewayActions(running: running, sofia: sofia, expected: expected)
    }

    // MARK: The fleet view

    /// Records the node's status (best effort: a failure is logged once, the agent goes on).
    func record(_ status: AgentStatus) {
        do {
            let s: AgentStore
            if let conninfo = options.reportDb {
                if reportStore == nil { reportStore = try AgentStore(conninfo: conninfo) }
                s = reportStore!
            } else {
                guard let main = store else { return }
                s = main
            }
            try s.report(node: nodeName, freeswitchVersion: freeswitchVersion, agentVersion: FSConfVersion.string, status: status)
            if lastReportError != nil { log("status recorded again in fsconf.nodes") }
            lastReportError = nil
        } catch {
            if options.reportDb != nil { reportStore = nil }
            let message = "\(error)"
            if message != lastReportError {
                log("cannot record this node's status in fsconf.nodes (\(message)); applying goes on" +
                    (message.contains("read-only") ? ": --db is a standby, give the primary with --report-db" : ""))
            }
            lastReportError = message
        }
    }

    // MARK: Driving the machine

    static var now: Int64 { Int64(MonotonicClock.now() / 1_000_000) }

    /// Performs one request; returns the event it produced. In --once mode a
    /// failure ends the run (thrown) instead of a reconnect.
    func perform(_ request: AgentMachine.Action) throws -> AgentMachine.Event {
        do {
            switch request {
            case .connectDatabase:
                let s = try connectDB()
                let (counter, standby) = try s.counter()
                if !standby { try s.listen() }
                listening = !standby
                return .databaseConnected(counter: counter, standby: standby)
            case .loadConfig:
                let loaded = try connectDB().configState()
                return .configLoaded(loaded.state, seq: loaded.seq)
            case .readCounter:
                return .counterRead(try connectDB().counter().seq)
            case .readChangeSets(let after, let upTo, let limit):
                return .changeSetsRead(try connectDB().changeSets(after: after, upTo: upTo, limit: limit))
            case .connectEventSocket:
                _ = try connectESL()
                log("connected to FreeSWITCH's event socket at \(options.eslHost):\(options.eslPort)")
                return .eventSocketConnected
            case .plan(let set, let before, let after):
                let s = try connectDB()
                s.resetFactError()
                _ = after  // this node's `after` is its part of the set applied to `before`
                let plan = try self.plan(s, set, before: before)
                if let error = s.factError { throw error }
                return .planned(plan)
            case .send(let command):
                return .replied(try connectESL().api(command))
            case .reconcile(let config):
                return .reconcilePlanned(try reconcileGateways(config, try connectDB(), try connectESL()))
            case .readNodeStats:
                return .nodeStatsRead(try connectESL().api(NodeStats.command(library: options.nodeLibrary)))
            case .waitForChange(let until):
                let s = try connectDB()
                let wait = until - AgentRunner.now
                if listening {
                    if wait > 0 { _ = s.conn.waitReadable(deadline: MonotonicClock.deadline(afterMilliseconds: Int(wait))) }
                    _ = try s.conn.drainNotifications()
                } else if wait > 0 {
                    Thread.sleep(forTimeInterval: Double(wait) / 1000)
                }
                return .tick
            case .sleep(let until):
                let wait = until - AgentRunner.now
                if wait > 0 { Thread.sleep(forTimeInterval: Double(wait) / 1000) }
                return .tick
            case .exit, .log, .report, .writeState, .recordStatus:
                return .tick
            }
        } catch let error as EventSocket.Failure {
            esl?.close()
            esl = nil
            if options.once { throw CLIFailure(error.description, code: CLIFailure.Code.failed) }
            return .eventSocketFailed(error.description)
        } catch {
            store = nil
            listening = false
            if options.once {
                if case .connectDatabase = request {
                    throw CLIFailure("cannot reach the database: \(error)", code: CLIFailure.Code.unreachable)
                }
                throw error
            }
            return .databaseFailed(String(describing: error))
        }
    }

    /// Feeds the machine until it says exit (--once) — or for ever.
    func run() throws {
        log("starting (event socket \(options.eslHost):\(options.eslPort), state \(options.stateFile), restarts \(options.allowRestart ? (options.forceRestart ? "allowed, forced" : "allowed when idle") : "reported only"))")
        if let listen = options.metricsListen {
            let server = try MetricsServer(listen: listen)
            server.publish(PrometheusText.render(machine.metrics))
            server.start()
            metrics = server
            log("metrics at http://\(server.address)/metrics")
        }
        var event = AgentMachine.Event.started(savedSeq: readState())
        while true {
            var request: AgentMachine.Action?
            let actions = machine.handle(event, now: AgentRunner.now)
            metrics?.publish(PrometheusText.render(machine.metrics))
            for action in actions {
                switch action {
                case .log(let text): log(text)
                case .report(let text): log("REPORT: \(text)")
                case .writeState(let seq): writeState(seq)
                case .recordStatus(let status): record(status)
                case .exit: return
                default: request = action
                }
            }
            guard let request else { return }
            event = try perform(request)
        }
    }

    // MARK: --once --dry-run

    /// Prints what the pending change sets would send; sends nothing, keeps the state.
    func dryRun() throws {
        let s: AgentStore
        do { s = try connectDB() } catch {
            throw CLIFailure("cannot reach the database: \(error)", code: CLIFailure.Code.unreachable)
        }
        if password != nil { _ = try? connectESL() }
        let loaded = try s.configState()
        guard let last = readState() else {
            print("# no state file (\(options.stateFile)): the agent would reconcile and start from seq \(loaded.seq)")
            return
        }
        let counter = try s.counter().seq
        if last >= counter { print("# nothing pending (last applied seq \(last))"); return }
        // The configuration as of the last applied seq: the loaded one, reverted.
        var st = loaded.state
        if last < loaded.seq {
            for set in try s.changeSets(after: last, upTo: loaded.seq, limit: 100_000).reversed() { st = st.before(set) }
        }
        for set in try s.changeSets(after: last, upTo: counter, limit: 100_000) {
            var after = st
            for row in set.rows { after.apply(row) }
            let plan = try self.plan(s, set, before: st)
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
    }
}
