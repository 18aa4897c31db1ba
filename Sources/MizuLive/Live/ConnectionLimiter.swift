import MizuHTTP
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Admission of new sessions: at most ``Limits/maxSessions`` in total and
/// ``Limits/maxSessionsPerClient`` per client address, and per client a token bucket of
/// handshakes (``Limits/connectsPerSecond``, bursts of ``Limits/connectBurst``) and one of
/// its sessions' messages together (``Limits/messagesPerSecond``). A client is
/// an IPv4 address or an IPv6 /64 (one subscriber's prefix, so a single host cannot rotate
/// addresses past the limit). What it remembers is bounded: an address appears only while
/// it has sessions or its bucket is refilling, and idle entries are swept as the table grows.
final class ConnectionLimiter: Sendable {
    struct Limits: Sendable {
        var maxSessions: Int
        var maxSessionsPerClient: Int
        var connectsPerSecond: Double
        var connectBurst: Int
        /// Subscriptions of all one client's sessions together.
        var maxTopicsPerClient: Int = .max
        /// Messages all one client's sessions send together, per second, in bursts of
        /// `messageBurst`; `.infinity` for no pacing.
        var messagesPerSecond: Double = .infinity
        var messageBurst: Int = 1

        /// Whether messages are paced at all.
        var pacesMessages: Bool { self.messagesPerSecond.isFinite }
        /// The message bucket's size (at least one token).
        var messageBucket: Double { Double(max(1, self.messageBurst)) }
    }

    enum Decision: Equatable {
        case admitted(Ticket)
        /// Over a session limit: 503, come back in `retryAfter` seconds.
        case tooManySessions(retryAfter: Int)
        /// Over the handshake rate: 429, come back in `retryAfter` seconds.
        case tooManyConnects(retryAfter: Int)
    }

    /// A place taken by an admitted handshake; given back once, whatever happens next.
    final class Ticket: Sendable, Equatable {
        fileprivate let client: ClientKey
        private let limiter: ConnectionLimiter
        private let released = Atomic<Bool>(false)

        fileprivate init(client: ClientKey, limiter: ConnectionLimiter) {
            self.client = client
            self.limiter = limiter
        }

        func release() {
            if !self.released.exchange(true, ordering: .acquiringAndReleasing) { self.limiter.release(self.client) }
        }

        static func == (lhs: Ticket, rhs: Ticket) -> Bool { lhs === rhs }
    }

    typealias ClientKey = ClientAddressKey

    private struct Client {
        var sessions = 0
        var subscriptions = 0
        var tokens: Double
        var refilledAt: NIODeadline
        /// The message bucket: below zero it is owed (messages given a later turn).
        var messageTokens: Double?
        var messagesRefilledAt = NIODeadline.uptimeNanoseconds(0)

        /// The message tokens at `now`: what was left, refilled since, at most a full bucket
        /// (full when none was ever taken).
        func messageTokens(at now: NIODeadline, _ limits: Limits) -> Double {
            guard let tokens = self.messageTokens else { return limits.messageBucket }
            let elapsed = Double(max(0, (now - self.messagesRefilledAt).nanoseconds)) / 1e9
            return min(limits.messageBucket, tokens + elapsed * limits.messagesPerSecond)
        }
    }

    private struct State {
        var total = 0
        var clients: [ClientKey: Client] = [:]
        var sweepAt = 1024
    }

    let limits: Limits
    private let state = NIOLockedValueBox(State())

    init(_ limits: Limits) {
        self.limits = limits
    }

    var sessionCount: Int { self.state.withLockedValue { $0.total } }
    var trackedClients: Int { self.state.withLockedValue { $0.clients.count } }

    func admit(_ address: SocketAddress?, now: NIODeadline = .now()) -> Decision {
        let key = ClientKey(address)
        let limits = self.limits
        return self.state.withLockedValue { state -> Decision in
            var client = state.clients[key] ?? Client(tokens: Double(limits.connectBurst), refilledAt: now)
            let elapsed = Double((now - client.refilledAt).nanoseconds) / 1e9
            client.tokens = min(Double(limits.connectBurst), client.tokens + max(0, elapsed) * limits.connectsPerSecond)
            client.refilledAt = now
            defer {
                state.clients[key] = client
                if state.clients.count >= state.sweepAt { Self.sweep(&state, limits: limits, now: now) }
            }
            guard client.tokens >= 1 else {
                let wait = (1 - client.tokens) / max(limits.connectsPerSecond, 1e-9)
                return .tooManyConnects(retryAfter: max(1, Int(wait.rounded(.up))))
            }
            client.tokens -= 1
            guard state.total < limits.maxSessions, client.sessions < limits.maxSessionsPerClient else {
                return .tooManySessions(retryAfter: Int.random(in: 5...15))
            }
            state.total += 1
            client.sessions += 1
            return .admitted(Ticket(client: key, limiter: self))
        }
    }

    /// Takes one subscription of `key`'s budget; false when its sessions together hold
    /// ``Limits/maxTopicsPerClient``. A client the limiter does not track (no admitted
    /// session: an embedded test channel) is not limited.
    func takeSubscription(_ key: ClientKey) -> Bool {
        let limit = self.limits.maxTopicsPerClient
        return self.state.withLockedValue { state in
            // Read, change, write back: an optional-chained `+=` goes through the dictionary's
            // modify coroutine, whose frame is allocated on every call.
            guard var client = state.clients[key] else { return true }
            guard client.subscriptions < limit else { return false }
            client.subscriptions += 1
            state.clients[key] = client
            return true
        }
    }

    /// Takes the turn of one message of `key`'s sessions: nil when it may be handled now,
    /// else how long it waits. Turns are handed out in order: a message that must wait owes
    /// its token, so the next one waits a token longer, and a client's sessions together are
    /// paced at ``Limits/messagesPerSecond`` however many it opens. Each session waits for
    /// one turn at a time and a closed one gives its turn back (``returnMessageTurn(_:)``),
    /// so a client owes at most about one turn per session. A client the limiter does not
    /// track (no admitted session: an embedded test channel) is not paced.
    func takeMessageTurn(_ key: ClientKey, now: NIODeadline = .now()) -> TimeAmount? {
        let limits = self.limits
        guard limits.pacesMessages else { return nil }
        return self.state.withLockedValue { state -> TimeAmount? in
            guard var client = state.clients[key] else { return nil }
            let tokens = client.messageTokens(at: now, limits) - 1
            client.messageTokens = tokens
            // Never back: a clock read before another thread took the lock would count
            // time twice on the next call.
            client.messagesRefilledAt = max(client.messagesRefilledAt, now)
            state.clients[key] = client
            guard tokens < 0 else { return nil }
            // An overflow guard: the owed turns are bounded by the client's sessions.
            let seconds = min(-tokens / limits.messagesPerSecond, 86_400)
            return .nanoseconds(Int64((seconds * 1e9).rounded(.up)))
        }
    }

    /// Gives back a turn taken for a message that was not handled (its session closed while
    /// it waited).
    func returnMessageTurn(_ key: ClientKey) {
        let limits = self.limits
        guard limits.pacesMessages else { return }
        self.state.withLockedValue { state in
            guard var client = state.clients[key], let tokens = client.messageTokens else { return }
            client.messageTokens = min(limits.messageBucket, tokens + 1)
            state.clients[key] = client
        }
    }

    /// Gives back `count` subscriptions of `key`'s budget.
    func releaseSubscriptions(_ key: ClientKey, count: Int) {
        guard count > 0 else { return }
        self.state.withLockedValue { state in
            guard var client = state.clients[key] else { return }
            client.subscriptions = max(0, client.subscriptions - count)
            state.clients[key] = client
        }
    }

    /// Subscriptions `key`'s sessions hold together (tests).
    func subscriptions(of key: ClientKey) -> Int { self.state.withLockedValue { $0.clients[key]?.subscriptions ?? 0 } }

    fileprivate func release(_ key: ClientKey) {
        self.state.withLockedValue { state in
            state.total -= 1
            guard var client = state.clients[key] else { return }
            client.sessions -= 1
            state.clients[key] = client
        }
    }

    /// Forgets clients with no session whose buckets are full again (they would start from
    /// full buckets anyway; a client that still owes message turns is kept); the next sweep
    /// waits until the table has doubled from what is left.
    private static func sweep(_ state: inout State, limits: Limits, now: NIODeadline) {
        let refill = Double(limits.connectBurst) / max(limits.connectsPerSecond, 1e-9)
        state.clients = state.clients.filter { _, client in
            if client.sessions > 0 || Double((now - client.refilledAt).nanoseconds) / 1e9 < refill { return true }
            return limits.pacesMessages && client.messageTokens(at: now, limits) < limits.messageBucket
        }
        state.sweepAt = max(1024, state.clients.count * 2)
    }
}
