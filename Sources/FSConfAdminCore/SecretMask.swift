/// Hides secrets in rendered XML shown for review (`apply --dry-run`, `import
/// --dry-run`): the `value` of an element whose `name` is a secret's
/// (`FieldValidation.isSecretName`: `<param name="password" value="…"/>`, a
/// gateway's password, event_socket.conf's…) becomes `(hidden N)`, N numbering the
/// distinct values the mask has seen. One mask is used for both sides of a
/// lookup's review, so a changed secret still shows as a changed line and an
/// unchanged one as context, without either value.
///
/// The renderers write each element on one line, every attribute value escaped
/// (no `"` inside), which is what this reads.
public struct SecretMask: Sendable {
    var numbers: [String: Int] = [:]

    public init() {}

    public mutating func apply(_ xml: String) -> String {
        guard xml.contains("name=\"") else { return xml }
        var out = ""
        out.reserveCapacity(xml.utf8.count)
        var first = true
        for line in xml.split(separator: "\n", omittingEmptySubsequences: false) {
            if !first { out += "\n" }
            first = false
            out += mask(line)
        }
        return out
    }

    mutating func mask(_ line: Substring) -> Substring {
        guard let name = SecretMask.attribute("name", in: line), FieldValidation.isSecretName(name),
              let range = SecretMask.valueRange("value", in: line) else { return line }
        let value = String(line[range])
        let n: Int
        if let known = numbers[value] { n = known } else { n = numbers.count + 1; numbers[value] = n }
        return line[..<range.lowerBound] + "(hidden \(n))" + line[range.upperBound...]
    }

    /// The text of ` attr="…"` in the line.
    static func attribute(_ attr: String, in line: Substring) -> String? {
        valueRange(attr, in: line).map { String(line[$0]) }
    }

    static func valueRange(_ attr: String, in line: Substring) -> Range<Substring.Index>? {
        guard let open = line.firstRange(of: " \(attr)=\"") else { return nil }
        guard let close = line[open.upperBound...].firstIndex(of: "\"") else { return nil }
        return open.upperBound..<close
    }
}
