import CoreMetrics
import NIOCore

/// A live server's metrics, through swift-metrics (the backend the process bootstrapped, or
/// ``Live/Options/metricsFactory``). Names in the Prometheus style; every update is a
/// counter add or a meter step, at most a few per publish and never one per delivery.
final class LiveMetrics: Sendable {
    /// `mizu_live_sessions`: sessions open now.
    let sessions: Meter
    /// `mizu_live_sessions_opened_total`.
    let opened: Counter
    /// `mizu_live_sessions_closed_total{reason}`, one counter per reason (a fixed set).
    private let closed: [String: Counter]
    /// `mizu_live_topics`: topics with at least one local subscriber.
    let topics: Meter
    /// `mizu_live_subscriptions`: session-topic pairs.
    let subscriptions: Meter
    /// `mizu_live_messages_received_total`: frames from clients (envelopes or not).
    let received: Counter
    /// `mizu_live_messages_published_total`: publishes delivered on this node (local and from the broker).
    let published: Counter
    /// `mizu_live_deliveries_total`: frames handed to subscribers' connections.
    let deliveries: Counter
    /// `mizu_live_delivered_bytes_total`: their size on the wire (plain frames).
    let deliveredBytes: Counter
    /// `mizu_live_messages_dropped_invalid_total`: data that was not one JSON value.
    let droppedInvalid: Counter
    /// `mizu_live_fanout_duration_seconds`: a publish's encoding and hand-off to every event loop.
    let fanout: Timer
    /// `mizu_live_send_queue_high_water`: the deepest send queue any session has reached.
    let sendQueueHighWater: Gauge

    static let closeReasons = [
        "clean", "queue_full", "message_too_large", "protocol_error", "closed_by_peer", "heartbeat_timeout",
        "server_shutdown", "write_timeout", "connection_lost", "other",
    ]

    init(factory: any MetricsFactory) {
        self.sessions = Meter(label: "mizu_live_sessions", factory: factory)
        self.opened = Counter(label: "mizu_live_sessions_opened_total", factory: factory)
        var closed: [String: Counter] = [:]
        for reason in Self.closeReasons {
            closed[reason] = Counter(label: "mizu_live_sessions_closed_total", dimensions: [("reason", reason)], factory: factory)
        }
        self.closed = closed
        self.topics = Meter(label: "mizu_live_topics", factory: factory)
        self.subscriptions = Meter(label: "mizu_live_subscriptions", factory: factory)
        self.received = Counter(label: "mizu_live_messages_received_total", factory: factory)
        self.published = Counter(label: "mizu_live_messages_published_total", factory: factory)
        self.deliveries = Counter(label: "mizu_live_deliveries_total", factory: factory)
        self.deliveredBytes = Counter(label: "mizu_live_delivered_bytes_total", factory: factory)
        self.droppedInvalid = Counter(label: "mizu_live_messages_dropped_invalid_total", factory: factory)
        self.fanout = Timer(label: "mizu_live_fanout_duration_seconds", preferredDisplayUnit: .seconds, factory: factory)
        self.sendQueueHighWater = Gauge(label: "mizu_live_send_queue_high_water", factory: factory)
        self.sendQueueHighWater.record(0)
    }

    /// Counts a closed session under the reason onClose reports (nil: a clean close).
    func sessionClosed(_ error: Live.Error?) {
        self.sessions.decrement()
        self.closed[Self.label(error)]?.increment()
    }

    static func label(_ error: Live.Error?) -> String {
        switch error {
        case nil: return "clean"
        case .queueFull: return "queue_full"
        case .messageTooLarge: return "message_too_large"
        case .protocolError: return "protocol_error"
        case .closedByPeer: return "closed_by_peer"
        case .heartbeatTimeout: return "heartbeat_timeout"
        case .serverShutdown: return "server_shutdown"
        case .writeTimeout: return "write_timeout"
        case .connectionLost: return "connection_lost"
        default: return "other"
        }
    }
}

extension LiveMetrics {
    /// One publish's metrics: never per delivery.
    func recordFanout(subscribers: Int, frameSize: Int, since started: NIODeadline) {
        self.published.increment()
        self.deliveries.increment(by: subscribers)
        self.deliveredBytes.increment(by: subscribers * frameSize)
        self.fanout.recordNanoseconds((NIODeadline.now() - started).nanoseconds)
    }
}
