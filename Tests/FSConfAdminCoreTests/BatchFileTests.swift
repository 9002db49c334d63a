import FSConfAdminCore
import FSConfCore
import XCTest

/// `fsconf apply`'s file: words and line numbers of the line form and the JSON
/// form, and the problems each names by line. Pure: no database.
final class BatchFileTests: XCTestCase {
    func ops(_ text: String) throws -> [[String]] { try BatchFile.parse(text).map(\.words) }

    func problem(_ text: String) -> BatchFile.Problem? {
        do { _ = try BatchFile.parse(text); return nil } catch { return error }
    }

    func testLinesSplitLikeAShellWithoutExpanding() throws {
        let text = """
            # a new customer
            domain add shop.example.com

            user add shop.example.com 1001 --group sales --param 'effective_caller_id_name=Bob Smith'   # trailing comment
            set "directory/shop.example.com/user/1001/variable/x" "say \\"hi\\" \\\\ $${domain}"
            set directory/$${domain}/param/a -5 --expect -4
            set 'configuration/x.conf/param[name="a b"]/@value' ''
            unset globals/it\\'s
            """
        let parsed = try BatchFile.parse(text)
        XCTAssertEqual(parsed.map(\.line), [2, 4, 5, 6, 7, 8])
        XCTAssertEqual(parsed.map(\.words), [
            ["domain", "add", "shop.example.com"],
            ["user", "add", "shop.example.com", "1001", "--group", "sales", "--param", "effective_caller_id_name=Bob Smith"],
            ["set", "directory/shop.example.com/user/1001/variable/x", "say \"hi\" \\ $${domain}"],
            ["set", "directory/$${domain}/param/a", "-5", "--expect", "-4"],
            ["set", "configuration/x.conf/param[name=\"a b\"]/@value", ""],
            ["unset", "globals/it's"],
        ])
    }

    func testContinuedLinesAndMultiLineQuotesKeepTheirFirstLine() throws {
        let text = "extension add default echo \\\n  --condition destination_number=^9196$ \\\n  --action answer\n"
            + "set directory/d/user/u/@extra-xml '<a>\n<b/>\n</a>'\nunset globals/x\n"
        let parsed = try BatchFile.parse(text)
        XCTAssertEqual(parsed.map(\.line), [1, 4, 7])
        XCTAssertEqual(parsed[0].words, ["extension", "add", "default", "echo", "--condition", "destination_number=^9196$", "--action", "answer"])
        XCTAssertEqual(parsed[1].words, ["set", "directory/d/user/u/@extra-xml", "<a>\n<b/>\n</a>"])
        XCTAssertEqual(parsed[2].words, ["unset", "globals/x"])
    }

    func testCRLFAndByteOrderMark() throws {
        XCTAssertEqual(try ops("\u{FEFF}set a b\r\nunset c\r\n"), [["set", "a", "b"], ["unset", "c"]])
        XCTAssertEqual(try ops("set a \\\r\n b\r\n"), [["set", "a", "b"]])
    }

    func testLineProblemsNameTheirLine() {
        XCTAssertEqual(problem("set a b\n\nset c 'd\n\n"), BatchFile.Problem(line: 3, "unterminated single quote"))
        XCTAssertEqual(problem("set a \"b"), BatchFile.Problem(line: 1, "unterminated double quote"))
        XCTAssertEqual(problem("set a b \\"), BatchFile.Problem(line: 1, "a \\ at the end of the file continues nothing"))
    }

    func testJSONOperations() throws {
        let text = """
            [
              {"op": "set", "path": "directory/d/user/u/param/p", "value": "-5", "expect": "4"},
              {"op": "set", "path": "globals/x", "value": 5070, "expect": null},
              {"op": "unset", "path": "globals/y", "expect": "old"},
              {"op": "user add",
               "args": ["d", "1001", "--param", "a=b"]},
              {"op": "domain remove", "args": ["old.example.com"]}
            ]
            """
        let parsed = try BatchFile.parse(text)
        XCTAssertEqual(parsed.map(\.line), [2, 3, 4, 5, 7])
        XCTAssertEqual(parsed.map(\.words), [
            ["set", "directory/d/user/u/param/p", "--expect", "4", "--", "-5"],
            ["set", "globals/x", "--expect-absent", "--", "5070"],
            ["unset", "globals/y", "--expect", "old"],
            ["user", "add", "d", "1001", "--param", "a=b"],
            ["domain", "remove", "old.example.com"],
        ])
        XCTAssertEqual(try ops("  [ ]  "), [])
        XCTAssertEqual(try ops("[{\"op\":\"set\",\"path\":\"a\",\"value\":\"x],{\\\"y\"}]"), [["set", "a", "--", "x],{\"y"]])
    }

    func testJSONProblemsNameTheirLine() {
        XCTAssertEqual(problem("[\n{\"op\":\"set\",\"path\":\"a\",\"value\":\"b\"},\n{\"op\":\"set\",\"path\":\"a\",\"valeu\":\"b\"}\n]")?.line, 3)
        XCTAssertEqual(problem("[\n{\"op\":\"set\",\"path\":\"a\",\"valeu\":\"b\"}]")?.message,
                       "set takes \"expect\", \"path\", \"value\"; not \"valeu\"")
        XCTAssertEqual(problem("[\n\n{\"op\":\"set\",\"path\":\"a\" \"value\":\"b\"}]"), BatchFile.Problem(line: 3, "malformed JSON"))
        XCTAssertEqual(problem("[\n{\"op\":\"set\",\"path\":\"a\",\"value\":\"b\"}"), BatchFile.Problem(line: 2, "unterminated JSON array (a missing ] or \")"))
        XCTAssertEqual(problem("[{\"op\":\"set\",\"path\":\"a\",\"value\":\"b\"}]\nx"), BatchFile.Problem(line: 2, "text after the JSON array"))
        XCTAssertEqual(problem("[{\"path\":\"a\"}]")?.message, "an operation needs \"op\": a command, e.g. \"set\"")
        XCTAssertEqual(problem("[\"set a b\"]")?.message, "each operation is a JSON object with an \"op\"")
        XCTAssertEqual(problem("[{\"op\":\"set\",\"path\":\"a\",\"value\":null}]")?.message, "\"value\" must be a string")
        XCTAssertEqual(problem("[{\"op\":\"unset\",\"path\":\"a\",\"expect\":null}]")?.message, "unset's \"expect\" is the value it must hold, not null")
        XCTAssertEqual(problem("[{\"op\":\"user add\",\"args\":[\"a\",{}]}]")?.message, "\"args\" is an array of strings")
        XCTAssertEqual(problem("[1,,2]")?.message, "an empty element in the JSON array")
    }
}
