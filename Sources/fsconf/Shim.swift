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
                """)

        @Option(help: ArgumentHelp("Folder to write the script into.", valueName: "dir"))
        var out: String
        @Option(help: ArgumentHelp("The node library's absolute path.", valueName: "path"))
        var library = "/usr/local/lib/fsconf/fsconf.so"
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
        var bindings = "directory,dialplan,chatplan,configuration,languages"
        @Option(help: "The script's file name.")
        var name = "fsconf.lua"

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
            if name.contains("/") || !name.hasSuffix(".lua") { throw ValidationError("--name is a file name ending in .lua") }
            for (option, value) in [("--service", service), ("--conninfo-file", conninfoFile), ("--conninfo", conninfo),
                                    ("--library", library)] {
                if let value, let problem = ShimTemplate.settingProblem(option, value) { throw ValidationError(problem) }
            }
        }

        func execute() throws {
            guard let template = BundledTemplates.named("shim.lua.in") else {
                throw CLIFailure("this fsconf build has no shim template", code: CLIFailure.Code.failed)
            }
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
            let script = ShimTemplate.render(template: template, version: FSConfVersion.string,
                                             library: library, settings: settings)
            let folder = URL(fileURLWithPath: out, isDirectory: true).standardizedFileURL
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let path = folder.appendingPathComponent(name)
            // Write beside, then rename: mod_lua reads the file on every lookup.
            let temporary = folder.appendingPathComponent(".\(name).tmp")
            try Data(script.utf8).write(to: temporary)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: temporary.path)
            if rename(temporary.path, path.path) != 0 {
                throw CLIFailure("cannot write \(path.path)", code: CLIFailure.Code.failed)
            }
            printErr("wrote \(path.path); add to lua.conf.xml <settings>, in this order:")
            print(ShimTemplate.luaConfLines(scriptPath: path.path, bindings: bindings))
        }
    }
}
