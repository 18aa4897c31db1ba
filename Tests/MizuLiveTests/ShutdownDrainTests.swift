import Mizu
@testable import MizuLive
import MizuWebSocket
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Shutdown as a reconnect storm's first cause: closes spread over a window, and no new
/// session accepted while it runs.
@Suite(.timeLimit(.minutes(10))) struct ShutdownDrainTests {
    @Test func aSmallServerClosesEverythingAtOnce() {
        #expect(DrainSchedule(sessions: 0, spread: .seconds(1)).batches.isEmpty)
        #expect(DrainSchedule(sessions: 100, spread: .seconds(1)).batches == [.init(offset: .zero, range: 0..<100)])
    }

    @Test func aBusyServerSpreadsItsClosesEvenlyOverTheWindow() {
        let schedule = DrainSchedule(sessions: 100_000, spread: .seconds(1))
        #expect(schedule.batches.count == 100, "one batch per 10 ms")
        #expect(schedule.batches.first?.offset == .zero)
        #expect(schedule.batches.last?.offset == .milliseconds(990))
        #expect(schedule.batches.allSatisfy { $0.range.count == 1_000 })
        // Every session exactly once, in order.
        #expect(schedule.batches.map(\.range.lowerBound) == Array(stride(from: 0, to: 100_000, by: 1_000)))
        #expect(schedule.batches.last?.range.upperBound == 100_000)
    }

    @Test func batchesNeverGetSmallerThanTheMinimumUnlessTheWindowIsTooShort() {
        let medium = DrainSchedule(sessions: 1_050, spread: .seconds(1))
        #expect(medium.batches.count == 11 && medium.batches.allSatisfy { $0.range.count >= 95 })
        #expect(medium.batches.reduce(0) { $0 + $1.range.count } == 1_050)
        let noWindow = DrainSchedule(sessions: 5_000, spread: .zero)
        #expect(noWindow.batches == [.init(offset: .zero, range: 0..<5_000)])
    }

    @Test func aDrainingServerRefusesNewUpgradesWith503AndRetryAfter() async throws {
        try await withLiveServer { server, log, port in
            let socket = try await TestWebSocket.live(port: port)
            _ = try await log.waitFor(sessions: 1)
            // Scaled: on a loaded run the close handshake alone took longer than 3 s (a full run, 2026-12-07).
            async let shutdown: Void = server.shutdown(timeout: Patience.scaled(.seconds(3)), spread: .zero)
            #expect(try await socket.readFrameSkippingPings().closeCode == 1001)
            try await socket.send(0x8, [0x03, 0xE9])
            await shutdown
            let late = try await TestWebSocket.live(port: port)
            #expect(late.response.status == 503 && late.response.text == "server shutting down\n")
            let retry = Int(late.response.header("retry-after") ?? "")
            #expect(retry.map { (1...5).contains($0) } == true, "\(late.response.header("retry-after") ?? "none")")
            #expect(server.sessionCount == 0)
        }
    }

    @Test func sessionsCloseOverTheSpreadWindowNotAtOnce() async throws {
        // No heartbeat: these clients answer no ping, and a slow run takes longer than one to
        // open 150 sessions.
        try await withLiveServer({ $0.heartbeatInterval = nil }) { server, log, port in
            var sockets: [TestWebSocket] = []
            for _ in 0..<150 { sockets.append(try await TestWebSocket.live(port: port)) }
            let sessions = try await log.waitFor(sessions: 150)
            // 150 sessions over 4 s: two batches of 75, the second due 2 s after the first.
            // The test holds each batch until it has checked the one before (the schedule's
            // order, not the clock's: a slow machine may take seconds to close a batch).
            let offsets = NIOLockedValueBox<[TimeAmount]>([])
            let secondBatchMayGo = Gate()
            async let shutdown: Void = server.shutdown(timeout: Patience.scaled(.seconds(20)), spread: .seconds(4)) { offset, _ in
                offsets.withLockedValue { $0.append(offset) }
                if offset > .zero { await secondBatchMayGo.wait() }
            }
            _ = try await eventually("the second batch to be due") { offsets.withLockedValue { $0.count } == 2 ? true : nil }
            _ = try await eventually("the first batch") { sessions.filter(\.isClosed).count >= 75 ? true : nil }
            #expect(sessions.filter(\.isClosed).count == 75, "the second batch waits its turn")
            #expect(offsets.withLockedValue { $0 } == [.zero, .seconds(2)])
            secondBatchMayGo.open()
            _ = try await eventually("the second batch") { sessions.allSatisfy(\.isClosed) ? true : nil }
            for socket in sockets {
                #expect(try await socket.readFrameSkippingPings().closeCode == 1001)
                try await socket.send(0x8, [0x03, 0xE9])
            }
            await shutdown
            #expect(server.sessionCount == 0)
        }
    }
}
