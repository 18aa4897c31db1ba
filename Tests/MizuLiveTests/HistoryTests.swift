import Foundation
import Mizu
@testable import MizuLive
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Options for history tests: topics starting with `h:` keep `size` messages for `ttl`; the
/// client's `recover` message (`{"topic":T,"offset":N,"epoch":E,"latest":L}`, offset and
/// epoch optional) subscribes from that position, answered first by
/// `{"topic":"subscribed","data":{"recovered":B,"offset":N,"epoch":E,"replayed":R}}`.
func historyOptions(size: Int = 100, ttl: TimeAmount = .hours(1), queueSize: Int = 256) -> (inout Live.Options) -> Void {
    { options in
        options.queueSize = queueSize
        options.history = { $0.hasPrefix("h:") ? Live.HistoryPolicy(size: size, ttl: ttl) : nil }
        let previous = options.onMessage
        options.onMessage = { context, session, topic, data in
            guard topic == "recover" else { return await previous?(context, session, topic, data) ?? () }
            struct Request: Decodable { var topic: String; var offset: UInt64?; var epoch: String?; var latest: Int? }
            guard let request = try? JSONDecoder().decode(Request.self, from: data) else { return }
            let since = request.offset.map { Live.StreamPosition(offset: $0, epoch: request.epoch ?? "") }
            await session.server.subscribe(session, request.topic, recoverFrom: since, latest: request.latest ?? 0) { result in
                let top = result.top.map { #","offset":\#($0.offset),"epoch":"\#($0.epoch)""# } ?? ""
                return Live.Message(topic: "subscribed", data: Data(#"{"recovered":\#(result.recovered),"replayed":\#(result.replayed)\#(top)}"#.utf8))
            }
        }
    }
}

extension Live.Session {
    /// The test's server (the sessions of these tests are all made by one).
    var server: Live.Server { Live.Server(core: self.core) }
}

/// A message as a history client sees it.
struct Received: Equatable {
    var topic: String
    var data: String
    var offset: UInt64?
    var epoch: String?
    /// `{"topic":T,"recovered":false,"offset":O,"epoch":E}`: messages before the next may be missing.
    var isNotice = false

    init(_ text: String) throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        self.topic = try #require(object["topic"] as? String)
        if let data = object["data"] {
            self.data = String(decoding: try JSONSerialization.data(withJSONObject: data, options: [.fragmentsAllowed, .sortedKeys]), as: UTF8.self)
        } else {
            self.data = ""
        }
        self.offset = (object["offset"] as? NSNumber)?.uint64Value
        self.epoch = object["epoch"] as? String
        self.isNotice = object["data"] == nil && (object["recovered"] as? Bool) == false
    }
}

extension TestWebSocket {
    func readMessage(timeout: TimeAmount = .seconds(5)) async throws -> Received {
        try Received(try await self.readText(timeout: timeout))
    }

    /// Sends `recover` and returns the `subscribed` answer.
    func recover(_ topic: String, from position: Live.StreamPosition? = nil, latest: Int = 0) async throws -> Received {
        let since = position.map { #","offset":\#($0.offset),"epoch":"\#($0.epoch)""# } ?? ""
        try await self.send(text: #"{"topic":"recover","data":{"topic":"\#(topic)","latest":\#(latest)\#(since)}}"#)
        let answer = try await self.readMessage()
        #expect(answer.topic == "subscribed")
        return answer
    }
}

@Suite(.timeLimit(.minutes(10))) struct HistoryTests {
    @Test func memoryHistoryHoldsAtMostItsBytesOverAllTopicsOldestFirst() {
        // A client that may name topics (chat rooms) publishes to thousands of them: each
        // topic's size and TTL hold, but only the byte bound holds their sum, topics' own
        // costs included. Oldest go first, and a topic left with nothing is forgotten.
        let message = Data(repeating: UInt8(ascii: "x"), count: 1000)
        let limit = 100_000
        let history = MemoryHistory(limit: limit)
        let policy = Live.HistoryPolicy(size: 100, ttl: .hours(24))
        let start = NIODeadline.now()
        var positions: [Live.StreamPosition] = []
        for room in 0..<2_000 {
            positions.append(history.append("room:\(room)", message, policy: policy, now: start))
            #expect(history.heldBytes <= limit)
        }
        let roomCost = message.count + MemoryHistory.entryOverhead + MemoryHistory.streamCost("room:1999")
        #expect(history.heldBytes > limit - roomCost && history.streamCount == history.heldBytes / roomCost, "\(history.heldBytes)")
        let oldest = history.read("room:0", since: nil, count: 10, policy: policy, now: start)
        #expect(oldest.entries.isEmpty && oldest.top == 0 && oldest.epoch == "", "evicted and forgotten: its name no longer held")
        #expect(!oldest.covers(Live.StreamPosition(offset: 0, epoch: positions[0].epoch)), "a recovery from before it is too late")
        // Shards give up their oldest in turn: what is kept is the last few dozen rooms.
        #expect((0..<1_500).allSatisfy { history.read("room:\($0)", since: nil, count: 1, policy: policy, now: start).epoch.isEmpty })
        // A topic keeping several messages loses its oldest first and keeps its name.
        let deep = MemoryHistory(limit: 3 * (message.count + MemoryHistory.entryOverhead) + MemoryHistory.streamCost("deep"))
        for _ in 0..<5 { _ = deep.append("deep", message, policy: policy, now: start) }
        let kept = deep.read("deep", since: nil, count: 10, policy: policy, now: start)
        #expect(kept.entries.map(\.position.offset) == [3, 4, 5] && kept.top == 5)
        // Entries trimmed by size are forgotten by the eviction order too: it stays
        // proportional to what is kept, however long a busy topic runs.
        let busy = MemoryHistory(limit: .max)
        _ = busy.append("old", message, policy: policy, now: start)
        for _ in 0..<20_000 { _ = busy.append("busy", Data("1".utf8), policy: Live.HistoryPolicy(size: 1, ttl: .hours(24)), now: start) }
        #expect(busy.orderCount <= 2 * 2 + 1024 + 1, "\(busy.orderCount)")
        #expect(busy.heldBytes == message.count + 1 + 2 * MemoryHistory.entryOverhead + MemoryHistory.streamCost("old") + MemoryHistory.streamCost("busy"))
        // Expired and swept: nothing held.
        busy.sweep(now: start + .hours(25))
        #expect(busy.heldBytes == 0 && busy.streamCount == 0)
    }

    @Test func memoryHistoryKeepsTheLastMessagesForTheTTL() async throws {
        let history = MemoryHistory()
        let policy = Live.HistoryPolicy(size: 3, ttl: .seconds(10))
        let start = NIODeadline.now()
        for index in 1...5 { _ = history.append("t", Data("\(index)".utf8), policy: policy, now: start + .seconds(Int64(index))) }
        let all = history.read("t", since: nil, count: 10, policy: policy, now: start + .seconds(6))
        #expect(all.top == 5 && all.entries.map { String(decoding: $0.data, as: UTF8.self) } == ["3", "4", "5"])
        #expect(all.entries.map(\.position.offset) == [3, 4, 5])
        // Since a position: after it, and whether that is everything after it.
        let after = history.read("t", since: 3, count: .max, policy: policy, now: start + .seconds(6))
        #expect(after.entries.map(\.position.offset) == [4, 5])
        #expect(after.covers(Live.StreamPosition(offset: 3, epoch: all.epoch)))
        #expect(after.covers(Live.StreamPosition(offset: 2, epoch: all.epoch)) == false)  // 3 is not in it
        let fromTwo = history.read("t", since: 2, count: .max, policy: policy, now: start + .seconds(6))
        #expect(fromTwo.covers(Live.StreamPosition(offset: 2, epoch: all.epoch)))
        let fromOne = history.read("t", since: 1, count: .max, policy: policy, now: start + .seconds(6))
        #expect(fromOne.covers(Live.StreamPosition(offset: 1, epoch: all.epoch)) == false)  // 2 was trimmed by size
        #expect(fromTwo.covers(Live.StreamPosition(offset: 2, epoch: "other")) == false)
        #expect(fromTwo.covers(Live.StreamPosition(offset: 9, epoch: all.epoch)) == false)  // from the future
        // A read asks for what it needs: the first `count` after a position; they continue the
        // stream, though the top is further on.
        let firstOne = history.read("t", since: 3, count: 1, policy: policy, now: start + .seconds(6))
        #expect(firstOne.entries.map(\.position.offset) == [4] && firstOne.top == 5)
        #expect(firstOne.covers(Live.StreamPosition(offset: 3, epoch: all.epoch), reading: 1))
        #expect(!firstOne.covers(Live.StreamPosition(offset: 3, epoch: all.epoch)), "not all the way to the top")
        // Older than the TTL: gone (the stream keeps its position).
        let later = history.read("t", since: nil, count: 10, policy: policy, now: start + .seconds(14) + .milliseconds(500))
        #expect(later.entries.map(\.position.offset) == [5] && later.top == 5 && later.epoch == all.epoch)
        // Reading a topic nobody published to creates nothing (clients cannot grow the table).
        let unknown = history.read("never", since: nil, count: 10, policy: policy, now: start)
        #expect(unknown.epoch == "" && unknown.top == 0 && unknown.entries.isEmpty && history.streamCount == 1)
        #expect(unknown.covers(Live.StreamPosition(offset: 0, epoch: "")))
        // All expired and idle for a TTL: forgotten; the next message starts a new epoch.
        history.sweep(now: start + .seconds(30))
        #expect(history.streamCount == 0)
        let fresh = history.append("t", Data("x".utf8), policy: policy, now: start + .seconds(31))
        #expect(fresh.offset == 1 && fresh.epoch != all.epoch)
    }

    @Test func messagesCarryTheirPositionAndLateJoinersGetTheLatest() async throws {
        try await withLiveServer(historyOptions(size: 5)) { server, _, port in
            for index in 1...7 { server.publish("h:room", Data(#"{"n":\#(index)}"#.utf8)) }
            server.publish("plain", Data("1".utf8))
            let socket = try await TestWebSocket.live(port: port, user: "bob")
            let answer = try await socket.recover("h:room", latest: 3)
            #expect(answer.data.contains(#""recovered":false"#) && answer.data.contains(#""offset":7"#) && answer.data.contains(#""replayed":3"#))
            var replayed: [Received] = []
            for _ in 0..<3 { replayed.append(try await socket.readMessage()) }
            #expect(replayed.map(\.data) == [#"{"n":5}"#, #"{"n":6}"#, #"{"n":7}"#])
            #expect(replayed.map(\.offset) == [5, 6, 7] && Set(replayed.compactMap(\.epoch)).count == 1)
            server.publish("h:room", Data(#"{"n":8}"#.utf8))
            let live = try await socket.readMessage()
            #expect(live.offset == 8 && live.epoch == replayed[0].epoch && live.data == #"{"n":8}"#)
            // The wire form: data first as always, then the position.
            let page = try await server.history("h:room", since: Live.StreamPosition(offset: 6, epoch: live.epoch!))
            #expect(page.isComplete && page.publications.map(\.position.offset) == [7, 8] && page.top.offset == 8)
            let latest = try await server.history("h:room", limit: 2)
            #expect(latest.publications.map(\.position.offset) == [7, 8])
            await #expect(throws: Live.HistoryError.notEnabled("plain")) { try await server.history("plain") }
            try await socket.close()
        }
    }

    @Test func wireFormOfAPositionedMessage() {
        var buffer = ByteBuffer()
        Live.Message.encode(topic: "h:a", data: Array(#"{"x":1}"#.utf8), position: Live.StreamPosition(offset: 42, epoch: "ab\"c"), into: &buffer)
        #expect(String(buffer: buffer) == #"{"topic":"h:a","data":{"x":1},"offset":42,"epoch":"ab\"c"}"#)
        // Clients that ignore the new members still parse it.
        #expect(Live.Message.parse(Array(buffer.readableBytesView))?.data == Data(#"{"x":1}"#.utf8))
    }

    /// The application's reply runs under no lock of the server's: one that counts the
    /// topic's subscribers, reads the session's topics and publishes to the topic it answers
    /// (each of which took a lock the reply once ran under: a deadlock) is answered first,
    /// its publish after the replay.
    @Test func aSubscribeReplyMayCallBackIntoTheServer() async throws {
        let configure: (inout Live.Options) -> Void = { options in
            historyOptions(size: 10)(&options)
            options.onMessage = { _, session, topic, _ in
                guard topic == "join" else { return }
                let server = session.server
                await server.subscribe(session, "h:x", recoverFrom: Live.StreamPosition(offset: 0, epoch: ""), latest: 10) { result in
                    let count = server.subscriberCount("h:x")
                    server.publish("h:x", Data(#""welcome""#.utf8))
                    return Live.Message(topic: "subscribed", data: Data(#"{"count":\#(count),"topics":\#(session.topics.count),"replayed":\#(result.replayed)}"#.utf8))
                }
            }
        }
        try await withLiveServer(configure) { server, _, port in
            server.publish("h:x", Data("1".utf8))
            let ann = try await TestWebSocket.live(port: port, user: "ann")
            try await ann.send(text: #"{"topic":"join","data":{}}"#)
            let answer = try await ann.readMessage()
            #expect(answer.topic == "subscribed" && answer.data == #"{"count":1,"replayed":1,"topics":1}"#)
            #expect(try await ann.readMessage().data == "1")
            let welcome = try await ann.readMessage()
            #expect(welcome.data == #""welcome""# && welcome.offset == 2)
            try await ann.close()
        }
    }

    @Test func recoveryReplaysWhatWasMissedOrSaysItCannot() async throws {
        try await withLiveServer(historyOptions(size: 4)) { server, _, port in
            for index in 1...3 { server.publish("h:r", Data("\(index)".utf8)) }
            let first = try await TestWebSocket.live(port: port, user: "ann")
            let answer = try await first.recover("h:r")
            #expect(answer.data.contains(#""offset":3"#))
            let epoch = try await server.history("h:r").top.epoch
            try await first.close()
            for index in 4...5 { server.publish("h:r", Data("\(index)".utf8)) }
            // Back from 3: gets 4 and 5, recovered.
            let again = try await TestWebSocket.live(port: port, user: "ann")
            let recovered = try await again.recover("h:r", from: Live.StreamPosition(offset: 3, epoch: epoch), latest: 50)
            #expect(recovered.data.contains(#""recovered":true"#) && recovered.data.contains(#""replayed":2"#))
            #expect(try await again.readMessage().offset == 4)
            #expect(try await again.readMessage().offset == 5)
            // From 0: 1 was trimmed (size 4 holds 2...5): not recovered, the latest instead.
            let old = try await TestWebSocket.live(port: port, user: "cid")
            let refused = try await old.recover("h:r", from: Live.StreamPosition(offset: 0, epoch: epoch), latest: 2)
            #expect(refused.data.contains(#""recovered":false"#) && refused.data.contains(#""replayed":2"#))
            #expect(try await old.readMessage().offset == 4)
            #expect(try await old.readMessage().offset == 5)
            // Another epoch (the history was lost): not recovered, whatever the offset.
            let other = try await TestWebSocket.live(port: port, user: "dee")
            let lost = try await other.recover("h:r", from: Live.StreamPosition(offset: 5, epoch: "deadbeef"))
            #expect(lost.data.contains(#""recovered":false"#) && lost.data.contains(#""replayed":0"#))
            for socket in [again, old, other] { try await socket.close() }
        }
    }

    /// A subscribe to a topic the session already has is answered and recovers again: a
    /// client re-synchronises without reconnecting, and the live stream goes on after the
    /// replay with nothing lost or repeated between the two.
    @Test func aSecondSubscribeIsAnsweredAndRecoversAgain() async throws {
        try await withLiveServer(historyOptions(size: 100)) { server, _, port in
            let ann = try await TestWebSocket.live(port: port, user: "ann")
            _ = try await ann.recover("h:again")
            for index in 1...5 { server.publish("h:again", Data("\(index)".utf8)) }
            for offset: UInt64 in 1...5 { #expect(try await ann.readMessage().offset == offset) }
            let epoch = try await server.history("h:again").top.epoch
            let again = try await ann.recover("h:again", from: Live.StreamPosition(offset: 2, epoch: epoch))
            #expect(again.data.contains(#""recovered":true"#) && again.data.contains(#""replayed":3"#), "\(again)")
            server.publish("h:again", Data("6".utf8))
            for offset: UInt64 in 3...6 { #expect(try await ann.readMessage().offset == offset) }
            // Still one subscription: one copy of each later message.
            server.publish("h:again", Data("7".utf8))
            #expect(try await ann.readMessage().offset == 7)
            #expect(server.subscriberCount("h:again") == 1)
            // A topic without history is answered too (not recovered).
            _ = try await ann.recover("plain")
            let plain = try await ann.recover("plain")
            #expect(plain.data.contains(#""recovered":false"#))
            try await ann.close()
        }
    }

    /// Publishes land in both windows of a recovery: after the subscribe and before the
    /// read (the read has them, and they also wait: sent once), and after the read (only
    /// waiting: sent after the replay).
    @Test func publishesInsideTheRecoveryWindowsArriveExactlyOnce() async throws {
        try await withLiveServer(historyOptions()) { server, _, port in
            for index in 1...3 { server.publish("h:w", Data("\(index)".utf8)) }
            let epoch = try await server.history("h:w").top.epoch
            server.core.recoveryTestHooks.withLockedValue {
                $0.beforeRead = { for index in 4...5 { server.publish("h:w", Data("\(index)".utf8)) } }
                $0.beforeCompletion = { for index in 6...7 { server.publish("h:w", Data("\(index)".utf8)) } }
            }
            let socket = try await TestWebSocket.live(port: port, user: "ann")
            let answer = try await socket.recover("h:w", from: Live.StreamPosition(offset: 2, epoch: epoch))
            #expect(answer.data.contains(#""recovered":true"#) && answer.data.contains(#""replayed":3"#) && answer.data.contains(#""offset":7"#))
            server.core.recoveryTestHooks.withLockedValue { $0 = RecoveryTestHooks() }
            server.publish("h:w", Data("8".utf8))
            var offsets: [UInt64] = []
            for _ in 0..<6 { offsets.append(try #require(try await socket.readMessage().offset)) }
            #expect(offsets == [3, 4, 5, 6, 7, 8])
            try await socket.close()
        }
    }

    /// A replay takes at most half the send queue: more missed than that is not recovered,
    /// and the latest that fit come instead.
    @Test func aReplayLargerThanHalfTheQueueIsNotARecovery() async throws {
        try await withLiveServer(historyOptions(queueSize: 8)) { server, _, port in
            for index in 1...10 { server.publish("h:big", Data("\(index)".utf8)) }
            let epoch = try await server.history("h:big").top.epoch
            let socket = try await TestWebSocket.live(port: port, user: "ann")
            let answer = try await socket.recover("h:big", from: Live.StreamPosition(offset: 2, epoch: epoch), latest: 50)
            #expect(answer.data.contains(#""recovered":false"#) && answer.data.contains(#""replayed":4"#))
            var offsets: [UInt64] = []
            for _ in 0..<4 { offsets.append(try #require(try await socket.readMessage().offset)) }
            #expect(offsets == [7, 8, 9, 10])
            // Six missed fit in no queue of 8 either way; three do.
            let near = try await TestWebSocket.live(port: port, user: "bob")
            let recovered = try await near.recover("h:big", from: Live.StreamPosition(offset: 7, epoch: epoch))
            #expect(recovered.data.contains(#""recovered":true"#) && recovered.data.contains(#""replayed":3"#))
            for socket in [socket, near] { try await socket.close() }
        }
    }

    @Test func aReplayLargerThanHalfTheQueuesBytesIsNotARecovery() async throws {
        // Half of queueBytes (here 256 KiB) for a replay, as half of queueSize: twelve
        // messages of 32 KiB do not fit, the newest eight do; the latest are cut to fit too.
        try await withLiveServer({ historyOptions()(&$0); $0.queueBytes = 512 * 1024 }) { server, _, port in
            let big = { (index: Int) in Data(("\"" + String(repeating: Character(String(index % 10)), count: 32 * 1024 - 2) + "\"").utf8) }
            for index in 1...12 { server.publish("h:large", big(index)) }
            let epoch = try await server.history("h:large").top.epoch
            let socket = try await TestWebSocket.live(port: port, user: "ann")
            let answer = try await socket.recover("h:large", from: Live.StreamPosition(offset: 0, epoch: epoch), latest: 12)
            #expect(answer.data.contains(#""recovered":false"#) && answer.data.contains(#""replayed":8"#), "\(answer.data)")
            var offsets: [UInt64] = []
            for _ in 0..<8 { offsets.append(try #require(try await socket.readMessage().offset)) }
            #expect(offsets == Array(5...12))
            let near = try await TestWebSocket.live(port: port, user: "bob")
            let recovered = try await near.recover("h:large", from: Live.StreamPosition(offset: 4, epoch: epoch))
            #expect(recovered.data.contains(#""recovered":true"#) && recovered.data.contains(#""replayed":8"#), "\(recovered.data)")
            for socket in [socket, near] { try await socket.close() }
        }
    }

    /// What arrives while a recovery reads is bounded too (the other half of the queue): past
    /// it the session is closed as a slow consumer, never buffered without end.
    @Test func messagesWaitingForARecoveryAreBounded() async throws {
        try await withLiveServer(historyOptions(queueSize: 8)) { server, log, port in
            server.core.recoveryTestHooks.withLockedValue {
                $0.beforeCompletion = { for index in 1...6 { server.publish("h:flood", Data("\(index)".utf8)) } }
            }
            let socket = try await TestWebSocket.live(port: port, user: "ann")
            try await socket.send(text: #"{"topic":"recover","data":{"topic":"h:flood"}}"#)
            let closes = try await log.waitFor(closes: 1)
            #expect(closes.map(\.error) == [.queueFull])
            #expect(server.subscriberCount("h:flood") == 0)
            await socket.client.close()
        }
    }

    /// With a broker that keeps no history (LocalBroker), each node numbers the messages it
    /// delivers in its own epoch: a position from one node never recovers on another.
    @Test func nodesWithoutASharedHistoryNeverMistakeEachOthersPositions() async throws {
        let hub = Live.LocalBroker()
        try await withLiveServer({ historyOptions()(&$0); $0.broker = hub.node() }) { serverA, _, portA in
            try await withLiveServer({ historyOptions()(&$0); $0.broker = hub.node() }) { serverB, _, portB in
                let onA = try await TestWebSocket.live(port: portA, user: "a")
                let onB = try await TestWebSocket.live(port: portB, user: "b")
                _ = try await onA.recover("h:n")
                _ = try await onB.recover("h:n")
                serverA.publish("h:n", Data("1".utf8))
                let seenOnA = try await onA.readMessage()
                let seenOnB = try await onB.readMessage()
                #expect(seenOnA.offset == 1 && seenOnB.offset == 1 && seenOnA.data == "1" && seenOnB.data == "1")
                #expect(seenOnA.epoch != seenOnB.epoch)
                // B kept it in its own history too.
                #expect(try await serverB.history("h:n").publications.map(\.data) == [Data("1".utf8)])
                let moved = try await TestWebSocket.live(port: portB, user: "a")
                let answer = try await moved.recover("h:n", from: Live.StreamPosition(offset: 0, epoch: try #require(seenOnA.epoch)), latest: 1)
                #expect(answer.data.contains(#""recovered":false"#))
                for socket in [onA, onB, moved] { try await socket.close() }
            }
        }
    }

    /// With Redis the history read can answer before the pub/sub message of the same
    /// publish reaches this node (two connections): a recovered session skips the live
    /// messages its replay already covered, and becomes live with the first one past it.
    @Test func aRecoveredSessionSkipsLiveMessagesItsReplayCovered() async throws {
        try await withLiveServer(historyOptions()) { server, log, port in
            let late = try await TestWebSocket.live(port: port, user: "late")
            let lateSession = try await log.waitFor(sessions: 1)[0]
            let epochChange = try await TestWebSocket.live(port: port, user: "epoch")
            let epochSession = try await log.waitFor(sessions: 2)[1]
            let registry = server.core.registry
            for (session, epoch) in [(lateSession, "aaaaaaaa"), (epochSession, "cccccccc")] {
                registry.add(session, to: "h:x", recovering: true)
                let waited = NIOLockedValueBox(-1)
                let completed = registry.completeRecovery(of: session, topic: "h:x") { waiting, _ in
                    waited.withLockedValue { $0 = waiting.count }
                    return Live.StreamPosition(offset: 5, epoch: epoch)  // replayed through 5
                }
                #expect(completed && waited.withLockedValue { $0 } == 0)
            }
            func deliver(_ offset: UInt64) {
                _ = registry.deliverInOrder("h:x", data: Array("\(offset)".utf8), compression: server.core.compression, queueLimit: 10) {
                    Live.StreamPosition(offset: offset, epoch: "aaaaaaaa")
                }
            }
            for offset: UInt64 in 4...7 { deliver(offset) }
            // 4 and 5 came with the replay; 6 arrives alone and makes the session live; 7 live.
            #expect(try await late.readMessage().data == "6")
            #expect(try await late.readMessage().data == "7")
            // Replayed from another epoch (Redis lost its data since): nothing is skipped.
            for offset in 4...7 { #expect(try await epochChange.readMessage().data == "\(offset)") }
            #expect(server.subscriberCount("h:x") == 2)
            registry.remove(lateSession, from: "h:x")
            registry.remove(epochSession, from: "h:x")
            #expect(server.subscriberCount("h:x") == 0 && server.topicCount == 0)
            try await late.close()
            try await epochChange.close()
        }
    }

    /// The subscribe and the history read race with a publisher that never stops: every
    /// message after the position arrives exactly once, in order.
    @Test func recoveryRacingPublishesHasNoGapAndNoDuplicate() async throws {
        try await withLiveServer(historyOptions(size: 10_000, queueSize: 100_000)) { server, _, port in
            try await assertRaceFreeRecovery(publishTo: server, recoverOn: port, topic: "h:race", iterations: 30)
        }
    }
}

/// Publishes 1, 2, 3... on `topic` from a task while sessions recover from positions in the
/// middle of the stream; each must then see every later offset exactly once, in order. The
/// options' queue must hold what a loaded machine publishes between the history read and the
/// recovery (a replay takes at most half of it).
///
/// The publisher never runs more than `lead` messages past what the reader has reached (the
/// position it recovers from, then each message it reads): however slow the machine (a
/// ThreadSanitizer run beside a CPU hog took seconds per recovery), a recovery's position is
/// never older than the history holds, which would make "recovered": false the right answer.
func assertRaceFreeRecovery(publishTo server: Live.Server, recoverOn port: Int, topic: String, iterations: Int, lead: UInt64 = 2_000) async throws {
    let stop = NIOLockedValueBox(false)
    let reached = NIOLockedValueBox<UInt64>(0)
    let publisher = Task {
        var count: UInt64 = 0
        while !stop.withLockedValue({ $0 }) {
            while !stop.withLockedValue({ $0 }), count >= reached.withLockedValue({ $0 }) + lead {
                try? await Task.sleep(nanoseconds: 1_000_000)
            }
            count += 1
            server.publish(topic, Data("\(count)".utf8))
            // At most about 1,000 a second: steady, not a CPU hog that starves the rest of the
            // suite (under ThreadSanitizer every publish costs ten times more).
            try? await Task.sleep(nanoseconds: 1_000_000)
            // And never further ahead of the history than 50 messages: on a slow machine a
            // fixed rate outruns the Redis link (whose queue then drops publishes, by design),
            // and the race under test is the recovery's, not the link's.
            if count % 50 == 0 {
                while !stop.withLockedValue({ $0 }), (try? await server.history(topic, limit: 1).top.offset).map({ $0 < count }) ?? false {
                    try? await Task.sleep(nanoseconds: 1_000_000)
                }
            }
        }
    }
    defer { stop.withLockedValue { $0 = true } }
    _ = try await eventuallyAsync("the first messages") { try await server.history(topic, limit: 1).top.offset > 5 ? true : nil }
    for iteration in 0..<iterations {
        // Connected first: a slow handshake must not let the stream run past the history.
        let socket = try await TestWebSocket.live(port: port, user: "r\(iteration)")
        let top = try await server.history(topic, limit: 1).top
        let since = Live.StreamPosition(offset: top.offset - UInt64(iteration % 5), epoch: top.epoch)
        reached.withLockedValue { $0 = since.offset }
        let answer = try await socket.recover(topic, from: since, latest: 0)
        #expect(answer.data.contains(#""recovered":true"#), "iteration \(iteration): \(answer.data)")
        // At least 30 more messages: the replay, then the live stream.
        var expected = since.offset + 1
        for _ in 0..<30 {
            let message = try await socket.readMessage()
            #expect(message.topic == topic && message.offset == expected && message.data == String(expected), "iteration \(iteration): got \(message.topic) \(message.offset.map(String.init) ?? "-") \(message.data), expected \(expected) after \(since); answer \(answer.data)")
            guard message.offset == expected else { break }
            reached.withLockedValue { $0 = expected }
            expected += 1
        }
        try await socket.close()
    }
    stop.withLockedValue { $0 = true }
    await publisher.value
}
