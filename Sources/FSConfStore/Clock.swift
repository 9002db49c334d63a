import Glibc

/// Monotonic time in nanoseconds; deadlines are absolute values of this clock.
public enum MonotonicClock {
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
    public static func deadline(afterMilliseconds ms: Int) -> UInt64 { now() &+ UInt64(max(ms, 0)) &* 1_000_000 }
    /// Milliseconds left before `deadline` (0 when passed).
    public static func remainingMilliseconds(_ deadline: UInt64) -> Int32 {
        let n = now()
        return deadline > n ? Int32(min((deadline - n + 999_999) / 1_000_000, UInt64(Int32.max))) : 0
    }
}
