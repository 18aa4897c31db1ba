@testable import MizuLiveClient
import MizuTestSupport
import Testing

/// The reconnect decisions alone: every close code and refusal of PROTOCOL.md's table, the
/// backoff's growth and cap, and every number a server sends at its extremes.
@Suite struct ReconnectScheduleTests {
    private func delay(_ decision: ReconnectSchedule.Decision) -> Duration? {
        if case .retry(let after) = decision { return after }
        return nil
    }

    @Test func theBackoffDoublesFromItsFirstWaitWithJitterUpToItsCapAndStartsOverOnceOpen() throws {
        var random = SeededRandom(state: 1)
        var schedule = ReconnectSchedule(policy: ReconnectPolicy())
        var fulls: [Duration] = []
        for _ in 0..<12 {
            let wait = try #require(self.delay(schedule.decide(.failed, using: &random)))
            fulls.append(wait)
        }
        let expected: [Duration] = [.milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8)]
            + Array(repeating: .seconds(10), count: 6)
        for (wait, full) in zip(fulls, expected) {
            #expect(wait >= full / 2 && wait <= full, "\(wait) within half to all of \(full)")
        }
        #expect(schedule.decide(.opened, using: &random) == .none)
        let again = try #require(self.delay(schedule.decide(.closed(code: 1006, openFor: .seconds(10)), using: &random)))
        #expect(again <= .milliseconds(250), "a connection that stayed open starts the backoff over")
    }

    @Test func aServerThatAcceptsAndClosesAtOnceMeetsTheGrowingBackoff() throws {
        // Accepted, then closed within a second, again and again (a broken or hostile
        // server): each counts as a failed attempt, so the waits grow to the cap instead of
        // starting over at 250 ms every time.
        var random = SeededRandom(state: 5)
        var schedule = ReconnectSchedule(policy: ReconnectPolicy())
        var waits: [Duration] = []
        for _ in 0..<8 {
            #expect(schedule.decide(.opened, using: &random) == .none)
            waits.append(try #require(self.delay(schedule.decide(.closed(code: 1011, openFor: .milliseconds(900)), using: &random))))
        }
        #expect(waits.last! >= .seconds(5), "\(waits)")
        #expect(zip(waits, waits.dropFirst()).filter { $0.1 < $0.0 / 2 }.isEmpty, "never back to the start: \(waits)")
        var shortPolicy = ReconnectPolicy()
        shortPolicy.stableAfter = .milliseconds(500)
        var lenient = ReconnectSchedule(policy: shortPolicy)
        for _ in 0..<5 { _ = lenient.decide(.failed, using: &random) }
        #expect(self.delay(lenient.decide(.closed(code: 1011, openFor: .milliseconds(900)), using: &random))! <= .milliseconds(250))
    }

    @Test func closeCodesSayWhetherToComeBack() throws {
        var random = SeededRandom(state: 2)
        for code: UInt16 in [1000] {
            var schedule = ReconnectSchedule(policy: ReconnectPolicy())
            #expect(schedule.decide(.closed(code: code, openFor: .seconds(60)), using: &random) == .stop(.closedByServer))
        }
        for code: UInt16 in [1002, 1003, 1007, 1009] {
            var schedule = ReconnectSchedule(policy: ReconnectPolicy())
            #expect(schedule.decide(.closed(code: code, openFor: .seconds(60)), using: &random) == .stop(.protocolError(code: code)))
        }
        for code: UInt16 in [4500, 4700, 4999] {
            var schedule = ReconnectSchedule(policy: ReconnectPolicy())
            #expect(schedule.decide(.closed(code: code, openFor: .seconds(60)), using: &random) == .stop(.doNotReconnect(code: code)))
        }
        for code: UInt16? in [nil, 1006, 1011, 4000, 4499, 3000, 0, .max] {
            var schedule = ReconnectSchedule(policy: ReconnectPolicy())
            let wait = try #require(self.delay(schedule.decide(.closed(code: code, openFor: .seconds(60)), using: &random)), "\(String(describing: code))")
            #expect(wait >= .milliseconds(125) && wait <= .milliseconds(250))
        }
        var afterShutdown = ReconnectSchedule(policy: ReconnectPolicy())
        var waits: [Duration] = []
        for seed in 0..<50 {
            var random = SeededRandom(state: UInt64(seed))
            afterShutdown = ReconnectSchedule(policy: ReconnectPolicy())
            waits.append(try #require(self.delay(afterShutdown.decide(.closed(code: 1001, openFor: .seconds(60)), using: &random))))
        }
        #expect(waits.allSatisfy { $0 >= .zero && $0 <= .seconds(2) }, "a shutdown's clients come back spread over 0-2 s")
        #expect(waits.contains { $0 < .milliseconds(500) } && waits.contains { $0 > .milliseconds(1500) }, "spread, not bunched")
    }

    @Test func refusalsHonourRetryAfterWithinBoundsAndStopWhenRetryingCannotHelp() throws {
        var random = SeededRandom(state: 3)
        for status in [400, 401, 403, 404, 405, 426] {
            var schedule = ReconnectSchedule(policy: ReconnectPolicy())
            #expect(schedule.decide(.refused(status: status, retryAfter: 1), using: &random) == .stop(.refused(status: status)))
        }
        var busy = ReconnectSchedule(policy: ReconnectPolicy())
        #expect(self.delay(busy.decide(.refused(status: 503, retryAfter: 7), using: &random)) == .seconds(7))
        var slow = ReconnectSchedule(policy: ReconnectPolicy())
        #expect(self.delay(slow.decide(.refused(status: 429, retryAfter: 0), using: &random))! <= .milliseconds(250), "0: the backoff")
        for retryAfter in [Int.max, 301, 1 << 40] {
            var hostile = ReconnectSchedule(policy: ReconnectPolicy())
            #expect(self.delay(hostile.decide(.refused(status: 503, retryAfter: retryAfter), using: &random)) == .seconds(300), "\(retryAfter)")
        }
        for retryAfter in [-1, Int.min, nil] {
            var odd = ReconnectSchedule(policy: ReconnectPolicy())
            #expect(self.delay(odd.decide(.refused(status: 503, retryAfter: retryAfter), using: &random))! <= .milliseconds(250))
        }
        for status in [500, 502, 599, 408] {
            var server = ReconnectSchedule(policy: ReconnectPolicy())
            #expect(self.delay(server.decide(.refused(status: status, retryAfter: nil), using: &random)) != nil, "\(status)")
        }
    }

    @Test func noSettingAndNoNumberOfFailuresCanOverflow() throws {
        var random = SeededRandom(state: 4)
        var policy = ReconnectPolicy()
        policy.initialDelay = .seconds(Int64.max)
        policy.maxDelay = .seconds(Int64.max)
        policy.shutdownSpread = .seconds(Int64.max)
        var schedule = ReconnectSchedule(policy: policy)
        for _ in 0..<5000 { _ = schedule.decide(.failed, using: &random) }
        #expect(self.delay(schedule.decide(.closed(code: 1001, openFor: .seconds(60)), using: &random)) != nil)
        var negative = ReconnectPolicy()
        negative.initialDelay = .seconds(-5)
        negative.maxDelay = .seconds(-1)
        var backwards = ReconnectSchedule(policy: negative)
        #expect(self.delay(backwards.decide(.failed, using: &random)) == .zero)
    }
}
