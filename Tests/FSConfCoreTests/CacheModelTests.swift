import FSConfCore
import XCTest

/// The node cache's pure logic: keys, invalidation tags, change notices, the LRU.
final class CacheModelTests: XCTestCase {
    func sipAuth(_ user: String, domain: String = "127.0.0.1", extra: [String: String] = [:]) -> LookupRequest {
        var headers = ["action": "sip_auth", "key": "id", "user": user, "domain": domain]
        for (k, v) in extra { headers[k] = v }
        return LookupRequest(section: "directory", tagName: "domain", keyName: "name", keyValue: domain, headers: headers)
    }

    // MARK: Keys

    /// Records which headers a planner asks for.
    final class RecordingSource: HeaderSource, @unchecked Sendable {
        let values: [String: String]
        var asked: [String] = []
        var readError: String? { nil }
        init(_ values: [String: String]) { self.values = values }
        func header(_ name: String) -> String? { asked.append(name); return values[name] }
    }

    /// Each header is a Lua call on the node: a lookup reads only what its planner needs.
    func testPlannersReadOnlyTheHeadersThatShapeTheAnswer() {
        func asked(_ section: String, _ tag: String = "", _ keyName: String = "", _ keyValue: String = "",
                   _ params: [String: String]) -> ([String], CacheKey?) {
            let source = RecordingSource(params)
            var request = LookupRequest(section: section, tagName: tag, keyName: keyName, keyValue: keyValue)
            request.headerSource = source
            let key = CacheKey.of(request)
            return (source.asked, key)
        }
        let register = ["action": "sip_auth", "key": "id", "user": "1000", "domain": "example.org",
                        "sip_auth_nonce": "n-1", "sip_auth_response": "r"]
        let (names, key) = asked("directory", "domain", "name", "example.org", register)
        XCTAssertEqual(names, ["purpose", "user", "key"], "the domain comes from XML_REQUEST; no nonce, no action")
        XCTAssertEqual(key, .directory(.user(domain: "example.org", user: "1000", key: "id")))
        XCTAssertEqual(asked("directory", "domain", "name", "example.org", ["group_name": "sales"]).0,
                       ["purpose", "user", "group_name"])
        XCTAssertEqual(asked("directory", "", "", "", ["purpose": "gateways"]).0, ["purpose", "domain"])
        XCTAssertEqual(asked("dialplan", "", "", "", ["Hunt-Context": "default", "Caller-Destination-Number": "1000"]).1,
                       .dialplan("default"))
        XCTAssertFalse(asked("dialplan", "", "", "", ["Hunt-Context": "default"]).0.contains("Caller-Destination-Number"))
        // A source and a dictionary give the same key.
        var plain = LookupRequest(section: "directory", tagName: "domain", keyName: "name", keyValue: "example.org")
        plain.headers = register
        XCTAssertEqual(CacheKey.of(plain), key)
    }

    func testKeyIgnoresVolatileParamsAndSeparatesWhatShapesTheAnswer() {
        XCTAssertEqual(CacheKey.of(sipAuth("1000")), CacheKey.of(sipAuth("1000", extra: ["action": "user_call"])),
                       "sip_auth and user_call get the same user document")
        XCTAssertNotEqual(CacheKey.of(sipAuth("1000")), CacheKey.of(sipAuth("1001")))
        XCTAssertNotEqual(CacheKey.of(sipAuth("1000")), CacheKey.of(sipAuth("1000", domain: "example.org")))
        XCTAssertNotEqual(CacheKey.of(sipAuth("1000")), CacheKey.of(sipAuth("1000", extra: ["key": "number-alias"])))
        XCTAssertNotEqual(CacheKey.of(sipAuth("1000")), CacheKey.of(sipAuth("1000", extra: ["purpose": "network-list"])))
        XCTAssertNil(CacheKey.of(LookupRequest(section: "directory")), "no domain: nothing to ask")
        XCTAssertNil(CacheKey.of(LookupRequest(section: "channels")), "a section fsconf does not serve")
        XCTAssertEqual(CacheKey.of(LookupRequest(section: "chatplan", headers: ["context": "public"])), .chatplan("public"))
        XCTAssertEqual(CacheKey.of(LookupRequest(section: "dialplan", tagName: "context", keyName: "name", keyValue: "features")),
                       .dialplan("features"), "xml_locate dialplan context name features")

        let dp = { (ctx: String, dest: String) in
            LookupRequest(section: "dialplan", headers: ["Hunt-Context": ctx, "Caller-Destination-Number": dest])
        }
        XCTAssertEqual(CacheKey.of(dp("default", "1000")), .dialplan("default"))
        XCTAssertEqual(CacheKey.of(dp("default", "1000")), CacheKey.of(dp("default", "2000")), "the whole context is the answer")

        let sofia = { (profile: String?) in
            LookupRequest(section: "configuration", tagName: "configuration", keyName: "name", keyValue: "sofia.conf",
                          headers: profile.map { ["profile": $0] } ?? [:])
        }
        XCTAssertNotEqual(CacheKey.of(sofia("internal")), CacheKey.of(sofia("external")))
        XCTAssertNotEqual(CacheKey.of(sofia("internal")), CacheKey.of(sofia(nil)))
        let lang = LookupRequest(section: "languages", headers: ["lang": "en-US", "macro_name": "voicemail_hello"])
        let lang2 = LookupRequest(section: "languages", headers: ["lang": "en-US", "macro_name": "other"])
        XCTAssertEqual(CacheKey.of(lang), CacheKey.of(lang2), "the whole language is the answer")
        XCTAssertNotEqual(CacheKey.of(lang), CacheKey.of(LookupRequest(section: "phrases", headers: ["lang": "en-US"])))
    }

    // MARK: Change notices

    func testChangeNoticesParse() {
        let n = ChangeNotice.parse(#"{"id": 7, "seq": 12, "keys": [{"a": "7000", "d": "$${domain}", "s": "directory", "u": "1000"}, {"c": "Default", "s": "dialplan"}]}"#)
        XCTAssertEqual(n?.seq, 12)
        XCTAssertEqual(n?.keys, [.directory(domain: "$${domain}", user: "1000", alias: "7000"), .named(section: "dialplan", name: "default")])
        XCTAssertEqual(ChangeNotice.parse(#"{"seq":3,"id":1,"all":true}"#), ChangeNotice(seq: 3, keys: nil))
        XCTAssertEqual(ChangeNotice.parse(#"{"seq":3,"id":1,"keys":[{"s":"globals","n":"default_password"}]}"#)?.keys, nil,
                       "a global can be in any answer: everything")
        XCTAssertEqual(ChangeNotice.parse(#"{"seq":3,"id":1,"keys":[{"s":"dialplan","all":true}]}"#)?.keys, [.section("dialplan")])
        XCTAssertEqual(ChangeNotice.parse(#"{"seq":3,"id":1,"keys":[{"s":"channels","n":"x"}]}"#)?.keys, nil, "an unknown section: everything")
        XCTAssertEqual(ChangeNotice.parse(#"{"seq":3,"id":1,"keys":[{"s":"chatplan","c":"Public"}]}"#)?.keys,
                       [.named(section: "chatplan", name: "public")])
        XCTAssertNil(ChangeNotice.parse("not json"))
        XCTAssertNil(ChangeNotice.parse(#"{"id":1,"keys":[]}"#), "no seq")
        XCTAssertNil(ChangeNotice.parse(#"{"seq":1,"id":1}"#), "neither keys nor all")
        XCTAssertNil(ChangeNotice.parse(#"{"seq":1,"keys":[] "#))
        XCTAssertEqual(JSONValue.parse(#""a\"b\\c\u00e9\ud83d\ude00""#), .string("a\"b\\cé😀"))
        XCTAssertEqual(ChangeNotice.keys(fromJSON: #"[{"s": "configuration", "n": "sofia.conf"}]"#), [.named(section: "configuration", name: "sofia.conf")])
    }

    // MARK: Invalidation precision

    func data(_ domains: [(String, [(String, String?)])]) -> DirectoryData {
        var rows: [DirectoryRow] = []
        var id: Int64 = 1
        for (name, users) in domains {
            let d = id
            rows.append(DirectoryRow(kind: .domain, id: d, a: name))
            id += 1
            for (u, alias) in users {
                rows.append(DirectoryRow(kind: .user, id: id, parent: d, a: u, b: alias))
                id += 1
            }
        }
        return DirectoryData(rows: rows)
    }

    func testDirectoryInvalidationIsPrecise() {
        let stored = "$${domain}"
        let user1000 = CacheTags.directory(.user(domain: "127.0.0.1", user: "1000", key: "id"),
                                           data([(stored, [("1000", "7000")])]), found: true)
        let viaAlias = CacheTags.directory(.user(domain: "127.0.0.1", user: "7000", key: "id"),
                                           data([(stored, [("1000", "7000")])]), found: true)
        let user1001 = CacheTags.directory(.user(domain: "127.0.0.1", user: "1001", key: "id"),
                                           data([(stored, [("1001", nil)])]), found: true)
        let unknown = CacheTags.directory(.user(domain: "127.0.0.1", user: "9999", key: "id"),
                                          data([(stored, [])]), found: true)
        let group = CacheTags.directory(.group(domain: "127.0.0.1", group: "default"), data([(stored, [("1000", nil)])]), found: true)
        let plainDomain = CacheTags.directory(.domain(domain: "127.0.0.1", users: .none), data([(stored, [])]), found: true)
        let other = CacheTags.directory(.user(domain: "example.org", user: "alice", key: "id"),
                                        data([("example.org", [("alice", "8000")])]), found: true)
        let noDomain = CacheTags.directory(.user(domain: "new.example", user: "1000", key: "id"), data([]), found: false)
        let allGateways = CacheTags.directory(.gateways(domain: nil), data([(stored, []), ("example.org", [])]), found: true)

        let change1000: ChangeKey = .directory(domain: stored, user: "1000", alias: "7000")
        XCTAssertTrue(user1000.isAffected(by: change1000))
        XCTAssertTrue(viaAlias.isAffected(by: change1000), "the answer reached by the alias")
        XCTAssertFalse(user1001.isAffected(by: change1000), "another user keeps its answer")
        XCTAssertFalse(unknown.isAffected(by: change1000))
        XCTAssertTrue(group.isAffected(by: change1000), "a group lists its users")
        XCTAssertFalse(plainDomain.isAffected(by: change1000))
        XCTAssertFalse(other.isAffected(by: change1000), "another domain")
        XCTAssertTrue(allGateways.isAffected(by: change1000))
        XCTAssertTrue(unknown.isAffected(by: .directory(domain: stored, user: "9999", alias: nil)), "a new user 9999")
        XCTAssertTrue(other.isAffected(by: .directory(domain: "example.org", user: "someone", alias: "alice")),
                      "an alias taken by another user")

        let domainWide: ChangeKey = .directory(domain: stored, user: nil, alias: nil)
        for t in [user1000, user1001, unknown, group, plainDomain] { XCTAssertTrue(t.isAffected(by: domainWide)) }
        XCTAssertFalse(other.isAffected(by: domainWide))

        XCTAssertTrue(noDomain.isAffected(by: .directory(domain: "new.example", user: nil, alias: nil)), "the domain is created")
        XCTAssertTrue(noDomain.isAffected(by: .directory(domain: "$${other}", user: nil, alias: nil)),
                      "a domain named by a reference may expand to what was asked")
        XCTAssertFalse(noDomain.isAffected(by: .directory(domain: "example.org", user: nil, alias: nil)))
        XCTAssertTrue(user1001.isAffected(by: .directory(domain: stored, user: "$${x}", alias: nil)),
                      "a user id holding a reference may expand to anyone")

        XCTAssertTrue(user1000.isAffected(by: .section("directory")))
        XCTAssertFalse(user1000.isAffected(by: .section("dialplan")))
        XCTAssertTrue(user1000.isAffected(by: .everything))
        XCTAssertFalse(user1000.isAffected(by: .named(section: "dialplan", name: "default")))
    }

    func testOtherSectionsInvalidateByName() {
        let ctx = CacheTags.of(.dialplan("Default"))
        XCTAssertTrue(ctx.isAffected(by: .named(section: "dialplan", name: "default")))
        XCTAssertFalse(ctx.isAffected(by: .named(section: "dialplan", name: "public")))
        XCTAssertFalse(ctx.isAffected(by: .named(section: "configuration", name: "default")))
        let missing = CacheTags.of(.dialplan("nowhere"), found: false)
        XCTAssertTrue(missing.isAffected(by: .named(section: "dialplan", name: "nowhere")))
        let sofia = CacheTags.of(.configuration(ConfigurationQuery(document: "sofia.conf",
                                                                   narrowing: .children(container: "profiles", child: "profile", name: "internal"))))
        XCTAssertTrue(sofia.isAffected(by: .named(section: "configuration", name: "sofia.conf")), "every narrowing of it")
        XCTAssertFalse(sofia.isAffected(by: .named(section: "configuration", name: "acl.conf")))
        XCTAssertFalse(sofia.isAffected(by: .named(section: "languages", name: "sofia.conf")))
        let enUS = CacheTags.of(.language(LanguageQuery(language: "en-US", fallback: "en")))
        XCTAssertTrue(enUS.isAffected(by: .named(section: "languages", name: "en")), "served from the fallback")
        XCTAssertTrue(enUS.isAffected(by: .named(section: "languages", name: "en-us")), "the exact one created")
        XCTAssertFalse(enUS.isAffected(by: .named(section: "languages", name: "fr")))
        let phrases = CacheTags.of(.language(LanguageQuery(language: "en", phrases: true)))
        XCTAssertTrue(phrases.isAffected(by: .named(section: "languages", name: "en")), "phrases render the languages document")
    }

    // MARK: LRU

    func testLRUEvictsLeastRecentlyUsedWithinTheByteCap() {
        var lru = LRUCache<Int, String>(capacity: 100)
        for i in 0..<5 { lru.set(i, "v\(i)", bytes: 20) }
        XCTAssertEqual(lru.bytes, 100)
        XCTAssertEqual(lru.get(0), "v0")             // 0 becomes the most recent
        lru.set(5, "v5", bytes: 30)                  // evicts 1 and 2
        XCTAssertNil(lru.peek(1)); XCTAssertNil(lru.peek(2))
        XCTAssertEqual(lru.keysByRecency, [5, 0, 4, 3])
        XCTAssertEqual(lru.bytes, 90)
        XCTAssertEqual(lru.evictions, 2)
        lru.set(6, "huge", bytes: 101)
        XCTAssertNil(lru.peek(6), "larger than the whole cap: not kept")
        lru.set(0, "v0b", bytes: 10)                 // replace
        XCTAssertEqual(lru.bytes, 80)
        XCTAssertEqual(lru.removeAll { k, _ in k % 2 == 0 }, 2)
        XCTAssertEqual(Set(lru.keysByRecency), [5, 3])
        for i in 0..<100_000 { lru.set(1000 + i, "x", bytes: 7) }
        XCTAssertLessThanOrEqual(lru.bytes, 100)
        XCTAssertEqual(lru.count, 14)
        XCTAssertEqual(lru.keysByRecency.first, 100_999)
    }

    /// A hit within the most recent half does not reorder (no writes), yet a key
    /// hit between every insertion is never evicted, and a key hit after falling
    /// behind is moved to the front again.
    func testLRUHitsInTheRecentHalfStayWithoutMovingAndAreNeverEvicted() {
        var lru = LRUCache<Int, Int>(capacity: 100)
        for i in 0..<100 { lru.set(i, i, bytes: 1) }
        XCTAssertEqual(lru.get(98), 98)
        XCTAssertEqual(lru.get(60), 60)
        XCTAssertEqual(Array(lru.keysByRecency.prefix(3)), [99, 98, 97], "in the first half: not moved")
        XCTAssertEqual(lru.keysByRecency[39], 60)
        XCTAssertEqual(lru.get(30), 30)
        XCTAssertEqual(lru.keysByRecency.first, 30, "behind the first half: moved to the front")
        for i in 100..<10_000 {
            XCTAssertEqual(lru.get(50), 50, "evicted at insertion \(i)")
            lru.set(i, i, bytes: 1)
            XCTAssertLessThanOrEqual(lru.bytes, 100)
        }
        XCTAssertEqual(lru.count, 100)
        XCTAssertNil(lru.peek(0))
        XCTAssertNil(lru.peek(99), "a key never hit is evicted")
    }

    // MARK: What the cache learns from an answer: read from the model

    func testDirectoryAnswerFactsComeFromTheModelNotTheText() {
        func rows(domainCacheable: String?, userCacheable: String?, password: String) -> DirectoryData {
            DirectoryData(rows: [
                DirectoryRow(kind: .domain, id: 1, a: "pbx.test", b: domainCacheable),
                DirectoryRow(kind: .user, id: 2, parent: 1, a: "1000", c: userCacheable),
                DirectoryRow(kind: .userSetting, id: 3, parent: 2, a: "param", b: "password", c: password),
            ])
        }
        let user = DirectoryQuery.user(domain: "pbx.test", user: "1000", key: "id")
        // A value that merely looks like the markup the old check searched for.
        let plain = DirectoryRenderer.answer(user, rows(domainCacheable: nil, userCacheable: nil, password: #"x" cacheable="1"#))
        XCTAssertTrue(plain.xml.contains("cacheable=&quot;1"), plain.xml)
        XCTAssertFalse(plain.heldByFreeSWITCH, "a password is not a cacheable attribute")
        XCTAssertFalse(plain.noSuchUser)
        XCTAssertFalse(plain.notFound)
        // The domain's cacheable applies; the user's "false" overrides it.
        XCTAssertTrue(DirectoryRenderer.answer(user, rows(domainCacheable: "60000", userCacheable: nil, password: "p")).heldByFreeSWITCH)
        XCTAssertFalse(DirectoryRenderer.answer(user, rows(domainCacheable: "60000", userCacheable: "false", password: "p")).heldByFreeSWITCH)
        // A user id that looks like markup, asked for but absent: the domain answers, no user.
        let absent = DirectoryRenderer.answer(.user(domain: "pbx.test", user: "<user ", key: "id"),
                                              rows(domainCacheable: nil, userCacheable: nil, password: "p"))
        XCTAssertTrue(absent.noSuchUser)
        XCTAssertFalse(absent.notFound)
        XCTAssertTrue(DirectoryRenderer.answer(.user(domain: "other.test", user: "1000", key: "id"),
                                               rows(domainCacheable: nil, userCacheable: nil, password: "p")).notFound)
    }
}
