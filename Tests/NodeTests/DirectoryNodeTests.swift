import FSConfCore
import FSConfTestSupport
import Foundation
import FoundationXML
import XCTest

/// The directory section end to end: the real built library, loaded by the
/// generated shim, driven by lua5.3 the way mod_lua drives it, on a real PostgreSQL.
final class DirectoryNodeTests: XCTestCase {
    static let notFound = #"<document type="freeswitch/xml"><section name="result"><result status="not found"/></section></document>"#

    func makeNode(_ extra: [String] = []) throws -> NodeSetup {
        let node = try NodeSetup(shimArguments: extra)
        try node.load(DirectoryData.sql)
        return node
    }

    func xml(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> XMLDocument {
        do {
            return try XMLDocument(xmlString: text)
        } catch {
            XCTFail("not well-formed XML: \(error)\n\(text)", file: file, line: line)
            throw error
        }
    }

    func values(_ doc: XMLDocument, _ xpath: String) throws -> [String] {
        try doc.nodes(forXPath: xpath).compactMap { $0.stringValue }
    }

    func userLookup(_ node: NodeSetup, domain: String, user: String, key: String = "id", action: String = "sip_auth")
        throws -> XMLDocument {
        let out = try node.lookup(section: "directory", tag: "domain", keyName: "name", keyValue: domain,
                                  params: [("action", action), ("key", key), ("user", user), ("domain", domain)],
                                  globals: DirectoryData.nodeGlobals)
        XCTAssertEqual(out.status, 0, out.description)
        return try xml(out.stdout)
    }

    // MARK: Every captured FreeSWITCH directory lookup, replayed

    func testReplayOfEveryCapturedDirectoryLookup() throws {
        let node = try makeNode()
        let folder = TestEnvironment.sharedDirectory.appendingPathComponent("fixtures/fs-requests")
        var checked = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() where name.hasSuffix(".json") {
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let lookups = try XCTUnwrap(root["lookups"] as? [[String: Any]]).filter { $0["section"] as? String == "directory" }
            if lookups.isEmpty { continue }
            let file = try TemporaryDirectory()
            try file.write("l.json", String(decoding: try JSONSerialization.data(withJSONObject: ["lookups": lookups]), as: UTF8.self))
            let out = try node.lookups(file: file.url.appendingPathComponent("l.json"), globals: DirectoryData.nodeGlobals)
            XCTAssertEqual(out.status, 0, out.description)
            let answers = NodeSetup.answers(out.stdout)
            XCTAssertEqual(answers.count, lookups.count, "\(name): \(out)")
            for (lookup, answer) in zip(lookups, answers) {
                try checkCaptured(lookup, answer, name)
                checked += 1
            }
        }
        XCTAssertEqual(checked, 18, "every captured directory lookup was replayed")
        print("replayed \(checked) captured directory lookups")
    }

    /// What each captured lookup must get, by what FreeSWITCH will do with it.
    func checkCaptured(_ lookup: [String: Any], _ answer: String, _ file: String) throws {
        let params = lookup["params"] as? [String: String] ?? [:]
        let doc = try xml(answer)
        let context = "\(file) \(params["action"] ?? params["purpose"] ?? "plain"): \(answer)"
        if params["purpose"] == "gateways" {
            XCTAssertEqual(try values(doc, "//domain/@name"), ["127.0.0.1", "example.org"], context)
            XCTAssertEqual(try values(doc, "//domain[@name='127.0.0.1']/groups/group/users/user[@id='example.com']/gateways/gateway/@name"),
                           ["example.com"], context)
            XCTAssertEqual(try values(doc, "//gateway[@name='example.com']/param[@name='username']/@value"), ["joeuser"], context)
            return
        }
        XCTAssertEqual(try values(doc, "/document/section[@name='directory']/domain/@name"), ["127.0.0.1"], context)
        if params["purpose"] == "network-list" {
            XCTAssertEqual(try values(doc, "//user[@cidr]/@id"), ["brian"], context)
            XCTAssertEqual(try values(doc, "//user[@id='brian']/@cidr"), ["192.0.2.0/24"], context)
            return
        }
        if params["action"] == "group_call" {
            XCTAssertEqual(try values(doc, "//groups/group/@name"), ["default"], context)
            XCTAssertEqual(try values(doc, "//group[@name='default']/users/user/@id"),
                           ["1000", "1001", "1002", "brian", "example.com"], context)
            XCTAssertEqual(try values(doc, "/document/section/domain/params/param[@name='dial-string']/@value").count, 1, context)
            return
        }
        guard let user = params["user"] else {
            // xml_locate / plain domain lookups: the domain, its params and variables, no users.
            XCTAssertEqual(try doc.nodes(forXPath: "//user").count, 0, context)
            XCTAssertEqual(try values(doc, "/document/section/domain/variables/variable[@name='default_gateway']/@value"),
                           ["example.com"], context)
            return
        }
        if user == "9999" {
            // Unknown user in a domain fsconf holds: the domain without the user (a definite 403).
            XCTAssertEqual(try doc.nodes(forXPath: "//user").count, 0, context)
            return
        }
        XCTAssertEqual(try values(doc, "//user/@id"), [user], context)
        XCTAssertEqual(try values(doc, "//groups/group/@name"), ["default"], "the user sits in its group: \(context)")
        XCTAssertEqual(try values(doc, "//user/params/param[@name='password']/@value"), ["1234"], context)
    }

    // MARK: Keys, merging inputs, cacheable

    func testNumberAliasAndOtherKeysFindTheUser() throws {
        let node = try makeNode()
        // key=id matches the number-alias too (find_user_in_tag's OR).
        XCTAssertEqual(try values(try userLookup(node, domain: "127.0.0.1", user: "7000"), "//user/@id"), ["1000"])
        XCTAssertEqual(try values(try userLookup(node, domain: "127.0.0.1", user: "7000", key: "number-alias"), "//user/@id"), ["1000"])
        XCTAssertEqual(try values(try userLookup(node, domain: "127.0.0.1", user: "1000", key: "number-alias"), "//user/@id"), [])
        XCTAssertEqual(try values(try userLookup(node, domain: "example.org", user: "9001", key: "mailbox"), "//user/@id"), ["alice"])
        for action in ["user_call", "reverse-auth-lookup", "voicemail-lookup", "message-count", "jsonrpc-authenticate",
                       "event_socket_auth"] {
            let doc = try userLookup(node, domain: "example.org", user: "alice", action: action)
            XCTAssertEqual(try values(doc, "//user/@id"), ["alice"], action)
            XCTAssertEqual(try values(doc, "//user/params/param[@name='a1-hash']/@value"), ["0123456789abcdef0123456789abcdef"], action)
        }
    }

    func testDomainGroupAndUserSettingsAllReachFreeSWITCHsMerge() throws {
        let node = try makeNode()
        let doc = try userLookup(node, domain: "127.0.0.1", user: "1000")
        // FreeSWITCH merges user over group over domain itself (switch_xml_merge_user):
        // the answer must carry all three levels in that structure.
        XCTAssertEqual(try values(doc, "/document/section/domain/params/param/@name"), ["dial-string", "jsonrpc-allowed-methods"])
        XCTAssertEqual(try values(doc, "/document/section/domain/variables/variable/@name"), ["record_stereo", "default_gateway"])
        XCTAssertEqual(try values(doc, "//group[@name='default']/users/user/variables/variable/@name"),
                       ["user_context", "effective_caller_id_name", "outbound_caller_id_number"])
        XCTAssertEqual(try values(doc, "//variable[@name='outbound_caller_id_number']/@value"), ["0000000000"])
        XCTAssertEqual(try values(doc, "//user/@number-alias"), ["7000"])
        // A user outside any group sits directly in the domain; profile-variables come along.
        let alice = try userLookup(node, domain: "example.org", user: "alice")
        XCTAssertEqual(try values(alice, "/document/section/domain/user/@id"), ["alice"])
        XCTAssertEqual(try values(alice, "//user/profile-variables/variable/@name"), ["pv"])
        XCTAssertEqual(try values(alice, "//user/@mailbox"), ["9001"])
    }

    func testCacheableComesFromTheUserOrTheDomain() throws {
        let node = try makeNode()
        XCTAssertEqual(try values(try userLookup(node, domain: "127.0.0.1", user: "1002"), "//user/@cacheable"), ["60000"])
        XCTAssertEqual(try values(try userLookup(node, domain: "127.0.0.1", user: "1001"), "//user/@cacheable"), [])
        XCTAssertEqual(try values(try userLookup(node, domain: "example.org", user: "alice"), "//user/@cacheable"), ["true"])
        // "false" on the user overrides the domain's default (FreeSWITCH would cache "false" forever).
        XCTAssertEqual(try values(try userLookup(node, domain: "example.org", user: "bob"), "//user/@cacheable"), [])
    }

    func testNamesMatchWithoutRegardToCaseAsFreeSWITCHDoes() throws {
        let node = try makeNode()
        let doc = try userLookup(node, domain: "EXAMPLE.Org", user: "ALICE")
        XCTAssertEqual(try values(doc, "//user/@id"), ["alice"])
    }

    func testPublishVMListsUsersDirectlyUnderTheDomain() throws {
        let node = try makeNode()
        let out = try node.lookup(section: "directory", tag: "domain", keyName: "name", keyValue: "127.0.0.1",
                                  params: [("purpose", "publish-vm"), ("domain", "127.0.0.1")], globals: DirectoryData.nodeGlobals)
        let doc = try xml(out.stdout)
        XCTAssertEqual(try values(doc, "/document/section/domain/user/@id"), ["1000", "1001", "1002", "brian", "example.com"])
    }

    func testUnknownDomainIsNotFoundSoFreeSWITCHFallsBack() throws {
        let node = try makeNode()
        let out = try node.lookup(section: "directory", tag: "domain", keyName: "name", keyValue: "nowhere.test",
                                  params: [("action", "sip_auth"), ("key", "id"), ("user", "1000")])
        XCTAssertEqual(out.stdout, Self.notFound)
        // Without the node's local_ip_v4, $${domain} expands to "" and matches nothing.
        let bare = try node.lookup(section: "directory", tag: "domain", keyName: "name", keyValue: "127.0.0.1",
                                   params: [("action", "sip_auth"), ("key", "id"), ("user", "1000")])
        XCTAssertEqual(bare.stdout, Self.notFound)
    }

    // MARK: Hostile input

    func testInjectionAttemptsReturnNotFoundOrCleanXML() throws {
        let node = try makeNode()
        let hostile = ["' OR 1=1 --", "1000' OR '1'='1", "1000\" or \"1\"=\"1", "]]>", "<user id=\"1000\"/>",
                       "&amp;", "1000&", "%00", "1000;DROP TABLE fsconf.users", "$${default_password}",
                       String(repeating: "A", count: 100_000)]
        var lookups: [[String: Any]] = []
        for value in hostile + ["1000\u{0}", "\u{0}", String(repeating: "Z", count: 1_048_576)] {
            lookups.append(["section": "directory", "tag_name": "domain", "key_name": "name", "key_value": "127.0.0.1",
                            "params": ["action": "sip_auth", "key": "id", "user": value, "domain": "127.0.0.1"]])
            lookups.append(["section": "directory", "tag_name": "domain", "key_name": "name", "key_value": value,
                            "params": ["action": "sip_auth", "key": "id", "user": "1000", "domain": value]])
        }
        let file = try TemporaryDirectory()
        try file.write("l.json", String(decoding: try JSONSerialization.data(withJSONObject: ["lookups": lookups]), as: UTF8.self))
        let out = try node.lookups(file: file.url.appendingPathComponent("l.json"), globals: DirectoryData.nodeGlobals)
        XCTAssertEqual(out.status, 0, String(out.description.prefix(2000)))
        let answers = NodeSetup.answers(out.stdout)
        XCTAssertEqual(answers.count, lookups.count)
        for answer in answers {
            if answer == Self.notFound { continue }
            let doc = try xml(answer)
            XCTAssertEqual(try doc.nodes(forXPath: "//user").count, 0, "a hostile key found a user: \(answer.prefix(500))")
        }
        XCTAssertEqual(try node.db.column("SELECT count(*) FROM fsconf.users"), ["7"], "the data is intact")
    }

    /// The module's Lua API (luasql / lua-cjson style), called directly from Lua,
    /// with arguments mod_lua would never send, including invalid UTF-8.
    func testLuaAPIContract() throws {
        let node = try makeNode()
        let script = """
            local lib = \(luaQuote(TestEnvironment.nodeLibrary.path))
            local settings = { schema = \(SchemaVersion.current), conninfo = \(luaQuote(node.db.conninfo)) }
            local before = {}
            for k in pairs(_G) do before[k] = true end
            local open = assert(package.loadlib(lib, "luaopen_fsconf"))
            local fsconf = open()
            for k in pairs(_G) do assert(before[k], "global leaked: " .. tostring(k)) end
            assert(fsconf._NAME == "fsconf", "_NAME")
            assert(type(fsconf._VERSION) == "string", "_VERSION")
            assert(type(fsconf.handle) == "function", "handle")
            local function event(h)
              return setmetatable({}, { __index = { getHeader = function(_, n) return h[n] end } })
            end
            local function call(...)
              local ok, a, b = pcall(fsconf.handle, ...)
              assert(ok, "raised a Lua error: " .. tostring(a))
              return a, b
            end
            -- nonsense arguments: nil + message or not found, never a raised error
            call()
            call(42, "x", true)
            call({ section = {} }, nil, settings)
            local raising = setmetatable({}, { __index = function() error("boom from __index") end })
            local xml, msg = call({ section = "directory", tag_name = "domain", key_name = "name", key_value = "127.0.0.1" }, raising, settings)
            assert(xml == nil and type(msg) == "string" and msg:find("boom"), "a raising params object gives nil, message: " .. tostring(msg))
            local bad_settings = { schema = \(SchemaVersion.current), pool_size = "lots" }
            xml, msg = call({ section = "directory" }, event({}), bad_settings)
            assert(xml == nil and msg:find("pool_size"), "bad settings give nil, message: " .. tostring(msg))
            xml, msg = call({ section = "directory" }, event({}), "schema=\(SchemaVersion.current)\\npool_size=lots")
            assert(xml == nil and msg:find("pool_size"), "bad settings text gives nil, message: " .. tostring(msg))
            xml, msg = call({ section = "directory" }, event({}), "schema=\(SchemaVersion.current)\\nno equals sign")
            assert(xml == nil and msg:find("name=value"), "a settings line without = gives nil, message: " .. tostring(msg))
            -- a getHeader that raises part-way: nil, message (never planned as if absent)
            local flaky = setmetatable({}, { __index = { getHeader = function(_, n)
              if n == "user" then error("boom from getHeader") end
              return ({ key = "id", domain = "127.0.0.1" })[n]
            end } })
            xml, msg = call({ section = "directory", tag_name = "domain", key_name = "name", key_value = "127.0.0.1" }, flaky, settings)
            assert(xml == nil and type(msg) == "string" and msg:find("boom from getHeader"), "raising getHeader: " .. tostring(msg))
            -- invalid UTF-8 and control bytes as keys
            for _, v in ipairs({ "\\255\\254", "1000\\255", "\\192\\128", "\\1\\2\\3" }) do
              local r = call({ section = "directory", tag_name = "domain", key_name = "name", key_value = "127.0.0.1" },
                             event({ action = "sip_auth", key = "id", user = v, domain = "127.0.0.1" }), settings)
              assert(r == nil or not r:find("<user "), "invalid UTF-8 found a user")
              r = call({ section = "directory", tag_name = "domain", key_name = "name", key_value = v },
                       event({ action = "sip_auth", key = "id", user = "1000" }), settings)
              assert(r == nil or r:find('status="not found"'), "invalid UTF-8 domain")
            end
            -- and a good lookup still works afterwards, in the same process
            freeswitch = { getGlobalVariable = function(n) if n == "local_ip_v4" then return "127.0.0.1" end end }
            xml = call({ section = "directory", tag_name = "domain", key_name = "name", key_value = "127.0.0.1" },
                       event({ action = "sip_auth", key = "id", user = "1000", domain = "127.0.0.1" }), settings)
            assert(xml and xml:find('<user id="1000"'), "good lookup: " .. tostring(xml))
            -- the shim's entry point: settings as one string, XML_REQUEST and params
            -- from mod_lua's globals, the answer in XML_STRING; a REGISTER's lookup
            -- asks params for purpose, user and key, then the node's name (docs/cluster.md)
            local handler = assert(package.loadlib(lib, "fsconf_xml_handler"))
            local asked = {}
            params = setmetatable({}, { __index = { getHeader = function(_, n)
              asked[#asked + 1] = n
              return ({ action = "sip_auth", key = "id", user = "1000", domain = "127.0.0.1", sip_auth_nonce = "n",
                        ["FreeSWITCH-Switchname"] = "fs-node-1", ["FreeSWITCH-Hostname"] = "fs-node-1" })[n]
            end } })
            XML_REQUEST = { section = "directory", tag_name = "domain", key_name = "name", key_value = "127.0.0.1" }
            local text = "schema=\(SchemaVersion.current)\\nconninfo=" .. \(luaQuote(node.db.conninfo))
            xml = handler(text)
            assert(xml and xml:find('<user id="1000"'), "string settings: " .. tostring(xml))
            assert(XML_STRING == xml, "XML_STRING is set")
            assert(table.concat(asked, ",") == "purpose,user,key,FreeSWITCH-Switchname", "headers read: " .. table.concat(asked, ","))
            -- no params (many configuration lookups): not a crash, not a Lua error
            params = nil
            XML_REQUEST = { section = "directory", tag_name = "domain", key_name = "name", key_value = "127.0.0.1" }
            xml, msg = handler(text)
            assert(XML_STRING == xml, "XML_STRING follows the answer without params")
            -- a hostile global environment: nil, message, never a raised error
            local saved = XML_REQUEST
            setmetatable(_G, { __index = function(_, k) if k == "XML_REQUEST" then error("boom from _G") end end })
            XML_REQUEST = nil
            local ok, a, b = pcall(handler, text)
            setmetatable(_G, nil)
            assert(ok and a == nil and b:find("boom from _G"), "a raising environment: " .. tostring(a) .. " " .. tostring(b))
            XML_REQUEST = saved
            print("lua api ok")
            """
        try runLua(script, node, printing: "lua api ok\n")
    }

    /// Runs `script` with lua5.3 against the node's database: it must exit 0 and
    /// print exactly `printing`.
    func runLua(_ script: String, _ node: NodeSetup, printing: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try TemporaryDirectory()
        try dir.write("script.lua", script)
        let out = try runProcess(tool("lua5.3"), [dir.path("script.lua")], environment: node.db.environment)
        XCTAssertEqual(out.status, 0, out.description, file: file, line: line)
        XCTAssertEqual(out.stdout, printing, file: file, line: line)
    }

    /// The shim entry point in one thread, one process: shim texts that alternate
    /// (each replaces the other's backend: a thread's remembered backend must not
    /// outlive that), a lookup made from inside a params:getHeader call (the
    /// handler re-entered while the usual headers are being read), and each
    /// lookup's answer for the node its own params name.
    func testAlternatingShimsAndAReentrantLookupEachGetTheirOwnAnswer() throws {
        let node = try makeNode()
        let script = """
            local lib = \(luaQuote(TestEnvironment.nodeLibrary.path))
            local handler = assert(package.loadlib(lib, "fsconf_xml_handler"))
            local fsconf = assert(package.loadlib(lib, "luaopen_fsconf"))()
            freeswitch = { getGlobalVariable = function(n) if n == "local_ip_v4" then return "127.0.0.1" end end }
            local good = "schema=\(SchemaVersion.current)\\nconninfo=" .. \(luaQuote(node.db.conninfo))
            local other = good .. "\\npool_size=3"
            local down = "schema=\(SchemaVersion.current)\\nconninfo=host=/nonexistent-fsconf-socket-dir port=1 dbname=x\\npool_size=2"
            local function event(h)
              return setmetatable({}, { __index = { getHeader = function(_, n) return h[n] end } })
            end
            local function lookup(text, user)
              XML_REQUEST = { section = "directory", tag_name = "domain", key_name = "name", key_value = "127.0.0.1" }
              params = event({ action = "sip_auth", key = "id", user = user, domain = "127.0.0.1",
                               ["FreeSWITCH-Switchname"] = "fs-node-1" })
              return handler(text)
            end
            -- each lookup is served by the backend of its own text, which is then the
            -- process's current one (fsconf.stats() reports its pool size)
            local n, good_size = 0, nil
            for round = 1, 3 do
              for _, text in ipairs({ good, other, down, good, good, down, other }) do
                local user = tostring(1000 + n % 3)
                n = n + 1
                local xml, msg = lookup(text, user)
                if text == down then
                  assert(xml == nil and msg and msg:find("database unavailable"), "round " .. round .. ": down: " .. tostring(xml) .. " " .. tostring(msg))
                else
                  assert(xml and xml:find('<user id="' .. user .. '"'), "round " .. round .. ", user " .. user .. ": " .. tostring(msg))
                end
                local size = fsconf.stats().pool_size
                if text == good then good_size = good_size or size end
                local want = text == other and 3 or text == down and 2 or good_size
                assert(size == want and good_size ~= 3 and good_size ~= 2, "round " .. round .. ": pool size " .. tostring(size) .. ", not " .. tostring(want))
              end
            end
            -- a lookup from inside getHeader, with other settings: both get their own
            -- answer, and the thread's next lookup with the outer settings replaces the
            -- backend the inner one installed (this thread remembered the outer's)
            local inner
            XML_REQUEST = { section = "directory", tag_name = "domain", key_name = "name", key_value = "127.0.0.1" }
            local outer = setmetatable({}, { __index = { getHeader = function(_, n)
              if n == "user" and not inner then
                local saved_request, saved_params = XML_REQUEST, params
                inner = lookup(other, "1001") or "none"
                XML_REQUEST, params = saved_request, saved_params
              end
              return ({ action = "sip_auth", key = "id", user = "1000", domain = "127.0.0.1" })[n]
            end } })
            params = outer
            local xml = handler(good)
            assert(xml and xml:find('<user id="1000"'), "outer: " .. tostring(xml))
            assert(inner and inner:find('<user id="1001"'), "inner: " .. tostring(inner))
            assert(fsconf.stats().pool_size == 3, "the inner lookup's backend is current")
            xml = lookup(good, "1002")
            assert(xml and xml:find('<user id="1002"'), "after: " .. tostring(xml))
            assert(fsconf.stats().pool_size == good_size, "the outer settings' backend again: " .. fsconf.stats().pool_size)
            print("ok")
            """
        try runLua(script, node, printing: "ok\n")
    }

    // MARK: Failures are not "not found"

    func testDatabaseDownGivesNoAnswerAndOneLogLine() throws {
        let node = try NodeSetup(conninfo: "host=127.0.0.1 port=1 dbname=x connect_timeout=2")
        let lookups = (0..<5).map { _ in
            ["section": "directory", "tag_name": "domain", "key_name": "name", "key_value": "127.0.0.1",
             "params": ["action": "sip_auth", "key": "id", "user": "1000", "domain": "127.0.0.1"]] as [String: Any]
        }
        let file = try TemporaryDirectory()
        try file.write("l.json", String(decoding: try JSONSerialization.data(withJSONObject: ["lookups": lookups]), as: UTF8.self))
        let started = Date()
        let out = try node.lookups(file: file.url.appendingPathComponent("l.json"))
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(NodeSetup.answers(out.stdout), ["", "", "", "", ""], "no answer (nil), never 'not found'")
        let errors = out.stderr.split(separator: "\n").filter { $0.hasPrefix("[ERR] fsconf: database unavailable") }
        XCTAssertEqual(errors.count, 1, "one log line per interval, not per lookup: \(out.stderr)")
        XCTAssertFalse(out.stderr.contains("password"))
    }

    func testBadShimSettingsGiveNoAnswerAndOneLogLine() throws {
        let node = try makeNode()
        var shim = try String(contentsOf: node.shim, encoding: .utf8)
        shim = shim.replacingOccurrences(of: "\"schema=\(SchemaVersion.current)\\n", with: "\"schema=\(SchemaVersion.current)\\npool_size=lots\\n")
        try shim.write(to: node.shim, atomically: true, encoding: .utf8)
        let lookups = (0..<5).map { _ in
            ["section": "directory", "tag_name": "domain", "key_name": "name", "key_value": "127.0.0.1",
             "params": ["action": "sip_auth", "key": "id", "user": "1000", "domain": "127.0.0.1"]] as [String: Any]
        }
        let file = try TemporaryDirectory()
        try file.write("l.json", String(decoding: try JSONSerialization.data(withJSONObject: ["lookups": lookups]), as: UTF8.self))
        let out = try node.lookups(file: file.url.appendingPathComponent("l.json"))
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertEqual(NodeSetup.answers(out.stdout), ["", "", "", "", ""], "no answer, never 'not found'")
        let errors = out.stderr.split(separator: "\n").filter { $0.hasPrefix("[ERR] fsconf: bad shim settings: pool_size") }
        XCTAssertEqual(errors.count, 1, "one log line per interval, not per lookup: \(out.stderr)")
    }

    func testMismatchedShimIsRefusedWithOneClearLine() throws {
        let node = try makeNode()
        var shim = try String(contentsOf: node.shim, encoding: .utf8)
        XCTAssertTrue(shim.contains("\"schema=\(SchemaVersion.current)\\n"), shim)
        shim = shim.replacingOccurrences(of: "\"schema=\(SchemaVersion.current)\\n", with: "\"schema=99\\n")
        try shim.write(to: node.shim, atomically: true, encoding: .utf8)
        let out = try node.lookup(section: "directory", tag: "domain", keyName: "name", keyValue: "127.0.0.1",
                                  params: [("action", "sip_auth"), ("key", "id"), ("user", "1000")], globals: DirectoryData.nodeGlobals)
        XCTAssertEqual(out.stdout, "")
        XCTAssertTrue(out.stderr.contains("[ERR] fsconf: the shim was generated for schema 99 but the library reads schema \(SchemaVersion.current)"), out.stderr)
    }

    /// A node whose library is missing: one error line naming it per lookup, no
    /// answer (FreeSWITCH uses its files), and no Lua error — mod_lua's lua_fetch
    /// skips lua_close after a failing script, so a raising shim would leak a state
    /// per lookup.
    func testMissingLibraryIsOneClearErrorAndNoAnswer() throws {
        let node = try makeNode()
        let out = try runProcess(TestEnvironment.fsconfBinary,
                                 ["shim", "--out", node.dir.url.path, "--name", "gone.lua",
                                  "--library", "/nonexistent/fsconf/libfsconf-lua.so", "--conninfo", node.db.conninfo])
        XCTAssertEqual(out.status, 0, out.description)
        let lookup = try runProcess(tool("lua5.3"),
                                    [NodeSetup.harness.path, node.dir.path("gone.lua"), "--section", "directory", "--tag", "domain",
                                     "--key-name", "name", "--key-value", "127.0.0.1", "--param", "user=1000"],
                                    environment: node.db.environment)
        XCTAssertEqual(lookup.status, 0, "the script ran without raising: \(lookup.description)")
        XCTAssertEqual(lookup.stdout, "")
        XCTAssertFalse(lookup.stderr.contains("script error"), lookup.stderr)
        let lines = lookup.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, lookup.stderr)
        XCTAssertTrue(lines.first?.hasPrefix("[ERR] /nonexistent/fsconf/libfsconf-lua.so:") ?? false, lookup.stderr)
        XCTAssertTrue(lines.first?.contains("No such file or directory") ?? false, lookup.stderr)
    }

    /// Shims generated by earlier versions (module table, settings table) keep
    /// working until the node's shim is regenerated.
    func testShimOfTheEarlierFormatStillAnswers() throws {
        let node = try makeNode()
        let lib = luaQuote(TestEnvironment.nodeLibrary.path)
        try """
            local open, err = package.loadlib(\(lib), "luaopen_fsconf")
            if not open then
              freeswitch.consoleLog("err", "fsconf: cannot load: " .. tostring(err) .. "\\n")
              return
            end
            XML_STRING = open().handle(XML_REQUEST, params, { schema = \(SchemaVersion.current), conninfo = \(luaQuote(node.db.conninfo)) })
            """.write(to: node.dir.url.appendingPathComponent("old.lua"), atomically: true, encoding: .utf8)
        let out = try runProcess(tool("lua5.3"),
                                 [NodeSetup.harness.path, node.dir.path("old.lua"), "--section", "directory", "--tag", "domain",
                                  "--key-name", "name", "--key-value", "127.0.0.1", "--param", "action=sip_auth",
                                  "--param", "key=id", "--param", "user=1000", "--param", "domain=127.0.0.1"],
                                 environment: node.environment(DirectoryData.nodeGlobals))
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stdout.contains(#"<user id="1000""#), out.description)
    }

    func testShimCarriesNoSecretsAndNoSQL() throws {
        let node = try makeNode()
        let text = try String(contentsOf: node.shim, encoding: .utf8)
        XCTAssertFalse(text.lowercased().contains("select"))
        XCTAssertFalse(text.contains("fsconf."), "no schema knowledge")
        XCTAssertTrue(text.contains("package.loadlib(\"\(TestEnvironment.nodeLibrary.path)\", \"fsconf_xml_handler\")"))
        let refused = try runProcess(TestEnvironment.fsconfBinary,
                                     ["shim", "--out", node.dir.url.path, "--conninfo", "host=x password=hunter2"])
        XCTAssertEqual(refused.status, 2, refused.description)
        XCTAssertFalse(refused.stderr.contains("hunter2") && !refused.stderr.contains("must not carry"))
        let service = try runProcess(TestEnvironment.fsconfBinary,
                                     ["shim", "--out", node.dir.url.path, "--name", "svc.lua", "--service", "fsconf_node"])
        XCTAssertEqual(service.status, 0, service.description)
        XCTAssertEqual(service.stdout, """
            <param name="xml-handler-script" value="\(node.dir.url.path)/svc.lua"/>
            <param name="xml-handler-bindings" value="directory,dialplan,chatplan,configuration,languages"/>

            """)
        XCTAssertTrue(try String(contentsOfFile: node.dir.path("svc.lua"), encoding: .utf8)
            .contains("if h then h(\"schema=\(SchemaVersion.current)\\nservice=fsconf_node\") else"))
        let newline = try runProcess(TestEnvironment.fsconfBinary,
                                     ["shim", "--out", node.dir.url.path, "--conninfo", "host=x\ndbname=y"])
        XCTAssertEqual(newline.status, 2, newline.description)
        XCTAssertTrue(newline.stderr.contains("--conninfo must not contain a line break"), newline.stderr)
    }
}

func luaQuote(_ s: String) -> String {
    "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}
