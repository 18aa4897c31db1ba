import Foundation
import Mizu
@testable import MizuLive
import MetricsTestKit
import MizuWebSocket
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Two live servers, each with its own RedisBroker on one redis-server.
func withTwoNodes(
    _ redis: RedisTestServer,
    prefix: String = "test:",
    configure: (inout Live.RedisBroker.Configuration) -> Void = { _ in },
    options: (inout Live.Options) -> Void = { _ in },
    _ body: (_ a: (server: Live.Server, broker: Live.RedisBroker, port: Int), _ b: (server: Live.Server, broker: Live.RedisBroker, port: Int)) async throws -> Void
) async throws {
    var configuration = try redis.configuration(prefix: prefix)
    configure(&configuration)
    try await withTwoServers(connect: { try await Live.RedisBroker.connect(configuration) }, close: { await $0.close() }, options: options, body)
}

/// Two live servers, each with its own broker from `connect`, closed afterwards whatever happens.
func withTwoServers<B: Live.Broker>(
    connect: () async throws -> B,
    close: (B) async -> Void,
    options: (inout Live.Options) -> Void,
    _ body: (_ a: (server: Live.Server, broker: B, port: Int), _ b: (server: Live.Server, broker: B, port: Int)) async throws -> Void
) async throws {
    let brokerA = try await connect()
    let brokerB: B
    do {
        brokerB = try await connect()
    } catch {
        await close(brokerA)
        throw error
    }
    do {
        try await withLiveServer({ options(&$0); $0.broker = brokerA }) { serverA, _, portA in
            try await withLiveServer({ options(&$0); $0.broker = brokerB }) { serverB, _, portB in
                try await body((serverA, brokerA, portA), (serverB, brokerB, portB))
            }
        }
    } catch {
        await close(brokerA)
        await close(brokerB)
        throw error
    }
    await close(brokerA)
    await close(brokerB)
}

/// A client of `server` subscribed to `topic` (through the test options' "subscribe" message).
func subscriber(_ server: Live.Server, port: Int, topic: String, user: String) async throws -> TestWebSocket {
    let before = server.subscriberCount(topic)
    let socket = try await TestWebSocket.live(port: port, user: user)
    try await socket.send(text: #"{"topic":"subscribe","data":"\#(topic)"}"#)
    _ = try await eventually("\(user) subscribed to \(topic)") { server.subscriberCount(topic) > before ? true : nil }
    return socket
}

/// Reads `count` text frames and returns their `data` parts as strings.
func readData(_ socket: TestWebSocket, count: Int) async throws -> [String] {
    var received: [String] = []
    for _ in 0..<count {
        let text = try await socket.readText()
        let message = try #require(Live.Message.parse(Array(text.utf8)))
        received.append(String(decoding: message.data, as: UTF8.self))
    }
    return received
}

/// Runs `body` with a fresh redis-server, stopped (and reaped) afterwards whatever happens.
func withRedis(password: String? = nil, _ body: (RedisTestServer) async throws -> Void) async throws {
    let redis = try await RedisTestServer.start(password: password)
    do {
        try await body(redis)
    } catch {
        try? await redis.stop()
        throw error
    }
    try await redis.stop()
}

@Suite(.serialized, .timeLimit(.minutes(10))) struct RedisBackplaneTests {
    @Test func urlsParseAndBadOnesSayWhy() throws {
        let full = try Live.RedisBroker.Configuration(url: "redis://app:s%40cret@redis.internal:6380/3")
        #expect(full.host == "redis.internal" && full.port == 6380 && full.database == 3)
        #expect(full.username == "app" && full.password == "s@cret")
        let passwordOnly = try Live.RedisBroker.Configuration(url: "redis://:pw@127.0.0.1")
        #expect(passwordOnly.username == nil && passwordOnly.password == "pw" && passwordOnly.port == 6379 && passwordOnly.database == 0)
        let ipv6 = try Live.RedisBroker.Configuration(url: "redis://[::1]:7000/")
        #expect(ipv6.host == "::1" && ipv6.port == 7000)
        for (url, reason) in [
            ("http://localhost", "the scheme must be redis:// or rediss://"),
            ("redis://", "no host"),
            ("redis://localhost/abc", "the path must be a database number"),
        ] {
            #expect(throws: Live.RedisError.invalidURL(url, reason: reason)) { try Live.RedisBroker.Configuration(url: url) }
        }
        // Errors and descriptions end up in logs: never with the password.
        #expect(throws: Live.RedisError.invalidURL("redis://***@localhost", reason: "a user needs a password")) {
            try Live.RedisBroker.Configuration(url: "redis://user@localhost")
        }
        #expect(throws: Live.RedisError.invalidURL("redis://ann:***@localhost/abc", reason: "the path must be a database number")) {
            try Live.RedisBroker.Configuration(url: "redis://ann:s3cret@localhost/abc")
        }
        #if TLS
        #expect(try Live.RedisBroker.Configuration(url: "rediss://localhost").tls != nil)
        #expect(try Live.RedisBroker.Configuration(url: "redis://localhost").tls == nil)
        #else
        #expect(throws: Live.RedisError.invalidURL("rediss://localhost", reason: "TLS (rediss://) needs a build with the TLS trait (swift build --traits TLS)")) {
            try Live.RedisBroker.Configuration(url: "rediss://localhost")
        }
        #endif
        let secret = try Live.RedisBroker.Configuration(url: "redis://ann:s3cret@10.0.0.5:7000/2")
        #expect("\(secret)" == "redis://ann:***@10.0.0.5:7000/2")
        #expect(!String(reflecting: secret).contains("s3cret"))
    }

    @Test func startUpErrorsAreClear() async throws {
        try await withRedis(password: "right") { redis in
            var configuration = try redis.configuration()

            configuration.password = nil
            await #expect(throws: Live.RedisError.self) { _ = try await Live.RedisBroker.connect(configuration) }
            do {
                _ = try await Live.RedisBroker.connect(configuration)
            } catch let error as Live.RedisError {
                guard case .refused(let command, let message) = error else { Issue.record("\(error)"); return }
                #expect(command == "PING" && message.hasPrefix("NOAUTH"), "\(error)")
            }

            configuration.password = "wrong"
            do {
                _ = try await Live.RedisBroker.connect(configuration)
                Issue.record("a wrong password must fail")
            } catch let error as Live.RedisError {
                guard case .refused(let command, let message) = error else { Issue.record("\(error)"); return }
                #expect(command == "AUTH" && message.contains("WRONGPASS"), "\(error)")
                #expect(error.description.hasPrefix("Redis refused AUTH: WRONGPASS"))
            }

            configuration.password = "right"
            configuration.database = 999
            do {
                _ = try await Live.RedisBroker.connect(configuration)
                Issue.record("a database out of range must fail")
            } catch let error as Live.RedisError {
                guard case .refused(let command, _) = error else { Issue.record("\(error)"); return }
                #expect(command == "SELECT", "\(error)")
            }

            configuration.database = 1
            let broker = try await Live.RedisBroker.connect(configuration)
            #expect(broker.isConnected)
            await broker.close()

            try await redis.stop()
            do {
                _ = try await Live.RedisBroker.connect(configuration)
                Issue.record("no Redis must fail")
            } catch let error as Live.RedisError {
                guard case .connectionFailed(_, let port, _) = error else { Issue.record("\(error)"); return }
                #expect(port == redis.port)
            }
        }
    }

    /// A message received from Redis costs the same stack (and time) however many came
    /// before it. Bare closures read out of a lock box gained a re-abstraction thunk per read,
    /// so the n-th message ran through n thunks: 96 bytes of stack each, a crash after some
    /// 10^5 messages. Both receivers, plain and positioned, over 2,000 messages.
    @Test func receivingManyMessagesKeepsTheStackFlat() async throws {
        try await withRedis { redis in
            let sender = try await Live.RedisBroker.connect(try redis.configuration())
            let receiver = try await Live.RedisBroker.connect(try redis.configuration())
            do {
                let depths = NIOLockedValueBox<[UInt]>([])
                receiver.attach { _, _ in depths.withLockedValue { $0.append(stackAddress()) } }
                receiver.subscribe("deep")
                try await receiver.subscriptionReady("deep")
                for index in 0..<2_000 { sender.publish("deep", Data("\(index)".utf8)) }
                _ = try await eventually("2,000 messages received") { depths.withLockedValue { $0.count } == 2_000 ? true : nil }
                let plain = depths.withLockedValue { $0 }
                #expect(plain.max()! - plain.min()! < 1_024, "the stack grew by \(plain.max()! - plain.min()!) bytes over 2,000 messages")

                let positioned = NIOLockedValueBox<[UInt]>([])
                receiver.attachPositioned(receive: { _, _, _ in positioned.withLockedValue { $0.append(stackAddress()) } }, notice: { _, _ in })
                try await receiver.eventLoop.submit {
                    for offset in 1...2_000 {
                        receiver.deliverPositioned(topic: "deep", channel: ByteBuffer(string: "test:deep"), payload: ByteBuffer(string: "h:\(offset):e\n1"))
                    }
                }.get()
                let spread = positioned.withLockedValue { $0.max()! - $0.min()! }
                #expect(positioned.withLockedValue { $0.count } == 2_000)
                #expect(spread < 1_024, "the stack grew by \(spread) bytes over 2,000 positioned messages")
            } catch {
                await sender.close()
                await receiver.close()
                throw error
            }
            await sender.close()
            await receiver.close()
        }
    }

    @Test func twoNodesDeliverEachPublishOnceInOrder() async throws {
        try await withRedis { redis in
            try await withTwoNodes(redis) { a, b in
                let onA = try await subscriber(a.server, port: a.port, topic: "room", user: "ann")
                let onB = try await subscriber(b.server, port: b.port, topic: "room", user: "bob")
                _ = try await eventuallyAsync("both nodes subscribed on Redis") {
                    try await redis.subscriberCount("test:room") == 2 ? true : nil
                }
                for index in 0..<50 {
                    a.server.publish("room", Data(#"{"from":"a","n":\#(index)}"#.utf8))
                    b.server.publish("room", Data(#"{"from":"b","n":\#(index)}"#.utf8))
                }
                for socket in [onA, onB] {
                    let received = try await readData(socket, count: 100)
                    let fromA = received.filter { $0.contains(#""from":"a""#) }
                    let fromB = received.filter { $0.contains(#""from":"b""#) }
                    #expect(fromA == (0..<50).map { #"{"from":"a","n":\#($0)}"# }, "each of A's publishes once, in order")
                    #expect(fromB == (0..<50).map { #"{"from":"b","n":\#($0)}"# }, "each of B's publishes once, in order")
                }
                // Nothing more arrives: a node's own publishes do not come back through Redis.
                a.server.publish("room", Data(#""end""#.utf8))
                #expect(try await readData(onA, count: 1) == [#""end""#])
                #expect(try await readData(onB, count: 1) == [#""end""#])
                #expect(a.broker.statistics.received == 50 && b.broker.statistics.received == 51)
                #expect(a.broker.statistics.published == 51 && a.broker.statistics.dropped == 0)

                // What is not JSON never reaches a client: dropped and counted.
                _ = try await redis.command(["PUBLISH", "test:room", "not json"])
                // Another program publishing raw JSON on the channel reaches the subscribers too.
                _ = try await redis.command(["PUBLISH", "test:room", #"{"external":true}"#])
                #expect(try await readData(onA, count: 1) == [#"{"external":true}"#])
                #expect(try await readData(onB, count: 1) == [#"{"external":true}"#])
                #expect(a.broker.statistics.rejected == 1 && b.broker.statistics.rejected == 1)
                try await onA.close()
                try await onB.close()
            }
        }
    }

    #if TLS
    @Test func twoNodesShareATLSRedis() async throws {
        let redis = try await RedisTestServer.start(tls: try makeSelfSignedCertificate())
        do {
            try await withTwoNodes(redis) { a, b in
                let onA = try await subscriber(a.server, port: a.port, topic: "room", user: "ann")
                let onB = try await subscriber(b.server, port: b.port, topic: "room", user: "bob")
                _ = try await eventuallyAsync("both subscribed") { try await redis.subscriberCount("test:room") == 2 ? true : nil }
                a.server.publish("room", Data(#""over tls""#.utf8))
                #expect(try await readData(onB, count: 1) == [#""over tls""#])
                #expect(try await readData(onA, count: 1) == [#""over tls""#])
                try await onA.close()
                try await onB.close()
            }
        } catch {
            try? await redis.stop()
            throw error
        }
        try await redis.stop()
    }
    #endif

    @Test func aSessionWithManyLongTopicsCannotMakeRedisDropTheNodesLink() async throws {
        try await withRedis { redis in
            // A tight pub/sub output buffer, so the old 512-channel commands overflowed it at
            // once (each channel's confirmation repeats its name): 1,024 topics of 255 bytes.
            _ = try await redis.command(["CONFIG", "SET", "client-output-buffer-limit", "pubsub 128kb 64kb 60"])
            try await withTwoNodes(redis, prefix: "ob:") { a, _ in
                let socket = try await TestWebSocket.live(port: a.port, user: "many")
                let session = try await eventually("the session") { a.server.sessions.first }
                for index in 0..<1_024 {
                    let topic = "t\(index):" + String(repeating: "x", count: 255 - "t\(index):".utf8.count)
                    #expect(a.server.subscribe(session, topic))
                }
                _ = try await eventuallyAsync("1,024 channels subscribed", timeout: .seconds(20)) {
                    try await redis.activeChannels("ob:*").count == 1_024 ? true : nil
                }
                try await socket.close()
                _ = try await eventuallyAsync("every channel unsubscribed", timeout: .seconds(20)) {
                    try await redis.activeChannels("ob:*").isEmpty ? true : nil
                }
                #expect(a.broker.statistics.reconnects == 0 && a.broker.isConnected, "the node lost its Redis link")
                // And the link still carries messages.
                let onA = try await subscriber(a.server, port: a.port, topic: "after", user: "ann")
                _ = try await eventuallyAsync("ob:after subscribed") { try await redis.subscriberCount("ob:after") == 1 ? true : nil }
                a.server.publish("after", Data(#""still here""#.utf8))
                #expect(try await readData(onA, count: 1) == [#""still here""#])
                try await onA.close()
            }
        }
    }

    @Test func redisChannelIsSubscribedOnlyWhileNeeded() async throws {
        try await withRedis { redis in
            try await withTwoNodes(redis, prefix: "rc:") { a, _ in
                #expect(try await redis.activeChannels("rc:*").isEmpty)
                let first = try await subscriber(a.server, port: a.port, topic: "news", user: "ann")
                let second = try await subscriber(a.server, port: a.port, topic: "news", user: "bea")
                _ = try await eventuallyAsync("rc:news subscribed") {
                    try await redis.activeChannels("rc:*") == ["rc:news"] ? true : nil
                }
                #expect(try await redis.subscriberCount("rc:news") == 1, "one SUBSCRIBE per node, not per session")

                try await first.close()
                _ = try await eventually("one subscriber left") { a.server.subscriberCount("news") == 1 ? true : nil }
                try await Task.sleep(nanoseconds: 100_000_000)
                #expect(try await redis.activeChannels("rc:*") == ["rc:news"], "still needed by the second session")

                try await second.close()
                _ = try await eventuallyAsync("rc:news unsubscribed") {
                    try await redis.activeChannels("rc:*").isEmpty ? true : nil
                }
                // The broker counts the UNSUBSCRIBE when Redis's answer reaches it, a moment later.
                _ = try await eventually("the broker to count it") { a.broker.statistics.subscribedChannels == 0 ? true : nil }

                // Churn ends in the right state: subscribed exactly while a session is.
                for round in 0..<20 {
                    let socket = try await subscriber(a.server, port: a.port, topic: "churn", user: "u\(round)")
                    try await socket.close()
                    _ = try await eventually("churn empty") { a.server.subscriberCount("churn") == 0 ? true : nil }
                }
                let last = try await subscriber(a.server, port: a.port, topic: "churn", user: "last")
                _ = try await eventuallyAsync("only rc:churn subscribed") {
                    try await redis.activeChannels("rc:*") == ["rc:churn"] ? true : nil
                }
                try await last.close()
                _ = try await eventuallyAsync("nothing subscribed") { try await redis.activeChannels("rc:*").isEmpty ? true : nil }
            }
        }
    }

    @Test func nodesRecoverWhenRedisRestarts() async throws {
        let metrics = TestMetrics()  // both brokers report here: the counters add up
        try await withRedis { redis in
            try await withTwoNodes(redis, configure: { $0.metricsFactory = metrics; $0.maxPublishWait = .seconds(3_600) }) { a, b in
                let onA = try await subscriber(a.server, port: a.port, topic: "room", user: "ann")
                let onB = try await subscriber(b.server, port: b.port, topic: "room", user: "bob")
                _ = try await eventuallyAsync("both subscribed") { try await redis.subscriberCount("test:room") == 2 ? true : nil }
                b.server.publish("room", Data("1".utf8))
                #expect(try await readData(onA, count: 1) == ["1"])
                #expect(try await readData(onB, count: 1) == ["1"])

                try await redis.stop()
                _ = try await eventually("both nodes see Redis gone") {
                    a.broker.isFullyDisconnected && b.broker.isFullyDisconnected ? true : nil
                }
                // Local pub/sub keeps working; the remote copies wait for Redis (within
                // maxPublishWait and maxPendingPublishBytes), in order.
                // (200: a burst within the session's queue of 256, so this is not about slow consumers.)
                for index in 0..<200 { #expect(a.server.publish("room", Data("\(index)".utf8))) }
                #expect(try await readData(onA, count: 200) == (0..<200).map(String.init))
                #expect(a.broker.statistics.dropped == 0 && a.broker.statistics.published == 0)
                #expect(a.broker.statistics.waiting == 200)
                #expect(try metrics.expectGauge("mizu_live_broker_publishes_waiting").lastValue == 200)
                #expect(try metrics.expectGauge("mizu_live_broker_connected").lastValue == 0)
                #expect(metrics.counterTotal(label: "mizu_live_broker_reconnects_total") == 0)

                try await redis.restart()
                _ = try await eventually("both nodes reconnected", timeout: .seconds(10)) { a.broker.isConnected && b.broker.isConnected ? true : nil }
                // The 200 went out when A's link came back (B got those published after its own
                // SUBSCRIBE: a topic without history has no stream to catch up from).
                _ = try await eventually("the queued publishes sent") { a.broker.statistics.published == 200 ? true : nil }
                #expect(a.broker.statistics.waiting == 0)
                _ = try await eventuallyAsync("both re-subscribed") { try await redis.subscriberCount("test:room") == 2 ? true : nil }
                b.server.publish("room", Data(#""after""#.utf8))
                a.server.publish("room", Data(#""after-a""#.utf8))
                // Local delivery is immediate and remote goes through Redis: only each publisher's order is defined.
                #expect(Set(try await readData(onA, count: 2)) == [#""after""#, #""after-a""#])
                var onBReceived: [String] = []
                while !(onBReceived.contains(#""after""#) && onBReceived.contains(#""after-a""#)) {
                    onBReceived += try await readData(onB, count: 1)
                }
                let queued = onBReceived.compactMap { Int($0) }
                #expect(queued == Array(queued.first.map { $0..<($0 + queued.count) } ?? 0..<0), "the queued ones B got, in order: \(queued)")
                #expect(a.broker.statistics.dropped == 0 && b.broker.statistics.dropped == 0)
                #expect(metrics.counterTotal(label: "mizu_live_broker_publishes_dropped_total") == 0)
                #expect(metrics.counterTotal(label: "mizu_live_broker_reconnects_total") == 4, "two connections per node")
                #expect(try metrics.expectGauge("mizu_live_broker_connected").lastValue == 1)
                #expect(metrics.counterTotal(label: "mizu_live_broker_publishes_total") >= 3)
                #expect(metrics.counterTotal(label: "mizu_live_broker_messages_received_total") >= 3)
                try await onA.close()
                try await onB.close()
            }
        }
    }

    @Test func aStalledRedisCostsBoundedMemory() async throws {
        try await withRedis { redis in
            try await withTwoNodes(
                // The stall lasts as long as the publishing loop below, which under ThreadSanitizer
                // on a busy machine passed two health-check intervals: the links were dropped
                // and B's subscription missed what A wrote meanwhile (a topic without history
                // has nothing to catch up from). Detecting a stall is aSilentRedisIsDetected's
                // subject; here the health check stays out of the way.
                redis, configure: { $0.maxPendingPublishBytes = 256 * 1024; $0.healthCheckInterval = .seconds(3_600) },
                // What Redis took arrives in one burst: room for all of it, so the test is not about slow consumers.
                options: { $0.queueSize = 100_000 }
            ) { a, b in
                let onB = try await subscriber(b.server, port: b.port, topic: "bulk", user: "bob")
                _ = try await eventuallyAsync("subscribed") { try await redis.subscriberCount("test:bulk") == 1 ? true : nil }
                redis.pause()
                let payload = "\"" + String(repeating: "x", count: 1000) + "\""
                let total = 20_000  // 20 MB: more than the socket buffers and the pending limit together
                for _ in 0..<total { a.server.publish("bulk", Data(payload.utf8)) }
                let stalled = a.broker.statistics
                #expect(stalled.dropped > 0, "past the pending limit, publishes are dropped")
                #expect(stalled.published < total)
                redis.resume()
                _ = try await eventually("every publish written or dropped") {
                    let now = a.broker.statistics
                    return now.published + now.dropped == total ? now : nil
                }
                // What Redis took arrives; then delivery goes on normally.
                let published = a.broker.statistics.published
                _ = try await readData(onB, count: published)
                a.server.publish("bulk", Data(#""after""#.utf8))
                #expect(try await readData(onB, count: 1) == [#""after""#])
                try await onB.close()
            }
        }
    }

    @Test func aSilentRedisIsDetectedAndReconnected() async throws {
        try await withRedis { redis in
            // Deadlines a healthy Redis must beat: scaled with the run's patience, or a slow run's
            // health checks fail on their own and the links flap while the test publishes.
            try await withTwoNodes(redis, configure: {
                $0.healthCheckInterval = Patience.scaled(.milliseconds(100))
                $0.connectTimeout = Patience.scaled(.milliseconds(300))
            }) { a, b in
                let onA = try await subscriber(a.server, port: a.port, topic: "room", user: "ann")
                _ = try await eventuallyAsync("subscribed") { try await redis.subscriberCount("test:room") == 1 ? true : nil }
                // A stalled Redis keeps its sockets open: only the missing PONGs tell.
                redis.pause()
                _ = try await eventually("both nodes notice") { a.broker.isFullyDisconnected && b.broker.isFullyDisconnected ? true : nil }
                redis.resume()
                _ = try await eventually("both nodes reconnect", timeout: .seconds(10)) { a.broker.isConnected && b.broker.isConnected ? true : nil }
                _ = try await eventuallyAsync("re-subscribed") { try await redis.subscriberCount("test:room") == 1 ? true : nil }
                b.server.publish("room", Data(#""after the stall""#.utf8))
                #expect(try await readData(onA, count: 1) == [#""after the stall""#])
                try await onA.close()
            }
        }
    }
}

/// Where the caller's stack is: the address of a local in a frame of its own.
@inline(never) func stackAddress() -> UInt {
    var marker = 0
    return withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
}
