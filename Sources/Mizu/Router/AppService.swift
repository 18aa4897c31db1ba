import ServiceLifecycle

extension App {
    /// The app as a swift-service-lifecycle `Service` serving on `address` (":8080",
    /// "127.0.0.1:0"), to run in a `ServiceGroup` next to the application's other services.
    /// It listens when the group runs it; on graceful shutdown (the group's signals, or
    /// `triggerGracefulShutdown()`) it does what ``listen(_:)`` does on SIGTERM: not ready,
    /// shutdown hooks, then the HTTP drain within `shutdownGracePeriod`.
    public func service(_ address: String) -> AppService {
        AppService(app: self, address: address)
    }
}

/// ``App/service(_:)``.
public struct AppService: Service {
    let app: App
    let address: String

    public func run() async throws {
        let (host, port) = try App.parse(address: self.address)
        let bound = try await self.app.start(host: host, port: port)
        let scheme = self.app.configuration.isSecure ? "https" : "http"
        self.app.logger.info("listening on \(scheme)://\(host):\(bound.port ?? port)")
        // Returns on graceful shutdown; throws if the group cancels us first, which also
        // ends the wait, and the app is shut down either way.
        try? await gracefulShutdown()
        await self.app.shutdown()
    }
}
