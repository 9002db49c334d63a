import FSConfAdminCore
import FSConfCore
import XCTest

/// Which lookups a dry run renders, from a change set's keys: pure, with a table
/// of facts standing in for the database.
final class AffectedLookupsTests: XCTestCase {
    struct Facts: LookupFacts {
        var domains: [String: (groups: [String], users: [String])] = [:]
        var globals: [String: [LookupKey]] = [:]
        func members(ofDomain domain: String) -> (groups: [String], users: [String])? { domains[domain] }
        func references(global name: String) -> [LookupKey] { globals[name] ?? [] }
    }

    func keys(_ json: String) -> [LookupKey] {
        JSONValue.parse(json)!.array!.compactMap(LookupKey.from)
    }

    func labels(_ json: String, _ facts: Facts = Facts(), users: Int = 100) -> [String] {
        AffectedLookups.derive(keys(json), facts: facts, usersPerDomain: users).targets.map(\.label)
    }

    func testUserKeysRenderTheUserAndAChangedAlias() {
        // A param of user 1000 (alias 7000 unchanged): the user by id only.
        XCTAssertEqual(labels(#"[{"s":"directory","d":"example.com","u":"1000","a":"7000"}]"#), ["directory example.com 1000"])
        // Its alias renamed: the old and the new alias lookups too.
        XCTAssertEqual(labels(#"[{"s":"directory","d":"example.com","u":"1000","a":"7001"},{"s":"directory","d":"example.com","u":"1000","a":"7000"}]"#),
                       ["directory example.com 1000", "directory example.com 7001 --param key=number-alias",
                        "directory example.com 7000 --param key=number-alias"])
        // Same user in another case: one lookup (FreeSWITCH compares without case).
        XCTAssertEqual(labels(#"[{"s":"directory","d":"Example.com","u":"1000"},{"s":"directory","d":"example.com","u":"1000"}]"#),
                       ["directory Example.com 1000"])
    }

    func testGatewayKeysAddTheGatewayList() {
        XCTAssertEqual(labels(#"[{"s":"directory","d":"example.com","u":"alice","g":"carrier"}]"#),
                       ["directory example.com alice", "directory example.com --param purpose=gateways"])
    }

    func testDomainKeysRenderTheDomainItsGroupsAndUsersUpToTheLimit() {
        var facts = Facts()
        facts.domains["example.com"] = (groups: ["sales"], users: ["1000", "1001", "1002", "1003"])
        let derived = AffectedLookups.derive(keys(#"[{"s":"directory","d":"example.com","u":"1003"},{"s":"directory","d":"example.com"}]"#),
                                             facts: facts, usersPerDomain: 2)
        XCTAssertEqual(derived.targets.map(\.label), ["directory example.com 1003", "directory example.com",
                                                      "directory example.com --param group_name=sales",
                                                      "directory example.com 1000", "directory example.com 1001"])
        XCTAssertEqual(derived.notes, ["1 more user lookup(s) of example.com not rendered (at most 2 per domain: --max-users)"])
        // A domain not stored (in this state): the domain lookup alone.
        XCTAssertEqual(labels(#"[{"s":"directory","d":"new.example.com"}]"#), ["directory new.example.com"])
    }

    func testContextsDocumentsAndLanguages() {
        XCTAssertEqual(labels(#"[{"s":"dialplan","c":"default"},{"s":"chatplan","c":"default"},{"s":"configuration","n":"sofia.conf"},{"s":"languages","n":"en"},{"s":"dialplan","c":"default"}]"#),
                       ["dialplan default", "chatplan default", "configuration sofia.conf", "languages en"])
    }

    func testGlobalsExpandToWhatReferencesThemTransitively() {
        var facts = Facts()
        facts.globals["domain"] = [LookupKey(section: "directory", domain: "$${domain}"), LookupKey(section: "globals", name: "outbound")]
        facts.globals["outbound"] = [LookupKey(section: "dialplan", name: "public"), LookupKey(section: "globals", name: "domain")]
        XCTAssertEqual(labels(#"[{"s":"globals","n":"domain"}]"#, facts), ["directory '$${domain}'", "dialplan public"])
    }

    func testWholeSectionKeysAreCoveredByTheirParentsOrReported() {
        // A user removed: its settings' rows record "all" (the user row was gone first).
        let covered = AffectedLookups.derive(keys(#"[{"s":"directory","d":"example.com","u":"1000"},{"s":"directory","all":true}]"#), facts: Facts())
        XCTAssertEqual(covered.targets.map(\.label), ["directory example.com 1000"])
        XCTAssertEqual(covered.notes, [])
        // A document replaced: its elements record both tree sections whole.
        let document = AffectedLookups.derive(keys(#"[{"s":"configuration","n":"sofia.conf"},{"s":"configuration","all":true},{"s":"languages","all":true}]"#),
                                              facts: Facts())
        XCTAssertEqual(document.targets.map(\.label), ["configuration sofia.conf"])
        XCTAssertEqual(document.notes, [])
        let alone = AffectedLookups.derive(keys(#"[{"s":"configuration","all":true}]"#), facts: Facts())
        XCTAssertEqual(alone.targets, [])
        XCTAssertEqual(alone.notes, ["the whole configuration section changed: its lookups are not rendered"])
    }

    func testTargetsBuildTheRequestsRenderBuilds() throws {
        let user = try RenderTarget(section: "directory", key: "example.com", user: "1000").request()
        XCTAssertEqual(CacheKey.of(user), .directory(.user(domain: "example.com", user: "1000", key: "id")))
        let alias = try RenderTarget(section: "directory", key: "example.com", user: "7000", headers: ["key": "number-alias"]).request()
        XCTAssertEqual(CacheKey.of(alias), .directory(.user(domain: "example.com", user: "7000", key: "number-alias")))
        let group = try RenderTarget(section: "directory", key: "example.com", headers: ["group_name": "sales"]).request()
        XCTAssertEqual(CacheKey.of(group), .directory(.group(domain: "example.com", group: "sales")))
        let gateways = try RenderTarget(section: "directory", key: "example.com", headers: ["purpose": "gateways"]).request()
        XCTAssertEqual(CacheKey.of(gateways), .directory(.gateways(domain: "example.com")))
        XCTAssertEqual(CacheKey.of(try RenderTarget(section: "dialplan", key: "default").request()), .dialplan("default"))
        XCTAssertEqual(CacheKey.of(try RenderTarget(section: "chatplan", key: "default").request()), .chatplan("default"))
        XCTAssertThrowsError(try RenderTarget(section: "nope", key: "x").request())
        XCTAssertEqual(RenderTarget(section: "directory", key: "my domain", user: "it's").label, "directory 'my domain' 'it'\\''s'")
    }
}
