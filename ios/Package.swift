// swift-tools-version:5.9
// OccKit: the occ core for Swift.
//
// - `Occ`: the UniFFI bindings (Sources/Occ/Generated/Occ.swift, written by
//   scripts/build-ios.sh or scripts/gen-bindings.sh) plus a thin Swift layer.
// - `OccAppLogic`: the app logic that is not UI (profiles, key wrapping
//   behind a protocol, screen models) — the same design as the Android
//   logic module, testable with `swift test`.
//
// On Apple platforms the native library comes as an XCFramework
// (Frameworks/OccFFI.xcframework, from scripts/build-ios.sh). On Linux, set
// OCC_FFI_LINUX=1 to use the system-library target (the header and module map
// from scripts/gen-bindings.sh, linking target/debug/libocc_ffi.so):
//   scripts/gen-bindings.sh && cp build/bindings/Occ.swift ios/Sources/Occ/Generated/
//   cp build/bindings/OccFFI.h ios/Sources/OccFFI/ && cd ios
//   OCC_FFI_LINUX=1 swift test -Xlinker -L../target/debug
import PackageDescription
import Foundation

let linux = ProcessInfo.processInfo.environment["OCC_FFI_LINUX"] == "1"

let ffi: Target = linux
    ? .systemLibrary(name: "OccFFI", path: "Sources/OccFFI")
    : .binaryTarget(name: "OccFFI", path: "Frameworks/OccFFI.xcframework")

let package = Package(
    name: "OccKit",
    platforms: [.iOS(.v16), .macOS(.v13)],
    dependencies: [
        // AES-GCM for the software key wrapper where CryptoKit is missing (Linux).
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0" ..< "4.0.0"),
    ],
    products: [
        .library(name: "Occ", targets: ["Occ"]),
        .library(name: "OccAppLogic", targets: ["OccAppLogic"]),
    ],
    targets: [
        ffi,
        .target(name: "Occ", dependencies: ["OccFFI"], path: "Sources/Occ"),
        .target(
            name: "OccAppLogic",
            dependencies: [
                "Occ",
                .product(name: "Crypto", package: "swift-crypto", condition: .when(platforms: [.linux])),
            ],
            path: "Sources/OccAppLogic"
        ),
        .testTarget(name: "OccAppLogicTests", dependencies: ["OccAppLogic"], path: "Tests/OccAppLogicTests"),
    ]
)
