import Foundation

/// What a finished child process left behind.
public struct ProcessOutput: CustomStringConvertible {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

/// A running child process, with its output collected on background threads.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    private let out = Pipe(), err = Pipe()
    private var outData = Data(), errData = Data()
    private let group = DispatchGroup()
    private let lock = NSLock()

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
        group.enter()
        DispatchQueue.global().async { [out] in
            self.outData = out.fileHandleForReading.readDataToEndOfFile(); self.group.leave()
        }
        group.enter()
        // Read as it comes, so a test can wait for a line (waitForStderr).
        DispatchQueue.global().async { [err] in
            while true {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                self.lock.withLock { self.errData.append(chunk) }
            }
            self.group.leave()
        }
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? input.fileHandleForWriting.close()
    }

    /// What the process has written on stderr so far.
    public var stderrSoFar: String { lock.withLock { String(decoding: errData, as: UTF8.self) } }

    /// Waits until stderr holds `text` (an event the process logs), at most `timeout`
    /// seconds; false if it never came.
    @discardableResult
    public func waitForStderr(_ text: String, timeout: TimeInterval = 20) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stderrSoFar.contains(text) { return true }
            usleep(5_000)
        }
        return stderrSoFar.contains(text)
    }

    /// Waits for the process (killing it after `timeout` seconds) and returns its output.
    public func wait(timeout: TimeInterval = 120) -> ProcessOutput {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        group.wait()
        return ProcessOutput(status: process.terminationStatus,
                             stdout: String(decoding: outData, as: UTF8.self),
                             stderr: stderrSoFar)
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
