import Basics
import Foundation
import TensorCore

/// Turns text files into token shards with a train/validation split, cached by content hash.
public struct DataPreparation {
    /// Fraction of each file's tokens (its end) that goes to validation.
    public var validationFraction = 0.05
    /// Most tokens per shard file.
    public var shardTokens = 50_000_000

    public init() {}

    /// The copy of the tokenizer kept beside the shards, so a run (and its export) can find it.
    public static let tokenizerFile = "tokenizer.json"

    /// Tokenizes `inputs` with the tokenizer at `tokenizerURL` into `directory` (shards and
    /// `manifest.json`). Returns the manifest and whether it was already up to date.
    public func prepare(inputs: [String], tokenizerURL: URL, directory: URL) throws -> (DataManifest, cached: Bool) {
        let files = try TextFiles.expand(inputs)
        guard !files.isEmpty else { throw TokenizerError(reason: "no input files under \(inputs.joined(separator: ", "))") }
        guard let tokenizerBytes = try? Data(contentsOf: tokenizerURL) else {
            throw TokenizerError(reason: "cannot read tokenizer \(tokenizerURL.path)")
        }
        // Hash the tokenizer and every file's path and bytes: any change re-tokenizes.
        var hasher = ContentHasher()
        hasher.add(tokenizerBytes)
        var texts: [String] = []
        for file in files {
            hasher.add(Data(file.path.utf8))
            let text = try TextFiles.read(file)
            hasher.add(Data(text.utf8))
            texts.append(text)
        }
        let hash = hasher.hex
        let manifestURL = directory.appendingPathComponent("manifest.json")
        let tokenizerCopy = directory.appendingPathComponent(Self.tokenizerFile)
        if let old = DataManifest.load(from: directory), old.contentHash == hash, (try? old.tokens(split: "validation", in: directory)) != nil,
           (try? Data(contentsOf: tokenizerCopy)) == tokenizerBytes {
            return (old, true)
        }
        let bpe = try ByteLevelBPE(contentsOf: tokenizerURL)
        var train: [Int32] = [], validation: [Int32] = []
        for text in texts {
            let ids = bpe.encode(text)
            let cut = ids.count - Int((Double(ids.count) * validationFraction).rounded())
            train += ids[..<cut]
            validation += ids[cut...]
        }
        let width = bpe.vocabularySize <= 65_536 ? 2 : 4
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var shards: [DataManifest.Shard] = []
        for (split, tokens) in [("train", train), ("validation", validation)] {
            for (n, start) in stride(from: 0, to: max(tokens.count, 1), by: shardTokens).enumerated() {
                let slice = Array(tokens[start..<min(tokens.count, start + shardTokens)])
                let name = String(format: "%@-%03d.tokens", split, n)
                let digest = try TokenShard.write(slice, width: width, to: directory.appendingPathComponent(name))
                shards.append(.init(file: name, split: split, tokens: slice.count, digest: digest))
            }
        }
        try writeSynced(tokenizerBytes, to: tokenizerCopy)
        let manifest = DataManifest(contentHash: hash, vocabularySize: bpe.vocabularySize, tokenWidth: width,
                                    inputs: files.map(\.path), shards: shards)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // The manifest goes last: until it is written, a half-prepared folder is not taken as done.
        try writeSynced(try encoder.encode(manifest), to: manifestURL)
        return (manifest, false)
    }
}

/// 96 bits of content hash: FNV-1a 64 and CRC32C over the same bytes, with lengths mixed in.
struct ContentHasher {
    private var fnv = FNV1a()
    private var crc: UInt32 = 0

    mutating func add(_ data: Data) {
        withUnsafeBytes(of: UInt64(data.count).littleEndian) { mix($0) }
        data.withUnsafeBytes { mix($0) }
    }

    private mutating func mix(_ bytes: UnsafeRawBufferPointer) {
        crc = CRC32C.checksum(bytes, continuing: crc)
        fnv.add(bytes)
    }

    var hex: String { String(format: "%016llx%08x", fnv.value, crc) }
}
