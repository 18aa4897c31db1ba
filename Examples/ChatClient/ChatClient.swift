import ArgumentParser
import Foundation
import MizuLiveClient

/// A terminal chat on MizuLiveClient (CHATAPP.md's contract): each chat message of the room is
/// one JSON line on stdout, once and in order across reconnects; each stdin line is said in the
/// room; status goes to stderr. EOF on stdin closes with 1000 and exits 0; a refused login
/// (401) exits 1 without another attempt.
@main
struct ChatClient: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Terminal client of the ChatApp (MizuLiveClient).")

    @Argument(help: "The ChatApp's WebSocket endpoint, e.g. ws://127.0.0.1:8080/ws.")
    var url: String

    @Option(help: "Your user name (the ChatApp's token: letters, digits, _ and -).")
    var user: String

    @Option(help: "The room: the topic chat:ROOM.")
    var room = "general"

    @Option(help: "Seconds without any frame after which the connection is taken for dead (the server pings every 25 s).")
    var deadAfter = 35

    func run() async throws {
        let user = self.user
        var configuration = LiveClient.Configuration()
        configuration.token = { user }
        configuration.tokenPlacement = .query(name: "token")
        configuration.deadConnectionTimeout = .seconds(max(1, min(self.deadAfter, 86_400)))
        let client = LiveClient(url: self.url, configuration: configuration)
        let topic = "chat:" + self.room

        // Any stop but our own close ends the program with its reason (before the first
        // connection, `connect` reports it).
        let watcher = Task {
            var connectedOnce = false
            for await state in client.states {
                switch state {
                case .connecting(let attempt) where attempt > 1: Status.say("reconnecting (attempt \(attempt))")
                case .connected:
                    connectedOnce = true
                    Status.say("connected")
                case .stopped where !connectedOnce: break
                case .disconnected(let reason, let wait): Status.say("disconnected (\(reason)); next attempt in \(wait)")
                case .stopped(let reason) where reason != .closedByClient: Status.fail("stopped: \(Self.describe(reason))")
                default: break
                }
            }
        }
        defer { watcher.cancel() }

        let room: LiveSubscription
        do {
            try await client.connect()
            room = try await client.subscribe(topic, from: .latest(50))
        } catch {
            Status.fail(Self.describe(error))
        }
        let printer = Task {
            do {
                for try await event in room.events {
                    switch event {
                    case .message(let message): Output.print(message)
                    case .missed(let after):
                        Status.say("missed messages: the server could not recover them" + (after.map { "; going on after \($0)" } ?? ""))
                    }
                }
            } catch {
                Status.fail("room closed: \(Self.describe(error))")
            }
        }
        for await line in StandardInput.lines() {
            do {
                try client.send(topic, data: Array(Self.chatData(line).utf8))
            } catch {
                Status.say("not sent (\(error)): \(line)")
            }
        }
        await client.close(flushTimeout: .seconds(10))
        printer.cancel()
    }

    /// `{"text":LINE}`.
    static func chatData(_ line: String) -> String {
        let encoded = (try? JSONEncoder().encode(["text": line])).map { String(decoding: $0, as: UTF8.self) }
        return encoded ?? "{\"text\":\"\"}"
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? LiveClientError, case .stopped(let reason) = error { return Self.describe(reason) }
        return "\(error)"
    }

    static func describe(_ reason: StopReason) -> String {
        switch reason {
        case .refused(let status) where status == 401: return "unauthorized (401): the server refused the user name"
        case .refused(let status): return "refused with HTTP \(status)"
        case .closedByServer: return "closed by the server (1000)"
        case .doNotReconnect(let code): return "the server said not to come back (\(code))"
        case .protocolError(let code): return "protocol error (\(code))"
        case .closedByClient: return "closed"
        case .unsupportedServer: return "the server does not speak mizu-live.v1"
        case .unusable(let why): return why
        }
    }
}

/// One JSON line per chat message: `{"user":U,"text":T,"offset":N,"epoch":E}` (members in
/// that order), written with one unbuffered write.
enum Output {
    /// What the ChatApp publishes: `{"user":U,"data":D}`, D being the sender's `{"text":T}`.
    struct Published: Decodable {
        struct Said: Decodable {
            var text: String?
        }

        var user: String
        var data: Said?
    }

    static func print(_ message: LiveMessage) {
        guard let published = try? message.decode(Published.self) else {
            Status.say("unreadable chat message: \(message.json)")
            return
        }
        var line = "{\"user\":" + Self.quoted(published.user) + ",\"text\":" + Self.quoted(published.data?.text ?? "")
        if let position = message.position {
            line += ",\"offset\":\(position.offset),\"epoch\":" + Self.quoted(position.epoch)
        }
        FileHandle.standardOutput.write(Data((line + "}\n").utf8))
    }

    private static func quoted(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }
}

enum Status {
    static func say(_ text: String) {
        FileHandle.standardError.write(Data(("ChatClient: " + text + "\n").utf8))
    }

    static func fail(_ text: String) -> Never {
        Self.say(text)
        exit(1)
    }
}

/// stdin's lines, read on a thread of their own (a blocking read must not hold a task's
/// thread), at most 64 ahead of the consumer: a fast producer waits in the pipe, not in memory.
struct StandardInput: AsyncSequence {
    typealias Element = String
    private let stream: AsyncStream<String>
    private let room = DispatchSemaphore(value: 64)

    init() {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        self.stream = stream
        let room = self.room
        Thread {
            while let line = readLine(strippingNewline: true) {
                room.wait()
                continuation.yield(line)
            }
            continuation.finish()
        }.start()
    }

    static func lines() -> StandardInput { StandardInput() }

    func makeAsyncIterator() -> Iterator { Iterator(lines: self.stream.makeAsyncIterator(), room: self.room) }

    struct Iterator: AsyncIteratorProtocol {
        var lines: AsyncStream<String>.Iterator
        let room: DispatchSemaphore

        mutating func next() async -> String? {
            let line = await self.lines.next()
            if line != nil { self.room.signal() }
            return line
        }
    }
}
