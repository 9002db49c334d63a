/// The nearest-rank percentile `p` (0...100) of `values` — the rank fshost and
/// pqloop use, so figures printed by tests and benchmarks compare. NaN when empty.
public func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[max(0, min(sorted.count - 1, rank - 1))]
}
