/// A piece of work over `0..<count` that can be split into disjoint ranges run concurrently.
///
/// Kernels describe their parallel loops as small structs of pointers and sizes rather than
/// closures: handing a closure to another thread costs a heap allocation per call in Swift, and a
/// training step makes hundreds of such calls while it must allocate nothing.
public protocol ParallelWork {
    /// Processes the elements in `range`; called concurrently on disjoint ranges.
    func run(_ range: Range<Int>)
}

/// How many threads the elementwise, attention and reduction kernels split their work across.
///
/// Work is cut into at most `threads` contiguous ranges whose boundaries depend only on the element
/// count and the thread count, so results are bit-identical run to run for the same thread count.
public struct Parallelism: Sendable, Hashable {
    /// Number of worker threads (at least 1).
    public let threads: Int
    private let team: ThreadTeam?

    /// A team of `threads` threads; values below 1 are clamped to 1.
    public init(threads: Int) {
        self.threads = max(1, threads)
        team = self.threads > 1 ? ThreadTeam.shared(size: self.threads) : nil
    }

    /// Single-threaded execution.
    public static let serial = Parallelism(threads: 1)

    public static func == (a: Parallelism, b: Parallelism) -> Bool { a.threads == b.threads }
    public func hash(into hasher: inout Hasher) { hasher.combine(threads) }

    /// Runs `work` over `0..<count`, split into up to `threads` ranges run concurrently.
    ///
    /// `grain` is the smallest number of elements worth a thread of its own; smaller jobs run
    /// inline. Range boundaries are multiples of `alignment` (except the last), which keeps SIMD
    /// loops whole.
    @inline(__always)
    public func run<W: ParallelWork>(_ count: Int, grain: Int = 1, alignment: Int = 1, _ work: W) {
        let parts = min(threads, max(1, count / max(grain, 1)))
        if parts <= 1 || team == nil {
            if count > 0 { work.run(0..<count) }
            return
        }
        let perPart = ((count + parts - 1) / parts + alignment - 1) / alignment * alignment
        withUnsafePointer(to: work) { pointer in
            team!.run(parts: parts, RangeJob(work: pointer, count: count, perPart: perPart))
        }
    }
}

/// One part of a split `ParallelWork`, small enough to live inline in an existential.
struct RangeJob<W: ParallelWork>: TeamJob {
    let work: UnsafePointer<W>
    let count: Int
    let perPart: Int

    func runPart(_ part: Int) {
        let start = min(count, part &* perPart)
        let end = min(count, start &+ perPart)
        if start < end { work.pointee.run(start..<end) }
    }
}
