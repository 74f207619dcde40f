/// A token sequence cut into consecutive (B,T) batches with next-token targets, wrapping at the end.
///
/// The cursor is the only state, so a checkpoint that saves it resumes the same data order.
public struct TokenStream: Sendable {
    /// All tokens of this split.
    public let tokens: [Int32]
    /// Index of the first token of the next batch.
    public private(set) var cursor = 0

    /// A stream over `tokens`; it must hold more than one batch (checked by the config).
    public init(tokens: [Int32]) {
        self.tokens = tokens
    }

    /// Fills `inputs` and `targets` (each B·T) with the next window and advances by B·T.
    public mutating func nextBatch(inputs: UnsafeMutableBufferPointer<Int32>, targets: UnsafeMutableBufferPointer<Int32>) {
        let n = inputs.count
        precondition(targets.count == n && tokens.count > n, "[TokenStream] batch of \(n) from \(tokens.count) tokens")
        if cursor + n + 1 > tokens.count { cursor = 0 }
        tokens.withUnsafeBufferPointer { src in
            inputs.baseAddress!.update(from: src.baseAddress! + cursor, count: n)
            targets.baseAddress!.update(from: src.baseAddress! + cursor + 1, count: n)
        }
        cursor += n
    }

    /// Advances past one batch of `n` tokens exactly as `nextBatch` would.
    public mutating func skipBatch(size n: Int) {
        if cursor + n + 1 > tokens.count { cursor = 0 }
        cursor += n
    }

    /// Moves the cursor (when resuming); values are reduced modulo the stream length.
    public mutating func seek(to position: Int) {
        cursor = tokens.isEmpty ? 0 : ((position % tokens.count) + tokens.count) % tokens.count
    }
}
