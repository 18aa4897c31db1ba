import Foundation
@testable import MizuLive
import MizuTestSupport
import NIOCore

/// A real Redis Cluster on 127.0.0.1 for one test: `masters` primaries with `replicas` each,
/// made by `redis-cli --cluster create`, short node timeout (a failover takes about a second).
final class RedisTestCluster: Sendable {
    let nodes: [RedisTestServer]
    private let directory: URL

    private init(nodes: [RedisTestServer], directory: URL) {
        self.nodes = nodes
        self.directory = directory
    }

    static func start(masters: Int = 3, replicas: Int = 1) async throws -> RedisTestCluster {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var nodes: [RedisTestServer] = []
        do {
            for index in 0..<masters * (1 + replicas) {
                nodes.append(try await RedisTestServer.start(extraArguments: [
                    "--cluster-enabled", "yes", "--cluster-config-file", directory.appendingPathComponent("nodes-\(index).conf").path,
                    "--cluster-node-timeout", "1000", "--dir", directory.path,
                ]))
            }
            let cluster = RedisTestCluster(nodes: nodes, directory: directory)
            try await cluster.create(replicas: replicas)
            try await cluster.waitForReplicas(replicas)
            return cluster
        } catch {
            for node in nodes { try? await node.stop() }
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    private func create(replicas: Int) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        process.arguments = ["--cluster", "create"] + self.nodes.map { "127.0.0.1:\($0.port)" } + ["--cluster-replicas", String(replicas), "--cluster-yes"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        _ = try await eventually("redis-cli --cluster create to finish", timeout: .seconds(60)) { process.isRunning ? nil : true }
        guard process.terminationStatus == 0 else { throw CreateFailed(status: process.terminationStatus) }
        for node in self.nodes {
            _ = try await eventuallyAsync("cluster_state:ok on \(node.port)", timeout: .seconds(3)) { () -> Bool? in
                guard case .bulkString(let info?) = try await node.command(["CLUSTER", "INFO"]) else { return nil }
                return String(buffer: info).contains("cluster_state:ok") ? true : nil
            }
        }
    }

    /// Waits until the slot map lists every primary with its replicas (they join after the
    /// slots are assigned).
    func waitForReplicas(_ replicas: Int) async throws {
        let asked = ClusterNodeAddress(host: "127.0.0.1", port: self.nodes[0].port)
        _ = try await eventuallyAsync("every primary with \(replicas) replicas", timeout: .seconds(3)) { () -> Bool? in
            guard let topology = ClusterTopology(slotsReply: try await self.nodes[0].command(["CLUSTER", "SLOTS"]), asked: asked),
                  topology.coversEverySlot, topology.shards.allSatisfy({ $0.replicas.count == replicas })
            else { return nil }
            return true
        }
    }

    struct CreateFailed: Error, CustomStringConvertible {
        let status: Int32
        var description: String { "redis-cli --cluster create exited with \(self.status)" }
    }

    func configuration(prefix: String = "test:") throws -> Live.RedisClusterBroker.Configuration {
        var configuration = Live.RedisClusterBroker.Configuration(
            seeds: self.nodes.prefix(2).map { ("127.0.0.1", $0.port) }, node: try self.nodes[0].configuration(prefix: prefix))
        configuration.topologyRefreshInterval = .milliseconds(500)
        // A failover takes the 1 s node timeout, an election and a refresh: on a loaded
        // machine more than the default 5 s that publishes may wait for a primary.
        configuration.node.maxPublishWait = Patience.scaled(.seconds(5))
        return configuration
    }

    /// The node listening on `address`'s port.
    func node(_ address: ClusterNodeAddress) -> RedisTestServer? {
        self.nodes.first { $0.port == address.port }
    }

    func stop() async {
        for node in self.nodes { try? await node.stop() }
        try? FileManager.default.removeItem(at: self.directory)
    }
}

func withRedisCluster(_ body: (RedisTestCluster) async throws -> Void) async throws {
    let cluster = try await RedisTestCluster.start()
    do {
        try await body(cluster)
    } catch {
        await cluster.stop()
        throw error
    }
    await cluster.stop()
}
