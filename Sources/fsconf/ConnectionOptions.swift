import ArgumentParser
import Foundation
import FSConfNode
import FSConfAdminStore
import FSConfStore

/// How every command reaches PostgreSQL: libpq's own conventions.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("db"),
            help: ArgumentHelp(
                "libpq connection string or URI. Default: libpq's environment (PGHOST, PGDATABASE, PGSERVICE, ~/.pgpass...).",
                valueName: "conninfo"))
    var conninfo: String?

    /// Admin commands write: with a multi-host conninfo (`host=a,b`) libpq must pick
    /// the primary, so `target_session_attrs=read-write` is added unless given.
    func connect() throws -> PGConnection {
        try PGConnection(conninfo: ConnectionOptions.readWrite(conninfo ?? ""))
    }

    static func readWrite(_ conninfo: String) -> String {
        let env = ProcessInfo.processInfo.environment
        let hosts = conninfo.isEmpty ? (env["PGHOST"] ?? "") : conninfo
        guard hosts.contains(","), !conninfo.contains("target_session_attrs"), env["PGTARGETSESSIONATTRS"] == nil else { return conninfo }
        return NodeSettings.appending(conninfo, "target_session_attrs", "read-write")
    }
}
