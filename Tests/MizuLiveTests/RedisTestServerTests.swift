import Foundation
import MizuTestSupport
import Testing

/// The harness every Redis suite starts its servers with: a redis-server that exits before it
/// listens is reported at once, with its reason, not after the whole (patience-scaled) wait.
@Suite struct RedisTestServerTests {
    @Test(.enabled(if: RedisTestServer.executable != nil))
    func aServerThatExitsBeforeListeningIsReportedWithItsReason() async throws {
        // Reported as an exit (a timeout would be another error, after the whole wait).
        do {
            let server = try await RedisTestServer.start(extraArguments: ["--maxmemory-policy", "no-such-policy"])
            try await server.stop()
            Issue.record("redis-server accepted an unknown policy")
        } catch let exited as RedisTestServer.ExitedBeforeListening {
            #expect(exited.output.contains("maxmemory-policy"), "\(exited)")
        }
    }
}
