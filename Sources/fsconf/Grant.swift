import ArgumentParser
import FSConfAdminStore
import FSConfStore

extension Fsconf {
    struct Grant: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a database role read access (nodes) or write access (admins).",
            discussion: """
                Nodes should log in with a role that is only a member of fsconf_reader:
                it can read every table and write none. Create the login role first, e.g.
                  CREATE ROLE fs_node LOGIN PASSWORD '...';
                then: fsconf grant reader fs_node
                """)

        enum Access: String, ExpressibleByArgument, CaseIterable { case reader, writer }

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "reader or writer.") var access: Access
        @Argument(help: "The existing role to grant it to.") var role: String

        func execute() throws {
            let conn = try connection.connect()
            try Roles.grant(conn, access == .reader ? .reader : .writer, to: role)
            let group = access == .reader ? "fsconf_reader" : "fsconf_writer"
            print("granted \(group) to \(role)")
        }
    }
}
