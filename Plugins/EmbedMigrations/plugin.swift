import Foundation
import PackagePlugin

/// Embeds every `migrations/*.sql` file and the `lua/*.lua.in` shim templates into
/// the target as Swift source, so the installed `fsconf` binary carries its schema
/// and its templates and works from any directory.
@main
struct EmbedMigrations: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        func list(_ folder: URL, suffix: String) throws -> [URL] {
            try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
                .filter { $0.lastPathComponent.hasSuffix(suffix) }
                .sorted { $0.lastPathComponent < $1.lastPathComponent }
        }
        let migrations = context.package.directoryURL.appending(path: "migrations")
        let lua = context.package.directoryURL.appending(path: "lua")
        let files = try list(migrations, suffix: ".sql") + list(lua, suffix: ".lua.in")
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedFiles.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(files.count) migration and template file(s)",
                executable: try context.tool(named: "EmbedMigrationsTool").url,
                arguments: [output.path] + files.map(\.path),
                inputFiles: files + [migrations, lua],
                outputFiles: [output]),
        ]
    }
}
