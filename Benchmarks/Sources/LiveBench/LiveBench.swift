import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// A load generator for servers that speak the ChatApp contract (../shared/CHATAPP.md).
/// One event loop, many connections, no task per message. Loopback only; every run is
/// bounded in connections and time.
@main
struct LiveBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live-bench",
        abstract: "Fan-out and idle-connection load for ChatApp-contract servers.",
        subcommands: [Fanout.self, Conns.self])
}

struct Target: ParsableArguments {
    @Option(help: "Server address (loopback only).") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 8080
    @Option(help: "WebSocket path.") var path = "/ws"
    @Option(help: "Server PID, to read its CPU time and RSS from /proc.") var serverPid: Int32?
    @Flag(help: "Offer permessage-deflate.") var compress = false
    @Option(help: "Publishers connect to this port instead: a cross-node run through a backplane (the window then refills on subscriber 0's copy).")
    var publisherPort: Int?

    func validate() throws {
        guard self.host.hasPrefix("127.") || self.host == "localhost" || self.host == "::1" else {
            throw ValidationError("live-bench only targets loopback addresses")
        }
    }

    /// Run settings with this target filled in.
    var settings: RunSettings {
        var settings = RunSettings()
        settings.host = self.host
        settings.port = self.port
        settings.publisherPort = self.publisherPort
        settings.path = self.path
        settings.compress = self.compress
        settings.serverPID = self.serverPid
        return settings
    }
}

struct Fanout: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "P publishers to N subscribers on chat:general.")

    @OptionGroup var target: Target
    @Option(help: "Subscribing connections (publishers subscribe too).") var subscribers = 999
    @Option(help: "Publishing connections.") var publishers = 1
    @Option(help: "Approximate bytes of each message's data.") var size = 64
    @Option(help: "Closed loop: messages in flight per publisher.") var window = 16
    @Option(help: "Fixed rate instead: messages per second in total.") var rate: Int?
    @Option(help: "Warm-up seconds.") var warmup = 3.0
    @Option(help: "Measured seconds.") var duration = 10.0

    func validate() throws {
        guard self.subscribers + self.publishers <= 20_000 else { throw ValidationError("at most 20,000 connections") }
        guard self.duration <= 300, self.warmup <= 60 else { throw ValidationError("at most 300 s measured, 60 s warm-up") }
    }

    func run() throws {
        var settings = self.target.settings
        settings.subscribers = self.subscribers
        settings.publishers = self.publishers
        settings.size = self.size
        settings.window = self.window
        settings.rate = self.rate
        settings.warmup = self.warmup
        settings.duration = self.duration
        let report = try Runner.run(settings)
        let receivers = self.subscribers + self.publishers
        let perDelivery = report.serverCPU.map { String(format: "%.3f", $0 / Double(max(report.deliveries, 1)) * 1e6) } ?? "n/a"
        print(String(
            format: "fanout receivers=%d publishers=%d size=%d compress=%@ mode=%@ deliveries=%d rate=%.0f/s "
                + "p50_us=%llu p90_us=%llu p99_us=%llu max_us=%llu server_cpu_us_per_delivery=%@ "
                + "lost=%d gaps=%d duplicates=%d disconnects=%d",
            receivers, self.publishers, self.size, self.target.compress ? "yes" : "no",
            self.rate.map { "rate:\($0)" } ?? "window:\(self.window)", report.deliveries,
            Double(report.deliveries) / max(report.seconds, 1e-9), report.p50, report.p90, report.p99, report.max,
            perDelivery, report.lost, report.gaps, report.duplicates, report.disconnects))
        if !report.failures.isEmpty { print("failures: \(report.failures)") }
    }
}

struct Conns: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "N idle subscribed connections; one publish must reach all.")

    @OptionGroup var target: Target
    @Option(help: "Idle connections.") var count = 10_000

    func validate() throws {
        guard self.count <= 20_000 else { throw ValidationError("at most 20,000 connections") }
    }

    func run() throws {
        var settings = self.target.settings
        settings.subscribers = self.count - 1
        settings.publishers = 1
        settings.idleOnly = true
        let report = try Runner.run(settings)
        let perConnection = report.rssBeforeKiB.flatMap { before in report.rssAfterKiB.map { Double($0 - before) / Double(self.count) } }
        // The connect storm: every connection opened, authenticated and subscribed (batches of 200).
        let connectsPerSecond = report.connectSeconds.map { Double(self.count) / $0 }
        let cpuPerConnect = report.connectServerCPU.map { $0 * 1e6 / Double(self.count) }
        print(String(
            format: "conns count=%d compress=%@ rss_before_kib=%d rss_after_kib=%d kib_per_connection=%@ received=%d/%d disconnects=%d connects_per_s=%@ server_cpu_us_per_connect=%@",
            self.count, self.target.compress ? "yes" : "no", report.rssBeforeKiB ?? -1, report.rssAfterKiB ?? -1,
            perConnection.map { String(format: "%.2f", $0) } ?? "n/a", report.idleReceived, self.count - 1, report.disconnects,
            connectsPerSecond.map { String(format: "%.0f", $0) } ?? "n/a", cpuPerConnect.map { String(format: "%.1f", $0) } ?? "n/a"))
        if !report.failures.isEmpty { print("failures: \(report.failures)") }
    }
}

enum Runner {
    static func run(_ settings: RunSettings) throws -> Coordinator.Report {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let eventLoop = group.next()
        let coordinator = try eventLoop.submit { Coordinator(settings: settings, eventLoop: eventLoop) }.wait()
        try eventLoop.submit { coordinator.rssBefore = settings.serverPID.flatMap { ServerProcess(pid: $0).rssKiB() } }.wait()
        try eventLoop.submit {
            coordinator.connectStart = (monotonicNanoseconds(), settings.serverPID.flatMap { ServerProcess(pid: $0).cpuSeconds() })
        }.wait()

        let total = settings.subscribers + settings.publishers
        var connects: [EventLoopFuture<Void>] = []
        for index in 0..<total {
            let port = index < settings.subscribers ? settings.port : settings.publisherPort ?? settings.port
            let token = index < settings.subscribers ? "s\(index)" : "p\(index - settings.subscribers)"
            let connection = try eventLoop.submit {
                let connection = BenchConnection(
                    index: index, token: token, host: settings.host, port: port, path: settings.path,
                    compress: settings.compress, coordinator: coordinator)
                coordinator.connections.append(connection)
                return connection
            }.wait()
            // Spread over loopback source addresses: each has only ~28,000 ephemeral ports.
            let source = try SocketAddress(ipAddress: "127.0.0.\(2 + index % 8)", port: 0)
            let bootstrap = ClientBootstrap(group: eventLoop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(connection) }
                }
            connects.append(bootstrap.bind(to: source).connect(host: settings.host, port: port).map { _ in })
            if connects.count == 200 {
                // Batches keep the server's accept backlog from overflowing.
                try EventLoopFuture.andAllSucceed(connects, on: eventLoop).wait()
                connects.removeAll()
            }
        }
        try EventLoopFuture.andAllSucceed(connects, on: eventLoop).wait()
        let timeout = eventLoop.scheduleTask(in: .seconds(Int64(settings.warmup + settings.duration) + 120)) {
            coordinator.failed("run did not finish in time")
            coordinator.finish()
        }
        defer { timeout.cancel() }
        return try coordinator.result.wait()
    }
}
