import Mizu
import MetricsTestKit
import MizuTestSupport
import Testing

/// The `mizu_http_*` metrics: requests by method and status class, durations, connections.
@Suite(.timeLimit(.minutes(10))) struct HTTPMetricsTests {
    @Test func requestsAreCountedByMethodAndStatusClass() async throws {
        let metrics = TestMetrics()
        var configuration = HTTPServerConfiguration()
        configuration.metricsFactory = metrics
        let app = App(configuration: configuration, logsRequests: false)
        app.get("/ok") { c in try await c.text(.ok, "ok") }
        app.post("/boom") { _ in throw HTTPError(.badRequest, "no") }
        try await withServer(app) { (port: Int) async throws in
            _ = try await request(port: port, "GET", "/ok")
            _ = try await request(port: port, "GET", "/ok")
            _ = try await request(port: port, "POST", "/boom", body: "x")
            _ = try await request(port: port, "GET", "/missing")
            _ = try await request(port: port, "PROPFIND", "/ok")  // outside the set: counted as "other"
            let client = try await RawClient.connect(port: port)
            _ = try await eventually("the connection to be counted") {
                (try? metrics.expectMeter("mizu_http_connections").lastValue).flatMap { $0 >= 1 ? true : nil }
            }
            await client.close()
        }
        let count = { (method: String, status: String) in
            metrics.counterTotal(label: "mizu_http_requests_total", dimensions: [("method", method), ("status", status)])
        }
        #expect(count("GET", "2xx") == 2)
        #expect(count("POST", "4xx") == 1)
        #expect(count("GET", "4xx") == 1)
        #expect(count("other", "4xx") == 1)
        #expect(metrics.counters(label: "mizu_http_requests_total").count == 4, "one counter per method and class seen")
        #expect(try metrics.expectTimer("mizu_http_request_duration_seconds").values.count == 5)
        _ = try await eventually("every connection to be closed") {
            (try? metrics.expectMeter("mizu_http_connections").lastValue).flatMap { $0 == 0 ? true : nil }
        }
    }
}
