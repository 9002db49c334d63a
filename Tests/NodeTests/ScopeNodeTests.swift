import FSConfCore
import FSConfTestSupport
import Foundation
import FoundationXML
import XCTest

/// Per-node scope through the REAL node library (docs/cluster.md): several node
/// identities, each named by the lookup's own params (FreeSWITCH-Switchname), the
/// shim run by lua5.3 and the mod_lua-like harness as mod_lua runs it; the data is
/// ScopeFixture, made with the CLI's own commands.
final class ScopeNodeTests: XCTestCase, XMLAnswers {
    static let globals = ["local_ip_v4": "127.0.0.1"]

    func makeNode() throws -> NodeSetup {
        let node = try NodeSetup(prefix: "scope")
        try ScopeFixture.load(into: node.dir, environment: node.db.environment)
        return node
    }

    /// sofia.conf as mod_sofia asks for one profile (01-startup.json), as `switchname`.
    func sofia(_ node: NodeSetup, profile: String, as switchname: String) throws -> XMLElement {
        try parse(node.lookup(section: "configuration", tag: "configuration", keyName: "name", keyValue: "sofia.conf",
                              params: [("profile", profile), ("FreeSWITCH-Hostname", "host-\(switchname)"),
                                       ("FreeSWITCH-Switchname", switchname)], globals: Self.globals))
    }

    /// The directory's purpose=gateways lookup mod_sofia makes per profile (01-startup.json).
    func gateways(_ node: NodeSetup, as switchname: String) throws -> XMLElement {
        try parse(node.lookup(section: "directory", params: [("purpose", "gateways"), ("profile", "internal"),
                                                             ("FreeSWITCH-Switchname", switchname)], globals: Self.globals))
    }

    /// A scoped sofia.conf gateway, a scoped directory user gateway and a scoped
    /// profile setting reach only their nodes; a scoped global changes only its node's values.
    func testScopedGatewaysAndProfileSettingReachOnlyTheirNodes() throws {
        let node = try makeNode()
        // Profile internal: sitea's sip-ip replaces the unscoped one, in place.
        for (site, ip) in [("sitea", "10.0.0.1"), ("siteb", "127.0.0.1"), ("sitec", "127.0.0.1")] {
            let root = try sofia(node, profile: "internal", as: site)
            XCTAssertEqual(try values(root, "//profile[@name='internal']/settings/param/@name"), ["sip-ip", "sip-port", "context"], site)
            XCTAssertEqual(try values(root, "//profile[@name='internal']/settings/param[@name='sip-ip']/@value"), [ip], site)
            XCTAssertEqual(try values(root, "//global_settings/param/@name"), ["log-level"], site)
        }
        // Profile external: carrier-a only on sitea; `everywhere` on every node, with
        // sitea's own value of $${outbound_proxy}.
        for (site, names, proxy) in [("sitea", ["everywhere", "carrier-a"], "proxy-a.example"),
                                     ("siteb", ["everywhere"], "proxy.example"), ("sitec", ["everywhere"], "proxy.example")] {
            let root = try sofia(node, profile: "external", as: site)
            XCTAssertEqual(try values(root, "//profile[@name='external']/gateways/gateway/@name"), names, site)
            XCTAssertEqual(try values(root, "//gateway[@name='everywhere']/param[@name='proxy']/@value"), [proxy], site)
        }
        XCTAssertEqual(try values(try sofia(node, profile: "external", as: "sitea"), "//gateway[@name='carrier-a']/param/@value"),
                       ["carrier-a.example"])
        // User 1000's carrier-b: the nodes of @eu only, each with its $${outbound_proxy}.
        for (site, names, proxy) in [("sitea", ["carrier-b"], ["proxy-a.example"]), ("siteb", ["carrier-b"], ["proxy.example"]),
                                     ("sitec", [], [])] {
            let root = try gateways(node, as: site)
            XCTAssertEqual(try values(root, "//domain/@name"), ["example.test"], site)
            XCTAssertEqual(try values(root, "//user[@id='1000']/gateways/gateway/@name"), names, site)
            XCTAssertEqual(try values(root, "//gateway[@name='carrier-b']/param[@name='proxy']/@value"), proxy, site)
        }
        // A REGISTER's lookup (02-register.json's shape) on sitec finds the user, without the gateway.
        let register = try parse(node.lookup(section: "directory", tag: "domain", keyName: "name", keyValue: "example.test",
                                             params: [("action", "sip_auth"), ("key", "id"), ("user", "1000"), ("domain", "example.test"),
                                                      ("FreeSWITCH-Switchname", "sitec")], globals: Self.globals))
        XCTAssertEqual(try values(register, "//user/@id"), ["1000"])
        XCTAssertEqual(try values(register, "//user/gateways/gateway"), [])
        // A node named by FreeSWITCH-Hostname alone (no Switchname header), and names in any case.
        let byHost = try parse(node.lookup(section: "configuration", tag: "configuration", keyName: "name", keyValue: "sofia.conf",
                                           params: [("profile", "internal"), ("FreeSWITCH-Hostname", "SiteA")], globals: Self.globals))
        XCTAssertEqual(try values(byHost, "//param[@name='sip-ip']/@value"), ["10.0.0.1"])
    }

    /// A scoped dialplan extension: siteb's variant of `ring` stands where `ring`
    /// stands; `site_a_only` exists on sitea only; other nodes get the unscoped ones.
    func testScopedExtensionsReachOnlyTheirNodesInPlace() throws {
        let node = try makeNode()
        func context(_ site: String?) throws -> XMLElement {
            var params = [("Hunt-Context", "default"), ("Caller-Destination-Number", "100")]
            if let site { params.append(("FreeSWITCH-Switchname", site)) }
            return try parse(node.lookup(section: "dialplan", params: params, globals: Self.globals))
        }
        for (site, names, ring) in [("sitea", ["ring", "site_a_only", "last"], "user/1000"),
                                    ("siteb", ["ring", "last"], "sofia/gateway/carrier-b/100"),
                                    ("sitec", ["ring", "last"], "user/1000")] {
            let root = try context(site)
            XCTAssertEqual(try values(root, "//context[@name='default']/extension/@name"), names, site)
            XCTAssertEqual(try values(root, "//extension[@name='ring']/condition/action/@data"), [ring], site)
        }
        // A lookup naming no node (params without the headers, no node to ask): every node's only.
        let root = try context(nil)
        XCTAssertEqual(try values(root, "//extension/@name"), ["ring", "last"])
    }

    /// Lookups without params (acl.conf, event_socket.conf... at startup): the node
    /// names itself through a fresh event's FreeSWITCH-Switchname, else its
    /// `hostname` global; with neither, it is a node with no name.
    func testLookupsWithoutParamsAskTheNodeItsName() throws {
        let node = try makeNode()
        func sipIP(_ env: [String: String]) throws -> [String] {
            var environment = node.environment(Self.globals)
            for (k, v) in env { environment[k] = v }
            let out = try runProcess(tool("lua5.3"), [NodeSetup.harness.path, node.shim.path, "--section", "configuration",
                                                      "--tag", "configuration", "--key-name", "name", "--key-value", "sofia.conf",
                                                      "--no-params"], environment: environment)
            return try values(try parse(out), "//profile[@name='internal']//param[@name='sip-ip']/@value")
        }
        XCTAssertEqual(try sipIP(["FSCONF_HARNESS_SWITCHNAME": "sitea", "FSCONF_HARNESS_HOSTNAME": "host-1"]), ["10.0.0.1"])
        XCTAssertEqual(try sipIP(["FSCONF_HARNESS_SWITCHNAME": "siteb", "FSCONF_HARNESS_GLOBAL_hostname": "sitea"]), ["127.0.0.1"])
        XCTAssertEqual(try sipIP(["FSCONF_HARNESS_GLOBAL_hostname": "sitea"]), ["10.0.0.1"], "the hostname global when no event says")
        XCTAssertEqual(try sipIP([:]), ["127.0.0.1"])
    }

    /// The mod_lua-like C host, several threads each with a new lua_State per
    /// lookup: a node named by its params, and one whose lookups carry none (the
    /// host has no freeswitch.Event: the `hostname` global names it).
    func testTheCHostGetsEachNodesVariantUnderConcurrency() throws {
        let node = try makeNode()
        func run(_ params: [String], expect: String) throws -> ProcessOutput {
            try runProcess(NodeSetup.host, ["--shim", node.shim.path, "--section", "configuration", "--tag", "configuration",
                                            "--key-name", "name", "--key-value", "sofia.conf", "--threads", "4", "--requests", "400",
                                            "--global", "local_ip_v4=127.0.0.1", "--expect", expect, "--quiet"] + params,
                           environment: node.db.environment)
        }
        for (params, ip) in [(["--param", "profile=internal", "--param", "FreeSWITCH-Switchname=sitea"], "10.0.0.1"),
                             (["--param", "profile=internal", "--param", "FreeSWITCH-Switchname=siteb"], "127.0.0.1"),
                             (["--no-params", "--global", "hostname=sitea"], "10.0.0.1"),
                             (["--no-params", "--global", "hostname=siteb"], "127.0.0.1")] {
            let out = try run(params, expect: #"name="sip-ip" value="\#(ip)""#)
            XCTAssertEqual(out.status, 0, "\(params): \(out)")
            XCTAssertTrue(out.stdout.contains("ok=400 failed=0"), "\(params): \(out.stdout)")
        }
    }

    /// One process (the library loaded once, its cache on) asked as three nodes in
    /// turn: each gets its own answer, the second round is served from the cache
    /// without crossing nodes, and a change of group membership reaches the cache.
    func testTheCacheNeverCrossesNodes() throws {
        let node = try makeNode()
        let script = """
            local lib = \(luaQuote(TestEnvironment.nodeLibrary.path))
            local fsconf = assert(package.loadlib(lib, "luaopen_fsconf"))()
            local settings = "schema=\(SchemaVersion.current)\\nconninfo=" .. \(luaQuote(node.db.conninfo)) .. "\\ndeadline_ms=5000"
            freeswitch = { getGlobalVariable = function(n) if n == "local_ip_v4" then return "127.0.0.1" end end }
            local function event(h)
              return setmetatable({}, { __index = { getHeader = function(_, n) return h[n] end } })
            end
            local sofia = { section = "configuration", tag_name = "configuration", key_name = "name", key_value = "sofia.conf" }
            local directory = { section = "directory", tag_name = "", key_name = "", key_value = "" }
            local function ask(site)
              local s = assert(fsconf.handle(sofia, event({ profile = "internal", ["FreeSWITCH-Switchname"] = site }), settings))
              local d = assert(fsconf.handle(directory, event({ purpose = "gateways", ["FreeSWITCH-Switchname"] = site }), settings))
              -- $${outbound_proxy} has a variant for sitea: each node renders with its own globals.
              local x = assert(fsconf.handle(sofia, event({ profile = "external", ["FreeSWITCH-Switchname"] = site }), settings))
              return s:match('name="sip%-ip" value="([^"]*)"') .. " " .. (d:find('gateway name="carrier%-b"') and "carrier-b" or "none")
                .. " " .. x:match('name="proxy" value="([^"]*)"')
            end
            -- The first lookup starts the change listener: answers are hits once it listens.
            ask("warm-up")
            for _ = 1, 600 do
              local s = fsconf.stats()
              if s.fresh == 1 and s.listener_connected == 1 then break end
              os.execute("sleep 0.05")
            end
            local before = fsconf.stats()
            for round = 1, 2 do
              for _, site in ipairs({ "sitea", "siteb", "sitec" }) do print(round, site, ask(site)) end
            end
            local s = fsconf.stats()
            print("hits", s.hits - before.hits, "misses", s.misses - before.misses)
            -- siteb leaves @eu: its cached gateways answer must go (the listener hears the change).
            assert(os.execute(\(luaQuote(TestEnvironment.fsconfBinary.path)) .. " scope ungroup eu siteb >/dev/null"))
            local seen
            for _ = 1, 600 do
              seen = ask("siteb")
              if seen:find("none") then break end
              os.execute("sleep 0.05")
            end
            print("after", "siteb", seen)
            print("after", "sitea", ask("sitea"))
            """
        let dir = try TemporaryDirectory()
        try dir.write("cache.lua", script)
        let out = try runProcess(tool("lua5.3"), [dir.path("cache.lua")], environment: node.db.environment)
        XCTAssertEqual(out.status, 0, out.description)
        let lines = out.stdout.split(separator: "\n").map { $0.split(separator: "\t").joined(separator: " ") }
        XCTAssertEqual(Array(lines.prefix(6)), [
            "1 sitea 10.0.0.1 carrier-b proxy-a.example", "1 siteb 127.0.0.1 carrier-b proxy.example",
            "1 sitec 127.0.0.1 none proxy.example",
            "2 sitea 10.0.0.1 carrier-b proxy-a.example", "2 siteb 127.0.0.1 carrier-b proxy.example",
            "2 sitec 127.0.0.1 none proxy.example",
        ], out.description)
        // Nine answers read once each, then served again from the cache, per node.
        XCTAssertEqual(lines.dropFirst(6).first, "hits 9 misses 9", out.description)
        XCTAssertEqual(Array(lines.suffix(2)), ["after siteb 127.0.0.1 none proxy.example", "after sitea 10.0.0.1 carrier-b proxy-a.example"],
                       out.description)
    }
}
