/// Nearest-rank percentile (p in 0...100) of `values`, as benchmarks/host/fshost.c
/// and pqloop.c compute theirs, so figures printed by tests and benchmarks compare.
/// NaN for no values.
public func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[max(0, min(sorted.count - 1, rank - 1))]
}
