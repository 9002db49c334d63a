import ArgumentParser
import FSConfAdminCore
import FSConfAdminStore
import FSConfCore
import FSConfStore
import Foundation

/// A command that can be one operation of `fsconf apply`: its arguments are
/// parsed and validated by the command itself (no database), and its write runs
/// in the caller's transaction and change set.
protocol BatchStep: ParsableCommand {
    var connection: ConnectionOptions { get }
    var write: WriteOptions { get }
    /// Checks everything that needs no database (exit 2 with the problem) and
    /// returns the write.
    func prepared() throws -> PreparedWrite
    /// Options that change only what the command prints (--json): not an
    /// operation's; nil when none was given.
    var outputOption: String? { get }
}

extension BatchStep {
    var outputOption: String? { nil }

    /// The command run alone: its write in one transaction and change set, its
    /// notes on stderr and — unless it wrote one field, which the caller reports —
    /// its line with the change set (`-`: nothing changed).
    @discardableResult
    func runAlone() throws -> (PreparedWrite.Done, String?) {
        let step = try prepared()
        let conn = try connection.connect()
        let (done, id) = try Admin.write(conn, actor: write.resolvedActor, summary: step.summary) { try step.perform($0) }
        for note in done.notes { printErr("note: \(note)") }
        if done.written == nil { print("\(done.line) (change set \(id ?? "-"))") }
        return (done, id)
    }
}

/// One validated write: what it is (the change set's summary when run alone) and
/// how to make it on a connection whose transaction and change set are open.
struct PreparedWrite {
    var summary: String
    var perform: (PGConnection) throws -> Done

    /// What a write did: one line (without the change set), the field it wrote
    /// for set/unset, notes for stderr.
    struct Done {
        var line: String
        var written: FieldStore.Written? = nil
        var notes: [String] = []
    }
}

extension Fsconf {
    struct Apply: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply a file of set/unset/add/remove operations as one change set: all of them, or none.",
            discussion: """
                One operation per line, written as the fsconf command line without `fsconf` (shell-like
                quoting; # comments; a \\ at the end of a line continues it), or a JSON array of objects
                ({"op":"set","path":P,"value":V,"expect":OLD}, {"op":"user add","args":[...]}).
                Operations: set, unset, domain|user|gateway|extension add|remove, scope set|clear|group|ungroup,
                each parsed and checked as the command itself checks it. Every line is checked before anything is written (a bad
                line: exit 2 naming FILE:LINE); then all run in one transaction, in order, recorded as one
                change set and announced once (--wait: until every live node's agent applied it). An
                --expect that fails: exit 5 naming its line; nothing is written. --dry-run shows the
                rendered XML each affected lookup would return before and after (a unified diff) and
                the commands the agent would send; nothing is written.
                See docs/cli.md and docs/cluster.md.
                """)
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var write: WriteOptions
        @Argument(help: ArgumentHelp("The operations' file, or - for standard input.", valueName: "file")) var file: String
        @Flag(help: "Show the rendered-XML diff of every affected lookup and the agent's commands; write nothing.")
        var dryRun = false
        @OptionGroup var review: ReviewOptions

        func validate() throws { try review.check(dryRun: dryRun, waiting: write.waiting) }

        /// The name lines are reported with, and the text.
        func read() throws -> (String, String) {
            if file == "-" {
                return ("stdin", String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self))
            }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let data = FileManager.default.contents(atPath: file) else {
                throw CLIFailure("cannot read \(file)", code: CLIFailure.Code.invalid)
            }
            return (file, String(decoding: data, as: UTF8.self))
        }

        /// Every operation parsed and checked, none written.
        static func prepare(_ operations: [BatchFile.Operation], name: String) throws -> [(line: Int, write: PreparedWrite)] {
            try operations.map { op in
                func fail(_ message: String, _ code: Int32 = CLIFailure.Code.invalid) -> CLIFailure {
                    CLIFailure("\(name):\(op.line): \(message)", code: code)
                }
                let operations = "set, unset, domain|user|gateway|extension add|remove, scope set|clear|group|ungroup"
                if let word = op.words.first, !Fsconf.configuration.subcommands.contains(where: { $0._commandName == word }) {
                    throw fail("unknown operation \(word) (\(operations))")
                }
                let command: ParsableCommand
                do {
                    command = try Fsconf.parseAsRoot(WaitOptions.expand(op.words))
                } catch {
                    if Fsconf.exitCode(for: error) == .success { throw fail("help and --version are not operations") }
                    let message = Fsconf.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                    throw fail(message.replacingOccurrences(of: "Error: ", with: ""))
                }
                guard let step = command as? BatchStep else {
                    throw fail("`\(op.words.prefix(2).joined(separator: " "))` is not an operation a batch can hold (\(operations))")
                }
                if step.connection.conninfo != nil || step.write.actor != nil || step.write.waiting.seconds != nil {
                    throw fail("--db, --actor and --wait belong on `fsconf apply`, not on an operation")
                }
                if let option = step.outputOption { throw fail("\(option) belongs on a command run alone, not on an operation") }
                do {
                    return (op.line, try Admin.$location.withValue("\(name):\(op.line)") { try step.prepared() })
                } catch {
                    if let exit = error as? ExitCode { throw fail("invalid operation", exit.rawValue) }
                    let failure = CLIFailure(error)
                    throw fail(failure.message, failure.code)
                }
            }
        }

        /// Runs the writes in order on the open transaction; a failure names its line.
        /// Each result's line and notes are prefixed with FILE:LINE.
        static func perform(_ steps: [(line: Int, write: PreparedWrite)], name: String, on conn: PGConnection) throws -> [PreparedWrite.Done] {
            try steps.map { step in
                do {
                    var done = try step.write.perform(conn)
                    done.line = "\(name):\(step.line): \(done.line)"
                    done.notes = done.notes.map { "\(name):\(step.line): \($0)" }
                    return done
                } catch {
                    let failure = CLIFailure(error)
                    let message = failure.message.contains("nothing written") ? failure.message : failure.message + "; nothing written"
                    var located = CLIFailure("\(name):\(step.line): \(message)", code: failure.code)
                    located.debug = failure.debug
                    throw located
                }
            }
        }

        static func show(_ results: [PreparedWrite.Done]) {
            for done in results {
                print(done.line)
                for note in done.notes { printErr("note: \(note)") }
            }
        }

        func execute() throws {
            let (name, text) = try read()
            let operations: [BatchFile.Operation]
            do {
                operations = try BatchFile.parse(text)
            } catch {
                throw CLIFailure("\(name):\(error.line): \(error.message); nothing written", code: CLIFailure.Code.invalid)
            }
            let steps = try Apply.prepare(operations, name: name)
            if steps.isEmpty {
                print("\(name): no operations; nothing written")
                return
            }
            let conn = try connection.connect()
            let summary = "apply \(name): \(steps.count) operation(s)"
            if dryRun {
                let (results, shown) = try review.dryRun(conn).review(actor: write.resolvedActor, source: "cli", summary: summary, prepare: {}) { _ in
                    try Apply.perform(steps, name: name, on: conn)
                }
                Apply.show(results)
                shown.print(summary: summary)
                return
            }
            let (results, changeSet) = try Admin.write(conn, actor: write.resolvedActor, summary: summary) { conn in
                try Apply.perform(steps, name: name, on: conn)
            }
            Apply.show(results)
            if let changeSet {
                print("applied \(steps.count) operation(s) from \(name) as change set \(changeSet)")
            } else {
                print("applied \(steps.count) operation(s) from \(name): nothing changed")
            }
        }
    }
}
