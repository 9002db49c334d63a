import ArgumentParser
import FSConfAdminCore
import FSConfCore
import FSConfAdminStore
import FSConfStore
import Foundation

extension Fsconf {
    struct History: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show change sets, newest first: who, when, which fields, old and new values.",
            discussion: """
                With PATH, only the changes at or under it (e.g. a user, or one param). Every write is
                recorded: fsconf commands, imports, undos and changes made directly in SQL (source sql).
                Secret values (passwords, a1-hash…) are shown as (hidden).
                """)
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Only changes at or under this path.") var path: String?
        @Option(help: ArgumentHelp("Only change sets since this time (a PostgreSQL timestamp, e.g. '2025-01-31 12:00+00').", valueName: "time"))
        var since: String?
        @Option(help: ArgumentHelp("Only this change set.", valueName: "id")) var changeSet: String?
        @Option(help: "At most this many change sets.") var limit = 20
        @Flag(help: "Print every field change (default: at most \(History.shownPerChangeSet) per change set).") var full = false

        static let shownPerChangeSet = 50
        @Flag(help: "Print JSON (docs/cli.md).") var json = false

        func execute() throws {
            if let changeSet, Int64(changeSet) == nil { throw CLIFailure("--change-set takes a number", code: CLIFailure.Code.invalid) }
            let conn = try connection.connect()
            let under = try path.map { try Admin.prefix($0, conn) }
            let log = ChangeLog(conn)
            if let since, !log.isTimestamp(since) {
                throw CLIFailure("--since: not a timestamp: \(since)", code: CLIFailure.Code.invalid)
            }
            // Only the field changes shown are built: the work follows the output, however large a change set.
            let entries = try log.history(under: under, since: since, changeSet: changeSet, limit: max(1, limit),
                                          maxChanges: full ? nil : History.shownPerChangeSet)
            // Which nodes applied each change set (fsconf.nodes; none before migration 0008).
            let nodes = (try? Fleet.read(conn, liveWithin: Fleet.liveWithin).nodes) ?? []
            func applied(_ e: ChangeLog.Entry) -> (by: [String], notYet: [String]) {
                guard let seq = e.seq.flatMap({ Int64($0) }) else { return ([], []) }
                return (nodes.filter { ($0.appliedSeq ?? 0) >= seq }.map(\.name),
                        nodes.filter { $0.live && ($0.appliedSeq ?? 0) < seq }.map(\.name))
            }
            if json {
                print(JSON.array(entries.map { e in
                    JSON.object([
                        ("id", e.id), ("seq", e.seq ?? "null"), ("actor", JSON.string(e.actor)), ("source", JSON.string(e.source)),
                        ("summary", JSON.string(e.summary)), ("undo_of", e.undoOf ?? "null"), ("created_at", JSON.string(e.createdAt)),
                        ("changes", "[" + e.changes.map { c in
                            JSON.object([("operation", JSON.string(c.operation)), ("path", JSON.string(c.pathText)),
                                         ("old", JSON.string(c.old)), ("new", JSON.string(c.new))])
                        }.joined(separator: ", ") + "]"),
                        ("omitted_rows", String(e.omittedRows)),
                        ("applied_by", "[" + applied(e).by.map { JSON.string($0) }.joined(separator: ", ") + "]"),
                        ("not_applied_by", "[" + applied(e).notYet.map { JSON.string($0) }.joined(separator: ", ") + "]"),
                    ])
                }))
                return
            }
            if entries.isEmpty {
                print(under.map { "no recorded changes under \($0)" } ?? "no recorded changes")
                return
            }
            for e in entries {
                var head = "change set \(e.id)  \(e.createdAt)  \(e.actor)  \(e.source)"
                if let u = e.undoOf { head += "  (undoes \(u))" }
                print(head)
                if !e.summary.isEmpty { print("    \(e.summary)") }
                if !nodes.isEmpty {
                    let (by, notYet) = applied(e)
                    print("    applied by: \(by.isEmpty ? "no node" : by.joined(separator: ", "))"
                          + (notYet.isEmpty ? "" : "; not yet by: \(notYet.joined(separator: ", "))"))
                }
                for c in e.changes { print("  \(line(c))") }
                if e.omittedRows > 0 { print("  … \(e.omittedRows) more row change(s) (--full)") }
            }
        }

        func line(_ c: ChangeLog.FieldChange) -> String {
            switch (c.operation, c.old, c.new) {
            case ("truncate", _, _): return "! \(c.pathText) truncated"
            case ("insert", _, let n): return "+ \(c.pathText)" + (n.map { " = \(FieldDiff.show($0))" } ?? "")
            case ("delete", let o, _): return "- \(c.pathText)" + (o.map { " (was \(FieldDiff.show($0)))" } ?? "")
            default: return "~ \(c.pathText): \(c.old.map(FieldDiff.show) ?? "(unset)") -> \(c.new.map(FieldDiff.show) ?? "(unset)")"
            }
        }
    }

    struct Undo: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Undo a change set: restore every row it changed, in one transaction.",
            discussion: """
                The undo is itself a change set (source undo) and can be undone. If a later change set
                changed one of the same rows, nothing is written and the rows that would be clobbered are
                listed (exit 5); --force undoes anyway. A change set that truncated a table cannot be undone.
                """)
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var write: WriteOptions
        @Argument(help: "The change set's id (see fsconf history).") var changeSet: String
        @Flag(help: "Undo even if later change sets changed the same rows (their changes to those rows are lost).")
        var force = false
        @Flag(help: "Only say what would be restored or clobbered; write nothing.") var dryRun = false

        func execute() throws {
            guard Int64(changeSet) != nil else { throw CLIFailure("CHANGESET is a number (see fsconf history)", code: CLIFailure.Code.invalid) }
            let conn = try connection.connect()
            if try !ChangeLog(conn).exists(changeSet) {
                throw CLIFailure("no change set \(changeSet)", code: CLIFailure.Code.notFound)
            }
            if dryRun {
                let plan = try ChangeLog(conn).plan(changeSet)
                print("undo of change set \(changeSet) would restore \(plan.rows) row(s)")
                for c in plan.conflicts { print("  would clobber \(c.path)" + (c.by.isEmpty ? "" : " (changed by change set \(c.by.joined(separator: ", ")))")) }
                return
            }
            let (plan, id) = try Admin.write(conn, actor: write.resolvedActor, source: "undo",
                                             summary: "undo change set \(changeSet)\(force ? " (forced)" : "")", undoOf: changeSet) { conn in
                try ChangeLog(conn).undo(changeSet, force: force)
            }
            for c in plan.conflicts { printErr("warning: clobbered \(c.path)" + (c.by.isEmpty ? "" : " (changed by change set \(c.by.joined(separator: ", ")))")) }
            if let id {
                print("undid change set \(changeSet): \(plan.rows) row(s) restored (change set \(id))")
            } else {
                print("undid change set \(changeSet): nothing to restore")
            }
        }
    }
}
