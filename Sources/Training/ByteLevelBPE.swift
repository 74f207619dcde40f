import Foundation

/// Errors loading or using a tokenizer.
public struct TokenizerError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { "tokenizer: \(reason)" }
}

/// GPT-2 style byte-level BPE, read from and written to Hugging Face's `tokenizer.json` layout.
///
/// Text is split by GPT-2's pre-tokenization pattern, each piece's UTF-8 bytes become symbols, and
/// merges are applied lowest rank first. Encoding gives the ids that the `tokenizers` library gives
/// for the same file (checked against a fixture); decoding is lossless for any UTF-8 text.
public final class ByteLevelBPE: @unchecked Sendable {
    /// Token strings by id (byte-level alphabet: each byte is one printable character).
    public let tokens: [String]
    /// (left, right) → (rank, merged id).
    private let merges: [SymbolPair: (rank: Int32, merged: Int32)]
    /// The merges in rank order, as token strings (for saving).
    let mergeList: [(String, String)]
    private let byteToken: [Int32]
    private let tokenBytes: [[UInt8]]
    private var cache: [[UInt8]: [Int32]] = [:]
    private let lock = NSLock()

    /// Number of token ids.
    public var vocabularySize: Int { tokens.count }

    struct SymbolPair: Hashable {
        let left: Int32, right: Int32
    }

    /// Builds a tokenizer from its vocabulary (token → id) and ordered merges.
    public init(vocabulary: [String: Int], merges mergeList: [(String, String)]) throws {
        guard !vocabulary.isEmpty, vocabulary.count <= Int(Int32.max) else { throw TokenizerError(reason: "vocabulary is empty or too large") }
        var tokens = [String](repeating: "", count: vocabulary.count)
        for (token, id) in vocabulary {
            guard (0..<vocabulary.count).contains(id), tokens[id].isEmpty else {
                throw TokenizerError(reason: "vocabulary ids must be 0..<\(vocabulary.count), each once; '\(token)' has \(id)")
            }
            tokens[id] = token
        }
        let (toChar, fromChar) = byteLevelAlphabet()
        var byteToken = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            guard let id = vocabulary[String(toChar[b])] else {
                throw TokenizerError(reason: "vocabulary lacks the byte-level symbol for byte \(b); not a byte-level BPE")
            }
            byteToken[b] = Int32(id)
        }
        var table: [SymbolPair: (rank: Int32, merged: Int32)] = [:]
        for (rank, (a, b)) in mergeList.enumerated() {
            guard let l = vocabulary[a], let r = vocabulary[b], let m = vocabulary[a + b] else {
                throw TokenizerError(reason: "merge \(rank) '\(a) \(b)' uses tokens missing from the vocabulary")
            }
            let pair = SymbolPair(left: Int32(l), right: Int32(r))
            if table[pair] == nil { table[pair] = (Int32(rank), Int32(m)) }
        }
        self.tokens = tokens
        self.merges = table
        self.mergeList = mergeList
        self.byteToken = byteToken
        self.tokenBytes = try tokens.map { token in
            try token.unicodeScalars.map { s in
                guard let b = fromChar[s] else { throw TokenizerError(reason: "token '\(token)' has a character outside the byte-level alphabet") }
                return b
            }
        }
    }

    /// Loads a Hugging Face `tokenizer.json` with a BPE model and ByteLevel pre-tokenizer.
    public convenience init(contentsOf url: URL) throws {
        guard let data = try? Data(contentsOf: url), data.count < 256 << 20 else {
            throw TokenizerError(reason: "cannot read \(url.path) (or it is over 256 MB)")
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let model = root["model"] as? [String: Any], model["type"] as? String == "BPE",
              let vocab = model["vocab"] as? [String: Int], let rawMerges = model["merges"] as? [Any]
        else { throw TokenizerError(reason: "\(url.path) is not a tokenizer.json with a BPE model") }
        if let pre = root["pre_tokenizer"] as? [String: Any] {
            guard pre["type"] as? String == "ByteLevel", pre["add_prefix_space"] as? Bool != true, pre["use_regex"] as? Bool != false else {
                throw TokenizerError(reason: "\(url.path): only a ByteLevel pre-tokenizer without add_prefix_space is supported")
            }
        }
        if let normalizer = root["normalizer"], !(normalizer is NSNull) {
            throw TokenizerError(reason: "\(url.path): normalizers are not supported")
        }
        let merges: [(String, String)] = try rawMerges.map { item in
            if let pair = item as? [String], pair.count == 2 { return (pair[0], pair[1]) }
            if let text = item as? String, let space = text.firstIndex(of: " ") {
                return (String(text[..<space]), String(text[text.index(after: space)...]))
            }
            throw TokenizerError(reason: "\(url.path): a merge is neither \"a b\" nor [a, b]")
        }
        try self.init(vocabulary: vocab, merges: merges)
    }

    /// Token ids of `text`.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        let bytes = Array(text.utf8)
        for piece in preTokenize(bytes) { ids += encodePiece(Array(bytes[piece])) }
        return ids
    }

    /// The text of `ids` (invalid UTF-8, possible only from hand-made ids, is repaired).
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < tokenBytes.count { bytes += tokenBytes[Int(id)] }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func encodePiece(_ bytes: [UInt8]) -> [Int32] {
        if let hit = lock.withLock({ cache[bytes] }) { return hit }
        var symbols = bytes.map { byteToken[Int($0)] }
        while symbols.count > 1 {
            var best: (rank: Int32, merged: Int32)?
            var bestPair = SymbolPair(left: -1, right: -1)
            for i in 0..<(symbols.count - 1) {
                let pair = SymbolPair(left: symbols[i], right: symbols[i + 1])
                if let m = merges[pair], best == nil || m.rank < best!.rank {
                    best = m
                    bestPair = pair
                }
            }
            guard let best else { break }
            var merged: [Int32] = []
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count, symbols[i] == bestPair.left, symbols[i + 1] == bestPair.right {
                    merged.append(best.merged)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        lock.withLock { if cache.count < 100_000 { cache[bytes] = symbols } }
        return symbols
    }
}

/// GPT-2's byte ↔ character map: printable bytes stand for themselves, the others are shifted to
/// code points from U+0100, so every byte has a visible character.
func byteLevelAlphabet() -> (toChar: [Character], fromChar: [Unicode.Scalar: UInt8]) {
    var printable = Array(33...126) + Array(161...172) + Array(174...255)
    var codes = printable
    var extra = 0
    for b in 0..<256 where !printable.contains(b) {
        printable.append(b)
        codes.append(256 + extra)
        extra += 1
    }
    var toChar = [Character](repeating: " ", count: 256)
    var fromChar: [Unicode.Scalar: UInt8] = [:]
    for (b, c) in zip(printable, codes) {
        let scalar = Unicode.Scalar(UInt32(c))!
        toChar[b] = Character(scalar)
        fromChar[scalar] = UInt8(b)
    }
    return (toChar, fromChar)
}

/// Byte ranges of GPT-2's pre-tokenization of UTF-8 `bytes`:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
func preTokenize(_ bytes: [UInt8]) -> [Range<Int>] {
    // Decode to scalars with their byte offsets; classify each once.
    enum Kind { case letter, number, space, other }
    var scalars: [(start: Int, kind: Kind, value: UInt32)] = []
    var i = 0
    while i < bytes.count {
        let b = bytes[i]
        let length = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4
        var value = UInt32(b < 0x80 ? b : b < 0xE0 ? b & 0x1F : b < 0xF0 ? b & 0x0F : b & 0x07)
        for k in 1..<max(length, 1) where i + k < bytes.count { value = value << 6 | UInt32(bytes[i + k] & 0x3F) }
        let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"
        let kind: Kind
        if b < 0x80 {
            kind = (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) ? .letter
                : (b >= 0x30 && b <= 0x39) ? .number
                : (b == 0x20 || (b >= 0x09 && b <= 0x0D)) ? .space : .other
        } else {
            let p = scalar.properties
            switch p.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: kind = .letter
            case .decimalNumber, .letterNumber, .otherNumber: kind = .number
            default: kind = p.isWhitespace ? .space : .other
            }
        }
        scalars.append((i, kind, value))
        i += length
    }
    let n = scalars.count
    func end(_ k: Int) -> Int { k < n ? scalars[k].start : bytes.count }
    var pieces: [Range<Int>] = []
    var k = 0
    while k < n {
        let start = k
        let s = scalars[k]
        // Contractions: 's 't 're 've 'm 'll 'd (lowercase only, as in GPT-2).
        if s.value == 0x27, k + 1 < n {
            let c1 = scalars[k + 1].value, c2 = k + 2 < n ? scalars[k + 2].value : 0
            let one: Set<UInt32> = [0x73, 0x74, 0x6D, 0x64] // s t m d
            if (c1 == 0x72 && c2 == 0x65) || (c1 == 0x76 && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) {
                pieces.append(s.start..<end(k + 3)); k += 3; continue
            }
            if one.contains(c1) { pieces.append(s.start..<end(k + 2)); k += 2; continue }
        }
        // An optional single space, then a run of one class.
        var body = k
        if s.value == 0x20, k + 1 < n, scalars[k + 1].kind != .space { body = k + 1 }
        let kind = scalars[body].kind
        if kind != .space {
            var j = body + 1
            while j < n && scalars[j].kind == kind { j += 1 }
            pieces.append(scalars[start].start..<end(j))
            k = j
            continue
        }
        // Whitespace: the run, less its last character when a non-space follows (that character
        // then prefixes the next piece or stands alone).
        var j = k
        while j < n && scalars[j].kind == .space { j += 1 }
        if j < n && j - k >= 2 { j -= 1 }
        pieces.append(scalars[start].start..<end(j))
        k = j
    }
    return pieces
}
