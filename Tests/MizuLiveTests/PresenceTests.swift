import Foundation
import Mizu
@testable import MizuLive
import MizuTestSupport
import NIOCore
import Testing

/// Presence on topics starting with `room`; events on `<topic>:presence`, a snapshot on subscribe.
func presenceOptions(expiry: TimeAmount = .seconds(30)) -> (inout Live.Options) -> Void {
    { options in
        options.presence = Live.PresenceOptions(
            topics: { $0.hasPrefix("room") && !$0.hasSuffix(":presence") }, eventTopic: { "\($0):presence" }, snapshotOnSubscribe: true, expiry: expiry)
    }
}

/// Subscribes through the test options' `subscribe` message.
extension TestWebSocket {
    func subscribe(_ topic: String) async throws {
        try await self.send(text: #"{"topic":"subscribe","data":"\#(topic)"}"#)
    }
}

@Suite(.timeLimit(.minutes(10))) struct PresenceTests {
    @Test func membersJoinLeaveAndNewSubscribersGetASnapshot() async throws {
        try await withLiveServer(presenceOptions()) { server, _, port in
            let watcher = try await TestWebSocket.live(port: port, user: "watch")
            try await watcher.subscribe("room:presence")
            _ = try await eventually("watcher subscribed") { server.subscriberCount("room:presence") == 1 ? true : nil }
            let ann = try await TestWebSocket.live(port: port, user: "ann")
            try await ann.subscribe("room:presence")  // to see its own snapshot
            try await ann.subscribe("room")
            let joined = try await watcher.readMessage()
            #expect(joined.topic == "room:presence" && joined.data.contains(#""type":"join""#) && joined.data.contains(#""info":"ann""#))
            // The subscriber's snapshot (sent to it alone) lists it, with the value onAuth returned.
            var annSaw: [Received] = []
            for _ in 0..<2 { annSaw.append(try await ann.readMessage()) }
            let snapshot = try #require(annSaw.first { $0.data.contains(#""type":"snapshot""#) })
            #expect(snapshot.data.contains(#""info":"ann""#) && snapshot.data.contains(#""joinedAt""#))
            let bob = try await TestWebSocket.live(port: port, user: "bob")
            try await bob.subscribe("room")
            _ = try await watcher.readMessage()
            let members = try await server.presence("room")
            #expect(members.map { String(decoding: $0.info, as: UTF8.self) } == [#""ann""#, #""bob""#])
            #expect(try await server.presenceCount("room") == 2)
            #expect(try await server.presence("elsewhere").isEmpty)
            // Closing leaves: the event names the session, and the member is gone.
            let bobID = try #require(members.last?.session)
            try await bob.close()
            let left = try await watcher.readMessage()
            #expect(left.data == #"{"session":"\#(bobID)","type":"leave"}"#)
            #expect(try await server.presence("room").map(\.session) == [members[0].session])
            // A topic without presence tracks nothing and publishes nothing.
            try await ann.subscribe("other")
            _ = try await eventually("ann on other") { server.subscriberCount("other") == 1 ? true : nil }
            #expect(try await server.presence("other").isEmpty)
            try await ann.send(text: #"{"topic":"unsubscribe-all","data":null}"#)
            try await ann.close()
            #expect(try await watcher.readMessage().data.contains(#""type":"leave""#))
            #expect(try await server.presenceCount("room") == 0)
            try await watcher.close()
        }
    }

    @Test func aMembersDateFromAnywhereEncodesWithoutTrapping() {
        // The application builds members too (and Redis hands back what it holds): a date no
        // clock reads is written as the nearest integer JSON carries exactly, never a trap.
        func encoded(_ date: Date) -> String {
            var buffer = ByteBuffer()
            Live.PresenceMember(session: "s", info: Data("1".utf8), joinedAt: date).encode(into: &buffer)
            return String(buffer: buffer)
        }
        #expect(encoded(Date(timeIntervalSince1970: 1.5)) == #"{"session":"s","info":1,"joinedAt":1500}"#)
        #expect(encoded(Date(timeIntervalSince1970: 1e300)).hasSuffix(#""joinedAt":9007199254740991}"#))
        #expect(encoded(Date(timeIntervalSince1970: -1e300)).hasSuffix(#""joinedAt":-9007199254740991}"#))
        #expect(encoded(Date(timeIntervalSince1970: .infinity)).hasSuffix(#""joinedAt":0}"#))
        #expect(encoded(Date(timeIntervalSince1970: .nan)).hasSuffix(#""joinedAt":0}"#))
    }

    @Test func infoIsTheApplicationsProjection() async throws {
        try await withLiveServer({ options in
            options.presence = Live.PresenceOptions(topics: { _ in true }, info: { session in Data(#"{"name":"\#(session.value as? String ?? "")"}"#.utf8) })
        }) { server, _, port in
            let socket = try await TestWebSocket.live(port: port, user: "zoe")
            try await socket.subscribe("any")
            let members = try await eventuallyAsync("zoe present") { try await server.presence("any").first }
            #expect(members.info == Data(#"{"name":"zoe"}"#.utf8))
            try await socket.close()
        }
    }
}

@Suite struct LogThrottleTests {
    @Test func oneLinePerInterval() {
        // Given times: a call the machine delays must not decide the outcome.
        let throttle = LogThrottle(every: .milliseconds(200))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(throttle.allows(at: start))
        #expect(!throttle.allows(at: start) && !throttle.allows(at: start + .milliseconds(199)))
        #expect(throttle.allows(at: start + .milliseconds(200)))
        #expect(!throttle.allows(at: start + .milliseconds(250)))
        #expect(throttle.allows(at: start + .milliseconds(450)))
    }
}
