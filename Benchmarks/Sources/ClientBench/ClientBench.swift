import ArgumentParser
import Foundation
import MizuLiveClient

/// One LiveClient's receive side, measured in its own process against a running ChatApp:
/// `client-bench receive URL` subscribes to `chat:bench` and reports messages per second and
/// its own CPU per message once `--count` messages arrived; `client-bench publish URL` sends
/// `--count` room messages at `--rate` per second (0: as fast as the connection takes them).
/// Benchmarks/client.sh runs both against a fresh release ChatApp.
@main
struct ClientBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client-bench", abstract: "MizuLiveClient receive rate and CPU per message.",
        subcommands: [Receive.self, Publish.self])

    struct Receive: AsyncParsableCommand {
        @Argument var url: String
        @Option var count = 200_000
        @Option var seconds = 60

        func run() async throws {
            var configuration = LiveClient.Configuration()
            configuration.token = { "bench-reader" }
            configuration.tokenPlacement = .query(name: "token")
            configuration.subscriptionBuffer = 10_000
            let client = LiveClient(url: self.url, configuration: configuration)
            try await client.connect()
            let room = try await client.subscribe("chat:bench", from: .live)
            FileHandle.standardOutput.write(Data("ready\n".utf8))
            var received = 0
            var missed = 0
            var outOfOrder = 0
            var last: UInt64 = 0
            var start: (wall: ContinuousClock.Instant, cpu: Double)?
            let deadline = ContinuousClock.now + .seconds(self.seconds)
            for try await event in room.events {
                switch event {
                case .message(let message):
                    if start == nil { start = (.now, Self.cpuSeconds()) }
                    received += 1
                    if let offset = message.position?.offset {
                        if last != 0, offset != last + 1 { outOfOrder += 1 }
                        last = offset
                    }
                case .missed:
                    missed += 1
                }
                if received >= self.count || ContinuousClock.now > deadline { break }
            }
            guard let start else { throw ValidationError("nothing received") }
            let wall = ContinuousClock.now - start.wall
            let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
            let cpu = Self.cpuSeconds() - start.cpu
            let counted = max(received - 1, 1)
            FileHandle.standardOutput.write(Data((String(format: "received %d in %.3f s: %.0f messages/s, client CPU %.3f us per message (%.0f %% of one core), missed %d, out of order %d",
                         received, seconds, Double(counted) / seconds, cpu * 1e6 / Double(counted), cpu / seconds * 100, missed, outOfOrder) + "\n").utf8))
            await client.close(flushTimeout: .seconds(1))
        }

        /// User plus system CPU of this process so far.
        static func cpuSeconds() -> Double {
            var now = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
            return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        }
    }

    struct Publish: AsyncParsableCommand {
        @Argument var url: String
        @Option var count = 200_000
        @Option(help: "Messages per second; 0 sends as fast as the send queue takes them.") var rate = 0

        func run() async throws {
            var configuration = LiveClient.Configuration()
            configuration.token = { "bench-writer" }
            configuration.tokenPlacement = .query(name: "token")
            let client = LiveClient(url: self.url, configuration: configuration)
            try await client.connect()
            let data = Array(#"{"text":"0123456789012345678901234567890123456789"}"#.utf8)
            let batch = self.rate > 0 ? max(1, self.rate / 100) : 256
            var sent = 0
            let clock = ContinuousClock()
            var next = clock.now
            while sent < self.count {
                let now = min(batch, self.count - sent)
                for _ in 0..<(now - 1) {
                    try client.send("chat:bench", data: data)
                }
                if self.rate > 0 {
                    try client.send("chat:bench", data: data)
                    next = next + .milliseconds(10)
                    try await clock.sleep(until: next)
                } else {
                    // The batch's last message is a publish with an answer: a round trip, so
                    // the server has read the batch before the next one is sent.
                    try await client.publish("chat:bench", data: data)
                }
                sent += now
            }
            await client.close(flushTimeout: .seconds(10))
        }
    }
}
