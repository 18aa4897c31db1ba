import Dispatch
import Foundation
@testable import MizuLive
import MizuTestSupport
import NIOCore
import Testing

/// A primary that loses its slots gives back what waited on it oldest first: the commands
/// written and never answered (it was paused by the failover) before the ones still queued.
/// Newer first, a later publish was written with its predecessor taken for settled and every
/// older one became a no-op (a planned failover under load lost 761 messages of one room).
@Suite(.timeLimit(.minutes(3)))
struct ClusterRetireOrderTests {
    @Test func aRetiredPrimaryGivesBackItsPublishesInPublishOrder() async throws {
        let cluster = try await RedisTestCluster.start(masters: 3, replicas: 0)
        do {
            let broker = try await Live.RedisClusterBroker.connect(try cluster.configuration(prefix: "mizu:"))
            do {
                try await self.check(broker, cluster)
            } catch {
                await broker.close()
                throw error
            }
            await broker.close()
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    private func check(_ broker: Live.RedisClusterBroker, _ cluster: RedisTestCluster) async throws {
        let slot = broker.keyspace.slot("h:x")
        let owner = try broker.state.withLockedValue { state in try #require(state.topology.primary(of: slot).flatMap { state.shards[$0] }) }
        let node = try #require(cluster.node(ClusterNodeAddress(host: "127.0.0.1", port: owner.configuration.port)))
        let policy = Live.HistoryPolicy(size: 1000, ttl: .seconds(60))
        // The failover's pause: the primary takes the commands and answers none.
        _ = try await node.command(["CLIENT", "PAUSE", "5000", "ALL"])
        for number in 1...20 { #expect(broker.publish("h:x", Data("\(number)".utf8), history: policy)) }
        _ = try await eventually("20 publishes written, unanswered") { owner.statistics.waiting == 0 ? true : nil }
        // A starved event loop: the next publishes stay queued, and the close waits for the gate.
        let gate = DispatchSemaphore(value: 0)
        owner.eventLoop.execute { gate.wait() }
        for number in 21...25 { #expect(broker.publish("h:x", Data("\(number)".utf8), history: policy)) }
        #expect(owner.statistics.waiting == 5)
        let retired = Task { await owner.retire() }
        _ = try await eventually("the queue taken") { owner.statistics.waiting == 0 ? true : nil }
        gate.signal()
        let sequences = await retired.value.compactMap { PublishOrder.inspect($0)?.sequence }
        #expect(sequences.count == 25)
        #expect(sequences == sequences.sorted(), "given back newer before older: \(sequences)")
    }
}
