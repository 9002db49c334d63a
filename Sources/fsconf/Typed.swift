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
        struct Add: FsconfCommand, BatchStep {
            static let configuration = CommandConfiguration(abstract: "Add a domain (exit 5 if it exists).")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument(help: "The domain name (may be a $${...} reference).") var name: String
            @Option(help: "The default cacheable for its users: true or milliseconds.") var cacheable: String?
            @Option(help: ArgumentHelp("Only for these nodes and @groups (node,@group,...): a variant (docs/cluster.md).", valueName: "scope"))
            var scope: String?
            func prepared() throws -> PreparedWrite {
                let domain = DirectoryAddress(domain: name, field: .column("name"))
                var fields: [(FieldAddress, String, String)] = [(.directory(domain), name, "domain add")]
                if let cacheable {
                    fields.append((.directory(DirectoryAddress(domain: name, field: .column("cacheable"))), cacheable, "--cacheable"))
                }
                try Admin.validate(fields)
                let scoped = try scope.map { try ScopeCommand.scope([$0]) }
                return PreparedWrite(summary: "domain add \(name)") { conn in
                    try AdminStore(conn).addDomain(name, cacheable: cacheable, scope: scoped)
                    return PreparedWrite.Done(line: "added domain \(name)")
                }
            }
            func execute() throws { try runAlone() }
        }
        struct Remove: FsconfCommand, BatchStep {
            static let configuration = CommandConfiguration(abstract: "Remove a domain with its groups, users and gateways.")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument var name: String
            func prepared() throws -> PreparedWrite {
                try Typed.removal(["directory", name], summary: "domain remove \(name)")
            }
            func execute() throws { try runAlone() }
        }
    }

    struct User: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add or remove a directory user; set its password.",
                                                        subcommands: [Add.self, Remove.self, SetPassword.self])
        struct Add: FsconfCommand, BatchStep {
            static let configuration = CommandConfiguration(abstract: "Add a user (exit 5 if it exists).",
                discussion: "Set its password afterwards with `fsconf user set-password` (the clear text never goes on the command line).")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument var domain: String
            @Argument var user: String
            @Option(help: "The group whose <users> defines it (created if missing).") var group: String?
            @Option(help: "Its number-alias.") var alias: String?
            @Option(help: ArgumentHelp("Only for these nodes and @groups (node,@group,...): a variant (docs/cluster.md).", valueName: "scope"))
            var scope: String?
            @Option(name: .customLong("param"), help: ArgumentHelp("A param (repeatable).", valueName: "name=value")) var params: [String] = []
            @Option(name: .customLong("variable"), help: ArgumentHelp("A variable (repeatable).", valueName: "name=value")) var variables: [String] = []
            func prepared() throws -> PreparedWrite {
                let params = try Typed.pairs(self.params, "param"), variables = try Typed.pairs(self.variables, "variable")
                for (n, _) in params where n == "password" {
                    throw CLIFailure("a password does not go on the command line: use `fsconf user set-password`", code: CLIFailure.Code.invalid)
                }
                func at(_ field: DirectoryAddress.Field) -> FieldAddress { .directory(DirectoryAddress(domain: domain, owner: .user(user), field: field)) }
                var fields: [(FieldAddress, String, String)] = [(at(.column("id")), user, "user add")]
                if let alias { fields.append((at(.column("number-alias")), alias, "--alias")) }
                if let group { fields.append((at(.column("group")), group, "--group")) }
                fields.append((.directory(DirectoryAddress(domain: domain, field: .column("name"))), domain, "user add"))
                try Typed.validate(fields, params: params, variables: variables, at: at)
                let scoped = try scope.map { try ScopeCommand.scope([$0]) }
                return PreparedWrite(summary: "user add \(user)@\(domain)") { conn in
                    try AdminStore(conn).addUser(domain: domain, user: user, group: group, alias: alias, params: params, variables: variables,
                                                 scope: scoped)
                    return PreparedWrite.Done(line: "added user \(user)@\(domain)")
                }
            }
            func execute() throws { try runAlone() }
        }
        struct Remove: FsconfCommand, BatchStep {
            static let configuration = CommandConfiguration(abstract: "Remove a user with its settings, gateways and memberships.")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument var domain: String
            @Argument var user: String
            func prepared() throws -> PreparedWrite {
                try Typed.removal(["directory", domain, "user", user], summary: "user remove \(user)@\(domain)")
            }
            func execute() throws { try runAlone() }
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
                let (domainName, userID) = try AdminStore(conn).user(domain: domain, user: user)
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

        struct Add: FsconfCommand, BatchStep {
            static let configuration = CommandConfiguration(
                abstract: "Add a gateway with its params to a user (DOMAIN NAME --user USER) or a sofia.conf profile (NAME --profile P).",
                discussion: "Exit 5 if the name is taken there. \(Gateway.places). A gateway directly in a domain is never read: refused (exit 2).")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument(help: ArgumentHelp("DOMAIN NAME with --user; NAME with --profile.", valueName: "name")) var names: [String] = []
            @Option(help: "The user that carries it.") var user: String?
            @Option(help: "The sofia.conf profile whose <gateways> gets it.") var profile: String?
            @Option(help: ArgumentHelp("Only for these nodes and @groups (node,@group,...): a variant (docs/cluster.md).", valueName: "scope"))
            var scope: String?
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

            func prepared() throws -> PreparedWrite {
                let name = names.last!
                let params = try Typed.pairs(self.params, "param"), variables = try Typed.pairs(self.variables, "variable")
                // The same rules wherever the gateway goes: its name and its settings' names are names, values are XML text.
                let domain = profile == nil ? names[0] : "sofia.conf"
                func at(_ field: DirectoryAddress.Field) -> FieldAddress {
                    .directory(DirectoryAddress(domain: domain, owner: user.map { .user($0) } ?? .domain, gateway: name, field: field))
                }
                let fields: [(FieldAddress, String, String)] = [(at(.column("name")), name, "gateway add")]
                try Typed.validate(fields, params: params, variables: variables, at: at)
                let scoped = try scope.map { try ScopeCommand.scope([$0]) }
                if let profile {
                    // `<gateway name>` with `<param>`s and `<variables>` in the profile's
                    // `<gateways>` (created when missing) of the stored sofia.conf.
                    return PreparedWrite(summary: "gateway add \(name) (sofia.conf profile \(profile))") { conn in
                        try AdminStore(conn).addProfileGateway(profile: profile, name: name, params: params, variables: variables,
                                                               scope: scoped)
                        return PreparedWrite.Done(line: "added gateway \(name) to sofia.conf profile \(profile)")
                    }
                }
                return PreparedWrite(summary: "gateway add \(name)@\(domain)") { conn in
                    try AdminStore(conn).addGateway(domain: domain, name: name, user: user, params: params, variables: variables,
                                                    scope: scoped)
                    return PreparedWrite.Done(line: "added gateway \(name) to \(user.map { "\($0)@" } ?? "")\(domain)")
                }
            }
            func execute() throws { try runAlone() }
        }
        struct Remove: FsconfCommand, BatchStep {
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
            func prepared() throws -> PreparedWrite {
                let name = names.last!
                if let profile {
                    let path = FieldPath([FieldPath.Step("configuration"), FieldPath.Step("sofia.conf"), FieldPath.Step("profiles"),
                                          FieldPath.Step("profile", [.match("name", profile)]), FieldPath.Step("gateways"),
                                          FieldPath.Step("gateway", [.match("name", name)])])
                    return try Typed.removal(path, summary: "gateway remove \(name) (sofia.conf profile \(profile))")
                }
                let domain = names[0]
                return try Typed.removal(["directory", domain] + (user.map { ["user", $0] } ?? []) + ["gateway", name],
                                         summary: "gateway remove \(name)@\(domain)")
            }
            func execute() throws { try runAlone() }
        }
    }

    struct Extension: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add or remove a dialplan extension.",
                                                        subcommands: [Add.self, Remove.self])
        struct Add: FsconfCommand, BatchStep {
            static let configuration = CommandConfiguration(
                abstract: "Append an extension to a context (created if missing; exit 5 if the context has an extension of that name).",
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
            @Option(help: ArgumentHelp("Only for these nodes and @groups (node,@group,...): a variant (docs/cluster.md).", valueName: "scope"))
            var scope: String?
            func prepared() throws -> PreparedWrite {
                if name.isEmpty { throw CLIFailure("extension name cannot be empty", code: CLIFailure.Code.invalid) }
                let conditions = try Typed.pairs(self.conditions, "condition")
                func split(_ s: String) -> (String, String?) {
                    guard let eq = s.firstIndex(of: "=") else { return (s, nil) }
                    return (String(s[..<eq]), String(s[s.index(after: eq)...]))
                }
                let acts = actions.map(split), antis = antiActions.map(split)
                if (!acts.isEmpty || !antis.isEmpty) && conditions.isEmpty {
                    throw CLIFailure("actions belong to a condition: give at least one --condition", code: CLIFailure.Code.invalid)
                }
                var context = DialplanAddress(context: self.context)
                context.column = "name"
                var ext = DialplanAddress(context: self.context)
                ext.extensionPick = .match("name", name)
                func at(_ conditionIndex: Int, _ item: DialplanAddress.Item?, _ column: String) -> FieldAddress {
                    var a = ext
                    a.conditions = [.index(conditionIndex)]
                    a.item = item
                    a.column = column
                    return .dialplan(a)
                }
                ext.column = "name"
                var fields: [(FieldAddress, String, String)] = [(.dialplan(context), self.context, "extension add"), (.dialplan(ext), name, "extension add")]
                for (n, (f, e)) in conditions.enumerated() {
                    fields.append((at(n + 1, nil, "field"), f, "--condition \(f)=\(e)"))
                    fields.append((at(n + 1, nil, "expression"), e, "--condition \(f)=\(e)"))
                }
                for (kind, list) in [("--action", acts), ("--anti-action", antis)] {
                    for (n, (app, data)) in list.enumerated() {
                        let item: DialplanAddress.Item = kind == "--action" ? .action(.index(n + 1)) : .antiAction(.index(n + 1))
                        fields.append((at(conditions.count, item, "application"), app, "\(kind) \(app)"))
                        if let data { fields.append((at(conditions.count, item, "data"), data, "\(kind) \(app)")) }
                    }
                }
                try Admin.validate(fields)
                let scoped = try scope.map { try ScopeCommand.scope([$0]) }
                return PreparedWrite(summary: "extension add \(self.context)/\(name)") { conn in
                    let created = try AdminStore(conn).addExtension(context: self.context, name: name, continue: continueOn,
                                                                    conditions: conditions, actions: acts, antiActions: antis,
                                                                    scope: scoped)
                    return PreparedWrite.Done(line: "added extension \(name) to context \(self.context)",
                                              notes: created ? ["created dialplan context \(self.context)"] : [])
                }
            }
            func execute() throws { try runAlone() }
        }
        struct Remove: FsconfCommand, BatchStep {
            static let configuration = CommandConfiguration(
                abstract: "Remove an extension by name.",
                discussion: "When several extensions of the context share the name, remove one by position with `fsconf unset 'dialplan/CONTEXT/extension[N]'`.")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument var context: String
            @Argument var name: String
            func prepared() throws -> PreparedWrite {
                let path = FieldPath([FieldPath.Step("dialplan"), FieldPath.Step(context), FieldPath.Step("extension", [.match("name", name)])])
                return try Typed.removal(path, summary: "extension remove \(context)/\(name)")
            }
            func execute() throws { try runAlone() }
        }
    }
}

enum Typed {
    /// Validates an entity's own fields with its --param/--variable settings (one
    /// validator: exit 2, nothing written), and warns of params FreeSWITCH does not read.
    static func validate(_ fields: [(FieldAddress, String, String)], params: [(String, String)], variables: [(String, String)],
                         at: (DirectoryAddress.Field) -> FieldAddress) throws {
        var fields = fields
        fields += params.map { (at(.setting(kind: .param, name: $0.0, direction: nil)), $0.1, "--param \($0.0)") }
        fields += variables.map { (at(.setting(kind: .variable, name: $0.0, direction: nil)), $0.1, "--variable \($0.0)") }
        try Admin.validate(fields)
        for (n, _) in params {
            if let w = FieldValidation.unknownParamWarning(at(.setting(kind: .param, name: n, direction: nil)), name: n) { Admin.warn(w) }
        }
    }

    static func pairs(_ list: [String], _ option: String) throws -> [(String, String)] {
        try list.map { item in
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw CLIFailure("--\(option) takes NAME=VALUE, got \(item)", code: CLIFailure.Code.invalid)
            }
            return (String(item[..<eq]), String(item[item.index(after: eq)...]))
        }
    }

    static func removal(_ steps: [String], summary: String) throws -> PreparedWrite {
        try removal(FieldPath(steps.map { FieldPath.Step($0) }), summary: summary)
    }

    /// The typed removes: the entity at `path`, with everything inside.
    static func removal(_ path: FieldPath, summary: String) throws -> PreparedWrite {
        let address: FieldAddress
        do { address = try FieldAddress.resolve(path) } catch {
            throw CLIFailure("\(path): \(error.description)", code: CLIFailure.Code.invalid)
        }
        return PreparedWrite(summary: summary) { conn in
            let written = try FieldStore(conn).unset(address, expect: nil)
            return PreparedWrite.Done(line: "removed \(written.path)")
        }
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
