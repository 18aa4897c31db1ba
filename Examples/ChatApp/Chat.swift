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
            handleMessage(s, topic, data)
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
    // Announce each arrival (the contract's join event).
    options.onOpen = { ctx, s in
        let userID = s.value as? String ?? ""
        server.publish("presence", Data(#"{"type":"join","user":"\#(userID)"}"#.utf8))
    }
    return options
}())

func handleMessage(_ s: Live.Session, _ topic: String, _ data: Data) {
    let userID = s.value as? String ?? ""
    switch topic {
    case "subscribe":
        let req = try? JSONDecoder().decode(TopicRequest.self, from: data)
        // Validate subscription
        guard let req, canSubscribe(userID, req.topic) else {
            try? s.send(Live.Message(topic: "error", data: Data(#""not allowed""#.utf8)))
            return
        }
        server.subscribe(s, req.topic)
    case "unsubscribe":
        guard let req = try? JSONDecoder().decode(TopicRequest.self, from: data) else { return }
        server.unsubscribe(s, req.topic)
    case "chat":
        // Broadcast chat message; data goes out byte for byte (Go: json.RawMessage).
        var msg = Data(#"{"user":"#.utf8)
        msg.append(jsonString(userID))
        msg.append(Data(#","data":"#.utf8))
        msg.append(data.isEmpty ? Data("null".utf8) : data)
        msg.append(Data("}".utf8))
        server.publish("chat:general", msg)
    default:
        break
    }
}

struct TopicRequest: Decodable {
    var topic: String
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
