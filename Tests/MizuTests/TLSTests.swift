#if TLS
import Foundation
import Mizu
import MizuTestSupport
import Testing

/// https:// with a self-signed certificate made by openssl for the test: a real handshake.
@Suite(.timeLimit(.minutes(2))) struct TLSTests {
    /// A fresh self-signed certificate for localhost/127.0.0.1 and its key, in a temporary folder.
    static func selfSigned() throws -> (certificate: String, key: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let certificate = folder.appendingPathComponent("cert.pem").path
        let key = folder.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
        return (certificate, key)
    }

    @Test func anAppServesHTTPSAndTheRequestKnowsItIsSecure() async throws {
        let (certificate, key) = try Self.selfSigned()
        var configuration = HTTPServerConfiguration()
        configuration.tls = try App.tlsConfiguration(certificateFile: certificate, keyFile: key)
        configuration.requestHeadTimeout = .seconds(1)
        let app = App(configuration: configuration, logsRequests: false)
        app.get("/hello") { c in try await c.text(.ok, "secure: \(c.request.isSecure)") }
        try await withServer(app) { (port: Int) async throws in
            let client = try await RawClient.connect(port: port, tls: .init(certificateFile: certificate))
            try await client.send("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 200 && response.text == "secure: true")
            await client.close()
            // Plain HTTP to a TLS port is no handshake: it is not answered as HTTP, and the
            // connection ends by the head deadline (the TLS layer would wait for 8 KiB more).
            let plain = try await RawClient.connect(port: port)
            try await plain.send("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let answer = try await plain.waitForClose(timeout: .seconds(4))
            #expect(!String(buffer: answer).contains("HTTP/1.1 200"))
            // A client that connects and stalls mid-handshake is closed the same way.
            let stalled = try await RawClient.connect(port: port)
            try await stalled.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            _ = try await stalled.waitForClose(timeout: .seconds(4))
        }
    }
}
#endif
