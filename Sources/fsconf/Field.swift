import ArgumentParser
import FSConfAdminCore
import FSConfCore
import FSConfAdminStore
import FSConfStore
import Foundation

extension Fsconf {
    struct GetField: FsconfCommand {
        static let configuration = CommandConfiguration(
            commandName: "get",
            abstract: "Print one field's value.",
            discussion: """
                PATH addresses any field, e.g. directory/example.com/user/1000/param/password or
                configuration/sofia.conf/profiles/profile[name=internal]/settings/param[name=sip-port]/@value
                (syntax: docs/cli.md). Prints the stored value as is ($${...} references unexpanded).
                Exit 4 when the field does not exist or is not set.
                """)
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The field's path.") var path: String
        @Flag(help: "Print {\"path\", \"value\", \"exists\"} as JSON.") var json = false

        func execute() throws {
            let (_, address) = try Admin.address(path)
            let conn = try connection.connect()
            let field = try FieldStore(conn).get(address)
            if field.isEntity {
                throw CLIFailure("\(field.path) is a whole entity, not a field: use `fsconf list \(field.path)`", code: CLIFailure.Code.invalid)
            }
            if json {
                print(JSON.object([("path", JSON.string(field.path.description)), ("value", JSON.string(field.value)),
                                   ("exists", field.value != nil ? "true" : "false")]
                                  + (field.path.innermostScope.map { [("scope", JSON.string($0.description))] } ?? [])))
                if field.value == nil { throw ExitCode(CLIFailure.Code.notFound) }
                return
            }
            guard let value = field.value else {
                throw CLIFailure("\(field.path) \(field.exists ? "is not set" : "does not exist")", code: CLIFailure.Code.notFound)
            }
            print(value)
        }
    }

    struct SetField: FsconfCommand, BatchStep {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set one field (check-and-set with --expect).",
            discussion: """
                Creates a param, variable, attribute, global, group member or a [key=value] element that
                does not exist yet; updates anything else. The value is checked first (valid XML text;
                dialplan expressions must compile; enumerations): a rejected value writes nothing (exit 2).
                --expect OLD writes only if the field still holds OLD, atomically (exit 5 otherwise);
                --expect-absent only if it does not exist yet. Recorded as one change set.
                """)
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var write: WriteOptions
        @Argument(help: "The field's path.") var path: String
        // Collected with .allUnrecognized so that a value starting with "-" (-5, -1h) is a value, not an option.
        @Argument(parsing: .allUnrecognized,
                  help: ArgumentHelp("The new value (stored as is; $${name} references stay references; may start with -).",
                                     valueName: "value"))
        var values: [String] = []
        @Option(parsing: .unconditional, help: ArgumentHelp("Write only if the current value is exactly this.", valueName: "old"))
        var expect: String?
        @Flag(help: "Write only if the field does not exist yet.") var expectAbsent = false
        @Flag(help: "Print {\"path\", \"old\", \"new\", \"change_set\"} as JSON.") var json = false

        /// The value: `--` before it is the usual end of options, not the value.
        var value: String { values[values.count - 1] }

        func validate() throws {
            if expect != nil && expectAbsent { throw ValidationError("--expect and --expect-absent exclude each other") }
            if values.first == "--" && values.count == 2 { return }
            if values.isEmpty { throw ValidationError("missing VALUE: fsconf set PATH VALUE") }
            if values.count > 1 {
                throw ValidationError("set takes one VALUE, got \(values.count): \(values.map { "'\($0)'" }.joined(separator: " ")) "
                                      + "(quote a value holding spaces)")
            }
        }

        var outputOption: String? { json ? "--json" : nil }

        func prepared() throws -> PreparedWrite {
            let (parsed, address) = try Admin.address(path)
            let value = try Admin.validate(address, parsed, value: self.value)
            let expectation: String?? = expectAbsent ? .some(nil) : expect.map { .some($0) }
            return PreparedWrite(summary: "set \(parsed)") { conn in
                let written = try FieldStore(conn).set(address, value: value, expect: expectation)
                return PreparedWrite.Done(line: describe(written, changed: written.old != written.new), written: written)
            }
        }

        func execute() throws {
            let (done, changeSet) = try runAlone()
            report(done.written!, changeSet, json: json)
        }
    }

    struct UnsetField: FsconfCommand, BatchStep {
        static let configuration = CommandConfiguration(
            commandName: "unset",
            abstract: "Remove one field, or a whole entity (a user, an extension, an element...).",
            discussion: """
                Deletes the row (a param, a global, an attribute, an element with everything inside...) or
                clears an optional column. Exit 4 when it does not exist. --expect OLD removes only if the
                field still holds OLD (exit 5 otherwise). Recorded as one change set; `fsconf undo` restores it.
                """)
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var write: WriteOptions
        @Argument(help: "The field's (or entity's) path.") var path: String
        @Option(parsing: .unconditional, help: ArgumentHelp("Remove only if the current value is exactly this.", valueName: "old"))
        var expect: String?
        @Flag(help: "Print {\"path\", \"old\", \"new\", \"change_set\"} as JSON.") var json = false

        var outputOption: String? { json ? "--json" : nil }

        func prepared() throws -> PreparedWrite {
            let (parsed, address) = try Admin.address(path)
            return PreparedWrite(summary: "unset \(parsed)") { conn in
                let written = try FieldStore(conn).unset(address, expect: expect.map { .some($0) })
                return PreparedWrite.Done(line: describe(written, changed: true), written: written)
            }
        }

        func execute() throws {
            let (done, changeSet) = try runAlone()
            report(done.written!, changeSet, json: json)
        }
    }

    struct ListFields: FsconfCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List every field under a path, one `PATH = VALUE` per line.",
            discussion: """
                Without PREFIX: everything, every node's variants included (their paths carry
                {node,@group} blocks; --node NAME: only what that node gets). Paths are canonical: each
                line's path reads back with `fsconf get`. Values are shown on one line (\\n, \\t escaped);
                --json gives them exactly, with the scope in effect. Exit 4 when nothing is stored under PREFIX.
                """)
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "A path prefix: a section, an entity or a field.") var prefix: String?
        @Flag(help: "Print [{\"path\", \"value\"}...] as JSON (with \"scope\" for a variant's fields).") var json = false
        @Option(help: "Only what this node gets (one variant of each entity, paths without blocks).") var node: String?

        func execute() throws {
            let conn = try connection.connect()
            let under = try prefix.map { try Admin.prefix($0, conn) }
            var tree = try ConfigStore(conn).load(.all).tree
            if let node { tree = tree.view(for: try ScopeStore(conn).identity(of: node)) }
            let entries = FieldListing.entries(tree).filter { e in under.map { e.path.isUnder($0) } ?? true }
            if json {
                // "scope": the scope in effect, for the entries of variants only.
                print(JSON.array(entries.map {
                    JSON.object([("path", JSON.string($0.path.description)), ("value", JSON.string($0.value))]
                                + ($0.path.innermostScope.map { [("scope", JSON.string($0.description))] } ?? []))
                }))
            } else {
                for e in entries { print("\(e.path) = \(FieldDiff.show(e.value))") }
            }
            if entries.isEmpty, let under {
                if !json { printErr("fsconf: nothing stored under \(under)") }
                throw ExitCode(CLIFailure.Code.notFound)
            }
        }
    }
}

/// One line (or JSON object) saying what a write did.
/// `scope`: a scope change, whose values are scopes (nil: every node).
func report(_ written: FieldStore.Written, _ changeSet: String?, json: Bool, hide: Bool = false, scope: Bool = false) {
    let secret = !scope && (hide || written.path.isSecret)
    var old = secret ? written.old.map { _ in "(hidden)" } : written.old
    var new = secret ? written.new.map { _ in "(hidden)" } : written.new
    if scope && !json { old = old ?? "(every node)"; new = new ?? "(every node)" }
    if json {
        print(JSON.object([("path", JSON.string(written.path.description)), ("old", JSON.string(old)), ("new", JSON.string(new)),
                           ("change_set", changeSet.map { $0 } ?? "null")]))
        return
    }
    guard let changeSet else {
        print(describe(written, changed: false))
        return
    }
    print("\(describe(written, changed: true, hide: hide)) (change set \(changeSet))")
}

/// `PATH: what changed` (secrets hidden), or `PATH: unchanged`.
func describe(_ written: FieldStore.Written, changed: Bool, hide: Bool = false) -> String {
    guard changed else { return "\(written.path): unchanged" }
    let secret = hide || written.path.isSecret
    let old = secret ? written.old.map { _ in "(hidden)" } : written.old
    let new = secret ? written.new.map { _ in "(hidden)" } : written.new
    let what: String
    switch (old, new) {
    case (nil, let n?): what = "added \(FieldDiff.show(n))"
    case (let o?, nil): what = "removed (was \(FieldDiff.show(o)))"
    case (nil, nil): what = "removed"
    case (let o?, let n?): what = "\(FieldDiff.show(o)) -> \(FieldDiff.show(n))"
    }
    return "\(written.path): \(what)"
}
