/// A migration file: `NNNN_slug.sql` with `-- migrate:up` and `-- migrate:down` sections.

import FSConfCore

public struct MigrationFile: Equatable, Sendable {
    public var version: Int
    public var name: String
    public var filename: String
    public var up: String
    public var down: String
    /// Line (1-based, in the file) where the up and down sections' SQL begins.
    public var upLine: Int
    public var downLine: Int
    /// SHA-256 of the whole file: any edit of an applied file is drift.
    public var checksum: String

    public static let upMarker = "-- migrate:up"
    public static let downMarker = "-- migrate:down"

    /// Parses `contents` of the file called `filename` (no directory part).
    public init(filename: String, contents: String) throws(MigrationError) {
        guard let (version, name) = MigrationFile.parseFilename(filename) else {
            throw .badFilename(filename)
        }
        let lines = contents.split(separator: "\n", omittingEmptySubsequences: false)
        var upAt: Int?, downAt: Int?
        for (index, raw) in lines.enumerated() {
            let line = SQLSplitter.trimmed(String(raw))
            if line == MigrationFile.upMarker {
                if upAt != nil { throw .duplicateMarker(filename, MigrationFile.upMarker, index + 1) }
                upAt = index
            } else if line == MigrationFile.downMarker {
                if downAt != nil { throw .duplicateMarker(filename, MigrationFile.downMarker, index + 1) }
                downAt = index
            }
        }
        if SQLSplitter.trimmed(contents).isEmpty { throw .emptyFile(filename) }
        guard let upAt else { throw .missingMarker(filename, MigrationFile.upMarker) }
        guard let downAt else { throw .missingMarker(filename, MigrationFile.downMarker) }
        guard upAt < downAt else { throw .markersOutOfOrder(filename) }
        for index in 0..<upAt where !MigrationFile.isBlankOrComment(lines[index]) {
            throw .sqlOutsideSections(filename, index + 1)
        }
        func join(_ range: Range<Int>) -> String { lines[range].joined(separator: "\n") }
        self.version = version
        self.name = name
        self.filename = filename
        self.up = join((upAt + 1)..<downAt)
        self.down = join((downAt + 1)..<lines.count)
        self.upLine = upAt + 2
        self.downLine = downAt + 2
        self.checksum = SHA256.hex(contents)
        if SQLSplitter.split(up).isEmpty { throw .emptyUp(filename) }
    }

    /// Earlier texts of bundled files that databases may have recorded, and that still
    /// count as this file: 0001 and 0003 lost their statements on the cluster-wide
    /// roles (creating a role needs CREATEROLE; migrations run as the database owner).
    /// Their tables, columns and functions are identical. See docs/migrations.md.
    public static let supersededChecksums: [Int: Set<String>] = [
        1: ["5c14edbf6de4ef3a386490ddd7bac5a55a264a6d87b0dee84d8fe837a9ee093f"],
        3: ["864d09a5d9dc5c522d5a2079d5e27aafb54720efa55083147a56a7b8b8faa853"],
    ]

    /// True when `recorded` (a checksum in schema_migrations) is this file's, or an
    /// earlier text of it listed in `supersededChecksums`.
    public func matches(checksum recorded: String) -> Bool {
        recorded == checksum || MigrationFile.supersededChecksums[version]?.contains(recorded) == true
    }

    public var upStatements: [SQLStatement] { SQLSplitter.split(up, firstLine: upLine) }
    public var downStatements: [SQLStatement] { SQLSplitter.split(down, firstLine: downLine) }
    public var isReversible: Bool { !downStatements.isEmpty }

    /// `0001_initial_schema.sql` → (1, "initial_schema").
    public static func parseFilename(_ filename: String) -> (Int, String)? {
        guard filename.hasSuffix(".sql") else { return nil }
        let stem = filename.dropLast(4)
        guard let underscore = stem.firstIndex(of: "_") else { return nil }
        let digits = stem[..<underscore], slug = stem[stem.index(after: underscore)...]
        guard digits.count >= 4, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              !slug.isEmpty,
              slug.allSatisfy({ ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "_" }),
              let version = Int(digits), version > 0
        else { return nil }
        return (version, String(slug))
    }

    /// The name `migrate new` gives the next file: `NNNN_slug.sql`.
    public static func filename(version: Int, slug: String) -> String {
        var digits = String(version)
        while digits.count < 4 { digits = "0" + digits }
        return "\(digits)_\(slug).sql"
    }

    /// Turns free text into a slug (`Add gateway index` → `add_gateway_index`), or nil.
    public static func slug(_ text: String) -> String? {
        var out = ""
        for ch in text.lowercased() {
            if ch.isASCII && (ch.isLetter || ch.isNumber) { out.append(ch) }
            else if !out.isEmpty && out.last != "_" { out.append("_") }
        }
        while out.last == "_" { out.removeLast() }
        return out.isEmpty ? nil : out
    }

    public static func template(slug: String) -> String {
        """
        -- \(slug)
        -- Runs in one transaction; a failing statement rolls the whole file back.

        \(upMarker)


        \(downMarker)

        """
    }

    private static func isBlankOrComment(_ line: Substring) -> Bool {
        let t = SQLSplitter.trimmed(String(line))
        return t.isEmpty || t.hasPrefix("--")
    }
}

public enum MigrationError: Error, Equatable, Sendable, CustomStringConvertible {
    case badFilename(String)
    case emptyFile(String)
    case missingMarker(String, String)
    case duplicateMarker(String, String, Int)
    case markersOutOfOrder(String)
    case sqlOutsideSections(String, Int)
    case emptyUp(String)
    case duplicateVersion(Int, String, String)
    case drift(String)
    case missingFile(version: Int, name: String)
    case outOfOrder(pending: String, applied: String)
    case irreversible(String)
    case unknownTarget(Int)

    public var description: String {
        switch self {
        case .badFilename(let f):
            return "\(f): migration files are named NNNN_slug.sql (4+ digits, lower-case slug)"
        case .emptyFile(let f): return "\(f): file is empty"
        case .missingMarker(let f, let m): return "\(f): missing '\(m)' line"
        case .duplicateMarker(let f, let m, let line): return "\(f):\(line): second '\(m)' line"
        case .markersOutOfOrder(let f): return "\(f): '\(MigrationFile.downMarker)' comes before '\(MigrationFile.upMarker)'"
        case .sqlOutsideSections(let f, let line): return "\(f):\(line): SQL before '\(MigrationFile.upMarker)'"
        case .emptyUp(let f): return "\(f): the up section has no SQL"
        case .duplicateVersion(let v, let a, let b): return "version \(v) is used twice: \(a) and \(b)"
        case .drift(let f): return "\(f) was changed after it was applied (checksum differs); restore it, or add a new migration"
        case .missingFile(let v, let n): return "migration \(MigrationFile.filename(version: v, slug: n)) is applied but its file is missing"
        case .outOfOrder(let p, let a): return "\(p) is pending but the later \(a) is already applied; give it a higher number"
        case .irreversible(let f): return "\(f) has an empty down section: it cannot be reverted"
        case .unknownTarget(let v): return "no migration has version \(v)"
        }
    }
}

/// A migration recorded in the database as applied.
public struct AppliedMigration: Equatable, Sendable {
    public var version: Int
    public var name: String
    public var checksum: String
    public var appliedAt: String
    public init(version: Int, name: String, checksum: String, appliedAt: String = "") {
        self.version = version; self.name = name; self.checksum = checksum; self.appliedAt = appliedAt
    }
}

/// What `status` and `verify` show for one version.
public struct MigrationStatusLine: Equatable, Sendable {
    public enum State: Equatable, Sendable { case applied, pending, drifted, missingFile, outOfOrder }
    public var version: Int
    public var filename: String
    public var state: State
    public var appliedAt: String
}

/// Pure planning: files on disk + rows in the table → what to run, or why not.
public struct MigrationPlanner: Sendable {
    public let files: [MigrationFile]
    public let applied: [AppliedMigration]

    /// Sorts the files and refuses duplicate versions.
    public init(files: [MigrationFile], applied: [AppliedMigration]) throws(MigrationError) {
        let sorted = files.sorted { $0.version < $1.version }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.version == b.version {
            throw .duplicateVersion(a.version, a.filename, b.filename)
        }
        self.files = sorted
        self.applied = applied.sorted { $0.version < $1.version }
    }

    public var currentVersion: Int { applied.last?.version ?? 0 }

    public func status() -> [MigrationStatusLine] {
        var lines: [MigrationStatusLine] = []
        let appliedByVersion = Dictionary(uniqueKeysWithValues: applied.map { ($0.version, $0) })
        let fileVersions = Set(files.map(\.version))
        let top = currentVersion
        for file in files {
            if let row = appliedByVersion[file.version] {
                let state: MigrationStatusLine.State = file.matches(checksum: row.checksum) ? .applied : .drifted
                lines.append(.init(version: file.version, filename: file.filename, state: state, appliedAt: row.appliedAt))
            } else {
                lines.append(.init(version: file.version, filename: file.filename,
                                   state: file.version < top ? .outOfOrder : .pending, appliedAt: ""))
            }
        }
        for row in applied where !fileVersions.contains(row.version) {
            lines.append(.init(version: row.version, filename: MigrationFile.filename(version: row.version, slug: row.name),
                               state: .missingFile, appliedAt: row.appliedAt))
        }
        return lines.sorted { $0.version < $1.version }
    }

    /// Every problem `verify` reports, in version order.
    public func problems() -> [MigrationError] {
        status().compactMap { line in
            switch line.state {
            case .applied, .pending: return nil
            case .drifted: return .drift(line.filename)
            case .missingFile:
                let row = applied.first { $0.version == line.version }!
                return .missingFile(version: row.version, name: row.name)
            case .outOfOrder:
                let later = applied.last!
                return .outOfOrder(pending: line.filename,
                                   applied: MigrationFile.filename(version: later.version, slug: later.name))
            }
        }
    }

    /// Files to apply, in order, to reach `target` (default: the latest).
    public func planUp(to target: Int? = nil) throws(MigrationError) -> [MigrationFile] {
        if let target, target != 0, !files.contains(where: { $0.version == target }) { throw .unknownTarget(target) }
        if let first = problems().first { throw first }
        let limit = target ?? Int.max
        let done = Set(applied.map(\.version))
        return files.filter { !done.contains($0.version) && $0.version <= limit }
    }

    /// Files to revert, newest first: down to version `to` (kept), or the last `steps`.
    public func planDown(to target: Int? = nil, steps: Int? = nil) throws(MigrationError) -> [MigrationFile] {
        if let target, target != 0, !applied.contains(where: { $0.version == target }) { throw .unknownTarget(target) }
        var rows = applied.reversed().map { $0 }
        if let target { rows = rows.filter { $0.version > target } }
        if let steps { rows = Array(rows.prefix(steps)) }
        var out: [MigrationFile] = []
        for row in rows {
            guard let file = files.first(where: { $0.version == row.version }) else {
                throw .missingFile(version: row.version, name: row.name)
            }
            if !file.matches(checksum: row.checksum) { throw .drift(file.filename) }
            if !file.isReversible { throw .irreversible(file.filename) }
            out.append(file)
        }
        return out
    }
}
