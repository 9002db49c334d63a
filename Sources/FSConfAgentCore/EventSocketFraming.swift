/// One message of FreeSWITCH's event socket: headers up to a blank line, then a
/// body of `Content-Length` bytes.
public struct EventSocketMessage: Equatable, Sendable {
    public var headers: [String: String]
    public var body: String
    public init(headers: [String: String], body: String) { self.headers = headers; self.body = body }
    public var contentType: String? { headers["Content-Type"] }
}

/// Cuts the bytes read from an event socket into messages. Linear: each byte is
/// examined once for the blank line that ends the headers (the search resumes
/// where the last one stopped), a body is taken by its length without being
/// scanned, and consumed bytes are dropped only once they are the larger part of
/// the buffer — a multi-megabyte `sofia xmlstatus` read in 64 KiB pieces costs
/// its length, not its length squared. Pure: the socket is the caller's.
public struct EventSocketFraming: Sendable {
    private var buffer: [UInt8] = []
    /// The first byte not consumed yet.
    private var start = 0
    /// Where the search for the end of the headers resumes.
    private var scanned = 0
    /// Headers whose body has not fully arrived.
    private var waiting: (headers: [String: String], length: Int)?
    /// Bytes examined in the search for header ends (for tests: at most the bytes fed).
    public private(set) var examined = 0

    public init() {}

    /// Bytes received and not yet returned as messages.
    public var buffered: Int { buffer.count - start }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete message, or nil until more bytes arrive.
    public mutating func next() -> EventSocketMessage? {
        if waiting == nil {
            guard let end = headerEnd() else { return nil }
            let headers = EventSocketFraming.parseHeaders(buffer[start..<end])
            start = end + 2
            scanned = start
            waiting = (headers, max(0, headers["Content-Length"].flatMap { Int($0) } ?? 0))
        }
        guard let (headers, length) = waiting, buffer.count - start >= length else { return nil }
        let body = length > 0 ? String(decoding: buffer[start..<(start + length)], as: UTF8.self) : ""
        start += length
        scanned = start
        waiting = nil
        compact()
        return EventSocketMessage(headers: headers, body: body)
    }

    /// The index of the first "\n\n" at or after `start`, resuming the search.
    private mutating func headerEnd() -> Int? {
        var i = max(scanned, start)
        let count = buffer.count
        while i + 1 < count {
            examined += 1
            if buffer[i] == 0x0A && buffer[i + 1] == 0x0A { return i }
            i += 1
        }
        scanned = i
        return nil
    }

    /// Drops consumed bytes once they outweigh the rest (amortised linear).
    private mutating func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.count <= 1 << 20)
            start = 0; scanned = 0
        } else if start > 65_536 && start > buffer.count / 2 {
            buffer.removeFirst(start)
            scanned -= start
            start = 0
        }
    }

    static func parseHeaders(_ bytes: ArraySlice<UInt8>) -> [String: String] {
        var headers: [String: String] = [:]
        for line in bytes.split(separator: 0x0A) {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self)
            headers[name] = AgentText.trimmed(value)
        }
        return headers
    }
}
