import FSConfTestSupport
import Foundation
import XCTest

/// Per-node scope from the operator's side (docs/cluster.md): the built CLI against
/// a real PostgreSQL holding ScopeFixture — paths and --json, scope commands, history
/// and undo, render/export/diff per node, a site's own tree imported into a scope.
final class ScopeCLITests: XCTestCase {
    func fsconf(_ db: TestDatabase, _ args: [String]) throws -> ProcessOutput {
        try runProcess(TestEnvironment.fsconfBinary, args, environment: db.environment, timeout: 120)
    }

    @discardableResult
    func ok(_ db: TestDatabase, _ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let out = try fsconf(db, args)
        XCTAssertEqual(out.status, 0, "\(args): \(out)", file: file, line: line)
        return out.stdout
    }

    func fails(_ db: TestDatabase, _ args: [String], _ code: Int32, _ message: String,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let out = try fsconf(db, args)
        XCTAssertEqual(out.status, code, "\(args): \(out)", file: file, line: line)
        XCTAssertTrue(out.stderr.contains(message), "\(args): \(out.stderr)", file: file, line: line)
    }

    func fixture() throws -> (TestDatabase, TemporaryDirectory) {
        let db = try TestDatabase(prefix: "scl")
        XCTAssertEqual(try fsconf(db, ["migrate", "up"]).status, 0)
        let dir = try TemporaryDirectory()
        try ScopeFixture.load(into: dir, environment: db.environment)
        return (db, dir)
    }

    static let sipIP = "configuration/sofia.conf/profiles/profile[name=internal]/settings/param[name=sip-ip]"
    static let carrierB = "directory/$${domain}/user/1000/gateway/carrier-b"

    func testPathsListAndGetNameVariantsAndScopeCommandsAreRecorded() throws {
        let (db, _) = try fixture()
        // Paths name each variant by its block; --json says the scope in effect.
        let listed = try ok(db, ["list", "configuration/sofia.conf/profiles/profile[name=internal]/settings"])
        XCTAssertTrue(listed.contains("\(Self.sipIP)/@value = $${local_ip_v4}\n"), listed)
        XCTAssertTrue(listed.contains("\(Self.sipIP){sitea}/@value = 10.0.0.1\n"), listed)
        let json = try ok(db, ["list", "--json", "\(Self.carrierB){@eu}"])
        let items = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: String]])
        XCTAssertEqual(Set(items.map { $0["scope"] ?? "" }), ["@eu"])
        for item in items { XCTAssertEqual(try ok(db, ["get", try XCTUnwrap(item["path"])]), try XCTUnwrap(item["value"]) + "\n") }
        XCTAssertEqual(try ok(db, ["get", "globals/outbound_proxy{sitea}"]), "proxy-a.example\n")
        XCTAssertEqual(try ok(db, ["get", "globals/outbound_proxy"]), "proxy.example\n")
        XCTAssertTrue(try ok(db, ["get", "--json", "globals/outbound_proxy{sitea}"]).contains(#""scope": "sitea""#))
        // A path without a block names the unscoped variant; the error names the others.
        try fails(db, ["get", "\(Self.carrierB)/param/proxy"], 4, "its variants: {@eu}")
        try fails(db, ["get", "globals/outbound_proxy{siteb}"], 4, "does not exist")
        // What scope set refuses, writing nothing.
        try fails(db, ["scope", "set", "\(Self.sipIP){sitea}/@value", "siteb"], 2, "not something a scope limits")
        try fails(db, ["scope", "set", "configuration/sofia.conf", "bad name"], 2, "bad scope")
        try fails(db, ["scope", "clear", "globals/outbound_proxy{sitea}"], 5, "exists already")
        try fails(db, ["scope", "set", "dialplan/default/extension[name=last]{sitea}", "siteb"], 4, "no extension")
        try fails(db, ["set", "directory/$${domain}/group/default{sitea}/param/x", "1"], 2, "groups take no scope")
        // A scope change is one change set: history shows it, undo restores it.
        let set = try ok(db, ["scope", "set", "\(Self.carrierB){@eu}", "sitea", "@eu"])
        XCTAssertTrue(set.contains("\(Self.carrierB){@eu,sitea}: @eu -> @eu,sitea (change set "), set)
        let changeSet = try XCTUnwrap(set.split(separator: " ").last?.dropLast(2)).description
        let history = try ok(db, ["history", "directory"])
        XCTAssertTrue(history.contains("~ \(Self.carrierB){@eu,sitea}/@scope: @eu -> @eu,sitea"), history)
        XCTAssertTrue(try ok(db, ["undo", changeSet]).contains("undid change set \(changeSet)"))
        XCTAssertEqual(try ok(db, ["get", "\(Self.carrierB){@eu}/param/register"]), "false\n")
        let cleared = try ok(db, ["scope", "clear", "\(Self.carrierB){@eu}"])
        XCTAssertTrue(cleared.contains("\(Self.carrierB): @eu -> (every node)"), cleared)
        XCTAssertEqual(try ok(db, ["get", "\(Self.carrierB)/param/register"]), "false\n")
        // Groups: listed, changed, recorded and undone like any change.
        let scopes = try ok(db, ["scope", "list", "--json"])
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(scopes.utf8)) as? [String: Any])
        XCTAssertEqual(parsed["groups"] as? [String: [String]], ["eu": ["sitea", "siteb"]])
        let scoped = try XCTUnwrap(parsed["scoped"] as? [[String: String]]).map { $0["path"] ?? "" }
        XCTAssertEqual(scoped, ["globals/outbound_proxy{sitea}", "dialplan/default/extension[name=ring]{siteb}",
                                "dialplan/default/extension[name=site_a_only]{sitea}", "\(Self.sipIP){sitea}",
                                "configuration/sofia.conf/profiles/profile[name=external]/gateways/gateway[name=carrier-a]{sitea}"])
        XCTAssertEqual(try ok(db, ["scope", "list", "--node", "sitec"]), "")
        XCTAssertEqual(try ok(db, ["scope", "list", "--node", "siteb"]), "@eu: sitea, siteb\ndialplan/default/extension[name=ring]{siteb}\n")
        let ungroup = try ok(db, ["scope", "ungroup", "eu", "siteb"])
        let groupSet = try XCTUnwrap(ungroup.split(separator: " ").last?.dropLast(2)).description
        XCTAssertTrue(try ok(db, ["history"]).contains("- nodes/\"@eu\"/siteb"))
        try fails(db, ["scope", "ungroup", "eu", "siteb"], 4, "holds none")
        try ok(db, ["undo", groupSet])
        XCTAssertEqual(try db.column("SELECT node FROM fsconf.node_groups ORDER BY 1"), ["sitea", "siteb"])
    }

    func testRenderExportAndDiffPerNode() throws {
        let (db, dir) = try fixture()
        func sipIP(_ args: [String]) throws -> String {
            let out = try ok(db, ["render", "configuration", "sofia.conf", "--profile", "internal", "--global", "local_ip_v4=127.0.0.1"] + args)
            return out.split(separator: "\n").first { $0.contains("\"sip-ip\"") }.map { String($0).trimmingCharacters(in: .whitespaces) } ?? out
        }
        XCTAssertEqual(try sipIP(["--node", "SiteA"]), #"<param name="sip-ip" value="10.0.0.1"/>"#)
        XCTAssertEqual(try sipIP(["--node", "siteb"]), #"<param name="sip-ip" value="127.0.0.1"/>"#)
        XCTAssertEqual(try sipIP([]), #"<param name="sip-ip" value="127.0.0.1"/>"#, "a node with no name")
        try fails(db, ["render", "dialplan", "default", "--node", "no such/name"], 2, "--node")
        // export --node writes that node's tree; diff --node compares with it.
        let a = dir.url.appendingPathComponent("export-a").path
        XCTAssertTrue(try ok(db, ["export", a, "--node", "sitea"]).contains("for node sitea"))
        let sofia = try String(contentsOfFile: a + "/autoload_configs/sofia.conf.xml", encoding: .utf8)
        XCTAssertTrue(sofia.contains(#"<param name="sip-ip" value="10.0.0.1"/>"#))
        XCTAssertTrue(sofia.contains(#"<gateway name="carrier-a">"#))
        XCTAssertFalse(sofia.contains(#"value="$${local_ip_v4}""#))
        let dialplan = try String(contentsOfFile: a + "/dialplan/default.xml", encoding: .utf8)
        XCTAssertTrue(dialplan.contains("site_a_only"))
        XCTAssertEqual(try ok(db, ["diff", a + "/freeswitch.xml", "--node", "sitea"]), "")
        let b = try fsconf(db, ["diff", a + "/freeswitch.xml", "--node", "siteb"])
        XCTAssertEqual(b.status, 1, b.description)
        XCTAssertTrue(b.stdout.contains("~ \(Self.sipIP)/@value: $${local_ip_v4} -> 10.0.0.1"), b.stdout)
        XCTAssertTrue(b.stdout.contains("+ dialplan/default/extension[name=site_a_only]/@name = site_a_only"), b.stdout)
        XCTAssertTrue(b.stdout.contains("~ globals/outbound_proxy: proxy.example -> proxy-a.example"), b.stdout)
        // Without --node: what every node gets, the variants counted on stderr.
        let plain = dir.url.appendingPathComponent("export-plain").path
        let out = try fsconf(db, ["export", plain])
        XCTAssertEqual(out.status, 0, out.description)
        XCTAssertTrue(out.stderr.contains("note: 6 variant(s) limited to some nodes are not in this export"), out.stderr)
        XCTAssertEqual(try ok(db, ["diff", plain + "/freeswitch.xml"]), "")
        XCTAssertEqual(try ok(db, ["diff", plain + "/freeswitch.xml", "--node", "sitec"]), "")
    }

    /// Edits a file of an exported tree.
    func edit(_ file: String, _ from: String, _ to: String) throws {
        let text = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertTrue(text.contains(from), "\(file) holds \(from)")
        try text.replacingOccurrences(of: from, with: to).write(toFile: file, atomically: true, encoding: .utf8)
    }

    func testASitesTreeImportsIntoItsScopeSharingWhatEveryNodeHas() throws {
        let (db, dir) = try fixture()
        // Site D's own tree: every node's, with another proxy and another sip-port.
        let base = dir.url.appendingPathComponent("base").path, site = dir.url.appendingPathComponent("site-d").path
        try ok(db, ["export", base])
        try ok(db, ["export", site])
        try edit(site + "/vars.xml", "outbound_proxy=proxy.example", "outbound_proxy=proxy-d.example")
        try edit(site + "/autoload_configs/sofia.conf.xml", #"value="5060""#, #"value="5070""#)
        let dry = try ok(db, ["import", site + "/freeswitch.xml", "--scope", "sited", "--dry-run"])
        XCTAssertTrue(dry.contains("+ globals outbound_proxy\n"), dry)
        XCTAssertTrue(dry.contains("+ configuration sofia.conf\n"), dry)
        // The entity lines come before the rendered diffs (whose lines may start with "- " too).
        let entries = dry.split(separator: "\n").prefix { !$0.hasPrefix("--- ") }
            .filter { $0.hasPrefix("+ ") || $0.hasPrefix("~ ") || $0.hasPrefix("- ") }
        XCTAssertEqual(entries, ["+ globals outbound_proxy", "+ configuration sofia.conf"], "the rest equals every node's: shared, not stored again")
        let imported = try fsconf(db, ["import", site + "/freeswitch.xml", "--scope", "sited"])
        XCTAssertEqual(imported.status, 0, imported.description)
        XCTAssertTrue(imported.stderr.contains("equal to every node's: not stored for sited"), imported.stderr)
        XCTAssertEqual(try db.column("SELECT name FROM fsconf.global_variables WHERE nodes = '{sited}'"), ["outbound_proxy"])
        XCTAssertEqual(try db.column("SELECT name FROM fsconf.documents WHERE nodes = '{sited}'"), ["sofia.conf"])
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.dialplan_contexts"), ["1"])
        XCTAssertEqual(try ok(db, ["diff", site + "/freeswitch.xml", "--node", "sited"]), "")
        XCTAssertTrue(try ok(db, ["import", site + "/freeswitch.xml", "--scope", "sited"]).contains("nothing to change"))
        // Site D's tree made equal to every node's again: its own copies go.
        let back = try ok(db, ["import", base + "/freeswitch.xml", "--scope", "sited"])
        XCTAssertTrue(back.contains("configuration -1") && back.contains("globals -1"), back)
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.documents WHERE nodes IS NOT NULL"), ["0"])

        // Every node's tree rewritten: the variants inside what it rewrites stay where they stood.
        try edit(base + "/autoload_configs/sofia.conf.xml", #"value="5080""#, #"value="5090""#)
        try edit(base + "/dialplan/default.xml", "^300$", "^301$")
        XCTAssertTrue(try ok(db, ["import", base + "/freeswitch.xml"]).contains("imported: dialplan ~1, configuration ~1"))
        XCTAssertEqual(try ok(db, ["get", "\(Self.sipIP){sitea}/@value"]), "10.0.0.1\n")
        let names = try db.column("""
            SELECT e.name || coalesce('{' || array_to_string(e.nodes, ',') || '}', '') FROM fsconf.dialplan_extensions e ORDER BY e.position
            """)
        XCTAssertEqual(names, ["ring", "ring{siteb}", "site_a_only{sitea}", "last"])
        let render = try ok(db, ["render", "configuration", "sofia.conf", "--profile", "external", "--node", "sitea"])
        XCTAssertTrue(render.contains(#"<gateway name="carrier-a">"#) && render.contains(#"value="5090""#), render)
        // A tree without the parent of a variant is refused whole, nothing written.
        try edit(base + "/autoload_configs/sofia.conf.xml", #"<profile name="internal">"#, #"<profile name="inside">"#)
        let before = try db.column("SELECT count(*) FROM fsconf.changes")
        try fails(db, ["import", base + "/freeswitch.xml"], 5, "\(Self.sipIP){sitea}")
        XCTAssertEqual(try db.column("SELECT count(*) FROM fsconf.changes"), before)
    }

    func testTypedAddsCreateVariantsInOneChangeSet() throws {
        let (db, _) = try fixture()
        try ok(db, ["gateway", "add", "$${domain}", "carrier-c", "--user", "1001", "--scope", "siteb", "--param", "proxy=c.example"])
        try fails(db, ["gateway", "add", "$${domain}", "carrier-c", "--user", "1001", "--scope", "siteb"], 5, "carrier-c{siteb} already exists")
        try ok(db, ["gateway", "add", "carrier-c", "--profile", "external", "--scope", "siteb,sitec", "--param", "proxy=c.example"])
        try ok(db, ["extension", "add", "default", "ring", "--scope", "sitec", "--condition", "destination_number=^100$",
                    "--action", "bridge=user/1001"])
        try ok(db, ["user", "add", "$${domain}", "1000", "--scope", "sitec", "--param", "vm-password=1"])
        XCTAssertEqual(try db.column("SELECT count(DISTINCT change_set_id) FROM fsconf.changes c JOIN fsconf.change_sets s ON s.id = c.change_set_id WHERE s.summary LIKE 'gateway add carrier-c%'"), ["2"])
        let gateways = try ok(db, ["render", "directory", "example.test", "--param", "purpose=gateways", "--node", "siteb"])
        XCTAssertTrue(gateways.contains(#"<gateway name="carrier-c">"#), gateways)
        let sitec = try ok(db, ["render", "directory", "example.test", "1000", "--node", "sitec"])
        XCTAssertTrue(sitec.contains(#"name="vm-password" value="1""#) && !sitec.contains("1234"), "sitec's own user 1000: \(sitec)")
        let dialplan = try ok(db, ["render", "dialplan", "default", "--node", "sitec"])
        XCTAssertTrue(dialplan.contains("user/1001") && !dialplan.contains(#"data="user/1000""#), dialplan)
        let profile = try ok(db, ["render", "configuration", "sofia.conf", "--profile", "external", "--node", "sitec"])
        XCTAssertTrue(profile.contains(#"<gateway name="carrier-c">"#), profile)
    }

    /// Migration 0007 gives global variables an id and the change log's earlier
    /// global rows theirs: an earlier change set still undoes; down removes the variants.
    func testEarlierGlobalChangesStillUndoAndDownRemovesVariants() throws {
        let db = try TestDatabase(prefix: "scm")
        XCTAssertEqual(try fsconf(db, ["migrate", "up", "--to", "5"]).status, 0)
        let conn = try db.connect()
        try conn.execute("INSERT INTO fsconf.global_variables (name, value) VALUES ('kept', 'before'), ('gone', 'x')")
        try conn.execute("UPDATE fsconf.global_variables SET value = 'after' WHERE name = 'kept'")
        try conn.execute("DELETE FROM fsconf.global_variables WHERE name = 'gone'")
        let sets = try db.column("SELECT id FROM fsconf.change_sets ORDER BY id").compactMap { $0 }
        XCTAssertEqual(sets.count, 3)
        try ok(db, ["migrate", "up"])
        try ok(db, ["undo", sets[2]])
        try ok(db, ["undo", sets[1]])
        XCTAssertEqual(try db.column("SELECT name || '=' || value FROM fsconf.global_variables ORDER BY name"), ["gone=x", "kept=before"])
        // Variants do not survive down (recorded like any delete); every node's rows do.
        try ok(db, ["set", "globals/kept{sitea}", "a"])
        try ok(db, ["scope", "group", "eu", "sitea"])
        try ok(db, ["migrate", "down", "--to", "5"])
        XCTAssertEqual(try db.column("SELECT name || '=' || value FROM fsconf.global_variables ORDER BY name"), ["gone=x", "kept=before"])
        try ok(db, ["migrate", "up"])
    }
}
