import CoreMetrics
import Foundation
import Logging
import MizuHTTP
import MizuWebSocket
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The server's shared state: options, sessions, topics.
final class ServerCore: Sendable {
    let options: Live.Options
    let registry: TopicRegistry
    let metrics: LiveMetrics
    let limiter: ConnectionLimiter
    let logger = Logger(label: "mizu.live")
    private let sessions = NIOLockedValueBox(Sessions())
    private struct Sessions {
        var byID: [ObjectIdentifier: Live.Session] = [:]
        /// Set by shutdown: no new session stays open.
        var draining = false
    }
    let compression: PerMessageDeflateConfiguration
    /// Where history and presence live: in memory, or in a broker every node shares.
    let history: any HistoryStore
    let presenceMembers: any PresenceStore
    /// Every read of presence members, coalesced per topic.
    let presenceReads = PresenceReads()
    /// Only tests set these.
    let recoveryTestHooks = NIOLockedValueBox(RecoveryTestHooks())
    /// Made once: every session's connection shares its configuration.
    let upgrader: WebSocketUpgrader

    /// Messages refused for data that is not one JSON value.
    let invalidData = Atomic<Int>(0)
    /// Those refusals are logged once per 5 s at most.
    private let invalidDataLog = LogThrottle(every: .seconds(5))

    /// Whether `data` may go out as an envelope's data: empty, or one JSON value in valid
    /// UTF-8. Otherwise it is counted and (rate-limited) logged.
    func acceptsData(_ data: Data, topic: String) -> Bool {
        if Live.Message.isValidData(data) { return true }
        self.metrics.droppedInvalid.increment()
        let count = self.invalidData.add(1, ordering: .relaxed).newValue
        if self.invalidDataLog.allows() {
            self.logger.error("dropped a message whose data is not one JSON value", metadata: ["topic": "\(LogSafe(topic))", "dropped": "\(count)"])
        }
        return false
    }

    init(options: Live.Options) {
        self.options = options
        self.compression = PerMessageDeflateConfiguration()
        self.metrics = LiveMetrics(factory: options.metricsFactory ?? MetricsSystem.factory)
        self.registry = TopicRegistry(broker: options.broker, metrics: self.metrics)
        self.limiter = ConnectionLimiter(ConnectionLimiter.Limits(
            maxSessions: max(1, options.maxSessions), maxSessionsPerClient: max(1, options.maxSessionsPerClient),
            connectsPerSecond: max(0.001, options.connectsPerSecond), connectBurst: max(1, options.connectBurst),
            maxTopicsPerClient: max(1, options.maxTopicsPerClient),
            // Go's rule for a limit of zero or less (and NaN): the default.
            messagesPerSecond: options.messagesPerSecond > 0 ? options.messagesPerSecond : Live.Options.defaultMessagesPerSecond,
            messageBurst: options.messageBurst > 0 ? options.messageBurst : Live.Options.defaultMessageBurst))
        var webSocket = Self.webSocketConfiguration(options, compression: self.compression)
        let highWater = self.metrics.sendQueueHighWater
        webSocket.sendQueueWatermark = SendQueueWatermark { highWater.record($0) }
        self.upgrader = WebSocketUpgrader(configuration: webSocket)
        let delivery = StreamDelivery(
            registry: self.registry, metrics: self.metrics, compression: self.compression,
            waitingLimit: max(1, (webSocket.maxQueuedMessages ?? 256) / 2))
        // The one place that asks what the broker keeps.
        if let shared = options.broker as? any SharedState {
            self.history = SharedHistoryStore(shared, delivery: delivery)
            self.presenceMembers = SharedPresenceStore(shared: shared, expiry: options.presence?.expiry ?? .seconds(30))
        } else {
            self.history = MemoryHistoryStore(history: MemoryHistory(limit: options.maxHistoryBytes), delivery: delivery, broker: options.broker)
            self.presenceMembers = MemoryPresence()
        }
        options.broker?.attach { [weak self] topic, data in
            self?.receiveRemote(topic, data)
        }
        if options.history != nil || options.presence != nil { self.startHousekeeping() }
    }

    var webSocketConfiguration: WebSocketConfiguration { self.upgrader.configuration }

    private static func webSocketConfiguration(_ options: Live.Options, compression: PerMessageDeflateConfiguration) -> WebSocketConfiguration {
        var configuration = WebSocketConfiguration()
        configuration.maxMessageSize = options.readLimit > 0 ? options.readLimit : 4 * 1024 * 1024
        configuration.compression = options.compression ? compression : nil
        if options.commands != nil { configuration.subprotocols = [Live.Commands.subprotocol] }
        configuration.maxQueuedMessages = options.queueSize > 0 ? options.queueSize : 256
        configuration.maxQueuedBytes = options.queueBytes > 0 ? options.queueBytes : 8 * 1024 * 1024
        configuration.maxQueuedBytesPerClient = options.queueBytesPerClient > 0 ? options.queueBytesPerClient : Live.Options.defaultQueueBytesPerClient
        configuration.messageTimeout = options.messageTimeout
        configuration.writeStallTimeout = options.writeStallTimeout
        configuration.pingInterval = options.heartbeatInterval
        configuration.writeDelay = options.writeDelay
        if let interval = options.heartbeatInterval { configuration.pongTimeout = interval }
        return configuration
    }

    var sessionCount: Int { self.sessions.withLockedValue { $0.byID.count } }
    var allSessions: [Live.Session] { self.sessions.withLockedValue { Array($0.byID.values) } }
    var isDraining: Bool { self.sessions.withLockedValue { $0.draining } }

    /// Adds an open session; false once the server is draining (the caller closes it: its
    /// handshake finished after the drain took its list).
    func register(_ session: Live.Session) -> Bool {
        self.sessions.withLockedValue {
            $0.byID[ObjectIdentifier(session)] = session
            return !$0.draining
        }
    }

    func unregister(_ session: Live.Session) {
        _ = self.sessions.withLockedValue { $0.byID.removeValue(forKey: ObjectIdentifier(session)) }
    }

    /// Starts the shutdown: the sessions open now; later ones are closed as they open.
    func beginDrain() -> [Live.Session] {
        self.sessions.withLockedValue {
            $0.draining = true
            return Array($0.byID.values)
        }
    }

    /// Delivers to this node's subscribers, then hands the publish to the broker for the others.
    /// Data that is not one JSON value is dropped (as Go's encoder drops it): it would make
    /// an invalid frame for every subscriber.
    /// A topic longer than ``Live/Options/maxTopicLength`` is refused too: no session can
    /// subscribe to it, and its history would be kept for nobody.
    @discardableResult
    func publish(_ topic: String, _ data: Data) -> Bool {
        guard !topic.isEmpty, topic.utf8.count <= self.options.maxTopicLength, self.acceptsData(data, topic: topic) else { return false }
        if let policy = self.options.history?(topic) { return self.history.publish(topic, data, policy: policy) }
        self.publishLocally(topic, data)
        return self.options.broker?.tryPublish(topic, data) ?? true
    }

    func publishLocally(_ topic: String, _ data: some Collection<UInt8>) {
        guard let snapshot = self.registry.snapshot(topic) else { return }
        let started = NIODeadline.now()
        var payload = ByteBuffer()
        Live.Message.encode(topic: topic, data: data, into: &payload)
        let sent = FanOut.send(payload, to: snapshot.buckets, sharedWindows: snapshot.sharedWindows, compression: self.compression)
        self.metrics.recordFanout(subscribers: sent.subscribers, frameSize: sent.frameSize, since: started)
    }

    /// A publish from another node: a history topic's message goes to the history store when
    /// it takes such messages (a broker that keeps no history), else it is delivered as it is.
    func receiveRemote(_ topic: String, _ data: ByteBuffer) {
        if let policy = self.options.history?(topic), self.history.receiveRemote(topic, data, policy: policy) { return }
        self.publishLocally(topic, data.readableBytesView)
    }
}
