import Foundation
@testable import MizuLive
import MizuTestSupport
import NIOCore
import Testing

/// History publishes keep their topic's order when a Redis Cluster refuses part of a
/// pipelined batch (issue 27): each names its topic's predecessor, Redis refuses it (`ORDER`)
/// while that one is not applied, and what is held is sent again in order.
@Suite(.serialized, .timeLimit(.minutes(5))) struct PublishOrderTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func eachTopicNamesItsPredecessorWithinTheWindow() {
        var order = PublishOrder(window: .seconds(10))
        #expect(order.next("a", now: self.start) == (1, 0), "a topic's first publish has no predecessor")
        #expect(order.next("b", now: self.start) == (2, 0))
        #expect(order.next("a", now: self.start + .seconds(1)) == (3, 1))
        #expect(order.next("b", now: self.start + .seconds(9)) == (4, 2))
        // Redis forgets a topic's last number after twice the window: not named past it.
        #expect(order.next("a", now: self.start + .seconds(11)) == (5, 0))
        #expect(order.next("a", now: self.start + .seconds(12)) == (6, 5))
    }

    @Test func topicsOutsideTheWindowAreForgottenInAmortisedSweeps() {
        var order = PublishOrder(window: .seconds(1), sweepAt: 4)
        for index in 0..<5 { _ = order.next("old-\(index)", now: self.start) }
        #expect(order.remembered == 5, "swept past the threshold, but nothing was stale")
        for index in 5..<10 { _ = order.next("old-\(index)", now: self.start) }
        #expect(order.remembered == 10, "the next sweep waits for twice the live topics")
        _ = order.next("new", now: self.start + .seconds(2))
        #expect(order.remembered == 1, "the ten stale ones forgotten")
        #expect(order.next("old-0", now: self.start + .seconds(2)).predecessor == 0)
    }

    @Test func aCommandsPredecessorIsReadAndClearedInPlace() throws {
        let command = Self.publishCommand(topic: "h:x", sequence: 42, predecessor: 41)
        let read = try #require(PublishOrder.inspect(command))
        #expect(read.publisherKey == "mizu:{h:x}:history-publisher:node" && read.sequence == 42 && read.predecessor == 41)
        let cleared = PublishOrder.clearingPredecessor(of: command)
        #expect(PublishOrder.inspect(cleared)?.predecessor == 0 && PublishOrder.inspect(cleared)?.sequence == 42)
        #expect(cleared.readableBytes == command.readableBytes)
        var other = ByteBuffer()
        Live.RedisBroker.writeEval(Live.RedisBroker.presenceLeaveScript, keys: 2, [.text("a"), .text("b"), .text("s")], into: &other)
        #expect(PublishOrder.inspect(other) == nil, "only the publish script carries an order")
        #expect(PublishOrder.argument(7) == "00000000000000000007" && PublishOrder.argument(UInt64.max).count == PublishOrder.width)
    }

    /// Held in reply order: a publish keeps its predecessor only when that is the publish
    /// held just before it for its topic; otherwise the predecessor is settled (applied, or
    /// given up) and must not refuse it for ever.
    @Test func heldPublishesKeepOnlyPredecessorsHeldBeforeThem() {
        typealias Redirected = Live.RedisClusterBroker.Redirected
        func entry(_ topic: String, _ sequence: UInt64, _ predecessor: UInt64) -> Redirected {
            Redirected(command: Self.publishCommand(topic: topic, sequence: sequence, predecessor: predecessor), slot: 1, since: self.start)
        }
        var held = Live.RedisClusterBroker.Held()
        held.refused = [entry("x", 5, 4), entry("y", 6, 3), entry("x", 7, 5)]
        // 8 was given up (a Redis error that is not a redirect): 9 would wait for it for ever.
        held.fresh = [entry("x", 9, 8), entry("x", 10, 9)]
        held.settlePredecessors()
        let predecessors = (held.refused + held.fresh).map { PublishOrder.inspect($0.command)?.predecessor }
        #expect(predecessors == [0, 0, 5, 0, 9])
        #expect((held.refused + held.fresh).map { $0.order?.predecessor } == predecessors)
    }

    /// However what is held came back (a primary giving back newer before older, as a
    /// retire once did), each topic's publishes are written in publish order, in the places
    /// its publishes held, and a predecessor that is held somewhere is kept: written first,
    /// it is applied first. Out of order, Redis would skip every older one (it applies no
    /// number below the last): 761 messages were lost that way once.
    @Test func heldPublishesAreWrittenInPublishOrderWhateverOrderTheyCameBackIn() {
        typealias Redirected = Live.RedisClusterBroker.Redirected
        func entry(_ topic: String, _ sequence: UInt64, _ predecessor: UInt64) -> Redirected {
            Redirected(command: Self.publishCommand(topic: topic, sequence: sequence, predecessor: predecessor), slot: 1, since: self.start)
        }
        var held = Live.RedisClusterBroker.Held()
        // x:1 was applied; x:4 and x:5 came back before x:2 and x:3, y:7 between them.
        held.refused = [entry("x", 4, 3), entry("x", 5, 4), entry("y", 7, 6), entry("x", 2, 1)]
        held.fresh = [entry("x", 3, 2), entry("x", 8, 5)]
        held.settlePredecessors()
        let all = held.refused + held.fresh
        #expect(all.map { $0.order?.sequence } == [2, 3, 7, 4, 5, 8])
        #expect(all.map { PublishOrder.inspect($0.command)?.predecessor } == [0, 2, 0, 3, 4, 5])
        #expect(all.map { $0.order?.predecessor } == [0, 2, 0, 3, 4, 5])
        #expect(held.refused.count == 4 && held.fresh.count == 2)
    }

    /// The script itself, on a real Redis: once-only by number, in order by predecessor.
    @Test func theScriptRefusesAPublishWhosePredecessorIsNotApplied() async throws {
        try await withRedis { redis in
            func publish(_ sequence: UInt64, after predecessor: UInt64, _ data: String) async throws -> RESPValue {
                var command = Self.publishCommand(topic: "h:x", sequence: sequence, predecessor: predecessor, data: data)
                return try await redis.command(Self.words(&command))
            }
            #expect(try await publish(1, after: 0, "a") == .integer(1))
            let refused = try await publish(3, after: 2, "c")
            #expect(refused == .error("ORDER publish 3 waits for 00000000000000000002"), "\(refused)")
            #expect(try await publish(2, after: 1, "b") == .integer(2))
            #expect(try await publish(3, after: 2, "c") == .integer(3))
            #expect(try await publish(2, after: 1, "b") == .integer(0), "applied once")
            // A predecessor never applied (given up) refuses until cleared.
            if case .error(let message) = try await publish(5, after: 4, "e") { #expect(message.hasPrefix("ORDER")) } else { Issue.record("5 applied") }
            var cleared = PublishOrder.clearingPredecessor(of: Self.publishCommand(topic: "h:x", sequence: 5, predecessor: 4, data: "e"))
            #expect(try await redis.command(Self.words(&cleared)) == .integer(4))
        }
    }

    /// The bug this guards: a primary refuses part of a pipelined batch (CLUSTERDOWN) and
    /// applies the rest once the slot is served again. Made exact on one cluster-enabled
    /// node: x's slot unserved, the batch [x:1, y:1, x:2] written while writes are paused,
    /// so x:1 is refused, y:1 waits at the pause, the slot is served again, then the pause
    /// ends and x:2 runs. Without the predecessor check x:2 is applied first and x:1, sent
    /// again, is skipped as already applied: lost.
    @Test func aBatchRefusedInPartKeepsItsTopicsOrder() async throws {
        try await self.withOneNodeCluster { redis, broker in
            let slot = broker.keyspace.slot("h:x")
            #expect(slot != broker.keyspace.slot("h:y"))
            #expect(broker.publish("h:x", Data("0".utf8), history: self.policy) && broker.publish("h:y", Data("0".utf8), history: self.policy))
            _ = try await self.read(broker, "h:x", count: 1)
            _ = try await self.read(broker, "h:y", count: 1)
            _ = try await redis.command(["CLUSTER", "DELSLOTS", String(slot)])
            _ = try await redis.command(["CLIENT", "PAUSE", "60000", "WRITE"])
            // One batch: written by the shard's event loop after these three are queued.
            let shard = try #require(broker.shard(for: "h:x"))
            try await shard.eventLoop.submit {
                _ = broker.publish("h:x", Data("1".utf8), history: self.policy)
                _ = broker.publish("h:y", Data("1".utf8), history: self.policy)
                _ = broker.publish("h:x", Data("2".utf8), history: self.policy)
            }.get()
            _ = try await eventually("x:1 refused and held") { broker.held.withLockedValue { $0.refused.count } >= 1 ? true : nil }
            _ = try await redis.command(["CLUSTER", "ADDSLOTS", String(slot)])
            _ = try await redis.command(["CLIENT", "UNPAUSE"])
            #expect(try await self.read(broker, "h:x", count: 3) == ["0", "1", "2"])
            #expect(try await self.read(broker, "h:y", count: 2) == ["0", "1"])
            #expect(broker.statistics.dropped == 0 && broker.redirects >= 2, "x:1 and x:2 written again: \(broker.redirects)")
        }
    }

    /// A predecessor Redis refused for good (an error that is no redirect: here out of
    /// memory) is given up; the next publish, refused as out of order, is held and written
    /// again without it, not refused until it expires.
    @Test func aPredecessorRefusedForGoodDoesNotHoldItsTopic() async throws {
        try await self.withOneNodeCluster { redis, broker in
            #expect(broker.publish("h:x", Data("0".utf8), history: self.policy))
            _ = try await self.read(broker, "h:x", count: 1)
            _ = try await redis.command(["CONFIG", "SET", "maxmemory", "1"])
            #expect(broker.publish("h:x", Data("1".utf8), history: self.policy))
            _ = try await eventually("x:1 refused (OOM)") { broker.statistics.errors >= 1 ? true : nil }
            _ = try await redis.command(["CONFIG", "SET", "maxmemory", "0"])
            #expect(broker.publish("h:x", Data("2".utf8), history: self.policy))
            #expect(try await self.read(broker, "h:x", count: 2) == ["0", "2"])
            #expect(broker.statistics.dropped == 0 && broker.redirects >= 1)
        }
    }

    /// Publishes held while their slot has no primary (here: unserved) are bounded in bytes
    /// like a shard's outbox: past maxPendingPublishBytes new ones are refused (and counted),
    /// and those accepted are all written, in order, once the slot is served again.
    @Test func publishesHeldForAnUnservedSlotAreBoundedInBytes() async throws {
        let limit = 64 * 1024
        try await self.withOneNodeCluster(configure: { $0.maxPendingPublishBytes = limit; $0.maxPublishWait = .hours(1) }) { redis, broker in
            #expect(broker.publish("h:x", Data("0".utf8), history: self.policy))
            _ = try await self.read(broker, "h:x", count: 1)
            let slot = broker.keyspace.slot("h:x")
            _ = try await redis.command(["CLUSTER", "DELSLOTS", String(slot)])
            #expect(broker.publish("h:x", Data("1".utf8), history: self.policy))
            _ = try await eventually("the slot held") { broker.held.withLockedValue { $0.slots.contains(slot) } ? true : nil }
            // Until the map says the slot has no primary, a redispatch round may still write
            // what is held to the old owner, and the publishes after it go to that shard's
            // queue and come back refused: accepted already, kept past the bound (at most the
            // shard's own bound more). From here on every publish is held as it is made.
            _ = try await eventually("the map without the slot's primary") {
                broker.state.withLockedValue { $0.topology.primary(of: slot) == nil } ? true : nil
            }
            let kilobyte = String(repeating: "k", count: 1024)
            var accepted = 1
            for index in 2..<1_000 {
                guard broker.publish("h:x", Data("\(index)\(kilobyte)".utf8), history: self.policy) else { break }
                accepted = index
            }
            #expect(accepted < 999, "never refused")
            #expect(broker.held.withLockedValue { $0.bytes } <= limit)
            // Each held command carries the script, its data and its names: at least this.
            let smallestCommand = Live.RedisBroker.publishScript.utf8.count + 1024
            #expect((accepted - 1) * smallestCommand <= limit, "accepted \(accepted)")
            #expect(broker.statistics.dropped >= 1)
            _ = try await redis.command(["CLUSTER", "ADDSLOTS", String(slot)])
            let stream = try await self.read(broker, "h:x", count: accepted + 1)
            #expect(stream.map { String($0.prefix { $0 != "k" }) } == (0...accepted).map(String.init))
        }
    }

    let policy = Live.HistoryPolicy(size: 10_000, ttl: .hours(1))

    /// A topic's stream once it holds `count` messages (reads refused while the broker's map
    /// shows the slot unserved are tried again).
    private func read(_ broker: Live.RedisClusterBroker, _ topic: String, count: Int) async throws -> [String] {
        try await eventuallyAsync("\(count) messages in \(topic)'s stream") { () -> [String]? in
            guard let read = try? await broker.readHistory(topic, since: 0, count: .max, policy: self.policy), read.entries.count >= count else { return nil }
            return read.entries.map { String(decoding: $0.data, as: UTF8.self) }
        }
    }

    /// One cluster-enabled node serving every slot (a slot it stops serving refuses alone:
    /// full coverage is not required) and a cluster broker on it.
    private func withOneNodeCluster(
        configure: (inout Live.RedisBroker.Configuration) -> Void = { _ in }, _ body: (RedisTestServer, Live.RedisClusterBroker) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-order-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let redis = try await RedisTestServer.start(
            extraArguments: [
                "--cluster-enabled", "yes", "--cluster-config-file", directory.appendingPathComponent("nodes.conf").path,
                "--cluster-require-full-coverage", "no",
            ], clusterBus: true)
        do {
            _ = try await redis.command(["CLUSTER", "ADDSLOTSRANGE", "0", "16383"])
            _ = try await eventuallyAsync("the node to serve every slot") { () -> Bool? in
                let info = try await redis.command(["CLUSTER", "INFO"]).text ?? ""
                return info.contains("cluster_state:ok") ? true : nil
            }
            var node = try redis.configuration(prefix: "mizu:")
            // No link timer ends a test's step, however slow the run: a publish held for an
            // unserved slot is given up past maxPublishWait (5 s by default, which a TSan run's
            // steps can outlast), and a link behind a paused write is dropped after two silent
            // health-check intervals.
            node.maxPublishWait = .hours(1)
            node.healthCheckInterval = .hours(1)
            configure(&node)
            let broker = try await Live.RedisClusterBroker.connect(.init(seeds: [("127.0.0.1", redis.port)], node: node))
            do {
                try await body(redis, broker)
            } catch {
                await broker.close()
                throw error
            }
            await broker.close()
            try await redis.stop()
        } catch {
            try? await redis.stop()
            throw error
        }
    }

    static func publishCommand(topic: String, sequence: UInt64, predecessor: UInt64, data: String = "d") -> ByteBuffer {
        let names = RedisKeyspace(prefix: "mizu:", sharded: true)
        var bytes = ByteBuffer()
        Live.RedisBroker.writeEval(
            Live.RedisBroker.publishScript, keys: 3,
            [
                .text(names.key("history", topic)), .text(names.key("history-meta", topic)), .text(names.key("history-publisher:node", topic)),
                .text(names.channel(topic)), .bytes(Data(data.utf8)), .text("100"), .text("60000"), .text("epoch"),
                .text("60000"), .text("60000"),
            ],
            last: [String(sequence), "PUBLISH", "", "0", PublishOrder.argument(predecessor)], into: &bytes)
        return bytes
    }

    struct NotACommand: Error {}

    /// A command's words, to send it again through the test's own connection.
    static func words(_ command: inout ByteBuffer) throws -> [String] {
        guard case .array(let items?)? = try RESPParser().next(&command) else { throw NotACommand() }
        return items.map { $0.text ?? "" }
    }
}
