// The UniFFI bindings as an Android library: the generated Kotlin (org.occ),
// the idiomatic layer, and libocc_ffi.so for each ABI. scripts/build-android.sh
// generates the first and builds the last into build/generated/occ/.
plugins {
    alias(libs.plugins.android.library)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "org.occ.ffi"
    compileSdk = 35
    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets["main"].apply {
        kotlin.srcDirs(
            layout.buildDirectory.dir("generated/occ/kotlin"),
            "../../bindings/kotlin",
        )
        jniLibs.srcDir(layout.buildDirectory.dir("generated/occ/jniLibs"))
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    // JNA as an AAR: it carries libjnidispatch.so for every ABI.
    api("${libs.jna.get()}@aar")
    api(libs.kotlinx.coroutines.android)
}
