import CoreMetrics

/// The Redis backplane's metrics, next to its ``Live/RedisBroker/Statistics``:
/// `mizu_live_broker_connected` (1 while both connections are up), publishes written to
/// Redis, dropped and received, reconnections after a loss, and the continuity of history
/// streams: gaps found, messages caught up from the stream, and gaps it could not fill.
final class BrokerMetrics: Sendable {
    let connected: Gauge
    let published: Counter
    let dropped: Counter
    let received: Counter
    let reconnects: Counter
    let gaps: Counter
    let caughtUp: Counter
    let unfillable: Counter
    let rewound: Counter
    let waiting: Gauge
    let unconfirmed: Counter
    let replayed: Counter

    /// `dimensions`: a cluster's shard brokers each say which primary they serve (`shard`).
    init(factory: any MetricsFactory, dimensions: [(String, String)] = []) {
        self.connected = Gauge(label: "mizu_live_broker_connected", dimensions: dimensions, factory: factory)
        self.published = Counter(label: "mizu_live_broker_publishes_total", dimensions: dimensions, factory: factory)
        self.dropped = Counter(label: "mizu_live_broker_publishes_dropped_total", dimensions: dimensions, factory: factory)
        self.received = Counter(label: "mizu_live_broker_messages_received_total", dimensions: dimensions, factory: factory)
        self.reconnects = Counter(label: "mizu_live_broker_reconnects_total", dimensions: dimensions, factory: factory)
        self.gaps = Counter(label: "mizu_live_broker_stream_gaps_total", dimensions: dimensions, factory: factory)
        self.caughtUp = Counter(label: "mizu_live_broker_stream_caught_up_total", dimensions: dimensions, factory: factory)
        self.unfillable = Counter(label: "mizu_live_broker_stream_gaps_unfillable_total", dimensions: dimensions, factory: factory)
        self.rewound = Counter(label: "mizu_live_broker_streams_rewound_total", dimensions: dimensions, factory: factory)
        self.waiting = Gauge(label: "mizu_live_broker_publishes_waiting", dimensions: dimensions, factory: factory)
        self.unconfirmed = Counter(label: "mizu_live_broker_publishes_unconfirmed_total", dimensions: dimensions, factory: factory)
        self.replayed = Counter(label: "mizu_live_broker_commands_replayed_total", dimensions: dimensions, factory: factory)
        self.connected.record(0)
        self.waiting.record(0)
    }
}
