/// The life of one WebSocket connection as a value: protocol and socket events in, actions
/// out, no I/O. ``WebSocketChannelHandler`` feeds it and carries out what it returns.
///
/// | state | what ends it | deadline |
/// |---|---|---|
/// | `open` | a close from either side, an error, a timeout | heartbeat (ping, then `pongTimeout`); `writeStallTimeout` while unwritable |
/// | `closeSent` (we started the close handshake) | the peer's close frame | `closeTimeout` |
/// | `closing` (our last close frame is being written) | the write, then TCP close | `closeTimeout` |
/// | `closed` | - | - |
///
/// Reading stops while the peer leaves our output unread (the socket is not writable) or the
/// application is behind, so a peer that only sends cannot grow what the server holds.
struct WebSocketConnectionStateMachine {
    enum State: Equatable {
        case open
        case closeSent
        case closing
        case closed
    }

    /// What the handler does to end the connection.
    enum CloseAction: Equatable {
        case none
        /// Write a close frame; when `thenCloseTCP`, close the socket once it is written (the
        /// server closes first, RFC 6455 section 7.1.1), else wait for the peer's close frame.
        /// Either way the close deadline starts.
        case sendClose(code: UInt16?, reason: String, thenCloseTCP: Bool)
        /// Close the socket now.
        case closeTCP
    }

    private(set) var state = State.open
    /// The first reason recorded wins: it is what onClose reports.
    private(set) var reason: WebSocketCloseReason?
    private(set) var writable = true
    private var applicationPaused = false

    /// Frames are still processed (a close frame may still arrive).
    var receives: Bool { self.state == .open || self.state == .closeSent }
    /// Data and control frames may still be written.
    var sends: Bool { self.state == .open }
    /// Whether the socket may be read now.
    var mayRead: Bool { self.receives && self.writable && !self.applicationPaused }
    /// Closing the socket: what still arrives is read and dropped, so a layer beneath (TLS
    /// waiting for the peer's close_notify) can finish its own close instead of timing out.
    var drainsInput: Bool { self.state == .closing }
    /// Whether the close deadline is running.
    var awaitsClose: Bool { self.state == .closeSent || self.state == .closing }

    /// The peer's close frame arrived.
    mutating func peerSentClose(code: UInt16?, reason: String) -> CloseAction {
        switch self.state {
        case .open:
            self.record(.peerClosed(code: code, reason: reason))
            self.state = .closing
            // RFC 6455 section 5.5.1: answer with a close frame echoing the code.
            return .sendClose(code: code, reason: "", thenCloseTCP: true)
        case .closeSent:
            self.state = .closing
            return .closeTCP
        case .closing, .closed:
            return .none
        }
    }

    /// The peer broke the protocol (or sent too much): close with the code RFC 6455 names.
    mutating func protocolViolation(code: UInt16, reason: String) -> CloseAction {
        self.record(.protocolViolation(code: code, reason: reason))
        switch self.state {
        case .open:
            self.state = .closing
            return .sendClose(code: code, reason: reason, thenCloseTCP: true)
        case .closeSent:
            self.state = .closing
            return .closeTCP
        case .closing, .closed:
            return .none
        }
    }

    /// The application (or shutdown) starts the close handshake.
    mutating func closeRequested(code: UInt16, reason text: String, as reason: WebSocketCloseReason) -> CloseAction {
        guard self.state == .open else { return .none }
        self.record(reason)
        self.state = .closeSent
        return .sendClose(code: code, reason: text, thenCloseTCP: false)
    }

    /// Ends the connection without a handshake: a slow consumer, a dead or stalled peer, EOF,
    /// an I/O error, or a close deadline that passed.
    mutating func abort(_ reason: WebSocketCloseReason?) -> CloseAction {
        if let reason { self.record(reason) }
        guard self.state != .closed else { return .none }
        self.state = .closing
        return .closeTCP
    }

    /// The socket is closed; returns the reason to report, exactly once.
    mutating func channelClosed() -> WebSocketCloseReason? {
        guard self.state != .closed else { return nil }
        self.state = .closed
        return self.reason ?? .connectionLost
    }

    mutating func writabilityChanged(_ writable: Bool) {
        self.writable = writable
    }

    mutating func applicationReading(_ enabled: Bool) {
        self.applicationPaused = !enabled
    }

    private mutating func record(_ reason: WebSocketCloseReason) {
        if self.reason == nil { self.reason = reason }
    }
}
