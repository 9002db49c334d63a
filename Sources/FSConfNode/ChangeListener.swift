import FSConfCore
import FSConfStore
import Glibc

/// The node's change listener: one background pthread per process (per
/// configuration), started lazily by the first lookup. It keeps the cache current
/// (docs/changes.md):
/// - on a primary it LISTENs on `fsconf_changes` and, woken by a notice, reads the
///   change sets it has not seen at once (the payload is not trusted);
/// - everywhere (a standby gets no NOTIFY) it reads `fsconf.change_counter` every
///   `pollMs` and reads the change sets it has not seen;
/// - a lost connection, a reconnect, a gap in `seq` or an unreadable notice make
///   every cached answer stale (kept only as a last good answer for an outage).
/// It never calls into Lua and never holds a cache lock while doing I/O; what it
/// has to say is queued and logged by the next lookup that asks the database.
final class ChangeListener: @unchecked Sendable {
    let conninfo: String
    let pollNs: UInt64
    let cache: NodeCache
    private let monitor = Monitor()
    private var started = false
    private var stopped = false
    private var messages: [(level: String, message: String)] = []
    private var dropped = 0
    // Diagnostics (under monitor).
    private(set) var connected = false
    private(set) var onStandby = false
    private(set) var lastSeq: Int64 = 0
    private(set) var notices = 0, polls = 0, reconnects = 0
    private var everConnected = false

    /// Above this many unseen change sets, forgetting everything is cheaper than reading them.
    static let catchUpLimit: Int64 = 1000

    init(conninfo: String, pollMs: Int, cache: NodeCache) {
        self.conninfo = conninfo
        self.pollNs = UInt64(max(pollMs, 1)) * 1_000_000
        self.cache = cache
    }

    /// Starts the thread on first use; cheap afterwards.
    func startIfNeeded() {
        let start: Bool = monitor.locked {
            if started || stopped { return false }
            started = true
            return true
        }
        guard start else { return }
        let box = Unmanaged.passRetained(ThreadBody { [self] in self.run() }).toOpaque()
        var thread = pthread_t()
        if pthread_create(&thread, nil, { arg in
            // Signals belong to the host's threads (FreeSWITCH handles its own).
            var all = sigset_t()
            sigfillset(&all)
            pthread_sigmask(SIG_BLOCK, &all, nil)
            let body = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
            body.run()
            return nil
        }, box) == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            monitor.locked { started = false }
            say("err", "fsconf: cannot start the change listener thread; answers are not cached")
        }
    }

    /// Asks the thread to end (configuration replaced); it closes its connection.
    func stop() { monitor.locked { stopped = true; monitor.broadcast() } }

    private var isStopped: Bool { monitor.locked { stopped } }

    /// Messages to log, taken by a lookup thread (which can reach the console).
    func takeMessages() -> [(level: String, message: String)] {
        monitor.locked {
            if messages.isEmpty { return [] }
            var out = messages
            if dropped > 0 { out.append(("warning", "fsconf: \(dropped) listener message(s) dropped")) }
            messages.removeAll()
            dropped = 0
            return out
        }
    }

    private func say(_ level: String, _ message: String) {
        monitor.locked {
            if messages.count < 32 { messages.append((level, message)) } else { dropped += 1 }
        }
    }

    private func sleep(until deadline: UInt64) {
        monitor.locked {
            while !stopped && MonotonicClock.now() < deadline { _ = monitor.wait(until: deadline) }
        }
    }

    // MARK: The thread

    private func run() {
        var conn: PGConnection?
        var listening = false
        var lastSeq: Int64 = 0
        var nextPoll: UInt64 = 0
        var failures = 0
        var downSince: UInt64?
        while !isStopped {
            if conn == nil {
                do {
                    let c = try PGConnection(conninfo: conninfo, settings: [("application_name", "fsconf-listener")],
                                             deadline: MonotonicClock.deadline(afterMilliseconds: 2_000))
                    let deadline = MonotonicClock.deadline(afterMilliseconds: 2_000)
                    let r = try c.execute("""
                        SET statement_timeout = 2000; SET jit = off;
                        SELECT value, pg_is_in_recovery() FROM fsconf.change_counter
                        """, deadline: deadline)
                    let standby = r.bool(0, 1) ?? false
                    if !standby { try c.execute("LISTEN fsconf_changes", deadline: deadline) }
                    listening = !standby
                    lastSeq = Int64(r.string(0, 0) ?? "") ?? 0
                    // Whatever happened while we were away is unknown: nothing cached is fresh.
                    cache.gap(seq: lastSeq, fresh: true)
                    conn = c
                    nextPoll = MonotonicClock.now() &+ pollNs
                    monitor.locked {
                        connected = true; onStandby = standby; self.lastSeq = lastSeq
                        if everConnected { reconnects += 1 }
                        everConnected = true
                    }
                    if let since = downSince {
                        let seconds = Double((MonotonicClock.now() - since) / 1_000_000) / 1000
                        say("notice", "fsconf: change listener connected again after \(seconds) s (\(standby ? "standby: polling" : "primary: LISTEN")); cached answers refreshed")
                    }
                    failures = 0
                    downSince = nil
                } catch {
                    failures += 1
                    if failures == 1 {
                        downSince = downSince ?? MonotonicClock.now()
                        say("warning", "fsconf: change listener cannot reach the database (\(error.description)); answers are read from the database until it can")
                    }
                    sleep(until: MonotonicClock.now() &+ min(pollNs * UInt64(min(failures, 4)), 1_000_000_000))
                    continue
                }
            }
            guard let c = conn else { continue }
            do {
                if listening {
                    if MonotonicClock.now() < nextPoll { _ = c.waitReadable(deadline: nextPoll) }
                    // A notice only says "look at the change log": anyone who can connect can
                    // NOTIFY fsconf_changes with any payload (a node's own login included),
                    // so what changed is read from fsconf.change_sets, which only writers fill.
                    let heard = try c.drainNotifications().filter { $0.channel == "fsconf_changes" }.count
                    if heard > 0 {
                        monitor.locked { notices += heard }
                        try catchUp(c, &lastSeq)
                    }
                } else {
                    sleep(until: nextPoll)
                    if isStopped { break }
                }
                if MonotonicClock.now() >= nextPoll {
                    nextPoll = MonotonicClock.now() &+ pollNs
                    let r = try c.execute("SELECT value, pg_is_in_recovery() FROM fsconf.change_counter",
                                          deadline: MonotonicClock.deadline(afterMilliseconds: 2_000))
                    monitor.locked { polls += 1 }
                    let counter = Int64(r.string(0, 0) ?? "") ?? 0
                    if counter < lastSeq {
                        // The database went back in time (restored, replaced): forget everything.
                        cache.gap(seq: counter, fresh: true)
                        lastSeq = counter
                    } else if counter > lastSeq {
                        try catchUp(c, &lastSeq)
                    }
                    if !listening && !(r.bool(0, 1) ?? true) {
                        // A promoted standby: notifications now reach us.
                        try c.execute("LISTEN fsconf_changes", deadline: MonotonicClock.deadline(afterMilliseconds: 2_000))
                        listening = true
                        monitor.locked { onStandby = false }
                    }
                }
                monitor.locked { self.lastSeq = lastSeq }
            } catch {
                conn = nil
                listening = false
                downSince = MonotonicClock.now()
                failures = 1
                cache.gap(seq: nil, fresh: false)
                monitor.locked { connected = false }
                say("warning", "fsconf: change listener lost the database (\(error.description)); answers are read from the database until it is back")
            }
        }
        conn = nil
        monitor.locked { connected = false }
    }

    /// Reads the change sets after `lastSeq` and applies them in order.
    private func catchUp(_ c: PGConnection, _ lastSeq: inout Int64) throws(PostgresError) {
        let deadline = MonotonicClock.deadline(afterMilliseconds: 2_000)
        let counter = Int64(try c.execute("SELECT value FROM fsconf.change_counter", deadline: deadline).string(0, 0) ?? "") ?? 0
        if counter == lastSeq { return }  // a notice with nothing new (forged, or already read)
        if counter - lastSeq > ChangeListener.catchUpLimit {
            cache.invalidate(nil, seq: counter)
            lastSeq = counter
            return
        }
        let r = try c.execute("""
            SELECT c.seq, k.keys FROM fsconf.change_sets c,
              LATERAL (SELECT coalesce(jsonb_agg(DISTINCT x), '[]') AS keys
                       FROM fsconf.changes ch, jsonb_array_elements(ch.keys) x WHERE ch.change_set_id = c.id) k
            WHERE c.seq > \(lastSeq) AND c.seq <= \(counter) ORDER BY c.seq
            """, deadline: deadline)
        for i in 0..<r.rowCount {
            guard let seq = r.string(i, 0).flatMap({ Int64($0) }) else { continue }
            if seq != lastSeq + 1 {
                // A change set we cannot read (removed since): we cannot tell what it touched.
                cache.invalidate(nil, seq: seq)
            } else {
                cache.invalidate(r.string(i, 1).flatMap { ChangeNotice.keys(fromJSON: $0) }, seq: seq)
            }
            lastSeq = seq
        }
        if lastSeq < counter {
            cache.invalidate(nil, seq: counter)
            lastSeq = counter
        }
    }

    struct Stats { var connected: Bool; var onStandby: Bool; var lastSeq: Int64; var notices: Int; var polls: Int; var reconnects: Int }
    var stats: Stats {
        monitor.locked { Stats(connected: connected, onStandby: onStandby, lastSeq: lastSeq, notices: notices, polls: polls, reconnects: reconnects) }
    }
}

final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}
