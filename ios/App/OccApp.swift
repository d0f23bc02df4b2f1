// The screens, and nothing else: who is using the device (unlock with a PIN
// or Face ID / Touch ID, create, wipe), enrolment, threads, a
// conversation with a live TTL countdown, the keep period. Views read the
// models' state and start work in `.task` or in button actions, never in
// `body`; all state and decisions come from AppState and OccAppLogic.
import Occ
import OccAppLogic
import SwiftUI

@main
struct OccApp: App {
    @UIApplicationDelegateAdaptor(AppDelegate.self) private var delegate
    @Environment(\.scenePhase) private var phase

    var body: some Scene {
        WindowGroup {
            RootView(state: delegate.state)
        }
        .onChange(of: phase) { now in
            switch now {
            case .background: delegate.scheduleBackgroundWork()
            case .active: delegate.becameActive()
            default: break
            }
        }
    }
}

struct RootView: View {
    @ObservedObject var state: AppState

    var body: some View {
        Group {
            if let error = state.startupError {
                Text("occ cannot start: \(error)").padding()
            } else if let session = state.session {
                ProfileView(state: state, session: session)
            } else {
                ProfilesView(state: state)
            }
        }
        .task { await state.start() }
    }
}

struct ProfilesView: View {
    @ObservedObject var state: AppState
    @State private var name = ""
    @State private var pin = ""
    @State private var unlocking: ProfileEntry?

    var body: some View {
        NavigationStack {
            List {
                Section("Who is using this device?") {
                    ForEach(state.profiles) { profile in
                        HStack {
                            Button(profile.name) { unlocking = profile }
                            Spacer()
                            Button("Wipe", role: .destructive) { Task { await state.wipe(profile.name) } }
                        }
                    }
                }
                Section("New profile") {
                    TextField("Name", text: $name)
                    SecureField("PIN or passphrase", text: $pin)
                    Button("Create with this PIN") {
                        let (n, p) = (name, pin)
                        pin = ""
                        Task { await state.create(n, pin: p) }
                    }
                    .disabled(name.isEmpty || pin.isEmpty)
                    Button("Create with Face ID or Touch ID (a phone with one user)") {
                        let n = name
                        Task { await state.createWithUserAuth(n) }
                    }
                    .disabled(name.isEmpty)
                }
                if let message = state.message { Text(message).foregroundColor(.red) }
            }
            .navigationTitle("occ")
            .sheet(item: $unlocking) { profile in
                UnlockView(state: state, profile: profile)
            }
            .onChange(of: state.unlockRequest) { requested in
                if let requested { unlocking = state.profiles.first { $0.name == requested } }
            }
        }
    }
}

struct UnlockView: View {
    @ObservedObject var state: AppState
    let profile: ProfileEntry
    @State private var pin = ""

    var body: some View {
        Form {
            Section("Unlock \(profile.name)") {
                if profile.usesUserAuth {
                    Button("Unlock with Face ID or Touch ID") {
                        Task { await state.unlockWithUserAuth(profile.name) }
                    }
                } else {
                    SecureField("PIN or passphrase", text: $pin)
                    Button("Unlock") {
                        let p = pin
                        pin = ""
                        Task { await state.unlock(profile.name, pin: p) }
                    }
                    .disabled(pin.isEmpty)
                }
            }
            if let message = state.message { Text(message).foregroundColor(.red) }
        }
        .task {
            if profile.usesUserAuth { await state.unlockWithUserAuth(profile.name) }
        }
    }
}

struct ProfileView: View {
    @ObservedObject var state: AppState
    let session: ProfileSession
    @State private var enrolled: Bool?
    @State private var threads: [ThreadSummary] = []

    var body: some View {
        NavigationStack {
            Group {
                if enrolled == false {
                    EnrolView(session: session, pushEndpoint: state.pushEndpoint) {
                        enrolled = true
                        state.enrolled()
                    }
                } else {
                    List {
                        ForEach(threads, id: \.id) { thread in
                            NavigationLink(thread.title) { ConversationView(session: session, thread: thread) }
                        }
                        KeepPeriodView(settings: session.settings)
                        if let message = state.message { Text(message).foregroundColor(.red) }
                    }
                }
            }
            .navigationTitle(session.name + (state.connected == false ? " (offline)" : ""))
            .toolbar { Button("Lock") { state.lock() } }
        }
        .task {
            let model = session.threads
            model.onChange = { Task { @MainActor in threads = model.threads } }
            enrolled = (try? await session.isEnrolled()) ?? false
            if enrolled == true { try? await model.refresh() }
        }
    }
}

struct EnrolView: View {
    let session: ProfileSession
    let pushEndpoint: String?
    let done: () -> Void
    @State private var url = "https://"
    @State private var pin = "sha256/"
    @State private var user = ""
    @State private var error: String?

    var body: some View {
        Form {
            TextField("Relay URL", text: $url)
            TextField("Relay pin (sha256/…)", text: $pin)
            TextField("User name", text: $user)
            Button("Enrol") {
                Task {
                    do {
                        try await session.enrol(url: url, pin: pin, user: user, pushEndpoint: pushEndpoint)
                        done()
                    } catch let OccError.PinMismatch(_, presented) {
                        error = "The relay's certificate does not match the pin (it presented \(presented.joined(separator: ", ")))."
                    } catch {
                        self.error = "\(error)"
                    }
                }
            }
            if pushEndpoint == nil { Text("No push endpoint yet: notices arrive when the app syncs.").font(.caption) }
            if let error { Text(error).foregroundColor(.red) }
        }
    }
}

struct ConversationView: View {
    let session: ProfileSession
    let thread: ThreadSummary
    @State private var model: ConversationModel?
    @State private var items: [MessageItem] = []
    @State private var draft = ""

    var body: some View {
        VStack {
            // The countdowns move every second without calling the core.
            TimelineView(.periodic(from: .now, by: 1)) { context in
                List(items, id: \.id) { item in
                    VStack(alignment: .leading) {
                        Text(item.outgoing ? "me" : item.sender).font(.caption)
                        Text(item.text)
                        Text(item.countdown).font(.caption2)
                    }
                    .onTapGesture { Task { try? await model?.open(id: item.id) } }
                }
                .onChange(of: context.date) { _ in model?.tick() }
            }
            HStack {
                TextField("Message (1 h)", text: $draft)
                Button("Send") {
                    let text = draft
                    draft = ""
                    Task { try? await model?.send(to: thread.replyTo(), text, ttl: 3_600) }
                }
            }.padding()
        }
        .navigationTitle(thread.title)
        .task {
            let m = session.conversation(threadId: thread.id)
            m.onChange = { Task { @MainActor in items = m.items } }
            model = m
            try? await m.refresh()
        }
        .onDisappear { if let model { session.release(model) } }
    }
}

struct KeepPeriodView: View {
    let settings: SettingsModel
    @State private var days = ""
    @State private var current: UInt64?

    var body: some View {
        Section("Keep messages on this device") {
            Text("\(current.map { "\($0 / 86_400)" } ?? "…") days")
            HStack {
                TextField("Days", text: $days)
                Button("Set") {
                    Task {
                        if let d = UInt64(days) { try? await settings.setKeepPeriod(secs: d * 86_400) }
                        current = settings.keepPeriodSecs
                    }
                }
            }
        }
        .task {
            try? await settings.refresh()
            current = settings.keepPeriodSecs
        }
    }
}
