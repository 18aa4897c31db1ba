import Foundation
import MizuLive
@testable import MizuLiveClient
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
#if TLS
import Mizu
import NIOSSL
#endif
import Testing

/// The client against a real server over real sockets: history on join, every message once and
/// in order across reconnects, typed answers, the reconnect rules, bounded queues.
@Suite(.timeLimit(.minutes(10))) struct LiveClientTests {
    @Test func aSubscriptionStartsWithTheHistoryAskedForThenGoesLiveInOrder() async throws {
        try await withFixture { fixture in
            fixture.publish("h:room", 1...5)
            let client = LiveClient.of(fixture, user: "ann")
            try await client.connect()
            let room = try await client.subscribe("h:room", from: .latest(3))
            let history = try await room.next(3)
            #expect(history.map(\.number) == [3, 4, 5] && history.map(\.offset) == [3, 4, 5])
            fixture.publish("h:room", 6...7)
            let live = try await room.next(2)
            #expect(live.map(\.number) == [6, 7] && live.map(\.offset) == [6, 7])
            await client.close()
        }
    }

    @Test func aSessionClosedToComeBackIsReplacedAndItsSubscriptionLosesNothing() async throws {
        try await withFixture { fixture in
            let client = LiveClient.of(fixture, user: "ann")
            try await client.connect()
            let room = try await client.subscribe("h:room", from: .live)
            let firstSession = try await fixture.session(of: "ann")
            fixture.publish("h:room", 1...3)
            #expect(try await room.next(3).map(\.number) == [1, 2, 3])
            // Taken before the close: taken after, a reconnect quicker than this task would make
            // its first state the new `.connected`, and the loop below would wait for another.
            let states = client.states
            // Published while the client is away: the resubscribe from offset 3 brings them.
            firstSession.close(code: 4000, reason: "come back")
            fixture.publish("h:room", 4...10)
            _ = try await eventuallyAsync("a new session") {
                let sessions = fixture.sessions.withLockedValue { $0.filter { $0.value as? String == "ann" } }
                return sessions.count >= 2 ? true : nil
            }
            fixture.publish("h:room", 11...12)
            let rest = try await room.next(9)
            #expect(rest.map(\.number) == Array(4...12), "every message once, in order, nothing missed")
            var seen: [ConnectionState] = []
            for await state in states {
                seen.append(state)
                if state == .connected, seen.count > 1 { break }
            }
            #expect(seen.contains { if case .disconnected = $0 { return true } else { return false } })
            await client.close()
        }
    }

    @Test func theTokenIsAskedForAgainBeforeEveryAttempt() async throws {
        try await withFixture { fixture in
            let asked = NIOLockedValueBox(0)
            let client = LiveClient.of(fixture, user: "unused") {
                $0.token = { "ann-" + String(asked.withLockedValue { $0 += 1; return $0 }) }
            }
            try await client.connect()
            try await fixture.session(of: "ann-1").close(code: 4000, reason: "token expired")
            _ = try await fixture.session(of: "ann-2")
            #expect(asked.withLockedValue { $0 } == 2)
            await client.close()
        }
    }

    /// A token provider that never answers (an auth server gone silent; it ignores cancellation
    /// too) costs one attempt, not the client: the attempt fails at the handshake timeout and
    /// the next asks again. Waited for without a deadline, it held the client's only task.
    @Test func aTokenProviderThatNeverAnswersCostsOneAttempt() async throws {
        try await withFixture { fixture in
            let asked = NIOLockedValueBox(0)
            let silent = Gate()
            let client = LiveClient.of(fixture, user: "unused") {
                $0.handshakeTimeout = Patience.scaled(.milliseconds(500))
                $0.token = {
                    let number = asked.withLockedValue { $0 += 1; return $0 }
                    if number == 1 { await silent.wait() }
                    return "ann-\(number)"
                }
            }
            try await withDeadline("the client connected despite the silent provider", timeout: .seconds(20)) { try await client.connect() }
            // ann-2, or a later one when a slow run let the second attempt pass its timeout too.
            _ = try await eventually("a session after the silent ask") {
                fixture.sessions.withLockedValue { sessions in
                    sessions.contains { ($0.value as? String).map { $0.hasPrefix("ann-") && $0 != "ann-1" } ?? false } ? true : nil
                }
            }
            #expect(!silent.isOpen, "the first ask is still unanswered")
            silent.open()
            await client.close()
        }
    }

    /// A call made while the server cannot be reached (the client retries for ever by default)
    /// fails with `timeout` after the request timeout instead of waiting for a connection that
    /// may never come; its place in the queue is given back.
    @Test func aCallWhileTheServerIsAwayFailsAtTheRequestTimeout() async throws {
        var configuration = LiveClient.Configuration()
        configuration.requestTimeout = .milliseconds(200)
        configuration.reconnect.initialDelay = .milliseconds(20)
        configuration.reconnect.maxDelay = .milliseconds(200)
        configuration.maxQueuedRequests = 2
        let client = LiveClient(url: "ws://127.0.0.1:1/ws", configuration: configuration)  // nothing listens there
        let connecting = Task { try? await client.connect() }
        func outcome(_ call: @escaping @Sendable () async throws -> Void) async throws -> String {
            try await withDeadline("a call made while disconnected to end") {
                do {
                    try await call()
                    return "answered"
                } catch {
                    return "\(error)"
                }
            }
        }
        async let history = outcome { _ = try await client.history("h:room") }
        async let publish = outcome { try await client.publish("h:room", json: "{}") }
        #expect(try await [history, publish] == ["\(LiveClientError.timeout)", "\(LiveClientError.timeout)"])
        // Both places in the queue are free again.
        #expect(try await outcome { _ = try await client.presence("h:room") } == "\(LiveClientError.timeout)")
        await client.close(flushTimeout: .zero)
        _ = await connecting.value
    }

    /// README's quick start (with the fixture's URL, user and a history topic).
    @Test func theReadmeQuickStartWorks() async throws {
        try await withFixture { fixture in
            fixture.publish("h:general", 1...2)
            var configuration = LiveClient.Configuration()
            configuration.token = { "ann" }
            configuration.tokenPlacement = .query(name: "user")
            // Not in the README: a wait for the server is a bound on the machine's speed (#30).
            configuration.requestTimeout = Patience.scaled(.seconds(10))
            configuration.handshakeTimeout = Patience.scaled(.seconds(10))
            configuration.deadConnectionTimeout = Patience.scaled(.seconds(35))
            let client = LiveClient(url: fixture.url, configuration: configuration)
            try await client.connect()
            let room = try await client.subscribe("h:general", from: .latest(50))
            try await client.publish("h:general", json: #"{"text":"hello"}"#)
            // (README loops over `room.events`; here with a deadline.)
            let seen = try await room.next(3).compactMap { event -> String? in
                if case .message(let message) = event { return message.json } else { return nil }
            }
            #expect(seen == [#"{"n":1}"#, #"{"n":2}"#, #"{"text":"hello"}"#])
            await client.close()
        }
    }

    @Test func requestsAreAnsweredWithResultsOrTypedErrors() async throws {
        try await withFixture { fixture in
            let client = LiveClient.of(fixture, user: "ann")
            try await client.connect()
            try await client.publish("h:log", json: #"{"n":1}"#)
            try await client.publish("h:log", json: #"{"n":2}"#)
            let page = try await client.history("h:log", limit: 10)
            #expect(page.messages.map(\.json) == [#"{"n":1}"#, #"{"n":2}"#] && page.position.offset == 2 && page.messages.last?.position == page.position)
            let after = try await client.history("h:log", since: StreamPosition(offset: 1, epoch: page.position.epoch))
            #expect(after.messages.map(\.json) == [#"{"n":2}"#] && after.complete)

            let presence = try await client.subscribe("p:lobby")
            let snapshot = try await client.presence("p:lobby")
            #expect(snapshot.members.count == 1 && !snapshot.truncated)
            await client.unsubscribe(presence)

            await #expect(throws: LiveClientError.server(code: "not_allowed", message: "not allowed", temporary: false)) {
                try await client.publish("elsewhere", json: "1")
            }
            await #expect(throws: LiveClientError.server(code: "not_allowed", message: "not allowed", temporary: false)) {
                _ = try await client.subscribe("secret")
            }
            await #expect(throws: LiveClientError.invalidData) { try await client.publish("h:log", json: "{not json") }
            await #expect(throws: LiveClientError.alreadySubscribed("h:x")) {
                _ = try await client.subscribe("h:x")
                _ = try await client.subscribe("h:x")
            }
            do throws(LiveClientError) {
                _ = try await client.history("plain")
                Issue.record("history of a topic without history answered")
            } catch {
                guard case .server(let code, _, let temporary) = error else { throw error }
                #expect(code == "not_enabled" && !temporary && !error.isTemporary, "\(error)")
            }
            await client.close()
            await #expect(throws: LiveClientError.closed) { try await client.publish("h:log", json: "3") }
        }
    }

    @Test func messagesSentBeforeTheConnectionGoOutInOrderOnceItOpensAndTheQueueIsBounded() async throws {
        try await withFixture { fixture in
            let client = LiveClient.of(fixture, user: "ann") { $0.maxQueuedRequests = 3 }
            for number in 1...3 { try client.send("note", data: Array("\(number)".utf8)) }
            #expect(throws: LiveClientError.queueFull) { try client.send("note", data: Array("4".utf8)) }
            try await client.connect()
            let notes = try await eventually("3 notes") { fixture.received.withLockedValue { $0.count >= 3 ? $0 : nil } }
            #expect(notes.map(\.data) == ["1", "2", "3"] && notes.allSatisfy { $0.user == "ann" && $0.topic == "note" })
            await client.close()
        }
    }

    @Test func aRefusedLoginStopsAtOnceAndIsNotRetried() async throws {
        try await withFixture { fixture in
            let client = LiveClient.of(fixture, user: "intruder")
            await #expect(throws: LiveClientError.stopped(.refused(status: 401))) { try await client.connect() }
            #expect(client.state == .stopped(.refused(status: 401)))
            try await Task.sleep(for: .milliseconds(300))
            #expect(fixture.authAttempts.withLockedValue { $0 } == 1, "no second attempt")
            await #expect(throws: LiveClientError.stopped(.refused(status: 401))) { try await client.publish("h:x", json: "1") }
        }
    }

    @Test func aDoNotReconnectCloseEndsTheClientAndItsSubscriptions() async throws {
        try await withFixture { fixture in
            let client = LiveClient.of(fixture, user: "ann")
            try await client.connect()
            let room = try await client.subscribe("h:room")
            try await fixture.session(of: "ann").close(code: 4501, reason: "banned")
            await #expect(throws: LiveClientError.stopped(.doNotReconnect(code: 4501))) { _ = try await room.next(1) }
            #expect(client.state == .stopped(.doNotReconnect(code: 4501)))
            try await Task.sleep(for: .milliseconds(300))
            #expect(fixture.authAttempts.withLockedValue { $0 } == 1)
        }
    }

    @Test func aServerThatSaysNothingForTooLongIsTakenForDeadAndReplaced() async throws {
        // The server pings every 25 s; a client that expects a frame every 300 ms (times the
        // patience: a connection must live long enough to be answered its subscribe, 12 s under
        // ThreadSanitizer) gives up on it, as on a frozen server, and recovers on a new one.
        try await withFixture { fixture in
            let client = LiveClient.of(fixture, user: "ann") { $0.deadConnectionTimeout = Patience.scaled(.milliseconds(300)) }
            try await client.connect()
            let room = try await client.subscribe("h:room")
            fixture.publish("h:room", 1...2)
            #expect(try await room.next(2).map(\.number) == [1, 2])
            _ = try await eventuallyAsync("a second session") {
                fixture.sessions.withLockedValue { $0.count >= 2 ? true : nil }
            }
            fixture.publish("h:room", 3...4)
            #expect(try await room.next(2).map(\.number) == [3, 4])
            await client.close()
        }
    }

    @Test func aConsumerThatReadsSlowlyLosesNothingOnATopicWithHistory() async throws {
        try await withFixture { fixture in
            let client = LiveClient.of(fixture, user: "ann") { $0.subscriptionBuffer = 4 }
            try await client.connect()
            let room = try await client.subscribe("h:room")
            fixture.publish("h:room", 1...60)
            // Nothing read yet: the buffer holds 4, the rest is dropped and caught up later.
            try await Task.sleep(for: .milliseconds(200))
            #expect(room.buffer.count <= 4)
            let all = try await room.next(60)
            #expect(all.map(\.number) == Array(1...60), "each once, in order: the catch-up comes from history")
            await client.close()
        }
    }

    @Test func aConsumerThatReadsSlowlyOnATopicWithoutHistoryIsToldWhatItMissed() async throws {
        try await withFixture { fixture in
            let client = LiveClient.of(fixture, user: "ann") { $0.subscriptionBuffer = 4 }
            try await client.connect()
            let room = try await client.subscribe("plain")
            let marker = try await client.subscribe("marker")
            fixture.publish("plain", 1...20)
            // One connection delivers in publish order: once the marker is in, all 20 have reached
            // the client (4 buffered, the fifth refused, the rest dropped while paused), however
            // slow the machine; without it, some could still arrive after the catch-up and
            // overflow the buffer again (a second notice, rightly).
            fixture.publish("marker", 1...1)
            #expect(try await marker.next(1).map(\.number) == [1])
            #expect(client.core.state.withLockedValue { $0.subscriptions["plain"]?.phase == .paused })
            let first = try await room.next(3)
            #expect(first.map(\.number) == [1, 2, 3])
            let next = try await room.next(2)
            #expect(next == [next[0], .missed(resumesAfter: nil)] && next[0].number == 4, "the drop is said, in its place")
            // Live again: the next message arrives, with no second notice.
            fixture.publish("plain", 21...21)
            #expect(try await room.next(1).map(\.number) == [21])
            await client.close()
        }
    }

    @Test func closeSendsWhatWasQueuedFirstThenEndsSubscriptionsAndStops() async throws {
        try await withFixture { fixture in
            let client = LiveClient.of(fixture, user: "ann")
            try await client.connect()
            let room = try await client.subscribe("h:room")
            for number in 1...20 { try client.send("note", data: Array("\(number)".utf8)) }
            // (Not the default 5 s: a loaded run could pass it and discard what was queued.)
            await client.close(flushTimeout: .seconds(3600))
            let notes = try await eventually("20 notes") { fixture.received.withLockedValue { $0.count >= 20 ? $0 : nil } }
            #expect(notes.map(\.data) == (1...20).map(String.init))
            #expect(try await room.next(1, timeout: .seconds(5)) == [], "the events end")
            #expect(client.state == .stopped(.closedByClient))
            _ = try await eventually("the session closed") { fixture.server.sessionCount == 0 ? true : nil }
        }
    }

    #if TLS
    @Test func wssWorksWithTheTrustGivenAndRefusesAServerItDoesNotTrust() async throws {
        let (certificate, key) = try makeSelfSignedCertificate()
        var http = HTTPServerConfiguration()
        http.tls = try App.tlsConfiguration(certificateFile: certificate, keyFile: key)
        let fixture = try await LiveServerFixture.start(http: http)
        do {
            let trusting = LiveClient.of(fixture, user: "ann") {
                $0.tls.trustRoots = .certificates((try? NIOSSLCertificate.fromPEMFile(certificate)) ?? [])
            }
            try await trusting.connect()
            let room = try await trusting.subscribe("h:secure", from: .live)
            try await trusting.publish("h:secure", json: #"{"n":1}"#)
            #expect(try await room.next(1).map(\.number) == [1])
            await trusting.close()

            // The system's roots do not know a self-signed certificate: no connection, retried.
            let wary = LiveClient.of(fixture, user: "bob")
            let states = wary.states
            Task { try? await wary.connect() }
            for await state in states {
                if case .disconnected(let reason, _) = state {
                    #expect(reason.contains("connect failed") || reason.contains("closed"), "\(reason)")
                    break
                }
                #expect(state != .connected)
            }
            await wary.close()
            await fixture.stop()
        } catch {
            await fixture.stop()
            throw error
        }
    }
    #endif
}
