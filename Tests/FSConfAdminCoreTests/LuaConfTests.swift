@testable import FSConfAdminCore
import FSConfCore
import Foundation
import XCTest

/// lua.conf.xml read and edited as text (`fsconf node install`, `fsconf doctor`), and
/// the generated shim read back.
final class LuaConfTests: XCTestCase {
    static let vanilla: String = {
        let shared = ProcessInfo.processInfo.environment["FSCONF_SHARED"].map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared")
        let file = shared.appendingPathComponent("fixtures/freeswitch-conf/vanilla/autoload_configs/lua.conf.xml")
        return (try? String(contentsOf: file, encoding: .utf8)) ?? ""
    }()
    let script = "/usr/share/freeswitch/scripts/fsconf.lua"
    let bindings = "directory,dialplan,configuration,languages"

    func written(_ edit: LuaConfFile.Edit, file: StaticString = #filePath, line: UInt = #line) -> String {
        guard case .write(let text, _) = edit else { XCTFail("expected a write, got \(edit)", file: file, line: line); return "" }
        return text
    }

    func testVanillaGetsTheBlockAfterSettingsAndNothingElseChanges() throws {
        XCTAssertFalse(Self.vanilla.isEmpty, "the vanilla lua.conf.xml fixture is missing")
        let before = LuaConfFile(Self.vanilla)
        XCTAssertEqual(before.handlerParams, [], "the stock file's handler params are commented out")
        XCTAssertEqual(before.handler(), .failure(.none))
        let text = written(try before.install(script: script, bindings: bindings, force: false))
        // Only lines were added, right after <settings>.
        let old = Self.vanilla.split(separator: "\n", omittingEmptySubsequences: false)
        let new = text.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(new.count, old.count + 4)
        let settings = old.firstIndex { $0.contains("<settings>") }!
        XCTAssertEqual(Array(new[...settings]), Array(old[...settings]))
        XCTAssertEqual(Array(new[(settings + 5)...]), Array(old[(settings + 1)...]))
        XCTAssertTrue(new[settings + 1].hasPrefix("    <!-- fsconf: begin"), String(new[settings + 1]))
        XCTAssertEqual(String(new[settings + 2]), "    <param name=\"xml-handler-script\" value=\"\(script)\"/>")
        XCTAssertEqual(String(new[settings + 3]), "    <param name=\"xml-handler-bindings\" value=\"\(bindings)\"/>")
        XCTAssertEqual(String(new[settings + 4]), "    <!-- fsconf: end -->")
        XCTAssertNoThrow(try XMLTreeParser.parse(text))

        let after = LuaConfFile(text)
        XCTAssertEqual(after.block?.intact, true)
        XCTAssertEqual(after.handler(), .success(.init(script: script, bindings: bindings.split(separator: ",").map(String.init))))
        // Idempotent; a new script path replaces fsconf's own lines.
        XCTAssertEqual(try after.install(script: script, bindings: bindings, force: false), .unchanged)
        let moved = written(try after.install(script: "/opt/fs/scripts/fsconf.lua", bindings: bindings, force: false))
        XCTAssertEqual(moved.split(separator: "\n").count, text.split(separator: "\n").count)
        XCTAssertEqual(LuaConfFile(moved).handler(), .success(.init(script: "/opt/fs/scripts/fsconf.lua",
                                                                      bindings: ["directory", "dialplan", "configuration", "languages"])))
    }

    func testFsconfLinesEditedByHandAreRefusedWithoutForce() throws {
        let ours = written(try LuaConfFile(Self.vanilla).install(script: script, bindings: bindings, force: false))
        let edited = ours.replacingOccurrences(of: "value=\"\(bindings)\"", with: "value=\"directory\"")
        let file = LuaConfFile(edited)
        XCTAssertEqual(file.block?.intact, false)
        guard case .conflict(let reason) = try file.install(script: script, bindings: bindings, force: false) else {
            return XCTFail("a hand-edited block must be refused")
        }
        XCTAssertTrue(reason.contains("edited by hand"), reason)
        let forced = written(try file.install(script: script, bindings: bindings, force: true))
        XCTAssertEqual(forced, ours)
        // Re-indenting fsconf's lines is not an edit.
        let reindented = ours.replacingOccurrences(of: "    <param name=\"xml-handler-", with: "\t<param name=\"xml-handler-")
        XCTAssertEqual(LuaConfFile(reindented).block?.intact, true)
    }

    func testHandlerParamsSetByHandAreRefusedWithoutForceAndReplacedWithIt() throws {
        let own = Self.vanilla.replacingOccurrences(of: "<!--<param name=\"xml-handler-script\" value=\"/dp.lua\"/>-->",
                                                    with: "<param name=\"xml-handler-script\" value=\"/dp.lua\"/>")
            .replacingOccurrences(of: "<!--<param name=\"xml-handler-bindings\" value=\"dialplan\"/>-->",
                                  with: "<param name=\"xml-handler-bindings\" value=\"dialplan\"/>")
        let file = LuaConfFile(own)
        XCTAssertEqual(file.handlerParams.map(\.value), ["/dp.lua", "dialplan"])
        guard case .conflict(let reason) = try file.install(script: script, bindings: bindings, force: false) else {
            return XCTFail("someone else's handler must not be replaced silently")
        }
        XCTAssertTrue(reason.contains("xml-handler-script=\"/dp.lua\""), reason)
        guard case .write(let text, let replaced) = try file.install(script: script, bindings: bindings, force: true) else {
            return XCTFail("--force replaces them")
        }
        XCTAssertEqual(replaced, ["xml-handler-script=/dp.lua", "xml-handler-bindings=dialplan"])
        XCTAssertFalse(text.contains("/dp.lua\"/>\n"), "the old params' lines are gone")
        XCTAssertEqual(LuaConfFile(text).handlerParams.map(\.value), [script, bindings])
        XCTAssertEqual(text.split(separator: "\n").count, own.split(separator: "\n").count + 2)

        // Params set by hand exactly as fsconf would: left alone.
        let same = Self.vanilla.replacingOccurrences(of: "<settings>", with: "<settings>\n" + LuaConfFile.lines(script: script, bindings: bindings).joined(separator: "\n"))
        XCTAssertEqual(try LuaConfFile(same).install(script: script, bindings: bindings, force: false), .unchanged)
        // Foreign params beside fsconf's block: refused too.
        let ours = written(try LuaConfFile(Self.vanilla).install(script: script, bindings: bindings, force: false))
        let both = ours.replacingOccurrences(of: "<!--<param name=\"xml-handler-bindings\" value=\"dialplan\"/>-->",
                                             with: "<param name=\"xml-handler-bindings\" value=\"dialplan\"/>")
        guard case .conflict = try LuaConfFile(both).install(script: script, bindings: bindings, force: false) else {
            return XCTFail("a second bindings param must be refused")
        }
        XCTAssertEqual(LuaConfFile(both).handler(), .failure(.duplicate("xml-handler-bindings")))
    }

    func testHandlerProblemsAsModLuaSeesThem() {
        func conf(_ params: String) -> LuaConfFile {
            LuaConfFile("<configuration name=\"lua.conf\">\n  <settings>\n\(params)\n  </settings>\n</configuration>\n")
        }
        XCTAssertEqual(conf(#"<param name="xml-handler-bindings" value="dialplan"/><param name="xml-handler-script" value="/a.lua"/>"#).handler(),
                       .failure(.bindingsFirst))
        XCTAssertEqual(conf(#"<param name="xml-handler-script" value="/a.lua"/>"#).handler(), .failure(.noBindings))
        XCTAssertEqual(conf(#"<param name="xml-handler-script" value="/a.lua"/><param name="xml-handler-bindings" value="directory"/>"#).handler(),
                       .failure(.directoryWithoutConfiguration))
        XCTAssertEqual(conf(#"<param name='xml-handler-script' value='fsconf.lua arg'/><param name="xml-handler-bindings" value="dialplan, directory ,configuration"/>"#).handler(),
                       .success(.init(script: "fsconf.lua", bindings: ["dialplan", "directory", "configuration"])))
        XCTAssertEqual(conf(#"<!-- <param name="xml-handler-script" value="/a.lua"/> --><![CDATA[<param name="xml-handler-script" value="/b"/>]]>"#).handler(),
                       .failure(.none))
        XCTAssertEqual(conf(#"<param name="xml-handler-script" value="/a&amp;b.lua"/><param name="xml-handler-bindings" value="dialplan"/>"#).handler(),
                       .success(.init(script: "/a&b.lua", bindings: ["dialplan"])))
        XCTAssertTrue(LuaConfFile.HandlerProblem.directoryWithoutConfiguration.description.contains("crash"))
        XCTAssertThrowsError(try LuaConfFile("<configuration name=\"lua.conf\"/>").install(script: script, bindings: bindings, force: false))
    }

    func testShimIsReadBack() {
        let template = try! String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("lua/shim.lua.in"), encoding: .utf8)
        let settings = [("service", "fs \"node\"\\é"), ("pool_size", "8")]
        let script = ShimTemplate.render(template: template, version: "9.8.7", library: "/opt/lib/fs conf/fsconf.so", settings: settings)
        let shim = ShimFile.parse(script)
        XCTAssertEqual(shim?.library, "/opt/lib/fs conf/fsconf.so")
        XCTAssertEqual(shim?.settings, ShimTemplate.settingsText(settings))
        XCTAssertEqual(shim?.schema, SchemaVersion.current)
        XCTAssertEqual(shim?.generatedBy, "9.8.7")
        XCTAssertNil(ShimFile.parse("local f = package.loadlib(\"/x.so\", \"luaopen_fsconf\")()\nXML_STRING = f.handle(XML_REQUEST, params, {})"),
                     "an older shim is not read as a current one")
        XCTAssertEqual(ShimFile.luaLiteral(Array(#"'a\x41\65\z   b\'"'"#.utf8), at: 0)?.0, "aAAb'\"")
    }
}
