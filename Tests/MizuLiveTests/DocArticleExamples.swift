// The code of the MizuLive, MizuCompat and MizuLiveClient-free articles (Sources/*/*.docc),
// compiled here: scripts/docs.sh checks that every Swift block of an article appears in one
// of the DocArticleExamples files, line for line. Keep both in step.
import Foundation
import Logging
import Mizu
import MizuCompat
import MizuLive
import MizuTestSupport
import ServiceLifecycle
import Testing

// MARK: A realtime server in ten minutes

struct Unauthorized: Error {}

let server = Live.Server(Live.Options(
    onAuth: { _, request in
        // What this returns becomes the session's value; a thrown error answers 401.
        guard let user = request.query["user"], !user.isEmpty else { throw Unauthorized() }
        return user
    },
    onMessage: { _, session, topic, data in
        switch topic {
        case "join":
            server.subscribe(session, "room")
        case "say":
            server.publish("room", data)
        default:
            try? session.send(Live.Message(topic: "error", data: Data(#""unknown topic""#.utf8)))
        }
    },
    onClose: { session, error in
        let user = session.value as? String ?? ""
        server.publish("room", Data(#"{"left":"\#(user)"}"#.utf8))
    }
))

enum QuickStartExample {
    static func listen() async throws {
        let app = App()
        app.get("/ws", compat(server.handler()))
        try await app.listen(":8080")
    }

    static func mountAnnounce(on app: App) {
        app.post("/announce") { c in
            server.publish("room", Data(c.request.bodyString.utf8))
            c.noContent()
        }
    }
}

// MARK: Coming from Go mizu

struct ComingFromGoExample {
    func canSubscribe(_ user: String, _ topic: String) -> Bool { topic.hasPrefix("chat:") && !user.isEmpty }

    struct TopicRequest: Decodable { var topic: String }

    func handleMessage(_ session: Live.Session, _ topic: String, _ data: Data) {
        guard topic == "subscribe", let request = try? JSONDecoder().decode(TopicRequest.self, from: data) else { return }
        guard canSubscribe(session.value as? String ?? "", request.topic) else {
            try? session.send(Live.Message(topic: "error", data: Data(#""not allowed""#.utf8)))
            return
        }
        server.subscribe(session, request.topic)
    }
}

// MARK: History and recovery, presence

struct HistoryAndPresenceExample {
    let server: Live.Server

    static func historyOptions() -> Live.Options {
        var options = Live.Options()
        options.history = { topic in
            topic.hasPrefix("chat:") ? Live.HistoryPolicy(size: 100, ttl: .hours(24)) : nil
        }
        return options
    }

    func join(_ session: Live.Session, _ topic: String, lastSeen: Live.StreamPosition?) async {
        let result = await server.subscribe(session, topic, recoverFrom: lastSeen, latest: 50) { result in
            // Sent before the replay: tells the client whether its position still held.
            Live.Message(topic: "subscribed", data: Data(#"{"recovered":\#(result.recovered)}"#.utf8))
        }
        if let top = result.top { print("\(session.id) is at \(top)") }
    }

    func latest(_ topic: String) async throws -> [Live.Publication] {
        let page = try await server.history(topic, limit: 20)
        return page.publications
    }

    static func presenceOptions() -> Live.Options {
        var options = Live.Options()
        options.presence = Live.PresenceOptions(
            topics: { $0.hasPrefix("room:") },
            info: { session in Data(#"{"user":"\#(session.value as? String ?? "")"}"#.utf8) },
            eventTopic: { topic in topic + ":presence" },
            snapshotOnSubscribe: true)
        return options
    }

    func online(_ room: String) async throws -> [String] {
        try await server.presence(room).map(\.session)
    }
}

// MARK: Scaling out, operations, MizuCompat

struct ScalingOutExample {
    func connectToRedis() async throws -> Live.Server {
        let broker = try await Live.RedisBroker.connect(url: "redis://:secret@10.0.0.5:6379/0", channelPrefix: "myapp:")
        var options = Live.Options()
        options.broker = broker
        return Live.Server(options)
    }

    func connectToCluster() async throws -> Live.Server {
        var cluster = try Live.RedisClusterBroker.Configuration(seeds: "10.0.0.5:7000,10.0.0.6:7000")
        cluster.node.channelPrefix = "myapp:"   // credentials, TLS, bounds: as for one Redis
        var options = Live.Options()
        options.broker = try await Live.RedisClusterBroker.connect(cluster)
        return Live.Server(options)
    }

    func mountHealth(on app: App, broker: Live.RedisBroker) {
        app.health(checks: ["redis": { broker.isConnected }])
    }

    func runServices(app: App, server: Live.Server, logger: Logger) async throws {
        let group = ServiceGroup(services: [app.service(":8080"), server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    func mountLive(_ server: Live.Server, on app: App) {
        app.get("/ws", compat(server.handler()))
    }
}

/// The quick start's server, run: a session that joins gets what another says; one without a
/// user is refused before the upgrade.
@Suite struct DocArticleExamplesTests {
    @Test func theQuickStartServerWorks() async throws {
        let app = App(logsRequests: false)
        app.get("/ws", compat(server.handler()))
        QuickStartExample.mountAnnounce(on: app)
        let port = try #require(try await app.start(host: "127.0.0.1", port: 0).port)
        do {
            let ann = try await TestWebSocket.live(port: port, user: "ann")
            let bob = try await TestWebSocket.live(port: port, user: "bob")
            try await ann.send(text: #"{"topic":"join","data":{}}"#)
            try await bob.send(text: #"{"topic":"join","data":{}}"#)
            _ = try await eventually("both joined") { server.subscriberCount("room") == 2 ? true : nil }
            try await ann.send(text: #"{"topic":"say","data":{"text":"hi"}}"#)
            #expect(try await bob.readText() == #"{"topic":"room","data":{"text":"hi"}}"#)
            #expect(try await ann.readText() == #"{"topic":"room","data":{"text":"hi"}}"#)
            try await ann.send(text: #"{"topic":"dance","data":{}}"#)
            #expect(try await ann.readText() == #"{"topic":"error","data":"unknown topic"}"#)
            let announce = try await Self.request(port: port, "POST /announce HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"n\":1}")
            #expect(announce.status == 204)
            #expect(try await bob.readText() == #"{"topic":"room","data":{"n":1}}"#)
            try await ann.close()
            #expect(try await bob.readText() == #"{"topic":"room","data":{"left":"ann"}}"#)
            try await bob.close()
            let anonymous = try await Self.request(
                port: port, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            #expect(anonymous.status == 401)
        } catch {
            await app.shutdown()
            throw error
        }
        await app.shutdown()
    }

    private static func request(port: Int, _ text: String) async throws -> HTTPTestResponse {
        let client = try await RawClient.connect(port: port)
        do {
            try await client.send(text)
            let response = try await client.readResponse()
            await client.close()
            return response
        } catch {
            await client.close()
            throw error
        }
    }
}
