import Foundation
import Glibc

/// Linux poll(2): the peer shut down its writing side (not exported to Swift by Glibc).
private let POLLRDHUP: Int32 = 0x2000

/// A client that behaves as an attacker: it writes as fast as the server takes bytes and
/// never reads (a tiny receive buffer, so the server's output stalls at once). Plain
/// non-blocking POSIX sockets, so what it measures is what the kernel accepted; every wait
/// has a deadline.
///
/// What the server holds from one connection is bounded by what it read: while the server
/// keeps reading, a flood goes on at memory speed (gigabytes in seconds); once it stops, the
/// flood ends when the kernel buffers (a few MiB on loopback) are full. So the bytes a flood
/// got through are a bound on the server's memory for that connection.
public final class HostilePeer: @unchecked Sendable {
    // @unchecked: the descriptor is written once in init and closed once in deinit; the
    // methods are called from one task at a time by the tests.
    private let fd: Int32

    /// The outcome of a flood.
    public struct Flood: Sendable, CustomStringConvertible {
        /// Bytes the kernel accepted.
        public var written: Int
        /// Whether the server closed (or reset) the connection.
        public var closed: Bool
        /// How long the flood ran.
        public var elapsed: Duration

        public var description: String { "\(self.written) bytes in \(self.elapsed), closed: \(self.closed)" }
    }

    /// Connects to 127.0.0.1:`port` with a receive buffer of `receiveBuffer` bytes.
    public init(port: Int, receiveBuffer: Int32 = 4096) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var size = receiveBuffer
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            Glibc.close(fd)
            throw POSIXError(.init(rawValue: error) ?? .ECONNREFUSED)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        self.fd = fd
    }

    deinit {
        Glibc.close(self.fd)
    }

    /// Sends all of `bytes` (within `timeout`, times the patience); false if the server closed
    /// or it timed out.
    @discardableResult
    public func send(_ bytes: [UInt8], timeout: Duration = .seconds(5)) async -> Bool {
        let result = await Self.offThread { self.write(bytes, repeating: false, for: Patience.scaled(timeout), limit: bytes.count) }
        return !result.closed && result.written == bytes.count
    }

    /// Sends `text` as UTF-8 (within `timeout`).
    @discardableResult
    public func send(_ text: String, timeout: Duration = .seconds(5)) async -> Bool {
        await self.send(Array(text.utf8), timeout: timeout)
    }

    /// Writes `chunk` again and again, never reading, until `duration` passes, `limit` bytes
    /// went through, or the server closes the connection.
    public func flood(_ chunk: [UInt8], for duration: Duration, limit: Int) async -> Flood {
        await Self.offThread { self.write(chunk, repeating: true, for: duration, limit: limit) }
    }

    /// Blocking socket calls run on a thread of their own: on the concurrency pool (two
    /// threads on a 2-core machine) they would starve the server's own tasks.
    private static func offThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }

    private func write(_ chunk: [UInt8], repeating: Bool, for duration: Duration, limit: Int) -> Flood {
        let clock = ContinuousClock()
        let start = clock.now
        var written = 0
        var offset = 0
        while written < limit {
            let remaining = duration - (clock.now - start)
            guard remaining > .zero else { break }
            var poller = pollfd(fd: self.fd, events: Int16(POLLOUT) | Int16(POLLRDHUP), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, remaining.milliseconds)))
            if ready < 0 && errno == EINTR { continue }
            if poller.revents & (Int16(POLLRDHUP) | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                return Flood(written: written, closed: true, elapsed: clock.now - start)
            }
            guard ready > 0, poller.revents & Int16(POLLOUT) != 0 else { continue }
            let count = min(chunk.count - offset, limit - written)
            let sent = chunk.withUnsafeBytes { Glibc.send(self.fd, $0.baseAddress! + offset, count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                return Flood(written: written, closed: true, elapsed: clock.now - start)
            }
            written += sent
            offset += sent
            if offset == chunk.count {
                offset = 0
                if !repeating { break }
            }
        }
        return Flood(written: written, closed: false, elapsed: clock.now - start)
    }

    /// Waits, without reading, until the server closes the connection (its FIN or reset);
    /// returns how long that took, or nil if it stayed open for `timeout` (scaled by
    /// ``Patience``: it bounds how slow the machine may be).
    public func waitForClose(timeout: Duration) async -> Duration? {
        await Self.offThread { self.pollForClose(timeout: Patience.scaled(timeout)) }
    }

    /// Whether the server closed the connection within `window` (not scaled: a short look
    /// between two sends of a trickle, not a wait for an answer).
    public func isClosed(within window: Duration) async -> Bool {
        await Self.offThread { self.pollForClose(timeout: window) } != nil
    }

    private func pollForClose(timeout: Duration) -> Duration? {
        let clock = ContinuousClock()
        let start = clock.now
        while true {
            let remaining = timeout - (clock.now - start)
            guard remaining > .zero else { return nil }
            var poller = pollfd(fd: self.fd, events: Int16(POLLRDHUP), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, remaining.milliseconds)))
            if ready > 0, poller.revents & (Int16(POLLRDHUP) | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                return clock.now - start
            }
        }
    }

    /// Reads whatever has arrived, waiting up to `timeout` for the first bytes (at most `max`).
    public func readAvailable(timeout: Duration = .seconds(2), max: Int = 1 << 16) async -> [UInt8] {
        await Self.offThread { self.readOnce(timeout: Patience.scaled(timeout), max: max) }
    }

    /// Reads until nothing arrives for `quiet` (or the connection ends); returns the byte count:
    /// what the server had queued for this peer.
    public func drain(quiet: Duration = .milliseconds(300)) async -> Int {
        await Self.offThread {
            var total = 0
            while true {
                let bytes = self.readOnce(timeout: quiet, max: 1 << 16)
                if bytes.isEmpty { return total }
                total += bytes.count
            }
        }
    }

    private func readOnce(timeout: Duration, max: Int) -> [UInt8] {
        var poller = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout.milliseconds)) > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: max)
        let count = bytes.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress!, max, 0) }
        return count > 0 ? Array(bytes.prefix(count)) : []
    }
}

extension Duration {
    fileprivate var milliseconds: Int {
        let (seconds, attoseconds) = self.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
