import Foundation

/// A typed key for a value middleware hands down to handlers (Go's `context.WithValue` keys).
public struct RequestValueKey<Value: Sendable>: Sendable {
    /// The name values are stored under: two keys with one name are one key.
    public let name: String
    /// A key named `name` (make it unique, e.g. prefixed with the module's name).
    public init(_ name: String) { self.name = name }
}

extension RequestValueKey where Value == String {
    /// The request's ID, set by ``Middlewares/requestID(header:)``.
    public static var requestID: RequestValueKey<String> { RequestValueKey("mizu.requestID") }
}

/// Values set for one request by middleware and read further in (an authenticated user, a
/// request ID...). One per request, shared by every ``Ctx`` of it.
public final class RequestValues: Sendable {
    /// Inline in the object: one allocation per request, not two (a lock box is its own).
    private let values = InlineLock<[String: any Sendable]>([:])

    init() {}

    /// The value set for `key`, nil when none is; setting nil removes it. Safe from any task.
    public subscript<Value>(_ key: RequestValueKey<Value>) -> Value? {
        get { self.values.withLock { $0[key.name] } as? Value }
        set { self.values.withLock { $0[key.name] = newValue } }
    }

    private static let temporaryFilesKey = RequestValueKey<[String]>("mizu.temporaryFiles")

    /// Files made for this request (spooled uploads); the app removes them when the request's
    /// handler chain returns, as Go's server does, whether or not the handler did.
    func addTemporaryFiles(_ paths: [String]) {
        guard !paths.isEmpty else { return }
        self.values.withLock { $0[Self.temporaryFilesKey.name] = (($0[Self.temporaryFilesKey.name] as? [String]) ?? []) + paths }
    }

    func removeTemporaryFiles() {
        let paths = self.values.withLock { $0.removeValue(forKey: Self.temporaryFilesKey.name) as? [String] } ?? []
        for path in paths { try? FileManager.default.removeItem(atPath: path) }
    }
}
