import ArgumentParser
import FSConfAdminCore
import FSConfCore
import FSConfEmbedded
import FSConfAdminStore
import FSConfStore
import Foundation

extension Fsconf {
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply, revert and inspect the database schema.",
            subcommands: [Up.self, Down.self, Status.self, Verify.self, New.self])
    }
}

/// Where migration files come from: the ones built into this binary, or a folder.
struct MigrationSource: ParsableArguments {
    @Option(help: ArgumentHelp("Read migration files from this folder instead of the ones built into fsconf.",
                               valueName: "dir"))
    var migrations: String?

    func load() throws -> [MigrationFile] {
        guard let migrations else { return try BundledMigrations.load() }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: migrations)
        } catch {
            throw CLIFailure("cannot read migrations folder \(migrations)", code: CLIFailure.Code.invalid)
        }
        var files: [MigrationFile] = []
        for name in names.sorted() where name.hasSuffix(".sql") {
            let path = (migrations as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CLIFailure("\(name): cannot read file", code: CLIFailure.Code.invalid)
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw CLIFailure("\(name): not valid UTF-8", code: CLIFailure.Code.invalid)
            }
            files.append(try MigrationFile(filename: name, contents: text))
        }
        return files
    }
}

/// Options every plan-running subcommand shares.
struct PlanOutput: ParsableArguments {
    @Flag(help: "Show what would run, change nothing.")
    var dryRun = false
    @Flag(help: "Print the SQL that would run, change nothing.")
    var sql = false
    @Option(help: ArgumentHelp("Fail a statement that waits longer than this for a table lock (0: wait forever).", valueName: "seconds"))
    var lockTimeout: Double = Double(Migrator.defaultLockTimeoutMs) / 1000

    func validate() throws {
        if lockTimeout < 0 { throw ValidationError("--lock-timeout takes 0 or more seconds") }
    }

    var lockTimeoutMs: Int { Int(lockTimeout * 1000) }
}

extension Fsconf.Migrate {
    struct Up: FsconfCommand {
        static let configuration = CommandConfiguration(abstract: "Apply pending migrations, each in its own transaction.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var source: MigrationSource
        @OptionGroup var output: PlanOutput
        @Option(help: "Stop after this version.") var to: Int?

        func validate() throws {
            if let to, to < 1 { throw ValidationError("--to takes a migration version (1 or more)") }
        }

        func execute() throws {
            try runMigrations(connection, source, output, .up) { try $0.planUp(to: to) }
        }
    }

    struct Down: FsconfCommand {
        static let configuration = CommandConfiguration(abstract: "Revert applied migrations, newest first.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var source: MigrationSource
        @OptionGroup var output: PlanOutput
        @Option(help: "Revert every migration above this version (0: all).") var to: Int?
        @Option(help: "Revert this many migrations.") var steps: Int?

        func validate() throws {
            if to == nil && steps == nil { throw ValidationError("say how far: --to VERSION or --steps N") }
            if to != nil && steps != nil { throw ValidationError("--to and --steps cannot be combined") }
            if let steps, steps < 1 { throw ValidationError("--steps takes 1 or more") }
            if let to, to < 0 { throw ValidationError("--to takes 0 or a migration version") }
        }

        func execute() throws {
            try runMigrations(connection, source, output, .down) { try $0.planDown(to: to, steps: steps) }
        }
    }

    struct Status: FsconfCommand {
        static let configuration = CommandConfiguration(abstract: "Show applied [X] and pending [ ] migrations.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var source: MigrationSource
        @Flag(help: "Exit 1 when migrations are pending or a problem is found.")
        var exitCode = false

        func execute() throws {
            let files = try source.load()
            let conn = try connection.connect()
            let planner = try Migrator(connection: conn, files: files).planner()
            let lines = planner.status()
            let width = lines.map(\.filename.count).max() ?? 0
            var pending = 0, applied = 0, problems = 0
            for line in lines {
                let name = line.filename.padding(toLength: width, withPad: " ", startingAt: 0)
                switch line.state {
                case .applied:
                    applied += 1; print("[X] \(name)  applied \(line.appliedAt)")
                case .pending:
                    pending += 1; print("[ ] \(name)")
                case .drifted:
                    applied += 1; problems += 1; print("[!] \(name)  applied \(line.appliedAt), file changed since")
                case .missingFile:
                    applied += 1; problems += 1; print("[?] \(name)  applied \(line.appliedAt), file missing")
                case .outOfOrder:
                    pending += 1; problems += 1; print("[ ] \(name)  pending, older than the latest applied")
                }
            }
            var summary = "\(applied) applied, \(pending) pending"
            if problems > 0 { summary += ", \(problems) problem(s): run `fsconf migrate verify`" }
            print(summary)
            if exitCode && (pending > 0 || problems > 0) { throw ExitCode(CLIFailure.Code.failed) }
        }
    }

    struct Verify: FsconfCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check applied migrations against their files: checksum drift, missing files.")
        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var source: MigrationSource

        func execute() throws {
            let files = try source.load()
            let conn = try connection.connect()
            let planner = try Migrator(connection: conn, files: files).planner()
            let problems = planner.problems()
            if problems.isEmpty {
                print("ok: \(planner.applied.count) applied migration(s) match their files")
                return
            }
            for problem in problems { print("problem: \(problem.description)") }
            throw ExitCode(CLIFailure.Code.failed)
        }
    }

    struct New: FsconfCommand {
        static let configuration = CommandConfiguration(abstract: "Create the next migration file.")
        @Option(help: ArgumentHelp("Folder of migration files.", valueName: "dir"))
        var migrations = "migrations"
        @Argument(help: "What the migration does, e.g. \"add gateway index\".") var name: String

        func validate() throws {
            if MigrationFile.slug(name) == nil { throw ValidationError("the name needs at least one letter or digit") }
        }

        func execute() throws {
            let files = try MigrationSource(migrations: migrations).load()
            _ = try MigrationPlanner(files: files, applied: [])
            let slug = MigrationFile.slug(name)!
            let filename = MigrationFile.filename(version: (files.map(\.version).max() ?? 0) + 1, slug: slug)
            let path = (migrations as NSString).appendingPathComponent(filename)
            guard FileManager.default.createFile(atPath: path, contents: Data(MigrationFile.template(slug: slug).utf8)) else {
                throw CLIFailure("cannot create \(path)", code: CLIFailure.Code.failed)
            }
            print(path)
        }
    }
}

extension MigrationSource {
    init(migrations: String?) { self.init(); self.migrations = migrations }
}

/// Connects, takes the migration lock (unless only printing), plans, and runs.
private func runMigrations(_ connection: ConnectionOptions, _ source: MigrationSource, _ output: PlanOutput,
                           _ direction: Migrator.Direction,
                           plan: (MigrationPlanner) throws -> [MigrationFile]) throws {
    let files = try source.load()
    let migrator = Migrator(connection: try connection.connect(), files: files)
    migrator.lockTimeoutMs = output.lockTimeoutMs
    let readOnly = output.dryRun || output.sql
    if !readOnly {
        try migrator.lock(on: try connection.connect()) { printErr($0) }
    }
    defer { if !readOnly { migrator.unlock() } }
    let planner = try migrator.planner()
    try runPlan(try plan(planner), from: planner, direction: direction, migrator: migrator, output: output)
}

private func runPlan(_ plan: [MigrationFile], from planner: MigrationPlanner, direction: Migrator.Direction,
                     migrator: Migrator, output: PlanOutput) throws {
    if output.sql {
        for file in plan { print(Migrator.script(for: file, direction: direction, lockTimeoutMs: output.lockTimeoutMs)) }
        return
    }
    if plan.isEmpty {
        print("nothing to do: schema is at version \(planner.currentVersion)")
        return
    }
    for file in plan {
        if output.dryRun {
            print("would \(direction == .up ? "apply" : "revert") \(file.filename)")
            continue
        }
        let started = Date()
        try migrator.run(file, direction)
        let ms = Int(Date().timeIntervalSince(started) * 1000)
        print("\(direction == .up ? "applied" : "reverted") \(file.filename) (\(ms) ms)")
    }
    if !output.dryRun {
        if direction == .up {
            try grantGroupRoles(migrator.connection)
            try prerenderContexts(migrator.connection, at: try migrator.planner().currentVersion)
        }
        print("schema is at version \(try migrator.planner().currentVersion)")
    }
}

/// After `up` to a schema that stores prerendered contexts (0009): contexts that
/// have none yet are rendered, so nodes read each as one document from the start.
private func prerenderContexts(_ conn: PGConnection, at version: Int) throws {
    guard version >= 9 else { return }
    let summary = try Transactions.run(conn) { try Admin.prerender(conn) }
    if summary.stored + summary.ineligible.count > 0 {
        print("prerendered \(summary.stored) context(s); \(summary.ineligible.count) read as rows (`fsconf prerender` says why)")
    }
}

/// After `up`: the owner grants the group roles the tables (new ones included) when
/// they exist; creating them is `fsconf grant roles` (it may need a DBA), never a
/// reason for `migrate` to fail.
private func grantGroupRoles(_ conn: PGConnection) throws {
    try Roles.grantTables(conn)
    let missing = try Roles.missingGroupRoles(conn)
    if !missing.isEmpty {
        printErr("note: role(s) \(missing.joined(separator: ", ")) do not exist: run `fsconf grant roles` (or have a DBA run the SQL it prints) before `fsconf grant reader|writer`")
    }
}
