import Foundation
@testable import MizuLive
import MizuTestSupport
import NIOCore
import Testing

/// What is held for a slot is written only once nothing of that slot can still be in flight
/// on any primary: a publish sent to the new owner before the slot was held would otherwise
/// come back (refused for order) after a held later one was written with its predecessor
/// taken for settled, and land behind it (one planned-failover run under load saw 57 of them).
@Suite(.timeLimit(.minutes(3)))
struct ClusterBarrierTests {
    @Test func aSlotHeldIsWrittenOnlyAfterABarrierOnEveryPrimary() async throws {
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
        let (owner, other) = try broker.state.withLockedValue { state in
            let owner = try #require(state.topology.primary(of: slot).flatMap { state.shards[$0] })
            return (owner, try #require(state.shards.values.first { $0 !== owner }))
        }
        // A command of the slot, as a shard would give it back.
        var command = ByteBuffer()
        RESPValue.writeCommand(["EVAL", "return 1", "1", "mizu:{h:x}:probe"], into: &command)
        #expect(Live.RedisClusterBroker.slot(ofCommand: command) == slot)
        // Another primary cannot answer its barrier for a while.
        let paused = try #require(cluster.node(ClusterNodeAddress(host: "127.0.0.1", port: other.configuration.port)))
        _ = try await paused.command(["CLIENT", "PAUSE", "4000", "ALL"])
        broker.redirected(command, .tryAgain, from: owner)
        try await Task.sleep(for: .milliseconds(500))
        #expect(!broker.held.withLockedValue { $0.isEmpty }, "written before every primary answered its barrier")
        _ = try await eventually("written once the paused primary answered", timeout: .seconds(10)) {
            broker.held.withLockedValue { $0.isEmpty } ? true : nil
        }
        #expect(broker.statistics.dropped == 0)
    }
}
