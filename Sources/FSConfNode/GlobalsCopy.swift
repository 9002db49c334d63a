/// The node's copy of the global variables (the `$${name}` values stored in
/// fsconf.global_variables) and the version the database gave it
/// (fsconf.globals_version, migration 0006).
///
/// Each lookup statement takes the version the node holds and returns every
/// global only when it is not the current one, with the current version in its
/// `Q` row. So a lookup renders with globals read in the same snapshot as its
/// rows, and the statement does not scan its rows for references. Replacing the
/// copy is whole (name → value map and version together), under a lock.
///
/// One copy per asking node (docs/cluster.md): a global may have variants limited
/// to some nodes, so each node's values are its own. A process normally asks as
/// one node; a change of node groups renews the version (migration 0007).
final class GlobalsCopy: @unchecked Sendable {
    private let monitor = Monitor()
    private var copies: [String: (version: String?, values: [String: String])] = [:]

    /// What a lookup of `node` sends, and the values that go with it.
    func current(for node: String?) -> (version: String?, values: [String: String]) {
        monitor.locked { copies[node ?? ""] ?? (nil, [:]) }
    }

    /// The globals a lookup renders with: those it held when it sent `sent`, unless
    /// the statement returned others (`returned` is not `sent`): those, kept for
    /// the node's next lookups.
    func resolve(for node: String?, sent: (version: String?, values: [String: String]), returned: String?,
                 fetched: () -> [String: String]) -> [String: String] {
        guard returned != sent.version else { return sent.values }
        let values = fetched()
        monitor.locked { copies[node ?? ""] = (returned, values) }
        return values
    }
}
