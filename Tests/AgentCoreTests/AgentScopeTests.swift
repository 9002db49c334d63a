import FSConfAgentCore
import FSConfCore
import XCTest

/// The agent plans only what concerns its own node (docs/cluster.md).
final class AgentScopeTests: XCTestCase {
    func row(_ table: String, _ op: ChangeRow.Operation, old: String?, new: String?) throws -> ChangeRow {
        try XCTUnwrap(ChangeRow(table: table, operation: op.rawValue, oldRow: old, newRow: new, keys: "[]"))
    }

    func testRowsScopedAwayFromTheNodeAreLeftOut() throws {
        let set = ChangeSet(seq: 1, id: 1, rows: [
            try row("gateways", .insert, old: nil, new: #"{"id": 1, "name": "gw-a", "nodes": ["sitea"]}"#),
            try row("gateways", .insert, old: nil, new: #"{"id": 2, "name": "gw-eu", "nodes": ["@eu"]}"#),
            try row("gateways", .insert, old: nil, new: #"{"id": 3, "name": "gw-all", "nodes": null}"#),
            try row("gateway_settings", .insert, old: nil, new: #"{"id": 4, "gateway_id": 1, "name": "proxy"}"#),
            // Limited to sitea from every node: siteb must drop what it had.
            try row("elements", .update, old: #"{"id": 5, "nodes": null}"#, new: #"{"id": 5, "nodes": ["sitea"]}"#),
            try row("elements", .delete, old: #"{"id": 6, "nodes": ["sitec"]}"#, new: nil),
            try row("node_groups", .insert, old: nil, new: #"{"node_group": "eu", "node": "siteb"}"#),
            try row("node_groups", .delete, old: #"{"node_group": "eu", "node": "sitec"}"#, new: nil),
        ])
        func ids(_ node: NodeIdentity) -> [String] {
            set.concerning(node).rows.map { "\($0.table):\($0.value("id") ?? $0.value("node") ?? "")" }
        }
        XCTAssertEqual(ids(NodeIdentity(name: "sitea", groups: ["eu"])),
                       ["gateways:1", "gateways:2", "gateways:3", "gateway_settings:4", "elements:5"])
        XCTAssertEqual(ids(NodeIdentity(name: "siteb", groups: ["eu"])),
                       ["gateways:2", "gateways:3", "gateway_settings:4", "elements:5", "node_groups:siteb"])
        XCTAssertEqual(ids(NodeIdentity(name: "sitec")), ["gateways:3", "gateway_settings:4", "elements:5", "elements:6", "node_groups:sitec"])
        XCTAssertEqual(ids(NodeIdentity(name: nil)), ["gateways:3", "gateway_settings:4", "elements:5"])
    }
}
