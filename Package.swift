// swift-tools-version:6.0
// fsconf — FreeSWITCH run-time configuration served from PostgreSQL.
//
// Data flow, as the targets read:
//   FreeSWITCH → lua shim → FSConfLua (the .so) → FSConfNode (pool, lookup) →
//   FSConfStore (libpq, one query) → FSConfCore (request model, renderers) → XML
import PackageDescription

let package = Package(
    name: "fsconf",
    products: [
        .executable(name: "fsconf", targets: ["fsconf"]),
        // The node library that mod_lua loads: `libfsconf.so`, installed as `fsconf.so`.
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
        // The few Lua calls that may raise a Lua error run in C, under lua_pcall,
        // so no longjmp ever crosses a Swift frame.
        .target(name: "FSConfLuaGlue"),

        // Pure logic: no I/O, no Foundation.
        .target(name: "FSConfCore"),
        // The node agent's planning: change rows → FreeSWITCH commands (pure).
        .target(name: "FSConfAgentCore", dependencies: ["FSConfCore"]),
        // PostgreSQL over libpq. No Foundation: it is linked into the node library.
        .target(name: "FSConfStore", dependencies: ["FSConfCore", "CLibPQ"]),
        // Regex checks with PCRE2 behind FSConfCore's RegexCompiler (no Foundation).
        .target(name: "FSConfRegex", dependencies: ["FSConfCore", "CPCRE2"]),
        // The node's lookup engine: pool, one query per lookup, rendering.
        .target(name: "FSConfNode", dependencies: ["FSConfCore", "FSConfStore", "FSConfRegex"]),
        // The thin Lua C module. Its linker flags must stay on this target only.
        .target(
            name: "FSConfLua",
            dependencies: ["FSConfNode", "CLua", "FSConfLuaGlue"],
            linkerSettings: [
                .unsafeFlags(["-static-stdlib", "-Xlinker", "-z", "-Xlinker", "nodelete"]),
            ]),

        // Migration files from migrations/, embedded into the CLI at build time.
        .executableTarget(name: "EmbedMigrationsTool"),
        .plugin(name: "EmbedMigrations", capability: .buildTool(),
                dependencies: ["EmbedMigrationsTool"]),
        .target(name: "FSConfEmbedded", plugins: ["EmbedMigrations"]),

        // The CLI.
        .executableTarget(
            name: "fsconf",
            dependencies: [
                "FSConfCore", "FSConfStore", "FSConfNode", "FSConfRegex", "FSConfEmbedded", "FSConfAgentCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Tests.
        .target(name: "FSConfTestSupport", dependencies: ["FSConfStore"], path: "Tests/Support"),
        .testTarget(name: "FSConfCoreTests", dependencies: ["FSConfCore", "FSConfRegex"]),
        .testTarget(name: "FSConfStoreTests",
                    dependencies: ["FSConfStore", "FSConfNode", "FSConfCore", "FSConfRegex", "FSConfEmbedded", "FSConfTestSupport"]),
        .testTarget(name: "NodeTests", dependencies: ["FSConfTestSupport", "FSConfCore"]),
        .testTarget(name: "CLITests", dependencies: ["FSConfTestSupport", "FSConfStore", "FSConfCore"]),
        .testTarget(name: "AgentCoreTests", dependencies: ["FSConfAgentCore", "FSConfCore"]),
        .testTarget(name: "AgentTests", dependencies: ["FSConfTestSupport", "FSConfStore"]),
        // Node install, doctor, packages, the operations docs: the CLI's own functions
        // (@testable import fsconf) against real files, databases and sockets.
        .testTarget(name: "OpsTests", dependencies: ["fsconf", "FSConfTestSupport", "FSConfStore", "FSConfCore"]),
    ]
)
