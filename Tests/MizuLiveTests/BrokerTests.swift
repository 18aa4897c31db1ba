import Foundation
import Mizu
@testable import MizuLive
import MizuWebSocket
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Records what a server tells its broker.
private final class RecordingBroker: Live.Broker {
    let calls = NIOLockedValueBox<[String]>([])
    let receiver = NIOLockedValueBox<(@Sendable (String, ByteBuffer) -> Void)?>(nil)

    func attach(receive: @escaping @Sendable (String, ByteBuffer) -> Void) { self.receiver.withLockedValue { $0 = receive } }
    func publish(_ topic: String, _ data: Data) { self.calls.withLockedValue { $0.append("publish \(topic) \(String(decoding: data, as: UTF8.self))") } }
    func subscribe(_ topic: String) { self.calls.withLockedValue { $0.append("subscribe \(topic)") } }
    func unsubscribe(_ topic: String) { self.calls.withLockedValue { $0.append("unsubscribe \(topic)") } }
}

@Suite(.timeLimit(.minutes(10))) struct BrokerTests {
    @Test func theServerTellsItsBrokerFirstAndLastSubscriberAndEveryPublish() async throws {
        let broker = RecordingBroker()
        try await withLiveServer({ $0.broker = broker }) { server, log, port in
            let a = try await TestWebSocket.live(port: port, user: "a")
            let b = try await TestWebSocket.live(port: port, user: "b")
            let sessions = try await log.waitFor(sessions: 2)
            server.subscribe(sessions[0], "room")
            server.subscribe(sessions[1], "room")
            server.publish("room", Data("1".utf8))
            server.publish("empty", Data("2".utf8))
            server.unsubscribe(sessions[0], "room")
            server.unsubscribe(sessions[1], "room")
            #expect(broker.calls.withLockedValue { $0 } == ["subscribe room", "publish room 1", "publish empty 2", "unsubscribe room"])
            #expect(try await a.readText() == #"{"topic":"room","data":1}"#)
            #expect(try await b.readText() == #"{"topic":"room","data":1}"#)
            // What the broker brings in reaches local subscribers, and is not sent back out.
            server.subscribe(sessions[0], "in")
            broker.receiver.withLockedValue { $0 }?("in", ByteBuffer(string: #"{"remote":true}"#))
            #expect(try await a.readText() == #"{"topic":"in","data":{"remote":true}}"#)
            #expect(broker.calls.withLockedValue { $0 }.last == "subscribe in")
            try await a.close()
            try await b.close()
        }
    }

    @Test func localBrokerJoinsServersInOneProcess() async throws {
        let hub = Live.LocalBroker()
        try await withLiveServer({ $0.broker = hub.node() }) { serverA, logA, portA in
            try await withLiveServer({ $0.broker = hub.node() }) { serverB, logB, portB in
                let onA = try await TestWebSocket.live(port: portA, user: "a")
                let onB = try await TestWebSocket.live(port: portB, user: "b")
                let sessionA = try await logA.waitFor(sessions: 1)[0]
                let sessionB = try await logB.waitFor(sessions: 1)[0]
                serverA.subscribe(sessionA, "room")
                serverB.subscribe(sessionB, "room")
                serverA.publish("room", Data("1".utf8))
                serverB.publish("room", Data("2".utf8))
                for socket in [onA, onB] {
                    #expect(try await socket.readText() == #"{"topic":"room","data":1}"#)
                    #expect(try await socket.readText() == #"{"topic":"room","data":2}"#)
                }
                // Only nodes with subscribers get it; once each.
                serverB.unsubscribe(sessionB, "room")
                serverB.publish("room", Data("3".utf8))
                serverA.publish("room", Data("4".utf8))
                #expect(try await onA.readText() == #"{"topic":"room","data":3}"#)
                #expect(try await onA.readText() == #"{"topic":"room","data":4}"#)
                try sessionB.send(Live.Message(topic: "direct", data: Data("5".utf8)))
                #expect(try await onB.readText() == #"{"topic":"direct","data":5}"#, "B's unsubscribed publishes never arrived")
                try await onA.close()
                try await onB.close()
            }
        }
    }
}
