import MizuHTTP
import NIOConcurrencyHelpers

/// The bytes an endpoint's connections hold for each client (written, not yet taken by the
/// client's socket), summed over all of that client's connections: a per-connection bound
/// alone lets one client hold it once per connection it opens. A client is what
/// ``ClientAddressKey`` says (an IPv4 address, an IPv6 /64).
///
/// Past the bound the client's largest holders are closed, not whichever connection wrote
/// last: a connection of the same address that is a moment behind is not made to pay for
/// the ones that read nothing. They are closed until the rest hold three quarters of the
/// bound, so one pass frees a quarter of it, however small each holder is.
///
/// Only connections whose peer leaves output unread report here, so a lock per report costs
/// nothing on the path of peers that keep up. What is remembered is bounded: a connection
/// appears only while it holds bytes, a client only while one of its connections does.
package final class ClientOutputLedger: Sendable {
    package let limit: Int
    private let lowWater: Int

    private struct Holder {
        let connection: WebSocketConnection
        var bytes: Int
        /// Chosen to close: no longer counted, and its reports are ignored until its last.
        var evicted = false
    }

    private struct Client {
        /// What the holders not evicted hold together.
        var total = 0
        var holders: [ObjectIdentifier: Holder] = [:]
    }

    private let clients = NIOLockedValueBox<[ClientAddressKey: Client]>([:])

    package init(limit: Int) {
        self.limit = max(0, limit)
        self.lowWater = self.limit / 4 * 3
    }

    /// Records that `connection` (of `client`) now holds `bytes` unread; zero, its last
    /// report, forgets it. Returns the connections to close as slow consumers (usually none).
    package func report(_ connection: WebSocketConnection, of client: ClientAddressKey, holds bytes: Int) -> [WebSocketConnection] {
        let id = ObjectIdentifier(connection)
        return self.clients.withLockedValue { clients -> [WebSocketConnection] in
            var entry = clients[client] ?? Client()
            defer { clients[client] = entry.holders.isEmpty ? nil : entry }
            guard bytes > 0 else {
                if let gone = entry.holders.removeValue(forKey: id), !gone.evicted { entry.total -= gone.bytes }
                return []
            }
            var holder = entry.holders[id] ?? Holder(connection: connection, bytes: 0)
            guard !holder.evicted else { return [] }
            // Each count is bytes in this process's memory: far from overflowing.
            entry.total += bytes - holder.bytes
            holder.bytes = bytes
            entry.holders[id] = holder
            guard entry.total > self.limit else { return [] }
            var victims: [WebSocketConnection] = []
            let largestFirst = entry.holders.filter { !$0.value.evicted }.sorted { $0.value.bytes > $1.value.bytes }
            for (victimID, victim) in largestFirst {
                guard entry.total > self.lowWater else { break }
                entry.total -= victim.bytes
                entry.holders[victimID]?.evicted = true
                victims.append(victim.connection)
            }
            return victims
        }
    }

    /// What `client`'s connections hold together (those chosen to close left out).
    package func held(by client: ClientAddressKey) -> Int {
        self.clients.withLockedValue { $0[client]?.total ?? 0 }
    }

    /// Clients with a connection holding anything (or closing for it).
    package var clientCount: Int { self.clients.withLockedValue { $0.count } }
}
