import FSConfAdminCore

/// The migrations compiled into this binary (from `migrations/` at build time).
public enum BundledMigrations {
    public static func load() throws(MigrationError) -> [MigrationFile] {
        var out: [MigrationFile] = []
        for file in EmbeddedFiles.files where file.filename.hasSuffix(".sql") {
            out.append(try MigrationFile(filename: file.filename, contents: file.contents))
        }
        return out
    }
}

/// Templates compiled into this binary (from `lua/` at build time).
public enum BundledTemplates {
    public static func named(_ filename: String) -> String? {
        EmbeddedFiles.files.first { $0.filename == filename }?.contents
    }
}
