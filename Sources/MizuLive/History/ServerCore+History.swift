import Foundation
import MizuHTTP
import MizuWebSocket
import NIOCore
import NIOPosix

extension ServerCore {
    /// See ``Live/Server/history(_:since:limit:)``.
    func historyPage(_ topic: String, since: Live.StreamPosition?, limit: Int) async throws -> Live.HistoryPage {
        guard let policy = self.options.history?(topic) else { throw Live.HistoryError.notEnabled(topic) }
        let limit = max(0, limit)
        if let since, since.isPlausible {
            // One more than the page: whether more follow (a client's read costs its page).
            let count = min(limit, policy.size) + 1
            let read = try await self.history.read(topic, since: since.offset, count: count, policy: policy)
            let complete = read.covers(since, reading: count)
            let publications = complete ? read.entries : []
            return Live.HistoryPage(
                publications: Array(publications.prefix(limit)), top: Live.StreamPosition(offset: read.top, epoch: read.epoch),
                isComplete: complete && publications.count <= limit)
        }
        // No position, or one past any stream's (nothing after it; the top says where the stream is).
        let latest = since == nil ? min(limit, policy.size) : 0
        let read = try await self.history.read(topic, since: nil, count: latest, policy: policy)
        return Live.HistoryPage(publications: read.entries, top: Live.StreamPosition(offset: read.top, epoch: read.epoch), isComplete: false)
    }

    /// Subscribes `session` to `topic` and sends it, before any live message, the messages
    /// after `since` (when the history still has all of them) or else the latest `latest`;
    /// `reply` may put a message in front of them. Race-free: the session is a subscriber
    /// (its live messages waiting) before the history is read, and the waiting messages that
    /// the read already covered are dropped by offset.
    func subscribe(
        _ session: Live.Session, _ topic: String, since: Live.StreamPosition?, latest: Int,
        reply: (@Sendable (Live.SubscribeResult) -> Live.Message?)?,
        refused: (Live.Session.Refusal) -> Void
    ) async -> Live.SubscribeResult {
        let notSubscribed = Live.SubscribeResult(subscribed: false, recovered: false, top: nil, replayed: 0)
        guard let policy = self.options.history?(topic) else {
            // Already subscribed is answered too: a client can always re-synchronise.
            let outcome = session.subscribe(topic)
            if case .refused(let refusal) = outcome {
                refused(refusal)
                return notSubscribed
            }
            let result = Live.SubscribeResult(subscribed: true, recovered: false, top: nil, replayed: 0)
            if let message = reply?(result) { try? session.send(message) }
            return result
        }
        switch session.subscribe(topic, recovering: true) {
        case .added, .recovering: break
        case .alreadySubscribed: return notSubscribed
        case .refused(let refusal):
            refused(refusal)
            return notSubscribed
        }
        // A replay takes at most half the send queue (in messages and in bytes), and what
        // arrives meanwhile the other half: recovering never makes a session a slow consumer
        // by itself.
        let queueLimit = self.webSocketConfiguration.maxQueuedMessages ?? 256
        let replayLimit = max(1, queueLimit / 2)
        let replayBytes = (self.webSocketConfiguration.maxQueuedBytes ?? .max) / 2
        var read: HistoryRead?
        var recovered = false
        let hooks = self.recoveryTestHooks.withLockedValue { $0 }
        do {
            try await self.history.ready(topic)
            await hooks.beforeRead?()
            // A position past any stream's (a client's number) recovers nothing: the latest instead.
            if let since, since.isPlausible {
                // One more than a replay may take: more than that recovers nothing anyway.
                let count = min(replayLimit, policy.size) + 1
                let after = try await self.history.read(topic, since: since.offset, count: count, policy: policy)
                recovered = after.covers(since, reading: count) && after.entries.count <= replayLimit
                    && Self.bytes(of: after.entries) <= replayBytes
                read = recovered ? after : nil
            }
            if read == nil {
                var latestRead = try await self.history.read(topic, since: nil, count: min(latest, replayLimit), policy: policy)
                // The newest that fit the byte half.
                var total = 0
                let fitting = latestRead.entries.reversed().prefix { entry in
                    total += entry.data.count
                    return total <= replayBytes
                }.count
                latestRead.entries = Array(latestRead.entries.suffix(fitting))
                read = latestRead
            }
            if let read { self.history.didRead(topic, read) }
        } catch {
            self.logger.warning("could not read the history of a topic; the session gets the live stream only", metadata: ["topic": "\(LogSafe(topic))", "error": "\(error)"])
        }
        await hooks.beforeCompletion?()
        var result = Live.SubscribeResult(subscribed: true, recovered: recovered, top: nil, replayed: 0)
        let completed = self.registry.completeRecovery(of: session, topic: topic) { waiting, overflowed in
            let replay = read?.entries ?? []
            // What the read covers came from history; the waiting messages past it are new.
            let newer = read.map { read in waiting.drop { $0.offset <= read.top } } ?? waiting[...]
            result.replayed = replay.count
            if let read {
                result.top = Live.StreamPosition(offset: max(newer.last?.offset ?? 0, read.top), epoch: read.epoch)
            }
            var messages: [ByteBuffer] = []
            for publication in replay {
                var payload = ByteBuffer()
                Live.Message.encode(topic: topic, data: publication.data, position: publication.position, into: &payload)
                messages.append(payload)
            }
            messages.append(contentsOf: newer.map(\.payload))
            // Queued on the loop under the topic's lock, so ahead of every later fan-out to
            // this session; sent there, where closing cannot re-enter the registry's lock. The
            // application's `reply` runs there too, first, and under no lock of ours (it may
            // publish, or ask the session its topics).
            let connection = session.connection
            let queued = messages
            let answered = result
            connection.eventLoop.execute {
                guard !overflowed else { return session.fail(.queueFull) }
                let first = reply?(answered).map { [$0.encoded()] } ?? []
                session.sendEncoded(first + queued)
            }
            return result.top
        }
        guard completed else { return Live.SubscribeResult(subscribed: false, recovered: false, top: nil, replayed: 0) }
        return result
    }

    /// What a replay of `entries` puts in the send queue, about (their data; the envelopes add a little).
    private static func bytes(of entries: [Live.Publication]) -> Int {
        entries.reduce(0) { $0 + $1.data.count }
    }

    /// Forgets expired history and renews this node's presence members in a shared broker.
    func startHousekeeping() {
        let expiry = self.options.presence?.expiry ?? .seconds(30)
        let interval = min(TimeAmount.seconds(5), TimeAmount.nanoseconds(expiry.nanoseconds / 3))
        MultiThreadedEventLoopGroup.singleton.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] task in
            guard let self else { return task.cancel() }
            self.history.sweep()
            self.presenceMembers.refresh()
        }
    }
}

/// Tests widen the windows a recovery must close: publishes between the subscribe and the
/// history read, and between the read and the hand-over to the live stream.
struct RecoveryTestHooks: Sendable {
    var beforeRead: (@Sendable () async -> Void)?
    var beforeCompletion: (@Sendable () async -> Void)?
}
