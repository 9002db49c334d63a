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
            let exists = try conn.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role])
            guard exists.rowCount == 1 else {
                throw CLIFailure("role \(role) does not exist", code: CLIFailure.Code.notFound)
            }
            // Role names cannot be bind parameters; they are quoted by libpq.
            let group = access == .reader ? "fsconf_reader" : "fsconf_writer"
            try conn.execute("GRANT \(group) TO \(conn.quoteIdentifier(role))")
            // Tables added by later migrations: make sure the group roles reach them.
            try conn.execute("""
                GRANT USAGE ON SCHEMA fsconf TO fsconf_reader, fsconf_writer;
                GRANT SELECT ON ALL TABLES IN SCHEMA fsconf TO fsconf_reader;
                GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA fsconf TO fsconf_writer;
                GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA fsconf TO fsconf_writer;
                REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON fsconf.schema_migrations FROM fsconf_writer;
                DO $$ BEGIN
                    -- Node status rows are written by fsconf.report_node only (migration 0008).
                    IF to_regclass('fsconf.nodes') IS NOT NULL THEN
                        REVOKE INSERT, UPDATE, TRUNCATE ON fsconf.nodes FROM fsconf_writer;
                    END IF;
                END $$;
                """)
            print("granted \(group) to \(role)")
        }
    }
}
