import CLua
import FSConfCore
import FSConfLuaGlue
import FSConfNode
import Glibc

// The Lua C module mod_lua loads. The generated shim loads the handler itself,
// `package.loadlib(".../fsconf.so", "fsconf_xml_handler")`; scripts can open the
// module table, `package.loadlib(".../fsconf.so", "luaopen_fsconf")()`.
//
// Rules kept here (docs/architecture.md): every Lua call that can raise runs in C
// under lua_pcall (FSConfLuaGlue), so a Lua error never unwinds a Swift frame; the
// request and settings are read first, `params` headers when the planner asks
// for them, results are pushed last; failures are `nil, message`.

let moduleVersion = "0.1.0"

/// Setting names as C strings, built once for the process.
final class CNames: @unchecked Sendable {
    let pointers: [UnsafePointer<CChar>?]
    init(_ names: [String]) {
        pointers = names.map { name in
            let count = name.utf8.count + 1
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: count)
            name.withCString { p.initialize(from: $0, count: count) }
            return UnsafePointer(p)
        }
    }
}
let settingNames = CNames(NodeSettings.keys)

/// Settings parsed from the shim, kept for the last distinct input: the shim's
/// string (compared byte for byte: no allocation on the lookup path) or a
/// settings table's values.
final class SettingsCache: @unchecked Sendable {
    private let lock = Monitor()
    private var lastText: [UInt8] = []
    private var lastTextSettings: NodeSettings?
    private var lastTable: ([String?], NodeSettings)?

    func settings(text: UnsafeRawBufferPointer) -> Result<NodeSettings, NodeError> {
        let hit: NodeSettings? = lock.locked { () -> NodeSettings? in
            guard let s = lastTextSettings, lastText.count == text.count, text.count > 0 else { return nil }
            return lastText.withUnsafeBytes { memcmp($0.baseAddress!, text.baseAddress!, text.count) == 0 } ? s : nil
        }
        if let hit { return .success(hit) }
        let parsed = NodeSettings.values(fromText: String(decoding: text, as: UTF8.self))
            .flatMap { NodeSettings.from($0, readFile: { readSmallFile($0) }) }
        if case .success(let s) = parsed { lock.locked { lastText = Array(text); lastTextSettings = s } }
        return parsed
    }

    func settings(for values: [String?]) -> Result<NodeSettings, NodeError> {
        if let hit = lock.locked({ lastTable }), hit.0 == values { return .success(hit.1) }
        var table: [String: String] = [:]
        for (name, value) in zip(NodeSettings.keys, values) { if let value { table[name] = value } }
        let parsed = NodeSettings.from(table, readFile: { readSmallFile($0) })
        if case .success(let s) = parsed { lock.locked { lastTable = (values, s) } }
        return parsed
    }
}
let settingsCache = SettingsCache()

/// The headers a section's lookups usually read (`LookupRequest.usualHeaders`),
/// read in one protected call on a lookup's first `header`.
final class HeaderBatch: @unchecked Sendable {
    static let capacity = 8
    let names: [String]
    let cNames: CNames
    init(_ names: [String]) { self.names = Array(names.prefix(HeaderBatch.capacity)); cNames = CNames(self.names) }

    static let bySection: [(section: String, batch: HeaderBatch)] = Section.allCases.compactMap { section in
        let names = LookupRequest.usualHeaders(section: section.rawValue)
        return names.isEmpty ? nil : (section.rawValue, HeaderBatch(names))
    }
    /// The batch of the section named by `section`'s bytes (no String made).
    static func of(section: fsconf_str) -> HeaderBatch? {
        guard let p = section.ptr else { return nil }
        for entry in bySection where entry.section.utf8.count == section.len {
            let same = entry.section.utf8.withContiguousStorageIfAvailable { memcmp($0.baseAddress!, p, section.len) == 0 }
            if same ?? (entry.section == string(section)) { return entry.batch }
        }
        return nil
    }
}

func string(_ s: fsconf_str) -> String? {
    guard let ptr = s.ptr else { return nil }
    return ptr.withMemoryRebound(to: UInt8.self, capacity: s.len) {
        String(decoding: UnsafeBufferPointer(start: $0, count: s.len), as: UTF8.self)
    }
}

/// One lookup's access to its Lua state: `params` headers on demand and
/// FreeSWITCH globals, both through the protected glue. Set up for one call at a
/// time; each thread keeps one (`forThisThread`), so a lookup allocates nothing.
final class LuaLookup: HeaderSource, @unchecked Sendable {
    private(set) var L: OpaquePointer
    private(set) var method: Int32, params: Int32
    private(set) var readError: String?
    fileprivate var inUse = false
    /// This call's usual headers (nil: none), read together on the first `header`.
    private var batch: HeaderBatch?
    private var batchRead = false
    private let batchValues = UnsafeMutablePointer<fsconf_str>.allocate(capacity: HeaderBatch.capacity)
    /// The shim text this thread last resolved, and what it resolved to (reused
    /// while no other settings replaced the backend: no lock on a lookup).
    private var memoText: [UInt8] = []
    private var memo: NodeEngine.Resolved?
    /// A header was read that is not one of the batch's (planning depends on more
    /// than the raw request the RequestMemo keys on).
    private var readOutsideBatch = false
    /// The raw request (RequestMemo): written here, valid until the next lookup.
    private let raw = UnsafeMutableRawPointer.allocate(byteCount: RawRequest.maximumBytes, alignment: 8)

    init(_ L: OpaquePointer, method: Int32, params: Int32) { self.L = L; self.method = method; self.params = params }
    deinit { batchValues.deallocate(); raw.deallocate() }

    /// This thread's instance, set up for a call on `L`; a fresh one when the
    /// thread's is in use (a handler called again from inside a lookup).
    static func forThisThread(_ L: OpaquePointer, method: Int32, params: Int32) -> LuaLookup {
        if let raw = pthread_getspecific(threadKey) {
            let lookup = Unmanaged<LuaLookup>.fromOpaque(raw).takeUnretainedValue()
            if !lookup.inUse {
                lookup.L = L; lookup.method = method; lookup.params = params; lookup.readError = nil
                lookup.batch = nil; lookup.batchRead = false; lookup.readOutsideBatch = false
                lookup.inUse = true
                return lookup
            }
            return LuaLookup(L, method: method, params: params)
        }
        let lookup = LuaLookup(L, method: method, params: params)
        pthread_setspecific(threadKey, Unmanaged.passRetained(lookup).toOpaque())
        lookup.inUse = true
        return lookup
    }

    /// The call is over: the instance may serve the thread's next lookup.
    func release() { inUse = false }

    /// Each thread's instance, released when the thread exits.
    static let threadKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { raw in if let raw { Unmanaged<LuaLookup>.fromOpaque(raw).release() } }
        return key
    }()

    /// The settings of the shim text `text` and their backend: this thread's memo
    /// when the text is the same bytes and the backend still current, else parsed
    /// (SettingsCache) and resolved, and remembered.
    func resolved(text: UnsafeRawBufferPointer) -> Result<NodeEngine.Resolved, NodeError> {
        if let memo, text.count > 0, memoText.count == text.count, NodeEngine.shared.isCurrent(memo),
           memoText.withUnsafeBytes({ memcmp($0.baseAddress!, text.baseAddress!, text.count) == 0 }) {
            return .success(memo)
        }
        return settingsCache.settings(text: text).map { settings in
            let resolved = NodeEngine.shared.resolve(settings)
            memoText = Array(text)
            memo = resolved
            return resolved
        }
    }

    /// Reads `batch`'s headers with the first `header` call of a lookup of its section.
    func readUsually(_ batch: HeaderBatch?) { self.batch = batch; batchRead = false }

    /// Reads the batch's headers now (once per lookup); false when a read failed.
    private func readBatch(_ batch: HeaderBatch) -> Bool {
        if batchRead { return readError == nil }
        batchRead = true
        let status = batch.cNames.pointers.withUnsafeBufferPointer {
            fsconf_glue_headers(L, method, params, $0.baseAddress, Int32($0.count), batchValues)
        }
        if status != 0 { failed(status); return false }
        return true
    }

    var readOnlyUsualHeaders: Bool { !readOutsideBatch }

    /// The request's raw inputs for the RequestMemo: section, tag, key name and
    /// value, then the batch's headers, each as a 16-bit length (0xFFFF: absent)
    /// and its bytes. Nil when a batch header cannot be read or it is too long.
    func rawRequest(_ args: fsconf_args, batch: HeaderBatch) -> RawRequest? {
        guard readBatch(batch) else { return nil }
        var n = 0
        let capacity = RawRequest.maximumBytes
        func put(_ s: fsconf_str) -> Bool {
            guard let p = s.ptr else {
                guard n + 2 <= capacity else { return false }
                raw.storeBytes(of: UInt16.max, toByteOffset: n, as: UInt16.self)
                n += 2
                return true
            }
            guard s.len < Int(UInt16.max), n + 2 + s.len <= capacity else { return false }
            raw.storeBytes(of: UInt16(s.len), toByteOffset: n, as: UInt16.self)
            (raw + n + 2).copyMemory(from: p, byteCount: s.len)
            n += 2 + s.len
            return true
        }
        guard put(args.section), put(args.tag_name), put(args.key_name), put(args.key_value) else { return nil }
        for i in batch.names.indices { guard put(batchValues[i]) else { return nil } }
        return RawRequest(bytes: UnsafeRawBufferPointer(start: raw, count: n))
    }

    /// params:getHeader(name). The value stays on the Lua stack (alive) until
    /// handle returns. A raising getHeader sets `readError`.
    func header(_ name: String) -> String? {
        guard readError == nil else { return nil }
        if let batch {
            guard readBatch(batch) else { return nil }
            for i in batch.names.indices where batch.names[i] == name { return string(batchValues[i]) }
        }
        readOutsideBatch = true
        var value = fsconf_str(ptr: nil, len: 0)
        let status = name.withCString { fsconf_glue_header(L, method, params, $0, &value) }
        if status != 0 { failed(status); return nil }
        return string(value)
    }

    /// A header read failed: `readError` says why (the message popped).
    private func failed(_ status: Int32) {
        if status == -1 { readError = "the Lua stack cannot grow"; return }  // nothing was pushed
        readError = lua_tolstring(L, -1, nil).map { String(cString: $0) } ?? "params:getHeader failed"
        lua_settop(L, -2)
    }

    /// freeswitch.getGlobalVariable(name), for $${name} values the database lacks.
    func global(_ name: String) -> String? {
        let top = lua_gettop(L)
        guard fsconf_glue_global_variable(L, name) == 0 else { lua_settop(L, top); return nil }
        return popString(top)
    }

    /// The node's name when the lookup's params do not say (docs/cluster.md): the
    /// FreeSWITCH-Switchname of a fresh event, else the `hostname` global the core
    /// sets at start (src/switch_core.c).
    func nodeName() -> String? {
        let top = lua_gettop(L)
        if fsconf_glue_switchname(L) == 0, let name = popString(top), !name.isEmpty { return name }
        lua_settop(L, top)
        return global("hostname")
    }

    /// The string on top (nil for anything else), then the stack back to `top`.
    private func popString(_ top: Int32) -> String? {
        var len = 0
        let value = lua_tolstring(L, -1, &len).map { p in
            p.withMemoryRebound(to: UInt8.self, capacity: len) {
                String(decoding: UnsafeBufferPointer(start: $0, count: len), as: UTF8.self)
            }
        }
        lua_settop(L, top)
        return value
    }
}

/// fsconf.handle(XML_REQUEST, params, settings) -> xml | nil, message.
/// `modLua`: the shim's entry point, fsconf_xml_handler(settings): XML_REQUEST and
/// params are mod_lua's globals, and the answer also goes to the global XML_STRING.
func handle(_ L: OpaquePointer?, modLua: Bool = false) -> Int32 {
    guard let L else { return 0 }
    let settingsIndex: Int32 = modLua ? 1 : 3
    lua_settop(L, settingsIndex)
    // 1. Read the arguments through the protected glue. The values stay on the
    //    stack above the arguments until this function returns, so the C strings
    //    stay valid.
    var args = fsconf_args()
    args.mod_lua = modLua ? 1 : 0
    var settingValues: [fsconf_str] = []
    var status: Int32 = 0
    if lua_type(L, settingsIndex) == LUA_TTABLE {
        settingValues = [fsconf_str](repeating: fsconf_str(ptr: nil, len: 0), count: settingNames.pointers.count)
        settingNames.pointers.withUnsafeBufferPointer { sn in
            settingValues.withUnsafeMutableBufferPointer { sv in
                args.config_count = Int32(sn.count)
                args.config_names = sn.baseAddress
                args.config_values = sv.baseAddress
                status = fsconf_glue_read_args(L, &args)
                args.config_names = nil
                args.config_values = nil
            }
        }
    } else {
        status = fsconf_glue_read_args(L, &args)
    }
    if status != 0 {
        // -1: the stack could not grow, nothing was pushed; else the error is on top.
        let message = status == -1 ? "the Lua stack cannot grow"
            : lua_tolstring(L, -1, nil).map { String(cString: $0) } ?? "cannot read arguments"
        lua_settop(L, settingsIndex)
        return push(L, nil, "fsconf: bad arguments: \(message)", setGlobal: modLua)
    }
    let lua = LuaLookup.forThisThread(L, method: args.method_index, params: args.params_index)
    defer { lua.release() }
    let settings: Result<NodeEngine.Resolved, NodeError>
    if let text = args.config_text.ptr {
        settings = lua.resolved(text: UnsafeRawBufferPointer(start: text, count: args.config_text.len))
    } else {
        settings = settingsCache.settings(for: settingValues.map { string($0) }).map { NodeEngine.shared.resolve($0) }
    }
    // A request seen before goes straight to its cache entry (RequestMemo): read
    // its raw inputs (its section's usual headers included) and ask the cache.
    let batch = args.has_params != 0 ? HeaderBatch.of(section: args.section) : nil
    lua.readUsually(batch)
    var raw: RawRequest?
    if let batch, case .success(let resolved) = settings, resolved.settings.cacheBytes > 0 {
        raw = lua.rawRequest(args, batch: batch)
        if let raw, let hit = NodeEngine.shared.cachedAnswer(raw, resolved: resolved) {
            return push(L, hit, nil, setGlobal: modLua)
        }
    }
    var request = LookupRequest(section: string(args.section) ?? "", tagName: string(args.tag_name) ?? "",
                                keyName: string(args.key_name) ?? "", keyValue: string(args.key_value) ?? "",
                                hasParams: args.has_params != 0)
    if request.hasParams { request.headerSource = lua }

    // 2. The Swift work. The only Lua calls from here on go through the protected
    //    glue: params:getHeader for the headers the planner asks for, and
    //    freeswitch.getGlobalVariable for $${name} values the database lacks.
    let outcome: LookupOutcome
    switch settings {
    case .failure(let error):
        outcome = NodeEngine.shared.settingsFailure(error)
    case .success(let resolved):
        outcome = NodeEngine.shared.handle(request, resolved: resolved, node: { [lua] in lua.global($0) },
                                           nodeName: { [lua] in lua.nodeName() }, raw: raw)
    }
    for line in outcome.log { _ = fsconf_glue_log(L, line.level, line.message) }
    // 3. Push the results last.
    return push(L, outcome.xml, outcome.error, setGlobal: modLua)
}

func push(_ L: OpaquePointer, _ xml: String?, _ message: String?, setGlobal: Bool = false) -> Int32 {
    let global: Int32 = setGlobal ? 1 : 0
    func pushing(_ chars: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
        guard let message else { return fsconf_glue_push_result(L, chars, length, nil, global) }
        return message.withCString { fsconf_glue_push_result(L, chars, length, $0, global) }
    }
    let count: Int32
    if var text = xml {
        count = text.withUTF8 { buffer in
            buffer.withMemoryRebound(to: CChar.self) { pushing($0.baseAddress, $0.count) }
        }
    } else {
        count = pushing(nil, 0)
    }
    return max(count, 0)
}

let statNames = CNames(CacheStatistics().fields.map(\.0))

/// fsconf.stats() -> table of the process's cache, listener and outage counters.
func stats(_ L: OpaquePointer?) -> Int32 {
    guard let L else { return 0 }
    let values = NodeEngine.shared.cacheStats.fields.map { Int64($0.1) }
    let count = values.withUnsafeBufferPointer { v in
        statNames.pointers.withUnsafeBufferPointer { n in
            fsconf_glue_push_stats(L, n.baseAddress, v.baseAddress, Int32(min(n.count, v.count)))
        }
    }
    return max(count, 0)
}

@_cdecl("luaopen_fsconf")
public func luaopen_fsconf(_ L: OpaquePointer?) -> Int32 {
    guard let L else { return 0 }
    let status = moduleVersion.withCString { fsconf_glue_open(L, { handle($0) }, { stats($0) }, $0) }
    return status == 0 ? 1 : 0
}

/// The shim's entry point: `package.loadlib(lib, "fsconf_xml_handler")` returns this
/// function itself, so a lookup does not build the module table in its new lua_State.
/// `fsconf_xml_handler(settings)`: reads mod_lua's globals XML_REQUEST and params,
/// sets XML_STRING, and returns what `fsconf.handle` returns. Every token of the
/// shim is parsed again for every lookup, so the shim passes only its settings.
@_cdecl("fsconf_xml_handler")
public func fsconf_xml_handler(_ L: OpaquePointer?) -> Int32 {
    handle(L, modLua: true)
}
