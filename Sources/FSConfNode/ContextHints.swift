import FSConfCore

/// The dialplan and chatplan contexts a node last found without a current stored
/// document (an SQL change not rendered yet, or a context that cannot be stored):
/// their lookups ask `DialplanSQL.context` (document or rows, one round trip)
/// instead of `DialplanSQL.stored` then the rows (two). A hint only: either
/// statement answers correctly, so a stale hint costs time, never correctness. A
/// context leaves the set when `context` returns its document again. Bounded: full,
/// it starts over.
final class ContextHints: @unchecked Sendable {
    private let monitor = Monitor()
    private var names = Set<String>()
    static let capacity = 4096

    private static func key(_ section: PlanSection, _ context: String) -> String { "\(section.rawValue)\u{0}\(context)" }

    func readsRows(_ section: PlanSection, _ context: String) -> Bool {
        let key = Self.key(section, context)
        return monitor.locked { names.contains(key) }
    }

    func set(_ section: PlanSection, _ context: String, readsRows: Bool) {
        let key = Self.key(section, context)
        monitor.locked {
            if readsRows {
                if names.count >= Self.capacity { names.removeAll(keepingCapacity: true) }
                names.insert(key)
            } else {
                names.remove(key)
            }
        }
    }
}
