import ArgumentParser
import FSConfAdminCore
import FSConfCore
import FSConfAdminStore
import FSConfStore
import Foundation

extension Fsconf {
    struct Export: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the stored configuration as a FreeSWITCH XML tree (freeswitch.xml, vars.xml, ...).",
            discussion: """
                The tree loads in FreeSWITCH from disk and `fsconf import DIR/freeswitch.xml` reads it back
                identically: a way out, a backup and a way to diff. $${name} references are written as
                references. See docs/import-export.md. --node NAME writes what that node gets (of each
                entity limited to some nodes, its variant: docs/cluster.md); without it, what every node
                gets (the variants limited to some nodes are left out, and counted on stderr).
                """)

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Folder to write into (created if missing; must be empty unless --force).")
        var directory: String
        @Flag(help: "Write into a folder that is not empty (files with the same names are replaced).")
        var force = false
        @Option(help: ArgumentHelp("Write what this node gets (its switchname).", valueName: "name")) var node: String?

        func validate() throws {
            if let node, let problem = FSConfCore.Scope.nameProblem(node) { throw ValidationError("--node \(node): \(problem)") }
        }

        func execute() throws {
            let started = Date()
            let fm = FileManager.default
            if let existing = try? fm.contentsOfDirectory(atPath: directory), !existing.isEmpty, !force {
                throw CLIFailure("\(directory) is not empty (use --force to write into it anyway)", code: CLIFailure.Code.invalid)
            }
            let conn = try connection.connect()
            // One consistent snapshot of every table.
            let (all, me) = try Transactions.snapshot(conn) {
                (try ConfigStore(conn).load(.all).tree, try ScopeStore(conn).identity(of: node))
            }
            let tree = all.view(for: me)
            if node == nil, all.scopedCount > 0 {
                printErr("note: \(all.scopedCount) variant(s) limited to some nodes are not in this export (every node's entities only); "
                         + "`fsconf export --node NAME` writes what a node gets")
            }
            let files: [ConfigExport.File]
            do {
                files = try ConfigExport.files(tree)
            } catch {
                throw CLIFailure(error.description, code: CLIFailure.Code.failed)
            }
            let root = URL(fileURLWithPath: directory)
            for file in files {
                let url = root.appendingPathComponent(file.path)
                do {
                    try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try Data(file.contents.utf8).write(to: url)
                } catch {
                    throw CLIFailure("cannot write \(url.path): \(error.localizedDescription)", code: CLIFailure.Code.failed)
                }
            }
            print("exported \(tree.countsSummary)\(node.map { " for node \($0)" } ?? "") as \(files.count) file(s) to \(directory) "
                  + "(\(String(format: "%.2f", Date().timeIntervalSince(started))) s)")
        }
    }
}
