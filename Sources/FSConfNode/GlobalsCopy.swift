/// The node's copy of the global variables (the `$${name}` values stored in
/// fsconf.global_variables) and the version the database gave it
/// (fsconf.globals_version, migration 0006).
///
/// Each lookup statement takes the version the node holds and returns every
/// global only when it is not the current one, with the current version in its
/// `Q` row. So a lookup renders with globals read in the same snapshot as its
/// rows, and the statement does not scan its rows for references. Replacing the
/// copy is whole (name → value map and version together), under a lock.
final class GlobalsCopy: @unchecked Sendable {
    private let monitor = Monitor()
    private var version: String?
    private var values: [String: String] = [:]

    /// What a lookup sends, and the values that go with it.
    func current() -> (version: String?, values: [String: String]) {
        monitor.locked { (version, values) }
    }

    /// The globals a lookup renders with: those it held when it sent `sent`, unless
    /// the statement returned others (`returned` is not `sent`): those, kept for
    /// the next lookups.
    func resolve(sent: (version: String?, values: [String: String]), returned: String?,
                 fetched: () -> [String: String]) -> [String: String] {
        guard returned != sent.version else { return sent.values }
        let values = fetched()
        monitor.locked {
            self.version = returned
            self.values = values
        }
        return values
    }
}
