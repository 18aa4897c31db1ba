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
    // History and recovery for chat rooms; presence (shared through Redis with --redis).
    if historyEnabled.withLockedValue({ $0 }) {
        options.history = { topic in topic.hasPrefix("chat:") ? chatHistory : nil }
    }
    options.presence = Live.PresenceOptions(topics: { $0 == onlineTopic }, expiry: presenceExpirySetting.withLockedValue { $0 })
    // Announce each arrival (the contract's join event), once it counts as online: a page
    // that sees the event and then asks who is online finds the newcomer.
    options.onOpen = { ctx, s in
        let userID = s.value as? String ?? ""
        server.subscribe(s, onlineTopic)
        server.publish("presence", Data(#"{"type":"join","user":"\#(userID)"}"#.utf8))
    }
    return options
}())

func handleMessage(_ s: Live.Session, _ topic: String, _ data: Data) async {
    let userID = s.value as? String ?? ""
    switch topic {
    case "subscribe":
        let req = try? JSONDecoder().decode(TopicRequest.self, from: data)
        // Validate subscription
        guard let req, canSubscribe(userID, req.topic) else {
            try? s.send(Live.Message(topic: "error", data: Data(#""not allowed""#.utf8)))
            return
        }
        if let since = req.since, !since.isPlausible {
            // An offset no stream reaches (2^53 and up) is the client's mistake, not a position.
            try? s.send(Live.Message(topic: "error", data: Data(#""bad request""#.utf8)))
            return
        }
        if req.since != nil || req.history != nil || req.snapshot == true {
            // Reads of Redis or of the whole member list: a client that asks in a loop waits.
            await readBudget.spend(ClientAddressKey(s.request.remoteAddress))
        }
        if req.since != nil || req.history != nil {
            // History: the latest messages, or those missed since a position; the answer first.
            await server.subscribe(s, req.topic, recoverFrom: req.since, latest: min(req.history ?? 0, 50)) { result in
                subscribedAnswer(req.topic, result)
            }
        } else {
            server.subscribe(s, req.topic)
        }
        if req.topic == "presence", req.snapshot == true {
            try? s.send(Live.Message(topic: "presence", data: await onlineSnapshot()))
        }
    case "unsubscribe":
        // Being online is not a client's subscription to drop.
        guard let req = try? JSONDecoder().decode(TopicRequest.self, from: data), req.topic != onlineTopic else { return }
        server.unsubscribe(s, req.topic)
    case "chat":
        // Broadcast chat message; data goes out byte for byte (Go: json.RawMessage).
        var msg = Data(#"{"user":"#.utf8)
        msg.append(jsonString(userID))
        msg.append(Data(#","data":"#.utf8))
        msg.append(data.isEmpty ? Data("null".utf8) : data)
        msg.append(Data("}".utf8))
        // Redis away too long (or its queue full): the sender is told, nobody else got it.
        if !server.publish("chat:general", msg) {
            try? s.send(Live.Message(topic: "error", data: Data(#""not sent""#.utf8)))
        }
    default:
        break
    }
}

struct TopicRequest: Decodable {
    var topic: String
    /// Recover from this position (the last message's `offset` and `epoch`).
    var since: Live.StreamPosition?
    /// Send up to this many recent messages (at most 50) when not recovering.
    var history: Int?
    /// With `presence`: answer with who is online now.
    var snapshot: Bool?
}

/// `{"topic":"subscribed","data":{"topic":T,"recovered":B,"offset":N,"epoch":E}}`
func subscribedAnswer(_ topic: String, _ result: Live.SubscribeResult) -> Live.Message {
    var data = Data(#"{"topic":"#.utf8)
    data.append(jsonString(topic))
    data.append(Data(#","recovered":\#(result.recovered)"#.utf8))
    if let top = result.top {
        data.append(Data(#","offset":\#(top.offset),"epoch":"#.utf8))
        data.append(jsonString(top.epoch))
    }
    data.append(Data("}".utf8))
    return Live.Message(topic: "subscribed", data: data)
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

/// chat:general, presence, any chat:<room>, and the user's own user:<id>.
func canSubscribe(_ userID: String, _ topic: String) -> Bool {
    topic == "chat:general" || topic == "presence" || (topic.hasPrefix("chat:") && topic.count > 5) || topic == "user:" + userID
}

func jsonString(_ text: String) -> Data {
    (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
}
