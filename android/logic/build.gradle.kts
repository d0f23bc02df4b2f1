// App logic with no UI and no Android API: profiles, key wrapping behind an
// interface, the screens' models, event routing. The same sources are
// compiled and tested on the JVM by scripts/test-kotlin.sh (its tests in
// src/test/kotlin need a live relay, so Gradle does not run them).
plugins {
    alias(libs.plugins.android.library)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "org.occ.app"
    compileSdk = 35
    defaultConfig { minSdk = 26 }
    sourceSets["test"].kotlin.setSrcDirs(emptyList<String>())
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    api(project(":ffi"))
}
