import Foundation
import NIOCore

/// The slot map: read from the cluster, refreshed, and each change carried out (new primaries
/// connected, topics handed from their old owner's link to their new one, retired links closed).
extension Live.RedisClusterBroker {
    /// Asks each node in turn for `CLUSTER SLOTS` (a connection of its own, closed after);
    /// the first readable answer wins. A node has the connect timeout to answer, then the
    /// next is asked.
    static func readTopology(
        from nodes: [ClusterNodeAddress], configuration: Configuration, eventLoopGroup: any EventLoopGroup
    ) async throws -> ClusterTopology {
        var lastError: any Error = Live.RedisError.connectionFailed(host: "", port: 0, reason: "no cluster seed")
        var tried = Set<ClusterNodeAddress>()
        for node in nodes where tried.insert(node).inserted {
            do {
                let channel = try await RedisConnector.connect(configuration.node(node), on: eventLoopGroup.next(), callbacks: .init()).get()
                defer { channel.close(promise: nil) }
                let reply = try await RedisConnector.command(["CLUSTER", "SLOTS"], on: channel, timeout: configuration.node.connectTimeout).get()
                if case .error(let message) = reply { throw Live.RedisError.refused(command: "CLUSTER SLOTS", message: message) }
                guard let topology = ClusterTopology(slotsReply: reply, asked: node) else {
                    throw Live.RedisError.protocolViolation("unreadable CLUSTER SLOTS reply from \(node)")
                }
                return topology
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    /// A shard broker for `primary`, its messages forwarded to this broker's receivers.
    func connectShard(_ primary: ClusterNodeAddress) async throws -> Live.RedisBroker {
        let shard = try await Live.RedisBroker.connect(
            self.configuration.node(primary), sharded: true,
            slotMoved: Live.RedisBroker.SlotMovedHandler(
                moved: { [weak self] _ in self?.refreshSoon() },
                redirected: { [weak self] command, error, shard in self?.redirected(command, error, from: shard) }),
            headerID: self.headerID, publishOrder: self.publishOrder, floors: self.floors,
            eventLoopGroup: self.eventLoopGroup, logger: self.logger)
        shard.attach { [weak self] topic, data in
            self?.receivers.withLockedValue { $0.receive }?(topic, data)
        }
        shard.attachPositioned(
            receive: { [weak self] topic, data, position in self?.receivers.withLockedValue { $0.positioned }?(topic, data, position) },
            notice: { [weak self] topic, position in self?.receivers.withLockedValue { $0.notice }?(topic, position) })
        return shard
    }

    func startRefreshing() {
        let interval = self.configuration.topologyRefreshInterval
        let task = Task { [weak self] in
            while !Task.isCancelled {
                // Faster while a primary is unreachable: its replica's promotion shows in the
                // map within a few seconds, and publishes wait for it (maxPublishWait).
                let connected = self?.isConnected ?? true
                let wait = connected ? interval : min(interval, .milliseconds(250))
                try? await Task.sleep(nanoseconds: UInt64(max(wait.nanoseconds, 1_000_000)))
                guard let self, !Task.isCancelled else { return }
                self.refreshSoon()
            }
        }
        self.refreshTask.withLockedValue { $0 = task }
    }

    /// Reads the map again now (once more after the running read, if one runs).
    func refreshSoon() {
        let start = self.refreshing.withLockedValue { flags -> Bool in
            if flags.running {
                flags.again = true
                return false
            }
            flags.running = true
            return true
        }
        guard start else { return }
        Task {
            repeat { await self.refresh() } while self.refreshing.withLockedValue { flags in
                if flags.again {
                    flags.again = false
                    return true
                }
                flags.running = false
                return false
            }
        }
    }

    /// Reads the map; when it changed, connects new primaries, moves the topics whose owner
    /// changed, and closes the links of nodes that are no longer primaries. Only through
    /// ``refreshSoon()``: one at a time.
    private func refresh() async {
        let (closed, current, known) = self.state.withLockedValue { ($0.closed, $0.topology, $0.topology.primaries + $0.topology.shards.flatMap(\.replicas)) }
        guard !closed else { return }
        let seeds = self.configuration.seeds.map { ClusterNodeAddress(host: $0.host, port: $0.port) }
        let topology: ClusterTopology
        do {
            topology = try await Self.readTopology(from: known + seeds, configuration: self.configuration, eventLoopGroup: self.eventLoopGroup)
        } catch {
            self.logger.warning("could not read the Redis Cluster's slot map; keeping the last one", metadata: ["error": "\(error)"])
            return
        }
        let existing = self.state.withLockedValue { Set($0.shards.keys) }
        // Unchanged, unless a primary of it could not be connected last time: try it again.
        guard topology != current || !topology.primaries.allSatisfy(existing.contains) else { return }
        var connected: [ClusterNodeAddress: Live.RedisBroker] = [:]
        for primary in topology.primaries where !existing.contains(primary) {
            do {
                connected[primary] = try await self.connectShard(primary)
            } catch {
                self.logger.warning("could not connect to a Redis Cluster primary; its slots wait for the next refresh", metadata: ["node": "\(primary)", "error": "\(error)"])
            }
        }
        // The slots changing owner are held first: no publish may reach a new owner ahead of
        // what its old one still holds or refuses.
        var moved = Set<Int>()
        for slot in 0..<ClusterSlot.count where current.primary(of: slot) != topology.primary(of: slot) { moved.insert(slot) }
        let losing = Set(moved.compactMap { current.primary(of: $0) })
        self.hold(slots: moved, barriers: losing.count)
        let (retired, remaining) = self.state.withLockedValue { state -> ([Live.RedisBroker], [Live.RedisBroker]) in
            guard !state.closed else { return (Array(connected.values), []) }
            if state.topology != topology {
                state.topologyChanges += 1
                self.metrics.mapChanges.increment()
            }
            state.topology = topology
            state.shards.merge(connected) { old, _ in old }
            for topic in state.wanted {
                let owner = topology.primary(of: self.keyspace.slot(topic)).flatMap { state.shards[$0] == nil ? nil : $0 }
                let current = state.routes[topic]
                guard owner != current else { continue }
                let newShard = owner.flatMap { state.shards[$0] }
                // Subscribed on the new owner first: the old one hands its position over after
                // (both only queue on their event loops), so the new link reads what its
                // subscription missed from the stream.
                if let current, let oldShard = state.shards[current] {
                    newShard?.subscribeMoved(topic)
                    if let owner, newShard != nil { self.metrics.resubscribed(on: owner) }
                    oldShard.handOver(topic, to: newShard)
                } else {
                    newShard?.subscribe(topic)
                }
                state.routes[topic] = owner
            }
            let primaries = Set(topology.primaries)
            var retired: [Live.RedisBroker] = []
            for (address, shard) in state.shards where !primaries.contains(address) {
                retired.append(shard)
                state.shards[address] = nil
            }
            let remaining = losing.compactMap { primaries.contains($0) ? state.shards[$0] : nil }
            return (retired, remaining)
        }
        if topology != current {
            self.logger.info("the Redis Cluster's slot map changed", metadata: ["primaries": "\(topology.primaries.map(\.description))"])
        }
        // What waited on a retired primary goes to its slots' new owners; a primary that
        // remains has given back what it refused once its barrier is answered.
        var work: [@Sendable () async -> [ByteBuffer]] = retired.map { shard in { await shard.retire() } }
        work += remaining.map { shard in { await shard.barrier(heldSlots: self.heldSlots) } }
        // One barrier was announced per primary losing slots; retiring covers some of them,
        // and may cover more (a primary that lost no slot: it had none).
        if work.count != losing.count { self.hold(slots: [], barriers: work.count - losing.count) }
        self.runBarriers(work)
    }
}
