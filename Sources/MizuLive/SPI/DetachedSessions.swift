import MizuHTTP
import MizuWebSocket

// For in-process harnesses (Benchmarks/Sources/MizuLiveBenchmarkSupport, tests): sessions
// opened on connections made without a handshake, and the registry reached directly.
extension Live.Server {
    /// The WebSocket settings this server's sessions use.
    @_spi(Benchmarking) public var webSocketConfiguration: WebSocketConfiguration { self.core.webSocketConfiguration }

    /// A session on `connection`, registered as an open session is (no hooks run).
    @_spi(Benchmarking) public func openDetachedSession(id: String, connection: WebSocketConnection) -> Live.Session {
        let session = Live.Session(
            id: .custom(id), value: nil, request: Request(method: .GET, uri: "/ws"), connection: connection, core: self.core)
        _ = self.core.register(session)
        return session
    }

    /// Adds `session` to `topic` in the topic registry alone (no per-session topic cap).
    @_spi(Benchmarking) public func registryAdd(_ session: Live.Session, to topic: String) {
        self.core.registry.add(session, to: topic)
    }

    /// Removes `session` from `topic` in the topic registry alone.
    @_spi(Benchmarking) public func registryRemove(_ session: Live.Session, from topic: String) {
        self.core.registry.remove(session, from: topic)
    }

    /// Takes `session` out of the session table and puts it back (a disconnect and a connect there).
    @_spi(Benchmarking) public func reregister(_ session: Live.Session) {
        self.core.unregister(session)
        _ = self.core.register(session)
    }
}
