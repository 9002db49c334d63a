import FSConfTestSupport
import Foundation
import XCTest

/// What every command promises whatever it does: usage errors are one line and
/// exit 2, and docs/cli-reference.md is exactly the parser's own help (so the
/// reference cannot drift from the binary). No database.
final class CLIContractTests: XCTestCase {
    static let referencePath = TestEnvironment.repoRoot.appendingPathComponent("docs/cli-reference.md")

    func fsconf(_ args: [String]) throws -> ProcessOutput {
        var env = ProcessInfo.processInfo.environment
        env["COLUMNS"] = "100"
        return try runProcess(TestEnvironment.fsconfBinary, args, environment: env)
    }

    func testUsageErrorsAreOneLineAndExitTwo() throws {
        for (args, expected) in [(["set"], "fsconf: Missing expected argument '<path>' (see 'fsconf help set')"),
                                 (["migrate", "up", "--to", "x"], "(see 'fsconf help migrate up')"),
                                 (["no-such-command"], "fsconf: Unexpected argument 'no-such-command' (see 'fsconf --help')")] {
            let out = try fsconf(args)
            XCTAssertEqual(out.status, 2, out.description)
            XCTAssertEqual(out.stderr.split(separator: "\n").count, 1, "one line: \(out.stderr)")
            XCTAssertTrue(out.stderr.hasPrefix("fsconf: ") && out.stderr.contains(expected), out.stderr)
            XCTAssertEqual(out.stdout, "")
        }
        let help = try fsconf(["set", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("USAGE: fsconf set"), help.stdout)
    }

    /// Every command's path, from the parser's own description of itself.
    func commandPaths() throws -> [[String]] {
        let dump = try fsconf(["--experimental-dump-help"])
        XCTAssertEqual(dump.status, 0, dump.description)
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        var paths: [[String]] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            paths.append(path)
            for sub in command["subcommands"] as? [[String: Any]] ?? [] {
                guard let name = sub["commandName"] as? String, name != "help",
                      sub["shouldDisplay"] as? Bool ?? true else { continue }
                walk(sub, path + [name])
            }
        }
        walk(try XCTUnwrap(root["command"] as? [String: Any]), [])
        return paths
    }

    /// docs/cli-reference.md, generated: `FSCONF_UPDATE_DOCS=1 scripts/test --filter CLIContractTests`.
    func testCLIReferenceIsTheParsersOwnHelp() throws {
        var text = """
            # fsconf command reference

            Generated from the parser's own `--help` of every command (`FSCONF_UPDATE_DOCS=1
            scripts/test --filter CLIContractTests` writes it; the test fails when it differs
            from the binary). The guide to paths, values and JSON shapes is [cli.md](cli.md).


            """
        for path in try commandPaths() {
            let help = try fsconf(path + ["--help"])
            XCTAssertEqual(help.status, 0, help.description)
            text += "## \((["fsconf"] + path).joined(separator: " "))\n\n```\n"
            text += help.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + "\n```\n\n"
        }
        if ProcessInfo.processInfo.environment["FSCONF_UPDATE_DOCS"] != nil {
            try Data(text.utf8).write(to: Self.referencePath)
        }
        let onDisk = (try? String(contentsOf: Self.referencePath, encoding: .utf8)) ?? ""
        XCTAssertTrue(onDisk == text, "docs/cli-reference.md differs from the binary's help: run FSCONF_UPDATE_DOCS=1 scripts/test --filter CLIContractTests")
    }
}
