import ServiceLifecycle

extension HTTPServer {
    /// The server as a swift-service-lifecycle `Service` on `host:port`: it listens when
    /// run, and drains (``shutdown(gracePeriod:)``) on graceful shutdown.
    public func service(host: String, port: Int) -> HTTPServerService {
        HTTPServerService(server: self, host: host, port: port)
    }
}

/// `HTTPServer.service(host:port:)`.
public struct HTTPServerService: Service {
    let server: HTTPServer
    let host: String
    let port: Int

    public func run() async throws {
        try await self.server.start(host: self.host, port: self.port)
        try? await gracefulShutdown()
        await self.server.shutdown()
    }
}
