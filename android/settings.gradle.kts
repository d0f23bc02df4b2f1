// The occ Android app: a thin Compose shell (:app) over plain-Kotlin app logic
// (:logic, also compiled and tested on the JVM by scripts/test-kotlin.sh) over
// the UniFFI bindings of the Rust core (:ffi, filled by scripts/build-android.sh).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
        // The UnifiedPush connector and its embedded FCM distributor.
        maven("https://jitpack.io")
    }
}

rootProject.name = "occ-android"
include(":ffi", ":logic", ":app")
