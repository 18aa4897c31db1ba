@_spi(Benchmarking) import MizuLive
@_spi(Benchmarking) import MizuWebSocket
import NIOEmbedded

/// Sessions without sockets, to measure what subscribing, unsubscribing and registering cost
/// at sizes no single machine's file limit reaches with real connections.
public final class RegistryHarness {
    private let server = Live.Server()
    private let eventLoop = EmbeddedEventLoop()
    private var sessions: [Live.Session] = []

    /// `count` sessions, registered with the server as open sessions are.
    public init(sessions count: Int) {
        self.sessions.reserveCapacity(count)
        for index in 0..<count {
            let connection = WebSocketConnection.unattached(eventLoop: self.eventLoop, sendQueueLimit: 256)
            self.sessions.append(self.server.openDetachedSession(id: "s\(index)", connection: connection))
        }
    }

    /// Subscribes sessions `range` to `topic` as `server.subscribe` does.
    public func subscribe(_ range: Range<Int>, to topic: String) {
        for index in range { self.server.subscribe(self.sessions[index], topic) }
    }

    /// Unsubscribes session `index` from `topic` as `server.unsubscribe` does.
    public func unsubscribe(_ index: Int, from topic: String) {
        self.server.unsubscribe(self.sessions[index], topic)
    }

    /// Adds session `index` to `topic` in the topic registry alone (no per-session topic cap).
    public func registryAdd(_ index: Int, to topic: String) {
        self.server.registryAdd(self.sessions[index], to: topic)
    }

    /// Removes session `index` from `topic` in the topic registry alone.
    public func registryRemove(_ index: Int, from topic: String) {
        self.server.registryRemove(self.sessions[index], from: topic)
    }

    /// Removes session `index` from the server's session table and adds it back (what a
    /// disconnect and a connect cost there).
    public func reregister(_ index: Int) {
        self.server.reregister(self.sessions[index])
    }

    public func subscriberCount(_ topic: String) -> Int { self.server.subscriberCount(topic) }
    public var topicCount: Int { self.server.topicCount }
}
