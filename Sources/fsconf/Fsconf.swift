import ArgumentParser
import FSConfAdminCore
import FSConfCore
import FSConfAdminStore
import FSConfStore
import Foundation

@main
struct Fsconf: ParsableCommand {
    /// ArgumentParser's own entry point, with its usage-error code (64) mapped to
    /// the documented 2, and a usage error said in one line like every other error
    /// (`fsconf: MESSAGE (see 'fsconf help …')`), not ArgumentParser's usage block.
    static func main() {
        main(CommandLine.arguments.dropFirst().map { $0 })
    }

    static func main(_ arguments: [String]) {
        do {
            var command = try parseAsRoot(WaitOptions.expand(arguments))
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                let topic = helpTopic(arguments)
                let hint = topic.isEmpty ? "fsconf --help" : "fsconf help \(topic)"
                printErr("fsconf: \(message.replacingOccurrences(of: "Error: ", with: "")) (see '\(hint)')")
            } else {
                let message = fullMessage(for: error)
                if !message.isEmpty {
                    if code == .success { print(message) } else { printErr(message) }
                }
            }
            Foundation.exit(code == .validationFailure ? CLIFailure.Code.invalid : code.rawValue)
        }
    }

    /// The subcommand words of `arguments` (up to the first option or argument that
    /// is not a subcommand name), for the help hint of a usage error.
    static func helpTopic(_ arguments: [String]) -> String {
        var command: ParsableCommand.Type = Fsconf.self
        var words: [String] = []
        for word in arguments {
            guard let next = command.configuration.subcommands.first(where: { $0._commandName == word }) else { break }
            words.append(word)
            command = next
        }
        return words.joined(separator: " ")
    }

    static let configuration = CommandConfiguration(
        commandName: "fsconf",
        abstract: "FreeSWITCH run-time configuration served from PostgreSQL.",
        discussion: """
            Exit codes: 0 ok; 1 failed, or differences/pending found; 2 invalid input;
            3 database unreachable; 4 not found; 5 conflict (see docs/cli.md).
            """,
        version: FSConfVersion.string,
        subcommands: [Migrate.self, Grant.self, Shim.self, Debug.self, Import.self, Export.self,
                      GetField.self, SetField.self, UnsetField.self, ListFields.self, Apply.self, History.self, Undo.self,
                      Render.self, Diff.self, Domain.self, User.self, Gateway.self, Extension.self, ScopeCommand.self, Agent.self,
                      Node.self, Doctor.self, Nodes.self, Prerender.self])
}

enum FSConfVersion {
    static let string = "0.1.0"
}

/// A command whose failures print one line on stderr and map to an exit code.
protocol FsconfCommand: ParsableCommand {
    func execute() throws
}

extension FsconfCommand {
    func run() throws {
        do {
            try execute()
            if let writer = self as? WaitsForNodes { try writer.waitForNodes() }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            let failure = CLIFailure(error)
            FileHandle.standardError.write(Data("fsconf: \(failure.message)\n".utf8))
            if ProcessInfo.processInfo.environment["FSCONF_DEBUG"] != nil, let debug = failure.debug {
                FileHandle.standardError.write(Data("\(debug)\n".utf8))
            }
            throw ExitCode(failure.code)
        }
    }
}

/// Maps any error to the message and exit code the CLI shows.
struct CLIFailure: Error, CustomStringConvertible {
    enum Code {
        static let failed: Int32 = 1
        static let invalid: Int32 = 2
        static let unreachable: Int32 = 3
        static let notFound: Int32 = 4
        static let conflict: Int32 = 5
    }
    var message: String
    var code: Int32
    var debug: String?

    init(_ message: String, code: Int32) { self.message = message; self.code = code }

    var description: String { message }

    init(_ error: Error) {
        switch error {
        case let e as CLIFailure: self = e
        case let e as FieldStoreError:
            switch e {
            case .notFound(let m): self.init(m, code: Code.notFound)
            case .invalid(let m): self.init(m, code: Code.invalid)
            case .conflict(let m): self.init(m, code: Code.conflict)
            }
        case let e as FieldPathError:
            self.init(e.description, code: Code.invalid)
        case let e as PostgresError:
            // In the user's terms when the store knows the refusal (constraint names stay in the debug text).
            self.init(SchemaMessages.explain(e) ?? e.description, code: e.kind == .query ? Code.failed : Code.unreachable)
            // A write the schema refuses is invalid input; a duplicate or a lost race is a conflict.
            if e.kind == .query, let state = e.sqlState {
                if state == "23505" || state == "40001" || state == "40P01" { code = Code.conflict; message += "; nothing written" }
                else if state.hasPrefix("23") || state.hasPrefix("22") { code = Code.invalid; message += "; nothing written" }
            }
            debug = e.debugDescription
        case let e as MigrationRunError:
            self.init(e.description, code: Code.failed)
            debug = e.debugDescription
        case let e as MigrationError:
            switch e {
            case .drift, .missingFile, .outOfOrder, .irreversible, .unknownTarget:
                self.init(e.description, code: Code.failed)
            default:
                self.init(e.description, code: Code.invalid)
            }
        default:
            self.init(String(describing: error), code: Code.failed)
        }
    }
}

func printErr(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

