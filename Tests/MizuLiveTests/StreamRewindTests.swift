import Foundation
@testable import MizuLive
import MizuTestSupport
import NIOCore
import Testing

/// Redis replicates asynchronously: a replica promoted after its primary died can lack the
/// primary's last writes, so a stream's top goes back below offsets already delivered (issue
/// 27). Those offsets must never be given to other messages (a subscriber that saw the lost
/// ones would drop the new ones as repeats): the stream begins a new epoch, found by the
/// publisher (its floor, the position it delivered) or by a subscriber's position check.
/// The loss is made by hand here, as the promoted replica would show it: meta offset and
/// stream entries taken back.
@Suite(.serialized, .timeLimit(.minutes(5))) struct StreamRewindTests {
    private func rewind(_ redis: RedisTestServer, _ topic: String, to offset: Int, from top: Int) async throws {
        _ = try await redis.command(["HSET", "test:history-meta:\(topic)", "o", String(offset)])
        _ = try await redis.command(["XDEL", "test:history:\(topic)"] + (offset + 1...top).map { "\($0)-1" })
    }

    private func epoch(_ redis: RedisTestServer, _ topic: String) async throws -> String? {
        try await redis.command(["HGET", "test:history-meta:\(topic)", "e"]).text
    }

    @Test func aPublisherThatDeliveredPastTheStreamsTopBeginsANewEpoch() async throws {
        try await withRedis { redis in
            try await withTwoNodes(redis, options: historyOptions(size: 1_000)) { a, _ in
                let alice = try await TestWebSocket.live(port: a.port, user: "alice")
                _ = try await alice.recover("h:chat")
                for index in 1...3 { #expect(a.server.publish("h:chat", Data("\(index)".utf8))) }
                var before: [Received] = []
                while before.count < 3 { before.append(try await alice.readMessage()) }
                #expect(before.map(\.offset) == [1, 2, 3])
                _ = try await eventually("A's floor at 3") { a.broker.floors.floor(of: "h:chat")?.offset == 3 ? true : nil }
                try await self.rewind(redis, "h:chat", to: 1, from: 3)
                #expect(a.server.publish("h:chat", Data("4".utf8)))
                let notice = try await alice.readMessage()
                #expect(notice.isNotice && notice.epoch != before[0].epoch, "\(notice)")
                let next = try await alice.readMessage()
                #expect(next.offset == 1 && next.data == "4" && next.epoch == notice.epoch, "\(next)")
                try await alice.close()
            }
        }
    }

    /// Node A publishes and delivers nothing itself (no floor); bob's node B finds the stream
    /// below what it delivered at its periodic check and begins the new epoch, before A's next
    /// publish takes offset 2 again.
    @Test func aSubscriberThatDeliveredPastTheStreamsTopBeginsANewEpoch() async throws {
        try await withRedis { redis in
            try await withTwoNodes(redis, configure: { $0.streamCheckInterval = .milliseconds(100) }, options: historyOptions(size: 1_000)) { a, b in
                let bob = try await TestWebSocket.live(port: b.port, user: "bob")
                _ = try await bob.recover("h:chat")
                for index in 1...3 { #expect(a.server.publish("h:chat", Data("\(index)".utf8))) }
                var before: [Received] = []
                while before.count < 3 { before.append(try await bob.readMessage()) }
                #expect(before.map(\.offset) == [1, 2, 3])
                #expect(a.broker.floors.floor(of: "h:chat") == nil, "A delivers nothing of the topic")
                let old = try await self.epoch(redis, "h:chat")
                try await self.rewind(redis, "h:chat", to: 1, from: 3)
                _ = try await eventuallyAsync("B began a new epoch") { () -> Bool? in
                    let now = try await self.epoch(redis, "h:chat")
                    return now != nil && now != old ? true : nil
                }
                #expect(a.server.publish("h:chat", Data("4".utf8)))
                let notice = try await bob.readMessage()
                #expect(notice.isNotice && notice.epoch != old, "\(notice)")
                let next = try await bob.readMessage()
                #expect(next.offset == 1 && next.data == "4" && next.epoch == notice.epoch, "\(next)")
                #expect(b.broker.statistics.rewoundStreams >= 1 && a.broker.statistics.rewoundStreams == 0)
                try await bob.close()
            }
        }
    }
}
