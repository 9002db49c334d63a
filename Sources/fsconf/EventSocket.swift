import FSConfAgentCore
import Foundation
import Glibc

/// A FreeSWITCH event socket client (inbound mode): `auth`, then `api` commands,
/// each answered with `Content-Type: api/response` and a body. Every read has a
/// deadline; the password is never logged.
final class EventSocket {
    struct Failure: Error, CustomStringConvertible { var description: String }

    private var fd: Int32 = -1
    private var framing = EventSocketFraming()
    private var chunk = [UInt8](repeating: 0, count: 65536)
    let timeoutMs: Int

    init(host: String, port: Int, password: String, timeoutMs: Int = 5_000) throws {
        self.timeoutMs = timeoutMs
        fd = try EventSocket.connect(host: host, port: port, timeoutMs: timeoutMs)
        do {
            let greeting = try readMessage()
            guard greeting.contentType == "auth/request" else {
                throw Failure(description: "unexpected greeting from \(host):\(port) (\(greeting.contentType ?? "nothing"))")
            }
            try send("auth \(password)\n\n")
            let reply = try readMessage()
            let text = reply.headers["Reply-Text"] ?? ""
            guard reply.contentType == "command/reply", text.hasPrefix("+OK") else {
                throw Failure(description: "event socket at \(host):\(port) refused the password (\(text.isEmpty ? "no reply" : text))")
            }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    var isOpen: Bool { fd >= 0 }

    /// Sends `api <command>` and returns the response body.
    func api(_ command: String) throws -> String {
        guard !command.contains("\n") else { throw Failure(description: "a command cannot hold a line break") }
        try send("api \(command)\n\n")
        while true {
            let m = try readMessage()
            switch m.contentType {
            case "api/response": return m.body
            case "text/disconnect-notice":
                close()
                throw Failure(description: "FreeSWITCH closed the event socket")
            default: continue  // events or logs we did not ask for
            }
        }
    }

    private func send(_ text: String) throws {
        guard fd >= 0 else { throw Failure(description: "not connected") }
        let bytes = Array(text.utf8)
        var sent = 0
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while sent < bytes.count {
            guard wait(events: Int16(POLLOUT), until: deadline) else { close(); throw Failure(description: "timed out writing to the event socket") }
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 {
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                close()
                throw Failure(description: "event socket write failed: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    private func wait(events: Int16, until deadline: Date) -> Bool {
        var p = pollfd(fd: fd, events: events, revents: 0)
        while true {
            let ms = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            let n = poll(&p, 1, ms)
            if n > 0 { return true }
            if n == 0 { return false }
            if errno != EINTR { return false }
        }
    }

    private func fill(until deadline: Date) throws {
        guard fd >= 0 else { throw Failure(description: "not connected") }
        guard wait(events: Int16(POLLIN), until: deadline) else {
            close()
            throw Failure(description: "no answer from the event socket within \(timeoutMs) ms")
        }
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 {
            if n < 0 && (errno == EINTR || errno == EAGAIN) { return }
            close()
            throw Failure(description: "the event socket connection was closed")
        }
        framing.append(chunk[0..<n])
    }

    /// The next message; reads until one is complete (EventSocketFraming: linear).
    private func readMessage() throws -> EventSocketMessage {
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while true {
            if let m = framing.next() { return m }
            try fill(until: deadline)
        }
    }

    private static func connect(host: String, port: Int, timeoutMs: Int) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw Failure(description: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let s = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if s < 0 { lastError = String(cString: strerror(errno)); continue }
            let flags = fcntl(s, F_GETFL, 0)
            _ = fcntl(s, F_SETFL, flags | O_NONBLOCK)
            var r = Glibc.connect(s, a.pointee.ai_addr, a.pointee.ai_addrlen)
            if r < 0 && errno == EINPROGRESS {
                var p = pollfd(fd: s, events: Int16(POLLOUT), revents: 0)
                if poll(&p, 1, Int32(timeoutMs)) == 1 {
                    var err: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len)
                    r = err == 0 ? 0 : -1
                    if err != 0 { errno = err }
                } else {
                    errno = ETIMEDOUT
                }
            }
            if r == 0 { return s }
            lastError = String(cString: strerror(errno))
            Glibc.close(s)
        }
        throw Failure(description: "cannot connect to the event socket at \(host):\(port): \(lastError)")
    }
}
