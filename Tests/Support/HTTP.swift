import Foundation
import Glibc

/// One HTTP/1.1 request over a real TCP connection (loopback in tests): the
/// status code and the body (the server closes the connection after it).
public func httpRequest(_ method: String = "GET", host: String = "127.0.0.1", port: Int, path: String,
                        timeout: TimeInterval = 10) throws -> (status: Int, headers: String, body: String) {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, String(port), &hints, &list) == 0, let ai = list else { throw TestSetupError("cannot resolve \(host)") }
    defer { freeaddrinfo(list) }
    let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
    guard fd >= 0 else { throw TestSetupError("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    guard connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else {
        throw TestSetupError("connect \(host):\(port): \(String(cString: strerror(errno)))")
    }
    let request = Array("\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nAccept: text/plain\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
        throw TestSetupError("send failed")
    }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw TestSetupError("recv: \(String(cString: strerror(errno)))") }
        if n == 0 { break }
        response += chunk[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { throw TestSetupError("no HTTP response: \(text)") }
    let head = String(text[..<split.lowerBound])
    let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
    return (status, head, String(text[split.upperBound...]))
}
