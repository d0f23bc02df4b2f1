// The thin Compose shell: screens, the Android Keystore, notifications,
// UnifiedPush (with FCM as an embedded distributor in the `fcm` flavour),
// WorkManager and BiometricPrompt. Every decision is in :logic.
plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
    alias(libs.plugins.kotlin.compose)
}

android {
    namespace = "org.occ.android"
    compileSdk = 35
    defaultConfig {
        applicationId = "org.occ.android"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }
    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"))
        }
    }
    buildFeatures { compose = true }
    // `foss`: push through whichever UnifiedPush distributor the user has
    // (ntfy, NextPush, …). `fcm`: Google's FCM as an embedded distributor
    // (needs the app's google-services.json).
    flavorDimensions += "push"
    productFlavors {
        create("foss") { dimension = "push" }
        create("fcm") { dimension = "push" }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    implementation(project(":logic"))
    implementation(platform(libs.compose.bom))
    implementation(libs.compose.material3)
    implementation(libs.compose.ui)
    implementation(libs.compose.ui.tooling.preview)
    implementation(libs.activity.compose)
    implementation(libs.lifecycle.runtime.compose)
    implementation(libs.lifecycle.viewmodel.compose)
    implementation(libs.core.ktx)
    implementation(libs.unifiedpush.connector)
    "fcmImplementation"(libs.unifiedpush.embedded.fcm)
    implementation(libs.work.runtime)
    implementation(libs.biometric)
    implementation(libs.fragment)
}
