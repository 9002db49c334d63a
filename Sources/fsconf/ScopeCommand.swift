import ArgumentParser
import FSConfAdminCore
import FSConfAdminStore
import FSConfCore
import FSConfStore
import Foundation

extension Fsconf {
    struct ScopeCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scope",
            abstract: "Limit entities to named nodes or node groups, and manage node groups (docs/cluster.md).",
            discussion: """
                A node is known by its FreeSWITCH switchname (the FreeSWITCH-Switchname of every lookup).
                A scope lists node names and @groups; an entity without one is every node's. Of the variants
                of one entity a node can see, it gets the most specific: by name > by group > every node.
                A path names a variant with a block: gateway/gw1{sitea}, param[name=sip-ip]{sitea,@eu};
                no block names the unscoped one.
                """,
            subcommands: [SetScope.self, ClearScope.self, GroupAdd.self, GroupRemove.self, ListScopes.self])

        static func scope(_ entries: [String]) throws -> FSConfCore.Scope {
            switch FSConfCore.Scope.make(entries.flatMap { $0.split(separator: ",").map(String.init) }) {
            case .success(let s): return s
            case .failure(let e): throw CLIFailure("bad scope: \(e.message)", code: CLIFailure.Code.invalid)
            }
        }

        /// Gives the entity `path` names the scope `scope` (nil: every node).
        static func change(_ path: String, to scope: FSConfCore.Scope?) throws -> PreparedWrite {
            let (parsed, address) = try Admin.address(path)
            let summary = scope.map { "scope set \(parsed) {\($0)}" } ?? "scope clear \(parsed)"
            return PreparedWrite(summary: summary) { conn in
                let written = try FieldStore(conn).setScope(address, to: scope)
                return PreparedWrite.Done(line: describe(written.path, old: written.old ?? "(every node)", new: written.new ?? "(every node)"),
                                          written: written)
            }
        }

        /// A group's name as given (with or without its @), checked and lower-cased.
        static func group(_ text: String) throws -> String {
            try names([text.hasPrefix("@") ? String(text.dropFirst()) : text], "group")[0]
        }

        static func names(_ list: [String], _ what: String) throws -> [String] {
            for n in list {
                if let problem = FSConfCore.Scope.nameProblem(n) { throw CLIFailure("\(what) \(n): \(problem)", code: CLIFailure.Code.invalid) }
            }
            return list.map { $0.asciiLowercased }
        }

        struct SetScope: FsconfCommand, BatchStep {
            static let configuration = CommandConfiguration(
                commandName: "set",
                abstract: "Limit the entity PATH names to these nodes and @groups.",
                discussion: """
                    PATH names a global, domain, user, gateway, context, extension, document or element (no
                    @attribute); with a {…} block, that variant. Exit 5 when a variant with the new scope
                    exists already. Recorded as one change set; `fsconf undo` restores the old scope.
                    """)
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument(help: "The entity's path.") var path: String
            @Argument(help: ArgumentHelp("Node names and @groups (or one comma-separated list).", valueName: "node|@group"))
            var entries: [String] = []
            @Flag(help: "Print {\"path\", \"old\", \"new\", \"change_set\"} as JSON.") var json = false

            func validate() throws {
                if entries.isEmpty { throw ValidationError("name at least one node or @group (fsconf scope clear PATH makes it every node's)") }
            }

            var outputOption: String? { json ? "--json" : nil }

            func prepared() throws -> PreparedWrite {
                try ScopeCommand.change(path, to: try ScopeCommand.scope(entries))
            }

            func execute() throws {
                let (done, changeSet) = try runAlone()
                report(done.written!, changeSet, json: json, scope: true)
            }
        }

        struct ClearScope: FsconfCommand, BatchStep {
            static let configuration = CommandConfiguration(
                commandName: "clear",
                abstract: "Make the variant PATH names every node's again.",
                discussion: "Exit 5 when an unscoped variant exists already (remove one of them first).")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument(help: "The variant's path (with its {…} block).") var path: String
            @Flag(help: "Print {\"path\", \"old\", \"new\", \"change_set\"} as JSON.") var json = false

            var outputOption: String? { json ? "--json" : nil }

            func prepared() throws -> PreparedWrite {
                try ScopeCommand.change(path, to: nil)
            }

            func execute() throws {
                let (done, changeSet) = try runAlone()
                report(done.written!, changeSet, json: json, scope: true)
            }
        }

        struct GroupAdd: FsconfCommand, BatchStep {
            static let configuration = CommandConfiguration(
                commandName: "group",
                abstract: "Add nodes to a node group (created by its first node).",
                discussion: "Every node's answers may change: nodes forget their cached answers (docs/caching.md).")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument(help: "The group's name (without @).") var group: String
            @Argument(help: "Node names.") var nodes: [String] = []

            func validate() throws {
                if nodes.isEmpty { throw ValidationError("name at least one node") }
            }

            func prepared() throws -> PreparedWrite {
                let group = try ScopeCommand.group(self.group)
                let nodes = try ScopeCommand.names(self.nodes, "node")
                return PreparedWrite(summary: "scope group @\(group) + \(nodes.joined(separator: ","))") { conn in
                    let added = try ScopeStore(conn).add(nodes, to: group)
                    return PreparedWrite.Done(line: added.isEmpty ? "@\(group): unchanged" : "@\(group): added \(added.joined(separator: ", "))")
                }
            }

            func execute() throws { try runAlone() }
        }

        struct GroupRemove: FsconfCommand, BatchStep {
            static let configuration = CommandConfiguration(
                commandName: "ungroup",
                abstract: "Remove nodes from a node group (--all: every node, so the group is gone).")
            @OptionGroup var connection: ConnectionOptions
            @OptionGroup var write: WriteOptions
            @Argument(help: "The group's name (without @).") var group: String
            @Argument(help: "Node names.") var nodes: [String] = []
            @Flag(help: "Remove every node of the group.") var all = false

            func validate() throws {
                if nodes.isEmpty != all { throw ValidationError("name the nodes to remove, or --all") }
            }

            func prepared() throws -> PreparedWrite {
                let group = try ScopeCommand.group(self.group)
                let nodes = all ? nil : try ScopeCommand.names(self.nodes, "node")
                return PreparedWrite(summary: "scope ungroup @\(group)") { conn in
                    let removed = try ScopeStore(conn).remove(nodes, from: group)
                    if removed.isEmpty { throw CLIFailure("@\(group) holds none of those nodes", code: CLIFailure.Code.notFound) }
                    return PreparedWrite.Done(line: "@\(group): removed \(removed.joined(separator: ", "))")
                }
            }

            func execute() throws { try runAlone() }
        }

        struct ListScopes: FsconfCommand {
            static let configuration = CommandConfiguration(
                commandName: "list",
                abstract: "Print the node groups, then every entity limited to some nodes.",
                discussion: "--node NAME: only what concerns that node (its groups, and the variants it gets or loses).")
            @OptionGroup var connection: ConnectionOptions
            @Option(help: "Only what concerns this node.") var node: String?
            @Flag(help: "Print {\"groups\": {GROUP: [NODE...]}, \"scoped\": [{\"path\", \"scope\"}...]} as JSON.") var json = false

            func execute() throws {
                let conn = try connection.connect()
                let store = ScopeStore(conn)
                let me = try node.map { try store.identity(of: $0) }
                var groups = try store.groups()
                var scoped = try store.scopedEntities()
                if let me {
                    groups = groups.filter { me.groups.contains($0.group) }
                    scoped = scoped.filter { me.rank($0.scope) != nil }
                }
                if json {
                    let g = "{" + groups.map { "\(JSON.string($0.group)): [" + $0.nodes.map { JSON.string($0) }.joined(separator: ", ") + "]" }
                        .joined(separator: ", ") + "}"
                    let s = JSON.array(scoped.map { JSON.object([("path", JSON.string($0.path.description)), ("scope", JSON.string($0.scope.description))]) })
                    print(JSON.object([("groups", g), ("scoped", s)]))
                    return
                }
                for g in groups { print("@\(g.group): \(g.nodes.joined(separator: ", "))") }
                for s in scoped { print(s.path.description) }
            }
        }
    }
}

extension FieldPath {
    /// The scope in effect at the end of the path: the innermost `{…}` block (nil:
    /// every node, as far as this path says).
    var innermostScope: FSConfCore.Scope? { steps.last { $0.scope != nil }?.scope }
}
