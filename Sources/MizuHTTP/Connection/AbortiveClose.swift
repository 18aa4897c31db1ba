import NIOCore

extension Channel {
    /// Closes with a TCP reset when output is still queued for a peer that does not read it.
    /// A plain close would leave the kernel holding that output (and the connection, in
    /// FIN_WAIT) for minutes, retrying a peer that takes nothing.
    package func closeDroppingUnsentOutput() {
        let unsent = (try? self.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        guard unsent > 0, let socket = self as? any SocketOptionProvider else {
            self.close(promise: nil)
            return
        }
        socket.setSoLinger(NIOLinger(l_onoff: 1, l_linger: 0)).whenComplete { _ in self.close(promise: nil) }
    }
}
