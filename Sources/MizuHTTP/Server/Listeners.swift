#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

/// Where a server listens: on Linux, one socket per event loop sharing the port
/// (`SO_REUSEPORT`), each accepting onto its own loop, so a connection is set up on the thread
/// that accepted it. With one listening socket, a connection accepted on one loop and served
/// on another crosses threads three times before its first byte is read (NIO's hand-over and
/// its answer): on two loops, half of all connections, each waking the other thread.
enum Listeners {
    /// The loops to listen on one by one; fewer than two means one listening socket for all.
    static func loopsListeningAlone(in group: any EventLoopGroup, enabled: Bool) -> [any EventLoop] {
        #if os(Linux)
        guard enabled, group is MultiThreadedEventLoopGroup else { return [] }
        let loops = Array(group.makeIterator())
        return loops.count > 1 ? loops : []
        #else
        // Elsewhere a shared port does not spread connections over its sockets.
        return []
        #endif
    }

    #if os(Linux)
    private static let reusePort = ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT))
    #endif

    /// Binds `host:port` once per loop, every socket made by `bootstrap` for its loop. A fixed
    /// port is first bound alone, without sharing: a port some other process listens on (an
    /// older instance of this server, too) must fail as it would with one socket, not be
    /// shared with it silently. Port 0: the first socket picks the port, the others join it.
    static func bindEach(
        host: String, port: Int, loops: [any EventLoop],
        bootstrap: (any EventLoop) -> ServerBootstrap
    ) async throws -> [any Channel] {
        #if os(Linux)
        if port != 0 {
            let probe = try await bootstrap(loops[0]).bind(host: host, port: port).get()
            try await probe.close()
        }
        var channels: [any Channel] = []
        do {
            var boundPort = port
            for loop in loops {
                let channel = try await bootstrap(loop)
                    .serverChannelOption(Self.reusePort, value: 1)
                    .bind(host: host, port: boundPort).get()
                channels.append(channel)
                if boundPort == 0 {
                    guard let picked = channel.localAddress?.port else { throw ChannelError.unknownLocalAddress }
                    boundPort = picked
                }
            }
            return channels
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        #else
        preconditionFailure("one listening socket per loop is used on Linux only")
        #endif
    }
}
