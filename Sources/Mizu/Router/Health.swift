/// Go mizu's liveness and readiness endpoints, for load balancers and orchestrators.
extension App {
    /// A named readiness check: true when the dependency it watches is usable.
    public typealias ReadinessCheck = @Sendable () -> Bool

    /// Liveness (Go's `LivezHandler`): 200 `ok` whenever the process can answer, also
    /// during shutdown (a restart would not help).
    public func livezHandler() -> Handler {
        { c in try await c.text(.ok, "ok\n") }
    }

    /// Readiness (Go's `ReadyzHandler`): 200 `ok` while the app is not shutting down and
    /// every check passes (a request that reaches it proves the listener is up); otherwise
    /// 503 with the reason (`shutting down`, or `not ready: <check>`, the first failing
    /// check by name), so a balancer sends traffic elsewhere.
    public func readyzHandler(checks: [String: ReadinessCheck] = [:]) -> Handler {
        let ordered = checks.sorted { $0.key < $1.key }
        return { [weak self] c in
            guard let self, !self.isShuttingDown else {
                return try await c.text(.serviceUnavailable, "shutting down\n")
            }
            if let failing = ordered.first(where: { !$0.value() }) {
                return try await c.text(.serviceUnavailable, "not ready: \(failing.key)\n")
            }
            try await c.text(.ok, "ok\n")
        }
    }

    /// Serves ``livezHandler()`` at `livez` and ``readyzHandler(checks:)`` at `readyz`.
    public func health(livez: String = "/livez", readyz: String = "/readyz", checks: [String: ReadinessCheck] = [:]) {
        self.get(livez, self.livezHandler())
        self.get(readyz, self.readyzHandler(checks: checks))
    }
}
