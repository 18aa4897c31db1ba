import Foundation
import Mizu
@testable import MizuLive
import MizuTestSupport
import NIOCore
import Testing

@Suite(.serialized, .timeLimit(.minutes(10))) struct RedisHistoryPresenceTests {
    @Test func historyIsSharedByTheNodesAndRecoversOnAnotherNode() async throws {
        try await withRedis { redis in
            try await withTwoNodes(redis, options: historyOptions(size: 10)) { a, b in
                for index in 1...3 { a.server.publish("h:chat", Data(#"{"n":\#(index)}"#.utf8)) }
                // Written through Redis: B reads what A published, in order, with one epoch.
                let page = try await eventuallyAsync("A's messages in Redis") {
                    let page = try await b.server.history("h:chat")
                    return page.publications.count == 3 ? page : nil
                }
                #expect(page.publications.map(\.position.offset) == [1, 2, 3] && page.top.offset == 3)
                let onB = try await TestWebSocket.live(port: b.port, user: "bob")
                let answer = try await onB.recover("h:chat", latest: 2)
                #expect(answer.data.contains(#""replayed":2"#) && answer.data.contains(#""epoch":"\#(page.top.epoch)""#))
                #expect(try await onB.readMessage().offset == 2)
                #expect(try await onB.readMessage().offset == 3)
                // A's own subscriber gets its publishes back through Redis, in the same order as B's.
                let onA = try await TestWebSocket.live(port: a.port, user: "ann")
                _ = try await onA.recover("h:chat")
                a.server.publish("h:chat", Data(#"{"n":4}"#.utf8))
                let live = [try await onB.readMessage(), try await onA.readMessage()]
                #expect(live.map(\.offset) == [4, 4] && live.map(\.data) == [#"{"n":4}"#, #"{"n":4}"#])
                try await onB.close()
                // B's client left at 4; A publishes 5 and 6; it comes back on A and recovers them.
                for index in 5...6 { a.server.publish("h:chat", Data(#"{"n":\#(index)}"#.utf8)) }
                _ = try await onA.readMessage()
                _ = try await onA.readMessage()
                let back = try await TestWebSocket.live(port: a.port, user: "bob")
                let recovered = try await back.recover("h:chat", from: Live.StreamPosition(offset: 4, epoch: page.top.epoch), latest: 50)
                #expect(recovered.data.contains(#""recovered":true"#) && recovered.data.contains(#""replayed":2"#))
                #expect(try await back.readMessage().data == #"{"n":5}"#)
                #expect(try await back.readMessage().data == #"{"n":6}"#)
                for socket in [onA, back] { try await socket.close() }
            }
        }
    }

    /// Size on a topic whose TTL no run outlasts; the TTL on another, whose messages must go
    /// (read until they have, however slow the machine: a fixed sleep once read a slow run's
    /// first page after the TTL had already passed).
    @Test func redisKeepsTheLastMessagesForTheTTLAndReadsCreateNothing() async throws {
        let options: (inout Live.Options) -> Void = { options in
            historyOptions()(&options)
            options.history = { topic in
                guard topic.hasPrefix("h:") else { return nil }
                return Live.HistoryPolicy(size: 3, ttl: topic == "h:short" ? .milliseconds(300) : .seconds(3600))
            }
        }
        try await withRedis { redis in
            try await withTwoNodes(redis, options: options) { a, b in
                // Reading a topic nobody published to leaves no key in Redis.
                let empty = try await b.server.history("h:none")
                #expect(empty.top == Live.StreamPosition(offset: 0, epoch: "") && empty.publications.isEmpty)
                #expect(try await redis.command(["EXISTS", "test:history-meta:h:none"]) == .integer(0))
                for index in 1...5 { a.server.publish("h:b", Data("\(index)".utf8)) }
                let page = try await eventuallyAsync("five published") {
                    let page = try await b.server.history("h:b")
                    return page.top.offset == 5 ? page : nil
                }
                #expect(page.publications.map(\.position.offset) == [3, 4, 5])  // size 3
                for index in 1...2 { a.server.publish("h:short", Data("\(index)".utf8)) }
                _ = try await eventuallyAsync("two published") {
                    try await b.server.history("h:short").top.offset == 2 ? true : nil
                }
                let later = try await eventuallyAsync("the TTL passed") {
                    let page = try await b.server.history("h:short")
                    return page.publications.isEmpty ? page : nil
                }
                #expect(later.top.offset == 2)  // gone by age, not never written
                #expect(try await b.server.history("h:b").publications.count == 3)  // the long TTL keeps its three
            }
        }
    }

    @Test func aRedisThatLostItsDataStartsANewEpoch() async throws {
        try await withRedis { redis in
            try await withTwoNodes(redis, options: historyOptions()) { a, b in
                for index in 1...2 { a.server.publish("h:e", Data("\(index)".utf8)) }
                let before = try await eventuallyAsync("two messages") {
                    let page = try await a.server.history("h:e")
                    return page.top.offset == 2 ? page.top : nil
                }
                try await redis.restart()  // no persistence: the history is gone
                _ = try await eventually("both brokers back", timeout: .seconds(10)) { a.broker.isConnected && b.broker.isConnected ? true : nil }
                let socket = try await TestWebSocket.live(port: b.port, user: "ann")
                let answer = try await socket.recover("h:e", from: before, latest: 10)
                #expect(answer.data.contains(#""recovered":false"#) && answer.data.contains(#""offset":0"#))
                #expect(!answer.data.contains(before.epoch))
                a.server.publish("h:e", Data("3".utf8))
                let next = try await socket.readMessage()
                #expect(next.offset == 1 && next.epoch != before.epoch && next.data == "3")
                try await socket.close()
            }
        }
    }

    @Test func positionsPastAnyStreamRecoverNothingAndNeverReachRedis() async throws {
        try await withRedis { redis in
            try await withTwoNodes(redis, options: historyOptions(size: 10)) { a, _ in
                a.server.publish("h:far", Data("1".utf8))
                let top = try await eventuallyAsync("the message in Redis") {
                    let page = try await a.server.history("h:far")
                    return page.top.offset == 1 ? page.top : nil
                }
                for offset in [UInt64.max, Live.StreamPosition.maxOffset + 1] {
                    let far = Live.StreamPosition(offset: offset, epoch: top.epoch)
                    // Refused by the script before, with a warning per request.
                    let page = try await a.server.history("h:far", since: far)
                    #expect(page.publications.isEmpty && !page.isComplete && page.top == top)
                    let socket = try await TestWebSocket.live(port: a.port, user: "ann")
                    let answer = try await socket.recover("h:far", from: far, latest: 5)
                    #expect(answer.data.contains(#""recovered":false"#) && answer.data.contains(#""replayed":1"#), "\(answer.data)")
                    try await socket.close()
                }
                // No position and no messages asked for: the answer still says where the stream is
                // (Redis answers COUNT 0 with nil; that read once failed with a warning).
                let plain = try await TestWebSocket.live(port: a.port, user: "bob")
                let answer = try await plain.recover("h:far", latest: 0)
                #expect(answer.data.contains(#""offset":1"#) && answer.data.contains(top.epoch), "\(answer.data)")
                try await plain.close()
                let edge = Live.StreamPosition(offset: Live.StreamPosition.maxOffset, epoch: top.epoch)
                #expect(try await a.server.history("h:far", since: edge).publications.isEmpty, "the largest offset is still read")
            }
        }
    }

    @Test func recoveryThroughRedisRacingPublishesHasNoGapAndNoDuplicate() async throws {
        try await withRedis { redis in
            try await withTwoNodes(redis, options: historyOptions(size: 10_000, queueSize: 100_000)) { a, b in
                try await assertRaceFreeRecovery(publishTo: a.server, recoverOn: b.port, topic: "h:race", iterations: 15)
                // The history is read only once Redis confirmed the subscription, so the live
                // stream starts where the read ended: nothing for the gap repair to fill (which
                // would otherwise hide a read made too early, at the cost of a stream read: 5-7
                // repairs in 15 recoveries).
                #expect(b.broker.statistics.streamGaps == 0)
            }
        }
    }

    /// A node that shuts down cleanly takes its members along at once (no wait for the expiry):
    /// closing the broker sends what the closing sessions queued before it hangs up.
    @Test func aNodeShuttingDownRemovesItsMembersAtOnce() async throws {
        try await withRedis { redis in
            try await withTwoNodes(redis, options: presenceOptions(expiry: .seconds(60))) { a, b in
                let ann = try await TestWebSocket.live(port: a.port, user: "ann")
                try await ann.subscribe("room")
                _ = try await eventuallyAsync("ann present") { try await b.server.presenceCount("room") == 1 ? true : nil }
                async let shutdown: Void = a.server.shutdown(timeout: Patience.scaled(.seconds(3)), spread: .zero)  // a loaded run is slow
                // The server's 1001 (it waits for the answer before it closes the TCP connection).
                var frame = try await ann.readFrame()
                while frame.opcode != 0x8 { frame = try await ann.readFrame() }
                #expect(frame.closeCode == 1001)
                try await ann.send(0x8, [0x03, 0xE9])  // the client answers the close
                await shutdown
                await a.broker.close()
                #expect(try await b.server.presence("room").isEmpty)
                #expect(try await redis.command(["HLEN", "test:presence:room"]) == .integer(0))
            }
        }
    }

    /// What a shared store holds is not trusted into a client's frame: members whose fields no
    /// node would write (a date past any clock, which trapped in the conversion back to
    /// milliseconds; info that is not JSON) are skipped; a history read whose clock reading is
    /// impossible is refused as a protocol violation, not computed with.
    @Test func aSharedStoreHoldingWhatNoNodeWritesIsSkippedNotTrusted() async throws {
        try await withRedis { redis in
            let broker = try await Live.RedisBroker.connect(try redis.configuration())
            do {
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                _ = try await redis.command([
                    "HSET", "test:presence:room", "ann", "\(now)\n\"ann\"", "huge", "9223372036854775807\n{}",
                    "low", "-9223372036854775808\n{}", "broken", "\(now)\n{\"a\":", "empty", "\(now)\n", "undated", "soon\n1",
                ])
                let members = try await broker.presence("room")
                #expect(members.map(\.session) == ["ann"] && members.first?.info == Data("\"ann\"".utf8))
            } catch {
                await broker.close()
                throw error
            }
            await broker.close()
        }
        let reply = { (now: String) in
            RESPValue.array([.bulkString(ByteBuffer(string: "e")), .bulkString(ByteBuffer(string: "0")), .bulkString(ByteBuffer(string: now)), .array([])])
        }
        #expect(try Live.RedisBroker.parseRead(reply("1765000000000")).now == 1_765_000_000_000)
        for impossible in ["-9223372036854775808", "-1", "9007199254740993"] {
            #expect(throws: Live.RedisError.self, "\(impossible)") { try Live.RedisBroker.parseRead(reply(impossible)) }
        }
    }

    /// Presence that cannot be queued for Redis (the pending bytes would pass the limit) is
    /// said in the log, not dropped in silence.
    @Test func presenceThatRedisCannotTakeIsLogged() async throws {
        try await withRedis { redis in
            var configuration = try redis.configuration()
            configuration.maxPendingPublishBytes = 256  // smaller than one presence script
            let log = CapturedLog()
            let broker = try await Live.RedisBroker.connect(configuration, logger: log.logger)
            do {
                try await withLiveServer({ presenceOptions()(&$0); $0.broker = broker }) { server, _, port in
                    let ann = try await TestWebSocket.live(port: port, user: "ann")
                    try await ann.subscribe("room")
                    let line = try await eventually("the warning") { log.all.first { $0.message.hasPrefix("presence not written to Redis") } }
                    #expect(line.level == .warning && line.metadata["topic"] == "room")
                    #expect(try await redis.command(["HLEN", "test:presence:room"]) == .integer(0))
                    _ = server
                    try await ann.close()
                }
            } catch {
                await broker.close()
                throw error
            }
            await broker.close()
        }
    }

    /// Reads (history, presence) count against `maxPendingPublishBytes` like publishes: one
    /// that would pass it is refused with `overloaded`, never queued without bound, and the
    /// publishes that fit still go through.
    @Test func readsThatWouldPassThePendingBoundAreRefused() async throws {
        try await withRedis { redis in
            var configuration = try redis.configuration()
            configuration.maxPendingPublishBytes = 256  // smaller than either read script
            let broker = try await Live.RedisBroker.connect(configuration)
            do {
                try await withLiveServer({ presenceOptions()(&$0); $0.broker = broker }) { server, _, _ in
                    await #expect(throws: Live.RedisError.overloaded) { try await server.presence("room") }
                    await #expect(throws: Live.RedisError.overloaded) { try await server.presenceCount("room") }
                    // A plain publish is smaller than the bound: it still reaches Redis.
                    server.publish("room", Data(#"{"n":1}"#.utf8))
                    _ = try await eventually("the publish sent") { broker.statistics.published == 1 ? true : nil }
                    #expect(broker.statistics.dropped == 0)
                }
            } catch {
                await broker.close()
                throw error
            }
            await broker.close()
        }
    }

    @Test func presenceSpansNodesAndADeadNodesMembersExpire() async throws {
        // A node refreshes its members well inside the expiry, but only as fast as its loop
        // runs: the expiry is a deadline a healthy node must beat, so it is scaled by the
        // patience (300 ms idle; a loaded ThreadSanitizer run once missed a fixed 900 ms).
        let expiry = Patience.scaled(TimeAmount.milliseconds(300))
        try await withRedis { redis in
            try await withTwoNodes(redis, options: presenceOptions(expiry: expiry)) { a, b in
                let ann = try await TestWebSocket.live(port: a.port, user: "ann")
                try await ann.subscribe("room")
                // Node A writes ann to Redis on its next flush: a snapshot reflects what Redis has.
                _ = try await eventuallyAsync("ann in Redis") { try await b.server.presence("room").count == 1 ? true : nil }
                let bob = try await TestWebSocket.live(port: b.port, user: "bob")
                try await bob.subscribe("room:presence")
                try await bob.subscribe("room")
                // Bob's snapshot, read from Redis, has ann (on the other node) and bob.
                let snapshot = try await eventuallyAsync("bob's snapshot") { () -> Received? in
                    let message = try await bob.readMessage()
                    return message.data.contains(#""type":"snapshot""#) ? message : nil
                }
                #expect(snapshot.data.contains(#""info":"ann""#) && snapshot.data.contains(#""info":"bob""#))
                let both = try await a.server.presence("room")
                // Earliest first; two joins in the same millisecond may come either way.
                #expect(both.map { String(decoding: $0.info, as: UTF8.self) }.sorted() == [#""ann""#, #""bob""#])
                #expect(zip(both, both.dropFirst()).allSatisfy { $0.joinedAt <= $1.joinedAt })
                // Members outlive several expiries while their node refreshes them: each one's
                // deadline in Redis moves on by more than two expiries, and both are still
                // counted. (Seen in Redis rather than after a sleep: how soon a refresh comes is
                // the loop's speed, which a loaded run stretches.)
                func deadlines() async throws -> [Double] {
                    guard case .array(let items?) = try await redis.command(["ZRANGE", "test:presence-expiry:room", "0", "-1", "WITHSCORES"]) else { return [] }
                    return stride(from: 1, to: items.count, by: 2).compactMap { index in
                        guard case .bulkString(let bytes?) = items[index] else { return nil }
                        return Double(String(buffer: bytes))
                    }
                }
                let joined = try await deadlines()
                #expect(joined.count == 2)
                let later = (joined.max() ?? 0) + 2 * Double(expiry.nanoseconds / 1_000_000)
                _ = try await eventuallyAsync("both refreshed past two expiries") { () -> Bool? in
                    let now = try await deadlines()
                    guard now.count == 2, now.allSatisfy({ $0 >= later }) else { return nil }
                    return try await b.server.presenceCount("room") == 2 ? true : nil
                }
                // Ann leaves: gone at once, everywhere.
                try await ann.close()
                _ = try await eventuallyAsync("ann gone") { try await b.server.presence("room").count == 1 ? true : nil }
                // B's node dies (its broker stops: no leave, no refresh): bob expires.
                await b.broker.close()
                // Within the expiry and a sweep; the wait (15x the expiry, both scaled) only
                // bounds how slow the machine may be: without expiry bob stays forever.
                _ = try await eventuallyAsync("bob expired", timeout: .milliseconds(4_500)) { try await a.server.presence("room").isEmpty ? true : nil }
                try? await bob.close()
            }
        }
    }
}
