import FSConfAdminCore
import FSConfCore

/// The agent reads jsonb rows and keys with the core's JSON reader.
public typealias AgentJSON = JSONValue
