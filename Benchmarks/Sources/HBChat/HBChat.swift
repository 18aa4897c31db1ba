import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdWebSocket
import HummingbirdWSCompression
import Logging
import NIOCore
import Synchronization

/// The peer: the ChatApp contract on Hummingbird 2 + hummingbird-websocket, written the way a
/// Hummingbird user would: a locked topic registry, a bounded queue and a writer task per
/// connection, and each publish encoded once.
@main
struct HBChat: AsyncParsableCommand {
    @Option var host = "127.0.0.1"
    @Option var port = 8082
    @Option(help: "Per-connection queue, in messages (ChatApp: 512).") var queueSize = 512

    func run() async throws {
        let hub = Hub(queueSize: self.queueSize)
        let router = Router()
        let wsRouter = Router(context: BasicWebSocketRequestContext.self)
        wsRouter.ws("/ws") { request, _ in
            guard let token = request.uri.queryParameters["token"].map(String.init), Hub.isValid(token) else {
                return .dontUpgrade
            }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            let token = context.request.uri.queryParameters["token"].map(String.init) ?? ""
            try await hub.serve(user: token, inbound: inbound, outbound: outbound)
        }
        router.post("/api/announce") { request, context -> HTTPResponse.Status in
            struct Announcement: Decodable { var text: String }
            let announcement = try await request.decode(as: Announcement.self, context: context)
            let data = try JSONSerialization.data(withJSONObject: ["user": "server", "data": ["text": announcement.text]])
            hub.publish("chat:general", data)
            return .noContent
        }
        let app = Application(
            router: router,
            server: .http1WebSocketUpgrade(
                webSocketRouter: wsRouter,
                configuration: .init(ws: .init(
                    maxFrameSize: 64 * 1024,
                    extensions: [.perMessageDeflate(noContextTakeover: true, minFrameSizeToCompress: 64)],
                    autoPing: .disabled))),
            configuration: .init(address: .hostname(self.host, port: self.port)),
            logger: Logger(label: "hb-chat"))
        print("hb-chat listening on ws://\(self.host):\(self.port)/ws")
        try await app.runService()
    }
}

final class Hub: Sendable {
    struct Client: Sendable {
        let queue: AsyncStream<String>.Continuation
    }

    private let topics = Mutex<[String: [Int: Client]]>([:])
    private let nextID = Atomic<Int>(0)
    let queueSize: Int

    init(queueSize: Int) { self.queueSize = queueSize }

    static func isValid(_ token: String) -> Bool {
        !token.isEmpty && token.count <= 32 && token.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-" }
    }

    func publish(_ topic: String, _ data: Data) {
        // Encode once; every subscriber's writer gets the same string.
        let text = #"{"topic":"\#(topic)","data":"# + String(decoding: data, as: UTF8.self) + "}"
        let clients = self.topics.withLock { $0[topic].map { Array($0.values) } ?? [] }
        for client in clients {
            if case .dropped = client.queue.yield(text) { client.queue.finish() }  // slow consumer: close it
        }
    }

    func serve(user: String, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let id = self.nextID.add(1, ordering: .relaxed).newValue
        let (stream, queue) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(self.queueSize))
        let client = Client(queue: queue)
        var subscribed: Set<String> = []
        self.publish("presence", Data(#"{"type":"join","user":"\#(user)"}"#.utf8))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await text in stream { try await outbound.write(.text(text)) }
                try? await outbound.close(.normalClosure, reason: nil)
            }
            defer { queue.finish() }
            for try await message in inbound.messages(maxSize: 64 * 1024) {
                guard case .text(let text) = message,
                    let envelope = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                    let topic = envelope["topic"] as? String
                else {
                    queue.yield(#"{"topic":"error","data":"bad message"}"#)
                    continue
                }
                let data = envelope["data"]
                switch topic {
                case "subscribe", "unsubscribe":
                    guard let target = (data as? [String: Any])?["topic"] as? String else { continue }
                    if topic == "unsubscribe" {
                        subscribed.remove(target)
                        self.topics.withLock { _ = $0[target]?.removeValue(forKey: id) }
                    } else if Self.canSubscribe(user, target) {
                        subscribed.insert(target)
                        self.topics.withLock { $0[target, default: [:]][id] = client }
                    } else {
                        queue.yield(#"{"topic":"error","data":"not allowed"}"#)
                    }
                case "chat":
                    let raw = try JSONSerialization.data(withJSONObject: data ?? NSNull(), options: [.fragmentsAllowed])
                    var payload = Data(#"{"user":"\#(user)","data":"#.utf8)
                    payload.append(raw)
                    payload.append(Data("}".utf8))
                    self.publish("chat:general", payload)
                default:
                    break
                }
            }
            self.topics.withLock { topics in
                for topic in subscribed { topics[topic]?.removeValue(forKey: id) }
            }
            queue.finish()
            self.publish("presence", Data(#"{"type":"leave","user":"\#(user)"}"#.utf8))
            try await group.waitForAll()
        }
    }

    static func canSubscribe(_ user: String, _ topic: String) -> Bool {
        topic == "chat:general" || topic == "presence" || (topic.hasPrefix("chat:") && topic.count > 5) || topic == "user:" + user
    }
}
