/// An endpoint's configuration, shared by reference by all of its connections.
final class WebSocketSettings: Sendable {
    let configuration: WebSocketConfiguration
    /// Which end the connections are (a server's, unless a client made them).
    let role: WebSocketRole

    init(_ configuration: WebSocketConfiguration, role: WebSocketRole = .server) {
        self.configuration = configuration
        self.role = role
    }
}
