import Foundation

/// A JSON object member that the decoded type never read (Go's `DisallowUnknownFields`).
struct UnknownJSONField: Error, Equatable {
    /// Dotted path of the member, e.g. `"user.nickname"` or `"items.2.extra"`.
    let path: String
}

/// Decodes JSON with Foundation's `JSONDecoder` and then refuses any object member the
/// type's `init(from:)` did not ask about. Foundation has no such switch; the decoder is
/// wrapped so every keyed container records the keys read, and the object's raw keys are
/// compared with them once decoding is done. A type that reads `allKeys` (a dictionary)
/// takes every key of its object.
enum StrictJSONDecoder {
    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let decoder = JSONDecoder()
        if Self.isLeaf(type) { return try decoder.decode(type, from: data) }
        let tracker = KeyTracker()
        decoder.userInfo[KeyTracker.userInfoKey] = tracker
        let value = try decoder.decode(Tracked<T>.self, from: data).value
        if let path = tracker.firstUnknownPath() { throw UnknownJSONField(path: path) }
        return value
    }

    /// Types JSONDecoder decodes itself (dates, base64 data, URL strings, decimals): they go
    /// to the base container as they are, since their own `init(from:)` reads other shapes.
    static func isLeaf<T>(_ type: T.Type) -> Bool {
        type == Date.self || type == Data.self || type == URL.self || type == Decimal.self
    }
}

/// What one decode saw: for each object (by coding path) its raw keys and the keys read.
/// `@unchecked Sendable` only so it can travel in `userInfo`: one instance is created,
/// used and dropped inside one synchronous `decode` call on one thread.
final class KeyTracker: @unchecked Sendable {
    static let userInfoKey = CodingUserInfoKey(rawValue: "mizu.strictJSON.keyTracker")!

    private var present: [String: Set<String>] = [:]
    private var read: [String: Set<String>] = [:]
    private var readsAll: Set<String> = []

    func saw(_ keys: [String], at path: String) { self.present[path, default: []].formUnion(keys) }
    func read(_ key: String, at path: String) { self.read[path, default: []].insert(key) }
    func readAll(at path: String) { self.readsAll.insert(path) }

    func firstUnknownPath() -> String? {
        for path in self.present.keys.sorted() where !self.readsAll.contains(path) {
            let unknown = self.present[path, default: []].subtracting(self.read[path, default: []])
            if let key = unknown.min() { return path.isEmpty ? key : path + "." + key }
        }
        return nil
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }

    static func from(_ decoder: any Decoder) -> KeyTracker {
        // Only StrictJSONDecoder creates Tracked values, and it always sets the tracker.
        decoder.userInfo[Self.userInfoKey] as! KeyTracker
    }
}

/// Any string as a coding key: lists an object's keys whatever the type's key enum says.
struct AnyJSONKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

/// Decodes `T` through a tracking decoder; how nested values re-enter the tracking.
struct Tracked<T: Decodable>: Decodable {
    let value: T
    init(from decoder: any Decoder) throws {
        self.value = try T(from: TrackingDecoder(base: decoder, tracker: KeyTracker.from(decoder)))
    }
}

struct TrackingDecoder: Decoder {
    let base: any Decoder
    let tracker: KeyTracker
    var codingPath: [any CodingKey] { self.base.codingPath }
    var userInfo: [CodingUserInfoKey: Any] { self.base.userInfo }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        let raw = try self.base.container(keyedBy: AnyJSONKey.self)
        let path = KeyTracker.path(self.codingPath)
        self.tracker.saw(raw.allKeys.map(\.stringValue), at: path)
        let keyed = try self.base.container(keyedBy: Key.self)
        return KeyedDecodingContainer(TrackingKeyedContainer(base: keyed, tracker: self.tracker, path: path))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        TrackingUnkeyedContainer(base: try self.base.unkeyedContainer(), tracker: self.tracker)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        TrackingSingleValueContainer(base: try self.base.singleValueContainer(), tracker: self.tracker)
    }
}
