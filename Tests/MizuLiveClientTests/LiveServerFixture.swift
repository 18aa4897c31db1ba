import Foundation
import Mizu
import MizuCompat
import MizuLive
import MizuLiveClient
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore

/// A real `Live.Server` with the standard command set on 127.0.0.1, port 0, for the client:
/// `?user=NAME` authenticates (any name but `intruder`); topics `h:*` keep history (100
/// messages), `p:*` track presence; anyone reads anything but `secret`, publishes on `h:*` and
/// `room:*`. What the application's `onMessage` sees is recorded.
final class LiveServerFixture: Sendable {
    let server: Live.Server
    let port: Int
    let app: App
    /// Application messages in arrival order: (user, topic, data).
    let received = NIOLockedValueBox<[(user: String, topic: String, data: String)]>([])
    /// Every handshake that reached `onAuth`.
    let authAttempts = NIOLockedValueBox(0)
    let sessions = NIOLockedValueBox<[Live.Session]>([])

    private init(server: Live.Server, app: App, port: Int) {
        self.server = server
        self.app = app
        self.port = port
    }

    var url: String { "\(self.app.configuration.isSecure ? "wss://localhost" : "ws://127.0.0.1"):\(self.port)/ws" }

    static func start(
        http: HTTPServerConfiguration = HTTPServerConfiguration(), _ configure: (inout Live.Options) -> Void = { _ in }
    ) async throws -> LiveServerFixture {
        let box = NIOLockedValueBox<LiveServerFixture?>(nil)
        var options = Live.Options(
            onAuth: { _, request in
                box.withLockedValue { $0 }?.authAttempts.withLockedValue { $0 += 1 }
                guard let user = request.query["user"], user != "intruder" else { throw HTTPError(.unauthorized, "unauthorized") }
                return user
            },
            onMessage: { _, session, topic, data in
                box.withLockedValue { $0 }?.received.withLockedValue {
                    $0.append((session.value as? String ?? "", topic, String(decoding: data, as: UTF8.self)))
                }
            })
        options.onOpen = { _, session in box.withLockedValue { $0 }?.sessions.withLockedValue { $0.append(session) } }
        options.history = { $0.hasPrefix("h:") ? Live.HistoryPolicy(size: 100, ttl: .seconds(600)) : nil }
        options.presence = Live.PresenceOptions(topics: { $0.hasPrefix("p:") })
        options.commands = Live.Commands(
            canSubscribe: { _, request in request.topic != "secret" },
            canPublish: { _, topic, _ in topic.hasPrefix("h:") || topic.hasPrefix("room:") })
        // The clients of these tests answer pings; a slow run must not trip the heartbeat anyway.
        options.heartbeatInterval = Patience.scaled(.seconds(25))
        configure(&options)
        let server = Live.Server(options)
        let app = App(configuration: http, logsRequests: false)
        app.get("/ws", compat(server.handler()))
        let address = try await app.start(host: "127.0.0.1", port: 0)
        let fixture = LiveServerFixture(server: server, app: app, port: address.port!)
        box.withLockedValue { $0 = fixture }
        return fixture
    }

    func stop() async {
        await self.app.shutdown()
    }

    /// Publishes `count` messages `{"n":first...}` on `topic` from the server.
    func publish(_ topic: String, _ numbers: ClosedRange<Int>) {
        for number in numbers { self.server.publish(topic, Data(#"{"n":\#(number)}"#.utf8)) }
    }

    func session(of user: String) async throws -> Live.Session {
        try await eventually("\(user)'s session") { self.sessions.withLockedValue { $0.last { $0.value as? String == user } } }
    }
}

/// Runs `body` with a started fixture, stopping it whatever happens.
func withFixture(
    _ configure: (inout Live.Options) -> Void = { _ in }, _ body: (LiveServerFixture) async throws -> Void
) async throws {
    let fixture = try await LiveServerFixture.start(configure)
    do {
        try await body(fixture)
        await fixture.stop()
    } catch {
        await fixture.stop()
        throw error
    }
}

extension LiveClient {
    /// A client of `fixture` as `user`, with the test's patience in its request timeout.
    static func of(_ fixture: LiveServerFixture, user: String, _ configure: (inout Configuration) -> Void = { _ in }) -> LiveClient {
        var configuration = Configuration()
        configuration.token = { user }
        configuration.tokenPlacement = .query(name: "user")
        configuration.requestTimeout = Patience.scaled(.seconds(10))
        configuration.handshakeTimeout = Patience.scaled(.seconds(10))
        // The fixture's server pings at a patience-scaled interval: the client waits as long.
        configuration.deadConnectionTimeout = Patience.scaled(.seconds(35))
        // Reconnects in these tests should come fast; the backoff's shape is ReconnectScheduleTests'.
        configuration.reconnect.initialDelay = .milliseconds(20)
        configuration.reconnect.maxDelay = .milliseconds(200)
        configuration.reconnect.shutdownSpread = .milliseconds(100)
        configure(&configuration)
        return LiveClient(url: fixture.url, configuration: configuration)
    }
}

extension LiveSubscription {
    /// The next `count` events, or fails after the test's patience.
    func next(_ count: Int, timeout: Duration = .seconds(10)) async throws -> [LiveSubscription.Event] {
        let events = self.events
        return try await withThrowingTaskGroup(of: [LiveSubscription.Event]?.self) { group in
            group.addTask {
                var collected: [LiveSubscription.Event] = []
                for try await event in events {
                    collected.append(event)
                    if collected.count == count { break }
                }
                return collected
            }
            group.addTask {
                try await Task.sleep(for: Patience.scaled(timeout))
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            guard let first else { throw ClientTestTimeout(waitingFor: "\(count) events of \(self.topic)") }
            return first
        }
    }
}

struct ClientTestTimeout: Error, CustomStringConvertible {
    var waitingFor: String
    var description: String { "timed out waiting for \(self.waitingFor)\(Patience.note)" }
}

extension LiveSubscription.Event {
    /// The `n` of a fixture's message, nil for anything else.
    var number: Int? {
        guard case .message(let message) = self else { return nil }
        struct Numbered: Decodable { var n: Int }
        return try? message.decode(Numbered.self).n
    }

    var offset: UInt64? {
        guard case .message(let message) = self else { return nil }
        return message.position?.offset
    }
}

/// The value of `task`, or a timeout after the test's patience: a task's value cannot be
/// cancelled, so it is raced outside structured concurrency (the loser is left to end alone).
func value<T: Sendable>(of task: Task<T, any Error>, within timeout: Duration = .seconds(5)) async throws -> T {
    let settled = NIOLockedValueBox(false)
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let settle: @Sendable (Result<T, any Error>) -> Void = { result in
            guard settled.withLockedValue({ done in defer { done = true }; return !done }) else { return }
            continuation.resume(with: result)
        }
        Task { settle(await task.result) }
        Task {
            try? await Task.sleep(for: Patience.scaled(timeout))
            settle(.failure(ClientTestTimeout(waitingFor: "a request's outcome")))
        }
    }
}
