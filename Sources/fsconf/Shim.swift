import ArgumentParser
import FSConfAdminCore
import FSConfCore
import FSConfEmbedded
import FSConfNode
import Foundation

extension Fsconf {
    struct Shim: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the mod_lua xml_handler script for a node and print the lua.conf.xml lines.",
            discussion: """
                The script loads the fsconf library by absolute path and passes it these
                settings; it contains no SQL and no secret. Connection settings come from a
                libpq service name (pg_service.conf), a root-only conninfo file, or libpq's
                environment in FreeSWITCH's process. Regenerate after upgrading fsconf.
                `fsconf node install` does this and also installs the library and edits
                lua.conf.xml.
                """)

        @Option(help: ArgumentHelp("Folder to write the script into.", valueName: "dir"))
        var out: String
        @OptionGroup var shim: ShimOptions
        @Option(help: "The script's file name.")
        var name = "fsconf.lua"

        func validate() throws {
            if name.contains("/") || !name.hasSuffix(".lua") { throw ValidationError("--name is a file name ending in .lua") }
        }

        func execute() throws {
            let script = try shim.script()
            let folder = URL(fileURLWithPath: out, isDirectory: true).standardizedFileURL
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let path = folder.appendingPathComponent(name).path
            // Written beside, then renamed: mod_lua reads the file on every lookup.
            try InstallFiles.replace(path, with: Data(script.utf8), mode: 0o644)
            printErr("wrote \(path); add to lua.conf.xml <settings>, in this order:")
            print(ShimTemplate.luaConfLines(scriptPath: path, bindings: shim.bindings))
        }
    }
}

/// The shim's settings, shared by `fsconf shim` and `fsconf node install`.
struct ShimOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The node library's absolute path (PREFIX/lib/fsconf/fsconf.so for an fsconf in PREFIX/bin).",
                               valueName: "path"))
    var library = InstallFiles.defaultLibrary
    @Option(help: ArgumentHelp("libpq service name (from pg_service.conf).", valueName: "name"))
    var service: String?
    @Option(help: ArgumentHelp("A root-only file holding the libpq conninfo.", valueName: "file"))
    var conninfoFile: String?
    @Option(help: ArgumentHelp("A conninfo without secrets (host, dbname, user...).", valueName: "conninfo"))
    var conninfo: String?
    @Option(help: "Longest a lookup waits for the database, in milliseconds.")
    var deadlineMs: Int?
    @Option(help: "Connections per FreeSWITCH process.")
    var poolSize: Int?
    @Option(help: "The node's answer cache cap in bytes (0: no cache). Default 64 MiB.")
    var cacheBytes: Int?
    @Option(help: "How long an unknown user, context or document is answered from the cache, in milliseconds. Default 5000.")
    var negativeTtlMs: Int?
    @Option(help: "How often the node reads the change counter (the standby path), in milliseconds. Default 250.")
    var pollMs: Int?
    @Flag(help: "Read from a standby when one is up (libpq target_session_attrs=prefer-standby; give host=a,b in the conninfo or service).")
    var preferStandby = false
    @Option(help: "Sections to bind (mod_lua's xml-handler-bindings).")
    var bindings = ShimOptions.defaultBindings
    static let defaultBindings = "directory,dialplan,chatplan,configuration,languages"

    func validate() throws {
        let sources = [service, conninfoFile, conninfo].compactMap { $0 }
        if sources.count > 1 { throw ValidationError("give at most one of --service, --conninfo-file, --conninfo") }
        if !library.hasPrefix("/") { throw ValidationError("--library must be an absolute path") }
        if let conninfo, conninfo.lowercased().contains("password") {
            throw ValidationError("--conninfo must not carry a password: use --service or --conninfo-file")
        }
        if let file = conninfoFile, !file.hasPrefix("/") { throw ValidationError("--conninfo-file must be an absolute path") }
        for (option, value, range) in [("--deadline-ms", deadlineMs, NodeSettings.deadlines),
                                        ("--pool-size", poolSize, NodeSettings.poolSizes),
                                        ("--cache-bytes", cacheBytes, NodeSettings.cacheSizes),
                                        ("--negative-ttl-ms", negativeTtlMs, NodeSettings.negativeTTLs),
                                        ("--poll-ms", pollMs, NodeSettings.pollIntervals)] {
            if let value, !range.contains(value) {
                throw ValidationError("\(option) takes \(range.lowerBound)...\(range.upperBound)")
            }
        }
        for (option, value) in [("--service", service), ("--conninfo-file", conninfoFile), ("--conninfo", conninfo),
                                ("--library", library)] {
            if let value, let problem = ShimTemplate.settingProblem(option, value) { throw ValidationError(problem) }
        }
    }

    /// The settings the shim passes the library, in a fixed order.
    var settings: [(String, String)] {
        var settings: [(String, String)] = []
        if let service { settings.append(("service", service)) }
        if let conninfoFile { settings.append(("conninfo_file", conninfoFile)) }
        if let conninfo { settings.append(("conninfo", conninfo)) }
        if let deadlineMs { settings.append(("deadline_ms", String(deadlineMs))) }
        if let poolSize { settings.append(("pool_size", String(poolSize))) }
        if let cacheBytes { settings.append(("cache_bytes", String(cacheBytes))) }
        if let negativeTtlMs { settings.append(("negative_ttl_ms", String(negativeTtlMs))) }
        if let pollMs { settings.append(("poll_ms", String(pollMs))) }
        if preferStandby { settings.append(("prefer_standby", "true")) }
        return settings
    }

    /// The script's text.
    func script() throws -> String {
        guard let template = BundledTemplates.named("shim.lua.in") else {
            throw CLIFailure("this fsconf build has no shim template", code: CLIFailure.Code.failed)
        }
        return ShimTemplate.render(template: template, version: FSConfVersion.string, library: library, settings: settings)
    }
}

/// Where things are installed, and writing them so that a reader (mod_lua, a
/// running FreeSWITCH that has the library mapped) never sees a half-written file.
enum InstallFiles {
    /// `PREFIX/lib/fsconf/fsconf.so`, PREFIX being the folder above this fsconf's
    /// `bin` (the fsconf-node package: /usr; scripts/install-node: /usr/local).
    static var defaultLibrary: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let bin = URL(fileURLWithPath: exe).deletingLastPathComponent()
        let prefix = bin.lastPathComponent == "bin" ? bin.deletingLastPathComponent().path : "/usr/local"
        return (prefix == "/" ? "" : prefix) + "/lib/fsconf/fsconf.so"
    }

    /// The first of `candidates` that exists.
    static func firstExisting(_ candidates: [String]) -> String? {
        candidates.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// Writes `data` beside `path` and renames it over: a reader sees the old file
    /// or the new one, and a process that has the old one mapped keeps it. Mode and
    /// owner are those of the file replaced, else `mode`.
    static func replace(_ path: String, with data: Data, mode: Int) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).fsconf-tmp").path
        let existing = try? FileManager.default.attributesOfItem(atPath: path)
        do {
            try data.write(to: URL(fileURLWithPath: temporary))
            var attributes: [FileAttributeKey: Any] = [.posixPermissions: (existing?[.posixPermissions] as? Int) ?? mode]
            if let owner = existing?[.ownerAccountID] { attributes[.ownerAccountID] = owner }
            if let group = existing?[.groupOwnerAccountID] { attributes[.groupOwnerAccountID] = group }
            try FileManager.default.setAttributes(attributes, ofItemAtPath: temporary)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw CLIFailure("cannot write \(path): \((error as NSError).localizedDescription)", code: CLIFailure.Code.failed)
        }
        if rename(temporary, path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw CLIFailure("cannot write \(path): \(reason)", code: CLIFailure.Code.failed)
        }
    }
}
