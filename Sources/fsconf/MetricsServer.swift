import Foundation
import Glibc

/// A minimal HTTP/1.x server for `GET /metrics` (Prometheus' text format), on its
/// own thread. One request per connection (`Connection: close`), read within 2 s
/// and at most 8 KiB; anything but `GET /metrics` is answered 404 (405 for another
/// method). It serves the last snapshot the agent published: a scrape never waits
/// for the agent's loop.
final class MetricsServer: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible { var description: String }

    private let fd: Int32
    /// The address actually bound (the port filled in when 0 was asked).
    let address: String
    private let lock = NSLock()
    private var body = ""

    /// Listens on `listen`: `HOST:PORT` or `[IPV6]:PORT`.
    init(listen: String) throws {
        let (host, port) = try MetricsServer.split(listen)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, port, &hints, &list)
        guard rc == 0, let ai = list else { throw Failure(description: "--metrics-listen \(listen): \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(list) }
        let s = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
        guard s >= 0 else { throw Failure(description: "--metrics-listen \(listen): \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        guard bind(s, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0, Glibc.listen(s, 16) == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(s)
            throw Failure(description: "--metrics-listen \(listen): \(message)")
        }
        fd = s
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        let bound = storage.ss_family == sa_family_t(AF_INET6)
            ? withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) } }
            : withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
        address = host.contains(":") ? "[\(host)]:\(bound)" : "\(host):\(bound)"
    }

    /// `HOST:PORT` / `[V6]:PORT` → (host, port).
    static func split(_ listen: String) throws -> (String, String) {
        var host = "", port = ""
        if listen.hasPrefix("["), let close = listen.firstIndex(of: "]") {
            host = String(listen[listen.index(after: listen.startIndex)..<close])
            let rest = listen[listen.index(after: close)...]
            guard rest.hasPrefix(":") else { throw Failure(description: "--metrics-listen takes HOST:PORT or [IPV6]:PORT, got \(listen)") }
            port = String(rest.dropFirst())
        } else if let colon = listen.lastIndex(of: ":") {
            host = String(listen[..<colon]); port = String(listen[listen.index(after: colon)...])
        }
        guard !host.isEmpty, let p = Int(port), (0...65535).contains(p) else {
            throw Failure(description: "--metrics-listen takes HOST:PORT or [IPV6]:PORT (e.g. 127.0.0.1:9464), got \(listen)")
        }
        return (host, port)
    }

    /// The text served from now on.
    func publish(_ text: String) { lock.withLock { body = text } }

    func start() {
        let thread = Thread { [self] in
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { if errno == EINTR { continue }; return }
                serve(c)
                Glibc.close(c)
            }
        }
        thread.name = "fsconf-metrics"
        thread.start()
    }

    private func serve(_ c: Int32) {
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(2)
        // Up to the end of the headers (or 8 KiB, or 2 s).
        while request.count < 8192 {
            if request.count >= 4, request.suffix(4) == [13, 10, 13, 10] || request.suffix(2) == [10, 10] { break }
            var p = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            guard poll(&p, 1, ms) > 0 else { return }
            let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            request += chunk[0..<n]
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let (status, type, text): (String, String, String)
        if line.count >= 2, line[0] == "GET", line[1] == "/metrics" || line[1].hasPrefix("/metrics?") {
            (status, type, text) = ("200 OK", "text/plain; version=0.0.4; charset=utf-8", lock.withLock { body })
        } else if line.count >= 2, line[0] != "GET" {
            (status, type, text) = ("405 Method Not Allowed", "text/plain; charset=utf-8", "GET /metrics only\n")
        } else {
            (status, type, text) = ("404 Not Found", "text/plain; charset=utf-8", "fsconf agent: metrics are at /metrics\n")
        }
        let response = Array("HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(text.utf8.count)\r\nConnection: close\r\n\r\n\(text)".utf8)
        var sent = 0
        while sent < response.count {
            let n = response.withUnsafeBytes { Glibc.send(c, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }
}
