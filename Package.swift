// swift-tools-version:6.0
import PackageDescription

// Layout (see README "Code map"):
//   CCurl, CSystemd      system libraries (pkg-config)
//   CCurlShim            typed C wrappers for libcurl's variadic calls
//   CarteiroConfig       the configuration language, schema, model, validation, plain-file reads: no network
//   CFileSync            syncfs(2) and openat2(2), which Swift's Glibc module does not export
//   CarteiroMail         protocol and message formats (IMAP syntax, MIME, RFC 2047 …): pure, no I/O
//   CarteiroEvents       messages become request events: classification, routing rules, threading, JSON
//   CarteiroOutbound     submissions become messages: resolution, templates (Mustache), building
//   CarteiroStore        the state directory: durable files, per-mailbox state, batch commits
//   CarteiroSystemd      the libsystemd adapter: sd_notify, the native journal (a swift-log handler)
//   CarteiroCurl         the libcurl adapter: connections, TLS, protocol sessions (IMAP, POP3, SMTP, Graph), mailbox probes
//   CarteiroDaemon       what the executable runs: logging, paths, test-mailbox, summaries
//   carteiro             argument parsing only
//   CarteiroTesting      test support: the mail lab's coordinates, scripted fake servers
let package = Package(
    name: "Carteiro",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "carteiro", targets: ["carteiro"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // libssl: idle connections' TLS buffers are released through OpenSSL (SSL_MODE_RELEASE_BUFFERS).
        .target(name: "CCurlShim", dependencies: ["CCurl"], linkerSettings: [.linkedLibrary("ssl")]),
        .target(name: "CarteiroConfig", dependencies: ["CFileSync"]),
        .target(name: "CByteSearch"),
        .target(name: "CarteiroMail", dependencies: ["CByteSearch"]),
        // JSON: the writer of events and state files, escaping, and the reader of Carteiro's own files.
        .target(name: "CarteiroJSON", dependencies: ["CByteSearch"]),
        .target(name: "CarteiroEvents", dependencies: ["CarteiroConfig", "CarteiroMail", "CarteiroJSON", "CCrypto", "CByteSearch"]),
        .target(name: "CFileSync"),
        .target(name: "CarteiroStore", dependencies: ["CFileSync", "CarteiroConfig", "CarteiroJSON"]),
        .target(
            name: "CarteiroOutbound",
            dependencies: ["CarteiroConfig", "CarteiroMail", "CarteiroEvents", .product(name: "Mustache", package: "swift-mustache")]
        ),
        .target(name: "CarteiroSystemd", dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "CarteiroCurl",
            dependencies: ["CCurl", "CCurlShim", "CarteiroConfig", "CarteiroJSON", "CarteiroMail"]
        ),
        // OAuth 2.0: token records and their durable store, the token endpoint, service-account
        // assertions (libcrypto), the broker that refreshes each account once at a time, authorization.
        .target(name: "CarteiroOAuth", dependencies: ["CarteiroConfig", "CarteiroCurl", "CarteiroJSON", "CarteiroStore", "CCrypto"]),
        .target(
            name: "CarteiroDaemon",
            dependencies: [
                "CarteiroConfig", "CarteiroCurl", "CarteiroMail", "CarteiroEvents", "CarteiroJSON", "CarteiroStore", "CarteiroSystemd", "CarteiroOutbound", "CarteiroOAuth",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "carteiro",
            dependencies: [
                "CarteiroDaemon", "CarteiroConfig", "CarteiroEvents", "CarteiroJSON", "CarteiroOutbound", "CarteiroStore", "CarteiroSystemd", "CarteiroOAuth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "CarteiroTesting"),
        // What each fuzz target does with an input; the libFuzzer entry points are in Fuzz/
        // (built by scripts/fuzz), the findings replayed by CarteiroFuzzingTests.
        .target(
            name: "CarteiroFuzzing",
            dependencies: ["CarteiroConfig", "CarteiroCurl", "CarteiroEvents", "CarteiroJSON", "CarteiroMail", "CarteiroOutbound"]
        ),
        .testTarget(
            name: "CarteiroConfigTests",
            dependencies: ["CarteiroConfig", "CarteiroMail", "CarteiroTesting"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "CarteiroEventsTests",
            dependencies: ["CarteiroConfig", "CarteiroEvents", "CarteiroJSON", "CarteiroMail", "CarteiroTesting"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "CarteiroFuzzingTests",
            dependencies: ["CarteiroFuzzing"],
            exclude: ["Findings"]
        ),
        .testTarget(
            name: "CarteiroStoreTests",
            dependencies: ["CarteiroStore", "CarteiroJSON", "CarteiroTesting"]
        ),
        .testTarget(
            name: "CarteiroOutboundTests",
            dependencies: ["CarteiroOutbound", "CarteiroConfig", "CarteiroMail", "CarteiroEvents", "CarteiroTesting"]
        ),
        .testTarget(
            name: "CarteiroIntegrationTests",
            dependencies: ["CarteiroDaemon", "CarteiroCurl", "CarteiroConfig", "CarteiroEvents", "CarteiroJSON", "CarteiroOAuth", "CarteiroTesting", "carteiro"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
