@testable import MizuLive
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

/// The publishing link's queue alone: order, bounds, the wait for a lost link, replays.
@Suite struct RedisOutboxTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    private let loop = EmbeddedEventLoop()

    private func outbox(maxPendingBytes: Int = 1_000) -> RedisOutbox {
        RedisOutbox(limits: RedisOutbox.Limits(maxPendingBytes: maxPendingBytes, maxWait: .seconds(5), replayWindow: .seconds(30)))
    }

    private func command(_ text: String, replayable: Bool = false, into outbox: inout RedisOutbox, at now: NIODeadline? = nil, publish: Bool = true) -> RedisOutbox.EnqueueOutcome {
        outbox.enqueue(size: text.utf8.count, countsAsPublish: publish, replayable: replayable, now: now ?? self.start) { bytes, _ in bytes.writeString(text) }
    }

    private func texts(_ requests: [RedisRequest]) -> [String] {
        requests.map { String(buffer: $0.bytes) }
    }

    @Test func commandsAndRequestsGoOutInQueueOrderWithOneFlushAsked() {
        var outbox = self.outbox()
        #expect(outbox.linkUp() == 0)
        #expect(self.command("a", into: &outbox) == .queued(scheduleFlush: true, waiting: nil))
        #expect(self.command("b", into: &outbox) == .queued(scheduleFlush: false, waiting: nil))
        let read = self.loop.makePromise(of: RESPValue.self)
        #expect(outbox.enqueueRequest(ByteBuffer(string: "R"), promise: read) == .queued(scheduleFlush: false))
        _ = self.command("c", into: &outbox)
        #expect(outbox.pendingBytes == 4 && outbox.waitingCommands == 3)
        let (requests, expired) = outbox.takeForFlush(now: self.start)
        #expect(self.texts(requests) == ["ab", "R", "c"] && expired == 0)
        #expect(outbox.pendingBytes == 0 && outbox.waitingCommands == 0)
        #expect(self.command("d", into: &outbox) == .queued(scheduleFlush: true, waiting: nil), "a new flush after the last")
        read.succeed(.integer(1))
    }

    @Test func sequenceNumbersFollowQueueOrder() {
        var outbox = self.outbox()
        _ = outbox.linkUp()
        var seen: [UInt64] = []
        for _ in 0..<3 { _ = outbox.enqueue(size: 1, countsAsPublish: true, replayable: true, now: self.start) { _, sequence in seen.append(sequence) } }
        #expect(seen == [1, 2, 3] && outbox.sequence == 3)
    }

    @Test func aBatchKnowsWhichOfItsCommandsMayBeWrittenAgain() {
        var outbox = self.outbox()
        _ = outbox.linkUp()
        _ = self.command("plain;", into: &outbox)
        _ = self.command("history1;", replayable: true, into: &outbox)
        _ = self.command("plain;", into: &outbox)
        _ = self.command("history2;", replayable: true, into: &outbox)
        let batch = outbox.takeForFlush(now: self.start).requests[0]
        #expect(batch.replayable.map(\.index) == [1, 3])
        #expect(batch.replayable.map { String(buffer: $0.bytes) } == ["history1;", "history2;"])
    }

    @Test func handedBackCommandsGoFirstUntilTheirWindowPasses() {
        var outbox = self.outbox()
        _ = outbox.linkUp()
        _ = self.command("new", into: &outbox)
        outbox.handBack([ByteBuffer(string: "old1"), ByteBuffer(string: "old2")], now: self.start)
        #expect(outbox.waitingCommands == 3 && outbox.pendingBytes == 11)
        let (requests, expired) = outbox.takeForFlush(now: self.start + .seconds(29))
        #expect(self.texts(requests) == ["old1old2", "new"] && expired == 0)
        #expect(requests[0].replayable.map { String(buffer: $0.bytes) } == ["old1", "old2"], "replayed again if this link dies too")
        outbox.handBack([ByteBuffer(string: "late")], now: self.start)
        let late = outbox.takeForFlush(now: self.start + .seconds(30))
        #expect(late.requests.isEmpty && late.expired == 1)
    }

    @Test func aLostLinkKeepsCommandsForMaxWaitAndFailsReads() {
        var outbox = self.outbox()
        _ = outbox.linkUp()
        let read = self.loop.makePromise(of: RESPValue.self)
        _ = self.command("a", into: &outbox)
        _ = outbox.enqueueRequest(ByteBuffer(string: "R"), promise: read)
        _ = self.command("b", into: &outbox)
        let failed = outbox.linkLost(now: self.start)
        #expect(failed.count == 1)
        failed.forEach { $0.fail(Live.RedisError.connectionClosed) }
        let refused = self.loop.makePromise(of: RESPValue.self)
        #expect(outbox.enqueueRequest(ByteBuffer(string: "R2"), promise: refused) == .disconnected)
        refused.fail(Live.RedisError.connectionClosed)
        #expect(self.command("c", into: &outbox, at: self.start + .seconds(4)) == .queued(scheduleFlush: true, waiting: 3))
        #expect(self.command("d", into: &outbox, at: self.start + .seconds(5)) == .dropped(report: 1))
        #expect(outbox.linkUp() == 0, "reported already")
        #expect(self.texts(outbox.takeForFlush(now: self.start + .seconds(6)).requests) == ["a", "bc"])
    }

    @Test func theByteBoundCountsEverythingWaitingAndReportsDropsOncePerInterval() {
        var outbox = self.outbox(maxPendingBytes: 10)
        _ = outbox.linkUp()
        outbox.handBack([ByteBuffer(string: "123456")], now: self.start)
        #expect(self.command("1234", into: &outbox) == .queued(scheduleFlush: true, waiting: nil))
        #expect(self.command("x", into: &outbox) == .dropped(report: 1))
        #expect(self.command("y", into: &outbox, at: self.start + .seconds(1)) == .dropped(report: nil))
        #expect(self.command("z", into: &outbox, at: self.start + .seconds(2), publish: false) == .dropped(report: nil), "not a publish: not counted")
        let refused = self.loop.makePromise(of: RESPValue.self)
        #expect(outbox.enqueueRequest(ByteBuffer(string: "R"), promise: refused) == .overloaded)
        refused.fail(Live.RedisError.overloaded)
        #expect(self.command("w", into: &outbox, at: self.start + .seconds(5)) == .dropped(report: 2))
    }

    /// A retired primary's outbox: replays past their window are counted, never dropped
    /// unseen; plain publishes are given up; the rest is returned oldest first.
    @Test func takingEverythingCountsReplaysPastTheirWindow() {
        var outbox = self.outbox()
        _ = outbox.linkUp()
        outbox.handBack([ByteBuffer(string: "old1"), ByteBuffer(string: "old2")], now: self.start)
        outbox.handBack([ByteBuffer(string: "new1")], now: self.start + .seconds(10))
        _ = self.command("plain;", into: &outbox)
        _ = self.command("h;", replayable: true, into: &outbox)
        let taken = outbox.takeAll(now: self.start + .seconds(35))
        #expect(taken.commands.map { String(buffer: $0) } == ["new1", "h;"])
        #expect(taken.expired == 2 && taken.givenUp == 1 && taken.reads.isEmpty)
        #expect(outbox.pendingBytes == 0 && outbox.waitingCommands == 0)
    }

    /// While the link is down a cluster takes out the commands of the slots it holds, oldest
    /// first; the rest stay in order, each batch's replies counted and numbered again, and a
    /// replay past its window stays to be counted when flushed.
    @Test func aLostLinksSelectedCommandsAreTakenOutOldestFirst() {
        var outbox = self.outbox()
        _ = outbox.linkUp()
        outbox.handBack([ByteBuffer(string: "x0;")], now: self.start - .seconds(31))
        _ = self.command("p1;", into: &outbox)
        _ = self.command("x1;", replayable: true, into: &outbox)
        _ = self.command("y1;", replayable: true, into: &outbox)
        _ = self.command("x2;", replayable: true, into: &outbox)
        // Written, then the link died before answering: its replayable commands come back.
        let written = outbox.takeForFlush(now: self.start)
        #expect(written.expired == 1 && self.texts(written.requests) == ["p1;x1;y1;x2;"])
        outbox.handBack([ByteBuffer(string: "x0;")], now: self.start - .seconds(31))
        outbox.handBack(written.requests[0].replayable.map(\.bytes), now: self.start)
        _ = outbox.linkLost(now: self.start)
        _ = self.command("x3;", replayable: true, into: &outbox, at: self.start + .seconds(1))
        _ = self.command("p3;", into: &outbox, at: self.start + .seconds(1))
        _ = self.command("y2;", replayable: true, into: &outbox, at: self.start + .seconds(1))
        #expect(outbox.takeReplayable(now: self.start + .seconds(1)) { String(buffer: $0).hasPrefix("z") }.isEmpty)
        let taken = outbox.takeReplayable(now: self.start + .seconds(1)) { String(buffer: $0).hasPrefix("x") }
        #expect(taken.map { String(buffer: $0) } == ["x1;", "x2;", "x3;"])
        #expect(outbox.waitingCommands == 4 && outbox.pendingBytes == 12, "x0 (past its window), y1, p3, y2")
        _ = outbox.linkUp()
        let rest = outbox.takeForFlush(now: self.start + .seconds(2))
        #expect(rest.expired == 1 && self.texts(rest.requests) == ["y1;", "p3;y2;"])
        #expect(rest.requests.map { $0.replayable.map(\.index) } == [[0], [1]])
        #expect(rest.requests.map { $0.replayable.map { String(buffer: $0.bytes) } } == [["y1;"], ["y2;"]])
        let counts = rest.requests.map { request -> Int? in
            if case .discard(let count) = request.replies { return count }
            return nil
        }
        #expect(counts == [1, 2])
        #expect(outbox.pendingBytes == 0)
    }

    /// A batch with commands taken out goes through the reply handler as one: a refusal names
    /// the command at its new place, and a link that dies hands back the right ones.
    @Test func aBatchWithCommandsTakenOutIsAnsweredAtItsNewPlaces() throws {
        var outbox = self.outbox()
        _ = outbox.linkUp()
        _ = outbox.linkLost(now: self.start)
        for text in ["p1;", "x1;", "y1;", "p2;", "y2;"] {
            _ = self.command(text, replayable: !text.hasPrefix("p"), into: &outbox, at: self.start + .seconds(1))
        }
        #expect(outbox.takeReplayable(now: self.start + .seconds(1)) { String(buffer: $0) == "x1;" }.count == 1)
        _ = outbox.linkUp()
        let requests = outbox.takeForFlush(now: self.start + .seconds(2)).requests
        #expect(self.texts(requests) == ["p1;y1;p2;y2;"])
        let refused = NIOLockedValueBox<[String?]>([])
        let handedBack = NIOLockedValueBox<[String]>([])
        let handler = RedisReplyHandler(
            healthCheck: nil, pubSub: false, onPush: { _ in },
            onDiscardedError: { _, command in refused.withLockedValue { $0.append(command.map { String(buffer: $0) }) } },
            onWritable: {},
            onUnanswered: { _, replay in handedBack.withLockedValue { $0 += replay.map { String(buffer: $0) } } })
        let channel = EmbeddedChannel(handler: handler)
        try channel.writeOutbound(requests[0])
        try channel.writeInbound(RESPValue.simpleString("OK"))  // p1
        try channel.writeInbound(RESPValue.error("MOVED 1 127.0.0.1:1"))  // y1
        try channel.writeInbound(RESPValue.error("ERR p2"))  // p2: not replayable
        _ = try channel.finish(acceptAlreadyClosed: true)  // y2 never answered
        #expect(refused.withLockedValue { $0 } == ["y1;", nil])
        #expect(handedBack.withLockedValue { $0 } == ["y2;"])
    }
}
