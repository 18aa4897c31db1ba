import Foundation
@testable import MizuLive
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// The history and presence stores alone, against a broker that records what it is asked:
/// which store the server picks, and what each store tells the broker and the subscribers.
@Suite struct HistoryPresenceStoreTests {
    /// A broker that keeps history and presence "for every node" and records every call.
    private final class RecordingSharedBroker: Live.Broker, SharedState {
        struct Calls {
            var plainPublishes: [String] = []
            var historyPublishes: [String] = []
            var joins: [(topic: String, sessions: [String], expiry: TimeAmount)] = []
            var leaves: [(topic: String, session: String)] = []
            var seeded: [(topic: String, top: UInt64)] = []
            var readyAsked: [String] = []
            var historyReads: [(since: UInt64?, count: Int)] = []
        }
        let calls = NIOLockedValueBox(Calls())
        let receiver = NIOLockedValueBox<(@Sendable (String, ByteBuffer, Live.StreamPosition) -> Void)?>(nil)
        let members = NIOLockedValueBox<[Live.PresenceMember]>([])

        func attach(receive: @escaping @Sendable (String, ByteBuffer) -> Void) {}
        func publish(_ topic: String, _ data: Data) { self.calls.withLockedValue { $0.plainPublishes.append(topic) } }
        func subscribe(_ topic: String) {}
        func unsubscribe(_ topic: String) {}
        func attachPositioned(
            receive: @escaping @Sendable (String, ByteBuffer, Live.StreamPosition) -> Void,
            notice: @escaping @Sendable (String, Live.StreamPosition) -> Void
        ) { self.receiver.withLockedValue { $0 = receive } }
        func seedPosition(_ topic: String, epoch: String, top: UInt64) { self.calls.withLockedValue { $0.seeded.append((topic, top)) } }
        func publish(_ topic: String, _ data: Data, history: Live.HistoryPolicy) -> Bool {
            self.calls.withLockedValue { $0.historyPublishes.append(topic) }
            return true
        }
        func subscriptionReady(_ topic: String) async throws { self.calls.withLockedValue { $0.readyAsked.append(topic) } }
        func readHistory(_ topic: String, since: UInt64?, count: Int, policy: Live.HistoryPolicy) async throws -> HistoryRead {
            self.calls.withLockedValue { $0.historyReads.append((since, count)) }
            return HistoryRead(epoch: "E", top: 7, entries: [])
        }
        func presenceJoin(_ topic: String, _ members: [Live.PresenceMember], expiry: TimeAmount) {
            self.calls.withLockedValue { $0.joins.append((topic, members.map(\.session), expiry)) }
        }
        func presenceLeave(_ topic: String, session: String) { self.calls.withLockedValue { $0.leaves.append((topic, session)) } }
        func presence(_ topic: String) async throws -> [Live.PresenceMember] { self.members.withLockedValue { $0 } }
    }

    /// A broker that keeps nothing: it only carries publishes to other nodes.
    private final class RecordingPlainBroker: Live.Broker {
        let published = NIOLockedValueBox<[String]>([])
        func attach(receive: @escaping @Sendable (String, ByteBuffer) -> Void) {}
        func publish(_ topic: String, _ data: Data) {
            self.published.withLockedValue { $0.append(String(decoding: data, as: UTF8.self)) }
        }
        func subscribe(_ topic: String) {}
        func unsubscribe(_ topic: String) {}
    }

    private static func member(_ session: String) -> Live.PresenceMember {
        Live.PresenceMember(session: session, info: Data("null".utf8), joinedAt: Date())
    }

    private static func record(_ session: String) -> PresenceRecord {
        PresenceRecord(id: .custom(session), info: Data("null".utf8), joinedAt: Date())
    }

    @Test func theServerPicksTheSharedStoresOnlyForABrokerThatKeepsState() {
        var options = Live.Options()
        #expect(Live.Server(options).core.history is MemoryHistoryStore)
        #expect(Live.Server(options).core.presenceMembers is MemoryPresence)
        options.broker = RecordingPlainBroker()
        #expect(Live.Server(options).core.history is MemoryHistoryStore, "a broker that keeps nothing")
        #expect(Live.Server(options).core.presenceMembers is MemoryPresence)
        options.broker = RecordingSharedBroker()
        #expect(Live.Server(options).core.history is SharedHistoryStore)
        #expect(Live.Server(options).core.presenceMembers is SharedPresenceStore)
    }

    @Test func sharedPresenceTellsTheBrokerEachJoinAndOnlyRealLeavesAndRenewsThisNodesMembers() async throws {
        let broker = RecordingSharedBroker()
        let store = SharedPresenceStore(shared: broker, expiry: .seconds(9))
        store.join("room", Self.record("a"))
        store.join("room", Self.record("b"))
        #expect(!store.leave("room", id: .custom("nobody")), "not a member: nothing to tell")
        #expect(!store.leave("elsewhere", id: .custom("a")))
        #expect(store.leave("room", id: .custom("a")))
        #expect(!store.leave("room", id: .custom("a")), "told once")
        store.refresh()
        let calls = broker.calls.withLockedValue { $0 }
        #expect(calls.joins.map(\.sessions) == [["a"], ["b"], ["b"]], "the refresh renews b alone: a left")
        #expect(calls.joins.allSatisfy { $0.expiry == .seconds(9) })
        #expect(calls.leaves.map(\.session) == ["a"])
        broker.members.withLockedValue { $0 = [Self.member("elsewhere-node")] }
        #expect(try await store.members("room").map(\.session) == ["elsewhere-node"], "read from the broker, not this node")
    }

    @Test func memoryPresenceIsItsOwnStore() async throws {
        let store: any PresenceStore = MemoryPresence()
        store.join("room", Self.record("a"))
        #expect(try await store.members("room").map(\.session) == ["a"])
        #expect(store.leave("room", id: .custom("a")) && !store.leave("room", id: .custom("a")))
        #expect(try await store.members("room").isEmpty)
    }

    @Test func sharedHistoryDeliversAPublishOnlyWhenItComesBackWithItsPosition() async throws {
        let broker = RecordingSharedBroker()
        var options = Live.Options()
        options.broker = broker
        options.history = { _ in Live.HistoryPolicy(size: 10, ttl: .seconds(60)) }
        let server = Live.Server(options)
        let published = server.publish("h", Data("1".utf8))
        #expect(published)
        #expect(broker.calls.withLockedValue { ($0.historyPublishes, $0.plainPublishes) } == (["h"], []), "one atomic history publish")
        // What the read found is where this node's delivery stands.
        let read = try await server.core.history.read("h", since: nil, count: 0, policy: Live.HistoryPolicy(size: 10, ttl: .seconds(60)))
        try await server.core.history.ready("h")
        server.core.history.didRead("h", read)
        #expect(broker.calls.withLockedValue { $0.seeded.map(\.top) } == [7])
        #expect(broker.calls.withLockedValue { $0.readyAsked } == ["h"])
        #expect(broker.receiver.withLockedValue { $0 } != nil, "positioned messages come back through the store")
    }

    @Test func aReadAsksTheStoreForWhatItNeedsNotTheWholeStream() async throws {
        // A client's history page after a position (a stale epoch, say) read the whole stream
        // (the policy's size plus one) to hand back a page: now the page plus one, to tell
        // whether more follow; the latest `n` read `n`.
        let broker = RecordingSharedBroker()
        var options = Live.Options()
        options.broker = broker
        options.history = { _ in Live.HistoryPolicy(size: 100_000, ttl: .seconds(60)) }
        let server = Live.Server(options)
        _ = try await server.history("h", since: Live.StreamPosition(offset: 0, epoch: "stale"), limit: 50)
        _ = try await server.history("h", since: nil, limit: 20)
        _ = try await server.history("h", since: Live.StreamPosition(offset: 3, epoch: "E"), limit: .max)
        #expect(broker.calls.withLockedValue { $0.historyReads.map(\.count) } == [51, 20, 100_001])
    }

    @Test func memoryHistoryNumbersThisNodesAndOtherNodesMessagesInOneStreamAndForwardsItsOwn() async throws {
        let broker = RecordingPlainBroker()
        var options = Live.Options()
        options.broker = broker
        options.history = { _ in Live.HistoryPolicy(size: 10, ttl: .seconds(60)) }
        let server = Live.Server(options)
        let store = server.core.history
        #expect(server.publish("h", Data("1".utf8)))
        #expect(store.receiveRemote("h", ByteBuffer(string: "2"), policy: Live.HistoryPolicy(size: 10, ttl: .seconds(60))))
        #expect(server.publish("h", Data("3".utf8)))
        let read = try await store.read("h", since: 0, count: .max, policy: Live.HistoryPolicy(size: 10, ttl: .seconds(60)))
        #expect(read.entries.map { String(decoding: $0.data, as: UTF8.self) } == ["1", "2", "3"])
        #expect(read.entries.map(\.position.offset) == [1, 2, 3])
        #expect(read.top == 3)
        #expect(broker.published.withLockedValue { $0 } == ["1", "3"], "its own publishes go to the other nodes; theirs do not come back")
    }
}
