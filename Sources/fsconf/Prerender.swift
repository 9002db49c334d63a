import ArgumentParser
import FSConfAdminStore
import FSConfStore

extension Fsconf {
    struct Prerender: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Render dialplan and chatplan contexts whose stored document is not current.",
            discussion: """
                Nodes read a context as one stored document, rendered by fsconf's writers with its $${…}
                references left for each node to expand (docs/performance.md, "Big contexts"). Every fsconf
                write, import and `migrate up` renders the contexts it changed; a change made directly in SQL
                leaves its context read as rows (correct, slower) until the next fsconf write or this command.
                Contexts that cannot be stored (extensions scoped to nodes, invalid ones, $${…} in an
                expression) are listed with the reason; nodes read those as rows. --all renders every context
                again (after a load with triggers disabled). --check only reports: exit 1 when a context is stale.
                """)
        @OptionGroup var connection: ConnectionOptions
        @Flag(help: "Render every context, current or not.") var all = false
        @Flag(help: "Only count the stale contexts; exit 1 when there are any.") var check = false

        func validate() throws {
            if all && check { throw ValidationError("--all and --check exclude each other") }
        }

        func execute() throws {
            let conn = try connection.connect()
            if check {
                let stale = try PrerenderStore(conn).counts().stale
                print("\(stale) context(s) not rendered since their last change")
                if stale > 0 { throw ExitCode(1) }
                return
            }
            let summary = try Transactions.run(conn) { try Admin.prerender(conn, all: all) }
            for (context, reason) in summary.ineligible { print("read as rows: \(context): \(reason)") }
            print("rendered \(summary.stored + summary.ineligible.count) context(s): \(summary.stored) stored, "
                  + "\(summary.ineligible.count) read as rows")
        }
    }
}
