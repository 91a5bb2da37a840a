// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "HourLedger",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "hourledger", targets: ["hourledger"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Domain core: contracts, matching rules, periods, rounding. No I/O.
        .target(name: "HourLedgerCore", swiftSettings: strict),
        // The ledger repository in memory: the reference every store's contract tests compare with; API tests run on it.
        .target(name: "HourLedgerMemoryStore", dependencies: ["HourLedgerCore", "HourLedgerUseCases"], swiftSettings: strict),
        // The ledger repository on SQLite (GRDB): SQL only.
        .target(
            name: "HourLedgerStore",
            dependencies: [
                "HourLedgerCore", "HourLedgerUseCases",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for binding the sync's bulk inserts without GRDB's boxing (RowBinding.swift).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        // The ledger repository on PostgreSQL (PostgresNIO): SQL only, for several daemons on one database.
        .target(
            name: "HourLedgerPostgres",
            dependencies: [
                "HourLedgerCore", "HourLedgerUseCases",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // libcurl, through typed inline wrappers.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(
            name: "HourLedgerHTTPClient",
            dependencies: ["CCurl", .product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: strict
        ),
        // Use cases: every workflow of the ledger, and the ports (interfaces) it needs from the outside.
        .target(
            name: "HourLedgerUseCases",
            dependencies: [
                "HourLedgerCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // What the helpdesk adapters share: JSON, form encoding, wall-clock stamps, transport errors.
        .target(
            name: "HourLedgerHelpdeskKit",
            dependencies: ["HourLedgerCore", "HourLedgerUseCases", "HourLedgerHTTPClient"],
            swiftSettings: strict
        ),
        // GLPI 10/11: the apirest.php connector, its dates, its webhook signature.
        .target(
            name: "HourLedgerGLPI",
            dependencies: [
                "HourLedgerCore", "HourLedgerUseCases", "HourLedgerHelpdeskKit", "HourLedgerHTTPClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // iTop 3: the rest.php connector, OQL, its webhook payload.
        .target(
            name: "HourLedgerITop",
            dependencies: [
                "HourLedgerCore", "HourLedgerUseCases", "HourLedgerHelpdeskKit", "HourLedgerHTTPClient",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // HTTP API and ops endpoints.
        .target(
            name: "HourLedgerServer",
            dependencies: [
                "HourLedgerCore", "HourLedgerUseCases",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: strict
        ),
        // Configuration and wiring of the daemon.
        .target(
            name: "HourLedgerApp",
            dependencies: [
                "HourLedgerCore", "HourLedgerStore", "HourLedgerPostgres", "HourLedgerUseCases", "HourLedgerGLPI", "HourLedgerITop", "HourLedgerHTTPClient",
                "HourLedgerServer",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "hourledger",
            dependencies: [
                "HourLedgerApp",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // Test support, under Tests/: none of it ships in the product.
        // Serves a fake helpdesk's router on 127.0.0.1.
        .target(
            name: "LoopbackServer",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            path: "Tests/Support/LoopbackServer",
            swiftSettings: strict
        ),
        // A GLPI 10 REST server on loopback that answers as the recordings in ../shared/fixtures/glpi do.
        .target(
            name: "FakeGLPI",
            dependencies: [
                "LoopbackServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Support/FakeGLPI",
            swiftSettings: strict
        ),
        // An iTop 3.2.0 REST server on loopback that answers as the recordings in ../shared/fixtures/itop do.
        .target(
            name: "FakeITop",
            dependencies: [
                "LoopbackServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Support/FakeITop",
            swiftSettings: strict
        ),
        // A TCP proxy that holds, drops and cuts HTTP traffic, for fault tests against the fakes.
        .target(name: "FaultProxy", path: "Tests/Support/FaultProxy", swiftSettings: strict),
        // The benchmarks (`swift run -c release hourledger-bench`): a tool for developers, not a product.
        .executableTarget(
            name: "hourledger-bench",
            dependencies: ["HourLedgerApp", "HourLedgerServer", "HourLedgerStore", "HourLedgerUseCases", "HourLedgerGLPI", "HourLedgerHelpdeskKit", "FakeGLPI", "FakeITop",
                           "HourLedgerHTTPClient", "HourLedgerPostgres",
                           .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            path: "Tests/Benchmarks/hourledger-bench",
            swiftSettings: strict
        ),
        // A demo helpdesk (the fake GLPI or iTop, seeded) for trying the dashboard and for the browser tests.
        .executableTarget(
            name: "hourledger-demo-helpdesk",
            dependencies: ["FakeGLPI", "FakeITop"],
            path: "Tests/Demo/hourledger-demo-helpdesk",
            swiftSettings: strict
        ),
        // Helpers every test target shares: scratch directories, UTC instants.
        .target(name: "TestKit", path: "Tests/Support/TestKit", swiftSettings: strict),
        // A PostgreSQL 15 server of the tests' own, started once per test process in a temporary directory.
        .target(name: "PostgresTestServer", dependencies: ["HourLedgerPostgres"], path: "Tests/Support/PostgresTestServer", swiftSettings: strict),
        // The pure core: rounding, periods, matching, billing, timers. No I/O, runs in a second.
        .testTarget(
            name: "HourLedgerCoreTests",
            dependencies: ["HourLedgerCore", "TestKit"],
            swiftSettings: strict
        ),
        // The ledger repositories: one contract-test suite every store passes, migrations, the carry-over property.
        .testTarget(
            name: "HourLedgerStoreTests",
            dependencies: [
                "HourLedgerCore", "HourLedgerUseCases", "HourLedgerStore", "HourLedgerMemoryStore", "HourLedgerPostgres", "PostgresTestServer", "TestKit",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        // What the API tests and the adapter tests share: configs, the in-memory API harness, API answers.
        .target(
            name: "AppTestKit",
            dependencies: [
                "HourLedgerApp", "HourLedgerCore", "HourLedgerUseCases", "HourLedgerMemoryStore", "HourLedgerHelpdeskKit", "HourLedgerHTTPClient",
                "TestKit", .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/Support/AppTestKit",
            swiftSettings: strict
        ),
        // The HTTP API on the in-memory ledger with `app.test(.router)`: no socket, no helpdesk, no file.
        .testTarget(
            name: "HourLedgerAPITests",
            dependencies: [
                "AppTestKit", "HourLedgerApp", "HourLedgerServer", "HourLedgerCore", "HourLedgerUseCases", "HourLedgerMemoryStore",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        // Adapters against the fakes over real libcurl, and daemons as real processes.
        .testTarget(
            name: "HourLedgerTests",
            dependencies: [
                "HourLedgerApp", "HourLedgerUseCases", "HourLedgerMemoryStore", "HourLedgerHelpdeskKit", "TestKit", "AppTestKit", "HourLedgerGLPI", "HourLedgerITop", "FakeGLPI", "FakeITop", "FaultProxy",
                "HourLedgerPostgres", "PostgresTestServer",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
    ]
)
