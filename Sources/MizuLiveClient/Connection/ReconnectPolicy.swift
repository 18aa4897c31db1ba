/// When a client tries again after a connection ended or an attempt failed (PROTOCOL.md,
/// "Close codes: reconnect or not" and "Shutdown and reconnect storms"). The settings; the
/// decisions are `ReconnectSchedule`'s.
public struct ReconnectPolicy: Sendable, Equatable {
    /// The first wait of a backoff; it doubles with every failed attempt. Default 250 ms.
    public var initialDelay: Duration = .milliseconds(250)
    /// The longest a backoff waits. Default 10 s.
    public var maxDelay: Duration = .seconds(10)
    /// After a server shutdown (1001) the first attempt waits a random time up to this, so a
    /// server's clients do not all come back in the same millisecond. Default 2 s.
    public var shutdownSpread: Duration = .seconds(2)
    /// The longest `Retry-After` honoured: a larger one (a server's mistake, or a hostile
    /// value) waits this long. Default 5 minutes.
    public var maxRetryAfter: Duration = .seconds(300)
    /// A connection that stayed open this long starts the backoff over when it ends; one that
    /// ends sooner counts as a failed attempt, so a server that accepts and at once closes is
    /// not tried again four times a second forever. Default 10 s.
    public var stableAfter: Duration = .seconds(10)

    /// The protocol's backoff, each value given with its property.
    public init() {}
}

/// Why a client stopped trying.
public enum StopReason: Sendable, Equatable {
    /// The application closed the session (1000).
    case closedByServer
    /// The server's application said not to come back (4500-4999).
    case doNotReconnect(code: UInt16)
    /// The client broke the protocol or a limit (1002, 1003, 1007, 1009): the same again would fail.
    case protocolError(code: UInt16)
    /// The handshake was refused for good (401, 403, 404 and other 4xx but 408 and 429).
    case refused(status: Int)
    /// The application closed the client (``LiveClient/close(flushTimeout:)``).
    case closedByClient
    /// The server does not speak the standard command set (it did not select `mizu-live.v1`).
    case unsupportedServer
    /// What the client was given can never work (a URL that is not `ws://`, a header that
    /// cannot be sent): trying again would fail the same way.
    case unusable(String)
}

/// The reconnect decisions as a value: what happened goes in, whether and when to try again
/// comes out. Every number from the server (a close code, a status, a `Retry-After`) is
/// bounded here before it sets a wait; no arithmetic can overflow.
struct ReconnectSchedule {
    let policy: ReconnectPolicy
    /// Failed attempts since the last connection that stayed open ``ReconnectPolicy/stableAfter``.
    private(set) var failures = 0

    init(policy: ReconnectPolicy) {
        self.policy = policy
    }

    enum Event: Equatable {
        /// A connection opened (the backoff starts over only once it proves stable).
        case opened
        /// An open connection ended after `openFor`: the server's close code, nil without a
        /// close frame.
        case closed(code: UInt16?, openFor: Duration)
        /// The handshake was answered with `status`, and `Retry-After` in seconds if given.
        case refused(status: Int, retryAfter: Int?)
        /// No connection (refused by the OS, timed out, an invalid 101).
        case failed
    }

    enum Decision: Equatable {
        case retry(after: Duration)
        case stop(StopReason)
        /// Nothing to decide (a connection opened).
        case none
    }

    mutating func decide(_ event: Event, using random: inout some RandomNumberGenerator) -> Decision {
        switch event {
        case .opened:
            return .none
        case .closed(let code, let openFor):
            if openFor >= self.policy.stableAfter { self.failures = 0 }
            switch code {
            case 1000?: return .stop(.closedByServer)
            case let code? where [1002, 1003, 1007, 1009].contains(code): return .stop(.protocolError(code: code))
            case let code? where (4500...4999).contains(code): return .stop(.doNotReconnect(code: code))
            case 1001?:
                // The first attempt after a shutdown is spread; later ones back off as usual.
                self.failures = min(self.failures + 1, 1_000)
                return .retry(after: Self.fraction(of: self.policy.shutdownSpread, from: 0, using: &random))
            default:
                return .retry(after: self.backoff(using: &random))
            }
        case .refused(let status, let retryAfter):
            switch status {
            case 429, 503, 408, 500...599:
                let backoff = self.backoff(using: &random)
                guard let retryAfter, retryAfter >= 0 else { return .retry(after: backoff) }
                let asked = retryAfter > Int(self.policy.maxRetryAfter.components.seconds) ? self.policy.maxRetryAfter : .seconds(retryAfter)
                return .retry(after: max(asked, backoff))
            default:
                return .stop(.refused(status: status))
            }
        case .failed:
            return .retry(after: self.backoff(using: &random))
        }
    }

    /// `initialDelay` doubled per failure, capped at `maxDelay`, drawn from half to all of it.
    /// Doubled only while under half the cap, so no setting can overflow it.
    private mutating func backoff(using random: inout some RandomNumberGenerator) -> Duration {
        let cap = self.policy.maxDelay
        var full = min(self.policy.initialDelay, cap)
        for _ in 0..<min(self.failures, 64) {
            guard full < cap / 2 else {
                full = cap
                break
            }
            full = full * 2
        }
        self.failures = min(self.failures + 1, 1_000)
        return Self.fraction(of: full, from: 0.5, using: &random)
    }

    /// A random duration between `from` x `duration` and `duration`.
    private static func fraction(of duration: Duration, from lower: Double, using random: inout some RandomNumberGenerator) -> Duration {
        let nanoseconds = Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
        guard nanoseconds > 0 else { return .zero }
        // At most about 292 years, whatever the settings: Int64 nanoseconds cannot hold more.
        return .nanoseconds(Int64(min(nanoseconds * Double.random(in: lower...1, using: &random), 9e18)))
    }
}
