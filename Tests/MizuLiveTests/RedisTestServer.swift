import Foundation
@testable import MizuLive
import MizuTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
#if TLS
import NIOSSL
#endif

#if canImport(Glibc)
import Glibc
#endif

/// A real redis-server on 127.0.0.1 for one test: started on a free port, stopped, restarted
/// on the same port, paused (SIGSTOP) to play a slow Redis. Every wait is bounded.
final class RedisTestServer: Sendable {
    struct NotInstalled: Error, CustomStringConvertible {
        var description: String { "redis-server is not installed (scripts/install-deps.sh installs it)" }
    }

    let port: Int
    let password: String?
    /// PEM certificate and key: the server speaks TLS only (rediss://).
    let tls: (certificate: String, key: String)?
    /// The running process; replaced on restart.
    private let running = NIOLockedValueBox<Process?>(nil)

    static var executable: String? {
        let paths = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/redis-server" }
        return paths.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// More `redis-server` arguments (e.g. `--cluster-enabled yes`).
    let extraArguments: [String]

    private init(port: Int, password: String?, tls: (certificate: String, key: String)?, extraArguments: [String]) {
        self.port = port
        self.password = password
        self.tls = tls
        self.extraArguments = extraArguments
    }

    /// `clusterBus`: the port 10,000 above is free too (a cluster node's bus); implied by
    /// `--cluster-enabled yes`. A port can be taken by another process between the check and
    /// redis-server's bind (the machine is shared): a server that exits before it listens is
    /// started again on another port, up to three times.
    static func start(
        password: String? = nil, tls: (certificate: String, key: String)? = nil, extraArguments: [String] = [], clusterBus: Bool = false
    ) async throws -> RedisTestServer {
        let bus = clusterBus || extraArguments.contains("--cluster-enabled")
        var attempt = 1
        while true {
            let server = RedisTestServer(port: try await Self.freePort(clusterBus: bus), password: password, tls: tls, extraArguments: extraArguments)
            do {
                try await server.launch()
                return server
            } catch let exited as ExitedBeforeListening where attempt < 3 {
                attempt += 1
                print("redis-server on \(server.port) exited before listening, trying another port: \(exited)")
            }
        }
    }

    struct ExitedBeforeListening: Error, CustomStringConvertible {
        let port: Int
        let status: Int32
        let output: String
        var description: String { "redis-server for port \(self.port) exited with status \(self.status) before listening; it said: \(self.output)" }
    }

    var url: String { "\(self.tls == nil ? "redis" : "rediss")://\(self.password.map { ":\($0)@" } ?? "")127.0.0.1:\(self.port)" }

    func configuration(prefix: String = "test:") throws -> Live.RedisBroker.Configuration {
        var configuration = try Live.RedisBroker.Configuration(url: self.url)
        configuration.channelPrefix = prefix
        configuration.reconnectDelay = .milliseconds(20)
        configuration.maxReconnectDelay = .milliseconds(200)
        configuration.connectTimeout = Patience.scaled(.seconds(2))  // a healthy Redis must beat it
        #if TLS
        if let tls = self.tls {
            configuration.tls?.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(tls.certificate))
        }
        #endif
        return configuration
    }

    private func launch() async throws {
        guard let executable = Self.executable else { throw NotInstalled() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        var arguments = [
            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
        ]
        if let tls = self.tls {
            arguments += [
                "--port", "0", "--tls-port", String(self.port), "--tls-cert-file", tls.certificate, "--tls-key-file", tls.key,
                "--tls-ca-cert-file", tls.certificate, "--tls-auth-clients", "no",
            ]
        } else {
            arguments += ["--port", String(self.port)]
        }
        if let password = self.password { arguments += ["--requirepass", password] }
        process.arguments = arguments + self.extraArguments
        // Its log (warnings and up) in a file: the reason, if it exits before listening.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-redis-\(self.port)-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let output = try FileHandle(forWritingTo: log)
        defer { try? output.close() }
        process.standardOutput = output
        process.standardError = output
        try process.run()
        self.running.withLockedValue { $0 = process }
        Self.record(process.processIdentifier)
        _ = try await eventuallyAsync("redis-server listening on \(self.port)", timeout: .seconds(10)) { () -> Bool? in
            guard process.isRunning else {
                let said = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                throw ExitedBeforeListening(port: self.port, status: process.terminationStatus, output: String(said.suffix(600)))
            }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(self.port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            // Something listens there; ours only if the listening socket is one of its
            // descriptors (another redis-server of a test run beside this one may have the
            // port, and answers like ours would until ours exits).
            return connected == 0 && Self.listens(process.processIdentifier, on: self.port) ? true : nil
        }
    }

    /// Whether process `pid` holds the socket listening on 127.0.0.1:`port` (Linux's /proc).
    private static func listens(_ pid: Int32, on port: Int) -> Bool {
        let local = "0100007F:" + String(format: "%04X", port)
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return true }  // no /proc: trust the connect
        let inodes = Set(table.split(separator: "\n").compactMap { line -> Substring? in
            let fields = line.split(separator: " ")
            // sl local_address rem_address st ... inode (the tenth field); 0A is LISTEN
            guard fields.count > 9, fields[1] == local, fields[3] == "0A" else { return nil }
            return fields[9]
        })
        guard let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return false }
        return descriptors.contains { descriptor in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(descriptor)"),
                target.hasPrefix("socket:["), target.hasSuffix("]")
            else { return false }
            return inodes.contains(Substring(target.dropFirst(8).dropLast()))
        }
    }

    func stop() async throws {
        guard let process = self.running.withLockedValue({ running in defer { running = nil }; return running }) else { return }
        // SIGKILL: a test process may block SIGTERM, and children inherit the mask.
        kill(process.processIdentifier, SIGKILL)
        _ = try await eventually("redis-server to exit", timeout: .seconds(10)) { process.isRunning ? nil : true }
    }

    func restart() async throws {
        try await self.stop()
        try await self.launch()
    }

    /// SIGSTOP: the server keeps its sockets but reads nothing, as a stalled Redis would.
    func pause() { self.running.withLockedValue { $0 }.map { _ = kill($0.processIdentifier, SIGSTOP) } }
    func resume() { self.running.withLockedValue { $0 }.map { _ = kill($0.processIdentifier, SIGCONT) } }

    /// A command's answer is awaited this long: a test fails where it waited, not at its limit.
    static let commandTimeout: TimeAmount = Patience.scaled(TimeAmount.seconds(20))

    /// Runs one command on a fresh connection (as redis-cli would).
    func command(_ arguments: [String]) async throws -> RESPValue {
        let channel = try await RedisConnector.connect(
            try self.configuration(), on: MultiThreadedEventLoopGroup.singleton.next(), callbacks: .init()
        ).get()
        defer { channel.close(promise: nil) }
        return try await RedisConnector.command(arguments, on: channel, timeout: Self.commandTimeout).get()
    }

    /// Runs commands one after another on one fresh connection (`ASKING` then a command).
    func commands(_ list: [[String]]) async throws -> [RESPValue] {
        let channel = try await RedisConnector.connect(
            try self.configuration(), on: MultiThreadedEventLoopGroup.singleton.next(), callbacks: .init()
        ).get()
        defer { channel.close(promise: nil) }
        var replies: [RESPValue] = []
        for arguments in list { replies.append(try await RedisConnector.command(arguments, on: channel, timeout: Self.commandTimeout).get()) }
        return replies
    }

    /// Channels matching `pattern` that some client subscribes to.
    func activeChannels(_ pattern: String) async throws -> Set<String> {
        guard case .array(let items?) = try await self.command(["PUBSUB", "CHANNELS", pattern]) else { return [] }
        return Set(items.compactMap { item in
            guard case .bulkString(let bytes?) = item else { return nil }
            return String(buffer: bytes)
        })
    }

    /// Subscribers of `channel` across all clients.
    func subscriberCount(_ channel: String) async throws -> Int {
        guard case .array(let items?) = try await self.command(["PUBSUB", "NUMSUB", channel]), items.count == 2,
            case .integer(let count) = items[1]
        else { return -1 }
        return Int(count)
    }

    deinit {
        if let process = self.running.withLockedValue({ $0 }), process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }

    /// Appends `pid` to the file named by `MIZU_TEST_PID_FILE`: the test script ends whatever
    /// is left of it if this process dies before its cleanup runs.
    private static func record(_ pid: Int32) {
        guard let path = ProcessInfo.processInfo.environment["MIZU_TEST_PID_FILE"],
            let handle = FileHandle(forWritingAtPath: path) ?? (FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil)
        else { return }
        handle.seekToEndOfFile()
        handle.write(Data("\(pid)\n".utf8))
        try? handle.close()
    }

    /// A free port below the kernel's ephemeral range. A port from that range (what binding
    /// port 0 gives) can be taken, while Redis is down for a restart, as the local port of any
    /// of the thousands of connections the suite makes; redis-server then cannot bind it and
    /// the restart never comes back.
    private static func freePort(clusterBus: Bool) async throws -> Int {
        let ephemeralStart = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
            .flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } } ?? 32768
        let candidates = 10_000..<max(10_001, ephemeralStart - (clusterBus ? 10_000 : 0))
        func free(_ port: Int) async -> Bool {
            guard let channel = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: port).get()
            else { return false }
            try? await channel.close()
            return true
        }
        for _ in 0..<100 {
            let port = Int.random(in: candidates)
            guard await free(port) else { continue }
            if clusterBus, !(await free(port + 10_000)) { continue }
            return port
        }
        throw NoFreePort(range: candidates)
    }

    struct NoFreePort: Error, CustomStringConvertible {
        let range: Range<Int>
        var description: String { "no free port for redis-server in \(self.range)" }
    }
}
