import ModelCore

/// A token sequence cut into (B,T) batches with next-token targets, wrapping at the end: either
/// consecutive, or as windows of T tokens in a seeded random order, so that every batch (and
/// every worker's share of the data) mixes the whole corpus instead of one file or topic.
///
/// The cursor is the only state that changes, so a checkpoint that saves it resumes the same
/// data order.
public struct TokenStream: Sendable {
    /// All tokens of this split.
    public let tokens: [Int32]
    /// Where the next batch begins, in tokens: an index into `tokens`, or with shuffled windows
    /// the window's place in the shuffled order times the window length.
    public private(set) var cursor = 0
    /// Window length and the shuffled order of window indices; nil for consecutive batches.
    private let shuffled: (window: Int, order: [Int32])?

    /// A consecutive stream over `tokens`; it must hold more than one batch (checked by the config).
    public init(tokens: [Int32]) {
        self.tokens = tokens
        shuffled = nil
    }

    /// A stream of `window`-token rows (input plus the next token as target) taken at multiples
    /// of `window`, in an order drawn from `seed` (the same on every worker, so that contiguous
    /// parts of the order are disjoint random shares of the corpus).
    public init(tokens: [Int32], shuffledWindows window: Int, seed: UInt64) {
        precondition(window > 0 && tokens.count > window, "[TokenStream] windows of \(window) from \(tokens.count) tokens")
        self.tokens = tokens
        let count = (tokens.count - 1) / window
        var order = (0..<count).map(Int32.init)
        // Fisher–Yates with our own generator: the order must not change with the standard
        // library's shuffle, or resumed runs would read other data.
        var random = SeededGenerator(seed: seed)
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(random.next() % UInt64(i + 1)))
        }
        shuffled = (window, order)
    }

    /// Tokens one pass reads before it wraps.
    private var span: Int { shuffled.map { $0.order.count * $0.window } ?? tokens.count }

    /// Fills `inputs` and `targets` (each B·T) with the next batch and advances by B·T.
    public mutating func nextBatch(inputs: UnsafeMutableBufferPointer<Int32>, targets: UnsafeMutableBufferPointer<Int32>) {
        let n = inputs.count
        precondition(targets.count == n && tokens.count > n, "[TokenStream] batch of \(n) from \(tokens.count) tokens")
        if let (window, _) = shuffled {
            precondition(n % window == 0 && n <= span, "[TokenStream] batch of \(n) tokens is not whole windows of \(window) within \(span)")
        }
        let at = advance(by: n)
        tokens.withUnsafeBufferPointer { src in
            guard let (window, order) = shuffled else {
                inputs.baseAddress!.update(from: src.baseAddress! + at, count: n)
                targets.baseAddress!.update(from: src.baseAddress! + at + 1, count: n)
                return
            }
            for row in 0..<(n / window) {
                let start = Int(order[at / window + row]) * window
                (inputs.baseAddress! + row * window).update(from: src.baseAddress! + start, count: window)
                (targets.baseAddress! + row * window).update(from: src.baseAddress! + start + 1, count: window)
            }
        }
    }

    /// Advances past one batch of `n` tokens exactly as `nextBatch` would.
    public mutating func skipBatch(size n: Int) {
        _ = advance(by: n)
    }

    /// Where a batch of `n` tokens begins (wrapping to the start when the rest of the pass cannot
    /// hold it, the targets' extra token included), and moves the cursor past it.
    private mutating func advance(by n: Int) -> Int {
        if cursor + n + (shuffled == nil ? 1 : 0) > span { cursor = 0 }
        defer { cursor += n }
        return cursor
    }

    /// Moves the cursor (when resuming); values are reduced modulo one pass (and to a window
    /// boundary with shuffled windows).
    public mutating func seek(to position: Int) {
        let span = self.span
        guard span > 0 else { cursor = 0; return }
        let wrapped = ((position % span) + span) % span
        cursor = shuffled.map { wrapped - wrapped % $0.window } ?? wrapped
    }
}
