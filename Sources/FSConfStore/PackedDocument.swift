import CLZ4

/// A stored document in the form it travels from the database to a node
/// (`prerendered_contexts.packed`, migration 0010): LZ4's block format, with the
/// document's length beside it (`packed_length`). A 10,000-extension context is
/// 3.06 MB of XML and 113 KB packed; the database then reads and sends 1/27 of it,
/// and a node unpacks it in about a millisecond (docs/performance.md, "Big contexts").
public enum PackedDocument {
    /// The largest document packed or unpacked: LZ4's own limit (~1.9 GiB).
    public static let maximumLength = Int(LZ4_MAX_INPUT_SIZE)

    /// The most LZ4's block format unpacks one byte into (a run of 255-byte match
    /// lengths: each further byte adds at most 255).
    static let maximumRatio = 255

    /// `text`'s UTF-8 bytes packed; nil when longer than `maximumLength`.
    public static func pack(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { source -> [UInt8]? in
            guard source.count <= maximumLength else { return nil }
            let bound = Int(LZ4_compressBound(Int32(source.count)))
            return [UInt8](unsafeUninitializedCapacity: max(bound, 1)) { out, written in
                written = 0
                guard let src = source.baseAddress, let dst = out.baseAddress else { return }
                let n = src.withMemoryRebound(to: CChar.self, capacity: source.count) { s in
                    dst.withMemoryRebound(to: CChar.self, capacity: bound) { d in
                        LZ4_compress_default(s, d, Int32(source.count), Int32(bound))
                    }
                }
                written = max(Int(n), 0)
            }
        }
    }

    /// `bytes` as bytea's hex input (`\x…`): a text parameter PostgreSQL reads as bytea.
    public static func hexLiteral(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 2 + 2 * bytes.count) { out in
            out[0] = UInt8(ascii: "\\"); out[1] = UInt8(ascii: "x")
            var w = 2
            for b in bytes {
                out[w] = digits[Int(b >> 4)]; out[w + 1] = digits[Int(b & 15)]
                w += 2
            }
            return w
        }
    }

    /// The document packed in `hex` (`encode(packed, 'hex')`), unpacked to exactly
    /// `length` bytes and handed to `body` (valid only inside it). nil when `hex`
    /// is not hex, the block is malformed, or it does not unpack to `length` bytes:
    /// LZ4_decompress_safe never reads or writes outside the two buffers.
    public static func unpack<T>(hex: UnsafeBufferPointer<UInt8>, length: Int,
                                 _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T? {
        // LZ4 packs at most ~255 bytes into one: a length beyond that is a lie, refused
        // before anything is allocated for it (a damaged row must not make a node
        // allocate gigabytes).
        guard hex.count % 2 == 0, plausible(length: length, packed: hex.count / 2),
              let packed = decodeHex(hex) else { return nil }
        var done = false
        let unpacked = [UInt8](unsafeUninitializedCapacity: max(length, 1)) { out, written in
            written = 0
            guard let dst = out.baseAddress else { return }
            let n = packed.withUnsafeBufferPointer { src -> Int32 in
                guard let s = src.baseAddress else { return -1 }
                return s.withMemoryRebound(to: CChar.self, capacity: src.count) { s in
                    dst.withMemoryRebound(to: CChar.self, capacity: max(length, 1)) { d in
                        LZ4_decompress_safe(s, d, Int32(src.count), Int32(length))
                    }
                }
            }
            if n == Int32(length) { written = length; done = true }
        }
        guard done else { return nil }
        return unpacked.withUnsafeBufferPointer(body)
    }

    /// Whether `packed` bytes can unpack to `length` bytes at all.
    static func plausible(length: Int, packed: Int) -> Bool {
        packed <= maximumLength && length >= 0 && length <= maximumLength && length <= packed * maximumRatio + 64
    }

    static func decodeHex(_ hex: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var ok = true
        let bytes = [UInt8](unsafeUninitializedCapacity: hex.count / 2) { out, written in
            var i = 0
            while i < hex.count / 2 {
                guard let h = nibble(hex[2 * i]), let l = nibble(hex[2 * i + 1]) else { ok = false; break }
                out[i] = h << 4 | l
                i += 1
            }
            written = i
        }
        return ok ? bytes : nil
    }
}
