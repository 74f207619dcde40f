/// A coding key that accepts any name, to list the keys a mapping actually has.
public struct AnyCodingKey: CodingKey {
    public let stringValue: String
    public var intValue: Int? { nil }
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

extension Decoder {
    /// The first key of the mapping being decoded that is not in `Key`, as a dotted path with a
    /// message naming the known keys (and the closest one); nil when every key is known.
    /// Config loaders throw their own error type with it.
    public func firstUnknownKey<Key: CodingKey & CaseIterable>(_: Key.Type) throws -> (path: String, message: String)? {
        let known = Key.allCases.map(\.stringValue)
        for key in try container(keyedBy: AnyCodingKey.self).allKeys where !known.contains(key.stringValue) {
            let closest = known.min { editDistance($0, key.stringValue) < editDistance($1, key.stringValue) }
            let hint = closest.flatMap { editDistance($0, key.stringValue) <= 3 ? "did you mean '\($0)'? " : nil } ?? ""
            return (dottedPath(codingPath + [key]), "unknown key; \(hint)known keys here: \(known.joined(separator: ", "))")
        }
        return nil
    }
}

/// A coding path as a dotted field name, array positions as numbers: `sites.2.count`.
public func dottedPath(_ path: [any CodingKey]) -> String {
    path.map { $0.intValue.map(String.init) ?? $0.stringValue.replacingOccurrences(of: "Index ", with: "") }.joined(separator: ".")
}
