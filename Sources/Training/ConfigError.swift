import Basics
import TensorCore

/// A problem with a training configuration, naming the field (as a dotted path) and how to fix it.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    /// Dotted path of the offending field, e.g. `model.heads`; empty for the whole file.
    public let field: String
    /// What is wrong and, where possible, what to write instead.
    public let reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String {
        field.isEmpty ? "config: \(reason)" : "config field '\(field)': \(reason)"
    }
}

extension Decoder {
    /// Throws `ConfigError` when the mapping being decoded has a key outside `known`.
    func rejectUnknownKeys<Key: CodingKey & CaseIterable>(_: Key.Type) throws {
        if let unknown = try firstUnknownKey(Key.self) { throw ConfigError(field: unknown.path, reason: unknown.message) }
    }

    /// The dotted path of a field of the mapping being decoded.
    func path(_ key: some CodingKey) -> String {
        (codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
    }
}

/// The candidate within edit distance 3 of `name`, if any (for "did you mean" hints).
func closestName(to name: String, in candidates: [String]) -> String? {
    let lower = name.lowercased()
    let best = candidates.map { ($0, editDistance(lower, $0.lowercased())) }.min { $0.1 < $1.1 }
    return best.flatMap { $0.1 <= 3 ? $0.0 : nil }
}
