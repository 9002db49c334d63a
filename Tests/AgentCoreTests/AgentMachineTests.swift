import FSConfAgentCore
import XCTest

/// A simulated node for the agent's state machine: a database (counter, change
/// sets, stored configuration), FreeSWITCH (replies per command prefix) and a
/// clock that moves only when the machine sleeps or waits. Each request the
/// machine makes is answered the way the driver (Sources/fsconf/Agent.swift) does.
struct World {
    var machine: AgentMachine
    var now: Int64 = 1_000
    var counter: Int64 = 0
    var sets: [Int64: ChangeSet] = [:]
    var config = ConfigState()
    var standby = false
    var databaseDown = false
    var eventSocketDown = false
    /// FreeSWITCH's replies: the longest matching prefix wins; default "+OK".
    var replies: [String: String] = [:]
    /// Commands that make FreeSWITCH go away instead of answering.
    var dropOn: Set<String> = []
    /// What the reconcile finds: gateway commands, or nil (no sofia.conf).
    var reconcile: [AgentAction]? = []
    var plans: [Int64: AgentPlan] = [:]
    var sent: [String] = []
    var written: [Int64] = []
    var logs: [String] = []
    var reports: [String] = []
    var statuses: [AgentStatus] = []
    var sleeps: [Int64] = []
    var requests: [AgentMachine.Action] = []
    var exited = false
    var next: AgentMachine.Event

    init(_ settings: AgentMachine.Settings = AgentMachine.Settings(), savedSeq: Int64?) {
        machine = AgentMachine(settings: settings)
        next = .started(savedSeq: savedSeq)
    }

    /// Commits a change set with one row that a plan in `plans` answers.
    @discardableResult
    mutating func commit(_ rows: [ChangeRow] = [], plan: AgentPlan = AgentPlan(), ageMs: Int64? = nil) -> Int64 {
        counter += 1
        sets[counter] = ChangeSet(seq: counter, id: counter + 100, rows: rows, ageMs: ageMs)
        plans[counter] = plan
        return counter
    }

    /// Runs until the machine waits for a change (idle) or exits, at most `limit`
    /// requests (then fails the test unless `mayNotSettle`).
    mutating func run(limit: Int = 200, mayNotSettle: Bool = false) {
        for _ in 0..<limit {
            let actions = machine.handle(next, now: now)
            var request: AgentMachine.Action?
            for a in actions {
                switch a {
                case .log(let t): logs.append(t)
                case .report(let t): reports.append(t)
                case .writeState(let s): written.append(s)
                case .recordStatus(let s): statuses.append(s)
                default:
                    XCTAssertNil(request, "one request per event")
                    request = a
                }
            }
            guard let request else { XCTFail("no request after \(next)"); return }
            requests.append(request)
            if case .waitForChange(let until) = request {
                next = .tick
                XCTAssertGreaterThanOrEqual(until, now)
                now = until
                return
            }
            if case .exit = request { exited = true; return }
            next = answer(request)
        }
        if !mayNotSettle { XCTFail("the machine did not settle in \(limit) requests") }
    }

    mutating func answer(_ request: AgentMachine.Action) -> AgentMachine.Event {
        switch request {
        case .connectDatabase:
            return databaseDown ? .databaseFailed("connection refused") : .databaseConnected(counter: counter, standby: standby)
        case .loadConfig:
            return databaseDown ? .databaseFailed("connection refused") : .configLoaded(config, seq: counter)
        case .readCounter:
            return databaseDown ? .databaseFailed("server closed the connection") : .counterRead(counter)
        case .readChangeSets(let after, let upTo, let limit):
            if databaseDown { return .databaseFailed("server closed the connection") }
            return .changeSetsRead(Array(sets.values.filter { $0.seq > after && $0.seq <= upTo }.sorted { $0.seq < $1.seq }.prefix(limit)))
        case .connectEventSocket:
            return eventSocketDown ? .eventSocketFailed("connection refused") : .eventSocketConnected
        case .plan(let set, _, _):
            if databaseDown { return .databaseFailed("server closed the connection") }
            return .planned(plans[set.seq] ?? AgentPlan())
        case .send(let command):
            if eventSocketDown || dropOn.contains(command) {
                eventSocketDown = true
                return .eventSocketFailed("the event socket connection was closed")
            }
            sent.append(command)
            let reply = replies.filter { command.hasPrefix($0.key) }.max { $0.key.count < $1.key.count }?.value ?? "+OK\n"
            return .replied(reply)
        case .readNodeStats:
            if eventSocketDown { return .eventSocketFailed("the event socket connection was closed") }
            return .nodeStatsRead(replies["lua ~"] ?? "-ERR Cannot execute script\n")
        case .reconcile:
            if eventSocketDown { return .eventSocketFailed("the event socket connection was closed") }
            sent.append("sofia xmlstatus gateway")
            return .reconcilePlanned(reconcile)
        case .sleep(let until):
            sleeps.append(until - now)
            now = max(now, until)
            return .tick
        case .waitForChange, .exit, .log, .report, .writeState, .recordStatus:
            XCTFail("not a request to answer: \(request)")
            return .tick
        }
    }

    /// The next poll: the wait ends, the counter is read, and what follows runs.
    mutating func poll() { run() }
}

final class AgentMachineTests: XCTestCase {
    let flushOne = AgentPlan(actions: [.api("xml_flush_cache id 1000 pbx.test")])

    func testFirstStartFlushesReconcilesAndStartsAtTheCounter() {
        var w = World(savedSeq: nil)
        w.commit(); w.commit()
        w.run()
        XCTAssertEqual(w.sent, ["xml_flush_cache", "sofia xmlstatus gateway"], "nothing before the start is replayed")
        XCTAssertEqual(w.written, [2], "the state file starts at the counter")
        XCTAssertEqual(w.machine.lastSeq, 2)
        XCTAssertTrue(w.logs.contains("no state file: reconciling and starting from seq 2"), "\(w.logs)")
        guard case .waitForChange(let until)? = w.requests.last else { return XCTFail("idle: \(w.requests)") }
        XCTAssertEqual(until, 1_250, "the next poll")
    }

    func testRestartWithAStateFileAppliesWhatWasCommittedMeanwhileInOrder() {
        var w = World(savedSeq: 1)
        w.commit()
        w.commit(plan: flushOne)
        w.commit(plan: AgentPlan(actions: [.api("reloadacl")], reports: ["acl changed"]))
        w.run()
        XCTAssertEqual(w.sent, ["sofia xmlstatus gateway", "xml_flush_cache id 1000 pbx.test", "reloadacl"],
                       "no flush with a state file; seq 1 was applied before")
        XCTAssertEqual(w.written, [2, 3], "each change set written once it is sent")
        XCTAssertEqual(w.reports, ["acl changed"])
        XCTAssertEqual(w.statuses.last?.appliedSeq, 3)
    }

    func testChangesAfterStartAreFollowedAtThePoll() {
        var w = World(savedSeq: 0)
        w.run()
        w.sent = []
        w.commit(plan: flushOne)
        w.poll()
        XCTAssertEqual(w.sent, ["xml_flush_cache id 1000 pbx.test"])
        XCTAssertEqual(w.written.last, 1)
        w.sent = []
        w.poll()
        XCTAssertEqual(w.sent, [], "nothing new: nothing sent")
    }

    func testTheConfigurationIsRevertedToTheLastAppliedSeq() {
        // The database holds the configuration after seq 2; the agent applied seq 1 only.
        var w = World(savedSeq: 1)
        let change = ChangeRow(table: "global_variables", operation: .insert, new: ["name": .string("x"), "value": .string("1")])
        w.commit()
        w.commit([change])
        w.config.globals["x"] = "1"
        w.run()
        guard let plan = w.requests.first(where: { if case .plan = $0 { return true } else { return false } }),
              case .plan(let set, let before, let after) = plan else { return XCTFail("planned: \(w.requests)") }
        XCTAssertEqual(set.seq, 2)
        XCTAssertNil(before.globals["x"], "planned against the state before seq 2")
        XCTAssertEqual(after.globals["x"], "1")
        XCTAssertEqual(w.machine.config.globals["x"], "1")
    }

    func testAGapIsReportedFlushedReconciledAndTheConfigurationReadAgain() {
        var w = World(savedSeq: 0)
        w.run()
        w.sent = []; w.requests = []
        w.commit(plan: flushOne)                       // 1: readable
        w.commit(plan: flushOne)                       // 2: removed
        w.commit(plan: AgentPlan(actions: [.api("reloadacl")]))  // 3: readable
        w.sets[2] = nil
        w.poll()
        XCTAssertEqual(w.sent, ["xml_flush_cache id 1000 pbx.test", "xml_flush_cache", "sofia xmlstatus gateway", "reloadacl"])
        XCTAssertEqual(w.reports, ["change sets 2…2 cannot be read; flushing every cached user and reconciling"])
        XCTAssertEqual(w.written, [1, 2, 3])
        XCTAssertTrue(w.requests.contains(.loadConfig), "the configuration is read again after a gap")
        XCTAssertEqual(w.machine.metrics.gaps, 1)
    }

    func testChangeSetsRemovedUpToTheCounterAreSkippedWithAFlush() {
        var w = World(savedSeq: 0)
        w.run()
        w.sent = []
        w.commit(plan: flushOne); w.commit(plan: flushOne)
        w.sets = [:]
        w.poll()
        XCTAssertEqual(w.reports, ["change sets 1…2 cannot be read (removed); flushing every cached user and reconciling"])
        XCTAssertEqual(w.sent, ["xml_flush_cache", "sofia xmlstatus gateway"])
        XCTAssertEqual(w.machine.lastSeq, 2)
    }

    func testACounterThatWentBackIsARestoredDatabase() {
        var w = World(savedSeq: 0)
        w.commit(plan: flushOne); w.commit(plan: flushOne); w.commit(plan: flushOne)
        w.run()
        XCTAssertEqual(w.machine.lastSeq, 3)
        w.sent = []; w.written = []
        // A restore from before seq 2.
        w.counter = 1
        w.sets = w.sets.filter { $0.key <= 1 }
        w.poll()
        XCTAssertEqual(w.reports, ["the database's change counter went back (1 < 3): restored or replaced; reconciling and flushing every cached user"])
        XCTAssertEqual(w.sent, ["xml_flush_cache", "sofia xmlstatus gateway"])
        XCTAssertEqual(w.written, [1])
        XCTAssertEqual(w.machine.metrics.rewinds, 1)
        // Changes after the restore are followed from there.
        w.sent = []
        w.commit(plan: AgentPlan(actions: [.api("reloadacl")]))
        w.poll()
        XCTAssertEqual(w.sent, ["reloadacl"])
        XCTAssertEqual(w.machine.lastSeq, 2)
    }

    func testAStateFileAheadOfTheDatabaseAtStartIsARestoredDatabase() {
        var w = World(savedSeq: 9)
        w.commit(plan: flushOne)
        w.run()
        XCTAssertEqual(w.sent, ["xml_flush_cache", "sofia xmlstatus gateway"])
        XCTAssertEqual(w.written, [1])
        XCTAssertEqual(w.machine.lastSeq, 1)
        XCTAssertEqual(w.reports.count, 1)
    }

    func testEventSocketLostMidChangeSetRetriesTheWholeSetAfterAReconcile() {
        var w = World(savedSeq: 0)
        w.run()
        w.sent = []
        w.commit(plan: AgentPlan(actions: [.api("sofia profile external killgw carrier"), .api("sofia profile external rescan")]))
        w.dropOn = ["sofia profile external rescan"]
        w.run(limit: 22, mayNotSettle: true)
        XCTAssertEqual(w.machine.lastSeq, 0, "not applied: FreeSWITCH went away in the middle")
        XCTAssertTrue(w.logs.contains { $0.hasPrefix("lost the event socket") }, "\(w.logs)")
        XCTAssertEqual(w.sleeps, [250, 500, 1_000, 2_000, 4_000, 5_000, 5_000, 5_000], "backoff 0.25 s doubling to 5 s while it stays away")
        XCTAssertTrue(w.logs.contains("FreeSWITCH unavailable (connection refused); retrying in 0.25 s"), "\(w.logs)")
    }

    func testEventSocketBackAfterALossFlushesReconcilesAndResends() {
        var w = World(savedSeq: 0)
        w.run()
        w.sent = []
        w.commit(plan: AgentPlan(actions: [.api("sofia profile external killgw carrier"), .api("sofia profile external rescan")]))
        w.dropOn = ["sofia profile external rescan"]
        // Lost at the rescan; FreeSWITCH refuses two connections, then is back.
        var refusals = 0
        while w.machine.lastSeq != 1 {
            let actions = w.machine.handle(w.next, now: w.now)
            for a in actions {
                switch a {
                case .log(let t): w.logs.append(t)
                case .writeState(let s): w.written.append(s)
                case .connectEventSocket:
                    refusals += 1
                    w.eventSocketDown = refusals <= 2
                    if refusals == 3 { w.dropOn = [] }
                    w.next = w.answer(a)
                case .waitForChange: w.next = .tick
                case .report, .recordStatus: break
                default: w.next = w.answer(a)
                }
            }
            if refusals > 10 { return XCTFail("never reconnected: \(w.logs)") }
        }
        XCTAssertEqual(w.sent, ["sofia profile external killgw carrier",
                                "xml_flush_cache", "sofia xmlstatus gateway",
                                "sofia profile external killgw carrier", "sofia profile external rescan"],
                       "the whole change set again, after looking again")
        XCTAssertEqual(w.machine.metrics.eventSocketReconnects, 1)
        XCTAssertEqual(w.written.last, 1)
    }

    func testDatabaseLostWhilePlanningReconnectsAndPlansAgain() {
        var w = World(savedSeq: 0)
        w.run()
        w.sent = []; w.requests = []
        w.commit(plan: flushOne)
        w.databaseDown = true
        w.run(limit: 8, mayNotSettle: true)
        XCTAssertTrue(w.logs.contains("lost the database: server closed the connection; reconnecting"), "\(w.logs)")
        XCTAssertTrue(w.logs.contains("database unavailable (connection refused); retrying in 0.25 s"), "\(w.logs)")
        XCTAssertEqual(w.machine.lastSeq, 0)
        w.databaseDown = false
        w.run()
        XCTAssertEqual(w.sent, ["sofia xmlstatus gateway", "xml_flush_cache id 1000 pbx.test"],
                       "reconciled after the reconnect (no flush: FreeSWITCH stayed), then applied")
        XCTAssertEqual(w.machine.lastSeq, 1)
        XCTAssertEqual(w.machine.metrics.databaseReconnects, 1)
    }

    func testARefusedCommandIsRetriedWithBackoffThenReportedAndTheRestGoesOn() {
        var w = World(savedSeq: 0)
        w.run()
        w.sent = []; w.sleeps = []
        w.replies["reloadacl"] = "-ERR no reloadacl today\n"
        w.commit(plan: AgentPlan(actions: [.api("reloadacl"), .api("xml_flush_cache id 1000 pbx.test")]))
        w.poll()
        XCTAssertEqual(w.sent, Array(repeating: "reloadacl", count: 5) + ["xml_flush_cache id 1000 pbx.test"])
        XCTAssertEqual(w.sleeps, [250, 500, 1_000, 2_000], "backoff between the tries, on the injected clock")
        XCTAssertEqual(w.reports, ["`reloadacl` failed 5 times (last reply: -ERR no reloadacl today); giving up on it"])
        XCTAssertEqual(w.machine.lastSeq, 1, "the change set is done")
        XCTAssertEqual(w.statuses.last?.lastFailure, AgentStatus.Failure(command: "reloadacl", reply: "-ERR no reloadacl today"))
        XCTAssertEqual(w.machine.metrics.commandsSent["reloadacl"], 5)
        XCTAssertEqual(w.machine.metrics.commandsRefused["reloadacl"], 5)
        XCTAssertEqual(w.machine.metrics.commandsAbandoned["reloadacl"], 1)
    }

    func testKillingAGatewayThatIsGoneIsNotAFailure() {
        XCTAssertFalse(AgentText.isFailure("sofia profile external killgw old", "-ERR no such gateway.\n"))
        XCTAssertTrue(AgentText.isFailure("sofia profile external rescan", "-ERR no such profile\n"))
        XCTAssertTrue(AgentText.isFailure("xml_flush_cache", "Invalid syntax"))
        XCTAssertFalse(AgentText.isFailure("xml_flush_cache", "+OK\n"))
        XCTAssertEqual(AgentText.oneLine("Reload XML [Success]\n\n+OK scan complete\n"), "Reload XML [Success] / +OK scan complete")
        XCTAssertEqual(AgentText.kind("sofia profile internal killgw x"), "sofia profile killgw")
        XCTAssertEqual(AgentText.kind("xml_flush_cache id 1 d"), "xml_flush_cache")
    }

    func restartSettings(allow: Bool, force: Bool = false) -> AgentMachine.Settings {
        var s = AgentMachine.Settings()
        s.allowRestart = allow
        s.forceRestart = force
        return s
    }

    static func status(calls: Int) -> String {
        "<profiles><profile><name>external</name><state>RUNNING (\(calls))</state></profile></profiles>"
    }

    func testRestartNotAllowedIsReportedOnly() {
        var w = World(restartSettings(allow: false), savedSeq: 0)
        w.commit(plan: AgentPlan(actions: [.restartProfile("external")]))
        w.run()
        XCTAssertEqual(w.sent, ["sofia xmlstatus gateway"])
        XCTAssertEqual(w.reports.count, 1)
        XCTAssertTrue(w.reports[0].hasPrefix("sofia profile external needs a restart to apply its settings"), w.reports[0])
    }

    func testRestartWaitsForCallsToEndAndIsCheckedAgain() {
        var w = World(restartSettings(allow: true), savedSeq: 0)
        w.replies["sofia xmlstatus"] = AgentMachineTests.status(calls: 2)
        w.commit(plan: AgentPlan(actions: [.restartProfile("external")]))
        w.run()
        XCTAssertEqual(w.sent, ["sofia xmlstatus gateway", "sofia xmlstatus"])
        XCTAssertEqual(w.machine.pendingRestarts, ["external"])
        XCTAssertEqual(w.machine.lastSeq, 1, "the change set is applied; the restart waits")
        // Polls go on; five seconds later the profile is asked again, still busy: no second report.
        for _ in 0..<30 { w.poll() }
        XCTAssertEqual(w.sent.filter { $0 == "sofia xmlstatus" }.count, 2, "asked again every 5 s (7.5 s of polls)")
        XCTAssertEqual(w.reports.count, 1)
        // The calls end.
        w.replies["sofia xmlstatus"] = AgentMachineTests.status(calls: 0)
        for _ in 0..<20 { w.poll() }
        XCTAssertEqual(w.sent.last, "sofia profile external restart")
        XCTAssertEqual(w.machine.pendingRestarts, [])
    }

    func testForcedRestartDoesNotAsk() {
        var w = World(restartSettings(allow: true, force: true), savedSeq: 0)
        w.replies["sofia xmlstatus"] = AgentMachineTests.status(calls: 5)
        w.commit(plan: AgentPlan(actions: [.restartProfile("external")]))
        w.run()
        XCTAssertEqual(w.sent, ["sofia xmlstatus gateway", "sofia profile external restart"])
    }

    func testOnceExitsWhenCaughtUp() {
        var settings = AgentMachine.Settings()
        settings.once = true
        var w = World(settings, savedSeq: 0)
        w.commit(plan: flushOne)
        w.run()
        XCTAssertTrue(w.exited)
        XCTAssertEqual(w.sent, ["sofia xmlstatus gateway", "xml_flush_cache id 1000 pbx.test"])
        XCTAssertEqual(w.statuses.last?.appliedSeq, 1, "the status is recorded before exiting")
    }

    func testReconcileWithoutSofiaConfAndWithGatewayCommands() {
        var w = World(savedSeq: 0)
        w.reconcile = nil
        w.run()
        XCTAssertTrue(w.logs.contains("reconcile: sofia.conf is not stored in fsconf; gateways left as FreeSWITCH runs them"))
        var v = World(savedSeq: 0)
        v.reconcile = [.api("sofia profile external killgw forgotten"), .api("sofia profile external rescan")]
        v.run()
        XCTAssertEqual(v.sent, ["sofia xmlstatus gateway", "sofia profile external killgw forgotten", "sofia profile external rescan"])
    }

    func testHeartbeatAndCommitToAppliedTime() {
        var w = World(savedSeq: 0)
        w.run()
        let before = w.statuses.count
        for _ in 0..<40 { w.poll() }   // 10 s of polls
        XCTAssertEqual(w.statuses.count - before, 1, "the status is recorded every 10 s while idle")
        w.commit(plan: flushOne, ageMs: 40)
        w.poll()
        XCTAssertEqual(w.machine.metrics.latency.count, 1)
        XCTAssertEqual(w.machine.metrics.latency.sum, 40, "committed 40 ms before it was read, applied at the same instant")
        XCTAssertEqual(w.machine.metrics.appliedSeq, 1)
    }

    func testSecondsForLogs() {
        XCTAssertEqual(AgentMachine.seconds(250), "0.25")
        XCTAssertEqual(AgentMachine.seconds(500), "0.5")
        XCTAssertEqual(AgentMachine.seconds(2_000), "2")
        XCTAssertEqual(AgentMachine.seconds(5_050), "5.05")
    }
}
