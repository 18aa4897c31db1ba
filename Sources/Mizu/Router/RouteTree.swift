import NIOHTTP1

/// The routing table: a tree of path segments. At each segment a static child wins over a
/// `{param}` child, which wins over a trailing `{name...}` wildcard; a lookup backtracks when
/// a preferred branch has no route further down.
///
/// `@unchecked Sendable`: its nodes are mutable classes, but the only instance lives inside
/// `RouteTable`'s lock and every read and write goes through that lock.
struct RouteTree: @unchecked Sendable {
    final class Node {
        var staticChildren: [String: Node] = [:]
        var paramChild: (name: String, node: Node)?
        var wildcard: (name: String, routes: Routes)?
        var routes = Routes()
    }

    /// The handlers of one path pattern, by method.
    struct Routes {
        var handlers: [String: Handler] = [:]
        var isEmpty: Bool { self.handlers.isEmpty }
    }

    /// A lookup's result: the routes of the matched pattern and its parameters.
    struct Match {
        var routes: Routes
        var parameters: [String: String]
    }

    enum PatternError: Error, CustomStringConvertible {
        case invalid(String, reason: String)
        case conflict(String)

        var description: String {
            switch self {
            case .invalid(let pattern, let reason): return "invalid route pattern \"\(pattern)\": \(reason)"
            case .conflict(let pattern): return "route \"\(pattern)\" conflicts with an existing route"
            }
        }
    }

    private let root = Node()

    /// Adds `handler` for `method` at `pattern` ("/users/{id}", "/files/{path...}").
    func add(method: String, pattern: String, handler: @escaping Handler) throws {
        guard pattern.hasPrefix("/") else { throw PatternError.invalid(pattern, reason: "must start with /") }
        var node = self.root
        let segments = Self.segments(of: pattern)
        for (index, segment) in segments.enumerated() {
            if segment.hasPrefix("{") && segment.hasSuffix("}") {
                var name = String(segment.dropFirst().dropLast())
                if name.hasSuffix("...") {
                    guard index == segments.count - 1 else {
                        throw PatternError.invalid(pattern, reason: "a {name...} wildcard must be the last segment")
                    }
                    name.removeLast(3)
                    guard !name.isEmpty else { throw PatternError.invalid(pattern, reason: "empty parameter name") }
                    var wildcard = node.wildcard ?? (name, Routes())
                    guard wildcard.name == name else { throw PatternError.conflict(pattern) }
                    guard wildcard.routes.handlers[method] == nil else { throw PatternError.conflict(pattern) }
                    wildcard.routes.handlers[method] = handler
                    node.wildcard = wildcard
                    return
                }
                guard !name.isEmpty else { throw PatternError.invalid(pattern, reason: "empty parameter name") }
                if let existing = node.paramChild {
                    guard existing.name == name else { throw PatternError.conflict(pattern) }
                    node = existing.node
                } else {
                    let child = Node()
                    node.paramChild = (name, child)
                    node = child
                }
            } else {
                guard !segment.contains("{") && !segment.contains("}") else {
                    throw PatternError.invalid(pattern, reason: "a parameter must be a whole segment")
                }
                let decoded = PercentEncoding.decode(segment, plusAsSpace: false) ?? segment
                if let child = node.staticChildren[decoded] {
                    node = child
                } else {
                    let child = Node()
                    node.staticChildren[decoded] = child
                    node = child
                }
            }
        }
        guard node.routes.handlers[method] == nil else { throw PatternError.conflict(pattern) }
        node.routes.handlers[method] = handler
    }

    /// Finds the pattern matching `rawPath` (percent-decoded segment by segment, so an
    /// encoded `/` stays inside its segment).
    func match(rawPath: String) -> Match? {
        guard let segments = Self.decodedSegments(of: rawPath) else { return nil }
        var parameters: [String: String] = [:]
        guard let routes = Self.match(node: self.root, segments: segments[...], parameters: &parameters) else { return nil }
        return Match(routes: routes, parameters: parameters)
    }

    private static func match(node: Node, segments: ArraySlice<String>, parameters: inout [String: String]) -> Routes? {
        guard let segment = segments.first else {
            if !node.routes.isEmpty { return node.routes }
            if let wildcard = node.wildcard {
                parameters[wildcard.name] = ""
                return wildcard.routes
            }
            return nil
        }
        let rest = segments.dropFirst()
        if let child = node.staticChildren[segment], let found = match(node: child, segments: rest, parameters: &parameters) {
            return found
        }
        if let param = node.paramChild, !segment.isEmpty {
            let saved = parameters
            parameters[param.name] = segment
            if let found = match(node: param.node, segments: rest, parameters: &parameters) { return found }
            parameters = saved
        }
        if let wildcard = node.wildcard {
            parameters[wildcard.name] = segments.joined(separator: "/")
            return wildcard.routes
        }
        return nil
    }

    /// "/a/b" -> ["a", "b"]; "/" -> []; "/a/" -> ["a", ""] (a trailing slash is significant).
    static func segments(of path: String) -> [String] {
        let trimmed = path.dropFirst()
        if trimmed.isEmpty { return [] }
        return trimmed.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    }

    static func decodedSegments(of rawPath: String) -> [String]? {
        var result: [String] = []
        for segment in Self.segments(of: rawPath) {
            guard let decoded = PercentEncoding.decode(segment, plusAsSpace: false) else { return nil }
            result.append(decoded)
        }
        return result
    }
}
