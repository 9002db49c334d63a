/// One row of fsconf.changes (docs/changes.md): what the agent plans from.
public struct ChangeRow: Equatable, Sendable {
    public enum Operation: String, Sendable { case insert, update, delete, truncate }
    public var table: String
    public var operation: Operation
    public var old: [String: AgentJSON]?
    public var new: [String: AgentJSON]?
    public var keys: [AgentJSON]

    public init(table: String, operation: Operation, old: [String: AgentJSON]? = nil,
                new: [String: AgentJSON]? = nil, keys: [AgentJSON] = []) {
        self.table = table; self.operation = operation; self.old = old; self.new = new; self.keys = keys
    }

    /// Decodes the text columns as PostgreSQL returns them.
    public init?(table: String, operation: String, oldRow: String?, newRow: String?, keys: String?) {
        guard let op = Operation(rawValue: operation) else { return nil }
        self.table = table
        self.operation = op
        old = oldRow.flatMap { AgentJSON.parse($0)?.object }
        new = newRow.flatMap { AgentJSON.parse($0)?.object }
        self.keys = keys.flatMap { AgentJSON.parse($0)?.array } ?? []
    }

    /// The row after the change, else before it.
    public var row: [String: AgentJSON] { new ?? old ?? [:] }
    public var rows: [[String: AgentJSON]] { [old, new].compactMap { $0 } }

    public func value(_ column: String) -> String? { row[column]?.text }
    public func id(_ column: String = "id") -> Int64? { row[column]?.int }
}

/// A committed change set: its commit-ordered number and its row changes in order.
public struct ChangeSet: Equatable, Sendable {
    public var seq: Int64
    public var id: Int64
    public var rows: [ChangeRow]
    /// How long ago it was committed when it was read, in milliseconds (the
    /// database's clock on both ends), for the commit → applied time.
    public var ageMs: Int64?
    public init(seq: Int64, id: Int64, rows: [ChangeRow], ageMs: Int64? = nil) {
        self.seq = seq; self.id = id; self.rows = rows; self.ageMs = ageMs
    }
}

/// What the agent sends to FreeSWITCH, or asks an operator to do.
public enum AgentAction: Hashable, Sendable, CustomStringConvertible {
    /// An API command sent as is (`api <command>`).
    case api(String)
    /// A sofia profile needs a restart: only with --allow-restart, never with
    /// active calls unless forced (decided when it is carried out).
    case restartProfile(String)

    public var description: String {
        switch self {
        case .api(let command): return command
        case .restartProfile(let profile): return "sofia profile \(profile) restart"
        }
    }
}

/// The plan for one change set: ordered, de-duplicated actions and reports for
/// an operator.
public struct AgentPlan: Equatable, Sendable {
    public var actions: [AgentAction] = []
    public var reports: [String] = []
    public init(actions: [AgentAction] = [], reports: [String] = []) { self.actions = actions; self.reports = reports }

    public var commands: [String] { actions.map(\.description) }
}
