import Foundation
import NIOCore

/// Commands a primary refused with a cluster error (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`),
/// or that waited on a primary that no longer serves their slot: held here, and written to
/// the slot's owner once the map says who it is. History publishes and presence writes come
/// back this way (each history publish carries its sequence number, so the new owner applies
/// it once even when the old one had applied it and replicated it before it went away);
/// plain publishes are at most once and are not sent again.
///
/// Order: while a slot is held, history publishes to it are held too, behind what came back,
/// and nothing is written for a held slot until every barrier is in: a PING on each primary
/// that refused something (its reply comes after the replies of everything written before
/// it, so every refusal it had to give has come back), or a retired primary's outbox taken.
extension Live.RedisClusterBroker {
    struct Redirected {
        var command: ByteBuffer
        var slot: Int
        var since: NIODeadline
        /// A history publish's publisher key, number and predecessor (read once).
        var order: (publisherKey: String, sequence: UInt64, predecessor: UInt64)?

        init(command: ByteBuffer, slot: Int, since: NIODeadline) {
            self.command = command
            self.slot = slot
            self.since = since
            self.order = PublishOrder.inspect(command)
        }
    }

    struct Held {
        /// Came back from a primary, in the order it was written.
        var refused: [Redirected] = []
        /// Made while its slot was held, in publish order: written after `refused`.
        var fresh: [Redirected] = []
        var slots: Set<Int> = []
        /// Barriers still out: nothing is written meanwhile.
        var barriers = 0
        /// The bytes of `refused` and `fresh`: new publishes are refused past the node's
        /// ``Live/RedisBroker/Configuration/maxPendingPublishBytes``, as a shard's outbox does.
        /// What a shard gives back was accepted already (within its own outbox's bound) and
        /// is kept, so this may pass the bound by that much.
        var bytes = 0
        var isEmpty: Bool { self.refused.isEmpty && self.fresh.isEmpty }

        mutating func recountBytes() {
            self.bytes = self.refused.reduce(0) { $0 + $1.command.readableBytes } + self.fresh.reduce(0) { $0 + $1.command.readableBytes }
        }

        /// Before a write (no barrier out, so nothing of a held slot is in flight anywhere):
        /// each publisher's held publishes are put in publish order (in the places they held
        /// among the rest), and one whose predecessor is not held names none, as that
        /// predecessor is settled (applied, or given up: a predecessor never applied would
        /// otherwise refuse it for ever). However they came back, none is then written after a
        /// later one of its topic, where Redis would skip it (it applies a number once, and
        /// none below the last it applied).
        mutating func settlePredecessors() {
            var places: [String: [(fresh: Bool, index: Int)]] = [:]
            for (index, entry) in self.refused.enumerated() {
                if let key = entry.order?.publisherKey { places[key, default: []].append((false, index)) }
            }
            for (index, entry) in self.fresh.enumerated() {
                if let key = entry.order?.publisherKey { places[key, default: []].append((true, index)) }
            }
            for spots in places.values {
                var entries = spots.map { $0.fresh ? self.fresh[$0.index] : self.refused[$0.index] }
                entries.sort { ($0.order?.sequence ?? 0) < ($1.order?.sequence ?? 0) }
                let held = Set(entries.compactMap { $0.order?.sequence })
                for (spot, var entry) in zip(spots, entries) {
                    if let order = entry.order, order.predecessor != 0, !held.contains(order.predecessor) {
                        entry.command = PublishOrder.clearingPredecessor(of: entry.command)
                        entry.order?.predecessor = 0
                    }
                    if spot.fresh { self.fresh[spot.index] = entry } else { self.refused[spot.index] = entry }
                }
            }
        }
    }

    /// The slot of a command the broker writes: `EVAL script numkeys key ...` (its first key)
    /// or `SPUBLISH channel payload`; nil for anything else.
    static func slot(ofCommand bytes: ByteBuffer) -> Int? {
        var copy = bytes
        guard case .array(let items?)? = try? RESPParser().next(&copy), items.count >= 2,
              let name = items[0].text?.uppercased()
        else { return nil }
        switch name {
        case "EVAL":
            guard items.count >= 4, let keys = items[2].text.flatMap({ Int($0) }), keys >= 1, case .bulkString(let key?) = items[3] else { return nil }
            return ClusterSlot.of(key.readableBytesView)
        case "SPUBLISH":
            guard case .bulkString(let channel?) = items[1] else { return nil }
            return ClusterSlot.of(channel.readableBytesView)
        default:
            return nil
        }
    }

    /// A history publish: written by the slot's owner, or held behind what its slot waits for.
    func publishHeldInOrder(_ topic: String, _ data: Data, history: Live.HistoryPolicy) -> Bool {
        let slot = self.keyspace.slot(topic)
        let (owner, anyShard) = self.state.withLockedValue { state in
            (state.topology.primary(of: slot).flatMap { state.shards[$0] }, state.shards.values.first)
        }
        // Checked and queued under one lock: a slot held meanwhile sees this publish refused
        // (and back before its barrier), never written after what it holds.
        let accepted = self.held.withLockedValue { held -> Bool? in
            guard held.slots.contains(slot) else { return owner?.publish(topic, data, history: history) ?? false }
            guard let maker = owner ?? anyShard else { return false }
            // Checked before the command is made (it takes a publish number): the script's
            // text, the data, and a margin for the names and numbers.
            guard held.bytes + Live.RedisBroker.publishScript.utf8.count + data.count + 512 <= self.configuration.node.maxPendingPublishBytes else {
                return nil
            }
            let command = maker.historyPublishCommand(topic, data, history: history)
            held.fresh.append(Redirected(command: command, slot: slot, since: .now()))
            held.bytes += command.readableBytes
            return true
        }
        guard let accepted else {
            self.givenUp.add(1, ordering: .relaxed)
            self.metrics.givenUp.increment()
            if self.heldFullLog.allows() {
                self.logger.warning("a history publish was refused: the publishes held while their slots move passed maxPendingPublishBytes")
            }
            return false
        }
        return accepted
    }

    /// A shard's command came back (on its event loop): held with its slot, and a barrier on
    /// that shard when the slot was not held yet. One answered with `ASK` (its slot is being
    /// migrated and its topic's keys are on the importing primary already) goes there at once,
    /// behind `ASKING`, unless its slot is held (then it waits its turn like the rest): the
    /// replies of one primary come in order, so a topic's asked commands reach the importing
    /// one in publish order.
    func redirected(_ command: ByteBuffer?, _ error: ClusterRedirect, from shard: Live.RedisBroker) {
        self.metrics.redirected(by: ClusterNodeAddress(host: shard.configuration.host, port: shard.configuration.port), error)
        guard let command, let slot = Self.slot(ofCommand: command) else {
            self.refreshSoon()
            return
        }
        var importing: Live.RedisBroker?
        if case .ask(_, let target) = error {
            importing = self.state.withLockedValue { $0.shards[target] }
        }
        // A slot newly held waits for a barrier on every shard, not only this one: publishes
        // of the slot made before it was held may be in flight to another primary (the new
        // owner the map already named), and must come back (refused, held in order) or be
        // applied before anything held is written; otherwise a held publish would be written
        // with its predecessor taken for settled and land ahead of them.
        let others = self.state.withLockedValue { state in state.shards.values.filter { $0 !== shard } }
        let barrier = self.held.withLockedValue { held -> Bool? in
            if let importing, !held.slots.contains(slot), importing.enqueueAsking(command) {
                self.askedCommands.add(1, ordering: .relaxed)
                return nil
            }
            held.refused.append(Redirected(command: command, slot: slot, since: .now()))
            held.bytes += command.readableBytes
            guard held.slots.insert(slot).inserted else { return false }
            held.barriers += 1 + others.count
            return true
        }
        guard let barrier else { return }  // asked: the map stays until the migration ends
        if barrier {
            self.runBarriers(([shard] + others).map { each in { await each.barrier(heldSlots: self.heldSlots) } })
        }
        self.refreshSoon()
        self.scheduleRedispatch()
    }

    /// The slots that move away from their primaries: held, with `barriers` to come, before
    /// the map changes (so no publish reaches the new owner ahead of what the old one holds).
    func hold(slots: Set<Int>, barriers: Int) {
        self.held.withLockedValue { held in
            held.slots.formUnion(slots)
            held.barriers += barriers
        }
    }

    /// The slots held now (a barrier on a lost link takes their commands out of its queue).
    func heldSlots() -> Set<Int> {
        self.held.withLockedValue { $0.slots }
    }

    /// Runs the barriers announced to ``hold(slots:barriers:)``: each returns the commands its
    /// primary gives back (a retired one's outbox; none for a barrier PING).
    func runBarriers(_ work: [@Sendable () async -> [ByteBuffer]]) {
        for step in work {
            self.await {
                let commands = await step()
                let now = NIODeadline.now()
                let back = commands.compactMap { command in Self.slot(ofCommand: command).map { Redirected(command: command, slot: $0, since: now) } }
                self.held.withLockedValue { held in
                    held.refused += back
                    held.bytes += back.reduce(0) { $0 + $1.command.readableBytes }
                    held.slots.formUnion(back.map(\.slot))
                }
            }
        }
        self.scheduleRedispatch()
    }

    /// Runs a barrier's work, then counts it in and writes what may be written.
    private func await(_ work: @escaping @Sendable () async -> Void) {
        Task {
            await work()
            self.held.withLockedValue { $0.barriers -= 1 }
            self.scheduleRedispatch()
        }
    }

    /// Until nothing is held: read the map again (a redirect means it changed, or is about
    /// to: a failover or a migration runs) and write what is held to the owners it names.
    /// Waits between rounds double from 20 ms to 1 s; a command held past
    /// ``Live/RedisBroker/Configuration/maxPublishWait`` is given up and counted as dropped.
    func scheduleRedispatch() {
        let start = self.redispatching.withLockedValue { running -> Bool in
            defer { running = true }
            return !running
        }
        guard start else { return }
        Task {
            var delay = TimeAmount.milliseconds(20)
            while true {
                if self.redispatch() || self.state.withLockedValue({ $0.closed }) {
                    let stopped = self.redispatching.withLockedValue { running -> Bool in
                        // Something held since the last round: go on.
                        guard self.held.withLockedValue({ $0.isEmpty && $0.barriers == 0 }) else { return false }
                        running = false
                        return true
                    }
                    if stopped { return }
                }
                // A refresh of its own (never two at once: two would both hold slots and
                // connect the same new primary).
                self.refreshSoon()
                try? await Task.sleep(nanoseconds: UInt64(delay.nanoseconds))
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    /// Writes what is held, in order per slot, to the owners the map names, once no barrier
    /// is out; true when nothing is left.
    private func redispatch() -> Bool {
        let wait = self.configuration.node.maxPublishWait
        let now = NIODeadline.now()
        var givenUp = 0
        let done = self.held.withLockedValue { held -> Bool in
            guard held.barriers == 0 else { return false }
            held.settlePredecessors()
            var blocked = Set<Int>()
            var keptRefused: [Redirected] = []
            var keptFresh: [Redirected] = []
            func write(_ entry: Redirected) -> Bool {
                guard !blocked.contains(entry.slot) else { return false }
                let owner = self.state.withLockedValue { state in state.topology.primary(of: entry.slot).flatMap { state.shards[$0] } }
                if let owner, owner.enqueueMoved(entry.command) {
                    self.redirectedCommands.add(1, ordering: .relaxed)
                    return true
                }
                blocked.insert(entry.slot)
                return false
            }
            for entry in held.refused where !write(entry) { keptRefused.append(entry) }
            for entry in held.fresh where !write(entry) { keptFresh.append(entry) }
            // Past the wait, a blocked slot's commands are given up (its slot had no owner).
            let expired = { (entry: Redirected) in now - entry.since >= wait }
            givenUp = keptRefused.filter(expired).count + keptFresh.filter(expired).count
            held.refused = keptRefused.filter { !expired($0) }
            held.fresh = keptFresh.filter { !expired($0) }
            held.slots = Set(held.refused.map(\.slot) + held.fresh.map(\.slot))
            held.recountBytes()
            return held.isEmpty
        }
        if givenUp > 0 {
            self.givenUp.add(givenUp, ordering: .relaxed)
            self.metrics.givenUp.increment(by: givenUp)
            self.logger.warning("\(givenUp) history publishes or presence writes found no Redis Cluster primary for their slot within maxPublishWait: dropped")
        }
        return done
    }
}
