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

/// A coding key that accepts any name, to list the keys a YAML mapping actually has.
struct AnyCodingKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// Throws `ConfigError` when the mapping being decoded has a key outside `known`.
    func rejectUnknownKeys<Key: CodingKey & CaseIterable>(_: Key.Type) throws {
        let container = try container(keyedBy: AnyCodingKey.self)
        let known = Key.allCases.map(\.stringValue)
        for key in container.allKeys where !known.contains(key.stringValue) {
            let path = (codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
            let hint = closestName(to: key.stringValue, in: known).map { "did you mean '\($0)'? " } ?? ""
            throw ConfigError(field: path, reason: "unknown key; \(hint)known keys here: \(known.joined(separator: ", "))")
        }
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
