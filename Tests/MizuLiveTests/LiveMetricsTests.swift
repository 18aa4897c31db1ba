import Foundation
import Mizu
import MetricsTestKit
@testable import MizuLive
import MizuTestSupport
import NIOCore
import Testing

/// The `mizu_live_*` metrics move as sessions open, subscribe, publish and close.
@Suite(.timeLimit(.minutes(10))) struct LiveMetricsTests {
    @Test func sessionsTopicsMessagesAndClosesAreCounted() async throws {
        let metrics = TestMetrics()
        try await withLiveServer({ $0.metricsFactory = metrics; $0.compression = false }) { server, log, port in
            // One at a time: two sessions on two event loops may open in either order, and
            // sessions[0] must be ann's.
            let ann = try await TestWebSocket.live(port: port, user: "ann")
            _ = try await log.waitFor(sessions: 1)
            let bob = try await TestWebSocket.live(port: port, user: "bob")
            let sessions = try await log.waitFor(sessions: 2)
            #expect(try metrics.expectMeter("mizu_live_sessions").lastValue == 2)
            #expect(metrics.counterTotal(label: "mizu_live_sessions_opened_total") == 2)

            for session in sessions { server.subscribe(session, "room") }
            server.subscribe(sessions[0], "other")
            #expect(try metrics.expectMeter("mizu_live_topics").lastValue == 2)
            #expect(try metrics.expectMeter("mizu_live_subscriptions").lastValue == 3)

            server.publish("room", Data(#""hi""#.utf8))
            server.publish("room", Data("not json".utf8))  // dropped, counted
            #expect(try await ann.readText() == #"{"topic":"room","data":"hi"}"#)
            #expect(try await bob.readText() == #"{"topic":"room","data":"hi"}"#)
            #expect(metrics.counterTotal(label: "mizu_live_messages_published_total") == 1)
            #expect(metrics.counterTotal(label: "mizu_live_deliveries_total") == 2)
            let frameSize = 2 + #"{"topic":"room","data":"hi"}"#.utf8.count
            #expect(metrics.counterTotal(label: "mizu_live_delivered_bytes_total") == Int64(2 * frameSize))
            #expect(metrics.counterTotal(label: "mizu_live_messages_dropped_invalid_total") == 1)
            #expect(try metrics.expectTimer("mizu_live_fanout_duration_seconds").values.count == 1)

            // Five sends within one event-loop tick: all five wait in the queue together.
            let first = sessions[0]
            try await first.connection.eventLoop.submit {
                for index in 0..<5 { try first.send(Live.Message(topic: "q", data: Data("\(index)".utf8))) }
            }.get()
            for _ in 0..<5 { _ = try await ann.readText() }
            #expect(try metrics.expectGauge("mizu_live_send_queue_high_water").lastValue.map { $0 >= 5 } == true)

            try await ann.send(text: #"{"topic":"chat","data":1}"#)
            try await ann.send(text: "garbage")
            _ = try await log.waitFor(messages: 1)
            #expect(try await ann.readText() == #"{"topic":"error","data":"bad message"}"#)
            #expect(metrics.counterTotal(label: "mizu_live_messages_received_total") == 2)

            try await ann.close()  // a clean close
            try await bob.send(0x8, [0x0F, 0xA0])  // 4000: closed by peer
            _ = try await log.waitFor(closes: 2)
            #expect(try metrics.expectMeter("mizu_live_sessions").lastValue == 0)
            #expect(metrics.counterTotal(label: "mizu_live_sessions_closed_total", dimensions: [("reason", "clean")]) == 1)
            #expect(metrics.counterTotal(label: "mizu_live_sessions_closed_total", dimensions: [("reason", "closed_by_peer")]) == 1)
            #expect(try metrics.expectMeter("mizu_live_topics").lastValue == 0)
            #expect(try metrics.expectMeter("mizu_live_subscriptions").lastValue == 0)
        }
    }
}
