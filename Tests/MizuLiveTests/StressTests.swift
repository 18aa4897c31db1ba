import Foundation
import Mizu
@testable import MizuLive
import MizuWebSocket
import MizuTestSupport
import NIOCore
import Testing

/// Many tasks publishing, subscribing, unsubscribing, sending and disconnecting at once.
/// The README test command also runs this suite under ThreadSanitizer.
@Suite(.timeLimit(.minutes(10))) struct StressTests {
    @Test func concurrentPublishSubscribeAndDisconnect() async throws {
        try await withLiveServer({ $0.queueSize = 4096 }) { server, log, port in
            let clients = 24
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<clients {
                    group.addTask {
                        let socket = try await TestWebSocket.live(port: port, user: "c\(client)")
                        for round in 0..<20 {
                            try await socket.send(text: #"{"topic":"subscribe","data":"t\#((client + round) % 5)"}"#)
                        }
                        // Read a little, then leave abruptly or cleanly.
                        _ = try? await socket.readFrame(timeout: .milliseconds(200))
                        if client % 2 == 0 { await socket.client.close() } else { try? await socket.close() }
                    }
                }
                for publisher in 0..<6 {
                    group.addTask {
                        for index in 0..<300 {
                            server.publish("t\(index % 5)", Data(#"{"p":\#(publisher),"i":\#(index)}"#.utf8))
                            if index % 50 == 0 { await Task.yield() }
                        }
                    }
                }
                group.addTask {
                    // Subscribe, unsubscribe and send from outside the sessions' own hooks.
                    for _ in 0..<200 {
                        for session in server.sessions {
                            server.subscribe(session, "side")
                            try? session.send(Live.Message(topic: "direct", data: Data("1".utf8)))
                            server.unsubscribe(session, "side")
                            _ = session.topics
                        }
                        _ = server.topicCount
                        await Task.yield()
                    }
                }
                try await group.waitForAll()
            }
            _ = try await log.waitFor(closes: clients)
            for _ in 0..<300 where server.sessionCount > 0 || server.topicCount > 0 { try await Task.sleep(nanoseconds: 10_000_000) }
            #expect(server.sessionCount == 0)
            #expect(server.topicCount == 0)
        }
    }
}
