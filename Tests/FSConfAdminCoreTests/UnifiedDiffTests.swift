import FSConfAdminCore
import XCTest

/// The pure unified diff of `apply --dry-run` and `import --dry-run`: exact text
/// for known cases, and on random inputs a diff that patches old into new with
/// the fewest changed lines (the longest common subsequence kept).
final class UnifiedDiffTests: XCTestCase {
    func diff(_ a: String, _ b: String, context: Int = 3) -> String {
        UnifiedDiff.diff(a, b, oldLabel: "a", newLabel: "b", context: context)
    }

    func testEqualTextsGiveNothing() {
        XCTAssertEqual(diff("", ""), "")
        XCTAssertEqual(diff("x\ny\n", "x\ny\n"), "")
    }

    func testOneChangedLineWithContext() {
        let old = (1...10).map { "l\($0)\n" }.joined()
        let new = old.replacingOccurrences(of: "l5\n", with: "L5\n")
        XCTAssertEqual(diff(old, new), """
            --- a
            +++ b
            @@ -2,7 +2,7 @@
             l2
             l3
             l4
            -l5
            +L5
             l6
             l7
             l8

            """)
    }

    func testHunksSplitOnlyBeyondTwiceTheContext() {
        let old = (1...20).map { "l\($0)\n" }.joined()
        // Changes at 3 and 10: six unchanged lines between → one hunk.
        let near = old.replacingOccurrences(of: "l3\n", with: "x\n").replacingOccurrences(of: "l10\n", with: "y\n")
        XCTAssertEqual(diff(old, near).components(separatedBy: "@@ -").count - 1, 1)
        // Changes at 3 and 11: seven unchanged lines between → two hunks.
        let far = old.replacingOccurrences(of: "l3\n", with: "x\n").replacingOccurrences(of: "l11\n", with: "y\n")
        XCTAssertEqual(diff(old, far), """
            --- a
            +++ b
            @@ -1,6 +1,6 @@
             l1
             l2
            -l3
            +x
             l4
             l5
             l6
            @@ -8,7 +8,7 @@
             l8
             l9
             l10
            -l11
            +y
             l12
             l13
             l14

            """)
    }

    func testInsertionsAndDeletionsAtTheEdges() {
        XCTAssertEqual(diff("", "a\n"), "--- a\n+++ b\n@@ -0,0 +1 @@\n+a\n")
        XCTAssertEqual(diff("a\nb\n", ""), "--- a\n+++ b\n@@ -1,2 +0,0 @@\n-a\n-b\n")
        // Without context an insertion after line 2 sits at "-2,0".
        XCTAssertEqual(diff("a\nb\nc\n", "a\nb\nX\nc\n", context: 0), "--- a\n+++ b\n@@ -2,0 +3 @@\n+X\n")
        XCTAssertEqual(diff("a\nb\nc\n", "b\nc\n", context: 0), "--- a\n+++ b\n@@ -1 +0,0 @@\n-a\n")
    }

    func testMissingFinalNewlineIsShown() {
        XCTAssertEqual(diff("a\nb", "a\nb\n"), """
            --- a
            +++ b
            @@ -1,2 +1,2 @@
             a
            -b
            \\ No newline at end of file
            +b

            """)
    }

    func testDeletionsComeBeforeInsertionsInARun() {
        XCTAssertEqual(diff("a\nb\nc\nd\n", "a\nX\nY\nd\n"), "--- a\n+++ b\n@@ -1,4 +1,4 @@\n a\n-b\n-c\n+X\n+Y\n d\n")
    }

    func testRandomDiffsPatchAndAreMinimal() {
        var rng = SplitMix(seed: 14)
        for round in 0..<400 {
            let alphabet = ["a", "b", "c", "d", "<x/>", ""]
            let a = (0..<Int(rng.next() % 30)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] + "\n" }
            var b = a
            for _ in 0..<Int(rng.next() % 8) {
                let at = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count + 1))
                switch rng.next() % 3 {
                case 0: b.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))] + "\n", at: at)
                case 1: if at < b.count { b.remove(at: at) }
                default: if at < b.count { b[at] = "z\n" }
                }
            }
            let context = Int(rng.next() % 4)
            let text = diff(a.joined(), b.joined(), context: context)
            if a == b { XCTAssertEqual(text, ""); continue }
            XCTAssertEqual(patch(a, text), b, "round \(round):\n\(text)")
            let changed = text.split(separator: "\n", omittingEmptySubsequences: false)
                .dropFirst(2).filter { $0.hasPrefix("+") || $0.hasPrefix("-") }.count
            XCTAssertEqual(changed, a.count + b.count - 2 * lcs(a, b), "round \(round): not minimal\n\(text)")
        }
    }

    func testVeryDifferentTextsStillPatch() {
        let a = (0..<3000).map { "a\($0)\n" }, b = (0..<3000).map { "b\($0)\n" }
        let text = diff(a.joined(), b.joined())
        XCTAssertEqual(patch(a, text), b)
    }

    /// Applies a unified diff's hunks to `lines` (strictly: context and removed
    /// lines must match).
    func patch(_ lines: [String], _ diff: String) -> [String]? {
        var out: [String] = []
        var at = 0
        let rows = diff.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).dropFirst(2)
        for row in rows {
            if row.hasPrefix("@@ -") {
                let old = row.dropFirst(4).prefix { $0 != " " }
                let parts = old.split(separator: ",")
                var start = Int(parts[0])!
                if parts.count == 2, Int(parts[1])! == 0 { start += 1 }
                while at < start - 1 { out.append(lines[at]); at += 1 }
            } else if row.hasPrefix(" ") {
                guard at < lines.count, lines[at] == row.dropFirst() + "\n" else { return nil }
                out.append(lines[at]); at += 1
            } else if row.hasPrefix("-") {
                guard at < lines.count, lines[at] == row.dropFirst() + "\n" else { return nil }
                at += 1
            } else if row.hasPrefix("+") {
                out.append(row.dropFirst() + "\n")
            }
        }
        while at < lines.count { out.append(lines[at]); at += 1 }
        return out
    }

    func lcs(_ a: [String], _ b: [String]) -> Int {
        var t = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                t[i][j] = a[i] == b[j] ? t[i + 1][j + 1] + 1 : max(t[i + 1][j], t[i][j + 1])
            }
        }
        return t[0][0]
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

/// Secrets in reviewed XML: hidden, numbered by value, so a change still shows.
final class SecretMaskTests: XCTestCase {
    func testSecretValuesAreNumberedAcrossBothSides() {
        var mask = SecretMask()
        let before = """
            <param name="password" value="change-me"/>
            <param name="vm-password" value="1234"/>
            <variable name="effective_caller_id_name" value="change-me"/>
            <param value="s3cret" name="Password"/>
            <gateway name="carrier"><param name="proxy" value="sip.example"/>
            """
        XCTAssertEqual(mask.apply(before), """
            <param name="password" value="(hidden 1)"/>
            <param name="vm-password" value="(hidden 2)"/>
            <variable name="effective_caller_id_name" value="change-me"/>
            <param value="(hidden 3)" name="Password"/>
            <gateway name="carrier"><param name="proxy" value="sip.example"/>
            """)
        // The other side of the review: the same value, the same number; a new one, a new number.
        XCTAssertEqual(mask.apply("<param name=\"password\" value=\"change-me\"/>\n<param name=\"vm-password\" value=\"4321\"/>\n"),
                       "<param name=\"password\" value=\"(hidden 1)\"/>\n<param name=\"vm-password\" value=\"(hidden 4)\"/>\n")
        XCTAssertEqual(mask.apply("<param name=\"a1-hash\" value=\"abc\"/><x default-value=\"1\"/>"),
                       "<param name=\"a1-hash\" value=\"(hidden 5)\"/><x default-value=\"1\"/>")
        XCTAssertEqual(mask.apply("<param name=\"password\"/>"), "<param name=\"password\"/>")
    }
}
