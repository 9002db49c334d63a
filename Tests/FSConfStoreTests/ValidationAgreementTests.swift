import FSConfAdminCore
import FSConfAdminStore
import FSConfCore
import FSConfStore
import FSConfTestSupport
import Foundation
import XCTest

/// FieldValidation (what `set`, the typed commands and import check first) and the
/// schema's CHECK constraints (migrations 0001, 0002, 0005) give the same verdict on
/// every case of every CHECK: each case is put to the validator and written to a real
/// database, and both must accept it or both refuse it.
final class ValidationAgreementTests: XCTestCase {
    var db: TestDatabase!
    var conn: PGConnection!
    var ids: [String: String] = [:]

    override func setUpWithError() throws {
        db = try TestDatabase(prefix: "agree")
        let up = try runProcess(TestEnvironment.fsconfBinary, ["migrate", "up"], environment: db.environment)
        XCTAssertEqual(up.status, 0, up.description)
        conn = try db.connect()
        try conn.execute("""
            SET client_min_messages = warning;
            INSERT INTO fsconf.domains (name) VALUES ('pbx.test');
            INSERT INTO fsconf.groups (domain_id, name) SELECT id, 'sales' FROM fsconf.domains;
            INSERT INTO fsconf.users (domain_id, user_id) SELECT id, '1000' FROM fsconf.domains;
            INSERT INTO fsconf.gateways (domain_id, name) SELECT id, 'gw' FROM fsconf.domains;
            INSERT INTO fsconf.dialplan_contexts (name) VALUES ('default');
            INSERT INTO fsconf.dialplan_extensions (context_id, name, position) SELECT id, 'x', 1 FROM fsconf.dialplan_contexts;
            INSERT INTO fsconf.dialplan_conditions (extension_id, position, field, expression) SELECT id, 1, 'destination_number', '^1$' FROM fsconf.dialplan_extensions;
            INSERT INTO fsconf.dialplan_regexes (condition_id, position, field, expression) SELECT id, 1, 'f', 'e' FROM fsconf.dialplan_conditions;
            INSERT INTO fsconf.dialplan_actions (condition_id, kind, position, application) SELECT id, 'action', 1, 'answer' FROM fsconf.dialplan_conditions;
            INSERT INTO fsconf.documents (section, name) VALUES ('configuration', 'x.conf');
            INSERT INTO fsconf.elements (document_id, position, tag) SELECT id, 1, 'configuration' FROM fsconf.documents;
            """)
        for (key, sql) in [("domain", "SELECT id FROM fsconf.domains"), ("group", "SELECT id FROM fsconf.groups"),
                           ("user", "SELECT id FROM fsconf.users"), ("gateway", "SELECT id FROM fsconf.gateways"),
                           ("context", "SELECT id FROM fsconf.dialplan_contexts"), ("extension", "SELECT id FROM fsconf.dialplan_extensions"),
                           ("condition", "SELECT id FROM fsconf.dialplan_conditions"), ("regex", "SELECT id FROM fsconf.dialplan_regexes"),
                           ("action", "SELECT id FROM fsconf.dialplan_actions"), ("document", "SELECT id FROM fsconf.documents"),
                           ("element", "SELECT id FROM fsconf.elements")] {
            ids[key] = try conn.query(sql).string(0, 0)
        }
    }

    /// Whether the database accepts the statement (nil) or which CHECK refused it.
    func database(_ sql: String, _ params: [String?]) throws -> String? {
        try conn.execute("BEGIN")
        defer { _ = try? conn.execute("ROLLBACK") }
        do {
            try conn.query(sql, params)
            return nil
        } catch {
            XCTAssertTrue(["23514", "23502"].contains(error.sqlState ?? ""), "\(sql): not a CHECK refusal: \(error.debugDescription)")
            return error.constraint ?? error.message
        }
    }

    func agree(_ what: String, _ validator: String?, _ sql: String, _ params: [String?], file: StaticString = #filePath, line: UInt = #line) throws {
        let refused = try database(sql, params)
        XCTAssertEqual(validator != nil, refused != nil,
                       "\(what) \(params.compactMap { $0 }.map { $0.debugDescription }): validator says \(validator ?? "ok"), database says \(refused ?? "ok")",
                       file: file, line: line)
    }

    func directory(_ owner: DirectoryAddress.Owner, gateway: String? = nil, _ field: DirectoryAddress.Field) -> FieldAddress {
        .directory(DirectoryAddress(domain: "pbx.test", owner: owner, gateway: gateway, field: field))
    }

    func directory(gateway: String? = nil, _ field: DirectoryAddress.Field) -> FieldAddress { directory(.domain, gateway: gateway, field) }

    func dialplan(ext: Bool = true, conditions: Int = 0, item: DialplanAddress.Item? = nil, _ column: String) -> FieldAddress {
        var a = DialplanAddress(context: "default")
        if ext { a.extensionPick = .index(1) }
        a.conditions = Array(repeating: .index(1), count: conditions)
        a.item = item
        a.column = column
        return .dialplan(a)
    }

    func tree(_ tags: [String], _ leaf: FieldPath.Leaf?) -> FieldAddress {
        .tree(TreeAddress(section: .configuration, document: "x.conf", elements: tags.map { ($0, .only, nil) }, leaf: leaf))
    }

    func testEveryCheckAgreesWithTheValidator() throws {
        let names = ["ok", "", "a\tb", "x\ny", "a\rb", "a\u{1}b", "del\u{7F}", "bad\u{FFFD}", "$${domain}", "two words", "Jörg"]
        let values = ["plain", "", "tab\there", "line\nbreak", "cr\r", "a\u{1}b", "\u{8}", "\u{B}", "\u{1F}", "del\u{7F}", "x\u{FFFD}", "x\u{FFFE}", "€ ok"]
        let d = ids["domain"], u = ids["user"], g = ids["group"], gw = ids["gateway"]
        let c = ids["context"], x = ids["extension"], cond = ids["condition"], el = ids["element"], doc = ids["document"]

        // Names: domains, groups, users (id, alias), gateways, settings, contexts, extensions, documents.
        for n in names {
            try agree("domain name", FieldValidation.problem(directory(.column("name")), value: n, regex: nil),
                      "INSERT INTO fsconf.domains (name) VALUES ($1)", [n])
            try agree("group name", FieldValidation.problem(directory(.group("sales"), .column("name")), value: n, regex: nil),
                      "INSERT INTO fsconf.groups (domain_id, name) VALUES ($1::bigint, $2)", [d, n])
            try agree("user id", FieldValidation.problem(directory(.user("1000"), .column("id")), value: n, regex: nil),
                      "INSERT INTO fsconf.users (domain_id, user_id) VALUES ($1::bigint, $2)", [d, n])
            try agree("number-alias", FieldValidation.problem(directory(.user("1000"), .column("number-alias")), value: n, regex: nil),
                      "UPDATE fsconf.users SET number_alias = $2 WHERE id = $1::bigint", [u, n])
            try agree("gateway name", FieldValidation.problem(directory(gateway: "gw", .column("name")), value: n, regex: nil),
                      "INSERT INTO fsconf.gateways (domain_id, name) VALUES ($1::bigint, $2)", [d, n])
            for (owner, table, column, id) in [(DirectoryAddress.Owner.domain, "domain_settings", "domain_id", d),
                                                (.group("sales"), "group_settings", "group_id", g), (.user("1000"), "user_settings", "user_id", u)] {
                try agree("\(table) name", FieldValidation.problem(directory(owner, .setting(kind: .param, name: n, direction: nil)), value: "v", regex: nil),
                          "INSERT INTO fsconf.\(table) (\(column), kind, name, value) VALUES ($1::bigint, 'param', $2, 'v')", [id, n])
            }
            try agree("gateway setting name", FieldValidation.problem(directory(gateway: "gw", .setting(kind: .param, name: n, direction: nil)), value: "v", regex: nil),
                      "INSERT INTO fsconf.gateway_settings (gateway_id, kind, name, value) VALUES ($1::bigint, 'param', $2, 'v')", [gw, n])
            try agree("context name", FieldValidation.problem(dialplan(ext: false, "name"), value: n, regex: nil),
                      "INSERT INTO fsconf.dialplan_contexts (name) VALUES ($1)", [n])
            try agree("extension name", FieldValidation.problem(dialplan("name"), value: n, regex: nil),
                      "UPDATE fsconf.dialplan_extensions SET name = $2 WHERE id = $1::bigint", [x, n])
            try agree("document name", FieldValidation.nameProblem(n, .document),
                      "INSERT INTO fsconf.documents (section, name) VALUES ('languages', $1)", [n])
        }
        // Global names (their own pattern) and XML names (tags, attributes).
        for n in ["ok_1", "a.b:c-d", "", "bad name", "a/b", "é", "$${x}"] {
            try agree("global name", FieldValidation.problem(.globals(name: n), value: "v", regex: nil),
                      "INSERT INTO fsconf.global_variables (name, value) VALUES ($1, 'v')", [n])
        }
        for n in ["param", "_x", "a-b.c:d", "1bad", "", "a b", "é", "-x"] {
            try agree("element tag", FieldValidation.problem(tree([n], .attribute("x")), value: "v", regex: nil),
                      "INSERT INTO fsconf.elements (document_id, parent_id, position, tag) VALUES ($1::bigint, $2::bigint, 9, $3)", [doc, el, n])
            try agree("attribute name", FieldValidation.problem(tree([], .attribute(n)), value: "v", regex: nil),
                      "INSERT INTO fsconf.attributes (element_id, name, value) VALUES ($1::bigint, $2, 'v')", [el, n])
        }

        // Values: XML character data everywhere a value is stored.
        for v in values {
            try agree("global value", FieldValidation.problem(.globals(name: "g"), value: v, regex: nil),
                      "INSERT INTO fsconf.global_variables (name, value) VALUES ('g', $1)", [v])
            for (owner, table, column, id) in [(DirectoryAddress.Owner.domain, "domain_settings", "domain_id", d),
                                                (.group("sales"), "group_settings", "group_id", g), (.user("1000"), "user_settings", "user_id", u)] {
                try agree("\(table) value", FieldValidation.problem(directory(owner, .setting(kind: .variable, name: "n", direction: nil)), value: v, regex: nil),
                          "INSERT INTO fsconf.\(table) (\(column), kind, name, value) VALUES ($1::bigint, 'variable', 'n', $2)", [id, v])
            }
            try agree("gateway setting value", FieldValidation.problem(directory(gateway: "gw", .setting(kind: .param, name: "n", direction: nil)), value: v, regex: nil),
                      "INSERT INTO fsconf.gateway_settings (gateway_id, kind, name, value) VALUES ($1::bigint, 'param', 'n', $2)", [gw, v])
            try agree("attribute value", FieldValidation.problem(tree([], .attribute("x")), value: v, regex: nil),
                      "INSERT INTO fsconf.attributes (element_id, name, value) VALUES ($1::bigint, 'x', $2)", [el, v])
            try agree("element text", FieldValidation.problem(tree([], .text), value: v, regex: nil),
                      "UPDATE fsconf.elements SET text = $2 WHERE id = $1::bigint", [el, v])
            try agree("action data", FieldValidation.problem(dialplan(conditions: 1, item: .action(.index(1)), "data"), value: v, regex: nil),
                      "UPDATE fsconf.dialplan_actions SET data = $2 WHERE id = $1::bigint", [ids["action"], v])
            if !v.isEmpty {
                try agree("action application", FieldValidation.problem(dialplan(conditions: 1, item: .action(.index(1)), "application"), value: v, regex: nil),
                          "UPDATE fsconf.dialplan_actions SET application = $2 WHERE id = $1::bigint", [ids["action"], v])
                try agree("condition field", FieldValidation.problem(dialplan(conditions: 1, "field"), value: v, regex: nil),
                          "UPDATE fsconf.dialplan_conditions SET field = $2 WHERE id = $1::bigint", [cond, v])
                try agree("regex field", FieldValidation.problem(dialplan(conditions: 1, item: .regex(.index(1)), "field"), value: v, regex: nil),
                          "UPDATE fsconf.dialplan_regexes SET field = $2 WHERE id = $1::bigint", [ids["regex"], v])
            }
            try agree("condition expression", FieldValidation.problem(dialplan(conditions: 1, "expression"), value: v, regex: nil),
                      "UPDATE fsconf.dialplan_conditions SET expression = $2 WHERE id = $1::bigint", [cond, v])
        }
        // Empty required columns.
        try agree("empty application", FieldValidation.problem(dialplan(conditions: 1, item: .action(.index(1)), "application"), value: "", regex: nil),
                  "UPDATE fsconf.dialplan_actions SET application = $2 WHERE id = $1::bigint", [ids["action"], ""])
        try agree("empty condition field", FieldValidation.problem(dialplan(conditions: 1, "field"), value: "", regex: nil),
                  "UPDATE fsconf.dialplan_conditions SET field = $2 WHERE id = $1::bigint", [cond, ""])
        try agree("empty regex field", FieldValidation.problem(dialplan(conditions: 1, item: .regex(.index(1)), "field"), value: "", regex: nil),
                  "UPDATE fsconf.dialplan_regexes SET field = $2 WHERE id = $1::bigint", [ids["regex"], ""])

        // Enumerations.
        for v in ["true", "false", "maybe", "TRUE", ""] {
            try agree("continue", FieldValidation.problem(dialplan("continue"), value: v, regex: nil),
                      "UPDATE fsconf.dialplan_extensions SET continue = $2 WHERE id = $1::bigint", [x, v])
            try agree("inline", FieldValidation.problem(dialplan(conditions: 1, item: .action(.index(1)), "inline"), value: v, regex: nil),
                      "UPDATE fsconf.dialplan_actions SET inline = $2 WHERE id = $1::bigint", [ids["action"], v])
            try agree("require-nested", FieldValidation.problem(dialplan(conditions: 1, "require-nested"), value: v, regex: nil),
                      "UPDATE fsconf.dialplan_conditions SET require_nested = $2 WHERE id = $1::bigint", [cond, v])
        }
        for v in ["on-true", "on-false", "always", "never", "sometimes", ""] {
            try agree("break", FieldValidation.problem(dialplan(conditions: 1, "break"), value: v, regex: nil),
                      "UPDATE fsconf.dialplan_conditions SET break = $2 WHERE id = $1::bigint", [cond, v])
        }
        for v in ["all", "any", "xor", "some", ""] {
            try agree("regex", FieldValidation.problem(dialplan(conditions: 1, "regex"), value: v, regex: nil),
                      "UPDATE fsconf.dialplan_conditions SET regex = $2 WHERE id = $1::bigint", [cond, v])
        }

        // cacheable: the 0001 patterns and the 0005 range (as FreeSWITCH reads it).
        for v in ["true", "false", "0", "60000", "2147483", "002147483", "2147484", "3600000", "99999999999999999999", "-5", "1.5", "soon", ""] {
            try agree("domain cacheable", FieldValidation.problem(directory(.column("cacheable")), value: v, regex: nil),
                      "UPDATE fsconf.domains SET cacheable = $2 WHERE id = $1::bigint", [d, v])
            try agree("user cacheable", FieldValidation.problem(directory(.user("1000"), .column("cacheable")), value: v, regex: nil),
                      "UPDATE fsconf.users SET cacheable = $2 WHERE id = $1::bigint", [u, v])
        }

        // A condition's field and expression go together unless it has regex=.
        for (field, expression, regex) in [("f", "e", nil), (nil, nil, nil), ("f", nil, nil), (nil, "e", nil), ("f", nil, "any"), (nil, "e", "all")] as [(String?, String?, String?)] {
            try agree("condition pairing", FieldValidation.conditionProblem(field: field, expression: expression, regex: regex),
                      "INSERT INTO fsconf.dialplan_conditions (extension_id, position, field, expression, regex) VALUES ($1::bigint, 7, $2, $3, $4)",
                      [x, field, expression, regex])
        }
        _ = c
    }

    /// fsconf.is_secret_name (what leaves the change log) and FieldValidation.isSecretName
    /// (what the CLI hides) name the same fields.
    func testSecretNamesAreOneDefinition() throws {
        let names = ["password", "vm-password", "Password", "a1-hash", "vm-a1-hash", "reverse-auth-pass", "pass", "x_pass", "bypass",
                     "passive", "tls-passphrase", "odbc-dsn", "dsn", "dsnx", "secret", "client-secret", "gateway-credentials", "token",
                     "api-token", "pin", "moderator-pin", "pinger", "spin", "username", "realm", "default_password", "esl-password", ""]
        for n in names {
            let sql = try conn.query("SELECT fsconf.is_secret_name($1)", [n]).bool(0, 0)
            XCTAssertEqual(sql, FieldValidation.isSecretName(n), n)
        }
    }
}
