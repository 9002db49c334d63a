import FSConfCore
import FSConfStore

/// The process-wide cache of rendered answers (docs/caching.md). Sharded: a lookup
/// takes one shard's mutex for a hash lookup and a reference copy. Each shard
/// holds its own copy of the listener's state (epoch, freshness, heard seq), so
/// a lookup never takes a process-wide lock; the listener updates every shard.
final class NodeCache: @unchecked Sendable {
    /// Immutable once kept; a class, so a hit copies one reference.
    final class Entry: @unchecked Sendable {
        let xml: String
        let tags: CacheTags
        /// Monotonic ns after which the entry is no longer a hit ("not found"
        /// answers: the negative TTL; answers FreeSWITCH caches itself: 0).
        let expires: UInt64
        /// The cache epoch the lookup started in: a gap bumps the epoch, and an
        /// entry of an older epoch is only a last good answer, never a hit.
        let epoch: UInt64
        /// The change seq of the snapshot the answer was read in.
        let seq: Int64

        init(xml: String, tags: CacheTags, expires: UInt64, epoch: UInt64, seq: Int64) {
            self.xml = xml; self.tags = tags; self.expires = expires; self.epoch = epoch; self.seq = seq
        }
    }

    /// What a lookup found: a fresh answer, or only a last good one (or nothing),
    /// and the epoch to insert the fetched answer under.
    struct Probe {
        var hit: String?
        var lastGood: Entry?
        var epoch: UInt64
    }

    /// A key with its hash computed once per lookup (it picks the shard and the
    /// slot: the key's strings are hashed once, not twice). `node` is the asking
    /// node's name (docs/cluster.md): two nodes never share an answer, whatever the
    /// scopes in the database (a process normally has one name; tests ask as several).
    struct Key: Hashable {
        let key: CacheKey
        let node: String?
        let hash: Int
        init(_ key: CacheKey, node: String?) {
            self.key = key
            self.node = node
            var h = Hasher()
            h.combine(key)
            h.combine(node)
            hash = h.finalize()
        }
        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
        static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.key == b.key && a.node == b.node }
    }

    final class Shard: @unchecked Sendable {
        let monitor = Monitor()
        var lru: LRUCache<Key, Entry>
        var epoch: UInt64 = 1
        var heardSeq: Int64 = 0
        var fresh = false
        var hits = 0, misses = 0, inserts = 0, rejected = 0, invalidated = 0
        init(capacity: Int) { lru = LRUCache(capacity: capacity) }

        /// `entry` is a hit (under `monitor`): the listener is current, the entry is
        /// of this epoch and not expired.
        @inline(__always)
        func serves(_ entry: Entry, at now: UInt64) -> Bool {
            fresh && entry.epoch == epoch && now < entry.expires
        }
    }

    let shards: [Shard]
    let capacity: Int
    let negativeTTL: UInt64
    /// Monotonic nanoseconds: MonotonicClock in production, a test's own clock in
    /// tests (expiry is then asserted without sleeping).
    let clock: @Sendable () -> UInt64
    var enabled: Bool { capacity > 0 }

    init(capacity: Int, negativeTTLms: Int, shardCount: Int = 16,
         clock: @escaping @Sendable () -> UInt64 = MonotonicClock.now) {
        self.capacity = capacity
        self.clock = clock
        let n = capacity > 0 ? max(1, shardCount) : 1
        shards = (0..<n).map { _ in Shard(capacity: capacity / n) }
        negativeTTL = UInt64(max(negativeTTLms, 0)) * 1_000_000
    }

    @inline(__always)
    func shard(_ key: Key) -> Shard {
        shards.count == 1 ? shards[0] : shards[Int(UInt(bitPattern: key.hash) % UInt(shards.count))]
    }

    func probe(_ cacheKey: CacheKey, node: String?) -> Probe {
        probe(Key(cacheKey, node: node))
    }

    func probe(_ key: Key) -> Probe {
        let s = shard(key)
        let now = clock()
        return s.monitor.locked {
            guard let entry = s.lru.get(key) else {
                s.misses += 1
                return Probe(hit: nil, lastGood: nil, epoch: s.epoch)
            }
            if s.serves(entry, at: now) {
                s.hits += 1
                return Probe(hit: entry.xml, lastGood: nil, epoch: s.epoch)
            }
            s.misses += 1
            return Probe(hit: nil, lastGood: entry, epoch: s.epoch)
        }
    }

    /// The answer for `key` when it is a hit (counted); nothing counted otherwise:
    /// the caller then looks up the usual way (RequestMemo), which counts the miss.
    func hit(_ key: Key) -> String? {
        let s = shard(key)
        let now = clock()
        return s.monitor.locked { () -> String? in
            guard let entry = s.lru.get(key), s.serves(entry, at: now) else { return nil }
            s.hits += 1
            return entry.xml
        }
    }

    /// The answer kept for `cacheKey`, fresh or not (no hit or miss counted): what
    /// a failed lookup serves when another thread stored it after this one probed.
    func lastGood(_ cacheKey: CacheKey, node: String?) -> Entry? {
        let key = Key(cacheKey, node: node)
        let s = shard(key)
        return s.monitor.locked { s.lru.get(key) }
    }

    /// Keeps a fetched answer. Refused when the listener has heard of a change
    /// newer than the answer's snapshot (the change may concern it).
    /// `servable: false` keeps the answer only as a last good answer for an outage,
    /// never as a hit (see NodeEngine: users FreeSWITCH caches itself).
    @discardableResult
    func insert(_ cacheKey: CacheKey, node: String?, xml: String, tags: CacheTags, negative: Bool, seq: Int64?, epoch: UInt64,
                servable: Bool = true) -> Bool {
        guard enabled else { return false }
        let key = Key(cacheKey, node: node)
        let s = shard(key)
        let expires = !servable ? 0 : negative ? clock() &+ negativeTTL : UInt64.max
        let bytes = xml.utf8.count + cacheKey.approximateBytes + (node?.utf8.count ?? 0) + tags.approximateBytes + 104
        return s.monitor.locked {
            guard let seq, seq >= s.heardSeq else {
                s.rejected += 1
                return false
            }
            s.lru.set(key, Entry(xml: xml, tags: tags, expires: expires, epoch: epoch, seq: seq), bytes: bytes)
            s.inserts += 1
            return true
        }
    }

    /// A change set the listener heard of: drops the answers it may affect
    /// (`keys` nil: every answer). An answer read in a snapshot that already
    /// holds change set `seq` (its own seq ≥ `seq`) is current and stays: the
    /// notification can arrive after a lookup read the changed rows.
    /// Returns how many were dropped.
    @discardableResult
    func invalidate(_ keys: [ChangeKey]?, seq: Int64) -> Int {
        var dropped = 0
        for s in shards {
            s.monitor.locked {
                s.heardSeq = max(s.heardSeq, seq)
                let n: Int
                if let keys {
                    n = s.lru.removeAll { _, entry in entry.seq < seq && keys.contains { entry.tags.isAffected(by: $0) } }
                } else {
                    n = s.lru.removeAll { _, entry in entry.seq < seq }
                }
                s.invalidated += n
                dropped += n
            }
        }
        return dropped
    }

    /// The listener may have missed changes (it just (re)connected, or read
    /// something it does not understand): no entry is a hit any more, but each
    /// stays as the last good answer for an outage. `seq`: the current counter.
    func gap(seq: Int64?, fresh: Bool) {
        for s in shards {
            s.monitor.locked {
                s.epoch &+= 1
                if let seq { s.heardSeq = seq }
                s.fresh = fresh
            }
        }
    }

    struct Stats {
        var hits = 0, misses = 0, inserts = 0, rejected = 0, invalidated = 0, evictions = 0
        var entries = 0, bytes = 0, epoch: UInt64 = 0, heardSeq: Int64 = 0, fresh = false
    }

    var stats: Stats {
        var out = Stats()
        for s in shards {
            s.monitor.locked {
                out.hits += s.hits; out.misses += s.misses; out.inserts += s.inserts
                out.rejected += s.rejected; out.invalidated += s.invalidated; out.evictions += s.lru.evictions
                out.entries += s.lru.count; out.bytes += s.lru.bytes
                out.epoch = s.epoch; out.heardSeq = s.heardSeq; out.fresh = s.fresh
            }
        }
        return out
    }
}
