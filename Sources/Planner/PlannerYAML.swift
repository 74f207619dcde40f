import Foundation
import Basics
import Yams

/// A problem with a planner input (cluster, catalogue, model), naming the field and, where it
/// came from a file, the line.
public struct PlannerError: Error, Equatable, CustomStringConvertible {
    /// Dotted path of the offending field, e.g. `sites.2.count`.
    public var field: String
    public var reason: String
    /// File and line, when known.
    public var location: String?

    public init(field: String, reason: String, location: String? = nil) {
        self.field = field
        self.reason = reason
        self.location = location
    }

    public var description: String {
        let place = location.map { "\($0): " } ?? ""
        return field.isEmpty ? "\(place)\(reason)" : "\(place)field '\(field)': \(reason)"
    }
}

extension Decoder {
    /// Throws `PlannerError` when the mapping being decoded has a key outside `Key`.
    func rejectUnknownPlannerKeys<Key: CodingKey & CaseIterable>(_: Key.Type) throws {
        if let unknown = try firstUnknownKey(Key.self) { throw PlannerError(field: unknown.path, reason: unknown.message) }
    }
}

/// Decodes YAML, turning every failure into a `PlannerError` with the field and its line.
func decodePlannerYAML<T: Decodable>(_ type: T.Type, from text: String, source: String, userInfo: [CodingUserInfoKey: Any] = [:]) throws -> T {
    let root: Node?
    do { root = try Yams.compose(yaml: text) } catch {
        throw PlannerError(field: "", reason: "not valid YAML: \(error)", location: source)
    }
    func located(_ field: String, _ reason: String) -> PlannerError {
        let line = root.flatMap { lineOf(field, in: $0) }
        return PlannerError(field: field, reason: reason, location: line.map { "\(source):\($0)" } ?? source)
    }
    do {
        return try YAMLDecoder().decode(T.self, from: text.isEmpty ? "{}" : text, userInfo: userInfo)
    } catch let error as PlannerError {
        throw located(error.field, error.reason)
    } catch let DecodingError.dataCorrupted(context) where context.underlyingError is PlannerError {
        let inner = context.underlyingError as! PlannerError
        throw located(inner.field, inner.reason)
    } catch let DecodingError.keyNotFound(key, context) {
        throw located(dottedPath(context.codingPath + [key]), "missing")
    } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
        throw located(dottedPath(context.codingPath), "expected a value of type \(type)")
    } catch let DecodingError.dataCorrupted(context) {
        throw located(dottedPath(context.codingPath), context.debugDescription)
    }
}

/// The line of the node at a dotted path (the deepest part of the path that exists).
func lineOf(_ path: String, in root: Node) -> Int? {
    var node = root
    var line = root.mark?.line
    for part in path.split(separator: ".").map(String.init) where !part.isEmpty {
        if let mapping = node.mapping, let (key, value) = mapping.first(where: { $0.key.string == part }) {
            line = key.mark?.line ?? line
            node = value
        } else if let sequence = node.sequence, let i = Int(part), i < sequence.count {
            node = sequence[i]
            line = node.mark?.line ?? line
        } else {
            break
        }
    }
    return line
}

/// A file that is one list under one key (`devices:`, `runs:`, `measurements:`); any other
/// top-level key is refused.
private struct PlannerList<Element: Decodable>: Decodable {
    static var listKey: CodingUserInfoKey { CodingUserInfoKey(rawValue: "tributary.plannerListKey")! }
    var elements: [Element]

    init(from decoder: any Decoder) throws {
        let key = decoder.userInfo[Self.listKey] as? String ?? ""
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        for other in c.allKeys where other.stringValue != key {
            throw PlannerError(field: other.stringValue, reason: "unknown key; the file holds '\(key):' and a list")
        }
        elements = try c.decode([Element].self, forKey: AnyCodingKey(stringValue: key))
    }
}

/// Decodes a file of one list under `key`, errors naming the field and its line.
func decodePlannerList<T: Decodable>(_: T.Type, key: String, from text: String, source: String) throws -> [T] {
    try decodePlannerYAML(PlannerList<T>.self, from: text, source: source, userInfo: [PlannerList<T>.listKey: key]).elements
}
