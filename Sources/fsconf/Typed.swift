import ArgumentParser
import FSConfAdminCore
import FSConfCore
import FSConfAdminStore
import FSConfStore
import Foundation
import Glibc

/// Typed conveniences: each is one transaction and one change set.
extension Fsconf {
    struct Domain: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add or remove a directory domain.",
                                                        subcommands: [Add.self, Remove.self])
        struct Add: FsconfCommand {
            static let configuration = CommandConfiguration(abstract: "Add a domain (exit 5 if it exists).")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument(help: "The domain name (may be a $${...} reference).") var name: String
            @Option(help: "The default cacheable for its users: true or milliseconds.") var cacheable: String?
            func execute() throws {
                try Typed.text(name, "domain name")
                let conn = try connection.connect()
                let (_, id) = try Admin.write(conn, actor: write.resolvedActor, summary: "domain add \(name)") { conn in
                    if try conn.query("SELECT 1 FROM fsconf.domains WHERE lower(name) = lower($1)", [name]).rowCount > 0 {
                        throw CLIFailure("domain \(name) already exists", code: CLIFailure.Code.conflict)
                    }
                    try conn.query("""
                        INSERT INTO fsconf.domains (name, cacheable, position)
                        SELECT $1, $2, coalesce(max(position), 0) + 1 FROM fsconf.domains
                        """, [name, cacheable])
                }
                print("added domain \(name) (change set \(id ?? "-"))")
            }
        }
        struct Remove: FsconfCommand {
            static let configuration = CommandConfiguration(abstract: "Remove a domain with its groups, users and gateways.")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument var name: String
            func execute() throws {
                try Typed.unset(connection, write, ["directory", name], summary: "domain remove \(name)")
            }
        }
    }

    struct User: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add or remove a directory user; set its password.",
                                                        subcommands: [Add.self, Remove.self, SetPassword.self])
        struct Add: FsconfCommand {
            static let configuration = CommandConfiguration(abstract: "Add a user (exit 5 if it exists).",
                discussion: "Set its password afterwards with `fsconf user set-password` (the clear text never goes on the command line).")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument var domain: String
            @Argument var user: String
            @Option(help: "The group whose <users> defines it (created if missing).") var group: String?
            @Option(help: "Its number-alias.") var alias: String?
            @Option(name: .customLong("param"), help: ArgumentHelp("A param (repeatable).", valueName: "name=value")) var params: [String] = []
            @Option(name: .customLong("variable"), help: ArgumentHelp("A variable (repeatable).", valueName: "name=value")) var variables: [String] = []
            func execute() throws {
                try Typed.text(user, "user id")
                let params = try Typed.pairs(self.params, "param"), variables = try Typed.pairs(self.variables, "variable")
                for (n, v) in params + variables { try Typed.text(n, "name"); try Typed.text(v, n) }
                for (n, _) in params where n == "password" {
                    throw CLIFailure("a password does not go on the command line: use `fsconf user set-password`", code: CLIFailure.Code.invalid)
                }
                let probe = FieldAddress.directory(DirectoryAddress(domain: domain, owner: .user(user), field: .setting(kind: .param, name: "", direction: nil)))
                for (n, _) in params { if let w = FieldValidation.unknownParamWarning(probe, name: n) { printErr(w) } }
                let conn = try connection.connect()
                let (_, id) = try Admin.write(conn, actor: write.resolvedActor, summary: "user add \(user)@\(domain)") { conn in
                    let d = try Typed.domainID(conn, domain)
                    if try conn.query("SELECT 1 FROM fsconf.users WHERE domain_id = $1::bigint AND lower(user_id) = lower($2)", [d, user]).rowCount > 0 {
                        throw CLIFailure("user \(user) already exists in \(domain)", code: CLIFailure.Code.conflict)
                    }
                    var groupID: String?
                    if let group {
                        let g = try conn.query("SELECT id FROM fsconf.groups WHERE domain_id = $1::bigint AND lower(name) = lower($2)", [d, group])
                        groupID = g.rowCount > 0 ? g.string(0, 0) : try conn.query("""
                            INSERT INTO fsconf.groups (domain_id, name, position)
                            SELECT $1::bigint, $2, coalesce(max(position), 0) + 1 FROM fsconf.groups WHERE domain_id = $1::bigint RETURNING id
                            """, [d, group]).string(0, 0)
                    }
                    let u = try conn.query("""
                        INSERT INTO fsconf.users (domain_id, user_id, number_alias, home_group_id, position)
                        SELECT $1::bigint, $2, $3, $4::bigint, coalesce(max(position), 0) + 1 FROM fsconf.users WHERE domain_id = $1::bigint
                        RETURNING id
                        """, [d, user, alias, groupID]).string(0, 0)!
                    for (k, (kind, list)) in [("param", params), ("variable", variables)].enumerated() {
                        for (n, (name, value)) in list.enumerated() {
                            try conn.query("INSERT INTO fsconf.user_settings (user_id, kind, name, value, position) VALUES ($1::bigint, $2, $3, $4, $5::int)",
                                           [u, kind, name, value, String(k * 1000 + n + 1)])
                        }
                    }
                }
                print("added user \(user)@\(domain) (change set \(id ?? "-"))")
            }
        }
        struct Remove: FsconfCommand {
            static let configuration = CommandConfiguration(abstract: "Remove a user with its settings, gateways and memberships.")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument var domain: String
            @Argument var user: String
            func execute() throws {
                try Typed.unset(connection, write, ["directory", domain, "user", user], summary: "user remove \(user)@\(domain)")
            }
        }
        struct SetPassword: FsconfCommand {
            static let configuration = CommandConfiguration(
                commandName: "set-password",
                abstract: "Store a user's password as an a1-hash (never in clear).",
                discussion: """
                    Reads the password from standard input (first line), or prompts without echo when standard
                    input is a terminal. Stores the param a1-hash = md5("USER:REALM:PASSWORD"), which FreeSWITCH
                    accepts instead of password (sofia_reg.c), and removes a clear password param of the user.
                    REALM is the domain; give --realm when the stored domain name is a $${...} reference.
                    The password never appears in output or history.
                    """)
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument var domain: String
            @Argument var user: String
            @Option(help: "The SIP realm to hash with (default: the domain's stored name).") var realm: String?

            func execute() throws {
                let conn = try connection.connect()
                let stored = try conn.query("""
                    SELECT d.name, u.user_id FROM fsconf.users u JOIN fsconf.domains d ON d.id = u.domain_id
                    WHERE lower(d.name) = lower($1) AND lower(u.user_id) = lower($2)
                    """, [domain, user])
                guard stored.rowCount == 1 else { throw CLIFailure("no user \(user) in domain \(domain)", code: CLIFailure.Code.notFound) }
                let domainName = stored.string(0, 0)!, userID = stored.string(0, 1)!
                let hashRealm = realm ?? domainName
                if hashRealm.contains("$${") {
                    throw CLIFailure("the domain is stored as \(domainName): give the realm it expands to with --realm", code: CLIFailure.Code.invalid)
                }
                let password = try Typed.readPassword()
                let hash = MD5.a1Hash(user: userID, domain: hashRealm, password: password)
                let base = DirectoryAddress(domain: domainName, owner: .user(userID))
                var hashAddress = base; hashAddress.field = .setting(kind: .param, name: "a1-hash", direction: nil)
                var clearAddress = base; clearAddress.field = .setting(kind: .param, name: "password", direction: nil)
                let (removed, id) = try Admin.write(conn, actor: write.resolvedActor, summary: "user set-password \(userID)@\(domainName)") { conn in
                    let store = FieldStore(conn)
                    _ = try store.set(.directory(hashAddress), value: hash, expect: nil)
                    if try store.get(.directory(clearAddress)).exists {
                        _ = try store.unset(.directory(clearAddress), expect: nil)
                        return true
                    }
                    return false
                }
                print("password of \(userID)@\(domainName) stored as a1-hash" + (removed ? "; clear password param removed" : "")
                      + (id.map { " (change set \($0))" } ?? " (unchanged)"))
            }
        }
    }

    struct Gateway: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add or remove a gateway (of a user with --user, of a sofia.conf profile with --profile).",
                                                        subcommands: [Add.self, Remove.self])
        /// Where sofia reads gateways (sofia.c): `<gateways>` of the users of a parsed
        /// domain (parse_domain_tag) and of a sofia.conf profile (parse_gateways).
        static let places = "sofia reads gateways only from a user (--user USER: the domain's users, sofia.c parse_domain_tag) "
            + "or from a sofia.conf profile (--profile PROFILE: <profile><gateways>, parse_gateways)"

        struct Add: FsconfCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add a gateway with its params to a user (DOMAIN NAME --user USER) or a sofia.conf profile (NAME --profile P).",
                discussion: "Exit 5 if the name is taken there. \(Gateway.places). A gateway directly in a domain is never read: refused (exit 2).")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument(help: ArgumentHelp("DOMAIN NAME with --user; NAME with --profile.", valueName: "name")) var names: [String] = []
            @Option(help: "The user that carries it.") var user: String?
            @Option(help: "The sofia.conf profile whose <gateways> gets it.") var profile: String?
            @Option(name: .customLong("param"), help: ArgumentHelp("A param (repeatable).", valueName: "name=value")) var params: [String] = []
            @Option(name: .customLong("variable"), help: ArgumentHelp("A variable (repeatable).", valueName: "name=value")) var variables: [String] = []

            func validate() throws {
                if profile != nil && user != nil { throw ValidationError("--user and --profile cannot be combined") }
                if let profile {
                    if names.count != 1 { throw ValidationError("give the gateway's name: fsconf gateway add NAME --profile \(profile)") }
                } else {
                    if user == nil { throw ValidationError("a gateway directly in a domain is never read by FreeSWITCH: \(Gateway.places)") }
                    if names.count != 2 { throw ValidationError("give DOMAIN NAME: fsconf gateway add DOMAIN NAME --user USER") }
                }
            }

            func execute() throws {
                let name = names.last!
                try Typed.text(name, "gateway name")
                let params = try Typed.pairs(self.params, "param"), variables = try Typed.pairs(self.variables, "variable")
                for (n, v) in params + variables { try Typed.text(n, "name"); try Typed.text(v, n) }
                if let profile { return try addToProfile(profile, name: name, params: params, variables: variables) }
                let domain = names[0]
                let probe = FieldAddress.directory(DirectoryAddress(domain: domain, gateway: name, field: .setting(kind: .param, name: "", direction: nil)))
                for (n, _) in params { if let w = FieldValidation.unknownParamWarning(probe, name: n) { printErr(w) } }
                let conn = try connection.connect()
                let (_, id) = try Admin.write(conn, actor: write.resolvedActor, summary: "gateway add \(name)@\(domain)") { conn in
                    let d = try Typed.domainID(conn, domain)
                    var u: String?
                    if let user {
                        let r = try conn.query("SELECT id FROM fsconf.users WHERE domain_id = $1::bigint AND lower(user_id) = lower($2)", [d, user])
                        guard r.rowCount == 1 else { throw CLIFailure("no user \(user) in domain \(domain)", code: CLIFailure.Code.notFound) }
                        u = r.string(0, 0)
                    }
                    if try conn.query("SELECT 1 FROM fsconf.gateways WHERE domain_id = $1::bigint AND name = $2", [d, name]).rowCount > 0 {
                        throw CLIFailure("gateway \(name) already exists in \(domain)", code: CLIFailure.Code.conflict)
                    }
                    let g = try conn.query("""
                        INSERT INTO fsconf.gateways (domain_id, user_id, name, position)
                        SELECT $1::bigint, $2::bigint, $3, coalesce(max(position), 0) + 1 FROM fsconf.gateways WHERE domain_id = $1::bigint
                        RETURNING id
                        """, [d, u, name]).string(0, 0)!
                    var position = 0
                    for (kind, list) in [("param", params), ("variable", variables)] {
                        for (n, v) in list {
                            position += 1
                            try conn.query("INSERT INTO fsconf.gateway_settings (gateway_id, kind, name, value, position) VALUES ($1::bigint, $2, $3, $4, $5::int)",
                                           [g, kind, n, v, String(position)])
                        }
                    }
                }
                print("added gateway \(name) to \(user.map { "\($0)@" } ?? "")\(domain) (change set \(id ?? "-"))")
            }

            /// `<gateway name>` with `<param>`s and `<variables>` in the profile's
            /// `<gateways>` (created when missing) of the stored sofia.conf.
            func addToProfile(_ profile: String, name: String, params: [(String, String)], variables: [(String, String)]) throws {
                let conn = try connection.connect()
                let (_, id) = try Admin.write(conn, actor: write.resolvedActor, summary: "gateway add \(name) (sofia.conf profile \(profile))") { conn in
                    let doc = try conn.query("SELECT id FROM fsconf.documents WHERE section = 'configuration' AND name = 'sofia.conf'")
                    guard let d = doc.string(0, 0) else { throw CLIFailure("no sofia.conf is stored (fsconf import it first)", code: CLIFailure.Code.notFound) }
                    let p = try conn.query("""
                        SELECT e.id FROM fsconf.elements e JOIN fsconf.elements ps ON ps.id = e.parent_id
                        JOIN fsconf.attributes a ON a.element_id = e.id AND a.name = 'name'
                        WHERE e.document_id = $1::bigint AND e.tag = 'profile' AND ps.tag = 'profiles' AND lower(a.value) = lower($2)
                        ORDER BY (a.value = $2) DESC, e.position LIMIT 1 FOR UPDATE OF e
                        """, [d, profile])
                    guard let pid = p.string(0, 0) else { throw CLIFailure("sofia.conf has no profile \(profile)", code: CLIFailure.Code.notFound) }
                    func insert(_ parent: String, _ tag: String, _ attributes: [(String, String)]) throws -> String {
                        let e = try conn.query("""
                            INSERT INTO fsconf.elements (document_id, parent_id, position, tag)
                            SELECT $1::bigint, $2::bigint, coalesce(max(position), 0) + 1, $3 FROM fsconf.elements WHERE parent_id = $2::bigint
                            RETURNING id
                            """, [d, parent, tag]).string(0, 0)!
                        for (k, (n, v)) in attributes.enumerated() {
                            try conn.query("INSERT INTO fsconf.attributes (element_id, name, value, position) VALUES ($1::bigint, $2, $3, $4::int)",
                                           [e, n, v, String(k + 1)])
                        }
                        return e
                    }
                    let container = try conn.query("SELECT id FROM fsconf.elements WHERE parent_id = $1::bigint AND tag = 'gateways' ORDER BY position LIMIT 1", [pid])
                    let gateways = try container.string(0, 0) ?? insert(pid, "gateways", [])
                    let taken = try conn.query("""
                        SELECT 1 FROM fsconf.elements g JOIN fsconf.attributes a ON a.element_id = g.id AND a.name = 'name'
                        WHERE g.parent_id = $1::bigint AND g.tag = 'gateway' AND a.value = $2
                        """, [gateways, name])
                    if taken.rowCount > 0 { throw CLIFailure("gateway \(name) already exists in profile \(profile)", code: CLIFailure.Code.conflict) }
                    let g = try insert(gateways, "gateway", [("name", name)])
                    for (n, v) in params { _ = try insert(g, "param", [("name", n), ("value", v)]) }
                    if !variables.isEmpty {
                        let vs = try insert(g, "variables", [])
                        for (n, v) in variables { _ = try insert(vs, "variable", [("name", n), ("value", v)]) }
                    }
                }
                print("added gateway \(name) to sofia.conf profile \(profile) (change set \(id ?? "-"))")
            }
        }
        struct Remove: FsconfCommand {
            static let configuration = CommandConfiguration(abstract: "Remove a gateway.")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument(help: ArgumentHelp("DOMAIN NAME, or NAME with --profile.", valueName: "name")) var names: [String] = []
            @Option(help: "The user that carries it.") var user: String?
            @Option(help: "The sofia.conf profile that carries it.") var profile: String?
            func validate() throws {
                if profile != nil && user != nil { throw ValidationError("--user and --profile cannot be combined") }
                if names.count != (profile == nil ? 2 : 1) {
                    throw ValidationError(profile == nil ? "give DOMAIN NAME" : "give the gateway's name")
                }
            }
            func execute() throws {
                let name = names.last!
                if let profile {
                    let path = FieldPath([FieldPath.Step("configuration"), FieldPath.Step("sofia.conf"), FieldPath.Step("profiles"),
                                          FieldPath.Step("profile", [.match("name", profile)]), FieldPath.Step("gateways"),
                                          FieldPath.Step("gateway", [.match("name", name)])])
                    return try Typed.unset(connection, write, path, summary: "gateway remove \(name) (sofia.conf profile \(profile))")
                }
                let domain = names[0]
                try Typed.unset(connection, write, ["directory", domain] + (user.map { ["user", $0] } ?? []) + ["gateway", name],
                                summary: "gateway remove \(name)@\(domain)")
            }
        }
    }

    struct Extension: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add or remove a dialplan extension.",
                                                        subcommands: [Add.self, Remove.self])
        struct Add: FsconfCommand {
            static let configuration = CommandConfiguration(
                abstract: "Append an extension to a context (created if missing).",
                discussion: """
                    One condition per --condition FIELD=EXPRESSION, in order; the actions (--action APP[=DATA],
                    --anti-action APP[=DATA]) go to the last condition. Expressions are compiled with PCRE2 as
                    FreeSWITCH does; a bad one writes nothing (exit 2). Example:
                    fsconf extension add default echo --condition destination_number='^9196$' --action answer --action echo
                    """)
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument var context: String
            @Argument var name: String
            @Option(name: .customLong("condition"), help: ArgumentHelp("A condition (repeatable).", valueName: "field=expression")) var conditions: [String] = []
            @Option(name: .customLong("action"), help: ArgumentHelp("An action of the last condition (repeatable).", valueName: "app[=data]")) var actions: [String] = []
            @Option(name: .customLong("anti-action"), help: ArgumentHelp("An anti-action of the last condition (repeatable).", valueName: "app[=data]")) var antiActions: [String] = []
            @Flag(name: .customLong("continue"), help: "continue=\"true\": carry on with the next extension after this one.") var continueOn = false
            func execute() throws {
                try Typed.text(name, "extension name")
                let conditions = try Typed.pairs(self.conditions, "condition")
                for (f, e) in conditions {
                    try Typed.text(f, "field"); try Typed.text(e, "expression")
                    try Admin.checkRegex(e, path: "--condition \(f)=\(e)")
                }
                func split(_ s: String) -> (String, String?) {
                    guard let eq = s.firstIndex(of: "=") else { return (s, nil) }
                    return (String(s[..<eq]), String(s[s.index(after: eq)...]))
                }
                let acts = actions.map(split), antis = antiActions.map(split)
                for (a, d) in acts + antis {
                    guard !a.isEmpty else { throw CLIFailure("an action needs an application", code: CLIFailure.Code.invalid) }
                    try Typed.text(a, "application"); if let d { try Typed.text(d, a) }
                }
                if (!acts.isEmpty || !antis.isEmpty) && conditions.isEmpty {
                    throw CLIFailure("actions belong to a condition: give at least one --condition", code: CLIFailure.Code.invalid)
                }
                let conn = try connection.connect()
                let (_, id) = try Admin.write(conn, actor: write.resolvedActor, summary: "extension add \(context)/\(name)") { conn in
                    var r = try conn.query("SELECT id FROM fsconf.dialplan_contexts WHERE section = 'dialplan' AND name = $1", [context])
                    if r.rowCount == 0 {
                        r = try conn.query("""
                            INSERT INTO fsconf.dialplan_contexts (section, name, position)
                            SELECT 'dialplan', $1, coalesce(max(position), 0) + 1 FROM fsconf.dialplan_contexts
                            WHERE section = 'dialplan' RETURNING id
                            """, [context])
                        printErr("note: created dialplan context \(context)")
                    }
                    let c = r.string(0, 0)!
                    let x = try conn.query("""
                        INSERT INTO fsconf.dialplan_extensions (context_id, name, continue, position)
                        SELECT $1::bigint, $2, $3, coalesce(max(position), 0) + 1 FROM fsconf.dialplan_extensions WHERE context_id = $1::bigint
                        RETURNING id
                        """, [c, name, continueOn ? "true" : nil]).string(0, 0)!
                    var last: String?
                    for (n, (field, expression)) in conditions.enumerated() {
                        last = try conn.query("""
                            INSERT INTO fsconf.dialplan_conditions (extension_id, position, field, expression) VALUES ($1::bigint, $2::int, $3, $4) RETURNING id
                            """, [x, String(n + 1), field, expression]).string(0, 0)
                    }
                    if let last {
                        for (kind, list) in [("action", acts), ("anti-action", antis)] {
                            for (n, (app, data)) in list.enumerated() {
                                try conn.query("INSERT INTO fsconf.dialplan_actions (condition_id, kind, position, application, data) VALUES ($1::bigint, $2, $3::int, $4, $5)",
                                               [last, kind, String(n + 1), app, data])
                            }
                        }
                    }
                }
                print("added extension \(name) to context \(context) (change set \(id ?? "-"))")
            }
        }
        struct Remove: FsconfCommand {
            static let configuration = CommandConfiguration(abstract: "Remove an extension (by name; by position with --index when names repeat).")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument var context: String
            @Argument var name: String
            func execute() throws {
                let path = FieldPath([FieldPath.Step("dialplan"), FieldPath.Step(context), FieldPath.Step("extension", [.match("name", name)])])
                try Typed.unset(connection, write, path, summary: "extension remove \(context)/\(name)")
            }
        }
    }
}

enum Typed {
    static func text(_ value: String, _ what: String) throws {
        if let problem = FieldValidation.xmlTextProblem(value) {
            throw CLIFailure("\(what): invalid value: \(problem); nothing written", code: CLIFailure.Code.invalid)
        }
        if value.isEmpty && what != "data" { throw CLIFailure("\(what) cannot be empty", code: CLIFailure.Code.invalid) }
    }

    static func pairs(_ list: [String], _ option: String) throws -> [(String, String)] {
        try list.map { item in
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw CLIFailure("--\(option) takes NAME=VALUE, got \(item)", code: CLIFailure.Code.invalid)
            }
            return (String(item[..<eq]), String(item[item.index(after: eq)...]))
        }
    }

    static func domainID(_ conn: PGConnection, _ domain: String) throws -> String {
        let r = try conn.query("SELECT id FROM fsconf.domains WHERE lower(name) = lower($1)", [domain])
        guard r.rowCount == 1 else { throw CLIFailure("no domain \(domain)", code: CLIFailure.Code.notFound) }
        return r.string(0, 0)!
    }

    static func unset(_ connection: ConnectionOptions, _ write: WriteOptions, _ steps: [String], summary: String) throws {
        try unset(connection, write, FieldPath(steps.map { FieldPath.Step($0) }), summary: summary)
    }

    static func unset(_ connection: ConnectionOptions, _ write: WriteOptions, _ path: FieldPath, summary: String) throws {
        let address: FieldAddress
        do { address = try FieldAddress.resolve(path) } catch {
            throw CLIFailure("\(path): \(error.description)", code: CLIFailure.Code.invalid)
        }
        let conn = try connection.connect()
        let (written, id) = try Admin.write(conn, actor: write.resolvedActor, summary: summary) { conn in
            try FieldStore(conn).unset(address, expect: nil)
        }
        print("removed \(written.path) (change set \(id ?? "-"))")
    }

    /// The password from stdin (first line), or a no-echo prompt on a terminal.
    static func readPassword() throws -> String {
        var password: String
        if isatty(0) == 1 {
            func prompt(_ text: String) -> String {
                FileHandle.standardError.write(Data(text.utf8))
                var old = termios()
                tcgetattr(0, &old)
                var quiet = old
                quiet.c_lflag &= ~tcflag_t(ECHO)
                tcsetattr(0, TCSAFLUSH, &quiet)
                defer { tcsetattr(0, TCSAFLUSH, &old); FileHandle.standardError.write(Data("\n".utf8)) }
                return readLine(strippingNewline: true) ?? ""
            }
            password = prompt("Password: ")
            guard prompt("Again: ") == password else { throw CLIFailure("the passwords differ; nothing written", code: CLIFailure.Code.invalid) }
        } else {
            password = readLine(strippingNewline: true) ?? ""
        }
        if password.hasSuffix("\r") { password.removeLast() }
        guard !password.isEmpty else { throw CLIFailure("empty password; nothing written", code: CLIFailure.Code.invalid) }
        if FieldValidation.xmlTextProblem(password) != nil {
            throw CLIFailure("the password holds control characters; nothing written", code: CLIFailure.Code.invalid)
        }
        return password
    }
}
