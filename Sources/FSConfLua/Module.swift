import CLua
import FSConfCore
import FSConfLuaGlue
import FSConfNode

// The Lua C module mod_lua loads: `package.loadlib(".../fsconf.so", "luaopen_fsconf")`.
//
// Rules kept here (docs/architecture.md): every Lua call that can raise runs in C
// under lua_pcall (FSConfLuaGlue); arguments are read first, the Swift work runs
// with no Lua call in between, results are pushed last; failures are `nil, message`.

let moduleVersion = "0.1.0"

/// Header and setting names as C strings, built once for the process.
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
let headerNames = CNames(LookupRequest.headerNames)
let settingNames = CNames(NodeSettings.keys)

/// Which sections need each header, as a C array built once for the process.
nonisolated(unsafe) let headerMasks: UnsafePointer<UInt8> = {
    let masks = LookupRequest.headerMasks
    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: masks.count)
    p.initialize(from: masks, count: masks.count)
    return UnsafePointer(p)
}()

/// Settings parsed from the shim's table, cached per distinct table content
/// (values in `NodeSettings.keys` order; nil: absent).
final class SettingsCache: @unchecked Sendable {
    private let lock = Monitor()
    private var last: ([String?], NodeSettings)?
    func settings(for values: [String?]) -> Result<NodeSettings, NodeError> {
        if let hit = lock.locked({ last }), hit.0 == values { return .success(hit.1) }
        var table: [String: String] = [:]
        for (name, value) in zip(NodeSettings.keys, values) { if let value { table[name] = value } }
        let parsed = NodeSettings.from(table, readFile: { readSmallFile($0) })
        if case .success(let s) = parsed { lock.locked { last = (values, s) } }
        return parsed
    }
}
let settingsCache = SettingsCache()

func string(_ s: fsconf_str) -> String? {
    guard let ptr = s.ptr else { return nil }
    return ptr.withMemoryRebound(to: UInt8.self, capacity: s.len) {
        String(decoding: UnsafeBufferPointer(start: $0, count: s.len), as: UTF8.self)
    }
}

/// fsconf.handle(XML_REQUEST, params, settings) -> xml | nil, message
func handle(_ L: OpaquePointer?) -> Int32 {
    guard let L else { return 0 }
    lua_settop(L, 3)
    // 1. Read every argument through the protected glue.
    var headerValues = [fsconf_str](repeating: fsconf_str(ptr: nil, len: 0), count: headerNames.pointers.count)
    var settingValues = [fsconf_str](repeating: fsconf_str(ptr: nil, len: 0), count: settingNames.pointers.count)
    var request = LookupRequest(section: "")
    var values = [String?](repeating: nil, count: NodeSettings.keys.count)
    var readError: String?
    headerNames.pointers.withUnsafeBufferPointer { hn in
        settingNames.pointers.withUnsafeBufferPointer { sn in
            headerValues.withUnsafeMutableBufferPointer { hv in
                settingValues.withUnsafeMutableBufferPointer { sv in
                    var args = fsconf_args()
                    args.header_count = Int32(hn.count)
                    args.header_names = hn.baseAddress
                    args.header_values = hv.baseAddress
                    args.config_count = Int32(sn.count)
                    args.config_names = sn.baseAddress
                    args.config_values = sv.baseAddress
                    args.header_masks = headerMasks
                    if fsconf_glue_read_args(L, &args) != 0 {
                        readError = lua_tolstring(L, -1, nil).map { String(cString: $0) } ?? "cannot read arguments"
                        lua_settop(L, 3)
                        return
                    }
                    request.section = string(args.section) ?? ""
                    request.tagName = string(args.tag_name) ?? ""
                    request.keyName = string(args.key_name) ?? ""
                    request.keyValue = string(args.key_value) ?? ""
                    request.hasParams = args.has_params != 0
                    for (i, name) in LookupRequest.headerNames.enumerated() {
                        if let v = string(hv[i]) { request.headers[name] = v }
                    }
                    for i in 0..<sv.count { values[i] = string(sv[i]) }
                    lua_settop(L, 3)  // drop the anchor: the strings are copied
                }
            }
        }
    }
    if let readError { return push(L, nil, "fsconf: bad arguments: \(readError)") }

    // 2. The Swift work. The only Lua calls from here on are the protected
    //    freeswitch.getGlobalVariable reads for $${name} values the database lacks.
    let outcome: LookupOutcome
    switch settingsCache.settings(for: values) {
    case .failure(let error):
        outcome = LookupOutcome(xml: nil, error: error.description, log: [("err", error.description)])
    case .success(let settings):
        outcome = NodeEngine.shared.handle(request, settings: settings) { name in
            guard fsconf_glue_global_variable(L, name) == 0 else { lua_settop(L, 3); return nil }
            var len = 0
            let value = lua_tolstring(L, -1, &len).map { p in
                p.withMemoryRebound(to: UInt8.self, capacity: len) {
                    String(decoding: UnsafeBufferPointer(start: $0, count: len), as: UTF8.self)
                }
            }
            lua_settop(L, 3)
            return value
        }
    }
    for line in outcome.log { _ = fsconf_glue_log(L, line.level, line.message) }
    // 3. Push the results last.
    return push(L, outcome.xml, outcome.error)
}

func push(_ L: OpaquePointer, _ xml: String?, _ message: String?) -> Int32 {
    func pushing(_ chars: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
        guard let message else { return fsconf_glue_push_result(L, chars, length, nil) }
        return message.withCString { fsconf_glue_push_result(L, chars, length, $0) }
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
