import ArgumentParser
import FSConfAdminCore
import FSConfCore
import Foundation

extension Fsconf {
    struct Node: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set up this FreeSWITCH node.",
            subcommands: [NodeInstall.self])
    }
}

extension Fsconf.Node {
    struct NodeInstall: FsconfCommand {
        static let configuration = CommandConfiguration(
            commandName: "install",
            abstract: "Install the node library, write the shim, and bind it in lua.conf.xml.",
            discussion: """
                Idempotent: what is already in place is left alone, and nothing is
                written until every step is known to succeed. lua.conf.xml keeps its
                layout and other settings; fsconf's two params go between marker
                comments. xml-handler params set or changed by hand are refused
                (exit 5) unless --force; the file replaced is kept as
                lua.conf.xml.fsconf-backup. mod_lua reads lua.conf.xml and loads the
                library once: restart FreeSWITCH after a change to either. Then check
                the node with `fsconf doctor`.
                """)

        @OptionGroup var shim: ShimOptions
        @Option(help: ArgumentHelp("A built node library to install at --library (default: the one already there, e.g. from the fsconf-node package).",
                                   valueName: "file"))
        var from: String?
        @Option(help: ArgumentHelp("FreeSWITCH's script folder (default: the first of \(NodeInstall.scriptDirs.joined(separator: ", ")) that exists).",
                                   valueName: "dir"))
        var scriptsDir: String?
        @Option(help: "The shim's file name.")
        var name = "fsconf.lua"
        @Option(help: ArgumentHelp("mod_lua's configuration file (default: the first of \(NodeInstall.luaConfs.joined(separator: ", ")) that exists).",
                                   valueName: "file"))
        var luaConf: String?
        @Flag(help: "Leave lua.conf.xml alone; print the lines to add instead.")
        var noLuaConf = false
        @Flag(help: "Replace xml-handler params set by hand in lua.conf.xml, and allow bindings without configuration.")
        var force = false
        @Flag(help: "Print what would change; write nothing.")
        var dryRun = false

        static let scriptDirs = ["/usr/share/freeswitch/scripts", "/usr/local/freeswitch/scripts", "/etc/freeswitch/scripts"]
        static let luaConfs = ["/etc/freeswitch/autoload_configs/lua.conf.xml",
                               "/usr/local/freeswitch/conf/autoload_configs/lua.conf.xml"]

        func validate() throws {
            if name.contains("/") || !name.hasSuffix(".lua") { throw ValidationError("--name is a file name ending in .lua") }
            if noLuaConf && luaConf != nil { throw ValidationError("--no-lua-conf and --lua-conf exclude each other") }
            let sections = shim.bindings.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if sections.contains("directory") && !sections.contains("configuration") && !force {
                throw ValidationError("--bindings with directory must include configuration: mod_lua's first lookups would race at start-up and can crash FreeSWITCH (docs/operations.md); --force to insist")
            }
        }

        /// One step's outcome, printed as `what  path: outcome`.
        struct Step {
            var what: String
            var path: String
            var outcome: String
            var write: (() throws -> Void)?
            var restart = false
        }

        func execute() throws {
            guard let scripts = scriptsDir ?? InstallFiles.firstExisting(NodeInstall.scriptDirs) else {
                throw CLIFailure("FreeSWITCH's script folder not found (tried \(NodeInstall.scriptDirs.joined(separator: ", "))): give --scripts-dir (fs_cli -x 'global_getvar script_dir')",
                                 code: CLIFailure.Code.invalid)
            }
            let shimPath = URL(fileURLWithPath: scripts).standardizedFileURL.appendingPathComponent(name).path
            // Plan every step first: a refusal writes nothing.
            var steps = [try libraryStep(), try shimStep(shimPath)]
            if noLuaConf {
                print(ShimTemplate.luaConfLines(scriptPath: shimPath, bindings: shim.bindings))
                printErr("add these lines to lua.conf.xml <settings>, in this order, then restart FreeSWITCH")
            } else {
                steps.append(try luaConfStep(shimPath))
            }
            for step in steps {
                if !dryRun { try step.write?() }
                print("\(step.what)  \(step.path): \(dryRun && step.write != nil ? "would be " : "")\(step.outcome)")
            }
            if steps.contains(where: { $0.restart && $0.write != nil }) {
                printErr(dryRun ? "a FreeSWITCH restart would be needed to load them"
                                : "restart FreeSWITCH to load them (mod_lua reads lua.conf.xml and loads the library once); then run fsconf doctor")
            } else if !dryRun {
                printErr("check this node with: fsconf doctor")
            }
        }

        func libraryStep() throws -> Step {
            let target = shim.library
            guard let source = from else {
                guard FileManager.default.fileExists(atPath: target) else {
                    throw CLIFailure("no node library at \(target): install the fsconf-node package, or give --from (a built libfsconf-lua.so)",
                                     code: CLIFailure.Code.notFound)
                }
                if let problem = NodeInstall.libraryProblem(target) {
                    throw CLIFailure("\(target): \(problem)", code: CLIFailure.Code.failed)
                }
                return Step(what: "library", path: target, outcome: "present")
            }
            guard let data = FileManager.default.contents(atPath: source) else {
                throw CLIFailure("cannot read \(source)", code: CLIFailure.Code.invalid)
            }
            if let problem = NodeInstall.libraryProblem(source, bytes: [UInt8](data)) {
                throw CLIFailure("\(source) cannot be installed: \(problem)", code: CLIFailure.Code.invalid)
            }
            if FileManager.default.contents(atPath: target) == data {
                return Step(what: "library", path: target, outcome: "unchanged")
            }
            return Step(what: "library", path: target, outcome: "installed from \(source)", write: {
                try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
                try InstallFiles.replace(target, with: data, mode: 0o644)
            }, restart: true)
        }

        /// Why FreeSWITCH must not load this library, or nil.
        static func libraryProblem(_ path: String, bytes: [UInt8]? = nil) -> String? {
            guard let bytes = bytes ?? FileManager.default.contents(atPath: path).map({ [UInt8]($0) }) else { return "cannot read it" }
            let elf: ELFFile
            do { elf = try ELFFile.parse(bytes) } catch { return error.description }
            let missing = ["fsconf_xml_handler", "luaopen_fsconf"].filter { !elf.exports.contains($0) }
            if !missing.isEmpty { return "it exports no \(missing.joined(separator: ", ")) (not the fsconf node library)" }
            if !elf.noDelete { return "it is not linked with -z nodelete (mod_lua would unload it after every lookup)" }
            if !elf.forbiddenNeeded.isEmpty {
                return "it needs \(elf.forbiddenNeeded.joined(separator: ", ")) (the node library must link the Swift runtime statically and not link Lua)"
            }
            return nil
        }

        func shimStep(_ path: String) throws -> Step {
            let script = Data(try shim.script().utf8)
            if FileManager.default.contents(atPath: path) == script {
                return Step(what: "shim", path: path, outcome: "unchanged")
            }
            let existed = FileManager.default.fileExists(atPath: path)
            return Step(what: "shim", path: path, outcome: existed ? "rewritten" : "written", write: {
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
                try InstallFiles.replace(path, with: script, mode: 0o644)
            })
        }

        func luaConfStep(_ shimPath: String) throws -> Step {
            guard let path = luaConf ?? InstallFiles.firstExisting(NodeInstall.luaConfs) else {
                throw CLIFailure("lua.conf.xml not found (tried \(NodeInstall.luaConfs.joined(separator: ", "))): give --lua-conf FILE, or --no-lua-conf to print the lines",
                                 code: CLIFailure.Code.invalid)
            }
            let existing = FileManager.default.contents(atPath: path)
            let text = existing.map { String(decoding: $0, as: UTF8.self) } ?? """
                <configuration name="lua.conf" description="LUA Configuration">
                  <settings>
                  </settings>
                </configuration>

                """
            do {
                _ = try XMLTreeParser.parse(text)
            } catch {
                throw CLIFailure("\(path) is not well-formed XML (\(error.description)); fix it first", code: CLIFailure.Code.failed)
            }
            let edit: LuaConfFile.Edit
            do {
                edit = try LuaConfFile(text).install(script: shimPath, bindings: shim.bindings, force: force)
            } catch {
                throw CLIFailure("\(path): \(error.description)", code: CLIFailure.Code.failed)
            }
            switch edit {
            case .unchanged:
                return Step(what: "lua.conf.xml", path: path, outcome: "unchanged")
            case .conflict(let reason):
                throw CLIFailure("refusing to change \(path): \(reason); give --force to replace them (the file is kept as \(path).fsconf-backup)",
                                 code: CLIFailure.Code.conflict)
            case .write(let newText, let replaced):
                let outcome = existing == nil ? "written"
                    : "xml handler bound\(replaced.isEmpty ? "" : " (replaced \(replaced.joined(separator: ", ")))"); backup \(path).fsconf-backup"
                return Step(what: "lua.conf.xml", path: path, outcome: outcome, write: {
                    if let existing { try InstallFiles.replace(path + ".fsconf-backup", with: existing, mode: 0o644) }
                    try InstallFiles.replace(path, with: Data(newText.utf8), mode: 0o644)
                }, restart: true)
            }
        }
    }
}
