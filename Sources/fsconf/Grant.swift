import ArgumentParser
import FSConfAdminCore
import FSConfAdminStore
import FSConfCore
import FSConfStore

extension Fsconf {
    struct Grant: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the group roles, or give a role read access (nodes) or write access (admins).",
            discussion: """
                fsconf grant roles
                  creates fsconf_reader and fsconf_writer when you may (CREATEROLE), and
                  grants them the fsconf tables. Without CREATEROLE it prints the exact
                  SQL for a DBA to run and exits 1; `fsconf migrate` never needs it.
                fsconf grant reader|writer ROLE
                  makes the existing ROLE a member of fsconf_reader or fsconf_writer.
                Nodes should log in with a role that is only a member of fsconf_reader:
                  CREATE ROLE fs_node LOGIN PASSWORD '...';
                  fsconf grant reader fs_node
                """)

        enum Access: String, ExpressibleByArgument, CaseIterable { case roles, reader, writer }

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "roles, reader or writer.") var access: Access
        @Argument(help: "The existing role to grant reader or writer to.") var role: String?

        func validate() throws {
            switch access {
            case .roles where role != nil: throw ValidationError("`grant roles` takes no role")
            case .reader, .writer:
                if role == nil { throw ValidationError("say which role: fsconf grant \(access.rawValue) ROLE") }
            case .roles: break
            }
        }

        func execute() throws {
            let conn = try connection.connect()
            let missing = try Roles.missingGroupRoles(conn)
            guard let role else { return try createRoles(conn, missing: missing) }
            guard try Roles.exists(conn, role) else {
                throw CLIFailure("role \(role) does not exist", code: CLIFailure.Code.notFound)
            }
            let group = access == .reader ? Privileges.reader : Privileges.writer
            if missing.contains(group) {
                throw CLIFailure("role \(group) does not exist yet: run `fsconf grant roles` first", code: CLIFailure.Code.notFound)
            }
            if let refused = try Roles.grantMembership(conn, group, to: role) {
                print("-- run as a role with CREATEROLE, or with ADMIN OPTION on \(group):\n\(refused.statement);")
                throw CLIFailure("you may not hand out \(group) (\(refused.reason)): the SQL for a DBA is above",
                                 code: CLIFailure.Code.failed)
            }
            try Roles.grantTables(conn)
            print("granted \(group) to \(role)")
        }

        /// Creates the missing group roles when the caller may; otherwise prints the SQL.
        private func createRoles(_ conn: PGConnection, missing: [String]) throws {
            if !missing.isEmpty {
                guard try Roles.mayCreateRoles(conn) else {
                    let me = try Roles.session(conn)
                    print("-- run in database \(me.database) as a role with CREATEROLE (e.g. postgres):")
                    print(Privileges.dbaScript(missing: missing, owner: conn.quoteIdentifier(me.user)), terminator: "")
                    print(Privileges.grantStatement + ";")
                    throw CLIFailure("\(me.user) may not create roles (no CREATEROLE): "
                                     + "the SQL for a DBA is above; fsconf migrate works without it",
                                     code: CLIFailure.Code.failed)
                }
                for name in missing {
                    try Roles.create(conn, name)
                    print("created role \(name)")
                }
            }
            try Roles.grantTables(conn)
            print("granted \(Privileges.roles.joined(separator: " and ")) on schema fsconf")
        }
    }
}
