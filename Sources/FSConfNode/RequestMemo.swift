import FSConfCore
import Glibc

/// A lookup's raw inputs → the cache key they planned to (docs/caching.md, "The
/// hit path"). A cache hit otherwise decodes the request's headers into strings,
/// plans the query, lower-cases the node's name and hashes the key's strings
/// before it can look in the cache; with this memo a lookup whose raw inputs
/// (section, tag, key name and value, and the section's usual headers, byte for
/// byte) were seen before goes straight to the cache with the key they planned to.
///
/// Only what the memo stores is new: the cache decides, as for every lookup,
/// whether the key's entry is a hit (fresh, not invalidated, not expired). The
/// mapping itself never goes stale: planning is a function of these inputs (a
/// lookup whose planning read anything else, another header or the node's name
/// from FreeSWITCH's globals, is not recorded). One memo per backend: new
/// settings start with an empty one.
///
/// Direct-mapped and bounded: a slot per hash, a newer request replaces an older
/// one in its slot (that request then plans again). Sharded like the cache.
final class RequestMemo: @unchecked Sendable {
    /// One recorded request: its bytes and the key they planned to.
    final class Slot {
        let hash: UInt64
        let bytes: [UInt8]
        let key: NodeCache.Key
        init(hash: UInt64, bytes: [UInt8], key: NodeCache.Key) { self.hash = hash; self.bytes = bytes; self.key = key }
    }

    final class Shard: @unchecked Sendable {
        let monitor = Monitor()
        var slots: [Slot?]
        init(count: Int) { slots = [Slot?](repeating: nil, count: count) }
    }

    /// Requests longer than this are not recorded (they plan every time).
    static let maximumBytes = 1024
    static let shardCount = 16

    let shards: [Shard]
    let slotMask: Int

    /// `slots`: how many requests it holds at most (rounded down to a power of two,
    /// at least one per shard). The node sizes it from the cache's bytes.
    init(slots: Int) {
        var perShard = 1
        while perShard * 2 * RequestMemo.shardCount <= slots { perShard *= 2 }
        slotMask = perShard - 1
        shards = (0..<RequestMemo.shardCount).map { _ in Shard(count: perShard) }
    }

    /// The memo a cache of `cacheBytes` gets: a slot per 4 KiB of cache (a slot
    /// holds ~200 bytes with its key: ~5 % of the cache's size), 1,024 to 65,536 slots.
    static func sized(cacheBytes: Int) -> RequestMemo {
        RequestMemo(slots: min(max(cacheBytes / 4096, 1024), 65_536))
    }

    /// FNV-1a over the request's bytes (short inputs: no setup cost).
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    @inline(__always)
    private func place(_ hash: UInt64) -> (Shard, Int) {
        (shards[Int(hash & UInt64(RequestMemo.shardCount - 1))], Int(truncatingIfNeeded: hash >> 8) & slotMask)
    }

    /// The key `bytes` planned to when it was recorded, or nil.
    func key(for bytes: UnsafeRawBufferPointer, hash: UInt64) -> NodeCache.Key? {
        let (shard, i) = place(hash)
        return shard.monitor.locked { () -> NodeCache.Key? in
            guard let slot = shard.slots[i], slot.hash == hash, slot.bytes.count == bytes.count else { return nil }
            let same = bytes.count == 0 || slot.bytes.withUnsafeBytes { memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0 }
            return same ? slot.key : nil
        }
    }

    /// Records that `bytes` planned to `key`.
    func record(_ bytes: UnsafeRawBufferPointer, hash: UInt64, key: NodeCache.Key) {
        guard bytes.count <= RequestMemo.maximumBytes else { return }
        let (shard, i) = place(hash)
        let slot = Slot(hash: hash, bytes: Array(bytes), key: key)
        shard.monitor.locked { shard.slots[i] = slot }
    }
}

/// A lookup's raw inputs as the Lua module read them (valid for one call), for
/// `NodeEngine.cachedAnswer` and `handle`. Recorded only when planning read
/// nothing else (`HeaderSource.readOnlyUsualHeaders`, and no node name from
/// FreeSWITCH's globals).
public struct RawRequest {
    /// Longer requests are not recorded (they plan every time).
    public static let maximumBytes = RequestMemo.maximumBytes
    public let bytes: UnsafeRawBufferPointer
    public let hash: UInt64

    public init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        self.hash = RequestMemo.hash(bytes)
    }
}
