import ArgumentParser
import Foundation
import Logging
import Metrics
import Mizu
import MizuCompat
import MizuLive
import NIOConcurrencyHelpers
import Prometheus

/// The chat example: the page at `/`, live sessions at `/ws`, announcements at `/api/announce`.
@main
struct ChatApp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Mizu chat: the MizuLive complete example.")

    @Option(help: "Port to listen on (default: $PORT or 8080).")
    var port: Int?

    @Option(help: "Address to bind.")
    var host: String = "0.0.0.0"

    @Option(name: .customLong("origin"), help: "Another allowed WebSocket origin (repeatable).")
    var origins: [String] = []

    @Option(help: "Hold writes this many milliseconds so messages share syscalls (0: flush every loop tick).")
    var writeDelayMs: Int = 0

    @Option(help: "Join other ChatApp processes through Redis: redis://[[user]:password@]host[:port][/db].")
    var redis: String?

    @Option(help: "Join other ChatApp processes through a Redis Cluster: seed nodes HOST:PORT[,HOST:PORT...] (each may be a redis:// or rediss:// URL).")
    var redisCluster: String?

    @Option(help: "Prefix of the Redis channel names (with --redis or --redis-cluster).")
    var redisPrefix: String = "mizu-chat:"

    @Option(help: "Seconds a user of a ChatApp that died stays listed as online (with --redis).")
    var presenceExpiry: Int = 30

    @Flag(help: "Keep no history for chat rooms (no recovery; messages carry no position).")
    var noHistory = false

    @Flag(help: "Serve metrics in the Prometheus text format at GET /metrics.")
    var metrics = false

    @Option(help: "PEM certificate chain: serve https:// and wss:// (with --tls-key; needs a build with --traits TLS).")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    func run() async throws {
        // Every log line asks the C library for local time; with TZ unset glibc checks
        // /etc/localtime (a stat system call) each time. Set once, first, before any thread.
        if ProcessInfo.processInfo.environment["TZ"] == nil { setenv("TZ", ":/etc/localtime", 0) }
        LoggingSystem.bootstrap { StreamLogHandler.standardOutput(label: $0) }
        // Before the server, the app or the broker exist: their metrics are made with the factory.
        let registry = self.metrics ? PrometheusCollectorRegistry() : nil
        if let registry { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }
        extraOrigins.withLockedValue { $0 = self.origins }
        let port = self.port ?? ProcessInfo.processInfo.environment["PORT"].flatMap(Int.init) ?? 8080
        let broker = try await self.connectBackplane()
        backplane.withLockedValue { $0 = broker?.broker }
        writeDelay.withLockedValue { $0 = self.writeDelayMs > 0 ? .milliseconds(Int64(self.writeDelayMs)) : nil }
        historyEnabled.withLockedValue { $0 = !self.noHistory }
        presenceExpirySetting.withLockedValue { $0 = .seconds(Int64(max(1, self.presenceExpiry))) }

        let app = App(configuration: try self.httpConfiguration())
        // Ready while not shutting down and, with --redis, while the broker is connected.
        app.health(checks: broker.map { broker in ["redis": broker.isConnected] } ?? [:])
        app.get("/ws", compat(server.handler()))
        app.post("/api/announce", announce)
        app.get("/api/presence") { c in
            // Anyone may call it: budgeted per client, and the read is shared (coalesced) with
            // every other asking meanwhile, so a loop of calls costs the server little.
            let wait = apiBudget.tryTake(ClientAddressKey(c.request.remoteAddress))
            guard wait == 0 else {
                c.writer.setHeader("retry-after", String(Int(wait.rounded(.up))))
                return try await c.text(.tooManyRequests, "too many requests, slow down")
            }
            try await c.json(.ok, ["users": await onlineUsers()])
        }
        if let registry {
            app.get("/metrics") { c in
                try await c.bytes(.ok, registry.emitToBuffer(), contentType: "text/plain; version=0.0.4; charset=utf-8")
            }
        }
        app.staticFiles("/", directory: Self.publicDirectory)
        app.onShutdown {
            await server.shutdown()
            await broker?.close()
        }
        try await app.listen("\(self.host):\(port)")
    }

    /// Plain HTTP, or TLS with `--tls-cert` and `--tls-key`.
    func httpConfiguration() throws -> HTTPServerConfiguration {
        var configuration = HTTPServerConfiguration()
        guard self.tlsCert != nil || self.tlsKey != nil else { return configuration }
        guard let cert = self.tlsCert, let key = self.tlsKey else {
            log.error("cannot start: --tls-cert and --tls-key go together")
            throw ExitCode.failure
        }
        #if TLS
        do {
            configuration.tls = try App.tlsConfiguration(certificateFile: cert, keyFile: key)
        } catch {
            log.error("cannot start: TLS certificate or key unusable: \(error)")
            throw ExitCode.failure
        }
        return configuration
        #else
        _ = (cert, key)
        log.error("cannot start: this ChatApp was built without TLS (swift build --traits TLS)")
        throw ExitCode.failure
        #endif
    }

    /// The broker for `--redis` or `--redis-cluster`, and its readiness check; a Redis that
    /// cannot be reached or refuses ends start-up with its reason.
    func connectBackplane() async throws -> Backplane? {
        guard self.redis == nil || self.redisCluster == nil else {
            log.error("cannot start: give --redis or --redis-cluster, not both")
            throw ExitCode.failure
        }
        do {
            if let url = self.redis {
                let broker = try await Live.RedisBroker.connect(url: url, channelPrefix: self.redisPrefix)
                log.info("sharing pub/sub through Redis at \(broker.configuration.host):\(broker.configuration.port)")
                return Backplane(broker: broker, isConnected: { broker.isConnected }, close: { await broker.close() })
            }
            if let seeds = self.redisCluster {
                var configuration = try Live.RedisClusterBroker.Configuration(seeds: seeds)
                configuration.node.channelPrefix = self.redisPrefix
                let broker = try await Live.RedisClusterBroker.connect(configuration)
                log.info("sharing pub/sub through a Redis Cluster: primaries \(broker.primaries.joined(separator: ", "))")
                return Backplane(broker: broker, isConnected: { broker.isConnected }, close: { await broker.close() })
            }
            return nil
        } catch {
            log.error("cannot start: \(error)")
            throw ExitCode.failure
        }
    }

    /// The page's files, shipped as the target's resources.
    static var publicDirectory: String {
        Bundle.module.url(forResource: "Public", withExtension: nil)?.path ?? "Examples/ChatApp/Public"
    }
}

/// The broker behind `--redis` or `--redis-cluster`: what the app asks of either.
struct Backplane: Sendable {
    let broker: any Live.Broker
    let isConnected: @Sendable () -> Bool
    let close: @Sendable () async -> Void
}

struct Announcement: Decodable {
    var text: String
}

/// Publishing from an HTTP handler: `{"user":"server","data":{"text":"..."}}` on chat:general.
@Sendable func announce(_ c: Ctx) async throws {
    let wait = announceBudget.tryTake(ClientAddressKey(c.request.remoteAddress))
    guard wait == 0 else {
        c.writer.setHeader("retry-after", String(Int(wait.rounded(.up))))
        return try await c.text(.tooManyRequests, "too many announcements, slow down")
    }
    let announcement = try c.bindJSON(Announcement.self, limit: 16 * 1024)
    var msg = Data(#"{"user":"server","data":{"text":"#.utf8)
    msg.append(jsonString(announcement.text))
    msg.append(Data("}}".utf8))
    server.publish("chat:general", msg)
    c.noContent()
}
