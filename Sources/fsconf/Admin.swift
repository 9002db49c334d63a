import ArgumentParser
import FSConfAdminCore
import FSConfCore
import FSConfRegex
import FSConfAdminStore
import FSConfStore
import Foundation
import Glibc

/// Options of every command that writes: who is recorded as having made the change,
/// and whether to wait for the nodes to apply it.
struct WriteOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Who the change set names (default: the OS user).", valueName: "name"))
    var actor: String?
    @OptionGroup var waiting: WaitOptions

    var resolvedActor: String {
        if let actor, !actor.isEmpty { return actor }
        if let user = ProcessInfo.processInfo.environment["USER"], !user.isEmpty { return user }
        if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return "uid \(getuid())"
    }
}

enum Admin {
    /// Where the operation being checked comes from (`FILE:LINE` in `fsconf apply`),
    /// for its warnings.
    @TaskLocal static var location: String?

    /// A `warning: …` line on stderr, naming the operation's line in a batch.
    static func warn(_ line: String) {
        guard let location else { return printErr(line) }
        printErr(line.hasPrefix("warning: ") ? "warning: \(location): \(line.dropFirst(9))" : "\(location): \(line)")
    }

    /// Parses a path into its canonical form and typed address (exit 2 when malformed).
    static func address(_ text: String) throws -> (FieldPath, FieldAddress) {
        do {
            let path = try FieldPath.parse(text)
            return (path, try FieldAddress.resolve(path))
        } catch {
            throw CLIFailure("\(text): \(error.description)", code: CLIFailure.Code.invalid)
        }
    }

    /// A path given as a prefix to filter by: canonical, and — for an entity that
    /// exists — as stored (an alias or another case resolved to the stored path).
    static func prefix(_ text: String, _ conn: PGConnection) throws -> FieldPath {
        let (parsed, address) = try address(text)
        if parsed.steps.count > 1, let found = try? FieldStore(conn).get(address) { return found.path }
        return parsed
    }

    /// Runs `body` in one transaction under one change set; returns the change set id
    /// when something changed (nil: nothing did, and nothing is announced).
    static func write<T>(_ conn: PGConnection, actor: String, source: String = "cli", summary: String, undoOf: String? = nil,
                         _ body: (PGConnection) throws -> T) throws -> (T, String?) {
        try ChangeSets.write(conn, actor: actor, source: source, summary: summary, undoOf: undoOf) { conn in
            let result = try body(conn)
            try prerender(conn)
            return result
        }
    }

    /// Renders the contexts the transaction changed (and any other stale one) before
    /// it commits: nodes read each as one stored document (DialplanPrerender).
    @discardableResult
    static func prerender(_ conn: PGConnection, all: Bool = false) throws -> PrerenderStore.Summary {
        try PrerenderStore(conn).refresh(all: all, compiler: PCRE2Compiler())
    }

    /// The value checks every write runs before touching the database (exit 2):
    /// FieldValidation, the validator import and the typed commands share. Returns
    /// the value to store (a user's extra-xml re-serialised, as import stores it).
    @discardableResult
    static func validate(_ address: FieldAddress, _ path: FieldPath, value: String) throws -> String {
        if let problem = FieldValidation.problem(address, value: value, regex: PCRE2Compiler()) {
            throw CLIFailure(FieldValidation.oneLine("\(path): \(problem); nothing written"), code: CLIFailure.Code.invalid)
        }
        if let warning = FieldValidation.unknownParamWarning(address, name: paramName(address) ?? "") {
            warn(warning)
        }
        if case .directory(let d) = address, case .column("extra-xml")? = d.field, let xml = FieldValidation.extraXML(value).xml {
            return xml
        }
        return value
    }

    /// Validates each (address, value) a typed command writes, naming its option.
    static func validate(_ fields: [(FieldAddress, String, String)]) throws {
        for (address, value, what) in fields {
            if let problem = FieldValidation.problem(address, value: value, regex: PCRE2Compiler()) {
                throw CLIFailure(FieldValidation.oneLine("\(what): \(problem); nothing written"), code: CLIFailure.Code.invalid)
            }
        }
    }

    static func checkRegex(_ expression: String, path: CustomStringConvertible) throws {
        if let problem = FreeSWITCHRegex.problem(expression, compiler: PCRE2Compiler()) {
            throw CLIFailure("\(path): expression \"\(expression)\" \(problem); nothing written", code: CLIFailure.Code.invalid)
        }
    }

    static func paramName(_ address: FieldAddress) -> String? {
        switch address {
        case .directory(let d):
            if case .setting(.param, let name, _)? = d.field { return name }
        case .tree(let t):
            if case .match("name", let v)? = t.elements.last.map({ $0.pick }) { return v }
        default: break
        }
        return nil
    }
}

/// Minimal JSON output with stable key order.
enum JSON {
    static func string(_ s: String?) -> String {
        guard let s else { return "null" }
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// An object from ordered (key, already-encoded value) pairs.
    static func object(_ pairs: [(String, String)]) -> String {
        "{" + pairs.map { "\(string($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    static func array(_ items: [String]) -> String { "[" + items.joined(separator: ",\n ") + "]" }
}

extension FieldPath {
    var isSecret: Bool { ChangeLog.isSecret(self) }
}
