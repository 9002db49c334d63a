// swift-tools-version:6.0
// fsconf — FreeSWITCH run-time configuration served from PostgreSQL.
//
// The targets say where code runs (docs/architecture.md draws the graph):
//
//   Inside FreeSWITCH — linked into the node library that mod_lua loads:
//     FreeSWITCH → lua shim → FSConfLua (+ FSConfLuaGlue, C) → FSConfNode (pool,
//     cache, lookup) → FSConfStore (libpq, one statement per lookup) → FSConfCore
//     (request model, renderers, XML writer) → XML
//   On the admin host — the `fsconf` CLI and its agent, never linked into the node
//   library: FSConfAdminCore (paths, import/export, validation, migration planning),
//   FSConfAdminStore (writes, change log, migrations), FSConfAgentCore (agent planning).
import PackageDescription

let package = Package(
    name: "fsconf",
    products: [
        .executable(name: "fsconf", targets: ["fsconf"]),
        // The node library that mod_lua loads: SwiftPM builds `libfsconf-lua.so`;
        // it is installed as `fsconf.so` (scripts/install-node, docs/node.md).
        .library(name: "fsconf-lua", type: .dynamic, targets: ["FSConfLua"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq",
                       providers: [.apt(["libpq-dev"])]),
        // Lua headers only: the host process (mod_lua) provides the Lua symbols.
        .systemLibrary(name: "CLua", providers: [.apt(["liblua5.3-dev"])]),
        // PCRE2, the regex engine FreeSWITCH compiles dialplan expressions with
        // (src/switch_regex.c): fsconf checks expressions with the same library.
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8",
                       providers: [.apt(["libpcre2-dev"])]),
        // LZ4 (the block format): a stored document travels packed, ~1/27 of its size,
        // and a node unpacks it (docs/performance.md, "Big contexts").
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4",
                       providers: [.apt(["liblz4-dev"])]),
        // The few Lua calls that may raise a Lua error run in C, under lua_pcall,
        // so no longjmp ever crosses a Swift frame.
        .target(name: "FSConfLuaGlue"),

        // ── Node side: everything the node library links (no Foundation anywhere). ──
        // Pure logic: the lookup request, section models, renderers, the XML writer,
        // $${} expansion, the cache model. No I/O.
        .target(name: "FSConfCore"),
        // PostgreSQL over libpq: connections with deadlines, typed errors, and the
        // node's lookup statements (one round trip per lookup shape).
        .target(name: "FSConfStore", dependencies: ["FSConfCore", "CLibPQ", "CLZ4"]),
        // Regex checks with PCRE2 behind FSConfCore's RegexCompiler.
        .target(name: "FSConfRegex", dependencies: ["FSConfCore", "CPCRE2"]),
        // The node's lookup engine: pool, one query per lookup, cache, rendering.
        .target(name: "FSConfNode", dependencies: ["FSConfCore", "FSConfStore", "FSConfRegex"]),
        // The thin Lua C module. Its linker flags must stay on this target only.
        .target(
            name: "FSConfLua",
            dependencies: ["FSConfNode", "CLua", "FSConfLuaGlue"],
            linkerSettings: [
                .unsafeFlags(["-static-stdlib", "-Xlinker", "-z", "-Xlinker", "nodelete"]),
            ]),

        // ── Admin side: the CLI and the agent; never linked into the node library. ──
        // Pure logic: field paths and listing, validation, import (pre-processor, XML
        // parser, mapping), export and diff, migration planning, SQL splitting,
        // hashes, the shim template. No I/O.
        .target(name: "FSConfAdminCore", dependencies: ["FSConfCore"]),
        // PostgreSQL writes and reads only the admin does: field and config stores,
        // the change log (history, undo), the migrator.
        .target(name: "FSConfAdminStore", dependencies: ["FSConfCore", "FSConfAdminCore", "FSConfStore"]),
        // The node agent's planning: change rows → FreeSWITCH commands (pure).
        .target(name: "FSConfAgentCore", dependencies: ["FSConfCore", "FSConfAdminCore"]),

        // Migration files from migrations/, embedded into the CLI at build time.
        .executableTarget(name: "EmbedMigrationsTool"),
        .plugin(name: "EmbedMigrations", capability: .buildTool(),
                dependencies: ["EmbedMigrationsTool"]),
        .target(name: "FSConfEmbedded", dependencies: ["FSConfAdminCore"], plugins: ["EmbedMigrations"]),

        // The CLI.
        .executableTarget(
            name: "fsconf",
            dependencies: [
                "FSConfCore", "FSConfStore", "FSConfNode", "FSConfRegex", "FSConfEmbedded", "FSConfAgentCore",
                "FSConfAdminCore", "FSConfAdminStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Tests.
        // Tests. Test-only helpers (processes, the cluster, the event socket double,
        // StaticLookup) live in Tests/Support, never in a product target.
        .target(name: "FSConfTestSupport", dependencies: ["FSConfStore", "FSConfAdminCore"], path: "Tests/Support"),
        .testTarget(name: "FSConfCoreTests", dependencies: ["FSConfCore", "FSConfRegex"]),
        .testTarget(name: "FSConfAdminCoreTests", dependencies: ["FSConfAdminCore", "FSConfCore", "FSConfRegex", "FSConfTestSupport"]),
        .testTarget(name: "FSConfStoreTests",
                    dependencies: ["FSConfStore", "FSConfAdminStore", "FSConfAdminCore", "FSConfNode", "FSConfCore",
                                   "FSConfRegex", "FSConfEmbedded", "FSConfTestSupport"]),
        .testTarget(name: "NodeTests", dependencies: ["FSConfTestSupport", "FSConfCore", "FSConfAdminCore"]),
        .testTarget(name: "CLITests", dependencies: ["FSConfTestSupport", "FSConfStore", "FSConfAdminStore", "FSConfCore", "FSConfAdminCore"]),
        .testTarget(name: "AgentCoreTests", dependencies: ["FSConfAgentCore", "FSConfCore", "FSConfAdminCore"]),
        .testTarget(name: "AgentTests", dependencies: ["FSConfTestSupport", "FSConfStore"]),
        // Node install, doctor, packages, the operations docs: the CLI's own functions
        // (@testable import fsconf) against real files, databases and sockets.
        .testTarget(name: "OpsTests", dependencies: ["fsconf", "FSConfTestSupport", "FSConfStore", "FSConfCore", "FSConfAdminCore"]),
    ]
)
