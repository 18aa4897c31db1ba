@testable import MizuLiveClient
import NIOCore
import Testing

/// PROTOCOL.md's ordering rules as a value: duplicates dropped, gaps noticed, unrecoverable
/// answers and notices taken as the new start.
@Suite struct StreamTrackerTests {
    private let e = "epoch-a"

    private func at(_ offset: UInt64, _ epoch: String = "epoch-a") -> StreamPosition { StreamPosition(offset: offset, epoch: epoch) }

    @Test func theNextOffsetIsDeliveredOlderOnesAreDuplicatesAndAJumpIsAGap() {
        var tracker = StreamTracker(after: self.at(5))
        #expect(tracker.receive(self.at(6)) == .deliver)
        #expect(tracker.receive(self.at(6)) == .duplicate)
        #expect(tracker.receive(self.at(3)) == .duplicate)
        #expect(tracker.receive(self.at(8)) == .gap, "7 is missing")
        #expect(tracker.resumePosition == self.at(6), "a gap does not move the position: the resubscribe starts after 6")
        #expect(tracker.receive(self.at(7, "epoch-b")) == .gap, "another epoch, unannounced")
        #expect(tracker.receive(self.at(7)) == .deliver)
        #expect(tracker.receive(nil) == .deliver, "a message without a position (no history) is never held back")
        #expect(tracker.resumePosition == self.at(7))
    }

    @Test func withoutAPositionTheFirstMessageIsTheStart() {
        var tracker = StreamTracker()
        #expect(tracker.receive(self.at(41)) == .deliver)
        #expect(tracker.receive(self.at(42)) == .deliver)
        #expect(tracker.receive(self.at(44)) == .gap)
    }

    @Test func aRecoveredAnswerKeepsThePositionSoTheReplayIsCheckedAgainstIt() {
        var tracker = StreamTracker(after: self.at(10))
        let trackerMissed = tracker.subscribed(recovered: true, at: self.at(15), askedAfter: self.at(10), history: 50)
        #expect(!trackerMissed)
        #expect(tracker.receive(self.at(9)) == .duplicate)
        var arrivals: [StreamTracker.Arrival] = []
        for offset in 11...15 { arrivals.append(tracker.receive(self.at(UInt64(offset)))) }
        #expect(arrivals == Array(repeating: .deliver, count: 5))
    }

    @Test func aFailedRecoveryIsReportedAndTheLatestMessagesStartTheStreamAgain() {
        // Same epoch, messages after 10 trimmed: the latest come (from 40), older ones dropped.
        var tracker = StreamTracker(after: self.at(10))
        let trackerMissed = tracker.subscribed(recovered: false, at: self.at(45), askedAfter: self.at(10), history: 5)
        #expect(trackerMissed, "missed")
        #expect(tracker.receive(self.at(8)) == .duplicate)
        #expect(tracker.receive(self.at(41)) == .deliver, "the jump over what was trimmed is taken once")
        #expect(tracker.receive(self.at(43)) == .gap, "then the rules hold again")

        // Another epoch (the history was lost): everything of the new one is new.
        var lost = StreamTracker(after: self.at(10))
        let lostMissed = lost.subscribed(recovered: false, at: self.at(3, "epoch-b"), askedAfter: self.at(10), history: 50)
        #expect(lostMissed)
        #expect(lost.receive(self.at(1, "epoch-b")) == .deliver)
        #expect(lost.receive(self.at(2, "epoch-b")) == .deliver)
    }

    @Test func aFirstSubscribeReportsNothingMissedAndStartsWhereTheAnswerSays() {
        var live = StreamTracker()
        let liveMissed = live.subscribed(recovered: false, at: self.at(7), askedAfter: nil, history: 0)
        #expect(!liveMissed)
        #expect(live.resumePosition == self.at(7), "a reconnect before any message still recovers from here")
        #expect(live.receive(self.at(9)) == .gap)
        #expect(live.receive(self.at(8)) == .deliver)

        var latest = StreamTracker()
        let latestMissed = latest.subscribed(recovered: false, at: self.at(7), askedAfter: nil, history: 3)
        #expect(!latestMissed)
        #expect(latest.receive(self.at(5)) == .deliver)
        #expect(latest.receive(self.at(6)) == .deliver)

        var plain = StreamTracker()
        let plainMissed = plain.subscribed(recovered: false, at: nil, askedAfter: nil, history: 0)
        #expect(!plainMissed)
        #expect(plain.resumePosition == nil)
    }

    @Test func aNoticeIsTheNewStart() {
        var tracker = StreamTracker(after: self.at(10))
        tracker.notice(self.at(0, "epoch-b"))
        #expect(tracker.receive(self.at(1, "epoch-b")) == .deliver)
        tracker.notice(self.at(20, "epoch-b"))
        #expect(tracker.receive(self.at(21, "epoch-b")) == .deliver)
    }

    @Test func theLargestOffsetAServerCanSendCannotOverflow() {
        var tracker = StreamTracker(after: self.at(StreamPosition.maxOffset))
        #expect(tracker.receive(self.at(StreamPosition.maxOffset)) == .duplicate)
        #expect(tracker.receive(self.at(0)) == .duplicate)
    }
}

/// Every form of server frame, and hostile numbers and shapes, read without trapping.
@Suite struct ServerFrameTests {
    private func parse(_ text: String) -> ServerFrame { ServerFrame.parse(Array(text.utf8)) }

    @Test func theProtocolsFormsAreRead() {
        #expect(self.parse(#"{"topic":"chat:a","data":{"x":[1,2]},"offset":42,"epoch":"9f"}"#)
            == .message(LiveMessage(topic: "chat:a", data: Array(#"{"x":[1,2]}"#.utf8), position: StreamPosition(offset: 42, epoch: "9f"))))
        #expect(self.parse(#"{"topic":"plain","data":"hi"}"#) == .message(LiveMessage(topic: "plain", data: Array(#""hi""#.utf8))))
        #expect(self.parse(#"{"topic":"chat:a","recovered":false,"offset":41,"epoch":"9f"}"#)
            == .notice(topic: "chat:a", position: StreamPosition(offset: 41, epoch: "9f")))
        #expect(self.parse(#"{"topic":"reply","data":{"id":7,"result":{"topic":"t"}}}"#) == .reply(id: 7, .result(Array(#"{"topic":"t"}"#.utf8))))
        #expect(self.parse(#"{"topic":"reply","data":{"id":8,"error":{"code":"busy","message":"m","temporary":true}}}"#)
            == .reply(id: 8, .error(code: "busy", message: "m", temporary: true)))
        #expect(self.parse(#" { "data" : null , "topic" : "t\u00e9" } "#) == .message(LiveMessage(topic: "té", data: Array("null".utf8))))
    }

    @Test func hostileNumbersAndShapesAreUnreadableOrPositionless() {
        // An offset no stream can reach, negative, fractional, or a string: not a position.
        for offset in ["9007199254740992", "18446744073709551616", "-1", "1.5", "1e3", "\"5\"", "99999999999999999999999"] {
            #expect(self.parse(#"{"topic":"t","data":1,"offset":\#(offset),"epoch":"e"}"#) == .message(LiveMessage(topic: "t", data: [UInt8(ascii: "1")])))
        }
        #expect(self.parse(#"{"topic":"t","data":1,"offset":9007199254740991,"epoch":"e"}"#)
            == .message(LiveMessage(topic: "t", data: [UInt8(ascii: "1")], position: StreamPosition(offset: StreamPosition.maxOffset, epoch: "e"))))
        for text in [
            "", "[]", "null", #"{"data":1}"#, #"{"topic":5,"data":1}"#, #"{"topic":"t""#, #"{"topic":"t","data":1} x"#,
            #"{"topic":"reply","data":{"result":{}}}"#, #"{"topic":"reply","data":{"id":-1,"result":{}}}"#,
            #"{"topic":"reply","data":{"id":1}}"#, #"{"topic":"t","recovered":true,"offset":1,"epoch":"e"}"#,
            String(repeating: "[", count: 10_000), #"{"topic":"t","data":"\ud800"}"#,
        ] {
            #expect(self.parse(text) == .unreadable, "\(text.prefix(40))")
        }
    }

    @Test func commandsAreEncodedAsTheProtocolSays() {
        let position = StreamPosition(offset: 3, epoch: "e\"1")
        #expect(String(buffer: ClientCommand.subscribe(topic: "chat:a", since: position, history: 50).encode(id: 9))
            == #"{"topic":"subscribe","data":{"id":9,"topic":"chat:a","since":{"offset":3,"epoch":"e\"1"},"history":50}}"#)
        #expect(String(buffer: ClientCommand.publish(topic: "t\n", data: Array("[1]".utf8)).encode(id: 1))
            == #"{"topic":"publish","data":{"id":1,"topic":"t\n","data":[1]}}"#)
        #expect(String(buffer: ClientCommand.history(topic: "h", since: nil, limit: -5).encode(id: 2)) == #"{"topic":"history","data":{"id":2,"topic":"h","limit":0}}"#)
        #expect(String(buffer: ClientCommand.message(topic: "chat", data: Array("{}".utf8)).encode(id: 4)) == #"{"topic":"chat","data":{}}"#)
        #expect(LiveClient.adding(query: "token", value: "a b&c=d/é", to: "ws://h/ws") == "ws://h/ws?token=a%20b%26c%3Dd%2F%C3%A9")
        #expect(LiveClient.adding(query: "token", value: "x", to: "ws://h/ws?room=1") == "ws://h/ws?room=1&token=x")
    }
}
