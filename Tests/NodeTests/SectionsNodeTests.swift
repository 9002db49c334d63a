import FSConfCore
import FSConfTestSupport
import Foundation
import FoundationXML
import XCTest

/// The dialplan, configuration and languages sections through the REAL node
/// library: data mirroring FreeSWITCH's vanilla files, lookups replayed from the
/// captured FreeSWITCH requests (shared/fixtures/fs-requests) by lua5.3 and the
/// mod_lua-like harness, answers parsed back with FoundationXML.
final class SectionsNodeTests: XCTestCase, XMLAnswers {
    static let globals = ["domain": "127.0.0.1", "internal_sip_port": "5060", "external_sip_port": "5080",
                          "sound_prefix": "/usr/share/freeswitch/sounds/en/us/callie"]

    func vanillaNames(_ file: String, _ xpath: String, exclude: [String] = []) throws -> [String] {
        let xml = try VanillaConfig.expand(VanillaConfig.root.appendingPathComponent(file), exclude: exclude)
        let doc = try XMLDocument(xmlString: "<root>\(xml)</root>", options: [])
        return try doc.nodes(forXPath: xpath).map { $0.stringValue ?? "" }
    }

    // MARK: dialplan

    func loadVanillaDialplan(_ node: SectionNode) throws {
        let conn = try node.db.connect()
        for file in ["dialplan/default.xml", "dialplan/public.xml", "dialplan/features.xml"] {
            try VanillaConfig.loadDialplan(try VanillaConfig.expand(VanillaConfig.root.appendingPathComponent(file)), into: conn)
        }
        try conn.execute("INSERT INTO fsconf.global_variables (name, value) VALUES ('hold_music', 'local_stream://moh')")
    }

    func testDialplanReplaysServeTheVanillaDefaultContextWhole() throws {
        let node = try SectionNode(prefix: "sec")
        try loadVanillaDialplan(node)
        let expected = try vanillaNames("dialplan/default.xml", "//context[@name='default']/extension/@name")
        XCTAssertGreaterThan(expected.count, 70)
        for (fixture, index) in [("05-call-to-user.json", 1), ("07-ivr.json", 1), ("12-languages.json", 1), ("13-sip-call-with-auth.json", 2)] {
            let root = try parse(try node.replay(fixture, index, globals: Self.globals))
            XCTAssertEqual(try values(root, "/document/section/@name"), ["dialplan"], fixture)
            XCTAssertEqual(try values(root, "/document/section/context/@name"), ["default"], fixture)
            XCTAssertEqual(try values(root, "/document/section/context/extension/@name"), expected, fixture)
        }
        let root = try parse(try node.replay("13-sip-call-with-auth.json", 2, globals: Self.globals))
        // Time conditions, break, nested data, <expression> children and $${…}.
        XCTAssertEqual(try values(root, "//extension[@name='tod_example']/condition/@wday"), ["2-6"])
        XCTAssertEqual(try values(root, "//extension[@name='tod_example']/condition/@hour"), ["9-18"])
        XCTAssertEqual(try values(root, "//extension[@name='hold_music']/condition/action[@application='playback']/@data"),
                       ["local_stream://moh"])
        // <expression><![CDATA[…]]></expression> is stored as the expression and rendered as the attribute.
        XCTAssertEqual(try values(root, "//extension[@name='park']/condition[@field='${sip_refer_to}']/@expression"),
                       ["<sip:callpark@${domain_name};orbit=(\\d+)>"])
        XCTAssertEqual(try values(root, "//extension[@name='unloop']/condition/@field"),
                       try vanillaNames("dialplan/default.xml", "//context[@name='default']/extension[@name='unloop']/condition/@field"))
    }

    func testPublicContextAndMissingContext() throws {
        let node = try SectionNode(prefix: "sec")
        try loadVanillaDialplan(node)
        let root = try parse(try node.lookup(section: "dialplan", params: [("Hunt-Context", "public"), ("Caller-Destination-Number", "1000")]))
        XCTAssertEqual(try values(root, "/document/section/context/extension/@name"),
                       try vanillaNames("dialplan/public.xml", "//context[@name='public']/extension/@name"))
        let missing = try node.lookup(section: "dialplan", params: [("Hunt-Context", "no-such-context")])
        XCTAssertEqual(missing.stdout, FreeSWITCHDocument.notFound, missing.description)
    }

    /// Every dialplan feature, stored through SQL, rendered by the node and parsed back.
    func testEveryDialplanFeatureRoundTripsThroughTheNode() throws {
        let node = try SectionNode(prefix: "sec")
        try node.sql("""
            INSERT INTO fsconf.global_variables (name, value) VALUES ('hold_music', 'local_stream://moh');
            INSERT INTO fsconf.dialplan_contexts (name) VALUES ('features');
            INSERT INTO fsconf.dialplan_extensions (context_id, name, continue, position)
                SELECT id, 'hold_music', 'true', 1 FROM fsconf.dialplan_contexts;
            INSERT INTO fsconf.dialplan_conditions (extension_id, position, break, wday, hour, year, yday, mon, mday, week, mweek,
                minute, minute_of_day, time_of_day, date_time, tz)
                SELECT id, 1, 'never', '2-6', '9-18', '2030', '1-365', '1-12', '1-31', '1-53', '1-6', '0-59', '540-1080',
                       '08:00-17:00', '2030-01-01 00:00~2030-12-31 23:59', 'Europe/Paris' FROM fsconf.dialplan_extensions;
            INSERT INTO fsconf.dialplan_conditions (extension_id, position, regex, require_nested)
                SELECT id, 2, 'xor', 'false' FROM fsconf.dialplan_extensions;
            INSERT INTO fsconf.dialplan_conditions (extension_id, parent_id, position, field, expression, break)
                SELECT e.id, c.id, 1, '${open}', '^true$', 'on-true' FROM fsconf.dialplan_extensions e
                JOIN fsconf.dialplan_conditions c ON c.extension_id = e.id AND c.position = 2;
            INSERT INTO fsconf.dialplan_regexes (condition_id, position, field, expression)
                SELECT id, p, 'destination_number', x FROM fsconf.dialplan_conditions, (VALUES (1, '^9664$'), (2, '^hold$')) v(p, x)
                WHERE regex = 'xor';
            INSERT INTO fsconf.dialplan_actions (condition_id, kind, position, application, data, inline)
                SELECT c.id, v.kind, v.p, v.app, v.data, v.inline FROM fsconf.dialplan_conditions c JOIN (VALUES
                    (1, 'action', 1, 'set', 'open=true', 'true'), (1, 'anti-action', 1, 'set', 'open=false', 'false'),
                    (2, 'action', 1, 'answer', NULL, NULL), (3, 'action', 1, 'playback', '$${hold_music}', NULL),
                    (3, 'anti-action', 1, 'playback', 'silence_stream://2000', NULL)) v(cpos, kind, p, app, data, inline)
                ON (c.parent_id IS NULL AND c.position = v.cpos) OR (c.parent_id IS NOT NULL AND v.cpos = 3);
            """)
        let root = try parse(try node.lookup(section: "dialplan", params: [("Hunt-Context", "features")]))
        let conditions = try root.nodes(forXPath: "//extension[@name='hold_music'][@continue='true']/condition").compactMap { $0 as? XMLElement }
        XCTAssertEqual(conditions.count, 2)
        let time = Dictionary(uniqueKeysWithValues: (conditions[0].attributes ?? []).map { ($0.name!, $0.stringValue!) })
        XCTAssertEqual(time, ["break": "never", "wday": "2-6", "hour": "9-18", "year": "2030", "yday": "1-365", "mon": "1-12",
                              "mday": "1-31", "week": "1-53", "mweek": "1-6", "minute": "0-59", "minute-of-day": "540-1080",
                              "time-of-day": "08:00-17:00", "date-time": "2030-01-01 00:00~2030-12-31 23:59", "tz": "Europe/Paris"])
        XCTAssertEqual(try values(conditions[0], "action/@inline"), ["true"])
        XCTAssertEqual(try values(conditions[0], "anti-action/@data"), ["open=false"])
        XCTAssertEqual(try values(conditions[1], "@regex"), ["xor"])
        XCTAssertEqual(try values(conditions[1], "@require-nested"), ["false"])
        XCTAssertEqual(try values(conditions[1], "regex/@expression"), ["^9664$", "^hold$"])
        XCTAssertEqual(try values(conditions[1], "action/@application"), ["answer"])
        XCTAssertEqual(try values(conditions[1], "condition/@break"), ["on-true"])
        XCTAssertEqual(try values(conditions[1], "condition/action/@data"), ["local_stream://moh"])
        XCTAssertEqual(try values(conditions[1], "condition/anti-action/@data"), ["silence_stream://2000"])
    }

    func testABadExtensionIsRejectedOnWriteAndSkippedAtRender() throws {
        let node = try SectionNode(prefix: "sec")
        try node.sql("""
            INSERT INTO fsconf.dialplan_contexts (name) VALUES ('default');
            INSERT INTO fsconf.dialplan_extensions (context_id, name, position)
                SELECT c.id, v.name, v.p FROM fsconf.dialplan_contexts c, (VALUES ('before', 1), ('broken', 2), ('after', 3)) v(name, p);
            """)
        // On write: what the database can check, it refuses (migration 0002)...
        XCTAssertThrowsError(try node.sql("""
            INSERT INTO fsconf.dialplan_conditions (extension_id, position, field)
            SELECT id, 1, 'destination_number' FROM fsconf.dialplan_extensions WHERE name = 'broken'
            """)) { XCTAssertTrue("\($0)".contains("dialplan_conditions_field_expression_check"), "\($0)") }
        // ...and a regex that does not compile is forced in through SQL: PostgreSQL cannot know.
        try node.sql("""
            INSERT INTO fsconf.dialplan_conditions (extension_id, position, field, expression)
                SELECT id, 1, 'destination_number', CASE name WHEN 'broken' THEN '^(1000$' ELSE '^' || name || '$' END
                FROM fsconf.dialplan_extensions;
            INSERT INTO fsconf.dialplan_actions (condition_id, kind, position, application, data)
                SELECT id, 'action', 1, 'log', 'INFO hello' FROM fsconf.dialplan_conditions;
            """)
        let out = try node.lookup(section: "dialplan", params: [("Hunt-Context", "default")])
        let root = try parse(out)
        XCTAssertEqual(try values(root, "//extension/@name"), ["before", "after"])
        XCTAssertTrue(out.stderr.contains("[WARNING] fsconf: dialplan context default: skipped 1 invalid extension(s): broken"),
                      out.stderr)
    }

    // MARK: configuration

    func loadVanillaConfiguration(_ node: SectionNode) throws {
        let conn = try node.db.connect()
        let ipv6 = ["ipv6"]
        for (file, name) in [("autoload_configs/sofia.conf.xml", "sofia.conf"), ("autoload_configs/ivr.conf.xml", "ivr.conf"),
                             ("autoload_configs/acl.conf.xml", "acl.conf"), ("autoload_configs/callcenter.conf.xml", "callcenter.conf"),
                             ("autoload_configs/conference.conf.xml", "conference.conf")] {
            let xml = try VanillaConfig.expand(VanillaConfig.root.appendingPathComponent(file), exclude: ipv6)
            try VanillaConfig.loadTree(xml, section: "configuration", name: name, into: conn)
        }
        try conn.execute("""
            INSERT INTO fsconf.global_variables (name, value) VALUES ('internal_sip_port', '5060'), ('domain', '$${local_ip_v4}')
            """)
    }

    func testSofiaReplays() throws {
        let node = try SectionNode(prefix: "sec")
        try loadVanillaConfiguration(node)
        let globals = ["local_ip_v4": "127.0.0.1", "external_sip_port": "5080"]
        // Startup: the whole file, every profile.
        let whole = try parse(try node.replay("01-startup.json", 1, globals: globals))
        XCTAssertEqual(try values(whole, "/document/section[@name='configuration']/configuration/@name"), ["sofia.conf"])
        XCTAssertEqual(try values(whole, "//profiles/profile/@name"), ["external", "internal"])
        // `profile` narrowing at start and on rescan (reconfig=true): exactly one profile,
        // still a valid sofia.conf: root, <global_settings>, <profiles>.
        for (fixture, index, profile) in [("01-startup.json", 2, "internal"), ("01-startup.json", 4, "external"),
                                          ("08-sofia-rescan.json", 2, "internal"), ("08-sofia-rescan.json", 7, "external")] {
            let root = try parse(try node.replay(fixture, index, globals: globals))
            let conf = try XCTUnwrap(try root.nodes(forXPath: "/document/section[@name='configuration']/configuration[@name='sofia.conf']").first as? XMLElement)
            XCTAssertEqual(conf.children?.compactMap { ($0 as? XMLElement)?.name }, ["global_settings", "profiles"], "\(fixture) \(index)")
            XCTAssertEqual(try values(conf, "profiles/profile/@name"), [profile], "\(fixture) \(index)")
            let expectedSettings = try vanillaNames("sip_profiles/\(profile).xml", "/root/profile/settings/param/@name")
            XCTAssertEqual(try values(conf, "profiles/profile/settings/param/@name"), expectedSettings)
            XCTAssertEqual(try values(conf, "global_settings/param/@name"),
                           try vanillaNames("autoload_configs/sofia.conf.xml", "/root/configuration/global_settings/param/@name"))
        }
        let internalProfile = try parse(try node.replay("01-startup.json", 2, globals: globals))
        XCTAssertEqual(try values(internalProfile, "//param[@name='sip-port']/@value"), ["5060"], "$${internal_sip_port} from the database")
        XCTAssertEqual(try values(internalProfile, "//param[@name='ext-sip-ip']/@value").count, 1)
        let external = try parse(try node.replay("01-startup.json", 4, globals: globals))
        XCTAssertEqual(try values(external, "//param[@name='sip-port']/@value"), ["5080"], "$${external_sip_port} from the node")
        XCTAssertEqual(try values(external, "//profile/gateways/gateway/@name"),
                       try vanillaNames("sip_profiles/external.xml", "//gateway/@name"))
        // A profile fsconf does not hold: an empty <profiles/>, so mod_sofia reports
        // "No Such Profile" instead of resurrecting a static one.
        let none = try parse(try node.lookup(section: "configuration", tag: "configuration", keyName: "name", keyValue: "sofia.conf",
                                            params: [("profile", "nope")], globals: globals))
        XCTAssertEqual(try values(none, "//profiles/profile/@name"), [])
        XCTAssertEqual(try none.nodes(forXPath: "//global_settings").count, 1)
    }

    func testIvrAclAndUnknownFilesReplay() throws {
        let node = try SectionNode(prefix: "sec")
        try loadVanillaConfiguration(node)
        let ivr = try parse(try node.replay("07-ivr.json", 2))
        XCTAssertEqual(try values(ivr, "//configuration[@name='ivr.conf']/menus/menu/@name"), ["demo_ivr", "demo_ivr_submenu"])
        XCTAssertEqual(try values(ivr, "//menu[@name='demo_ivr']/entry/@digits"),
                       try vanillaNames("ivr_menus/demo_ivr.xml", "//menu[@name='demo_ivr']/entry/@digits"))

        for (fixture, index) in [("01-startup.json", 10), ("09-reloadacl.json", 2)] {
            let acl = try parse(try node.replay(fixture, index, globals: ["local_ip_v4": "127.0.0.1"]))
            XCTAssertEqual(try values(acl, "//network-lists/list/@name"),
                           try vanillaNames("autoload_configs/acl.conf.xml", "//network-lists/list/@name"))
            XCTAssertEqual(try values(acl, "//list[@name='domains']/node/@domain"), ["127.0.0.1"],
                           "domain nodes stay: FreeSWITCH then asks the directory with purpose=network-list")
            XCTAssertEqual(try values(acl, "//list[@name='lan']/node/@cidr"), ["192.168.42.0/24", "192.168.42.42/32"])
        }
        for (fixture, index) in [("01-startup.json", 6), ("01-startup.json", 9), ("08-sofia-rescan.json", 3)] {
            let out = try node.replay(fixture, index)
            XCTAssertEqual(out.stdout, FreeSWITCHDocument.notFound, "\(fixture) \(index): a file fsconf does not hold")
        }
    }

    func testCallcenterAndConferenceNarrowing() throws {
        let node = try SectionNode(prefix: "sec")
        try loadVanillaConfiguration(node)
        let conn = try node.db.connect()
        try conn.execute("DELETE FROM fsconf.documents WHERE name = 'callcenter.conf'")
        try VanillaConfig.loadTree("""
            <configuration name="callcenter.conf" description="CallCenter">
              <settings><param name="odbc-dsn" value=""/></settings>
              <queues>
                <queue name="support@default"><param name="strategy" value="longest-idle-agent"/></queue>
                <queue name="sales@default"><param name="strategy" value="ring-all"/></queue>
              </queues>
              <agents><agent name="1000@default" type="callback"/></agents>
              <tiers><tier agent="1000@default" queue="sales@default" level="1"/></tiers>
            </configuration>
            """, section: "configuration", name: "callcenter.conf", into: conn)
        let cc = try parse(try node.lookup(section: "configuration", tag: "configuration", keyName: "name", keyValue: "callcenter.conf",
                                          params: [("CC-Queue", "sales@default")]))
        XCTAssertEqual(try values(cc, "//queues/queue/@name"), ["sales@default"])
        XCTAssertEqual(try values(cc, "//agents/agent/@name"), ["1000@default"])
        XCTAssertEqual(try values(cc, "//tiers/tier/@queue"), ["sales@default"])

        let expectedProfiles = try vanillaNames("autoload_configs/conference.conf.xml", "//profiles/profile/@name")
        XCTAssertTrue(expectedProfiles.contains("wideband"))
        let conf = try parse(try node.lookup(section: "configuration", tag: "configuration", keyName: "name", keyValue: "conference.conf",
                                            params: [("conf_name", "3000"), ("profile_name", "wideband")]))
        XCTAssertEqual(try values(conf, "//profiles/profile/@name"), ["wideband"])
        XCTAssertEqual(try values(conf, "//caller-controls/group/@name"),
                       try vanillaNames("autoload_configs/conference.conf.xml", "//caller-controls/group/@name"))
        let whole = try parse(try node.lookup(section: "configuration", tag: "configuration", keyName: "name", keyValue: "conference.conf"))
        XCTAssertEqual(try values(whole, "//profiles/profile/@name"), expectedProfiles)
    }

    // MARK: languages

    func testLanguagesReplays() throws {
        let node = try SectionNode(prefix: "sec")
        let xml = try VanillaConfig.expand(VanillaConfig.root.appendingPathComponent("lang/en/en.xml"))
        try VanillaConfig.loadTree(xml, section: "languages", name: "en", into: try node.db.connect())
        let globals = Self.globals
        for (fixture, index) in [("07-ivr.json", 3), ("12-languages.json", 2), ("12-languages.json", 4)] {
            let root = try parse(try node.replay(fixture, index, globals: globals))
            let lang = try XCTUnwrap(try root.nodes(forXPath: "/document/section[@name='languages']/language[@name='en']").first as? XMLElement,
                                     "\(fixture) \(index)")
            XCTAssertEqual(try values(lang, "@say-module"), ["en"])
            XCTAssertEqual(try values(lang, "@sound-prefix"), [try XCTUnwrap(globals["sound_prefix"])])
            XCTAssertEqual(try values(lang, "phrases/macros/macro[@name='demo_ivr_main_menu']/input/match/action/@function").isEmpty, false)
        }
        let root = try parse(try node.replay("12-languages.json", 2, globals: globals))
        XCTAssertEqual(try values(root, "//macro/@name"), try vanillaNames("lang/en/en.xml", "//macro/@name"))

        // en-US falls back to the stored en; an unknown language is not found.
        let us = try parse(try node.lookup(section: "languages", params: [("lang", "en-US"), ("macro_name", "demo_ivr_main_menu")]))
        XCTAssertEqual(try values(us, "//language/@name"), ["en"])
        let fr = try node.lookup(section: "languages", params: [("lang", "fr"), ("macro_name", "x")])
        XCTAssertEqual(fr.stdout, FreeSWITCHDocument.notFound)
        // The phrases retry: <macros><language name="en"> holding the macros directly.
        let phrases = try parse(try node.lookup(section: "phrases", params: [("lang", "en"), ("macro_name", "demo_ivr_main_menu")],
                                               globals: globals))
        XCTAssertEqual(try values(phrases, "/document/section[@name='phrases']/macros/language/@name"), ["en"])
        XCTAssertTrue(try values(phrases, "/document/section/macros/language/macro/@name").contains("demo_ivr_main_menu"))
    }
}
