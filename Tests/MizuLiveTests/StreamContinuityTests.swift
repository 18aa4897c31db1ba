@testable import MizuLive
import NIOCore
import Testing

/// The node's per-topic continuity alone: messages in, deliveries, reads and notices out.
@Suite struct StreamContinuityTests {
    private func entry(_ offset: UInt64, _ epoch: String = "e1") -> StreamContinuity.Entry {
        StreamContinuity.Entry(position: Live.StreamPosition(offset: offset, epoch: epoch), data: ByteBuffer(string: "\(offset)"))
    }

    private func entries(_ offsets: ClosedRange<UInt64>, _ epoch: String = "e1") -> [StreamContinuity.Entry] {
        offsets.map { self.entry($0, epoch) }
    }

    private func position(_ offset: UInt64, _ epoch: String = "e1") -> Live.StreamPosition {
        Live.StreamPosition(offset: offset, epoch: epoch)
    }

    @Test func messagesInOrderAreDeliveredAndRepeatsDropped() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        #expect(continuity.received("t", self.entry(7)) == [.deliver(topic: "t", [self.entry(7)])])
        #expect(continuity.received("t", self.entry(8)) == [.deliver(topic: "t", [self.entry(8)])])
        #expect(continuity.received("t", self.entry(8)).isEmpty, "a repeat is dropped")
        #expect(continuity.received("t", self.entry(3)).isEmpty, "so is anything older")
        #expect(continuity.counts == .init())
    }

    @Test func aGapIsReadAndFilledBeforeAnythingNewer() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        _ = continuity.received("t", self.entry(1))
        // 2 and 3 never came; 4 opens the gap and waits, 5 arrives meanwhile.
        #expect(continuity.received("t", self.entry(4)) == [.read(topic: "t", after: 1)])
        #expect(continuity.received("t", self.entry(5)).isEmpty)
        let actions = continuity.readCompleted("t", epoch: "e1", top: 4, entries: self.entries(2...4))
        #expect(actions == [.deliver(topic: "t", self.entries(2...5))], "the gap, then what waited, once each")
        #expect(continuity.received("t", self.entry(6)) == [.deliver(topic: "t", [self.entry(6)])])
        #expect(continuity.counts == .init(gaps: 1, caughtUp: 3, unfillable: 0))
    }

    @Test func whatTheStreamNoLongerHoldsIsToldNotSwallowed() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        _ = continuity.received("t", self.entry(1))
        #expect(continuity.received("t", self.entry(50)) == [.read(topic: "t", after: 1)])
        // The history was trimmed to its last 10 (41...50).
        let actions = continuity.readCompleted("t", epoch: "e1", top: 50, entries: self.entries(41...50))
        #expect(actions == [.notice(topic: "t", resumeAfter: self.position(40)), .deliver(topic: "t", self.entries(41...50))])
        #expect(continuity.counts.unfillable == 1)
    }

    @Test func aNewEpochIsToldAndReadFromItsStart() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        _ = continuity.received("t", self.entry(9))
        // Redis lost its data: the new epoch's third message is the first to arrive.
        #expect(continuity.received("t", self.entry(3, "e2")) == [.notice(topic: "t", resumeAfter: self.position(0, "e2")), .read(topic: "t", after: 0)])
        #expect(continuity.readCompleted("t", epoch: "e2", top: 3, entries: self.entries(1...3, "e2")) == [.deliver(topic: "t", self.entries(1...3, "e2"))])
        #expect(continuity.received("t", self.entry(4, "e2")) == [.deliver(topic: "t", [self.entry(4, "e2")])])
    }

    @Test func aQuietTopicsMissedMessageIsFoundByItsPosition() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        _ = continuity.received("t", self.entry(1))
        _ = continuity.received("quiet", self.entry(5))
        continuity.linkLost()
        // After the resubscribe, Redis says: t is where we are, quiet has one more.
        let reads = continuity.positions([("t", "e1", 1), ("quiet", "e1", 6), ("unknown", "e1", 3)])
        #expect(reads == [.read(topic: "quiet", after: 5)])
        #expect(continuity.readCompleted("quiet", epoch: "e1", top: 6, entries: [self.entry(6)]) == [.deliver(topic: "quiet", [self.entry(6)])])
        // A copy of 6 that was in flight on pub/sub is a repeat.
        #expect(continuity.received("quiet", self.entry(6)).isEmpty)
    }

    /// An epoch's top only grows: a stream below what was delivered from it lost messages (a
    /// promoted replica lacking the last writes), and a new epoch is asked for, at each check
    /// that finds it so (the script that begins it checks again, so asking twice is harmless).
    @Test func aStreamBelowWhatWasDeliveredAsksForANewEpoch() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        _ = continuity.received("t", self.entry(1))
        _ = continuity.received("t", self.entry(2))
        _ = continuity.received("t", self.entry(3))
        #expect(continuity.positions([("t", "e1", 1)]) == [.streamBehind(topic: "t", delivered: self.position(3))])
        #expect(continuity.counts.behind == 1 && continuity.counts.gaps == 0)
        #expect(continuity.positions([("t", "e1", 3)]).isEmpty, "at its top: nothing")
        #expect(continuity.positions([("t", "e2", 0)]) == [.read(topic: "t", after: 3)], "another epoch is read, not rewound")
    }

    @Test func aSeededPositionDeliversWhatWasInFlightOnce() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        // A subscriber's read after the SUBSCRIBE found 10; 9 and 10 were published after it.
        continuity.seed("t", epoch: "e1", top: 10)
        #expect(continuity.received("t", self.entry(9)) == [.deliver(topic: "t", [self.entry(9)])])
        #expect(continuity.received("t", self.entry(10)) == [.deliver(topic: "t", [self.entry(10)])])
        #expect(continuity.received("t", self.entry(11)) == [.deliver(topic: "t", [self.entry(11)])])
        #expect(continuity.received("t", self.entry(10)).isEmpty, "past the seed, a repeat again")
        // A topic without history yet: its first epoch is taken without a notice.
        continuity.seed("new", epoch: "", top: 0)
        #expect(continuity.received("new", self.entry(2, "e7")) == [.read(topic: "new", after: 0)])
        #expect(continuity.readCompleted("new", epoch: "e7", top: 2, entries: self.entries(1...2, "e7")) == [.deliver(topic: "new", self.entries(1...2, "e7"))])
    }

    @Test func aLargeGapIsReadInBoundedSteps() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        _ = continuity.received("t", self.entry(1))
        _ = continuity.received("t", self.entry(2_500))
        let first = continuity.readCompleted("t", epoch: "e1", top: 2_500, entries: self.entries(2...1_001))
        #expect(first == [.deliver(topic: "t", self.entries(2...1_001)), .read(topic: "t", after: 1_001)])
        let second = continuity.readCompleted("t", epoch: "e1", top: 2_500, entries: self.entries(1_002...2_001))
        #expect(second == [.deliver(topic: "t", self.entries(1_002...2_001)), .read(topic: "t", after: 2_001)])
        let last = continuity.readCompleted("t", epoch: "e1", top: 2_500, entries: self.entries(2_002...2_500))
        #expect(last == [.deliver(topic: "t", self.entries(2_002...2_500))])
    }

    @Test func heldMessagesAreBoundedInBytesAndTheRestIsRead() {
        var continuity = StreamContinuity(maxHeldBytes: 4)  // "3", "4", "5" are a byte each
        _ = continuity.received("t", self.entry(1))
        _ = continuity.received("t", self.entry(3))
        for offset: UInt64 in 4...9 { _ = continuity.received("t", self.entry(offset)) }
        #expect(continuity.streams["t"]!.held.map(\.position.offset) == [3, 4, 5, 6])
        // The read (sent before 4...9 came) ends at 3; 7...9 are left to the next read.
        #expect(continuity.readCompleted("t", epoch: "e1", top: 3, entries: self.entries(2...3)) == [.deliver(topic: "t", self.entries(2...6)), .read(topic: "t", after: 6)])
        #expect(continuity.readCompleted("t", epoch: "e1", top: 9, entries: self.entries(7...9)) == [.deliver(topic: "t", self.entries(7...9))])
    }

    @Test func somethingForeignOnTheChannelCannotStallOrMoveTheTopic() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        _ = continuity.received("t", self.entry(1))
        // Another program publishes a bogus position far ahead; the read shows it is not there.
        #expect(continuity.received("t", self.entry(1_000_000)) == [.read(topic: "t", after: 1)])
        #expect(continuity.readCompleted("t", epoch: "e1", top: 1, entries: []).isEmpty)
        #expect(continuity.received("t", self.entry(2)) == [.deliver(topic: "t", [self.entry(2)])])
    }

    @Test func aFailedReadIsRetriedWithWhatWaited() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        _ = continuity.received("t", self.entry(1))
        _ = continuity.received("t", self.entry(3))
        continuity.readFailed("t")
        #expect(continuity.retry() == [.read(topic: "t", after: 1)])
        #expect(continuity.retry().isEmpty, "one read at a time")
        #expect(continuity.readCompleted("t", epoch: "e1", top: 3, entries: self.entries(2...3)) == [.deliver(topic: "t", self.entries(2...3))])
    }

    @Test func anExpiredHistoryLetsWhatWaitedGoOutAfterANotice() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        _ = continuity.received("t", self.entry(1))
        _ = continuity.received("t", self.entry(4))
        #expect(continuity.readCompleted("t", epoch: "", top: 0, entries: []) == [.notice(topic: "t", resumeAfter: self.position(3)), .deliver(topic: "t", [self.entry(4)])])
        #expect(continuity.received("t", self.entry(5)) == [.deliver(topic: "t", [self.entry(5)])])
    }

    @Test func onlyTopicsQuietSinceTheLastCheckAreChecked() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        _ = continuity.received("busy", self.entry(1))
        continuity.seed("quiet", epoch: "e1", top: 4)
        // A seed is a position just read: not checked in the period it was read in (a check
        // then would race the messages published since the read, still on their way).
        #expect(continuity.quietTopics() == [])
        #expect(Set(continuity.quietTopics()) == ["busy", "quiet"], "neither heard anything since")
        _ = continuity.received("busy", self.entry(2))
        #expect(continuity.quietTopics() == ["quiet"])
    }

    /// Offsets at and past the type's ends (another program on the channel, or in Redis):
    /// nothing traps, nothing moves the topic.
    @Test func extremeOffsetsAreIgnoredNotTrapped() {
        var continuity = StreamContinuity(maxHeldBytes: 1 << 20)
        #expect(continuity.received("t", self.entry(.max)).isEmpty)
        #expect(continuity.received("t", self.entry(0)).isEmpty)
        #expect(continuity.streams["t"] == nil)
        _ = continuity.received("t", self.entry(1))
        #expect(continuity.received("t", self.entry(UInt64.max)).isEmpty)
        #expect(continuity.received("t", self.entry(Live.StreamPosition.maxOffset)) == [.read(topic: "t", after: 1)])
        #expect(continuity.readCompleted("t", epoch: "e1", top: .max, entries: []).isEmpty)
        #expect(continuity.retry() == [.read(topic: "t", after: 1)])
        #expect(continuity.readCompleted("t", epoch: "e1", top: 1, entries: []).isEmpty, "the foreign message is not in the stream")
        #expect(continuity.positions([("t", "e1", .max)]).isEmpty)
        continuity.seed("s", epoch: "e1", top: .max)
        #expect(continuity.streams["s"] == nil)
        // An expired history with a held message at offset 0 cannot exist: 0 is never held.
        #expect(continuity.received("t", self.entry(2)) == [.deliver(topic: "t", [self.entry(2)])])
    }
}
