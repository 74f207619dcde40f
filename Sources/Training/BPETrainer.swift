import Foundation

/// Learns a byte-level BPE from text: counts pre-tokenized words, then repeatedly merges the most
/// frequent adjacent pair (ties: the pair seen first) until the vocabulary is full.
public struct BPETrainer {
    /// Target vocabulary size, including the 256 byte symbols.
    public var vocabularySize: Int
    /// Pairs seen fewer times than this are never merged.
    public var minimumFrequency = 2
    private var wordCounts: [[UInt8]: Int] = [:]

    public init(vocabularySize: Int) {
        self.vocabularySize = vocabularySize
    }

    /// Counts the words of `text`.
    public mutating func add(_ text: String) {
        let bytes = Array(text.utf8)
        for piece in preTokenize(bytes) { wordCounts[Array(bytes[piece]), default: 0] += 1 }
    }

    struct Pair: Hashable { let a: Int32, b: Int32 }

    /// The learned tokenizer.
    public func train() throws -> ByteLevelBPE {
        guard vocabularySize >= 256, vocabularySize <= 1 << 20 else {
            throw TokenizerError(reason: "vocabulary size must be in 256...\(1 << 20), got \(vocabularySize)")
        }
        let (toChar, _) = byteLevelAlphabet()
        var tokens = (0..<256).map { String(toChar[$0]) }
        var words: [[Int32]] = []
        var counts: [Int] = []
        // Deterministic order: sort words by bytes.
        for (word, count) in wordCounts.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            words.append(word.map { Int32($0) })
            counts.append(count)
        }
        var pairCounts: [Pair: Int] = [:]
        var pairWords: [Pair: Set<Int>] = [:]
        var firstSeen: [Pair: Int] = [:]
        var order = 0
        for (w, word) in words.enumerated() where word.count > 1 {
            for i in 0..<(word.count - 1) {
                let p = Pair(a: word[i], b: word[i + 1])
                pairCounts[p, default: 0] += counts[w]
                pairWords[p, default: []].insert(w)
                if firstSeen[p] == nil { firstSeen[p] = order; order += 1 }
            }
        }
        var merges: [(String, String)] = []
        while tokens.count < vocabularySize {
            var best: Pair?
            var bestCount = 0
            for (p, c) in pairCounts where c > bestCount || (c == bestCount && c > 0 && firstSeen[p]! < firstSeen[best!]!) {
                best = p
                bestCount = c
            }
            guard let pair = best, bestCount >= minimumFrequency else { break }
            let merged = Int32(tokens.count)
            merges.append((tokens[Int(pair.a)], tokens[Int(pair.b)]))
            tokens.append(tokens[Int(pair.a)] + tokens[Int(pair.b)])
            // Words in index order: new pairs get their first-seen rank (the tie-break) deterministically.
            for w in (pairWords[pair] ?? []).sorted() {
                let old = words[w]
                var new: [Int32] = []
                new.reserveCapacity(old.count)
                var i = 0
                while i < old.count {
                    if i + 1 < old.count, old[i] == pair.a, old[i + 1] == pair.b {
                        new.append(merged)
                        i += 2
                    } else {
                        new.append(old[i])
                        i += 1
                    }
                }
                // Replace the word's pair counts: remove the old pairs, add the new ones.
                for i in 0..<max(0, old.count - 1) {
                    let p = Pair(a: old[i], b: old[i + 1])
                    pairCounts[p, default: 0] -= counts[w]
                    if pairCounts[p] == 0 { pairCounts[p] = nil }
                }
                for i in 0..<max(0, new.count - 1) {
                    let p = Pair(a: new[i], b: new[i + 1])
                    pairCounts[p, default: 0] += counts[w]
                    pairWords[p, default: []].insert(w)
                    if firstSeen[p] == nil { firstSeen[p] = order; order += 1 }
                }
                words[w] = new
            }
            pairCounts[pair] = nil
            pairWords[pair] = nil
        }
        var vocabulary: [String: Int] = [:]
        for (id, t) in tokens.enumerated() where vocabulary[t] == nil { vocabulary[t] = id }
        guard vocabulary.count == tokens.count else { throw TokenizerError(reason: "learned a duplicate token") }
        return try ByteLevelBPE(vocabulary: vocabulary, merges: merges)
    }
}

extension ByteLevelBPE {
    /// Writes the tokenizer in Hugging Face's `tokenizer.json` layout (BPE model, ByteLevel
    /// pre-tokenizer and decoder), which `tokenizers.Tokenizer.from_file` loads.
    public func save(to url: URL) throws {
        var vocab: [String: Int] = [:]
        for (id, t) in tokens.enumerated() { vocab[t] = id }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        let root: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": [Any](),
            "normalizer": NSNull(), "pre_tokenizer": byteLevel, "post_processor": NSNull(), "decoder": byteLevel,
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": mergeList.map { [$0.0, $0.1] },
            ] as [String: Any],
        ]
        let data = try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url, options: .atomic)
        } catch {
            throw TokenizerError(reason: "cannot write \(url.path): \(error.localizedDescription)")
        }
    }
}
