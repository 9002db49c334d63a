import ArgumentParser
import FSConfStore

/// How every command reaches PostgreSQL: libpq's own conventions.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("db"),
            help: ArgumentHelp(
                "libpq connection string or URI. Default: libpq's environment (PGHOST, PGDATABASE, PGSERVICE, ~/.pgpass...).",
                valueName: "conninfo"))
    var conninfo: String?

    func connect() throws -> PGConnection {
        try PGConnection(conninfo: conninfo ?? "")
    }
}
