/// `total` whole items shared out in proportion to `weights` by largest remainders: each share
/// is the floor of its exact part (at least `minimum`), and what is left goes one by one to the
/// largest fractional parts, ties to the lower index (cycling if `minimum` left more than one
/// round). Nil when no weight is positive, or one is negative or not finite.
///
/// The one splitter for validation batches between workers and for a global batch between sites.
public func largestRemainderShares(of total: Int, weights: [Double], minimum: Int = 0) -> [Int]? {
    let sum = weights.reduce(0, +)
    guard sum > 0, sum.isFinite, weights.allSatisfy({ $0 >= 0 && $0.isFinite }) else { return nil }
    let exact = weights.map { Double(total) * $0 / sum }
    let floors = exact.map { Int($0.rounded(.down)) }
    var shares = floors.map { max(minimum, $0) }
    let order = exact.indices.sorted { (exact[$0] - Double(floors[$0]), -$0) > (exact[$1] - Double(floors[$1]), -$1) }
    var left = total - shares.reduce(0, +)
    var i = 0
    while left > 0 {
        shares[order[i % order.count]] += 1
        left -= 1
        i += 1
    }
    return shares
}

/// `total` items cut into consecutive ranges in proportion to `weights` (see
/// `largestRemainderShares`); nil when no weight is positive or one is negative.
public func proportionalRanges(of total: Int, weights: [Double]) -> [Range<Int>]? {
    guard let shares = largestRemainderShares(of: total, weights: weights) else { return nil }
    var start = 0
    return shares.map { c in defer { start += c }; return start..<(start + c) }
}
