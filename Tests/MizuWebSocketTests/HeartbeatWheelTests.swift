import NIOCore
import NIOEmbedded
import Testing

@testable import MizuWebSocket
import MizuTestSupport

/// The per-loop heartbeat timer, driven by an EmbeddedEventLoop's clock: no sockets, no timing.
@Suite struct HeartbeatWheelTests {
    final class Member: HeartbeatMember {
        var pings = 0
        var position: HeartbeatWheel<Member>.Position?
        var onPing: () -> Void = {}
        func heartbeat() {
            self.pings += 1
            self.onPing()
        }
        func heartbeatMoved(to position: HeartbeatWheel<Member>.Position) { self.position = position }
    }

    @Test func theFirstPingComesBetweenSevenEighthsAndOneIntervalAfterJoining() {
        let loop = EmbeddedEventLoop()
        let wheel = HeartbeatWheel<Member>(eventLoop: loop, interval: .milliseconds(800))
        let early = Member()
        early.position = wheel.add(early)
        loop.advanceTime(by: .milliseconds(350))
        let late = Member()
        late.position = wheel.add(late)
        loop.advanceTime(by: .milliseconds(449))  // t = 799
        #expect(early.pings == 0 && late.pings == 0)
        loop.advanceTime(by: .milliseconds(1))  // t = 800: one interval after `early` joined
        #expect(early.pings == 1 && late.pings == 0)
        loop.advanceTime(by: .milliseconds(299))  // t = 1099: 749 ms after `late` joined
        #expect(late.pings == 0)
        loop.advanceTime(by: .milliseconds(1))  // t = 1100: 750 ms, within (700, 800]
        #expect(late.pings == 1)
        loop.advanceTime(by: .milliseconds(800))
        #expect(early.pings == 2 && late.pings == 2, "then once per interval")
    }

    @Test func leavingMovesTheLastMemberIntoTheSeatAndOnlyMembersArePinged() {
        let loop = EmbeddedEventLoop()
        let wheel = HeartbeatWheel<Member>(eventLoop: loop, interval: .milliseconds(80))
        let members = (0..<3).map { _ in Member() }
        for member in members { member.position = wheel.add(member) }
        wheel.leave(at: members[0].position!)
        #expect(members[2].position?.index == 0, "the last one took the free seat")
        wheel.leave(at: members[2].position!)  // its new seat, not the one it joined at
        loop.advanceTime(by: .milliseconds(80))
        #expect(members.map(\.pings) == [0, 1, 0])
    }

    @Test func aMemberThatLeavesWhilePingedDoesNotDisturbTheOthers() {
        let loop = EmbeddedEventLoop()
        let wheel = HeartbeatWheel<Member>(eventLoop: loop, interval: .milliseconds(80))
        let members = (0..<4).map { _ in Member() }
        for member in members { member.position = wheel.add(member) }
        // The first ping closes its connection, which leaves the wheel mid-tick.
        members[0].onPing = { wheel.leave(at: members[0].position!) }
        loop.advanceTime(by: .milliseconds(80))
        #expect(members.map(\.pings) == [1, 1, 1, 1])
        loop.advanceTime(by: .milliseconds(80))
        #expect(members.map(\.pings) == [1, 2, 2, 2])
    }

    @Test func anEmptyWheelStopsItsTimerAndSaysSo() {
        let loop = EmbeddedEventLoop()
        var emptied = 0
        let wheel = HeartbeatWheel<Member>(eventLoop: loop, interval: .milliseconds(80)) { emptied += 1 }
        let member = Member()
        member.position = wheel.add(member)
        wheel.leave(at: member.position!)
        #expect(emptied == 1)
        // The stopped timer is no longer scheduled: a wheel that kept ticking would ping a
        // member that joins later at the old timer's next tick (10 ms away), not 80 ms after.
        loop.advanceTime(by: .milliseconds(5))
        member.position = wheel.add(member)
        loop.advanceTime(by: .milliseconds(79))
        #expect(member.pings == 0)
        loop.advanceTime(by: .milliseconds(1))
        #expect(member.pings == 1, "a new member starts it again, one interval after joining")
    }
}
