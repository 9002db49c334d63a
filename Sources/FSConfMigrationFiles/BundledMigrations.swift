import FSConfCore

/// The migrations compiled into this binary (from `migrations/` at build time).
public enum BundledMigrations {
    public static func load() throws(MigrationError) -> [MigrationFile] {
        var out: [MigrationFile] = []
        for file in EmbeddedMigrations.files {
            out.append(try MigrationFile(filename: file.filename, contents: file.contents))
        }
        return out
    }

    /// The schema version this build expects: the highest bundled migration.
    public static var latestVersion: Int {
        EmbeddedMigrations.files.compactMap { MigrationFile.parseFilename($0.filename)?.0 }.max() ?? 0
    }
}
