// swift-tools-version:5.9
// OccKit: the occ core for Swift. No package dependencies: nothing to fetch.
//
// - `OccFFI`: the C side of the bindings. On Apple platforms the
//   XCFramework Frameworks/OccFFI.xcframework (static libocc_ffi for device
//   and simulator, from scripts/build-ios.sh). On Linux — or on a Mac with
//   OCC_FFI_SYSTEM=1 (OCC_FFI_LINUX=1, its former name, works too), for
//   `swift test` against a host build — a system
//   library: Sources/OccFFI/module.modulemap (committed) with OccFFI.h
//   (generated), linking libocc_ffi from target/debug (or target/release).
// - `Occ`: the generated bindings (Sources/Occ/Generated/Occ.swift, not
//   committed) and the thin Swift layer (Sources/Occ/OccSwift.swift).
// - `OccAppLogic`: the app logic that is not UI — notifications, the push
//   path, shared-device profiles, key wrapping behind a protocol, background
//   work, screen models — the same design as the Android logic module.
// - `OccTests`: the bindings against a real relay (skipped unless
//   OCC_RELAY_URL, OCC_RELAY_PIN and OCC_RELAY_CA are set) and the parts that
//   need only the native library. `OccAppLogicTests`: the logic, with a
//   recording notification poster and fake platform keys.
//
// The generated files come from one script, run from the repository root:
//   scripts/gen-swift.sh            # builds libocc_ffi, generates, copies
// then, on Linux (or a Mac with OCC_FFI_SYSTEM=1):
//   cd ios && swift test -Xlinker -L../target/debug -Xlinker -rpath -Xlinker "$PWD/../target/debug"
// The -L tells the linker where libocc_ffi is; the rpath (or
// LD_LIBRARY_PATH=../target/debug on Linux, DYLD_LIBRARY_PATH on macOS) lets
// the test binary find it at run time.
import Foundation
import PackageDescription

#if os(Linux)
let systemFFI = true
#else
let systemFFI = ProcessInfo.processInfo.environment["OCC_FFI_SYSTEM"] == "1"
    || ProcessInfo.processInfo.environment["OCC_FFI_LINUX"] == "1"
#endif

let ffi: Target = systemFFI
    ? .systemLibrary(name: "OccFFI", path: "Sources/OccFFI")
    : .binaryTarget(name: "OccFFI", path: "Frameworks/OccFFI.xcframework")

let package = Package(
    name: "OccKit",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "Occ", targets: ["Occ"]),
        .library(name: "OccAppLogic", targets: ["OccAppLogic"]),
    ],
    targets: [
        ffi,
        .target(
            name: "Occ",
            dependencies: ["OccFFI"],
            path: "Sources/Occ",
            exclude: ["Generated/README.md"]
        ),
        .target(name: "OccAppLogic", dependencies: ["Occ"], path: "Sources/OccAppLogic"),
        .testTarget(name: "OccTests", dependencies: ["Occ"], path: "Tests/OccTests"),
        .testTarget(name: "OccAppLogicTests", dependencies: ["OccAppLogic", "Occ"], path: "Tests/OccAppLogicTests"),
    ]
)
