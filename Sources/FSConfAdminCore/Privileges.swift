import FSConfCore

/// The cluster-wide group roles and what they may do, as SQL. Nothing here runs:
/// `fsconf grant` and `fsconf migrate up` execute it, or print it for a DBA.
///
/// Least privilege: migrations run as the role that owns the database, which needs
/// neither SUPERUSER nor CREATEROLE. Creating `fsconf_reader`/`fsconf_writer` is a
/// separate step (`fsconf grant roles`) because roles are cluster-wide: only a role
/// with CREATEROLE may create them. Granting them the tables is the owner's right,
/// so the owner does that, after every migration, whenever the roles exist.
public enum Privileges {
    public static let reader = "fsconf_reader"
    public static let writer = "fsconf_writer"
    public static let roles = [reader, writer]

    /// `CREATE ROLE` for one group role (it never logs in).
    public static func createRole(_ name: String) -> String { "CREATE ROLE \(name) NOLOGIN" }

    /// What each existing group role is granted on schema `fsconf`. Idempotent; run by
    /// the schema's owner. Wrapped so that a missing role is skipped, not an error:
    /// `migrate up` runs it whether or not the roles were created yet.
    public static let grantStatement = """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsconf_reader') THEN
                GRANT USAGE ON SCHEMA fsconf TO fsconf_reader;
                GRANT SELECT ON ALL TABLES IN SCHEMA fsconf TO fsconf_reader;
                -- A node's one write: its own status row (migration 0008).
                IF to_regprocedure('fsconf.report_node(text, text, text, bigint, text, text)') IS NOT NULL THEN
                    GRANT EXECUTE ON FUNCTION fsconf.report_node(text, text, text, bigint, text, text) TO fsconf_reader;
                END IF;
            END IF;
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fsconf_writer') THEN
                GRANT USAGE ON SCHEMA fsconf TO fsconf_writer;
                GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA fsconf TO fsconf_writer;
                GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA fsconf TO fsconf_writer;
                -- Only `fsconf migrate` (the schema owner) records migrations.
                REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON fsconf.schema_migrations FROM fsconf_writer;
                -- Node status rows are written by fsconf.report_node only; admins may delete one.
                IF to_regclass('fsconf.nodes') IS NOT NULL THEN
                    REVOKE INSERT, UPDATE, TRUNCATE ON fsconf.nodes FROM fsconf_writer;
                END IF;
                -- Earlier secret values (migration 0005): writers, never readers.
                IF to_regnamespace('fsconf_private') IS NOT NULL THEN
                    GRANT USAGE ON SCHEMA fsconf_private TO fsconf_writer;
                    GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA fsconf_private TO fsconf_writer;
                END IF;
            END IF;
        END
        $$
        """

    /// The SQL a DBA (a role with CREATEROLE) runs when the owner may not create the
    /// group roles: the missing roles, and the owner's right to hand them out
    /// (`fsconf grant reader ROLE` then works for the owner). `owner` is already
    /// quoted as an identifier.
    public static func dbaScript(missing: [String], owner: String) -> String {
        var out = ""
        for role in missing { out += createRole(role) + ";\n" }
        out += "GRANT \(roles.joined(separator: ", ")) TO \(owner) WITH ADMIN OPTION;\n"
        return out
    }
}
