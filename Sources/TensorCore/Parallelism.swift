/// How many threads the elementwise, attention and reduction kernels split their work across.
///
/// Work is cut into `threads` contiguous chunks whose boundaries depend only on the element count
/// and the thread count, so results are bit-identical run to run for the same thread count.
public struct Parallelism: Sendable, Hashable {
    /// Number of worker threads (at least 1).
    public let threads: Int
    private let team: ThreadTeam?

    /// A team of `threads` threads; values below 1 are clamped to 1.
    public init(threads: Int) {
        self.threads = max(1, threads)
        team = self.threads > 1 ? ThreadTeam.shared(size: self.threads) : nil
    }

    public static func == (a: Parallelism, b: Parallelism) -> Bool { a.threads == b.threads }
    public func hash(into hasher: inout Hasher) { hasher.combine(threads) }

    @inline(__always)
    private func runConcurrently(_ parts: Int, _ body: (Int) -> Void) {
        if let team { team.run(parts: parts, body) } else { for part in 0..<parts { body(part) } }
    }

    /// Single-threaded execution.
    public static let serial = Parallelism(threads: 1)

    /// Calls `body` on disjoint contiguous sub-ranges that cover `0..<count`, concurrently.
    ///
    /// `grain` is the smallest number of elements worth a thread of its own; smaller jobs run inline.
    /// Chunk boundaries are multiples of `alignment` (except the last), which keeps SIMD loops whole.
    @inline(__always)
    public func forEachRange(_ count: Int, grain: Int = 4096, alignment: Int = 16, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, max(1, count / max(grain, 1)))
        if parts <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let perPart = ((count + parts - 1) / parts + alignment - 1) / alignment * alignment
        runConcurrently(parts) { part in
            let start = min(count, part &* perPart)
            let end = min(count, start &+ perPart)
            if start < end { body(start..<end) }
        }
    }

    /// Calls `body` once per chunk index in `0..<chunks`, spreading chunks over the threads.
    ///
    /// Use when each chunk already has a natural size (rows of a matrix, heads of attention).
    @inline(__always)
    public func forEachChunk(_ chunks: Int, _ body: (Int) -> Void) {
        if threads == 1 || chunks <= 1 {
            for c in 0..<chunks { body(c) }
            return
        }
        let parts = min(threads, chunks)
        runConcurrently(parts) { part in
            let start = chunks * part / parts
            let end = chunks * (part + 1) / parts
            for c in start..<end { body(c) }
        }
    }
}
