import Foundation
@testable import Mizu
import MizuTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `App.listen` and its signal watch. A signal sent to the test process does not reach the
/// watcher reliably (the test runner has handlers of its own, and dispatch's signal sources
/// read a signalfd), so a second signal's forced shutdown is tested on the ChatApp
/// (Tests/ChatApp/test_contract.py).
@Suite(.timeLimit(.minutes(2))) struct ListenSignalTests {
    @Test func listenTakesThePortFromTheEnvironment() async throws {
        #expect(try App.defaultAddress([:]) == ":8080")
        #expect(try App.defaultAddress(["PORT": ""]) == ":8080")
        #expect(try App.defaultAddress(["PORT": " 3000 "]) == ":3000")
        #expect(throws: HTTPError(.internalServerError, "invalid PORT \"80a\": expected a port number (0-65535)")) {
            try App.defaultAddress(["PORT": "80a"])
        }
        #expect(throws: HTTPError.self) { try App.defaultAddress(["PORT": "70000"]) }
        // For real: PORT=0 picks a free port. Not through setenv: the process's environment
        // changed while another test starts a redis-server (which copies it) crashed the run.
        let app = App(logsRequests: false)
        app.get("/") { c in try await c.text(.ok, "from PORT") }
        let serving = Task { try await app.listen(environment: ["PORT": "0"]) }
        let port = try await eventually("the app listening") { app.localAddress?.port }
        #expect(try await request(port: port, "GET", "/").text == "from PORT")
        await app.shutdown()
        try await serving.value
    }

    /// Watches may overlap (two apps in one process) and end in any order: the signal's own
    /// action comes back when the last one stops, not before. SIGUSR2: the test runner has
    /// no handler for it.
    @Test func theLastWatcherToStopPutsTheSignalsActionBack() {
        #expect(Self.isDefault(SIGUSR2))
        let first = SignalWatcher(signals: [SIGUSR2])
        let second = SignalWatcher(signals: [SIGUSR2])
        #expect(!Self.isDefault(SIGUSR2), "watched: not the default action (which ends the process)")
        first.stop()
        #expect(!Self.isDefault(SIGUSR2), "still watched by the second")
        second.stop()
        #expect(Self.isDefault(SIGUSR2), "put back")
        first.stop()  // twice is once
        #expect(Self.isDefault(SIGUSR2))
    }

    private static func isDefault(_ number: Int32) -> Bool {
        var action = sigaction()
        sigaction(number, nil, &action)
        return action.__sigaction_handler.sa_handler == nil  // SIG_DFL is 0
    }
}
