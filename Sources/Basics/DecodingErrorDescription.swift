import Foundation

/// A one-line account of a JSON or YAML decoding failure that names the field, for error
/// messages about files and requests that came from outside.
public func describeDecodingError(_ error: Error) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    func path(_ context: DecodingError.Context) -> String { context.codingPath.map(\.stringValue).joined(separator: ".") }
    switch error {
    case .keyNotFound(let key, let c): return "missing field '\((c.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
    case .typeMismatch(_, let c), .valueNotFound(_, let c): return "field '\(path(c))': \(c.debugDescription)"
    case .dataCorrupted(let c): return c.codingPath.isEmpty ? "not valid JSON" : "field '\(path(c))': \(c.debugDescription)"
    @unknown default: return "\(error)"
    }
}
