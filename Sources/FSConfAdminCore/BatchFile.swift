import FSConfCore

/// The file `fsconf apply` reads: a list of operations, each the words of one
/// fsconf command line (without `fsconf`), with the line it starts on. Pure: the
/// CLI parses each operation's words with the command's own argument parser and
/// validator, so a batch line accepts exactly what the command accepts.
///
/// Two forms, told apart by the first character that is not white space:
///
/// - **Lines** (anything but `[`): one operation per line, words split as a POSIX
///   shell splits them — blanks separate; `'…'` is literal; `"…"` keeps its
///   content, where `\"`, `\\`, `\$` and `` \` `` escape; outside quotes `\`
///   escapes the next character and a `\` at the end of a line continues the
///   operation on the next. Quotes may span lines. `#` at the start of a word
///   starts a comment; blank and comment lines are skipped. Nothing is expanded:
///   `$${domain}` stays as written.
///
///       set directory/example.com/user/1000/param/vm-password 4321 --expect 1234
///       user add example.com 1001 --group sales --param 'effective_caller_id_name=Bob Smith'
///
/// - **JSON** (`[`): an array of objects. `{"op":"set","path":P,"value":V}` with
///   optional `"expect":OLD` (`null`: the field must not exist yet);
///   `{"op":"unset","path":P}` with optional `"expect":OLD`; any other command as
///   `{"op":"user add","args":["example.com","1001","--group","sales"]}`. Values
///   may be JSON strings, numbers or booleans (their text); other keys are refused.
public enum BatchFile {
    /// One operation: the words of a command line and the (1-based) line it starts on.
    public struct Operation: Equatable, Sendable {
        public var line: Int
        public var words: [String]
        public init(line: Int, words: [String]) { self.line = line; self.words = words }
    }

    /// What is wrong with the file, and on which line.
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public init(line: Int, _ message: String) { self.line = line; self.message = message }
        public var description: String { "line \(line): \(message)" }
    }

    public static func parse(_ text: String) throws(Problem) -> [Operation] {
        let first = text.unicodeScalars.first { !$0.properties.isWhitespace && $0 != "\u{FEFF}" }
        return first == "[" ? try json(text) : try lines(text)
    }

    // MARK: Lines

    public static func lines(_ text: String) throws(Problem) -> [Operation] {
        var out: [Operation] = []
        var words: [String] = []
        var word = ""
        var inWord = false          // a word has started (possibly empty: '')
        var line = 1
        var start = 1               // the line the current operation started on
        var quote: Unicode.Scalar?  // ' or " while inside quotes
        var quoteLine = 0
        var comment = false
        // Scalars, not characters: "\r\n" is one Character.
        var chars = Array(text.unicodeScalars)
        if chars.first == "\u{FEFF}" { chars.removeFirst() }
        var i = 0
        func endWord() {
            if inWord { words.append(word) }
            word = ""; inWord = false
        }
        func endOperation() {
            endWord()
            if !words.isEmpty { out.append(Operation(line: start, words: words)) }
            words = []
        }
        while i < chars.count {
            let c = chars[i]
            i += 1
            if comment {
                if c == "\n" { comment = false; endOperation(); line += 1; start = line }
                continue
            }
            if let q = quote {
                if c == q { quote = nil; continue }
                if c == "\n" { line += 1 }
                if q == "\"", c == "\\", i < chars.count, "\"\\$`\n".unicodeScalars.contains(chars[i]) {
                    if chars[i] == "\n" { line += 1; i += 1; continue }   // a continued line inside quotes
                    word.unicodeScalars.append(chars[i]); i += 1
                    continue
                }
                word.unicodeScalars.append(c)
                continue
            }
            switch c {
            case "\n":
                endOperation()
                line += 1
                start = line
            case " ", "\t", "\r":
                endWord()
            case "\\":
                if i < chars.count, chars[i] == "\n" {
                    // A continued line: the operation goes on.
                    i += 1; line += 1
                    endWord()
                } else if i < chars.count, chars[i] == "\r", i + 1 < chars.count, chars[i + 1] == "\n" {
                    i += 2; line += 1
                    endWord()
                } else if i < chars.count {
                    word.unicodeScalars.append(chars[i]); inWord = true; i += 1
                } else {
                    throw Problem(line: line, "a \\ at the end of the file continues nothing")
                }
            case "'", "\"":
                quote = c; quoteLine = line; inWord = true
            case "#" where !inWord:
                comment = true
            default:
                word.unicodeScalars.append(c); inWord = true
            }
        }
        if quote != nil {
            throw Problem(line: quoteLine, "unterminated \(quote == "'" ? "single" : "double") quote")
        }
        endOperation()
        return out
    }

    // MARK: JSON

    static let setKeys: Set<String> = ["op", "path", "value", "expect"]
    static let unsetKeys: Set<String> = ["op", "path", "expect"]
    static let otherKeys: Set<String> = ["op", "args"]

    public static func json(_ text: String) throws(Problem) -> [Operation] {
        let bytes = Array(text.utf8)
        let elements = try JSONElements.split(bytes)
        var out: [Operation] = []
        for (line, slice) in elements {
            let element = String(decoding: slice, as: UTF8.self)
            guard let value = JSONValue.parse(element) else { throw Problem(line: line, "malformed JSON") }
            out.append(Operation(line: line, words: try words(value, line: line)))
        }
        return out
    }

    /// An object's command line.
    static func words(_ value: JSONValue, line: Int) throws(Problem) -> [String] {
        guard case .object(let o) = value else { throw Problem(line: line, "each operation is a JSON object with an \"op\"") }
        guard case .string(let op)? = o["op"], !op.isEmpty else { throw Problem(line: line, "an operation needs \"op\": a command, e.g. \"set\"") }
        func text(_ key: String) throws(Problem) -> String? {
            guard let v = o[key] else { return nil }
            if case .string(let s) = v { return s }
            if case .number(let n) = v { return n }
            if case .bool(let b) = v { return b ? "true" : "false" }
            throw Problem(line: line, "\"\(key)\" must be a string")
        }
        func allow(_ keys: Set<String>) throws(Problem) {
            if let bad = o.keys.sorted().first(where: { !keys.contains($0) }) {
                throw Problem(line: line, "\(op) takes \(keys.subtracting(["op"]).sorted().map { "\"\($0)\"" }.joined(separator: ", ")); not \"\(bad)\"")
            }
        }
        switch op {
        case "set", "unset":
            try allow(op == "set" ? setKeys : unsetKeys)
            guard let path = try text("path") else { throw Problem(line: line, "\(op) needs \"path\"") }
            var words = [op, path]
            if op == "set" {
                guard let value = try text("value") else { throw Problem(line: line, "set needs \"value\"") }
                if case .null? = o["expect"] { words.append("--expect-absent") }
                else if let expect = try text("expect") { words += ["--expect", expect] }
                // After `--` a value is a value even when it starts with "-".
                return words + ["--", value]
            }
            if case .null? = o["expect"] { throw Problem(line: line, "unset's \"expect\" is the value it must hold, not null") }
            if let expect = try text("expect") { words += ["--expect", expect] }
            return words
        default:
            try allow(otherKeys)
            var words = op.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if let args = o["args"] {
                guard case .array(let list) = args else { throw Problem(line: line, "\"args\" is an array of strings") }
                for item in list {
                    guard let t = item.text else { throw Problem(line: line, "\"args\" is an array of strings") }
                    words.append(t)
                }
            }
            return words
        }
    }
}

/// Splits a JSON array into its elements' bytes, each with the line it starts
/// on, so that a problem in one names its line. Strings, escapes and nesting are
/// followed; each element's own syntax is checked by `JSONValue.parse`.
enum JSONElements {
    static func split(_ bytes: [UInt8]) throws(BatchFile.Problem) -> [(Int, ArraySlice<UInt8>)] {
        var i = 0, line = 1
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        func space() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0D || bytes[i] == 0x0A {
                if bytes[i] == 0x0A { line += 1 }
                i += 1
            }
        }
        space()
        guard i < bytes.count, bytes[i] == UInt8(ascii: "[") else { throw BatchFile.Problem(line: line, "a JSON batch is an array of operations") }
        i += 1
        var out: [(Int, ArraySlice<UInt8>)] = []
        space()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
        } else {
            while true {
                space()
                let startLine = line, start = i
                var depth = 0
                var inString = false
                scan: while i < bytes.count {
                    let c = bytes[i]
                    if inString {
                        if c == UInt8(ascii: "\\") { i += 2; continue }
                        if c == UInt8(ascii: "\"") { inString = false }
                        if c == 0x0A { line += 1 }
                        i += 1
                        continue
                    }
                    switch c {
                    case UInt8(ascii: "\""): inString = true
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        if depth == 0 { break scan }
                        depth -= 1
                    case UInt8(ascii: ","):
                        if depth == 0 { break scan }
                    case 0x0A: line += 1
                    default: break
                    }
                    i += 1
                }
                guard i < bytes.count else { throw BatchFile.Problem(line: startLine, "unterminated JSON array (a missing ] or \")") }
                if i == start { throw BatchFile.Problem(line: line, "an empty element in the JSON array") }
                out.append((startLine, bytes[start..<min(i, bytes.count)]))
                if bytes[i] == UInt8(ascii: "]") { i += 1; break }
                if bytes[i] == UInt8(ascii: "}") { throw BatchFile.Problem(line: line, "an unmatched } in the JSON array") }
                i += 1   // ","
            }
        }
        space()
        if i < bytes.count { throw BatchFile.Problem(line: line, "text after the JSON array") }
        return out
    }
}
