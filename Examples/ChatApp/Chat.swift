import Foundation
import Logging
import Mizu
import MizuLive
import NIOConcurrencyHelpers
import NIOCore

// The Go documentation's "Complete Example", in Swift. Every hook, limit and helper below
// has its Go counterpart line for line; only the syntax differs.

/// Origins allowed besides the page's own, from `--origin` (set before `server` is first used).
let extraOrigins = NIOLockedValueBox<[String]>([])

/// The Redis backplane from `--redis` (set before `server` is first used); nil runs alone.
let backplane = NIOLockedValueBox<(any Live.Broker)?>(nil)

/// `--write-delay` (set before `server` is first used).
let writeDelay = NIOLockedValueBox<TimeAmount?>(nil)

/// `--presence-expiry` (set before `server` is first used): how long a user of a node that
/// died stays listed.
let presenceExpirySetting = NIOLockedValueBox<TimeAmount>(.seconds(30))

/// Every open session is a member of this topic (subscribed by the server, never by a
/// client; nothing is published on it): who is online.
let onlineTopic = "online"

/// `--no-history` turns it off (set before `server` is first used).
let historyEnabled = NIOLockedValueBox(true)

/// Chat rooms keep their last 100 messages for a day: a page shows the last 50 on join and
/// recovers what it missed while reconnecting.
let chatHistory = Live.HistoryPolicy(size: 100, ttl: .hours(24))

/// The longest topic (UTF-8 bytes) the server takes, rooms included: the library's default.
let topicLengthLimit = 255

let log = Logger(label: "chat")

/// The live server (Go: `var server *live.Server`).
let server = Live.Server({
    var options = Live.Options(
        // Authentication
        onAuth: { ctx, r in
            let token = r.query["token"] ?? bearerToken(r)
            let userID = try validateToken(token)
            return userID
        },
        // Message handling
        onMessage: { ctx, s, topic, data in
            await handleMessage(s, topic, data)
        },
        // Cleanup on disconnect
        onClose: { s, err in
            let userID = s.value as? String ?? ""
            log.info("User \(userID) disconnected\(err.map { ": \($0)" } ?? "")")
            server.publish("presence", Data(#"{"type":"leave","user":"\#(userID)"}"#.utf8))
        },
        // Limits
        queueSize: 512,
        readLimit: 64 * 1024,
        // Origins
        origins: extraOrigins.withLockedValue { $0 }
    )
    // Several ChatApp processes sharing one Redis form one chat.
    options.broker = backplane.withLockedValue { $0 }
    options.writeDelay = writeDelay.withLockedValue { $0 }
    options.maxTopicLength = topicLengthLimit
    // History and recovery for chat rooms; presence (shared through Redis with --redis).
    if historyEnabled.withLockedValue({ $0 }) {
        options.history = { topic in topic.hasPrefix("chat:") ? chatHistory : nil }
    }
    options.presence = Live.PresenceOptions(topics: { $0 == onlineTopic }, expiry: presenceExpirySetting.withLockedValue { $0 })
    // subscribe, unsubscribe, publish, history, presence: MizuLive's standard commands, guarded
    // by the chat's rules (the page's `subscribe` answers stay as they were).
    options.commands = chatCommands()
    // Announce each arrival (the contract's join event), once it counts as online: a page
    // that sees the event and then asks who is online finds the newcomer.
    options.onOpen = { ctx, s in
        let userID = s.value as? String ?? ""
        server.subscribe(s, onlineTopic)
        server.publish("presence", Data(#"{"type":"join","user":"\#(userID)"}"#.utf8))
    }
    return options
}())

/// The chat's own messages: `chat` (to chat:general, as in the seed) and `chat:<room>`.
/// Subscriptions and reads are the standard commands (`chatCommands`).
func handleMessage(_ s: Live.Session, _ topic: String, _ data: Data) async {
    let userID = s.value as? String ?? ""
    let room: String
    if topic == "chat" {
        room = "chat:general"
    } else if topic.hasPrefix("chat:"), canSubscribe(userID, topic) {
        room = topic
    } else {
        if topic.hasPrefix("chat:") { try? s.send(Live.Message(topic: "error", data: Data(#""not allowed""#.utf8))) }
        return
    }
    // Broadcast chat message; data goes out byte for byte (Go: json.RawMessage). Wrapping
    // adds a level: data already at the deepest nesting a message may carry is bad, for good.
    let message = chatMessage(from: s, data)
    guard Live.Message.isValidData(message) else {
        try? s.send(Live.Message(topic: "error", data: Data(#""bad message""#.utf8)))
        return
    }
    // Redis away too long (or its queue full): the sender is told, nobody else got it.
    if !server.publish(room, message) {
        try? s.send(Live.Message(topic: "error", data: Data(#""not sent""#.utf8)))
    }
}

/// `{"user":"<id>","data":D}`, D byte for byte.
func chatMessage(from s: Live.Session, _ data: Data) -> Data {
    var msg = Data(#"{"user":"#.utf8)
    msg.append(jsonString(s.value as? String ?? ""))
    msg.append(Data(#","data":"#.utf8))
    msg.append(data.isEmpty ? Data("null".utf8) : data)
    msg.append(Data("}".utf8))
    return msg
}

/// The standard commands with the chat's rules: read what canSubscribe allows (so the
/// server's own `online` subscription cannot be dropped), publish to chat rooms as the user,
/// at most 50 messages of history, reads paced per client, and the presence snapshot the page
/// asks for with `{"topic":"presence","snapshot":true}`.
func chatCommands() -> Live.Commands {
    var commands = Live.Commands(
        canSubscribe: { s, request in canSubscribe(s.value as? String ?? "", request.topic) },
        canPublish: { s, topic, _ in topic.hasPrefix("chat:") && canSubscribe(s.value as? String ?? "", topic) })
    commands.publication = { s, _, data in chatMessage(from: s, data) }
    commands.maxHistory = 50
    // Reads of Redis or of the whole member list: a client that asks in a loop waits.
    commands.willRead = { s in await readBudget.spend(ClientAddressKey(s.request.remoteAddress)) }
    commands.subscribed = { s, request in
        guard request.topic == "presence", (try? JSONDecoder().decode(SnapshotRequest.self, from: request.data))?.snapshot == true else { return }
        await readBudget.spend(ClientAddressKey(s.request.remoteAddress))
        try? s.send(Live.Message(topic: "presence", data: await onlineSnapshot()))
    }
    return commands
}

/// `subscribe`'s own member of the chat: with `presence`, answer with who is online now.
struct SnapshotRequest: Decodable {
    var snapshot: Bool?
}

/// Who is online, each user once however many tabs: `{"type":"snapshot","users":[...]}`.
func onlineUsers() async -> [String] {
    let members = (try? await server.presence(onlineTopic)) ?? []
    return Set(members.compactMap { try? JSONDecoder().decode(String.self, from: $0.info) }).sorted()
}

func onlineSnapshot() async -> Data {
    var data = Data(#"{"type":"snapshot","users":"#.utf8)
    data.append((try? JSONEncoder().encode(await onlineUsers())) ?? Data("[]".utf8))
    data.append(Data("}".utf8))
    return data
}

/// The demo's tokens: 1 to 32 of A-Z, a-z, 0-9, `_` and `-`; the user ID is the token.
func validateToken(_ token: String?) throws -> String {
    guard let token, !token.isEmpty else { throw AuthError.missingToken }
    guard token.utf8.count <= 32, token.unicodeScalars.allSatisfy({ tokenCharacters.contains($0) }) else {
        throw AuthError.invalidToken
    }
    return token
}

private let tokenCharacters = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

enum AuthError: Error, CustomStringConvertible {
    case missingToken
    case invalidToken

    var description: String {
        switch self {
        case .missingToken: return "missing token"
        case .invalidToken: return "invalid token"
        }
    }
}

/// `Authorization: Bearer T`.
func bearerToken(_ r: Request) -> String? {
    guard let header = r.header("authorization"), header.lowercased().hasPrefix("bearer ") else { return nil }
    return String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
}

/// chat:general, presence, any chat:<room>, and the user's own user:<id>. A room's name is
/// held to the topic length the server subscribes to at all (a longer one could be published
/// to, and its history kept, for nobody).
func canSubscribe(_ userID: String, _ topic: String) -> Bool {
    guard topic.utf8.count <= topicLengthLimit else { return false }
    return topic == "chat:general" || topic == "presence" || (topic.hasPrefix("chat:") && topic.count > 5) || topic == "user:" + userID
}

func jsonString(_ text: String) -> Data {
    (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
}
