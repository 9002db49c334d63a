/// Prerendered contexts (migration 0009, docs/performance.md "Big contexts").
///
/// A context's answer differs between nodes only by its `$${name}` references, so
/// fsconf's writers render it once with the references left in place and store
/// the document; a node then expands the references in the stored text
/// (`VariableExpander.expandEscaped`) instead of reading and rendering one row per
/// extension, condition, regex and action. A document is stored only when that
/// gives exactly what the node would render from the rows; `make` checks it on
/// the context itself.
public enum DialplanPrerender {
    /// The renderer's output format: bumped whenever DialplanRenderer writes
    /// different bytes for the same rows. A node serves only documents of its own
    /// format (older ones are read as rows until a writer renders them again).
    /// 2: stored with its packed form too (migration 0010), which nodes read.
    public static let format = 2

    public enum Outcome: Equatable, Sendable {
        /// The document to store, references unexpanded, and the expressions holding
        /// references, which each node checks with its own values (`checks`).
        case document(String, checks: [String])
        /// Why the context is read as rows on every node.
        case ineligible(String)
    }

    /// The document for `data` (a context read as every node reads it: no node
    /// name, so node-scoped rows left out; `scoped` says whether there were any).
    public static func make(_ data: DialplanData, scoped: Bool, section: PlanSection,
                            compiler: any RegexCompiler) -> Outcome {
        guard let context = data.context else { return .ineligible("no such context") }
        if scoped { return .ineligible("extensions scoped to nodes (each node gets its own variants)") }
        var plain = data
        plain.globals = [:]
        plain.prerendered = nil
        let query = DialplanQuery.context(context.name)
        // References stay as written: a node value of `$${name}` for every name.
        let kept = DialplanRenderer.render(query, plain, compiler: compiler, node: { "$${\($0)}" }, section: section)
        if let bad = kept.skipped.first {
            return .ineligible("invalid extension \(bad.name) (position \(bad.position)): \(bad.problems.joined(separator: "; "))")
        }
        // The proof on this very context: with values that escaping changes and
        // that name their reference, expanding the stored text must give what the
        // renderer gives (a reference in an attribute the renderer does not
        // expand, an unterminated one, a name escaping alters: all differ here).
        let probe: (String) -> String? = { "<&\"'\($0)'\">" }
        let expected = DialplanRenderer.render(query, plain, compiler: compiler, node: probe, section: section)
        var expander = VariableExpander(node: probe)
        guard expander.expandEscaped(kept.xml) == expected.xml else {
            return .ineligible("$${…} references the stored text cannot carry (in a name or an attribute nodes do not expand)")
        }
        // The expressions the validator expands (and so checks with each node's
        // values) that hold a reference: recorded by running it once more.
        var checks: [String] = []
        for ext in context.extensions {
            _ = DialplanValidator.problems(ext, compiler: AcceptingCompiler()) { expression in
                if VariableExpander.hasReference(expression), !checks.contains(expression) { checks.append(expression) }
                return expression
            }
        }
        return .document(kept.xml, checks: checks)
    }

    /// Accepts every pattern: the recording pass above wants the expressions, not verdicts.
    struct AcceptingCompiler: RegexCompiler {
        func problem(pattern: String, caseless: Bool, dotall: Bool) -> String? { nil }
    }

    /// True when each of `checks`, expanded on this node, is an expression
    /// FreeSWITCH accepts (else the node reads the rows and leaves the extension out).
    public static func passes(_ checks: [String], expander: inout VariableExpander, compiler: any RegexCompiler) -> Bool {
        checks.allSatisfy { FreeSWITCHRegex.problem(expander.expand($0), compiler: compiler) == nil }
    }
}

extension VariableExpander {
    /// `text` — XML whose values were escaped with their `$${name}` references left
    /// in place — with each reference replaced by its escaped value: what the
    /// renderer writes when it expands each value before escaping it (escaping
    /// works byte by byte, and references are ASCII-delimited).
    public mutating func expandEscaped(_ text: String) -> String {
        var copy = text
        return copy.withUTF8 { expandEscaped($0) } ?? text
    }

    /// The same over UTF-8 bytes; nil when they hold no reference (use them as they
    /// are). Two passes: the references and their escaped values, then the result
    /// written once into a string of its exact size (a context can be megabytes).
    public mutating func expandEscaped(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard let base = bytes.baseAddress else { return nil }
        let n = bytes.count
        var found: [(start: Int, end: Int, value: [UInt8])] = []
        var i = 0
        while let at = VariableExpander.nextReference(base, n, from: i) {
            var end = at + 3
            while end < n && base[end] != UInt8(ascii: "}") { end += 1 }
            guard end < n else { break }  // unterminated: literal to the end
            var value: [UInt8] = []
            XMLWriter.escape(expanded(String(decoding: UnsafeBufferPointer(start: base + at + 3, count: end - at - 3), as: UTF8.self)),
                             into: &value)
            found.append((at, end + 1, value))
            i = end + 1
        }
        if found.isEmpty { return nil }
        let total = found.reduce(n) { $0 - ($1.end - $1.start) + $1.value.count }
        return String(unsafeUninitializedCapacity: total) { out in
            guard let dst = out.baseAddress else { return 0 }
            var w = 0, literal = 0
            for ref in found {
                (dst + w).update(from: base + literal, count: ref.start - literal)
                w += ref.start - literal
                ref.value.withUnsafeBufferPointer { v in
                    if let p = v.baseAddress { (dst + w).update(from: p, count: v.count) }
                }
                w += ref.value.count
                literal = ref.end
            }
            (dst + w).update(from: base + literal, count: n - literal)
            return w + n - literal
        }
    }
}
