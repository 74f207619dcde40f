/// Streaming DiLoCo's fragments of a flat vector of `count` values: fragment f of F holds the blocks of
/// `block` consecutive values numbered f, f + F, f + 2F, … (the last block may be short), in order.
///
/// Interleaved, so that every fragment holds about 1/F of every tensor larger than F blocks and each sync
/// moves the whole model a little; in blocks, so that a pass over one fragment reads 1/F of the memory in
/// runs a loop can vectorise. Interleaving single values (until session 21) touched every cache line of
/// every vector for each fragment, and the round's passes over the parameters, the starting points, G,
/// the outer momentum and the error-feedback residual cost several ms a round.
public struct InterleavedFragments: Sendable, Equatable {
    /// Values per block: 256 bytes, four cache lines, so that a misaligned block shares at most one
    /// line with its neighbours.
    public static let block = 64

    /// Values in the whole vector.
    public let count: Int
    /// F; 1 is the whole vector as one fragment, in order.
    public let fragments: Int

    public init(count: Int, fragments: Int) {
        precondition(count >= 0 && fragments >= 1, "[InterleavedFragments] \(count) values in \(fragments) fragments")
        self.count = count
        self.fragments = fragments
    }

    /// Blocks in the whole vector, the last one possibly short.
    private var blocks: Int { (count + Self.block - 1) / Self.block }

    /// How many values fragment `fragment` holds.
    public func size(of fragment: Int) -> Int {
        precondition((0..<fragments).contains(fragment), "[InterleavedFragments] fragment \(fragment) of \(fragments)")
        let owned = max(0, (blocks - fragment + fragments - 1) / fragments)
        let short = count % Self.block
        // The last block belongs to fragment (blocks − 1) mod F, and is short when block does not divide count.
        let lastIsShort = owned > 0 && short > 0 && (blocks - 1) % fragments == fragment
        return owned * Self.block - (lastIsShort ? Self.block - short : 0)
    }

    /// Calls `body` with each contiguous run of fragment `fragment`'s values, in order: the run's place in
    /// the whole vector and where it starts in the fragment's own order.
    @inlinable
    public func forEachRun(of fragment: Int, _ body: (_ values: Range<Int>, _ offset: Int) throws -> Void) rethrows {
        precondition((0..<fragments).contains(fragment), "[InterleavedFragments] fragment \(fragment) of \(fragments)")
        if fragments == 1 {
            if count > 0 { try body(0..<count, 0) }
            return
        }
        var start = fragment * Self.block, offset = 0
        while start < count {
            let end = min(start + Self.block, count)
            try body(start..<end, offset)
            offset += end - start
            start += fragments * Self.block
        }
    }

    /// Copies fragment `fragment`'s values of `source` onto the same places of `target` (both whole vectors).
    public func copy(_ fragment: Int, from source: UnsafeBufferPointer<Float>, to target: UnsafeMutableBufferPointer<Float>) {
        precondition(source.count == count && target.count == count,
                     "[InterleavedFragments] copying \(source.count) values onto \(target.count) for a vector of \(count)")
        forEachRun(of: fragment) { values, _ in
            (target.baseAddress! + values.lowerBound).update(from: source.baseAddress! + values.lowerBound, count: values.count)
        }
    }
}
