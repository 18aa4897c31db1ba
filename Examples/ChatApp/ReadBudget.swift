import Mizu
import NIOConcurrencyHelpers
import NIOCore

/// Reads that cost the server (history from Redis, who is online) are budgeted per client
/// (an IPv4 address or an IPv6 /64, as the server's own limits count them), not per session: one client with 400 sessions gets what one session gets. Each
/// client has `burst` reads at once and `perSecond` more; past that a WebSocket request
/// waits its turn (that session's later messages wait behind it, nobody else's) and an HTTP
/// request is answered 429 with Retry-After.
let readBudget = ReadBudget(burst: 10, perSecond: 2)
/// `GET /api/presence`, which anyone may call: its own budget, so it cannot spend the page's.
let apiBudget = ReadBudget(burst: 10, perSecond: 2)
/// `POST /api/announce`, which anyone may call too: an unpaced loop published 6,800 a second
/// and pushed every real message out of chat:general's history.
let announceBudget = ReadBudget(burst: 10, perSecond: 2)

final class ReadBudget: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: NIODeadline
    }

    private struct State {
        var buckets: [ClientAddressKey: Bucket] = [:]
        var sweepAt = 1024
    }

    private let burst: Double
    private let perSecond: Double
    private let state = NIOLockedValueBox(State())

    init(burst: Int, perSecond: Double) {
        self.burst = Double(burst)
        self.perSecond = perSecond
    }

    /// Takes one read, waiting for it when the client has none left.
    func spend(_ client: ClientAddressKey) async {
        let wait = self.take(client, reserving: true)
        if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
    }

    /// Takes one read if there is one (0), or says how many seconds until there is.
    func tryTake(_ client: ClientAddressKey) -> Double {
        self.take(client, reserving: false)
    }

    /// A reservation takes the token even when it must wait for it (the bucket goes below
    /// zero), so waiting requests queue up in time instead of all waking at once.
    private func take(_ client: ClientAddressKey, reserving: Bool) -> Double {
        self.state.withLockedValue { state in
            let now = NIODeadline.now()
            var bucket = state.buckets[client] ?? Bucket(tokens: self.burst, updated: now)
            let elapsed = Double((now - bucket.updated).nanoseconds) / 1e9
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.perSecond)
            bucket.updated = now
            defer {
                state.buckets[client] = bucket
                if state.buckets.count >= state.sweepAt { self.sweep(&state, now: now) }
            }
            if bucket.tokens >= 1 || reserving {
                bucket.tokens -= 1
                return bucket.tokens >= 0 ? 0 : -bucket.tokens / self.perSecond
            }
            return (1 - bucket.tokens) / self.perSecond
        }
    }

    /// Forgets clients whose bucket is full again (they would start from a full one anyway);
    /// the next sweep waits until the table has doubled from what is left.
    private func sweep(_ state: inout State, now: NIODeadline) {
        state.buckets = state.buckets.filter { _, bucket in
            bucket.tokens + Double((now - bucket.updated).nanoseconds) / 1e9 * self.perSecond < self.burst
        }
        state.sweepAt = max(1024, state.buckets.count * 2)
    }

}
