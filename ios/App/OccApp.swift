// The screens, and nothing else: profiles (switch, lock, wipe), enrolment,
// threads, a conversation with a live TTL countdown, the keep period.
import Occ
import OccAppLogic
import SwiftUI

@main
struct OccApp: App {
    @StateObject private var state = AppState()

    var body: some Scene {
        WindowGroup {
            if let session = state.session {
                ProfileView(state: state, session: session)
            } else {
                ProfilesView(state: state)
            }
        }
    }
}

struct ProfilesView: View {
    @ObservedObject var state: AppState
    @State private var name = ""

    var body: some View {
        List {
            Section("Who is using this device?") {
                ForEach((try? state.device.profiles()) ?? [], id: \.self) { profile in
                    HStack {
                        Button(profile) { state.open(profile, create: false) }
                        Spacer()
                        Button("Wipe", role: .destructive) { state.wipe(profile) }
                    }
                }
            }
            Section("New profile") {
                TextField("Name", text: $name)
                Button("Create") { state.open(name, create: true) }
            }
            if let alert = state.alert { Text(alert).foregroundColor(.red) }
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
                    EnrolView(session: session) { enrolled = true; try? session.startSync() }
                } else {
                    List {
                        ForEach(threads, id: \.id) { thread in
                            NavigationLink(thread.title) { ConversationView(session: session, thread: thread) }
                        }
                        KeepPeriodView(settings: session.settings)
                    }
                }
            }
            .navigationTitle(session.name + (state.connected == false ? " (offline)" : ""))
            .toolbar { Button("Lock") { state.lock() } }
        }
        .task {
            session.threads.onChange = { Task { @MainActor in threads = session.threads.threads } }
            enrolled = (try? await session.isEnrolled()) ?? false
            if enrolled == true {
                try? session.startSync()
                try? await session.threads.refresh()
            }
        }
    }
}

struct EnrolView: View {
    let session: ProfileSession
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
                        try await session.enrol(url: url, pin: pin, user: user)
                        done()
                    } catch let OccError.PinMismatch(_, presented) {
                        error = "The relay's certificate does not match the pin (it presented \(presented.joined(separator: ", ")))."
                    } catch {
                        self.error = "\(error)"
                    }
                }
            }
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
