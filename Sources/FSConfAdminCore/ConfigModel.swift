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
        return "\(globals.count) globals, \(domains.count) domain(s) (\(users) users), \(contexts.count) dialplan context(s), "
            + "\(configurations.count) configuration file(s), \(languages.count) language(s)"
    }
}

public struct GlobalVariable: Equatable, Sendable {
    public var name: String
    public var value: String
    public init(name: String, value: String) { self.name = name; self.value = value }
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
    public var name: String
    public var extensions: [ExtensionEntity] = []
    public init(name: String) { self.name = name }
}

public struct ExtensionEntity: Equatable, Sendable {
    public var name: String
    public var `continue`: String?
    public var enabled = true
    public var conditions: [ConditionEntity] = []
    public init(name: String) { self.name = name }
}

public struct ConditionEntity: Equatable, Sendable {
    /// XML attribute names in the order of `ConditionEntity.attributeNames`.
    public var attributes: [String: String] = [:]
    public var regexes: [RegexEntity] = []
    public var actions: [ActionEntity] = []
    public var antiActions: [ActionEntity] = []
    public var children: [ConditionEntity] = []
    public init() {}

    /// XML attribute → column, in rendering order (the node's table, FSConfCore).
    public static var columns: [(xml: String, column: String)] { DialplanCondition.columns }
    public static let attributeNames: Set<String> = Set(columns.map(\.xml))
}

public struct RegexEntity: Equatable, Sendable {
    public var field: String
    public var expression: String
    public init(field: String, expression: String) { self.field = field; self.expression = expression }
}

public struct ActionEntity: Equatable, Sendable {
    public var application: String
    public var data: String?
    public var inline: String?
    public init(application: String, data: String? = nil, inline: String? = nil) {
        self.application = application; self.data = data; self.inline = inline
    }
}

public struct DocumentEntity: Equatable, Sendable {
    public enum Section: String, Sendable { case configuration, languages }
    public var section: Section
    public var name: String
    /// `<configuration name="…">` or `<language name="…">` with everything inside.
    public var root: ParsedElement
    public init(section: Section, name: String, root: ParsedElement) { self.section = section; self.name = name; self.root = root }
}
