import Foundation

/// What a finished child process left behind.
public struct ProcessOutput: CustomStringConvertible {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

/// A running child process, its output collected as it arrives, so a test can
/// synchronise on what the child says (`waitForOutput`) instead of sleeping.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    private let out = Pipe(), err = Pipe()
    private let lock = NSLock()
    private var outData = Data(), errData = Data()
    private let group = DispatchGroup()

    public init(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil,
                stdin: String? = nil, currentDirectory: URL? = nil) throws {
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        collect(out.fileHandleForReading) { $0.outData.append($1) }
        collect(err.fileHandleForReading) { $0.errData.append($1) }
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? input.fileHandleForWriting.close()
    }

    private func collect(_ handle: FileHandle, _ append: @escaping @Sendable (ChildProcess, Data) -> Void) {
        group.enter()
        DispatchQueue.global().async {
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                self.lock.withLock { append(self, chunk) }
            }
            self.group.leave()
        }
    }

    /// What the child has written so far.
    public var output: (stdout: String, stderr: String) {
        lock.withLock { (String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self)) }
    }

    /// Waits until `condition` holds on the output so far (true), or the child
    /// has exited or `timeout` seconds have passed without it (false). The
    /// timeout only ends a test that would otherwise hang: no assertion leans on it.
    @discardableResult
    public func waitForOutput(timeout: TimeInterval = 60,
                              _ condition: (_ stdout: String, _ stderr: String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let (o, e) = output
            if condition(o, e) { return true }
            if !process.isRunning || Date() >= deadline {
                // Exited: its last lines may still be in the pipes; read them first.
                if !process.isRunning { _ = group.wait(timeout: .now() + 5) }
                let (o, e) = output
                return condition(o, e)
            }
            usleep(5_000)
        }
    }

    /// Waits for the process (killing it after `timeout` seconds) and returns its output.
    public func wait(timeout: TimeInterval = 120) -> ProcessOutput {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        group.wait()
        let (o, e) = output
        return ProcessOutput(status: process.terminationStatus, stdout: o, stderr: e)
    }
}

/// Runs a program to completion.
@discardableResult
public func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil,
                stdin: String? = nil, currentDirectory: URL? = nil, timeout: TimeInterval = 120) throws -> ProcessOutput {
    try ChildProcess(executable, arguments, environment: environment, stdin: stdin,
                     currentDirectory: currentDirectory).wait(timeout: timeout)
}

/// Finds a program on PATH (or the PostgreSQL bin folder for server tools).
public func tool(_ name: String) -> URL {
    var dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
    if let pg = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql").sorted().last {
        dirs.append("/usr/lib/postgresql/\(pg)/bin")
    }
    for dir in dirs where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
        return URL(fileURLWithPath: "\(dir)/\(name)")
    }
    return URL(fileURLWithPath: "/usr/bin/\(name)")
}

/// A temporary folder removed when the object goes away.
public final class TemporaryDirectory {
    public let url: URL
    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("fsconf-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    public func write(_ name: String, _ text: String) throws {
        try Data(text.utf8).write(to: url.appendingPathComponent(name))
    }
    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}
