@testable import Mizu
@testable import MizuHTTP
import NIOCore
import NIOEmbedded
import Testing

/// The stall watch's decisions on an embedded event loop, whose clock moves only when the
/// test says: the deadline is exact, whatever the speed of the machine.
@Suite struct WriteStallWatchTests {
    private final class Stalls {
        var count = 0
    }

    private func watch(_ channel: EmbeddedChannel, timeout: TimeAmount = .seconds(2)) -> (WriteStallWatch, Stalls) {
        let stalls = Stalls()
        let watch = WriteStallWatch(channel: channel, timeout: timeout) { stalls.count += 1 }
        return (watch, stalls)
    }

    @Test func aPeerThatTakesNothingIsReportedAtTheTimeoutNotBefore() throws {
        let channel = EmbeddedChannel()
        channel.isWritable = false
        let (watch, stalls) = self.watch(channel)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1_999))
        #expect(stalls.count == 0 && watch.isWatching)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(stalls.count == 1 && !watch.isWatching)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func outputThatKeepsMovingIsWatchedOnNeverReported() throws {
        let channel = EmbeddedChannel()
        channel.isWritable = false
        let (watch, stalls) = self.watch(channel)
        for _ in 0..<10 {
            watch.noteProgress()  // a write completed in this period: slow, but moving
            channel.embeddedEventLoop.advanceTime(by: .seconds(2))
            #expect(stalls.count == 0 && watch.isWatching)
        }
        // The peer stops reading: one more full period without progress is a stall.
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(stalls.count == 1)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func theWatchEndsByItselfOnceTheOutputHasLeft() throws {
        let channel = EmbeddedChannel()
        channel.isWritable = false
        let (watch, stalls) = self.watch(channel)
        channel.isWritable = true  // drained, and nothing buffered any more
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(stalls.count == 0 && !watch.isWatching)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func aCancelledWatchNeverFires() throws {
        let channel = EmbeddedChannel()
        channel.isWritable = false
        let (watch, stalls) = self.watch(channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        watch.cancel()
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(stalls.count == 0 && !watch.isWatching)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }
}
