/// A unified diff of two texts, line by line, in `diff -u` format (GNU diffutils):
/// `--- OLD` / `+++ NEW` headers, `@@ -l,s +l,s @@` hunks with `context` lines
/// around each change, `\ No newline at end of file` after a last line without
/// one. Pure: no external tool.
///
/// The edit script is Myers' shortest one (deletions before insertions in each
/// changed run). A difference of more than `maximumEdits` lines between the
/// common head and tail is shown as the whole middle replaced (still a correct
/// diff, not a minimal one) so that memory stays bounded.
public enum UnifiedDiff {
    public static let maximumEdits = 2_000

    /// The diff text; empty when the texts are equal.
    public static func diff(_ old: String, _ new: String, oldLabel: String, newLabel: String, context: Int = 3) -> String {
        let a = lines(old), b = lines(new)
        if a == b { return "" }
        let ops = script(a, b)
        var out = "--- \(oldLabel)\n+++ \(newLabel)\n"
        for hunk in hunks(ops, a, b, context: context) {
            out += "@@ -\(range(hunk.oldStart, hunk.oldCount)) +\(range(hunk.newStart, hunk.newCount)) @@\n"
            for (mark, line) in hunk.lines {
                out += mark
                if line.hasSuffix("\n") { out += line } else { out += line + "\n\\ No newline at end of file\n" }
            }
        }
        return out
    }

    /// The text's lines, each with its "\n" (the last may lack one).
    static func lines(_ text: String) -> [Substring] {
        var out: [Substring] = []
        var start = text.startIndex
        var i = text.startIndex
        while i < text.endIndex {
            let next = text.index(after: i)
            if text[i] == "\n" {
                out.append(text[start..<next])
                start = next
            }
            i = next
        }
        if start < text.endIndex { out.append(text[start...]) }
        return out
    }

    enum Op: Equatable { case keep(Int, Int), delete(Int), insert(Int) }

    /// The edit script turning `a` into `b`.
    static func script(_ a: [Substring], _ b: [Substring]) -> [Op] {
        var head = 0
        while head < a.count, head < b.count, a[head] == b[head] { head += 1 }
        var tail = 0
        while tail < a.count - head, tail < b.count - head, a[a.count - 1 - tail] == b[b.count - 1 - tail] { tail += 1 }
        var ops: [Op] = (0..<head).map { .keep($0, $0) }
        ops += middle(a, b, from: head, aEnd: a.count - tail, bEnd: b.count - tail)
        ops += (0..<tail).map { .keep(a.count - tail + $0, b.count - tail + $0) }
        return ops
    }

    /// Myers' algorithm on a[lo..<aEnd] against b[lo..<bEnd] (greedy forward
    /// pass keeping each round's frontier, then a backtrack).
    static func middle(_ a: [Substring], _ b: [Substring], from lo: Int, aEnd: Int, bEnd: Int) -> [Op] {
        let n = aEnd - lo, m = bEnd - lo
        if n == 0 { return (0..<m).map { .insert(lo + $0) } }
        if m == 0 { return (0..<n).map { .delete(lo + $0) } }
        let maxD = min(n + m, maximumEdits)
        let offset = maxD + 1
        var v = [Int](repeating: 0, count: 2 * maxD + 3)
        // Round d reads the frontier of round d - 1 on diagonals -d-1...d+1: only
        // that window is kept (the memory is about maxD², not maxD × (n + m)).
        var trace: [[Int]] = []
        var found = false
        search: for d in 0...maxD {
            trace.append(Array(v[(offset - d - 1)...(offset + d + 1)]))
            for k in stride(from: -d, through: d, by: 2) {
                var x: Int
                if k == -d || (k != d && v[offset + k - 1] < v[offset + k + 1]) {
                    x = v[offset + k + 1]            // down: an insertion
                } else {
                    x = v[offset + k - 1] + 1        // right: a deletion
                }
                var y = x - k
                while x < n, y < m, a[lo + x] == b[lo + y] { x += 1; y += 1 }
                v[offset + k] = x
                if x >= n && y >= m { found = true; break search }
            }
        }
        guard found else {
            return (0..<n).map { .delete(lo + $0) } + (0..<m).map { .insert(lo + $0) }
        }
        // Backtrack from (n, m) through the recorded frontiers.
        var ops: [Op] = []
        var x = n, y = m
        for d in stride(from: trace.count - 1, through: 0, by: -1) {
            let window = trace[d]
            func vd(_ k: Int) -> Int { window[k + d + 1] }
            let k = x - y
            let prevK: Int
            if d == 0 {
                while x > 0 && y > 0 { x -= 1; y -= 1; ops.append(.keep(lo + x, lo + y)) }
                break
            }
            if k == -d || (k != d && vd(k - 1) < vd(k + 1)) { prevK = k + 1 } else { prevK = k - 1 }
            let prevX = vd(prevK)
            let prevY = prevX - prevK
            while x > prevX && y > prevY { x -= 1; y -= 1; ops.append(.keep(lo + x, lo + y)) }
            if prevK == k + 1 { ops.append(.insert(lo + prevY)) } else { ops.append(.delete(lo + prevX)) }
            x = prevX; y = prevY
        }
        return normalised(ops.reversed())
    }

    /// Each run of changes as its deletions, then its insertions.
    static func normalised(_ ops: [Op]) -> [Op] {
        var out: [Op] = []
        var deletes: [Op] = [], inserts: [Op] = []
        func flush() { out += deletes + inserts; deletes = []; inserts = [] }
        for op in ops {
            switch op {
            case .keep: flush(); out.append(op)
            case .delete: deletes.append(op)
            case .insert: inserts.append(op)
            }
        }
        flush()
        return out
    }

    struct Hunk {
        var oldStart = 0, oldCount = 0, newStart = 0, newCount = 0
        var lines: [(String, Substring)] = []
    }

    static func hunks(_ ops: [Op], _ a: [Substring], _ b: [Substring], context: Int) -> [Hunk] {
        // Indices of changes; changes at most 2 × context unchanged lines apart
        // share a hunk, which spans `context` lines before and after them.
        let changed = ops.indices.filter { if case .keep = ops[$0] { return false }; return true }
        guard !changed.isEmpty else { return [] }
        var groups: [(Int, Int)] = []
        var start = changed[0], end = changed[0]
        for i in changed.dropFirst() {
            if i - end - 1 > 2 * context { groups.append((start, end)); start = i }
            end = i
        }
        groups.append((start, end))
        return groups.map { (first, last) in
            let lo = max(0, first - context), hi = min(ops.count - 1, last + context)
            var h = Hunk()
            var oldFirst: Int?, newFirst: Int?
            // Where the hunk sits in each file when it holds none of its lines:
            // the number of lines before it.
            var oldBefore = 0, newBefore = 0
            for op in ops[..<lo] {
                switch op {
                case .keep: oldBefore += 1; newBefore += 1
                case .delete: oldBefore += 1
                case .insert: newBefore += 1
                }
            }
            for op in ops[lo...hi] {
                switch op {
                case .keep(let i, let j):
                    h.lines.append((" ", a[i]))
                    oldFirst = oldFirst ?? i; newFirst = newFirst ?? j
                    h.oldCount += 1; h.newCount += 1
                case .delete(let i):
                    h.lines.append(("-", a[i]))
                    oldFirst = oldFirst ?? i
                    h.oldCount += 1
                case .insert(let j):
                    h.lines.append(("+", b[j]))
                    newFirst = newFirst ?? j
                    h.newCount += 1
                }
            }
            h.oldStart = h.oldCount == 0 ? oldBefore : oldFirst! + 1
            h.newStart = h.newCount == 0 ? newBefore : newFirst! + 1
            return h
        }
    }

    static func range(_ start: Int, _ count: Int) -> String {
        count == 1 ? "\(start)" : "\(start),\(count)"
    }
}
