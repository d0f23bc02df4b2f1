// The download prompt a push notice becomes (mirrors the Android logic's
// Prompts.kt): what the notification says and which actions it offers. The
// core verified the notice (relay signature, this device, not expired, not a
// replay) and applied the organisation's policy before this code sees it; a
// forged notice never gets here.
import Foundation
import Occ

/// What the notification shows for one verified notice.
public struct PromptView: Equatable, Sendable {
    public let title: String
    public let body: String
    /// Offer "Download" (and "Decline").
    public let canDownload: Bool
    /// The user must unlock (confirm presence) before the download.
    public let needsUnlock: Bool
    /// Time-sensitive (urgent alert): break through focus modes.
    public let urgent: Bool
    public let relayMessageId: String
}

public func promptView(_ p: DownloadPrompt) -> PromptView {
    var from = "an unknown sender"
    if let user = p.senderUser { from = p.senderVerified ? user : "\(user) (unverified)" }
    let place = p.threadTitle.map { " in \($0)" } ?? ""
    let what = p.urgent ? "URGENT alert" : (p.messageClass == "file" ? "file (\(p.size) bytes)" : "message")
    let more = p.count > 1 ? " (+\(p.count - 1) more)" : ""
    switch p.decision {
    case let .deny(reason):
        return PromptView(title: "occ", body: "A \(what) from \(from)\(place) cannot be downloaded on this device: \(reason)",
                          canDownload: false, needsUnlock: false, urgent: p.urgent, relayMessageId: p.relayMessageId)
    case let .confirm(reason):
        return PromptView(title: "occ", body: "Do you want to download this OCC \(what) from \(from)\(place)?\(more) \(reason)",
                          canDownload: true, needsUnlock: true, urgent: p.urgent, relayMessageId: p.relayMessageId)
    case .allow:
        return PromptView(title: "occ", body: "Do you want to download this OCC \(what) from \(from)\(place)?\(more)",
                          canDownload: true, needsUnlock: false, urgent: p.urgent, relayMessageId: p.relayMessageId)
    }
}
