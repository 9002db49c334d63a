import FSConfCore
@testable import FSConfNode
import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// The in-node cache through the engine, in process, on a real PostgreSQL:
/// precise invalidation, gap → everything stale, negative caching, the memory
/// cap, and outage behaviour (last good answer, or fall through).
final class CacheEngineTests: XCTestCase {
    static let data = """
        INSERT INTO fsconf.global_variables (name, value) VALUES ('domain', 'pbx.test'), ('default_password', '1234');
        INSERT INTO fsconf.domains (name) VALUES ('$${domain}'), ('other.test');
        INSERT INTO fsconf.users (domain_id, user_id, number_alias)
        SELECT d.id, u.uid, u.alias FROM fsconf.domains d, (VALUES ('1000', '7000'), ('1001', NULL)) AS u(uid, alias)
        WHERE d.name = '$${domain}';
        INSERT INTO fsconf.users (domain_id, user_id) SELECT id, 'alice' FROM fsconf.domains WHERE name = 'other.test';
        INSERT INTO fsconf.user_settings (user_id, kind, name, value)
        SELECT id, 'param', 'password', CASE user_id WHEN '1000' THEN '$${default_password}' ELSE 'pw-' || user_id END
        FROM fsconf.users;
        """

    func database() throws -> TestDatabase { try TestDatabase.migrated(prefix: "cache", loading: CacheEngineTests.data) }

    func request(_ user: String, domain: String = "pbx.test") -> LookupRequest {
        LookupRequest(section: "directory", tagName: "domain", keyName: "name", keyValue: domain,
                      headers: ["action": "sip_auth", "key": "id", "user": user, "domain": domain])
    }

    func lookup(_ engine: NodeEngine, _ settings: NodeSettings, _ user: String, domain: String = "pbx.test") -> LookupOutcome {
        engine.handle(request(user, domain: domain), settings: settings) { _ in nil }
    }

    func waitUntil(_ what: String, timeout: Double = 10, _ condition: () throws -> Bool) rethrows {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if try condition() { return }
            usleep(10_000)
        }
        XCTFail("timed out waiting for \(what)")
    }

    /// The listener is connected and the cache serves hits.
    func ready(_ engine: NodeEngine, _ settings: NodeSettings) {
        _ = lookup(engine, settings, "1000")
        waitUntil("the listener") { engine.cacheStats.fresh && engine.cacheStats.listenerConnected }
    }

    /// A user FreeSWITCH caches itself is asked for again only after the agent's
    /// xml_flush_cache, i.e. right after a change this process may not have heard of
    /// yet: the library must read it fresh, and keep it only for an outage.
    func testUsersFreeSWITCHCachesAreReadFreshButKeptForAnOutage() throws {
        let db = try database()
        try db.connect().execute("UPDATE fsconf.domains SET cacheable = '2000000' WHERE name = 'other.test'")
        var settings = NodeSettings(conninfo: db.conninfo)
        settings.deadlineMs = 200
        let engine = NodeEngine()
        ready(engine, settings)
        XCTAssertTrue(lookup(engine, settings, "alice", domain: "other.test").xml!.contains(#"cacheable="2000000""#))
        let hits = engine.cacheStats.hits
        // Changed behind the listener's back (its notification may come later):
        // the very next lookup must see it.
        try db.connect().execute("""
            UPDATE fsconf.user_settings SET value = 'new-alice' WHERE name = 'password'
              AND user_id = (SELECT id FROM fsconf.users WHERE user_id = 'alice')
            """)
        XCTAssertTrue(lookup(engine, settings, "alice", domain: "other.test").xml!.contains("new-alice"))
        XCTAssertEqual(engine.cacheStats.hits, hits, "never a hit for a cacheable user")
        _ = lookup(engine, settings, "1001")
        XCTAssertGreaterThan(lookup(engine, settings, "1001").xml!.count, 0)
        XCTAssertEqual(engine.cacheStats.hits, hits + 1, "other users are still cached")
        // The database stops answering in time: the last good answer is served.
        let locker = try db.connect()
        try locker.execute("BEGIN; LOCK TABLE fsconf.users IN ACCESS EXCLUSIVE MODE")
        let out = lookup(engine, settings, "alice", domain: "other.test")
        try locker.execute("ROLLBACK")
        XCTAssertTrue(out.xml?.contains("new-alice") == true, "the last good answer during an outage: \(out)")
        XCTAssertEqual(engine.cacheStats.stale, 1)
    }

    func testChangeToOneUserDropsOnlyThatUsersAnswers() throws {
        let db = try database()
        let settings = NodeSettings(conninfo: db.conninfo)
        let engine = NodeEngine()
        ready(engine, settings)
        for u in ["1000", "7000", "1001", "alice"] {
            _ = lookup(engine, settings, u, domain: u == "alice" ? "other.test" : "pbx.test")
        }
        let before = engine.cacheStats
        XCTAssertTrue(lookup(engine, settings, "1000").xml!.contains(#"value="1234""#))
        XCTAssertTrue(lookup(engine, settings, "1001").xml!.contains("pw-1001"))
        XCTAssertEqual(engine.cacheStats.hits, before.hits + 2, "both answers come from the cache")

        let committed = Date()
        try db.connect().execute("""
            UPDATE fsconf.user_settings SET value = 'changed' WHERE name = 'password'
              AND user_id = (SELECT id FROM fsconf.users WHERE user_id = '1000')
            """)
        try waitUntil("the change to reach the node") { lookup(engine, settings, "1000").xml!.contains(#"value="changed""#) }
        let seen = Date().timeIntervalSince(committed)
        XCTAssertLessThan(seen, 1.0, "a committed change is served within a second")
        XCTAssertTrue(lookup(engine, settings, "7000").xml!.contains(#"value="changed""#), "the alias answer too")
        let hits = engine.cacheStats.hits
        XCTAssertTrue(lookup(engine, settings, "1001").xml!.contains("pw-1001"))
        XCTAssertTrue(lookup(engine, settings, "alice", domain: "other.test").xml!.contains("pw-alice"))
        XCTAssertEqual(engine.cacheStats.hits, hits + 2, "user 1001 and alice were not dropped")
        XCTAssertGreaterThanOrEqual(engine.cacheStats.invalidated, 2, "1000 and 7000 were dropped")
        print("invalidation: change visible after \(Int(seen * 1000)) ms; \(engine.cacheStats)")

        // A global variable can be in any answer: everything goes.
        try db.connect().execute("UPDATE fsconf.global_variables SET value = '4321' WHERE name = 'default_password'")
        try waitUntil("the global change") { engine.cacheStats.entries == 0 }
        XCTAssertTrue(lookup(engine, settings, "1001").xml!.contains("pw-1001"))
    }

    /// A request's headers as the Lua module reads them: the usual ones together,
    /// any other one on its own (then the request is not remembered by its raw bytes).
    final class UsualSource: HeaderSource, @unchecked Sendable {
        let values: [String: String]
        var outside = false
        var readError: String? { nil }
        var readOnlyUsualHeaders: Bool { !outside }
        init(_ values: [String: String]) { self.values = values }
        func header(_ name: String) -> String? {
            if !LookupRequest.usualHeaders(section: "directory").contains(name) { outside = true }
            return values[name]
        }
    }

    /// The RequestMemo: a request seen before goes straight to its cache entry, and
    /// only ever to a hit the cache itself would serve (fresh: a change drops it);
    /// a request whose planning read anything beyond its raw bytes is not kept.
    func testRequestMemoGoesOnlyToEntriesTheCacheWouldServe() throws {
        let db = try database()
        let settings = NodeSettings(conninfo: db.conninfo)
        let engine = NodeEngine()
        ready(engine, settings)
        let resolved = engine.resolve(settings)
        func ask(_ user: String, _ params: [String: String], bytes: String,
                 nodeName: String? = nil) -> (LookupOutcome, String?) {
            var request = LookupRequest(section: "directory", tagName: "domain", keyName: "name", keyValue: "pbx.test",
                                        hasParams: true)
            request.headerSource = UsualSource(params.merging(["user": user, "key": "id"]) { a, _ in a })
            return Array(bytes.utf8).withUnsafeBytes { raw in
                let r = RawRequest(bytes: raw)
                let memo = engine.cachedAnswer(r, resolved: resolved)
                let out = engine.handle(request, resolved: resolved, node: { _ in nil }, nodeName: { nodeName }, raw: r)
                return (out, memo)
            }
        }
        func memo(_ bytes: String) -> String? {
            Array(bytes.utf8).withUnsafeBytes { engine.cachedAnswer(RawRequest(bytes: $0), resolved: resolved) }
        }
        let named = ["FreeSWITCH-Switchname": "fs-1"]
        let (first, none) = ask("1000", named, bytes: "r-1000")
        XCTAssertNil(none, "nothing remembered yet")
        XCTAssertTrue(first.xml!.contains(#"value="1234""#))
        let hits = engine.cacheStats.hits
        XCTAssertEqual(memo("r-1000"), first.xml, "the same raw request: the cached answer")
        XCTAssertEqual(engine.cacheStats.hits, hits + 1, "counted as a hit")
        XCTAssertNil(memo("r-1001"), "other bytes: nothing")

        // A change drops the entry: the memo leads nowhere until it is read again.
        try db.connect().execute("""
            UPDATE fsconf.user_settings SET value = 'changed' WHERE name = 'password'
              AND user_id = (SELECT id FROM fsconf.users WHERE user_id = '1000')
            """)
        try waitUntil("the change to reach the node") { memo("r-1000") == nil }
        let misses = engine.cacheStats.misses
        let (again, stale) = ask("1000", named, bytes: "r-1000")
        XCTAssertNil(stale, "never the dropped answer")
        XCTAssertTrue(again.xml!.contains(#"value="changed""#))
        XCTAssertEqual(engine.cacheStats.misses, misses + 1, "one miss counted, not two")
        XCTAssertEqual(memo("r-1000"), again.xml)

        // Planning that read another header, or the node's name from FreeSWITCH
        // (no name in the params): not remembered.
        var request = LookupRequest(section: "directory", tagName: "domain", keyName: "name", keyValue: "pbx.test",
                                    hasParams: true)
        request.headerSource = UsualSource(["group_name": "sales", "FreeSWITCH-Switchname": "fs-1"])
        for _ in 0..<2 {
            _ = Array("r-outside".utf8).withUnsafeBytes { raw in
                engine.handle(request, resolved: resolved, node: { _ in nil }, raw: RawRequest(bytes: raw))
            }
        }
        XCTAssertNil(memo("r-outside"), "planning read a header beyond the usual ones")
        _ = ask("1001", [:], bytes: "r-unnamed", nodeName: "fs-1")
        _ = ask("1001", [:], bytes: "r-unnamed", nodeName: "fs-1")
        XCTAssertNil(memo("r-unnamed"), "the node's name came from FreeSWITCH, not from the bytes")

        // Other settings: another backend, an empty memo.
        var other = settings
        other.poolSize += 1
        let replaced = engine.resolve(other)
        XCTAssertNil(Array("r-1000".utf8).withUnsafeBytes { engine.cachedAnswer(RawRequest(bytes: $0), resolved: replaced) })
    }

    func testGapInNotificationsMakesEverythingStale() throws {
        let db = try database()
        let settings = NodeSettings(conninfo: db.conninfo)
        let engine = NodeEngine()
        ready(engine, settings)
        _ = lookup(engine, settings, "1001")
        let hits = engine.cacheStats.hits
        _ = lookup(engine, settings, "1001")
        XCTAssertEqual(engine.cacheStats.hits, hits + 1)
        let epoch = engine.cacheStats.epoch
        // Kill the listener's connection: whatever it missed meanwhile is unknown.
        let admin = try db.connect()
        try admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fsconf-listener' AND datname = $1", [db.name])
        // A change while the listener is away (it may or may not see it: either way it must be served).
        try admin.execute("UPDATE fsconf.user_settings SET value = 'during-gap' WHERE value = 'pw-1001'")
        try waitUntil("the listener to reconnect") { engine.cacheStats.reconnects >= 1 && engine.cacheStats.fresh }
        XCTAssertGreaterThan(engine.cacheStats.epoch, epoch, "a reconnect starts a new epoch")
        let misses = engine.cacheStats.misses
        XCTAssertTrue(lookup(engine, settings, "1001").xml!.contains("during-gap"))
        XCTAssertEqual(engine.cacheStats.misses, misses + 1, "the old entry was not served as fresh")
    }

    func testUnknownUsersAreCachedBrieflyAndDroppedWhenCreated() throws {
        let db = try database()
        var settings = NodeSettings(conninfo: db.conninfo)
        settings.negativeTTLms = 400
        let clock = ManualClock()
        let engine = NodeEngine(clock: clock.now)
        ready(engine, settings)
        let first = lookup(engine, settings, "9999")
        XCTAssertFalse(first.xml!.contains("<user "), "the domain without the user")
        let misses = engine.cacheStats.misses
        for _ in 0..<500 { _ = lookup(engine, settings, "9999") }
        XCTAssertEqual(engine.cacheStats.misses, misses, "a REGISTER flood of an unknown user is not a database flood")
        clock.advance(milliseconds: 399)
        _ = lookup(engine, settings, "9999")
        XCTAssertEqual(engine.cacheStats.misses, misses, "1 ms before the TTL it is still a hit")
        clock.advance(milliseconds: 1)
        _ = lookup(engine, settings, "9999")
        XCTAssertEqual(engine.cacheStats.misses, misses + 1, "at the TTL it is asked again")
        // Created: dropped at once, not after the TTL.
        settings.negativeTTLms = 60_000
        let engine2 = NodeEngine()
        ready(engine2, settings)
        _ = lookup(engine2, settings, "9999")
        _ = lookup(engine2, settings, "no.such.domain")
        try db.connect().execute("INSERT INTO fsconf.users (domain_id, user_id) SELECT id, '9999' FROM fsconf.domains WHERE name = '$${domain}'")
        try waitUntil("the new user") { lookup(engine2, settings, "9999").xml!.contains(#"<user id="9999""#) }
        XCTAssertEqual(lookup(engine2, settings, "nobody", domain: "no.such.domain").xml, FreeSWITCHDocument.notFound)
    }

    func testMemoryCapHoldsUnderOneHundredThousandKeys() throws {
        // The cache itself, 100,000 distinct keys.
        let cap = 1_000_000
        let cache = NodeCache(capacity: cap, negativeTTLms: 5_000)
        cache.gap(seq: 0, fresh: true)
        let xml = String(repeating: "x", count: 200)
        for i in 0..<100_000 {
            let key = CacheKey.directory(.user(domain: "pbx.test", user: "u\(i)", key: "id"))
            cache.insert(key, node: nil, xml: xml, tags: CacheTags.of(key), negative: false, seq: 0, epoch: cache.probe(key, node: nil).epoch)
        }
        let stats = cache.stats
        XCTAssertLessThanOrEqual(stats.bytes, cap)
        XCTAssertGreaterThan(stats.entries, 1000)
        XCTAssertEqual(stats.entries + stats.evictions, 100_000)
        XCTAssertNotNil(cache.probe(.directory(.user(domain: "pbx.test", user: "u99999", key: "id")), node: nil).hit, "the newest stays")
        XCTAssertNil(cache.probe(.directory(.user(domain: "pbx.test", user: "u0", key: "id")), node: nil).hit, "the oldest went first")
        print("cap \(cap): \(stats.entries) entries, \(stats.bytes) bytes, \(stats.evictions) evicted")

        // And through the engine (each lookup a real query).
        let db = try database()
        var settings = NodeSettings(conninfo: db.conninfo)
        settings.cacheBytes = 200_000
        let engine = NodeEngine()
        ready(engine, settings)
        for i in 0..<3_000 { _ = lookup(engine, settings, "x\(i)") }
        let s = engine.cacheStats
        XCTAssertLessThanOrEqual(s.bytes, 200_000)
        XCTAssertGreaterThan(s.evictions, 0)
        print("engine, cap 200000: \(s.entries) entries, \(s.bytes) bytes, \(s.evictions) evicted")
    }

    func testSlowDatabaseServesTheLastGoodAnswer() throws {
        let db = try database()
        var settings = NodeSettings(conninfo: db.conninfo)
        settings.deadlineMs = 200
        let engine = NodeEngine()
        ready(engine, settings)
        XCTAssertTrue(lookup(engine, settings, "1001").xml!.contains("pw-1001"))
        // Make the cached answer not fresh (a gap), then make the database slow.
        let admin = try db.connect()
        try admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fsconf-listener' AND datname = $1", [db.name])
        try waitUntil("the reconnect") { engine.cacheStats.reconnects >= 1 && engine.cacheStats.fresh }
        let locker = try db.connect()
        try locker.execute("BEGIN; LOCK TABLE fsconf.users IN ACCESS EXCLUSIVE MODE")
        let start = Date()
        let out = lookup(engine, settings, "1001")
        XCTAssertTrue(out.xml?.contains("pw-1001") == true, "the last good answer: \(out)")
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.0)
        XCTAssertTrue(out.log.contains { $0.message.contains("database unavailable since") }, "\(out.log)")
        let none = lookup(engine, settings, "never-seen")
        XCTAssertNil(none.xml, "no last good answer: fall through, never not found")
        try locker.execute("ROLLBACK")
        XCTAssertEqual(engine.cacheStats.stale, 1)
    }

    func testOutageServesLastGoodAnswersAndRecovers() throws {
        let cluster = try TemporaryCluster()
        let conninfo = try cluster.migratedDatabase(loading: CacheEngineTests.data)
        var settings = NodeSettings(conninfo: conninfo)
        settings.deadlineMs = 200
        let engine = NodeEngine()
        ready(engine, settings)
        XCTAssertTrue(lookup(engine, settings, "1001").xml!.contains("pw-1001"))
        XCTAssertTrue(lookup(engine, settings, "1000").xml!.contains("1234"))

        try cluster.stop()
        var logs: [String] = []
        for _ in 0..<200 {
            let out = lookup(engine, settings, "1001")
            XCTAssertTrue(out.xml?.contains("pw-1001") == true, "served during the outage: \(out)")
            logs += out.log.map(\.message)
        }
        let unseen = lookup(engine, settings, "alice", domain: "other.test")
        XCTAssertNil(unseen.xml, "never seen: fall through")
        XCTAssertNotNil(unseen.error)
        let staleLines = logs.filter { $0.contains("serving stale answers") }
        XCTAssertEqual(staleLines.count, 1, "logged once per interval, not per lookup: \(logs)")
        XCTAssertGreaterThan(engine.cacheStats.stale, 0)

        try cluster.start()
        try PGConnection(conninfo: conninfo).execute("UPDATE fsconf.user_settings SET value = 'after' WHERE value = 'pw-1001'")
        try waitUntil("fresh answers after the outage", timeout: 15) { lookup(engine, settings, "1001").xml?.contains("after") == true }
        XCTAssertTrue(lookup(engine, settings, "alice", domain: "other.test").xml?.contains("pw-alice") == true)
        XCTAssertFalse(engine.cacheStats.databaseDown)
    }
}

/// A monotonic clock that moves only when a test moves it.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var nanoseconds: UInt64 = 1_000_000_000
    var now: @Sendable () -> UInt64 { { [self] in lock.withLock { nanoseconds } } }
    func advance(milliseconds: UInt64) { lock.withLock { nanoseconds += milliseconds * 1_000_000 } }
}
