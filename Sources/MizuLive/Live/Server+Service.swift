import ServiceLifecycle

/// A live server in a swift-service-lifecycle `ServiceGroup`: it has nothing to start (its
/// handler is mounted in an app), and on graceful shutdown it closes its sessions as
/// ``Live/Server/shutdown(timeout:spread:)`` does. Put it after the app in the group's list:
/// a group shuts services down in reverse order, so sessions close (1001, in batches)
/// before the HTTP server stops.
extension Live.Server: Service {
    public func run() async throws {
        try? await gracefulShutdown()
        await self.shutdown()
    }
}
