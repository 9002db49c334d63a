/// A whole configuration as fsconf stores it: the shape of the tables in
/// docs/schema.md, without database ids. Import builds it from XML, the store loads
/// it from PostgreSQL, export writes it back as XML; two of them compare entity by
/// entity (`ConfigDiff`). Lists are in document order; positions are their indexes.

import FSConfCore

public struct ConfigTree: Equatable, Sendable {
    public var globals: [GlobalVariable] = []
    public var domains: [DomainEntity] = []
    public var contexts: [ContextEntity] = []
    /// Configuration documents (`sofia.conf`...) and languages (`en`...).
    public var documents: [DocumentEntity] = []

    public init() {}

    public var configurations: [DocumentEntity] { documents.filter { $0.section == .configuration } }
    public var languages: [DocumentEntity] { documents.filter { $0.section == .languages } }

    /// "12 globals, 1 domain (21 users), 4 contexts, 77 configuration files, 7 languages"
    public var countsSummary: String {
        let users = domains.reduce(0) { $0 + $1.users.count }
        let chat = contexts.filter { $0.section == .chatplan }.count
        return "\(globals.count) globals, \(domains.count) domain(s) (\(users) users), \(contexts.count - chat) dialplan context(s), "
            + (chat > 0 ? "\(chat) chatplan context(s), " : "")
            + "\(configurations.count) configuration file(s), \(languages.count) language(s)"
    }
}

/// The id of the stored row an entity was loaded from: the tie-break among
/// variants of one identity (`Precedence`). Never compared: entities are equal
/// whatever rows they came from.
public struct RowID: Equatable, Sendable {
    public var value: Int64?
    public init(_ value: Int64? = nil) { self.value = value }
    public static func == (_: RowID, _: RowID) -> Bool { true }
}

public struct GlobalVariable: Equatable, Sendable {
    public var name: String
    /// The nodes this variant is for (docs/cluster.md); nil: every node.
    public var scope: Scope?
    public var row = RowID()
    /// For `exec-set` the command and for `env-set` the `$NAME` of the environment
    /// variable, as written: those are evaluated by each node at its start.
    public var value: String
    /// The pre-processor directive that sets it: `set`, `stun-set`, `exec-set`, `env-set`.
    public var command: String
    public init(name: String, value: String, command: String = "set") { self.name = name; self.value = value; self.command = command }

    /// Directives each node evaluates at its own start (switch_xml.c preprocess):
    /// fsconf never evaluates them, and lookups leave `$${name}` to the node's global.
    public static let nodeEvaluated: Set<String> = ["exec-set", "env-set"]
    public var isNodeEvaluated: Bool { GlobalVariable.nodeEvaluated.contains(command) }
}

public struct SettingEntity: Equatable, Sendable {
    public var kind: Setting.Kind
    public var name: String
    public var value: String
    public init(kind: Setting.Kind, name: String, value: String) { self.kind = kind; self.name = name; self.value = value }
}

public struct GatewaySettingEntity: Equatable, Sendable {
    public var kind: Setting.Kind   // .param or .variable
    public var name: String
    public var value: String
    public var direction: String?
    public init(kind: Setting.Kind, name: String, value: String, direction: String? = nil) {
        self.kind = kind; self.name = name; self.value = value; self.direction = direction
    }
}

public struct GatewayEntity: Equatable, Sendable {
    public var name: String
    public var scope: Scope?
    public var row = RowID()
    public var settings: [GatewaySettingEntity] = []
    public init(name: String, settings: [GatewaySettingEntity] = []) { self.name = name; self.settings = settings }
}

public struct GroupEntity: Equatable, Sendable {
    public var name: String
    public var settings: [SettingEntity] = []
    /// `<user id="…" type="pointer"/>` members, by user id.
    public var members: [String] = []
    public init(name: String) { self.name = name }
    public var key: String { name.asciiLowercased }
}

public struct UserEntity: Equatable, Sendable {
    public var userID: String
    public var scope: Scope?
    public var row = RowID()
    public var numberAlias: String?
    public var cacheable: String?
    /// Name of the group whose `<users>` defines the user; nil: the domain's own.
    public var homeGroup: String?
    public var settings: [SettingEntity] = []
    public var gateways: [GatewayEntity] = []
    public var extraXML: String?
    public var enabled = true
    public init(userID: String) { self.userID = userID }
    public var key: String { userID.asciiLowercased }
}

public struct DomainEntity: Equatable, Sendable {
    public var name: String
    public var scope: Scope?
    public var row = RowID()
    public var cacheable: String?
    public var settings: [SettingEntity] = []
    /// Domain-level `<gateways>`.
    public var gateways: [GatewayEntity] = []
    public var groups: [GroupEntity] = []
    public var users: [UserEntity] = []
    public init(name: String) { self.name = name }
    public var key: String { name.asciiLowercased }

    /// The domain's own fields, without groups and users.
    public var own: DomainEntity {
        var d = self
        d.groups = []; d.users = []
        return d
    }
}

public struct ContextEntity: Equatable, Sendable {
    public var section: PlanSection
    public var name: String
    public var scope: Scope?
    public var row = RowID()
    public var extensions: [ExtensionEntity] = []
    public init(name: String, section: PlanSection = .dialplan) { self.name = name; self.section = section }
    /// "dialplan/default", "chatplan/default": names are unique per section.
    public var key: String { "\(section.rawValue)/\(name)" }
}

public struct ExtensionEntity: Equatable, Sendable {
    public var name: String
    public var scope: Scope?
    public var `continue`: String?
    public var enabled = true
    public var conditions: [ConditionEntity] = []
    public init(name: String) { self.name = name }
}

public struct ConditionEntity: Equatable, Sendable {
    /// XML attribute names in the order of `ConditionEntity.attributeNames`.
    public var attributes: [String: String] = [:]
    /// The expression was written as an `<expression>` child (mod_dialplan_xml reads
    /// it before the attribute), and is rendered so.
    public var expressionElement = false
    public var regexes: [RegexEntity] = []
    public var actions: [ActionEntity] = []
    public var antiActions: [ActionEntity] = []
    public var children: [ConditionEntity] = []
    public init() {}

    /// XML attribute → column, in rendering order (the node's table, FSConfCore).
    public static var columns: [(xml: String, column: String)] { DialplanCondition.columns }
    public static let attributeNames: Set<String> = Set(columns.map(\.xml))
    /// The time attributes (switch_xml_std_datetime_check), XML name → column.
    public static let timeColumns = Array(columns.dropFirst(5))
}

/// A `<regex>` child of a `regex="all|any|xor"` condition: a field and expression,
/// or time attributes only, or both (mod_dialplan_xml checks each one's time first).
public struct RegexEntity: Equatable, Sendable {
    public var field: String?
    public var expression: String?
    /// Time attributes by XML name (`wday`…), from `ConditionEntity.timeColumns`.
    public var time: [String: String] = [:]
    public var expressionElement = false
    public init(field: String?, expression: String?, time: [String: String] = [:], expressionElement: Bool = false) {
        self.field = field; self.expression = expression; self.time = time; self.expressionElement = expressionElement
    }
}

public struct ActionEntity: Equatable, Sendable {
    public var application: String
    public var data: String?
    public var inline: String?
    /// `loop="N"`: mod_dialplan_xml adds the application N times.
    public var loop: String?
    /// The data was the element's text (`<action application="x">data</action>`).
    public var dataElement = false
    public init(application: String, data: String? = nil, inline: String? = nil, loop: String? = nil, dataElement: Bool = false) {
        self.application = application; self.data = data; self.inline = inline; self.loop = loop; self.dataElement = dataElement
    }
}

public struct DocumentEntity: Equatable, Sendable {
    public enum Section: String, Sendable { case configuration, languages }
    public var section: Section
    public var name: String
    public var scope: Scope?
    public var row = RowID()
    /// `<configuration name="…">` or `<language name="…">` with everything inside.
    public var root: ParsedElement
    public init(section: Section, name: String, root: ParsedElement) { self.section = section; self.name = name; self.root = root }
}
