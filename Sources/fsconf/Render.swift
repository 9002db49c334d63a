import ArgumentParser
import FSConfAdminCore
import FSConfCore
import FSConfNode
import FSConfAdminStore
import FSConfStore
import Foundation

extension Fsconf {
    struct Render: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print exactly the XML a node gets for a lookup (the node library's own code path).",
            discussion: """
                fsconf render directory DOMAIN [USER] [--action sip_auth]
                fsconf render dialplan CONTEXT
                fsconf render configuration FILE [--profile NAME]
                fsconf render languages LANG        (also: phrases LANG)
                --param NAME=VALUE adds any request header (purpose=gateways, Menu-Name=..., key=...);
                --global NAME=VALUE plays the node's own global variables ($${local_ip_v4}...);
                --node NAME asks as that node (its FreeSWITCH-Switchname): what it gets of the entities
                limited to some nodes (docs/cluster.md). Without it: a node with no name, which gets only
                what is every node's.
                Exit 4 when the node would answer "not found" (the document is still printed).
                """)
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "directory, dialplan, chatplan, configuration, languages or phrases.") var section: String
        @Argument(help: "The key: a domain, a context, a file (sofia.conf) or a language.") var key: String
        @Argument(help: "directory: the user.") var user: String?
        @Option(help: "directory: the action (default sip_auth when a user is given).") var action: String?
        @Option(help: "configuration: narrow sofia.conf (or conference.conf) to one profile.") var profile: String?
        @Option(name: .customLong("param"), help: ArgumentHelp("A request header (repeatable).", valueName: "name=value"))
        var params: [String] = []
        @Option(name: .customLong("global"), help: ArgumentHelp("A node global variable (repeatable).", valueName: "name=value"))
        var globals: [String] = []
        @Option(help: ArgumentHelp("Ask as this node (its switchname).", valueName: "name")) var node: String?

        /// NAME=VALUE options as a dictionary (a repeated name: the last wins).
        func pairs(_ list: [String], _ option: String) throws -> [String: String] {
            Dictionary(try Typed.pairs(list, option), uniquingKeysWith: { $1 })
        }

        func request() throws -> LookupRequest {
            if let node, let problem = FSConfCore.Scope.nameProblem(node) {
                throw CLIFailure("--node \(node): \(problem)", code: CLIFailure.Code.invalid)
            }
            let target = RenderTarget(section: section, key: key, user: user, headers: try pairs(params, "param"), node: node)
            switch Result(catching: { () throws(RenderTarget.Problem) -> LookupRequest in try target.request(action: action, profile: profile) }) {
            case .success(let request): return request
            case .failure(let problem): throw CLIFailure(problem.description, code: CLIFailure.Code.invalid)
            }
        }

        func execute() throws {
            let request = try request()
            let nodeGlobals = try pairs(globals, "global")
            var settings = NodeSettings(conninfo: connection.conninfo ?? "")
            settings.poolSize = 1
            settings.deadlineMs = 30_000
            settings.statementTimeoutMs = 30_000
            // The database must answer first: unreachable is exit 3, as for every command
            // (the engine itself would only say "no answer", which a node falls through on).
            _ = try connection.connect()
            let outcome = NodeEngine().handle(request, settings: settings, node: { nodeGlobals[$0] })
            guard let xml = outcome.xml else {
                throw CLIFailure(outcome.error ?? "no answer for \(section) \(key)", code: CLIFailure.Code.failed)
            }
            for line in outcome.log { printErr("\(line.level): \(line.message)") }
            print(xml)
            if xml == FreeSWITCHDocument.notFound { throw ExitCode(CLIFailure.Code.notFound) }
        }
    }

    struct Diff: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare the stored configuration with an XML tree, field by field.",
            discussion: """
                Reads the tree as `fsconf import` does and compares every field with what is stored:
                + only in the tree, - only in the database, ~ different values. Exit 0 when equal, 1 when
                different (kubectl diff's convention), 2 when the tree is malformed. Parts of the tree
                fsconf cannot store are left out of the comparison (listed on stderr).
                """)
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The tree's freeswitch.xml.") var path: String
        @Option(name: .customLong("domain-map"), help: ArgumentHelp("Rename a domain while reading, as import does (repeatable).", valueName: "from=to"))
        var domainMap: [String] = []
        @Option(help: ArgumentHelp("Compare only this section (repeatable): globals, directory, dialplan, chatplan, configuration, languages.", valueName: "section"))
        var section: [String] = []
        @Flag(help: "Follow includes that leave the tree's folder.") var allowOutsideIncludes = false
        @Option(help: ArgumentHelp("Compare with what this node gets (its switchname) instead of the entities every node gets.", valueName: "name"))
        var node: String?

        func validate() throws {
            if let node, let problem = FSConfCore.Scope.nameProblem(node) { throw ValidationError("--node \(node): \(problem)") }
        }

        func execute() throws {
            var map: [String: String] = [:]
            for m in domainMap {
                guard let eq = m.firstIndex(of: "=") else { throw CLIFailure("--domain-map takes FROM=TO", code: CLIFailure.Code.invalid) }
                map[String(m[..<eq])] = String(m[m.index(after: eq)...])
            }
            for s in section where !FieldAddress.sections.contains(s) {
                throw CLIFailure("--section takes globals, directory, dialplan, chatplan, configuration or languages; got \(s)", code: CLIFailure.Code.invalid)
            }
            let (_, importer) = try Import.read(path, domainMap: map, allowOutsideIncludes: allowOutsideIncludes)
            for issue in importer.unrepresentable { printErr("not compared: \(issue)") }
            let conn = try connection.connect()
            let stored: ConfigTree
            if let node {
                stored = try ConfigStore(conn).load(.all).tree.view(for: ScopeStore(conn).identity(of: node))
            } else {
                // What every node gets: what a plain import compares with.
                stored = try ConfigStore(conn).load(.slice(nil)).tree
            }
            let keep = { (e: FieldEntry) in section.isEmpty || section.contains(e.path.section) }
            let lines = FieldDiff.compare(stored: FieldListing.entries(stored).filter(keep),
                                          tree: FieldListing.entries(importer.tree).filter(keep))
            for line in lines { print(line.description) }
            var differs = !lines.isEmpty
            if !differs {
                // Same fields: order may still differ (extensions, users, elements).
                let sections = Swift.Set(ConfigDiff.Section.allCases.filter { section.isEmpty || section.contains($0.rawValue) })
                let entity = ConfigDiff(stored: stored.settingsGroupedByKind, imported: importer.tree.settingsGroupedByKind, replace: sections)
                for e in entity.entries where sections.contains(e.section) {
                    print("~ \(e.section.rawValue) \(e.label) (order differs)")
                    differs = true
                }
            }
            if differs {
                printErr("\(lines.count) difference(s)")
                throw ExitCode(CLIFailure.Code.failed)
            }
        }
    }
}
