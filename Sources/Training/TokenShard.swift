import Foundation
import TensorCore

/// A file of token ids: a 24-byte header (magic "TRIBTOK1", version, bytes per token, count),
/// then the ids little-endian, 2 or 4 bytes each.
public enum TokenShard {
    static let magic = Array("TRIBTOK1".utf8)
    static let version: UInt32 = 1
    static let headerSize = 24

    /// Writes `tokens` with `width` bytes per id (2 when the vocabulary fits, else 4); fsyncs.
    public static func write(_ tokens: [Int32], width: Int, to url: URL) throws -> FileDigest {
        precondition(width == 2 || width == 4, "[TokenShard] width \(width)")
        var data = Data(capacity: headerSize + tokens.count * width)
        data.append(contentsOf: magic)
        withUnsafeBytes(of: version.littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(width).littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(tokens.count).littleEndian) { data.append(contentsOf: $0) }
        if width == 2 {
            let narrow = tokens.map { UInt16(truncatingIfNeeded: $0).littleEndian }
            narrow.withUnsafeBytes { data.append(contentsOf: $0) }
        } else {
            let wide = tokens.map { $0.littleEndian }
            wide.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        try writeSynced(data, to: url)
        return FileDigest(of: data)
    }

    /// Reads a shard, checking its header against the file size and every id against `vocabulary`.
    public static func read(_ url: URL, vocabulary: Int) throws -> [Int32] {
        func fail(_ reason: String) -> TokenizerError { TokenizerError(reason: "token shard \(url.path): \(reason)") }
        guard let data = try? Data(contentsOf: url, options: .alwaysMapped) else { throw fail("cannot read it") }
        guard data.count >= headerSize, Array(data.prefix(8)) == magic else { throw fail("not a token shard (bad magic)") }
        let (version, width, count) = data.withUnsafeBytes { raw in
            (UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
             Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self))),
             UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        }
        guard version == Self.version else { throw fail("version \(version); this build reads version \(Self.version)") }
        guard width == 2 || width == 4 else { throw fail("token width \(width) is not 2 or 4") }
        guard count <= UInt64(Int32.max), data.count == headerSize + Int(count) * width else {
            throw fail("header says \(count) tokens of \(width) bytes but the file has \(data.count - headerSize) bytes after the header (truncated?)")
        }
        let tokens: [Int32] = data.withUnsafeBytes { raw in
            (0..<Int(count)).map { i in
                width == 2 ? Int32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: headerSize + 2 * i, as: UInt16.self)))
                    : Int32(littleEndian: raw.loadUnaligned(fromByteOffset: headerSize + 4 * i, as: Int32.self))
            }
        }
        if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= vocabulary }) {
            throw fail("token \(tokens[bad]) at index \(bad) is outside the vocabulary of \(vocabulary)")
        }
        return tokens
    }
}

/// What `data prepare` produced: the shards of each split, and the hash of the inputs they came from.
public struct DataManifest: Codable, Equatable, Sendable {
    public struct Shard: Codable, Equatable, Sendable {
        public var file: String
        public var split: String
        public var tokens: Int
        public var digest: FileDigest
    }

    public static let currentVersion = 1
    public var version = DataManifest.currentVersion
    /// Hash of the tokenizer and every input file's path and bytes.
    public var contentHash: String
    public var vocabularySize: Int
    public var tokenWidth: Int
    public var inputs: [String]
    public var shards: [Shard]

    /// The manifest of a `data prepare` folder, or nil when it has none that parses.
    public static func load(from directory: URL) -> DataManifest? {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("manifest.json")) else { return nil }
        return try? JSONDecoder().decode(DataManifest.self, from: data)
    }

    /// Tokens of one split, read from its shards (each checked against its digest).
    public func tokens(split: String, in directory: URL) throws -> [Int32] {
        var out: [Int32] = []
        for shard in shards where shard.split == split {
            let url = directory.appendingPathComponent(shard.file)
            guard let data = try? Data(contentsOf: url, options: .alwaysMapped), FileDigest(of: data) == shard.digest else {
                throw TokenizerError(reason: "shard \(url.path) is missing or does not match its manifest digest; run data prepare again")
            }
            out += try TokenShard.read(url, vocabulary: vocabularySize)
        }
        return out
    }
}
