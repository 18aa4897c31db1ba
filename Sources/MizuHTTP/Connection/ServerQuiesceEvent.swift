/// Asks a connection to finish its current response and close: graceful shutdown sends it
/// to every open connection (upgraded protocols see it too).
public struct ServerQuiesceEvent: Sendable {
    /// The event; it carries nothing.
    public init() {}
}
