import CoreMetrics
import NIOConcurrencyHelpers
import NIOHTTP1

/// The HTTP server's metrics, through swift-metrics (whatever backend the process
/// bootstrapped, or the factory in ``HTTPServerConfiguration/metricsFactory``):
///
/// - `mizu_http_connections`: open connections (upgraded ones included), a meter;
/// - `mizu_http_requests_total{method, status}`: finished requests, by method and status
///   class (`2xx` ... `5xx`);
/// - `mizu_http_request_duration_seconds`: from the request head to the end of the answer.
final class HTTPMetrics: Sendable {
    let connections: Meter
    private let duration: Timer
    private let factory: any MetricsFactory
    /// Made on first use per method and status class, then reused (a lock and a lookup per
    /// request, no metric object made per request).
    private let requests = NIOLockedValueBox<[Key: Counter]>([:])

    private struct Key: Hashable {
        let method: String
        let statusClass: Int
    }

    init(factory: any MetricsFactory) {
        self.factory = factory
        self.connections = Meter(label: "mizu_http_connections", factory: factory)
        self.duration = Timer(label: "mizu_http_request_duration_seconds", preferredDisplayUnit: .seconds, factory: factory)
    }

    func requestFinished(method: HTTPMethod, status: HTTPResponseStatus, nanoseconds: Int64) {
        // Methods outside the registered set count as "other": a client must not be able to
        // grow the metric's label set.
        let name = Self.knownMethods.contains(method.rawValue) ? method.rawValue : "other"
        let key = Key(method: name, statusClass: Int(status.code / 100))
        let counter = self.requests.withLockedValue { counters -> Counter in
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "mizu_http_requests_total",
                dimensions: [("method", name), ("status", "\(key.statusClass)xx")],
                factory: self.factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
        self.duration.recordNanoseconds(nanoseconds)
    }

    private static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"]
}
