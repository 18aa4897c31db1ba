import Mizu
import NIOCore

/// Starts `app` on 127.0.0.1, port 0, runs `body` with the port, then shuts the app down.
public func withServer<T>(_ app: App, _ body: (Int) async throws -> T) async throws -> T {
    let address = try await app.start(host: "127.0.0.1", port: 0)
    do {
        let result = try await body(address.port!)
        await app.shutdown()
        return result
    } catch {
        await app.shutdown()
        throw error
    }
}

/// Sends one request on a new connection and reads the response.
public func request(
    port: Int,
    _ method: String,
    _ target: String,
    headers: [String: String] = [:],
    body: String = ""
) async throws -> HTTPTestResponse {
    let client = try await RawClient.connect(port: port)
    defer { Task { await client.close() } }
    var text = "\(method) \(target) HTTP/1.1\r\nHost: test\r\n"
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    if !body.isEmpty || method == "POST" || method == "PUT" { text += "Content-Length: \(body.utf8.count)\r\n" }
    text += "\r\n" + body
    try await client.send(text)
    return try await client.readResponse(headRequest: method == "HEAD")
}

/// Polls `probe` every 10 ms until it returns a value, for at most `timeout`.
public func eventually<T>(
    _ what: String,
    timeout: TimeAmount = .seconds(5),
    _ probe: () -> T?
) async throws -> T {
    let deadline = NIODeadline.now() + Patience.scaled(timeout)
    while true {
        if let value = probe() { return value }
        guard NIODeadline.now() < deadline else { throw RawClient.Timeout(waitingFor: what, received: "") }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
}

/// As ``eventually(_:timeout:_:)``, with a probe that awaits (and may throw, which fails at once).
public func eventuallyAsync<T>(
    _ what: String,
    timeout: TimeAmount = .seconds(5),
    _ probe: () async throws -> T?
) async throws -> T {
    let deadline = NIODeadline.now() + Patience.scaled(timeout)
    while true {
        if let value = try await probe() { return value }
        guard NIODeadline.now() < deadline else { throw RawClient.Timeout(waitingFor: what, received: "") }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
}
