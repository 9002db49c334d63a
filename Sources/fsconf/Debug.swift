import ArgumentParser
import FSConfAdminStore
import FSConfStore

extension Fsconf {
    /// Tools for benchmarks and troubleshooting; not part of the operator interface.
    struct Debug: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Troubleshooting helpers (the SQL a node runs).", shouldDisplay: false,
            subcommands: [Statement.self])

        struct Statement: FsconfCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print the SQL of a node lookup statement (e.g. fsconf_user_by_id).")
            @Argument(help: "Statement name; omit to list them.") var name: String?

            func execute() throws {
                let all = DirectorySQL.all + [DialplanSQL.stored, DialplanSQL.context, DialplanSQL.contextRows, DocumentSQL.document, DocumentSQL.narrowedDocument]
                guard let name else {
                    for s in all { print(s.name) }
                    return
                }
                guard let statement = all.first(where: { $0.name == name }) else {
                    throw CLIFailure("no statement named \(name)", code: CLIFailure.Code.notFound)
                }
                print(statement.sql)
            }
        }
    }
}
