/// An endpoint's configuration, shared by reference by all of its connections.
final class WebSocketSettings: Sendable {
    let configuration: WebSocketConfiguration
    /// Which end the connections are (a server's, unless a client made them).
    let role: WebSocketRole
    /// What each client's connections hold unread, with ``WebSocketConfiguration/maxQueuedBytesPerClient``
    /// (a server's only: a client's connections all have one peer, its server).
    let outputLedger: ClientOutputLedger?

    init(_ configuration: WebSocketConfiguration, role: WebSocketRole = .server) {
        self.configuration = configuration
        self.role = role
        self.outputLedger = role == .server ? configuration.maxQueuedBytesPerClient.map(ClientOutputLedger.init(limit:)) : nil
    }
}
