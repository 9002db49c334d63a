import ArgumentParser
import FSConfAdminCore
import FSConfCore
import FSConfAdminStore
import FSConfRegex
import FSConfStore
import Foundation
import Glibc

extension Fsconf {
    struct Import: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import a FreeSWITCH XML tree (freeswitch.xml and everything it includes).",
            discussion: """
                Reads the tree the way FreeSWITCH's pre-processor does (X-PRE-PROCESS include/set),
                keeps $${name} references as references, and stores directory, dialplan, chatplan,
                configuration and languages field by field, in one transaction recorded as one
                change set. Entities that are already stored identically are left alone; stored
                entities missing from the tree stay unless --replace names their section.
                Anything the schema cannot hold is reported as FILE:LINE and fails the import
                unless --skip-unrepresentable is given. See docs/import-export.md.
                --scope NODE,@GROUP imports a node's own tree as the variants of that scope
                (docs/cluster.md): its globals, domains, contexts and documents are stored limited to
                those nodes, beside every other scope's; those equal to what every node gets are not
                stored again. Variants of other scopes inside what is rewritten are kept.
                """)

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var write: WriteOptions
        @Argument(help: "The tree's freeswitch.xml (or any file whose root is <document>).")
        var path: String
        @Option(name: .customLong("domain-map"), help: ArgumentHelp(
            "Rename a domain while importing, e.g. '$${domain}=pbx.example.com' (repeatable).", valueName: "from=to"))
        var domainMap: [String] = []
        @Option(help: ArgumentHelp(
            "Make a section exactly the tree's, removing stored entities it lacks: directory, dialplan, chatplan, configuration, languages, globals or all (repeatable).",
            valueName: "section"))
        var replace: [String] = []
        @Flag(help: "Show what would change (+ added, ~ changed, - removed) and the rendered-XML diff of every lookup whose answer changes; write nothing.")
        var dryRun = false
        @OptionGroup var review: ReviewOptions
        @Flag(help: "Import what can be stored and only report what cannot, instead of failing.")
        var skipUnrepresentable = false
        @Flag(help: "Do not print the notes (node-evaluated globals, inert elements dropped...).")
        var quiet = false
        @Flag(help: "Follow includes that leave the tree's folder (their contents are stored and served to every node).")
        var allowOutsideIncludes = false
        @Option(help: ArgumentHelp("Store the tree as the variants of these nodes and @groups (node,@group,...).", valueName: "scope"))
        var scope: String?

        func validate() throws {
            try review.check(dryRun: dryRun, waiting: write.waiting)
            for m in domainMap where !m.contains("=") { throw ValidationError("--domain-map takes FROM=TO, got \(m)") }
            for r in replace where r != "all" && ConfigDiff.Section(rawValue: r) == nil {
                throw ValidationError("--replace takes directory, dialplan, chatplan, configuration, languages, globals or all; got \(r)")
            }
        }

        /// Pre-processes and maps the tree; a malformed tree fails with FILE:LINE.
        static func read(_ path: String, domainMap: [String: String], allowOutsideIncludes: Bool = false) throws(CLIFailure) -> (PreProcessor, ConfigImporter) {
            var pre = PreProcessor(fileSystem: LocalFileSystem(), mode: .keepReferences, allowOutsideIncludes: allowOutsideIncludes)
            do {
                try pre.run(path)
            } catch {
                throw CLIFailure(error.description, code: CLIFailure.Code.invalid)
            }
            do {
                return (pre, try ConfigImporter.load(pre, domainMap: domainMap, regex: PCRE2Compiler()))
            } catch {
                throw CLIFailure(error.description, code: CLIFailure.Code.invalid)
            }
        }

        func execute() throws {
            let started = Date()
            var map: [String: String] = [:]
            for m in domainMap {
                let eq = m.firstIndex(of: "=")!
                map[String(m[..<eq])] = String(m[m.index(after: eq)...])
            }
            let sections: Set<ConfigDiff.Section> = replace.contains("all")
                ? Set(ConfigDiff.Section.allCases) : Set(replace.compactMap { ConfigDiff.Section(rawValue: $0) })
            let scope = try self.scope.map { try ScopeCommand.scope([$0]) }

            // Read and map (no database yet): a malformed tree never touches it.
            let (pre, importer) = try Import.read(path, domainMap: map, allowOutsideIncludes: allowOutsideIncludes)
            if !quiet { for note in pre.notes + importer.notes { printErr("note: \(note)") } }
            for warning in importer.warnings { printErr("warning: \(warning)") }
            let issues = importer.unrepresentable
            if !issues.isEmpty {
                for issue in issues { printErr("\(skipUnrepresentable ? "skipped" : "unrepresentable"): \(issue)") }
                if !skipUnrepresentable {
                    throw CLIFailure("\(issues.count) thing(s) in the tree cannot be stored (listed above); nothing was imported. "
                                     + "Use --skip-unrepresentable to import the rest.", code: CLIFailure.Code.invalid)
                }
            }
            let tree = importer.tree
            let parsed = Date()

            /// What this import compares with and writes: the entities of its scope.
            func plan(_ store: ConfigStore) throws -> (StoredConfig, ConfigDiff) {
                let stored = try store.load(.slice(scope))
                var shared = ConfigTree()
                var tree = tree
                if scope != nil {
                    // A site's entities equal to every node's are not stored again (docs/cluster.md).
                    (tree, shared) = tree.splittingShared(with: try store.load(.slice(nil)).tree)
                }
                var diff = ConfigDiff(stored: stored.tree, imported: tree.scoped(scope), replace: sections)
                diff.removeStored(shared.scoped(scope), from: stored.tree)
                let kept = stored.keepingVariants(diff)
                if !kept.lost.isEmpty {
                    throw CLIFailure("the imported tree drops the parents of variants limited to some nodes, which this import would lose: "
                                     + kept.lost.joined(separator: ", ") + "; nothing was imported (remove or move them first)",
                                     code: CLIFailure.Code.conflict)
                }
                if !shared.isEmpty && !quiet {
                    printErr("note: \(shared.countsSummary) equal to every node's: not stored for \(scope!.description)")
                }
                return (stored, kept.diff)
            }

            let conn = try connection.connect()
            if dryRun {
                // The import as it would run, in a transaction rolled back: its entities,
                // then the rendered diff of each lookup it changes and the agent's commands.
                let store = ConfigStore(conn)
                let summary = "import \(pre.display(pre.filesRead.first ?? path)) (dry run)"
                let (diff, shown) = try review.dryRun(conn).review(actor: write.resolvedActor, source: "import", summary: summary, prepare: {
                    try store.lockImports()
                    return try plan(store)
                }, write: { (stored, diff) in
                    _ = try store.apply(diff, stored: stored, scope: scope)
                    return diff
                })
                for entry in diff.entries { print(entry.description) }
                shown.print(summary: "import: \(diff.isEmpty ? "nothing to change" : diff.summary); read \(tree.countsSummary) "
                            + "from \(pre.filesRead.count) file(s) (\(seconds(since: started)))")
                return
            }
            let written: (rows: Int, changeSet: String, summary: String)? = try Transactions.run(conn) {
                // One import at a time: a lock writers can take and nodes (readers) cannot.
                let store = ConfigStore(conn)
                try store.lockImports()
                let (stored, diff) = try plan(store)
                if diff.isEmpty {
                    print("nothing to change: the database already holds this tree (\(tree.countsSummary); \(seconds(since: started)))")
                    return nil
                }
                let actor = write.resolvedActor
                let summary = "import \(pre.display(pre.filesRead.first ?? path))\(scope.map { " {\($0)}" } ?? ""): \(diff.summary) (\(tree.countsSummary))"
                let changeSet = try ChangeSets.open(conn, actor: actor, source: "import", summary: summary)
                let rows = try store.apply(diff, stored: stored, scope: scope)
                try Admin.prerender(conn)
                return (rows, changeSet, diff.summary)
            }
            guard let (rows, changeSet, summary) = written else { return }
            print("imported: \(summary); \(rows) row(s) written; change set \(changeSet); "
                  + "\(tree.countsSummary) from \(pre.filesRead.count) file(s) "
                  + "(read \(String(format: "%.2f", parsed.timeIntervalSince(started))) s, total \(seconds(since: started)))")
        }
    }
}

private func seconds(since start: Date) -> String { String(format: "%.2f s", Date().timeIntervalSince(start)) }

/// The pre-processor's view of the real file system.
struct LocalFileSystem: PreProcessorFileSystem {
    func canonicalPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        var isDirectory: ObjCBool = false
        let resolved = String(cString: p)
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory), !isDirectory.boolValue else { return nil }
        return resolved
    }

    func size(_ path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int(st.st_size)
    }

    func read(_ path: String) throws -> [UInt8] {
        var st = stat()
        guard stat(path, &st) == 0 else { throw CLIFailure(String(cString: strerror(errno)), code: CLIFailure.Code.invalid) }
        // A device, a FIFO (/dev/zero, /dev/stdin…) would be read forever or block.
        guard st.st_mode & S_IFMT == S_IFREG else { throw CLIFailure("\(path) is not a regular file", code: CLIFailure.Code.invalid) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIFailure("permission denied or unreadable", code: CLIFailure.Code.invalid)
        }
        return [UInt8](data)
    }

    func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        var out: [String] = []
        for i in 0..<Int(g.gl_pathc) {
            if let p = g.gl_pathv[i] { out.append(String(cString: p)) }
        }
        return out.sorted()
    }
}
