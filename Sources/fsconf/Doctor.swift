import ArgumentParser
import FSConfAdminCore
import FSConfAdminStore
import FSConfCore
import FSConfEmbedded
import FSConfNode
import FSConfStore
import Foundation

extension Fsconf {
    struct Doctor: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check this node end to end; print each check and the fix for each failure.",
            discussion: """
                Checks, in order: library, shim, lua.conf, database, schema, read-only,
                lookup, event socket, cacheable, clock (docs/operations.md). Paths are
                found the way FreeSWITCH finds them: lua.conf.xml names the shim, and
                the shim names the library and the database settings. Run it as root:
                it then uses FreeSWITCH's user's ~/.pgpass, as the library does inside
                FreeSWITCH.
                Exit codes: 0 no check failed; 1 a check failed; 2 invalid options.
                """)

        @Option(help: ArgumentHelp("mod_lua's configuration file (default: the first of \(Fsconf.Node.NodeInstall.luaConfs.joined(separator: ", ")) that exists).",
                                   valueName: "file"))
        var luaConf: String?
        @Option(help: ArgumentHelp("FreeSWITCH's script folder, for a relative xml-handler-script.", valueName: "dir"))
        var scriptsDir: String?
        @Option(help: ArgumentHelp("The shim (default: lua.conf.xml's xml-handler-script).", valueName: "file"))
        var shim: String?
        @Option(help: ArgumentHelp("The node library (default: the one the shim loads).", valueName: "file"))
        var library: String?
        @Option(help: ArgumentHelp("The Lua interpreter that loads the library (mod_lua's Lua is 5.3).", valueName: "path"))
        var lua = "lua5.3"
        @Option(help: ArgumentHelp("A user the lookup check asks for (default: the first enabled user stored).", valueName: "user@domain"))
        var user: String?
        @Flag(help: "This node runs no fsconf agent: skip the event socket and cacheable checks.")
        var noAgent = false
        @Option(help: "The agent's event socket host.") var eslHost = "127.0.0.1"
        @Option(help: "The agent's event socket port.") var eslPort = 8021
        @Option(help: ArgumentHelp("The agent's event socket password file (else FSCONF_ESL_PASSWORD).", valueName: "file"))
        var eslPasswordFile = "/etc/fsconf/esl-password"
        @Option(help: ArgumentHelp("FreeSWITCH's system user: run as root, the doctor uses its ~/.pgpass and ~/.pg_service.conf.",
                                   valueName: "name"))
        var freeswitchUser = "freeswitch"
        @Option(help: "Largest tolerated difference between this node's clock and the database's, in milliseconds.")
        var maxClockSkewMs = 1000

        func validate() throws {
            if let user, DoctorChecks.splitUser(user) == nil { throw ValidationError("--user takes USER@DOMAIN") }
            if !(1...65535).contains(eslPort) { throw ValidationError("--esl-port takes 1...65535") }
            if maxClockSkewMs < 1 { throw ValidationError("--max-clock-skew-ms takes a positive number") }
        }

        func run() throws {
            let credentials = DoctorChecks.useCredentials(of: freeswitchUser)
            let luaPath = DoctorChecks.findProgram(lua)
            let scripts = scriptsDir ?? InstallFiles.firstExisting(Fsconf.Node.NodeInstall.scriptDirs)

            // Follow FreeSWITCH: lua.conf.xml → shim → library and settings.
            let confPath = luaConf ?? InstallFiles.firstExisting(Fsconf.Node.NodeInstall.luaConfs)
            let (confCheck, boundScript) = DoctorChecks.luaConf(path: confPath, scriptsDir: scripts, expectedShim: shim)
            let shimPath = shim ?? boundScript ?? scripts.map { $0 + "/fsconf.lua" } ?? "/usr/share/freeswitch/scripts/fsconf.lua"
            let parsed = DoctorChecks.readShim(shimPath)
            let libraryPath = library ?? parsed?.library ?? InstallFiles.defaultLibrary

            var results: [DoctorCheck] = []
            let libraryCheck = DoctorChecks.library(path: libraryPath, lua: luaPath)
            results.append(libraryCheck)
            let shimCheck = DoctorChecks.shim(path: shimPath, library: libraryPath,
                                              lua: libraryCheck.status == .pass ? luaPath : nil)
            results.append(shimCheck)
            results.append(confCheck)

            let settings = parsed.flatMap { try? DoctorChecks.settings(of: $0).get() }
            var conn: PGConnection?
            if let settings {
                let (check, c) = DoctorChecks.database(settings: settings, credentials: credentials)
                results.append(check)
                conn = c
            } else {
                results.append(.skip("database", "the shim's database settings could not be read (see shim)"))
            }
            let needsDB = "the database is unreachable"
            if let conn {
                results.append(DoctorChecks.schema(conn, expected: parsed?.schema ?? SchemaVersion.current))
                results.append(DoctorChecks.readOnly(conn))
            } else {
                results.append(.skip("schema", needsDB))
                results.append(.skip("read-only", needsDB))
            }
            if conn == nil {
                results.append(.skip("lookup", needsDB))
            } else if shimCheck.status != .pass {
                results.append(.skip("lookup", "the shim check failed"))
            } else if let conn {
                let known = user.flatMap(DoctorChecks.splitUser) ?? DoctorChecks.knownUser(conn)
                results.append(DoctorChecks.lookup(lua: luaPath, shim: shimPath, user: known))
            }
            if noAgent {
                results.append(.skip("event socket", "--no-agent"))
                results.append(.skip("cacheable", "--no-agent"))
            } else {
                let password = (try? String(contentsOfFile: eslPasswordFile, encoding: .utf8))
                    .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                    ?? ProcessInfo.processInfo.environment["FSCONF_ESL_PASSWORD"]
                results.append(DoctorChecks.eventSocket(host: eslHost, port: eslPort, password: password,
                                                        passwordFile: eslPasswordFile))
                results.append(conn.map { DoctorChecks.cacheable($0) } ?? .skip("cacheable", needsDB))
            }
            results.append(conn.map { DoctorChecks.prerendered($0) } ?? .skip("prerendered", needsDB))
            results.append(conn.map { DoctorChecks.clock($0, maxSkewMs: maxClockSkewMs) } ?? .skip("clock", needsDB))

            for r in results { print(r.rendered) }
            let failed = results.filter { $0.status == .fail }.count
            let skipped = results.filter { $0.status == .skip }.count
            print("\(results.count) checks: \(results.count - failed - skipped) passed, \(failed) failed, \(skipped) skipped")
            if failed > 0 { throw ExitCode(CLIFailure.Code.failed) }
        }
    }
}

/// One check's verdict. A failure carries the fix.
struct DoctorCheck: Equatable {
    enum Status: String { case pass = "PASS", fail = "FAIL", skip = "SKIP" }
    var name: String
    var status: Status
    var detail: String
    var fix: String?

    static func pass(_ name: String, _ detail: String) -> DoctorCheck { DoctorCheck(name: name, status: .pass, detail: detail) }
    static func fail(_ name: String, _ detail: String, fix: String) -> DoctorCheck {
        DoctorCheck(name: name, status: .fail, detail: detail, fix: fix)
    }
    static func skip(_ name: String, _ reason: String) -> DoctorCheck { DoctorCheck(name: name, status: .skip, detail: reason) }

    var rendered: String {
        var text = "[\(status.rawValue)] \(name): \(detail)"
        if let fix { text += "\n       fix: \(fix)" }
        return text
    }
}

/// The checks, each a function of its inputs (paths, a connection, an address),
/// so that tests drive each one against real files, databases and sockets.
enum DoctorChecks {
    static let restart = "then restart FreeSWITCH (mod_lua reads lua.conf.xml once)"

    // MARK: lua.conf.xml

    /// Checks mod_lua's settings; returns the check and the script it binds (absolute).
    static func luaConf(path: String?, scriptsDir: String?, expectedShim: String?) -> (DoctorCheck, String?) {
        let name = "lua.conf"
        guard let path else {
            return (.fail(name, "lua.conf.xml not found (tried \(Fsconf.Node.NodeInstall.luaConfs.joined(separator: ", ")))",
                          fix: "give --lua-conf FILE (FreeSWITCH's conf/autoload_configs/lua.conf.xml)"), nil)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            return (.fail(name, "cannot read \(path)", fix: "run fsconf doctor as root, or give --lua-conf FILE"), nil)
        }
        let text = String(decoding: data, as: UTF8.self)
        do { _ = try XMLTreeParser.parse(text) } catch {
            return (.fail(name, "\(path) is not well-formed XML (\(error.description))",
                          fix: "fix the file: FreeSWITCH cannot read mod_lua's settings from it"), nil)
        }
        let file = LuaConfFile(text)
        func absolute(_ script: String) -> String? {
            script.hasPrefix("/") ? script : scriptsDir.map { $0 + "/" + script }
        }
        switch file.handler() {
        case .failure(let problem):
            // The script mod_lua would run, if named, is still the shim to check.
            let named = file.handlerParams.first { $0.name == LuaConfFile.scriptParam }
                .flatMap { $0.value.split(separator: " ").first.map(String.init) }.flatMap(absolute)
            let fix: String
            switch problem {
            case .none: fix = "run fsconf node install (or add the two lines fsconf shim prints to <settings>), \(restart)"
            case .duplicate: fix = "keep one xml-handler-script and one xml-handler-bindings (fsconf node install --force does), \(restart)"
            case .bindingsFirst: fix = "put xml-handler-script before xml-handler-bindings, \(restart)"
            case .noBindings:
                fix = "add <param name=\"xml-handler-bindings\" value=\"\(ShimOptions.defaultBindings)\"/> after the script, \(restart)"
            case .directoryWithoutConfiguration:
                fix = "bind configuration too: value=\"\(ShimOptions.defaultBindings)\" (fsconf node install writes it); the first lookup (sofia.conf) then happens earlier, on one thread; \(restart)"
            }
            return (.fail(name, "\(path): \(problem.description)", fix: fix), named)
        case .success(let handler):
            guard let script = absolute(handler.script) else {
                return (.fail(name, "\(path) binds \(handler.script), relative to FreeSWITCH's script folder, which was not found",
                              fix: "give --scripts-dir (fs_cli -x 'global_getvar script_dir')"), nil)
            }
            if let expectedShim, standardized(expectedShim) != standardized(script) {
                return (.fail(name, "\(path) binds \(script), not the shim \(expectedShim)",
                              fix: "fsconf node install (binds the shim it writes), \(restart)"), script)
            }
            return (.pass(name, "\(path) binds \(script) for \(handler.bindings.joined(separator: ","))"), script)
        }
    }

    static func standardized(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    // MARK: The library and the shim

    static func library(path: String, lua: String?) -> DoctorCheck {
        let name = "library"
        let reinstall = "install the fsconf-node package (or fsconf node install --from a library built by scripts/package)"
        guard FileManager.default.fileExists(atPath: path) else {
            return .fail(name, "\(path) does not exist", fix: reinstall)
        }
        if let problem = Fsconf.Node.NodeInstall.libraryProblem(path) {
            return .fail(name, "\(path): \(problem)", fix: reinstall)
        }
        guard let lua else {
            return .pass(name, "\(path) exports fsconf_xml_handler and luaopen_fsconf, -z nodelete, Swift runtime linked in (inspected, not loaded: lua5.3 not found; apt install lua5.3 to test loading it)")
        }
        let probe = runProbe(lua, ["library", path])
        guard let probe else { return .fail(name, "\(lua) did not run the probe", fix: "check \(lua) runs: \(lua) -v") }
        for entry in ["luaopen_fsconf", "fsconf_xml_handler"] where probe.values[entry] != "ok" {
            let error = probe.values[entry] ?? probe.output
            let fix = error.contains("cannot open shared object file") && !error.hasPrefix(path)
                ? "install the libraries it needs: apt install libpq5 libpcre2-8-0 liblz4-1"
                : reinstall
            return .fail(name, "\(lua) cannot load \(entry) from \(path): \(error)", fix: fix)
        }
        return .pass(name, "\(path) loads in \(URL(fileURLWithPath: lua).lastPathComponent) (fsconf \(probe.values["version"] ?? "?")), exports fsconf_xml_handler and luaopen_fsconf, -z nodelete, Swift runtime linked in")
    }

    /// The shim's settings as the library reads them (the conninfo file included).
    static func settings(of shim: ShimFile) -> Result<NodeSettings, NodeError> {
        NodeSettings.values(fromText: shim.settings).flatMap { NodeSettings.from($0, readFile: { readSmallFile($0) }) }
    }

    static func readShim(_ path: String) -> ShimFile? {
        FileManager.default.contents(atPath: path).flatMap { ShimFile.parse(String(decoding: $0, as: UTF8.self)) }
    }

    /// The shim loads `library` and passes settings it accepts, for its schema.
    /// `lua` nil: the library is not loaded; the schema is compared with this fsconf's.
    static func shim(path: String, library: String, lua: String?) -> DoctorCheck {
        let name = "shim"
        let regenerate = "fsconf node install (regenerates the shim for this node's library)"
        guard FileManager.default.fileExists(atPath: path) else {
            return .fail(name, "\(path) does not exist", fix: regenerate)
        }
        guard let shim = readShim(path) else {
            return .fail(name, "\(path) is not a shim of this fsconf's format (an older one, or edited by hand)", fix: regenerate)
        }
        if standardized(shim.library) != standardized(library) {
            return .fail(name, "\(path) loads \(shim.library), not \(library)", fix: "fsconf node install --library \(library)")
        }
        if case .failure(let error) = settings(of: shim) {
            return .fail(name, "\(path): \(error.description)", fix: "fsconf node install with valid options (fsconf node install --help)")
        }
        let schema = shim.schema.map(String.init) ?? "none"
        let by = shim.generatedBy.map { ", generated by fsconf \($0)" } ?? ""
        guard let lua else {
            if shim.schema != SchemaVersion.current {
                return .fail(name, "\(path) was generated for schema \(schema); this fsconf reads schema \(SchemaVersion.current)", fix: regenerate)
            }
            return .pass(name, "\(path) loads \(library) for schema \(schema)\(by) (compared with this fsconf; the library was not loaded)")
        }
        guard let probe = runProbe(lua, ["library", library, shim.settings]) else {
            return .fail(name, "\(lua) did not run the probe", fix: "check \(lua) runs: \(lua) -v")
        }
        if let verdict = probe.values["settings"], verdict != "ok" {
            return .fail(name, "the library refuses \(path): \(verdict)", fix: regenerate)
        }
        guard probe.values["settings"] == "ok" else {
            return .fail(name, "the library did not answer for \(path): \(probe.output)", fix: regenerate)
        }
        return .pass(name, "\(path) loads \(library) for schema \(schema)\(by); the library accepts its settings")
    }

    // MARK: The database

    /// Run as root, libpq would read root's ~/.pgpass: point it at FreeSWITCH's
    /// user's files (unless set), as the library sees them inside FreeSWITCH.
    /// Returns what was used, for the report.
    static func useCredentials(of user: String) -> String {
        guard getuid() == 0, let pw = getpwnam(user), let dir = pw.pointee.pw_dir else {
            return "credentials of user \(NSUserName())"
        }
        let home = String(cString: dir)
        var used: [String] = []
        for (variable, file) in [("PGPASSFILE", ".pgpass"), ("PGSERVICEFILE", ".pg_service.conf")]
        where getenv(variable) == nil && FileManager.default.fileExists(atPath: home + "/" + file) {
            setenv(variable, home + "/" + file, 1)
            used.append("\(home)/\(file)")
        }
        return used.isEmpty ? "no ~/.pgpass of user \(user)" : "credentials of user \(user) (\(used.joined(separator: ", ")))"
    }

    static func database(settings: NodeSettings, credentials: String) -> (DoctorCheck, PGConnection?) {
        let name = "database"
        var conninfo = settings.effectiveConninfo
        if !conninfo.contains("connect_timeout") { conninfo = NodeSettings.appending(conninfo, "connect_timeout", "5") }
        do {
            let conn = try PGConnection(conninfo: conninfo)
            let r = try conn.query("""
                SELECT current_user, coalesce(host(inet_server_addr()) || ':' || inet_server_port(), 'the local socket'),
                       current_setting('server_version'), pg_is_in_recovery()
                """)
            let role = r.string(0, 0) ?? "?", server = r.string(0, 1) ?? "?", version = r.string(0, 2) ?? "?"
            let standby = r.bool(0, 3) == true ? "standby" : "primary"
            return (.pass(name, "connected as \(role) to \(server) (\(standby), PostgreSQL \(version)) with the shim's settings, \(credentials)"), conn)
        } catch {
            let message = String(describing: error)
            let fix: String
            if message.contains("password authentication failed") || message.contains("no password supplied") {
                fix = "give the node role's password in FreeSWITCH's user's ~/.pgpass (mode 0600) or in the shim's conninfo file (docs/operations.md, Security)"
            } else if message.contains("pg_hba.conf") {
                fix = "add a pg_hba.conf line for this node on every server, e.g. hostssl fsconf fs_node 10.0.0.0/24 scram-sha-256, and reload PostgreSQL"
            } else if message.contains("definition of service") {
                fix = "define the service in /etc/postgresql-common/pg_service.conf (or FreeSWITCH's user's ~/.pg_service.conf)"
            } else if message.contains("does not exist") {
                fix = "create the role or database it names (docs/operations.md, Quick start), or fix the shim's settings"
            } else {
                fix = "check that PostgreSQL runs and accepts connections at the shim's host and port (listen_addresses, firewall); docs/troubleshooting.md"
            }
            return (.fail(name, "cannot connect with the shim's settings (\(credentials)): \(message)", fix: fix), nil)
        }
    }

    static func schema(_ conn: PGConnection, expected: Int) -> DoctorCheck {
        let name = "schema"
        do {
            let r = try conn.query("SELECT coalesce(max(version), 0) FROM fsconf.schema_migrations")
            let version = r.int(0, 0) ?? 0
            if version == expected { return .pass(name, "the database is at schema \(version), as the shim and library expect") }
            if version > expected {
                return .fail(name, "the database is at schema \(version); this node's shim and library read schema \(expected)",
                             fix: "upgrade fsconf on this node (the fsconf-node and fsconf packages), then fsconf node install (docs/operations.md, Upgrades)")
            }
            return .fail(name, "the database is at schema \(version); this node's shim and library read schema \(expected)",
                         fix: "apply the pending migrations centrally (fsconf migrate up, as the owner role), or install the fsconf release that matches the database")
        } catch {
            let state = error.sqlState
            if state == "42P01" || state == "3F000" {
                return .fail(name, "the database holds no fsconf schema", fix: "fsconf migrate up, as the owner role (docs/operations.md, Quick start)")
            }
            if state == "42501" {
                return .fail(name, "the node role may not read fsconf.schema_migrations: \(error)",
                             fix: "fsconf grant reader ROLE (as the owner role)")
            }
            return .fail(name, "cannot read the schema version: \(error)", fix: "docs/troubleshooting.md")
        }
    }

    static func readOnly(_ conn: PGConnection) -> DoctorCheck {
        let name = "read-only"
        do {
            let role = try conn.query("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
            let user = role.string(0, 0) ?? "?"
            if role.bool(0, 1) == true {
                return .fail(name, "the node logs in as \(user), a superuser",
                             fix: "log nodes in with a role that is only a member of fsconf_reader (docs/operations.md, Security)")
            }
            let writable = try conn.query("""
                SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'fsconf' AND c.relkind IN ('r', 'p')
                  AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')
                       OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'))
                ORDER BY 1
                """)
            let tables = (0..<writable.rowCount).compactMap { writable.string($0, 0) }
            let create = try conn.query("SELECT has_schema_privilege('fsconf', 'CREATE')").bool(0, 0) == true
            if tables.isEmpty && !create {
                return .pass(name, "\(user) can write no fsconf table")
            }
            var what = tables.isEmpty ? "" : "can write \(tables.count) fsconf table(s) (\(tables.prefix(4).joined(separator: ", "))\(tables.count > 4 ? ", …" : ""))"
            if create { what += (what.isEmpty ? "" : " and ") + "may create objects in schema fsconf" }
            return .fail(name, "\(user) \(what)",
                         fix: "log nodes in with a role that is only a member of fsconf_reader: REVOKE fsconf_writer FROM \(user), and revoke any direct grants (docs/operations.md, Security)")
        } catch {
            return .fail(name, "cannot read the node role's privileges: \(error)", fix: "docs/troubleshooting.md")
        }
    }

    // MARK: A lookup

    static func splitUser(_ text: String) -> (user: String, domain: String)? {
        guard let at = text.lastIndex(of: "@") else { return nil }
        let user = String(text[..<at]), domain = String(text[text.index(after: at)...])
        return user.isEmpty || domain.isEmpty ? nil : (user, domain)
    }

    /// The first enabled user whose id and domain name need no node-only `$${}` value.
    static func knownUser(_ conn: PGConnection) -> (user: String, domain: String)? {
        guard let r = try? conn.query("""
            SELECT u.user_id, d.name FROM fsconf.users u JOIN fsconf.domains d ON d.id = u.domain_id
            WHERE u.enabled ORDER BY (u.user_id LIKE '%$${%' OR d.name LIKE '%$${%'), d.position, d.id, u.position, u.id
            LIMIT 1
            """), r.rowCount == 1, let user = r.string(0, 0), let domain = r.string(0, 1) else { return nil }
        guard VariableExpander.hasReference(user + domain) else { return (user, domain) }
        var globals: [String: String] = [:]
        if let g = try? conn.query("SELECT name, value FROM fsconf.global_variables") {
            for i in 0..<g.rowCount { if let n = g.string(i, 0), let v = g.string(i, 1) { globals[n] = v } }
        }
        var expander = VariableExpander(globals: globals)
        let u = expander.expand(user), d = expander.expand(domain)
        return u.isEmpty || d.isEmpty ? nil : (u, d)
    }

    static func lookup(lua: String?, shim: String, user: (user: String, domain: String)?) -> DoctorCheck {
        let name = "lookup"
        guard let user else {
            return .fail(name, "no enabled user stored to ask for", fix: "give --user USER@DOMAIN, or import a directory (fsconf import)")
        }
        guard let lua else {
            return .fail(name, "lua5.3 not found: the lookup runs the shim with it", fix: "apt install lua5.3, or give --lua PATH")
        }
        let who = "\(user.user)@\(user.domain)"
        guard let probe = runProbe(lua, ["lookup", shim, user.domain, user.user]) else {
            return .fail(name, "\(lua) did not run the probe", fix: "check \(lua) runs: \(lua) -v")
        }
        let logged = probe.logs.isEmpty ? "" : "; logged: \(probe.logs.joined(separator: " | "))"
        if let error = probe.values["error"] {
            return .fail(name, "the shim failed for \(who): \(error)", fix: "fsconf node install (regenerates the shim)")
        }
        let xml = probe.xml
        if xml.contains("<user ") && xml.contains("id=\"\(XMLWriter.escape(user.user))\"") {
            return .pass(name, "a REGISTER lookup of \(who) through the shim and library answers its <user> (\(xml.utf8.count) bytes)\(logged)")
        }
        if xml.isEmpty {
            return .fail(name, "no answer for \(who)\(logged)",
                         fix: "the logged line says why (docs/troubleshooting.md); a shim relying on libpq's environment needs the same PG* variables here as in FreeSWITCH")
        }
        let check = "check the name with fsconf render directory \(user.domain) \(user.user), or give --user USER@DOMAIN"
        if xml == FreeSWITCHDocument.notFound {
            return .fail(name, "domain \(user.domain) is not found (FreeSWITCH would try its files)\(logged)", fix: check)
        }
        return .fail(name, "\(who) is not found: the answer holds the domain without the user (FreeSWITCH refuses the REGISTER)\(logged)",
                     fix: check)
    }

    // MARK: The agent's side

    static func eventSocket(host: String, port: Int, password: String?, passwordFile: String) -> DoctorCheck {
        let name = "event socket"
        guard let password, !password.isEmpty else {
            return .fail(name, "no event socket password: \(passwordFile) is missing or unreadable and FSCONF_ESL_PASSWORD is unset",
                         fix: "put event_socket.conf.xml's password in \(passwordFile) (root-only, mode 0600), or give --no-agent on a node without the agent")
        }
        do {
            let socket = try EventSocket(host: host, port: port, password: password, timeoutMs: 3000)
            defer { socket.close() }
            let status = try socket.api("status")
            let first = status.split(whereSeparator: \.isNewline).first.map(String.init) ?? "(empty)"
            let stock = password == "ClueCon" ? "; it is FreeSWITCH's stock password ClueCon: change it in event_socket.conf.xml and \(passwordFile)" : ""
            return .pass(name, "\(host):\(port) accepts the agent's password; FreeSWITCH: \(first)\(stock)")
        } catch {
            let message = String(describing: error)
            let fix = message.contains("refused the password")
                ? "make \(passwordFile) hold the password of FreeSWITCH's event_socket.conf.xml"
                : "start FreeSWITCH with mod_event_socket listening at \(host):\(port) (event_socket.conf.xml listen-ip, listen-port), or give the agent's --esl-host/--esl-port here"
            return .fail(name, "\(host):\(port): \(message)", fix: fix)
        }
    }

    static func cacheable(_ conn: PGConnection) -> DoctorCheck {
        let name = "cacheable"
        do {
            let r = try conn.query("SELECT name, cacheable FROM fsconf.domains ORDER BY position, id")
            if r.rowCount == 0 { return .skip(name, "no domains stored") }
            let missing = (0..<r.rowCount).filter { r.isNull($0, 1) }.compactMap { r.string($0, 0) }
            if missing.isEmpty {
                let values = Set((0..<r.rowCount).compactMap { r.string($0, 1) }).sorted()
                return .pass(name, "\(r.rowCount) domain(s) cacheable (\(values.joined(separator: ", "))): FreeSWITCH keeps users until the agent flushes them")
            }
            let list = missing.prefix(5).joined(separator: ", ") + (missing.count > 5 ? " and \(missing.count - 5) more" : "")
            return .fail(name, "\(missing.count) of \(r.rowCount) domain(s) not cacheable: \(list); every REGISTER of their users runs the shim",
                         fix: "with the agent running, give each a long lifetime: fsconf set directory/\(missing[0])/@cacheable 2147483 (docs/agent.md)")
        } catch {
            return .fail(name, "cannot read fsconf.domains: \(error)", fix: "fsconf grant reader ROLE (as the owner role)")
        }
    }

    /// Contexts nodes read as one stored document (DialplanPrerender) or, after a
    /// change made in SQL, as rows until a writer renders them again.
    static func prerendered(_ conn: PGConnection) -> DoctorCheck {
        let name = "prerendered"
        do {
            let store = PrerenderStore(conn)
            let behind = try store.fixedIDsBehind()
            if behind > 0 {
                return .fail(name, "\(behind) $${…}-named user(s) in fsconf.fixed_user_ids differ from the globals (written with triggers disabled): lookups may leave them out",
                             fix: "fsconf prerender --all (as a writer)")
            }
            let (total, stale, stored) = try store.counts()
            if total == 0 { return .skip(name, "no dialplan or chatplan contexts stored") }
            if stale > 0 {
                return .fail(name, "\(stale) of \(total) context(s) changed (in SQL, or by an older fsconf) since they were rendered: nodes read them row by row",
                             fix: "fsconf prerender (as a writer; every fsconf write also renders them)")
            }
            return .pass(name, "\(stored) of \(total) context(s) served as one stored document; \(total - stored) read as rows (`fsconf prerender` says why)")
        } catch {
            return .fail(name, "cannot read fsconf.prerendered_contexts: \(error)", fix: "fsconf migrate up; fsconf grant reader ROLE (as the owner role)")
        }
    }

    static func clock(_ conn: PGConnection, maxSkewMs: Int,
                      now: () -> Double = { Date().timeIntervalSince1970 }) -> DoctorCheck {
        let name = "clock"
        let before = now()
        guard let r = try? conn.query("SELECT extract(epoch FROM clock_timestamp())::float8"),
              let server = r.string(0, 0).flatMap(Double.init) else {
            return .fail(name, "cannot read the database's clock", fix: "docs/troubleshooting.md")
        }
        let after = now()
        let local = (before + after) / 2
        let skew = server - local                       // positive: this node is behind
        let uncertainty = (after - before) / 2
        let skewMs = Int((abs(skew) * 1000).rounded())
        if abs(skew) - uncertainty > Double(maxSkewMs) / 1000 {
            return .fail(name, "this node's clock is \(skewMs) ms \(skew > 0 ? "behind" : "ahead of") the database's",
                         fix: "synchronise the clocks of nodes and database servers (timedatectl set-ntp true, or chrony): history, logs and the agent's reports are compared by time")
        }
        return .pass(name, "within \(skewMs) ms of the database's (tolerance \(maxSkewMs) ms)")
    }

    // MARK: Running the probe

    struct Probe {
        var values: [String: String] = [:]
        var logs: [String] = []
        var xml = ""
        var output = ""
    }

    /// A program name looked up on PATH, or a path; nil when not found.
    static func findProgram(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        return nil
    }

    /// Runs lua/doctor.lua.in with `lua` (stdin), killed after `timeout` seconds.
    static func runProbe(_ lua: String, _ arguments: [String], timeout: Double = 30) -> Probe? {
        guard let script = BundledTemplates.named("doctor.lua.in") else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: lua)
        process.arguments = ["-"] + arguments
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        do { try process.run() } catch { return nil }
        let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        input.fileHandleForWriting.write(Data(script.utf8))
        try? input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        timer.cancel()
        var probe = Probe(output: String(decoding: data, as: UTF8.self))
        if let range = probe.output.range(of: "xml=") , probe.output[..<range.lowerBound].hasSuffix("\n") || range.lowerBound == probe.output.startIndex {
            probe.xml = String(probe.output[range.upperBound...]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        for line in probe.output.split(separator: "\n") {
            if line.hasPrefix("xml=") { break }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<eq]), value = String(line[line.index(after: eq)...])
            if key == "log" { probe.logs.append(value) } else { probe.values[key] = value }
        }
        return probe
    }
}
