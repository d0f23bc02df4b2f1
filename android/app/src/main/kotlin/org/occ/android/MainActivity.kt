// The screens, and nothing else: profiles (unlock with a PIN or the
// platform's user authentication, wipe), enrolment, threads, a conversation
// with a live TTL countdown, and the keep period. All state comes from the
// logic module's models; every core call is a suspend function whose work
// runs on the core's threads, so calling it from the main thread is safe.
package org.occ.android

import android.os.Bundle
import android.Manifest
import android.os.Build
import androidx.activity.result.contract.ActivityResultContracts
import androidx.biometric.BiometricManager
import androidx.biometric.BiometricPrompt
import androidx.core.content.ContextCompat
import androidx.fragment.app.FragmentActivity
import androidx.compose.ui.text.input.PasswordVisualTransformation
import org.occ.app.UnlockResult
import androidx.activity.compose.setContent
import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.DisposableEffect
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.collectAsState
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.rememberCoroutineScope
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import org.occ.OccException
import org.occ.app.ProfileSession
import org.occ.app.replyTo
import org.occ.directTo

class MainActivity : FragmentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val app = application as OccApp
        if (Build.VERSION.SDK_INT >= 33) {
            registerForActivityResult(ActivityResultContracts.RequestPermission()) {}
                .launch(Manifest.permission.POST_NOTIFICATIONS)
        }
        setContent {
            MaterialTheme {
                Surface(Modifier.fillMaxSize()) {
                    val session by app.session.collectAsState()
                    val current = session
                    if (current == null) ProfilesScreen(app, this) else ProfileScreen(app, current)
                }
            }
        }
    }

    /**
     * Shows the biometric prompt for profile [name] with the cipher its key
     * needs; on success the authorised cipher goes to the key wrapper (for
     * one unwrap) and [done] runs.
     */
    fun authenticate(app: OccApp, name: String, done: () -> Unit) {
        val (alias, wrapped) = app.device.userAuthChallenge(name) ?: return
        val cipher = app.userAuth.cipherFor(alias, wrapped)
        val prompt = BiometricPrompt(this, ContextCompat.getMainExecutor(this), object : BiometricPrompt.AuthenticationCallback() {
            override fun onAuthenticationSucceeded(result: BiometricPrompt.AuthenticationResult) {
                result.cryptoObject?.cipher?.let { app.userAuth.authorized(alias, it) }
                done()
            }
        })
        prompt.authenticate(
            BiometricPrompt.PromptInfo.Builder()
                .setTitle("Unlock your occ profile")
                .setAllowedAuthenticators(BiometricManager.Authenticators.BIOMETRIC_STRONG)
                .setNegativeButtonText("Cancel")
                .build(),
            BiometricPrompt.CryptoObject(cipher),
        )
    }
}

/** What the unlock screen says about an attempt. */
private fun describe(r: UnlockResult): String? = when (r) {
    is UnlockResult.Opened -> null
    is UnlockResult.WrongCredential -> "Wrong PIN. ${r.attemptsLeft} attempts left before this profile is wiped." +
        if (r.retryAfterMs > 0) " Try again in ${r.retryAfterMs / 1000} s." else ""
    is UnlockResult.TryLater -> "Too many attempts. Try again in ${r.retryAfterMs / 1000} s."
    UnlockResult.NeedsUserAuthentication -> "Confirm it is you first."
    UnlockResult.Wiped -> "Too many failed attempts: this profile was wiped."
}

@Composable
private fun ProfilesScreen(app: OccApp, activity: MainActivity) {
    val scope = rememberCoroutineScope()
    var profiles by remember { mutableStateOf<List<String>>(emptyList()) }
    var refresh by remember { mutableStateOf(0) }
    LaunchedEffect(refresh) { profiles = runCatching { app.device.profiles() }.getOrDefault(emptyList()) }
    var name by remember { mutableStateOf("") }
    var pin by remember { mutableStateOf("") }
    var message by remember { mutableStateOf<String?>(null) }
    fun unlock(p: String, withPin: Boolean) = scope.launch {
        val r = app.unlock(p, if (withPin) pin.encodeToByteArray() else null)
        pin = ""
        if (r == UnlockResult.NeedsUserAuthentication) {
            activity.authenticate(app, p) { scope.launch { message = describe(app.unlock(p, null)) } }
        } else {
            message = describe(r)
        }
        refresh++
    }
    Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
        Text("Who is using this device?", style = MaterialTheme.typography.titleLarge)
        OutlinedTextField(pin, { pin = it }, label = { Text("PIN") }, visualTransformation = PasswordVisualTransformation())
        profiles.forEach { p ->
            Row(Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.SpaceBetween) {
                TextButton(onClick = { unlock(p, withPin = !app.device.usesUserAuth(p)) }) { Text(p) }
                TextButton(onClick = { scope.launch { app.wipe(p); refresh++ } }) { Text("Wipe") }
            }
        }
        OutlinedTextField(name, { name = it }, label = { Text("New profile") })
        Row {
            Button(onClick = {
                scope.launch { runCatching { app.create(name, pin.encodeToByteArray()) }.onFailure { message = it.toString() } }
            }) { Text("Create with PIN") }
            TextButton(onClick = {
                scope.launch { runCatching { app.create(name, null) }.onFailure { message = it.toString() } }
            }) { Text("Use fingerprint / face") }
        }
        message?.let { Text(it, color = MaterialTheme.colorScheme.error) }
    }
}

@Composable
private fun ProfileScreen(app: OccApp, session: ProfileSession) {
    var enrolled by remember(session) { mutableStateOf<Boolean?>(null) }
    LaunchedEffect(session) {
        enrolled = session.isEnrolled()
        if (enrolled == true) {
            session.startSync()
            session.threads.refresh()
        }
    }
    val connected by session.events.connected.collectAsState()
    var openThread by remember(session) { mutableStateOf<String?>(null) }
    Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
        Row(Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.SpaceBetween) {
            Text(session.name, style = MaterialTheme.typography.titleLarge)
            Text(if (connected == false) "offline" else "")
            TextButton(onClick = { app.lock() }) { Text("Lock") }
        }
        when {
            enrolled == false -> EnrolScreen(app, session) { enrolled = true }
            openThread != null -> ConversationScreen(session, openThread!!) { openThread = null }
            enrolled == true -> {
                ThreadsScreen(session) { openThread = it }
                KeepPeriodSetting(session)
            }
        }
    }
}

@Composable
private fun EnrolScreen(app: OccApp, session: ProfileSession, done: () -> Unit) {
    val scope = rememberCoroutineScope()
    var url by remember { mutableStateOf("https://") }
    var pin by remember { mutableStateOf("sha256/") }
    var user by remember { mutableStateOf("") }
    var error by remember { mutableStateOf<String?>(null) }
    OutlinedTextField(url, { url = it }, label = { Text("Relay URL") })
    OutlinedTextField(pin, { pin = it }, label = { Text("Relay pin (sha256/…)") })
    OutlinedTextField(user, { user = it }, label = { Text("User name") })
    Button(onClick = {
        scope.launch {
            try {
                session.enrol(url, pin, user, pushEndpoint = app.endpoints.getString(session.name, null))
                session.startSync()
                done()
            } catch (e: OccException.PinMismatch) {
                error = "The relay's certificate does not match the pin (it presented ${e.presented.joinToString()})."
            } catch (e: OccException) {
                error = e.toString()
            }
        }
    }) { Text("Enrol") }
    error?.let { Text(it, color = MaterialTheme.colorScheme.error) }
}

@Composable
private fun ThreadsScreen(session: ProfileSession, open: (String) -> Unit) {
    val threads by session.threads.threads.collectAsState()
    var to by remember { mutableStateOf("") }
    LazyColumn {
        items(threads, key = { it.id }) { t ->
            Text(t.title, Modifier.fillMaxWidth().clickable { open(t.id) }.padding(vertical = 12.dp))
        }
    }
    Row {
        OutlinedTextField(to, { to = it }, label = { Text("Write to") })
        val scope = rememberCoroutineScope()
        Button(onClick = {
            scope.launch {
                runCatching { session.client.send(directTo(to), "hello".encodeToByteArray(), 3_600u, null) }
                session.threads.refresh()
            }
        }) { Text("Start") }
    }
}

@Composable
private fun ConversationScreen(session: ProfileSession, threadId: String, back: () -> Unit) {
    val model = remember(threadId) { session.conversation(threadId) }
    DisposableEffect(model) { onDispose { session.release(model) } }
    LaunchedEffect(model) {
        model.refresh()
        while (true) { // the countdowns move every second, without calling the core
            delay(1_000)
            model.tick()
        }
    }
    val items by model.items.collectAsState()
    val scope = rememberCoroutineScope()
    var draft by remember { mutableStateOf("") }
    TextButton(onClick = back) { Text("Back") }
    LazyColumn(Modifier.fillMaxWidth()) {
        items(items, key = { it.id }) { m ->
            Column(Modifier.padding(vertical = 6.dp).clickable { scope.launch { model.open(m.id) } }) {
                Text(if (m.outgoing) "me" else m.sender, style = MaterialTheme.typography.labelSmall)
                Text(m.text)
                Text(m.countdown, style = MaterialTheme.typography.labelSmall)
            }
        }
    }
    Row {
        OutlinedTextField(draft, { draft = it }, label = { Text("Message (1 h)") })
        Button(onClick = {
            val text = draft
            draft = ""
            scope.launch {
                val thread = session.threads.threads.value.firstOrNull { it.id == threadId } ?: return@launch
                model.send(thread.replyTo(), text, 3_600.seconds)
            }
        }) { Text("Send") }
    }
}

@Composable
private fun KeepPeriodSetting(session: ProfileSession) {
    val keep by session.settings.keepPeriodSecs.collectAsState()
    val scope = rememberCoroutineScope()
    var days by remember { mutableStateOf("") }
    LaunchedEffect(session) { session.settings.refresh() }
    Text("Keep messages on this device for ${keep?.let { it / 86_400u } ?: "…"} days")
    Row {
        OutlinedTextField(days, { days = it }, label = { Text("Days") })
        Button(onClick = {
            scope.launch { days.toULongOrNull()?.let { runCatching { session.settings.setKeepPeriod(it * 86_400u) } } }
        }) { Text("Set") }
    }
}
