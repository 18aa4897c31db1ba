/// An endpoint's configuration, shared by reference by all of its connections.
final class WebSocketSettings: Sendable {
    let configuration: WebSocketConfiguration

    init(_ configuration: WebSocketConfiguration) {
        self.configuration = configuration
    }
}
