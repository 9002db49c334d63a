import Foundation
import Glibc

/// A stand-in for FreeSWITCH's event socket (inbound mode) for tests: it sends
/// `Content-Type: auth/request`, checks `auth <password>`, answers each
/// `api <command>` with `Content-Type: api/response` and a configurable body,
/// records every command with its arrival time, and can drop its connections.
public final class EventSocketDouble: @unchecked Sendable {
    public struct Command: Sendable { public var text: String; public var at: Date }

    public let password: String
    /// What `version` answers by default (as FreeSWITCH 1.10 does).
    public static let version = "FreeSWITCH Version 1.10.12-release~64bit (-release 64bit)"
    public private(set) var port: Int = 0
    private var listener: Int32 = -1
    private let lock = NSLock()
    private var recorded: [Command] = []
    private var clients: Set<Int32> = []
    private var stopped = false
    private var refusing = false
    private var replies: [(prefix: String, reply: @Sendable (String) -> String)] = []
    /// Called on the connection's thread after a command is recorded, before the reply.
    public var onCommand: (@Sendable (String) -> Void)?
    public private(set) var connections = 0
    /// Connections closed at once while refusing.
    public var refused: Int { lock.withLock { refusedCount } }
    private var refusedCount = 0

    public init(password: String = "ClueCon") throws {
        self.password = password
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(listener, 16) == 0 else { throw TestSetupError("event socket double: cannot listen") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        reply(to: "version", with: EventSocketDouble.version + "\n")
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    deinit { stop() }

    public func stop() {
        let (l, cs): (Int32, Set<Int32>) = lock.withLock {
            stopped = true
            let out = (listener, clients)
            listener = -1
            clients = []
            return out
        }
        if l >= 0 { shutdown(l, Int32(SHUT_RDWR)); close(l) }
        for c in cs { shutdown(c, Int32(SHUT_RDWR)) }
    }

    /// The reply for commands starting with `prefix` (longest prefix wins); default "+OK\n".
    public func reply(to prefix: String, with body: String) {
        reply(to: prefix) { _ in body }
    }

    /// The reply for commands starting with `prefix`, computed from the command
    /// (e.g. running the Lua of an `api lua ~…` the way mod_lua would).
    public func reply(to prefix: String, using answer: @escaping @Sendable (String) -> String) {
        lock.withLock { replies.removeAll { $0.prefix == prefix }; replies.append((prefix, answer)) }
    }

    /// Drops every open connection (FreeSWITCH restarting, a network cut).
    public func dropConnections() {
        let cs = lock.withLock { clients }
        for c in cs { shutdown(c, Int32(SHUT_RDWR)) }
    }

    /// While true, new connections are closed at once (FreeSWITCH down).
    public func setRefusing(_ value: Bool) { lock.withLock { refusing = value } }

    public var commands: [Command] { lock.withLock { recorded } }
    public var texts: [String] { commands.map(\.text) }
    public func clear() { lock.withLock { recorded.removeAll() } }

    /// Waits until `count` connections were refused (the agent tried again), or the timeout.
    @discardableResult
    public func waitRefused(_ count: Int, timeout: TimeInterval = 20) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if refused >= count { return true }
            usleep(5_000)
        }
        return refused >= count
    }

    /// Waits until `predicate` holds for the recorded commands (or the timeout).
    @discardableResult
    public func wait(timeout: TimeInterval = 10, _ predicate: ([String]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if predicate(texts) { return true }
            usleep(5_000)
        }
        return predicate(texts)
    }

    private func acceptLoop() {
        while true {
            let l = lock.withLock { listener }
            if l < 0 { return }
            let c = accept(l, nil, nil)
            if c < 0 {
                if lock.withLock({ stopped }) { return }
                continue
            }
            let refuse = lock.withLock { () -> Bool in
                if refusing { refusedCount += 1; return true }
                clients.insert(c)
                connections += 1
                return false
            }
            if refuse { close(c); continue }
            let t = Thread { [self] in serve(c) }
            t.start()
        }
    }

    private func write(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    private func serve(_ fd: Int32) {
        defer {
            lock.withLock { _ = clients.remove(fd) }
            close(fd)
        }
        var buffer: [UInt8] = []
        func readCommand() -> String? {
            while true {
                if buffer.count >= 2 {
                    for i in 0..<(buffer.count - 1) where buffer[i] == 0x0A && buffer[i + 1] == 0x0A {
                        let text = String(decoding: buffer[0..<i], as: UTF8.self)
                        buffer.removeFirst(i + 2)
                        return text
                    }
                }
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return nil }
                buffer.append(contentsOf: chunk[0..<n])
            }
        }
        write(fd, "Content-Type: auth/request\n\n")
        guard let auth = readCommand(), auth == "auth \(password)" else {
            write(fd, "Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
            return
        }
        write(fd, "Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
        while let command = readCommand() {
            if command == "exit" {
                write(fd, "Content-Type: command/reply\nReply-Text: +OK bye\n\n")
                return
            }
            guard command.hasPrefix("api ") else {
                write(fd, "Content-Type: command/reply\nReply-Text: -ERR command not found\n\n")
                continue
            }
            let text = String(command.dropFirst(4))
            lock.withLock { recorded.append(Command(text: text, at: Date())) }
            onCommand?(text)
            let answer = lock.withLock { () -> (@Sendable (String) -> String)? in
                replies.filter { text.hasPrefix($0.prefix) }.max { $0.prefix.count < $1.prefix.count }?.reply
            }
            let body = answer?(text) ?? "+OK\n"
            write(fd, "Content-Type: api/response\nContent-Length: \(body.utf8.count)\n\n\(body)")
        }
    }
}
