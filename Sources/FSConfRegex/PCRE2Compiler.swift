import CPCRE2
import FSConfCore
import Glibc

/// Compiles patterns with PCRE2 exactly as FreeSWITCH does (pcre2_compile with
/// no options but CASELESS/DOTALL from `/…/is`; src/switch_regex.c).
public struct PCRE2Compiler: RegexCompiler {
    public init() {}

    public func problem(pattern: String, caseless: Bool, dotall: Bool) -> String? {
        var options: UInt32 = 0
        if caseless { options |= fsconf_pcre2_caseless() }
        if dotall { options |= fsconf_pcre2_dotall() }
        var message = [CChar](repeating: 0, count: 160)
        var offset = 0
        var copy = pattern
        let ok = copy.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                fsconf_pcre2_compiles(chars.baseAddress, chars.count, options, &message, message.count, &offset)
            }
        }
        if ok == 1 { return nil }
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return "does not compile at offset \(offset): \(text)"
    }
}

/// A PCRE2Compiler that remembers each pattern's verdict, so a large context is
/// not recompiled on every lookup. Thread-safe; bounded (cleared when full).
public final class CachingRegexCompiler: RegexCompiler, @unchecked Sendable {
    private let compiler: any RegexCompiler
    private let limit: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var verdicts: [Key: String?] = [:]

    struct Key: Hashable { var pattern: String; var caseless: Bool; var dotall: Bool }

    public init(_ compiler: any RegexCompiler = PCRE2Compiler(), limit: Int = 100_000) {
        self.compiler = compiler
        self.limit = limit
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func problem(pattern: String, caseless: Bool, dotall: Bool) -> String? {
        let key = Key(pattern: pattern, caseless: caseless, dotall: dotall)
        pthread_mutex_lock(mutex)
        let cached = verdicts[key]
        pthread_mutex_unlock(mutex)
        if let cached { return cached }
        // Compile outside the lock: another thread may compile the same pattern.
        let verdict = compiler.problem(pattern: pattern, caseless: caseless, dotall: dotall)
        pthread_mutex_lock(mutex)
        if verdicts.count >= limit { verdicts.removeAll(keepingCapacity: true) }
        verdicts[key] = verdict
        pthread_mutex_unlock(mutex)
        return verdict
    }

    public var count: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return verdicts.count
    }
}
